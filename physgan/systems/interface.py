"""The system interface: everything a physical system provides, member by member.

A system is a package whose module is a `System` (physgan/systems/ising, physgan/systems/jets, or a
third-party package). It registers itself (physgan.systems.register) and the engine (cli, io, pipeline,
gan/, validation/) reaches it only through the members below, by name, never branching on which system it
is. Importing a system's package loads numpy at most; its two torch modules, `generative` (a `Generative`)
and `validation` (a `Validation`), are loaded on first access (physgan.systems.lazy_submodules), so that
reading files and `physgan --help` stay light.

Members a system may lack are still declared, with the value None (System.write_root, System.refine). Those
that the engine reads with a default, and that a module may therefore leave out, are listed by the
protocols of optional members (GenerativeExtras, GeneratorPrior, ValidationExtras). missing_members(module,
protocol) lists what a module lacks; tests/test_third_system.py builds a complete system inside the tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:  # annotations only: importing this module must stay free of numpy and torch
    import numpy as np
    import torch

# The engine's own types that the members below take or give, named here without importing them: the
# engine imports this module, so importing the engine here would make a loop.
Samples = Any
"""physgan.io.Samples: a sample file opened for reading (streamed chunks, conditions, provenance)"""
Measured = Any
"""physgan.validation.validate.Measured: one file with its conditions, rows and per-sample observables"""
Observable = Any
"""physgan.validation.validate.Observable: label, mathtext, unit and description of an observable"""

LAZY_MEMBERS = ("generative", "validation")  # the members that need torch, imported on first access


@dataclass(frozen=True)
class Option:
    """One command-line option a system adds to `physgan simulate` (System.SIMULATE_OPTIONS) or to
    `physgan sample` (System.SAMPLE_OPTIONS).

    The command line shows it in the system's argument group and, when it is given, hands its value on
    under `key`: a SimulationConfig field (simulate), a key of the options that
    Generative.parse_conditions receives (sample), or, with `output`, a keyword argument naming an extra
    output file. Two systems may declare the same flag for one command if it parses the same way for both
    (type, action, metavar, choices, output); each maps it onto its own key.
    """

    flag: str
    """the option string, e.g. "--n-per-class" """
    key: str
    """where the value goes (see above), e.g. "n_per_class" """
    help: str
    """the --help text"""
    type: Callable[[str], Any] = str
    """turns the command-line text into the value (str, int, float)"""
    action: str = "store"
    """"store", or "append" for a repeatable option whose values form a list"""
    metavar: str | None = None
    """the value's name in --help (default: the flag in capitals, or the choices)"""
    choices: tuple[str, ...] | None = None
    """the allowed values (None: any)"""
    output: bool = False
    """an extra output file rather than a setting: simulate passes it to System.simulate_to_file, sample to
    physgan.gan.sample.sample_to_file, as the keyword argument `key` (sample knows one: root, written by
    System.write_root)"""

    def __post_init__(self):
        if self.action not in ("store", "append"):
            raise ValueError(f"{self.flag}: action must be 'store' or 'append', not {self.action!r}")


class Refinement(Protocol):
    """A system's exact refinement (System.refine)."""

    algorithm: str
    """the update's name, recorded in a refined file's provenance"""

    def __call__(self, arrays: dict, sweeps: int, seed: tuple[int, ...], device: str = "cpu") -> dict:
        """Sample-file arrays of one batch (to_arrays's) after `sweeps` sweeps; seed: integers naming the
        batch's random streams; device: a torch device name. sweeps = 0 returns the arrays unchanged."""

    def curve(self, reference: dict, raw: dict, seed: tuple[int, ...]) -> dict:
        """What refinement does, measured: the raw generated arrays refined to increasing numbers of sweeps,
        each compared with the reference arrays (both {name: array} of the data fields and conditions).
        Returns {"sweeps": [K...], "T" or the condition labels, "series": {name: {"label", "values",
        "errors"}}}: values[k][c] the generated minus reference value at condition c after sweeps[k]."""


class System(Protocol):
    """The module-level members of a system's package."""

    NAME: str
    """the system's name: the `system` attribute of its sample files and checkpoints, the word after
    `physgan simulate` and `physgan run`, and the first part of its presets' names (NAME-quick.toml)"""
    CONDITIONS: tuple[str, ...]
    """per-sample condition fields, in the order of the generator's condition columns (Ising ("T",); jets
    ("signal", "jet_pt"))"""
    DATA_FIELDS: tuple[str, ...]
    """per-sample fields every sample file of the system holds besides CONDITIONS (physgan.io refuses a
    file without them)"""
    READER_ORDER: int
    """the order in which foreign files are offered to the systems' read_foreign, lowest first: a system
    whose readers claim only exact layouts goes before one that takes any array of a given name (jets 10:
    EnergyFlow's X (n, M, 4) with labels y; Ising 20: any .npz array named X)"""
    SIMULATE_OPTIONS: tuple[Option, ...]
    """the options the system adds to `physgan simulate`, mapped onto SimulationConfig fields (or, with
    Option.output, onto simulate_to_file's keyword arguments)"""
    SAMPLE_OPTIONS: tuple[Option, ...]
    """the options the system adds to `physgan sample`: its conditions, handed to
    generative.parse_conditions by Option.key (or, with Option.output, an extra output file)"""
    SimulationConfig: type
    """dataclass of Monte Carlo settings: a recipe's [simulate] table, a preset's [simulate_train] and
    [simulate_test], `physgan simulate`'s options and --set keys (unknown keys are errors)"""
    FidelityConfig: type
    """dataclass of a run's acceptance targets: a preset's [fidelity] table; optionally with a method
    exact_tolerances() -> {quantity: relative tolerance}, which then overrides the validation plug-in's
    EXACT_TOLERANCE for the run"""
    generative: Generative
    """the GAN engine's adapter, loaded on first access (needs torch)"""
    validation: Validation
    """the plug-in of `physgan validate`, loaded on first access (needs torch)"""
    write_root: Callable[..., None] | None
    """optional second output format: write_root(samples, path, *, force=False) writes any sample of the
    system as a ROOT file (jets: TTree jets); `physgan sample --root` calls it after the HDF5 file is
    complete. None where the system has no ROOT format"""
    refine: Refinement | None
    """optional: an exact update that moves generated samples towards equilibrium, a Markov chain step that
    leaves the system's distribution invariant (Ising: Metropolis sweeps and Wolff clusters at each
    lattice's temperature). `physgan sample --refine-sweeps K` and a preset's sample.refine_sweeps call it;
    systems without one leave it None and refuse the option"""

    def read_foreign(self, path: str, kind: str, allow_pickle: bool) -> Samples | None:
        """Open a file that is not physgan HDF5 (kind: physgan.io.detect_format's "hdf5", "npz", "npy",
        "pickle" or "root") as Samples, or None when the layout is not the system's. Claim only layouts the
        system recognises for certain; pickles (which can run code) only with allow_pickle."""

    def simulate_to_file(self, path, config, shard: tuple[int, int] = (0, 1), *, force: bool = False,
                         quiet: bool = False, **outputs) -> int:
        """Run the Monte Carlo of `config` (a SimulationConfig) into a sample file at `path` (source "mc",
        written with physgan.io.SampleWriter: atomically, refusing an existing file without force) and
        return the number of samples stored. shard (i, N): this job's part of a sharded run, seeded by
        physgan.shards.shard_seed and sized by shard_count, so that `physgan merge` can join the N files.
        quiet: no progress bar. outputs: the system's SIMULATE_OPTIONS with Option.output that were given,
        by key (jets: root=PATH also writes the constituents as ROOT). The provenance records `wall_s`, the
        seconds of wall time the call took (added inside the SampleWriter block: SampleWriter.provenance),
        which `physgan run` reports as the Monte Carlo's time when the file is given to it as data."""

    def data_mismatch(self, samples: Samples, config, section: str) -> str | None:
        """Why a file of the system (`physgan run --train-data/--test-data`; the engine has checked its system
        and that it holds samples) cannot stand in for the Monte Carlo of `config`, the preset's
        SimulationConfig under [section] ("simulate_train" or "simulate_test"): one phrase naming the
        file's value and the preset's, e.g. "lattices of L = 16, but the preset's simulate_train.L is 8";
        None when it can. It checks what defines the samples the preset's Monte Carlo would make (Ising: L;
        jets: image size, classes, the pT and mass windows of the selection), not the choice of conditions
        or the counts, which the file brings (Ising: its temperatures)."""

    def observables_report(self, samples: Samples) -> str:
        """`physgan observables`: the physics observables of a sample file per condition, with standard
        errors, next to exact values where they are known."""

    def fidelity_report(self, reference: Samples, generated: Samples, fidelity, metrics: dict | None = None
                        ) -> tuple[str, dict]:
        """A run preset's targets, judged on the generated sample against the test Monte Carlo with the
        rest of the validation's metrics at hand (physgan validate calls it when `physgan run` gives it the
        preset's FidelityConfig). Returns a text with the details and JSON-able results holding "pass" and
        "checks": rows {"check", "measured", "threshold", "pass"} that join the verdict's table."""


class Generative(Protocol):
    """system.generative: what physgan/gan/ (train.py, sample.py) needs to train and run the system's
    networks. Three representations meet here: the stored one (sample files and training tensors, compact:
    int8 lattices), the network one (float; what generators emit and critics and physics_features read) and
    raw conditions (B, n_cond) float32, columns as System.CONDITIONS."""

    NetworkConfig: type
    """dataclass of network settings: a preset's [train.network] table (unknown keys are errors); stored
    in checkpoints, from which sampling rebuilds the networks"""
    FEATURE_NAMES: tuple[str, ...]
    """names of the columns of physics_features: what train.feature_weights, train.hierarchical and
    train.condition_anchors name, and the monitor's log"""

    def training_tensors(self, samples: Samples) -> tuple[torch.Tensor, torch.Tensor]:
        """Every sample of a file: the stored representation (N, ...) and the raw conditions (N, n_cond)."""

    def to_float(self, x: torch.Tensor) -> torch.Tensor:
        """Stored representation -> network representation."""

    def to_arrays(self, x: torch.Tensor, cond: torch.Tensor) -> dict[str, np.ndarray]:
        """Generator output (B, ...) and raw conditions (B, n_cond) -> the arrays of one SampleWriter.append:
        every name of System.CONDITIONS and System.DATA_FIELDS."""

    def make_networks(self, shape: tuple[int, ...], n_cond: int, config) -> tuple[Generator, Critic]:
        """A fresh generator and critic for samples of `shape` (network representation, without the
        batch) and n_cond network condition inputs (the raw conditions, normalised, plus any inputs the
        engine adds: hierarchical summaries, condition anchors), with settings `config` (NetworkConfig)."""

    def physics_features(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable per-sample physics summaries (B, F) of network-representation samples, columns
        as FEATURE_NAMES: matched per condition group in training (means, and optionally spreads and
        quantiles) and monitored to choose best.pt. Exact symmetries must leave them unchanged."""

    def symmetry_codes(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        """One random element (B,) of the system's exact symmetry group per sample, drawn from `generator`
        (so training batches are a function of (seed, step))."""

    def apply_symmetry(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """The symmetry elements `codes` applied to network-representation samples (training augmentation)."""

    def condition_groups(self, cond: torch.Tensor) -> torch.Tensor:
        """Group number (N,) int64, 0 ... G-1, of raw conditions (N, n_cond): samples with similar
        conditions (Ising one temperature; jets one class and 10 GeV of pT). Training batches and feature
        matching work on groups; hierarchical generation's summary model uses them as its nodes."""

    def parse_conditions(self, options: dict) -> tuple[np.ndarray, int]:
        """`physgan sample`'s options -> the distinct raw conditions (k, n_cond) and the samples to draw
        at each. options: the value of every system's SAMPLE_OPTIONS (not the outputs) by Option.key,
        None where not given, and "n" (--n-per-temp/--n, samples per condition in the system's sense:
        jets spread n jets of each class over the --pt window, one at each). Missing or bad conditions
        raise UserError."""

    def test_conditions(self, samples: Samples) -> np.ndarray:
        """Where `physgan run` samples its generator, given the test Monte Carlo: raw conditions (k, n_cond),
        each sampled the run's sample.n_per_condition times (Ising each test temperature; jets each test
        jet's class and pT)."""


class GenerativeExtras(Protocol):
    """Optional members of system.generative; the engine reads them with getattr and a default."""

    FEATURE_WEIGHTS: tuple[float, ...]
    """relative weight of each physics feature in the matching and in the monitor score (default all 1),
    e.g. so that the jets' seven points of one pixel spectrum count as one feature"""
    CATEGORY_CONDITION: int
    """the column of a categorical condition (jets' class, 0): hierarchical generation keeps its summary
    model per category and runs it along the one other, continuous, condition (default None: none)"""


class Generator(Protocol):
    """The generator make_networks returns: a torch.nn.Module (trained, averaged by EMA, checkpointed by
    its state_dict)."""

    def latent(self, batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Its random inputs for `batch` samples, by name, drawn from `generator` (a sample's output must
        not depend on how the batch is split)."""

    def __call__(self, latent: dict[str, torch.Tensor], cond: torch.Tensor) -> torch.Tensor:
        """Samples (B, ...) in the network representation from the latent (plus, with hierarchical
        generation, the requested summaries by feature name, which a generator may impose or ignore) and
        the network conditions (B, n_cond)."""


class GeneratorPrior(Protocol):
    """Optional method of a generator; the trainer calls it where it exists."""

    def prior_loss(self, group_size: int) -> torch.Tensor | float:
        """A penalty on the generator's last forward pass, whose samples came in condition groups of
        `group_size`, added to the generator loss (its weight is a network setting)."""


class Critic(Protocol):
    """The critic make_networks returns: a torch.nn.Module without batch coupling (no BatchNorm: the
    gradient penalty assumes per-sample scores)."""

    def __call__(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Scores (B,) of network-representation samples (B, ...) at network conditions (B, n_cond)."""


class Validation(Protocol):
    """system.validation: the plug-in of physgan/validation/validate.py, which asks it for everything
    system-specific. `reference` and `generated` below are validate.Measured: samples, conditions, rows
    (the distinct conditions, shared by both), index, groups (sample indices per row), features,
    values(name, row). Random choices draw from numpy generators seeded with [seed, ...] (the engine's own
    use [seed, 0] and [seed, 1, ...])."""

    OBSERVABLES: dict[str, Observable]
    """per-sample observables compared distribution by distribution (a permutation test of W1, or of the
    level populations of a discrete one; KS, separation power) per condition, with labels and units for
    tables and axes; their tests are checks of the verdict, and together they are the inputs of the
    classifier test on physics observables"""
    CONDITION_NAMES: tuple[str, ...]
    """names of the columns of conditions(), as they appear in metrics.json"""

    def check_compatible(self, reference: Samples, generated: Samples) -> None:
        """Raise UserError when two sample files of the system cannot be compared (Ising: different L).
        Also asked about the reference and the training file."""

    def conditions(self, samples: Samples) -> np.ndarray:
        """Per-sample condition values (n, k), cheap (the condition fields only); samples at equal rows form
        one condition, and both files must hold the same rows (jets: pT in fixed bins)."""

    def condition_label(self, row: np.ndarray) -> str:
        """A row of conditions for people, e.g. "T = 2.269"."""

    def per_sample(self, samples: Samples, keep: np.ndarray | None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """One streamed pass over the file: (features, kept). features holds an (n,) array for every name of
        OBSERVABLES and whatever extras, memorisation and plots need; kept (len(keep), ...) the classifier
        inputs of the samples at the indices `keep` (None: none), in that order (compact dtype; the engine
        converts to float32)."""

    def make_classifier(self, shape: tuple[int, ...], n_cond: int) -> torch.nn.Module:
        """A small conditional network for the classifier two-sample test: forward(x (B, *shape) float32,
        cond (B, n_cond) float32 standardised) -> logits (B,)."""

    def extras(self, reference: Measured, generated: Measured, seed: int) -> dict:
        """System-specific results (JSON-able), stored in metrics.json under the system's name."""

    def memorisation(self, training: Samples, reference: Measured, generated: Measured, seed: int) -> dict:
        """Called only with a training sample (checked with check_compatible): distances from samples of
        both files to their nearest training sample, summarised by validate.nearest_neighbour_summary, plus
        "metric", "unit" and "queries" (text). The engine stores it as extras["memorisation"] (without a
        training sample: {"checked": False, "reason": ...}) and reports it itself (table and histogram)."""

    def report_content(self, extras: dict) -> dict:
        """Plain strings for report.html (which escapes them): {"summary": [(name, text)], "tables":
        [{"title", "headers", "rows", "note"}]}."""

    def plots(self, reference: Measured, generated: Measured, extras: dict, plots_dir, pdf: bool, histograms
              ) -> list[tuple[str, str]]:
        """System-specific figures written into plots_dir (also as PDF with pdf): [(title, file name)]. Every
        histogram drawn goes into `histograms` (validation.histograms.HistogramFile.add, which report/histograms.h5
        is written from; report.histogram_panel draws a pair of them)."""


class ValidationExtras(Protocol):
    """Optional members of system.validation; the engine reads them with getattr and a default."""

    CLASSIFIER_FEATURES: tuple[str, ...]
    """names of per-sample features (of per_sample's) the classifier on physics observables sees besides the
    conditions (default: the OBSERVABLES)"""
    EXACT_TOLERANCE: dict[str, float]
    """quantity -> the relative deviation from the exact value beyond which a significant deviation fails
    (a run's preset may override it by quantity)"""

    def exact_checks(self, reference: Measured, generated: Measured) -> list[dict]:
        """Comparisons with exactly known values (Ising: Kaufman's finite-torus <e> and C per temperature),
        one dict per quantity and condition: "quantity", "condition" (label), "exact", "gen", "gen_err",
        "gen_pull", "ref", "ref_err", "ref_pull", "relative" ((gen - exact) / |exact|) and "p_value" (of the
        generated sample's deviation). The engine adds them to the family of tests of the verdict (default:
        none)."""


def members(protocol: type) -> tuple[str, ...]:
    """The member names a protocol declares: its annotated attributes and its methods."""
    methods = [name for name, value in vars(protocol).items() if callable(value) and not name.startswith("_")]
    return tuple(protocol.__annotations__) + tuple(methods)


def missing_members(module, protocol: type, skip: tuple[str, ...] = ()) -> list[str]:
    """The members of `protocol` that `module` lacks (hasattr, so lazily loaded members count once they
    load; `skip` names members not to touch)."""
    return [name for name in members(protocol) if name not in skip and not hasattr(module, name)]
