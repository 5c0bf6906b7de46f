"""Jet Monte Carlo: Pythia 8 events -> calorimeter cells -> FastJet -> LAGAN jet images (arXiv:1701.05927).

Signal: W' -> W Z with W -> q q' and Z -> nu nu, so the one visible boosted object is the W.
Background: QCD dijets (HardQCD:all) in a pT-hat window around the selected jet pT.
Per event the leading anti-kT R = 1.0 jet of the calorimeter cells is trimmed and selected on its
trimmed pT, |eta| and (optionally) mass; selected jets become images (reconstruction.describe).

Work is cut into tasks of at most TASK_JETS jets of one class, each with its own Pythia instance and
seed (a child of the shard's SeedSequence). The output depends on the seed and shard only: `workers`
only decides how many processes run the tasks, and the file lists the tasks in a fixed order.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from physgan.errors import UserError
from physgan.shards import shard_count, shard_seed
from physgan.systems.jets.clustering import JET_R, TRIM_FCUT, TRIM_R, leading_jets, trim
from physgan.systems.jets.detector import ETA_CELLS, ETA_MAX, PHI_CELLS, calorimeter_cells
from physgan.systems.jets.particles import Particles, jet_sums

CLASSES = {"wprime": 1, "qcd": 0}  # class name -> `signal` label (LAGAN: 1 = W', 0 = QCD)
TASK_JETS = 250  # jets per task: long enough to amortise Pythia's initialisation (~0.4 s)
MIN_BATCH, MAX_BATCH = 16, 256  # events per Pythia batch
MAX_EVENTS_WITHOUT_JETS = 10_000
INVISIBLE = (12, 14, 16)  # |PDG id| of neutrinos
PYTHIA_MAX_SEED = 900_000_000  # Random:seed range is 1 ... 900000000 (0 means "from the clock")
STAGES = ("init", "pythia", "clustering", "observables", "imaging")  # CPU time recorded per task


def parse_window(value, what: str) -> tuple[float, float]:
    """'lo:hi' (or 'lo,hi', or a pair of numbers) -> (lo, hi) with 0 <= lo < hi."""
    parts = (str(value).strip("[]() ").replace(",", ":").split(":") if isinstance(value, str)
             else list(value))
    try:
        lo, hi = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise UserError(f"{what} {value!r}: expected lo:hi in GeV, e.g. 250:300") from None
    if not 0 <= lo < hi < math.inf:
        raise UserError(f"{what} {value!r}: need 0 <= lo < hi")
    return lo, hi


def _window_text(window: tuple[float, float]) -> str:
    return f"{window[0]:g}:{window[1]:g}"


@dataclass
class JetsMCConfig:
    """Jet Monte Carlo settings (a recipe in datasets/ is a TOML file of these)."""

    n_per_class: int = 1000
    """selected jets per class (summed over shards); classes are balanced"""
    classes: list[str] = field(default_factory=lambda: ["wprime", "qcd"])
    """which classes: wprime (W' -> WZ, signal = 1), qcd (dijets, signal = 0); also "wprime,qcd" """
    pt: str = "250:300"
    """selection window on the trimmed jet pT in GeV, lo:hi"""
    eta_max: float = 2.0
    """selection |eta| < eta_max of the trimmed jet"""
    mass_window: str | None = None
    """optional selection window on the trimmed jet mass in GeV (the public LAGAN set: 60:100)"""
    sqrt_s: float = 14000.0
    """pp centre-of-mass energy in GeV"""
    wprime_mass: float = 800.0
    """W' mass in GeV; the W's pT has its Jacobian peak near half of it"""
    pthat: str | None = None
    """QCD pT-hat window lo:hi in GeV; default 0.8 x pt lo : 4/3 x pt hi (200:400 for 250:300)"""
    pythia: list[str] = field(default_factory=list)
    """extra Pythia settings read after each class's own, e.g. ["Tune:pp = 21"] (ATLAS A14 instead of
    the default Monash tune): a tune or shower variation for systematics. Random: settings are physgan's"""
    seed: int = 0
    """root of numpy SeedSequence: shard i of N uses SeedSequence(seed).spawn(N)[i]"""
    workers: int = 1
    """processes running the tasks (the output does not depend on it)"""

    def __post_init__(self):
        self.classes = [c.strip() for item in self.classes for c in str(item).split(",") if c.strip()]
        unknown = [c for c in self.classes if c not in CLASSES]
        if unknown or not self.classes or len(set(self.classes)) != len(self.classes):
            raise UserError(f"classes {','.join(self.classes)!r}: give each of {', '.join(CLASSES)} at most once")
        self.pt = _window_text(parse_window(self.pt, "pt"))
        if self.mass_window in ("", "none"):
            self.mass_window = None
        if self.mass_window is not None:
            self.mass_window = _window_text(parse_window(self.mass_window, "mass_window"))
        lo, hi = self.pt_window
        self.pthat = _window_text(parse_window(self.pthat, "pthat") if self.pthat else (0.8 * lo, 4 / 3 * hi))
        lines = [self.pythia] if isinstance(self.pythia, str) else self.pythia
        self.pythia = [str(line).strip() for line in lines]
        for line in self.pythia:
            _check_pythia_line(line)
        checks = [(self.n_per_class >= 1, f"n_per_class must be at least 1, got {self.n_per_class}"),
                  (self.eta_max > 0, f"eta_max must be positive, got {self.eta_max}"),
                  (self.sqrt_s > 0, f"sqrt_s must be positive, got {self.sqrt_s}"),
                  (self.wprime_mass > 0, f"wprime_mass must be positive, got {self.wprime_mass}"),
                  (self.seed >= 0, f"seed must be >= 0, got {self.seed}"),
                  (self.workers >= 1, f"workers must be at least 1, got {self.workers}")]
        for ok, message in checks:
            if not ok:
                raise UserError(message)

    @property
    def pt_window(self) -> tuple[float, float]:
        return parse_window(self.pt, "pt")


def _check_pythia_line(line: str) -> None:
    """A user's Pythia setting must be `Key = value`; the seed stays physgan's (reproducible shards)."""
    key = line.split("=")[0].strip()
    if "=" not in line or not key:
        raise UserError(f"pythia setting {line!r}: expected 'Key = value', e.g. 'Tune:pp = 21'")
    if key.lower().startswith("random:"):
        raise UserError(f"pythia setting {line!r}: the random seed is set by --seed and --shard")


def pythia_settings(config: JetsMCConfig, name: str) -> list[str]:
    """Every Pythia setting of a class except the seed (LAGAN's, from lukedeo/jet-generation), then the user's."""
    common = [f"Beams:eCM = {config.sqrt_s:g}", "Next:numberCount = 0", "Print:quiet = on"]
    if name == "wprime":
        process = ["NewGaugeBoson:ffbar2Wprime = on", "Wprime:coup2WZ = 1", f"34:m0 = {config.wprime_mass:g}",
                   "34:onMode = off", "34:onIfAny = 23 24", "24:onMode = off", "24:onIfAny = 1 2 3 4 5",
                   "23:onMode = off", "23:onIfAny = 12 14 16"]
    else:
        lo, hi = parse_window(config.pthat, "pthat")
        process = ["HardQCD:all = on", f"PhaseSpace:pTHatMin = {lo:g}", f"PhaseSpace:pTHatMax = {hi:g}"]
    return common + process + config.pythia


@dataclass
class Task:
    """One unit of reproducible work: n jets of one class from one Pythia seed."""

    name: str
    n: int
    pythia_seed: int


def plan(config: JetsMCConfig, shard: tuple[int, int]) -> list[Task]:
    """The shard's tasks, classes interleaved so any prefix of the file is roughly balanced."""
    n = shard_count(config.n_per_class, shard)
    if n == 0:
        raise UserError(f"n_per_class = {config.n_per_class} leaves shard {shard[0]}/{shard[1]} no jets")
    n_tasks = math.ceil(n / TASK_JETS)
    seeds = shard_seed(config.seed, shard).spawn(len(config.classes) * n_tasks)
    sizes = [shard_count(n, (i, n_tasks)) for i in range(n_tasks)]
    return [Task(name, sizes[i], int(seeds[i * len(config.classes) + c].generate_state(1)[0]) % PYTHIA_MAX_SEED + 1)
            for i in range(n_tasks) for c, name in enumerate(config.classes)]


@dataclass
class TaskResult:
    """A task's jets: sample-file fields (n,) / (n, 25, 25), trimmed particles, and its statistics."""

    fields: dict[str, np.ndarray]
    particles: Particles
    stats: dict


def visible_particles(batch) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """eta, phi, E of the visible final-state particles of a Pythia batch, and counts per event."""
    import awkward as ak

    def flat(array):
        return ak.to_numpy(ak.flatten(array))

    particles = batch["prt"]
    status, pdg = flat(particles["status"]), np.abs(flat(particles["id"]))
    visible = (status > 0) & ~np.isin(pdg, INVISIBLE)
    px, py, pz, e = (flat(particles["p"][c])[visible] for c in ("px", "py", "pz", "e"))
    event = np.repeat(np.arange(len(particles)), ak.to_numpy(ak.num(particles)))[visible]
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / np.maximum(pt, 1e-12))  # pt = 0 (along the beam): |eta| ~ 30, outside every cell
    return eta, np.arctan2(py, px), e, np.bincount(event, minlength=len(particles))


def select(trimmed, config: JetsMCConfig) -> np.ndarray:
    """Boolean mask of trimmed jets in the pT, |eta| and mass windows."""
    kinematics = jet_sums(trimmed.particles)
    lo, hi = config.pt_window
    keep = (kinematics["pt"] > lo) & (kinematics["pt"] < hi) & (np.abs(kinematics["eta"]) < config.eta_max)
    if config.mass_window is not None:
        m_lo, m_hi = parse_window(config.mass_window, "mass_window")
        keep &= (kinematics["mass"] > m_lo) & (kinematics["mass"] < m_hi)
    return keep


class _Clock:
    """CPU seconds per stage of a task (process time: other jobs on the machine do not inflate it)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._start = time.process_time()

    def lap(self, stage: str) -> None:
        now = time.process_time()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._start
        self._start = now


def _start_pythia(settings: list[str], seed: int):
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in settings + ["Random:setSeed = on", f"Random:seed = {seed}"]:
        if not pythia.readString(line):  # an unknown key or a bad value, from the user's settings
            raise UserError(f"Pythia rejected the setting {line!r}")
    if not pythia.init():
        raise UserError(f"Pythia failed to initialise with {'; '.join(settings)} (check sqrt_s, wprime_mass, pthat)")
    return pythia


def run_task(task: Task, config: JetsMCConfig) -> TaskResult:
    """Generate events until task.n jets pass the selection; describe them (images, tau_N, ...)."""
    from physgan.systems.jets.reconstruction import image, jet_fields

    clock = _Clock()
    pythia = _start_pythia(pythia_settings(config, task.name), task.pythia_seed)
    clock.lap("init")
    pieces, n_jets, n_events = [], 0, 0
    while n_jets < task.n:
        efficiency = n_jets / n_events if n_jets else 0.1
        batch = pythia.nextBatch(int(np.clip(1.2 * (task.n - n_jets) / efficiency, MIN_BATCH, MAX_BATCH)))
        n_events += len(batch)
        clock.lap("pythia")
        cells = calorimeter_cells(*visible_particles(batch))
        trimmed = trim(leading_jets(cells, config.pt_window[0]))  # trimming only lowers pT: pre-select
        trimmed = trimmed.take(np.flatnonzero(select(trimmed, config))[: task.n - n_jets])
        n_jets += trimmed.particles.n_jets
        clock.lap("clustering")
        fields = jet_fields(trimmed)
        clock.lap("observables")
        fields["image"] = image(trimmed)
        clock.lap("imaging")
        pieces.append((fields, trimmed.particles))
        if n_jets == 0 and n_events >= MAX_EVENTS_WITHOUT_JETS:
            raise UserError(f"no {task.name} jet passed the selection in {n_events} events "
                            f"(pt {config.pt}, |eta| < {config.eta_max:g}, mass {config.mass_window or 'any'}): "
                            "check the windows and --wprime-mass")
    fields = {name: np.concatenate([p[0][name] for p in pieces]) for name in pieces[0][0]}
    fields["signal"] = np.full(n_jets, CLASSES[task.name], dtype=np.int8)
    particles = Particles.concatenate([p[1] for p in pieces])
    stats = {"class": task.name, "pythia_seed": task.pythia_seed, "events": n_events, "jets": n_jets,
             "sigma_gen_mb": pythia.infoPython().sigmaGen(),
             **{f"{stage}_cpu_s": clock.seconds.get(stage, 0.0) for stage in STAGES}}
    return TaskResult(fields, particles, stats)


def _run_task_args(args) -> TaskResult:
    return run_task(*args)


def generate(config: JetsMCConfig, shard: tuple[int, int] = (0, 1)):
    """Yield the TaskResult of every task of the shard, in plan order (workers > 1: in parallel)."""
    tasks = plan(config, shard)
    if config.workers == 1 or len(tasks) == 1:
        for task in tasks:
            yield run_task(task, config)
        return
    import multiprocessing

    # spawn, not fork: the parent may hold torch's threads, which do not survive a fork
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(config.workers, len(tasks))) as pool:
        yield from pool.imap(_run_task_args, [(task, config) for task in tasks], chunksize=1)


def generator_settings(config: JetsMCConfig, shard: tuple[int, int]) -> dict:
    """What made the jets, for the file's provenance: library versions, every Pythia setting, the chain."""
    from importlib.metadata import version

    from physgan.systems.jets.images import HALF_WIDTH, PIXELS

    return {
        "versions": {lib: version(lib) for lib in ("pythia8mc", "fastjet", "awkward", "uproot")},
        "seed_sequence": f"SeedSequence({config.seed}).spawn({shard[1]})[{shard[0]}], one child per task",
        "pythia_settings": {name: pythia_settings(config, name) for name in config.classes},
        "task_jets": TASK_JETS,
        "chain": {"detector": f"cells: {ETA_CELLS} in eta over |eta| < {ETA_MAX:g}, {PHI_CELLS} in phi; "
                              "massless at the cell centre, pT = E/cosh(eta)",
                  "visible": "final-state particles except neutrinos",
                  "jets": f"anti-kT R = {JET_R:g}, leading jet per event",
                  "trimming": f"kT subjets R = {TRIM_R:g}, f_cut = {TRIM_FCUT:g} of the jet pT",
                  "nsubjettiness": "normalised measure, beta = 1, R0 = 1, OnePass WTA kT axes",
                  "image": f"{PIXELS} x {PIXELS} over [-{HALF_WIDTH:g}, {HALF_WIDTH:g}]^2, pixel = pT; "
                           "translate, rotate, flip on particles before pixelation"},
    }


def write_file(path, config: JetsMCConfig, shard: tuple[int, int] = (0, 1), *, force=False, quiet=False,
               root=None) -> int:
    """Run the Monte Carlo into a jets sample file (and a ROOT file with the constituents if `root`). The
    provenance records the call's wall time (wall_s)."""
    from physgan.io import SampleWriter, provenance
    from physgan.progress import progress_bar
    from physgan.systems.jets.formats import FIELD_TYPES, RootWriter

    started = time.perf_counter()
    settings = asdict(config)
    # the jets do not depend on the number of processes: keep it out of `config`, so shards run with
    # different --workers still merge
    workers = settings.pop("workers")
    prov = provenance(settings, shard=f"{shard[0]}/{shard[1]}", workers=workers,
                      generator=generator_settings(config, shard))
    stats = []
    total = len(config.classes) * shard_count(config.n_per_class, shard)
    with contextlib.ExitStack() as stack:
        writer = stack.enter_context(SampleWriter(path, system="jets", source="mc", provenance=prov, force=force))
        root_writer = stack.enter_context(RootWriter(root, provenance=prov, force=force)) if root else None
        bar = stack.enter_context(progress_bar(total=total, desc="jets", quiet=quiet))
        for result in generate(config, shard):
            writer.append(**{name: result.fields[name] for name in FIELD_TYPES})
            if root_writer is not None:
                root_writer.extend(result.fields, result.particles)
            stats.append(result.stats)
            bar.update(result.stats["jets"])
        writer.add_table("mc", {key: [s[key] for s in stats] for key in stats[0]})
        prov["wall_s"] = round(time.perf_counter() - started, 3)  # both writers store it when they close
    return sum(s["jets"] for s in stats)


def data_mismatch(samples, config: JetsMCConfig, section: str) -> str | None:
    """interface.System.data_mismatch: a file given to `physgan run` must hold 25 x 25 images, exactly the
    preset's classes, and only jets that the preset's selection would keep: every stored jet_pt (and, where
    the preset has a mass window, jet_mass) within its window, ends included (the stored values are float32
    roundings of a selection made in float64). Jets are not dropped to make a file fit: the file is the
    user's data, so a window that does not cover it is a mistake to point out, not to repair."""
    from physgan.systems.jets.images import PIXELS

    shape = tuple(samples.fields["image"][0])
    if shape != (PIXELS, PIXELS):
        return f"jet images of {' x '.join(map(str, shape))} pixels, but physgan's jets are {PIXELS} x {PIXELS}"
    names = {label: name for name, label in CLASSES.items()}
    found = sorted(names.get(int(label), str(label)) for label in np.unique(samples.read("signal")))
    if found != sorted(config.classes):
        return (f"jets of the classes {','.join(found)}, but the preset's {section}.classes are "
                f"{','.join(config.classes)} (--set {section}.classes={','.join(found)} to use it)")
    windows = [("jet_pt", "pt", config.pt)] + ([("jet_mass", "mass_window", config.mass_window)]
                                               if config.mass_window is not None else [])
    for field_name, key, window in windows:
        lo, hi = parse_window(window, key)
        values = samples.read(field_name).astype(np.float64)
        outside = np.count_nonzero(~((values >= lo) & (values <= hi)))  # NaN counts as outside
        if outside:
            span = f"{np.nanmin(values):.1f} to {np.nanmax(values):.1f} GeV" if np.isfinite(values).any() else "NaN"
            return (f"{outside} of {len(values)} jets have {field_name} outside the preset's {section}.{key} "
                    f"{window} GeV (the file's range: {span}); give --set {section}.{key}=LO:HI covering it")
    return None
