"""physgan's Python API: Monte Carlo, generators and validation in memory, for notebooks and scripts.

    import physgan

    mc = physgan.simulate("ising", L=16, temps=[2.0, 2.5], n_per_temp=1000, seed=0)   # a Sample
    mc["spins"], mc["T"], len(mc)                                                      # numpy arrays
    mc.save("ising.h5")                                  # the file `physgan simulate` writes
    physgan.load_sample("ising.h5")                      # any file physgan reads -> a Sample
    physgan.train(mc, "runs/x", preset="quick")          # -> the path of checkpoints/best.pt
    gen = physgan.load("runs/x/checkpoints/best.pt")     # a Generator
    gen.sample(T=[2.0, 2.5], n=1000, refine_sweeps=8)    # a Sample, in memory
    physgan.validate(mc, gen.sample(T=[2.0, 2.5], n=1000)).passed

Every function here is what the command line runs, called the same way: `physgan simulate` and simulate
run the system's Monte Carlo (System.simulate_to_file); `physgan train` and train build the TrainConfig in
one place (training); `physgan sample` streams and Generator.sample collects the batches of one sampler
(physgan.gan.sample.Sampler); `physgan validate` calls validate. User mistakes raise physgan.errors.UserError
with one line that says what is wrong. docs/api.md shows it at work. Importing physgan does not import this
module; it loads on first use of physgan.simulate (and the rest), and torch with the first generator.
"""
from __future__ import annotations

import keyword
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from physgan.errors import UserError
from physgan.gan import adherence

__all__ = ["Generator", "Sample", "Verdict", "load", "load_sample", "simulate", "train", "validate"]


# ---------------------------------------------------------------------------------------------
# Samples


class Sample:
    """A sample in memory: per-sample numpy arrays by name, all of length n, as physgan's sample files hold
    them (docs/formats.md), with the system, the source and the provenance.

    Ising: spins int8 (n, L, L), each +-1 (J = 1, k_B = 1); T float32 (n,), the temperature (the condition).
    Jets: image float32 (n, 25, 25), pixel pT in GeV; signal int8 (n,), 1 = W', 0 = QCD; jet_pt float32 (n,)
    in GeV (both conditions; a generated jet's jet_pt is the pT it was asked for); jet_mass (GeV),
    jet_delta_R, tau_1, tau_2, tau_3, tau_21, tau_32 float32 (n,), measured on the image in a generated
    sample; jet_eta, jet_phi float32 (n,), NaN in a generated sample.

    sample["spins"], sample.arrays (a dict), len(sample), "T" in sample, sample.keys(). source: "mc" (Monte
    Carlo), "gan" (a generator) or "external"; provenance: what made it (docs/formats.md, "Provenance");
    tables: small tables a Monte Carlo file stores (the Ising "mc" table: tau_int per temperature); path:
    the file it was read from (None: made in memory). Sample(arrays, "ising") wraps arrays of your own
    (checked: the system's fields present, equal lengths).
    """

    def __init__(self, arrays: Mapping[str, Any], system: str, *, source: str = "external",
                 provenance: dict | None = None, tables: dict | None = None, path: str | None = None):
        from physgan.systems import get_system

        if not isinstance(system, str):
            raise UserError(f"system must be a name such as 'ising', not {type(system).__name__}")
        if not isinstance(arrays, Mapping):
            raise UserError(f"a Sample's arrays are a mapping of name -> array, not {type(arrays).__name__}")
        spec = get_system(system)
        self.arrays = {str(name): np.asarray(array) for name, array in arrays.items()}
        missing = [name for name in _fields(spec) if name not in self.arrays]
        if missing:
            raise UserError(f"a {spec.NAME} sample needs the arrays {', '.join(_fields(spec))}; "
                            f"missing: {', '.join(missing)}")
        lengths = {name: array.shape[0] if array.ndim else None for name, array in self.arrays.items()}
        if None in lengths.values() or len(set(lengths.values())) != 1:
            raise UserError("a Sample's arrays need one entry per sample, all of the same length; got "
                            + ", ".join(f"{name} {'a scalar' if n is None else n}" for name, n in lengths.items()))
        self.system = spec.NAME
        self.source = source
        self.provenance = dict(provenance or {})
        self.tables = dict(tables or {})
        self.path = path

    @property
    def conditions(self) -> tuple[str, ...]:
        """The names of the condition arrays (Ising ("T",); jets ("signal", "jet_pt"))."""
        from physgan.systems import get_system

        return tuple(get_system(self.system).CONDITIONS)

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.arrays[name]
        except KeyError:
            raise KeyError(f"{name!r}: this {self.system} sample holds {', '.join(self.arrays)}") from None

    def __contains__(self, name) -> bool:
        return name in self.arrays

    def keys(self):
        return self.arrays.keys()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name} {array.dtype} {tuple(array.shape)}" for name, array in self.arrays.items())
        where = f", from {self.path}" if self.path else ""
        return f"<physgan.Sample: {self.system}, {len(self)} samples, source {self.source}{where}: {fields}>"

    def save(self, path, force: bool = False) -> Path:
        """Write physgan's HDF5 sample file (docs/formats.md), atomically; an existing file only with force.
        It holds the system's fields (its conditions and data fields, as every physgan file; a reader's
        extras such as the jets' constituents are not stored), the source, the provenance and the tables,
        as `physgan simulate` and `physgan sample` write them. Returns the path."""
        from physgan.io import SampleWriter
        from physgan.systems import get_system

        if len(self) == 0:
            raise UserError("an empty sample cannot be saved")
        fields = _fields(get_system(self.system))
        with SampleWriter(path, system=self.system, source=self.source, provenance=self.provenance,
                          force=force) as writer:
            writer.append(**{name: array for name, array in self.arrays.items() if name in fields})
            for name, columns in self.tables.items():
                writer.add_table(name, columns)
        return Path(path)

    def _samples(self, label: str):
        """The engine's view of this sample (physgan.io.Samples read from memory), called `label`."""
        from physgan.io import samples_in_memory

        return samples_in_memory(self.arrays, system=self.system, source=self.source, provenance=self.provenance,
                                 tables=self.tables, label=label)


def _fields(system) -> tuple[str, ...]:
    return tuple(dict.fromkeys(system.DATA_FIELDS + system.CONDITIONS))


def load_sample(path, *, allow_pickle: bool = False) -> Sample:
    """Read any sample file physgan reads (physgan HDF5, and the foreign layouts of docs/ising.md and docs/jets.md:
    Ising .npz/.npy/Mehta pickles, LAGAN, JetNet, EnergyFlow, ROOT) into a Sample, all of it in memory.
    Pickles can run code: read only with allow_pickle (trusted files)."""
    from physgan.io import open_samples

    samples = open_samples(_path(path, "load_sample"), allow_pickle=allow_pickle)
    chunks = list(samples.iter_chunks()) or [samples.read_chunk(0, 0)]
    arrays = {name: np.concatenate([chunk[name] for chunk in chunks]) for name in chunks[0]}
    return Sample(arrays, samples.system, source=samples.source, provenance=samples.provenance,
                  tables=samples.tables, path=str(path))


def simulate(system: str, *, seed: int = 0, quiet: bool = False, **settings) -> Sample:
    """Run the system's Monte Carlo, as `physgan simulate SYSTEM` does, and return the Sample (source "mc").

    settings: the fields of the system's SimulationConfig, checked as the command line checks them (unknown
    keys and wrong types are UserErrors). Ising (physgan.systems.ising.mc.IsingMCConfig): L (lattice side),
    temps (a list, or "2.0,2.269,3.0" or "start:stop:count"), n_per_temp, algorithm ("auto", "metropolis",
    "wolff"), chains, device, ... Jets (physgan.systems.jets.mc.JetsMCConfig, needs pythia8mc and fastjet):
    n_per_class, classes (["wprime", "qcd"]), pt ((250, 300) or "250:300", GeV), mass_window, sqrt_s,
    wprime_mass, pthat, pythia, workers. seed: the root of every random stream (same seed, same sample).

    The Monte Carlo writes its file into a temporary directory (tempfile: $TMPDIR), read back at once: one
    implementation of each system's simulation, and the Sample holds what the file does (the provenance
    with wall_s, the Ising tau_int table), so sample.save(path) writes the file `physgan simulate` writes.
    """
    from physgan import config as cfg

    spec = _system(system)
    config = cfg.build(spec.SimulationConfig, {**settings, "seed": seed}, where=f"{spec.NAME} simulate")
    with tempfile.TemporaryDirectory(prefix="physgan-simulate-") as folder:
        path = Path(folder) / f"{spec.NAME}.h5"
        spec.simulate_to_file(path, config, quiet=quiet)
        sample = load_sample(path)
    sample.path = None
    return sample


def _system(name):
    from physgan.systems import get_system

    if not isinstance(name, str):
        raise UserError(f"system must be a name such as 'ising', not {type(name).__name__}")
    return get_system(name)


def _path(value, what: str):
    if isinstance(value, (str, os.PathLike)):
        return value
    raise UserError(f"{what}: expected a file path, not {type(value).__name__}")


# ---------------------------------------------------------------------------------------------
# Training


def train(data, out, *, preset: str | None = None, resume: bool = False, quiet: bool = False, **settings) -> Path:
    """Train a conditional WGAN on `data` (a Sample, or a sample file in any format physgan reads) into the
    run directory `out` (log.jsonl, checkpoints/last.pt and best.pt), as `physgan train` does. Returns the
    path of checkpoints/best.pt (the checkpoint the physics monitor scored best; load it with physgan.load).

    preset: "quick", "full" (the system's presets) or a .toml file: its [train] table; settings override it
    key by key (TrainConfig fields: steps, batch_size, group_size, n_critic, device, seed, ...; network=
    {...} merges into the preset's network table, as --set network.key=value does). resume: continue from
    out/checkpoints/last.pt with the same settings."""
    training(_input(data, "data", "<training data in memory>"), out, preset, settings, resume=resume, quiet=quiet)
    return Path(out) / "checkpoints" / "best.pt"


def training(data, out, preset: str | None, settings: dict, *, resume: bool = False, quiet: bool = False):
    """The one way a training run starts (physgan train and train): the preset's [train] table, overridden by
    `settings` (a nested mapping), built into a TrainConfig and trained. Returns the Trainer."""
    from physgan import config as cfg
    from physgan.gan.train import TrainConfig
    from physgan.gan.train import train as run_training
    from physgan.io import open_samples
    from physgan.pipeline import preset_path_values

    samples = open_samples(data)
    values = preset_path_values(samples.system, str(preset)).get("train", {}) if preset else {}
    config = cfg.build(TrainConfig, cfg.merge(values, settings), "train")
    return run_training(samples, out, config, resume=resume, quiet=quiet)


# ---------------------------------------------------------------------------------------------
# Generators


class Generator:
    """A trained generator, loaded from a checkpoint (physgan.load).

    system: its system's name; conditions: what it was trained on, {condition: (lowest, highest)} (Ising
    {"T": (1.8, 3.0)}; jets {"signal": (0.0, 1.0), "jet_pt": (250.0, 300.0)} in GeV); step: the training
    steps behind it; path: the checkpoint. sample() draws from it; asking outside the training range
    works but warns (stderr): the generator extrapolates there."""

    def __init__(self, checkpoint):
        from physgan.gan.sample import Sampler

        self._sampler = Sampler(_path(checkpoint, "load"))
        saved = self._sampler.checkpoint
        self.path = self._sampler.path
        self.system = self._sampler.system.NAME
        self.step = int(saved["step"])
        self.conditions = {name: (_shortest(low), _shortest(high)) for name, low, high in
                           zip(saved["conditions"], saved["condition_low"], saved["condition_high"])}

    def __repr__(self) -> str:
        ranges = ", ".join(f"{name} {low:g} .. {high:g}" for name, (low, high) in self.conditions.items())
        return f"<physgan.Generator: {self.system}, {self.step} steps, trained on {ranges}, from {self.path}>"

    def sample(self, *, n: int | None = None, seed: int = 0, refine_sweeps: int = 0, device: str = "cpu",
               batch_size: int = 1024, quiet: bool = False, like=None, adhere=(),
               adherence_steps: int = adherence.STEPS, **conditions) -> Sample:
        """Generate a Sample (source "gan") in memory, the samples `physgan sample` writes with the same
        settings (same seed and batch size, same samples).

        conditions, by the system's names (`physgan sample`'s options), as Python values or the command
        line's strings: Ising T=[2.0, 2.269] (or 2.0, or "1.5:3.5:9"), n lattices at each temperature (1000
        unless given); jets cls="wprime" (or ["wprime", "qcd"]; also class_=) and pt=(250, 300) in GeV, n jets
        of each class with their pT spread evenly over the window. Or like=: a Sample or sample file of this
        system (Monte Carlo to compare with), whose conditions are used sample by sample, n (1 unless given)
        generated per sample of it, as `physgan run` generates at its test Monte Carlo's conditions (a jets
        file's falling pT spectrum included). refine_sweeps: sweeps of the system's exact refinement after
        generation (Ising: a Metropolis pass and a Wolff cluster at each lattice's T); adhere: names of the
        generator's summaries (e.g. ["mass"]) that each sample's latent is moved towards, by adherence_steps
        steps (`physgan sample --adhere`); device: "cpu", "cuda" or "auto"; batch_size: samples per generator
        call (the random streams follow it)."""
        settings = {name: _whole(value, name) for name, value in
                    (("n", (1 if like is not None else 1000) if n is None else n), ("seed", seed),
                     ("refine_sweeps", refine_sweeps), ("batch_size", batch_size),
                     ("adherence_steps", adherence_steps))}
        settings["adhere"] = adhere
        if device not in ("cpu", "cuda", "auto"):
            raise UserError(f"device must be 'cpu', 'cuda' or 'auto', not {device!r}")
        n = settings.pop("n")  # by name: n at each condition the options say; like: n per sample of it
        if like is None:
            request = self._sampler.request(self._condition_options(conditions, n), **settings, device=device)
        else:
            request = self._sampler.request(conditions, n, like=_input(like, "like", "<like in memory>"),
                                            **settings, device=device)
        return Sample(self._sampler.arrays(request, quiet=quiet), self.system, source="gan",
                      provenance=self._sampler.provenance(request))

    def _condition_options(self, given: dict, n: int) -> dict:
        """Python values of the conditions -> the options `physgan sample` hands to the system's
        parse_conditions (the command line's strings after each Option's type), by Option.key."""
        declared = [option for option in self._sampler.system.SAMPLE_OPTIONS if not option.output]
        names = {alias: option for option in declared for alias in (option.key, *_python_names(option.key))}
        options = {option.key: None for option in declared}
        for name, value in given.items():
            if name not in names:
                takes = ", ".join(f"{(*_python_names(option.key), option.key)[0]}=" for option in declared)
                raise UserError(f"{name}= is not a condition of this {self.system} generator: it takes {takes} "
                                "and n=, seed=, refine_sweeps=, adhere=, adherence_steps=, device=, batch_size=")
            option = names[name]
            options[option.key] = None if value is None else _option_value(option, value, name)
        return {**options, "n": n}


def _shortest(value) -> float:
    """A float32 condition as the shortest decimal that reads back to it: 1.8, not 1.7999999523162842."""
    return float(np.format_float_positional(np.float32(value), unique=True, trim="-"))


def _python_names(key: str) -> tuple[str, ...]:
    """Keyword-argument spellings of an option key that is a Python keyword (class: cls or class_)."""
    if not keyword.iskeyword(key):
        return ()
    return ("cls", f"{key}_") if key == "class" else (f"{key}_",)


def _option_value(option, value, name: str):
    """A Python value as the command line's option would hand it on: its text (lists joined by commas; a
    repeatable option one text per element) through the option's type, within its choices."""
    items = list(value) if option.action == "append" and isinstance(value, (list, tuple)) else [value]
    parsed = []
    for item in items:
        try:
            parsed.append(option.type(_option_text(item, name)))
        except (TypeError, ValueError):
            raise UserError(f"{name}={value!r}: not a valid {getattr(option.type, '__name__', 'value')}") from None
        if option.choices is not None and parsed[-1] not in option.choices:
            raise UserError(f"{name}={value!r}: choose from {', '.join(option.choices)}")
    return parsed if option.action == "append" else parsed[0]


def _option_text(value, name: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        raise UserError(f"{name}={value!r}: expected a number, a string or a list of them, not a boolean")
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))  # the shortest text that reads back as the same float
    if isinstance(value, (list, tuple, range, np.ndarray)):
        items = np.asarray(value).ravel().tolist() if isinstance(value, np.ndarray) else list(value)
        nested = [item for item in items if not isinstance(item, (str, int, float, np.integer, np.floating))
                  or isinstance(item, (bool, np.bool_))]
        if not items or nested:
            raise UserError(f"{name}={value!r}: expected numbers or strings in the list"
                            + ("" if items else ", got an empty one"))
        return ",".join(_option_text(item, name) for item in items)
    raise UserError(f"{name}={value!r}: expected a number, a string or a list of them, not {type(value).__name__}")


def _whole(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise UserError(f"{name} must be a whole number, not {value!r}")
    return int(value)


def load(checkpoint) -> Generator:
    """A generator from a physgan checkpoint (checkpoints/best.pt or last.pt of a training run), read with
    torch.load(weights_only=True): no code in the file runs."""
    return Generator(checkpoint)


# ---------------------------------------------------------------------------------------------
# Validation


class Verdict:
    """The result of validate: passed (bool), verdict ("pass" or "fail"), checks (the verdict's rows:
    {"check", "measured", "threshold", "pass"}), metrics (everything metrics.json holds, docs/formats.md),
    out (the report directory, or None); table() is the text table `physgan validate` prints, line() its
    last line."""

    def __init__(self, metrics: dict, out=None):
        self.metrics = metrics
        self.out = None if out is None else Path(out)

    @property
    def verdict(self) -> str:
        return self.metrics["verdict"]

    @property
    def passed(self) -> bool:
        return self.metrics["verdict"] == "pass"

    @property
    def checks(self) -> list[dict]:
        return self.metrics["checks"]

    def table(self) -> str:
        from physgan.validation import verdict

        return verdict.table(self.metrics)

    def line(self) -> str:
        from physgan.validation.validate import verdict_line

        return verdict_line(self.metrics, self.out)

    def __repr__(self) -> str:
        failing = sum(not check["pass"] for check in self.checks)
        return f"<physgan.Verdict: {self.verdict.upper()}, {len(self.checks)} checks, {failing} failing>"


def validate(reference, generated, out=None, *, training=None, level: float = 0.01, threshold: float = 2.0,
             fidelity=None, seed: int = 0, classifier: bool = True, device: str = "cpu", pdf: bool = False,
             force: bool = False, quiet: bool = False, allow_pickle: bool = False) -> Verdict:
    """Judge `generated` against `reference` by physics observables (docs/validation.md), as `physgan
    validate` does; each a Sample or a sample file path (training too: the generator's training sample, for
    the memorisation check). Returns a Verdict.

    out: the report directory (report.html, metrics.json, plots/), replaced only with force; None writes
    nothing (no plots are drawn: the statistics alone, with the same metrics). level: the family-wise error
    rate (Holm); threshold: the effect size beyond which a significant difference fails; fidelity: a run
    preset's targets, the system's FidelityConfig or its [fidelity] table as a mapping; seed: of every
    random choice; classifier: run the classifier tests (on device); pdf: also PDF plots."""
    from physgan import config as cfg
    from physgan.io import open_samples
    from physgan.systems import get_system
    from physgan.validation.validate import validate as run_validation

    ref = _input(reference, "reference", "<reference in memory>")
    gen = _input(generated, "generated", "<generated in memory>")
    train_input = None if training is None else _input(training, "training", "<training in memory>")
    if isinstance(fidelity, Mapping):
        system = get_system(open_samples(ref, allow_pickle=allow_pickle).system)
        fidelity = cfg.build(system.FidelityConfig, dict(fidelity), "fidelity")
    metrics = run_validation(ref, gen, out, training=train_input, threshold=threshold, level=level, pdf=pdf,
                             force=force, quiet=quiet, allow_pickle=allow_pickle, seed=seed, classifier=classifier,
                             device=device, fidelity=fidelity)
    return Verdict(metrics, out)


def _input(value, what: str, label: str):
    """A Sample as the engine's in-memory Samples (called `label`), a path as it is."""
    from physgan.io import Samples

    if isinstance(value, Sample):
        return value._samples(label)
    if isinstance(value, (str, os.PathLike, Samples)):
        return value
    raise UserError(f"{what}: expected a physgan.Sample or a sample file path, not {type(value).__name__}")
