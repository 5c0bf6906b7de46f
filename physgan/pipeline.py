"""`physgan run SYSTEM --preset NAME --out RUN_DIR`: simulate -> train -> sample -> compare, in one directory.

    RUN_DIR/config.toml          the fully resolved configuration
    RUN_DIR/data/train.h5        Monte Carlo used for training
    RUN_DIR/data/test.h5         independent Monte Carlo (other seed, held-out conditions included)
    RUN_DIR/data/sources.json    the data files given instead (--train-data, --test-data): path, bytes,
                                 sha256, format, provenance; null for a file simulated in the run
    RUN_DIR/checkpoints/         last.pt, best.pt
    RUN_DIR/log.jsonl            training log
    RUN_DIR/samples/generated.h5 generated sample at the test conditions (with sample.adhere, adhering to the
                                 drawn summaries; refined, with sample.refine_sweeps)
    RUN_DIR/samples/generated_raw.h5, RUN_DIR/report_raw/   with refinement: the raw generator's sample and
                                 its validation (the same verdict; the network's own record)
    RUN_DIR/refinement/          with refinement: curve.json, curve.png, the main observables' error against K
    RUN_DIR/timings.json         wall time of every stage, the speed-up, the verdict and its checks
    RUN_DIR/.stage_times.json    stage times so far (what --resume keeps)
    RUN_DIR/report/              report.html, metrics.json, histograms.h5, plots/ (physgan validate; with
                                 plots/training.png, the training curves from log.jsonl)

The validation applies the preset's [fidelity] targets (the system's FidelityConfig) as checks of its one
verdict, beside the statistical and exact checks; `physgan run` exits 1 when that verdict fails.

Data files given with --train-data / --test-data replace that simulate stage. Before anything is written they
are opened (any format physgan reads) and checked against the preset's [simulate_train] / [simulate_test]:
the system, then the system's data_mismatch (Ising L; jets image size, classes, pT and mass windows); and
the two must not be one file. The stage "import train" / "import test" then stores each as
data/train.h5 / test.h5: a physgan HDF5 file copied byte for byte, any other format converted once
(io.save_as_physgan; the reader's work, e.g. the jets chain on constituents, is not repeated by every later
pass), so training, sampling, validation and --resume read the run's own files as before. data/sources.json
records the files given (written at the start); --resume compares them, as it compares config.toml (which
stays loadable as a preset). The speed-up needs the Monte Carlo's time: measured for a simulated file, the
provenance's wall_s for a given physgan Monte Carlo file (io.monte_carlo_seconds), else unknown, and then no
speed-up is stated.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from physgan import config as cfg
from physgan.gan import adherence
from physgan.errors import UserError

STAGE_TIMES = ".stage_times.json"  # the stage times so far, kept for --resume


@dataclass
class SampleConfig:
    """Sampling settings of a run."""

    n_per_condition: int = 1000
    """generated samples at each test condition"""
    batch_size: int = 1024
    """samples per generator call"""
    seed: int = 12345
    """seed of the latent draws"""
    refine_sweeps: int = 0
    """sweeps of the system's exact refinement after generation (0: the generator's output as it is)"""
    adhere: list[str] = field(default_factory=list)
    """summaries among train.hierarchical that each sample's latent is moved towards before it is made
    (physgan/gan/adherence.py; empty: none)"""
    adherence_steps: int = adherence.STEPS
    """with adhere: the steps of that move"""

    def __post_init__(self):
        if self.n_per_condition < 1 or self.batch_size < 1 or self.refine_sweeps < 0 or self.adherence_steps < 0:
            raise UserError("sample: n_per_condition and batch_size must be at least 1, refine_sweeps and "
                            "adherence_steps at least 0")


def preset_path_values(system_name: str, preset: str) -> dict:
    """A preset's mapping: one the system ships (its package's presets/NAME.toml) or a TOML file by path."""
    values = cfg.load_toml(preset) if preset.endswith(".toml") else shipped_preset(system_name, preset)
    if values.get("system", system_name) != system_name:
        raise UserError(f"preset {preset!r} is for system {values['system']!r}, not {system_name!r}")
    return values


def shipped_preset(system_name: str, name: str) -> dict:
    from physgan.systems import get_system

    folder = Path(get_system(system_name).__file__).parent / "presets"
    if not (folder / f"{name}.toml").is_file():
        known = sorted(p.stem for p in folder.glob("*.toml"))
        raise UserError(f"unknown preset {name!r} for {system_name} (known: {', '.join(known) or 'none'}; "
                        "or give a .toml path)")
    return cfg.load_toml(folder / f"{name}.toml")


def resolve(system, values: dict) -> dict:
    """Every stage's configuration object, built (and checked) from a preset mapping."""
    from physgan.gan.train import TrainConfig, build_network_config, feature_indices

    known = {"system", "simulate_train", "simulate_test", "train", "sample", "fidelity"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"unknown preset section {unknown[0]!r} (valid: {', '.join(sorted(known))})")
    train = cfg.build(TrainConfig, values.get("train", {}), "train")
    build_network_config(system, train.network)  # check it now, not after an hour of Monte Carlo
    sample = cfg.build(SampleConfig, values.get("sample", {}), "sample")
    if sample.refine_sweeps and getattr(system, "refine", None) is None:
        raise UserError(f"sample.refine_sweeps: the {system.NAME} system has no exact refinement")
    for option in ("hierarchical", "condition_anchors"):
        feature_indices(system, getattr(train, option), option)
    outside = [name for name in sample.adhere if name not in train.hierarchical]
    if outside:
        raise UserError(f"sample.adhere: {outside[0]!r} is not among train.hierarchical "
                        f"({', '.join(train.hierarchical) or 'none'}): only a drawn summary can be adhered to")
    return {"simulate_train": cfg.build(system.SimulationConfig, values.get("simulate_train", {}), "simulate_train"),
            "simulate_test": cfg.build(system.SimulationConfig, values.get("simulate_test", {}), "simulate_test"),
            "train": train,
            "sample": sample,
            "fidelity": cfg.build(system.FidelityConfig, values.get("fidelity", {}), "fidelity")}


def run(system_name: str, preset: str, run_dir, overrides: list[str] | None = None, *, force: bool = False,
        resume: bool = False, quiet: bool = False, train_data=None, test_data=None,
        allow_pickle: bool = False) -> dict:
    """Run every stage into run_dir. resume: continue a run that stopped (same settings): keep its Monte
    Carlo files and the stage times recorded with them, continue training from checkpoints/last.pt, then
    sample and compare again. Long CPU runs of the full presets span sessions this way. train_data,
    test_data: sample files (any format physgan reads; pickles only with allow_pickle) used instead of
    simulating that file (module docstring)."""
    from physgan.gan.sample import sample_to_file
    from physgan.gan.train import train
    from physgan.io import open_samples, save_as_physgan
    from physgan.systems import get_system
    from physgan.validation import verdict
    from physgan.validation.validate import speed_line, validate, verdict_line

    system = get_system(system_name)
    values = cfg.merge(preset_path_values(system_name, preset), cfg.parse_overrides(overrides))
    stages = resolve(system, values)
    given = given_data(system, stages, {"train": train_data, "test": test_data}, allow_pickle=allow_pickle)
    sources = {name: given[name]["record"] if name in given else None for name in ("train", "test")}
    run_dir = Path(run_dir)
    resolved = cfg.to_toml({"system": system_name, **{name: asdict(value) for name, value in stages.items()}})
    timings = _start_run_directory(run_dir, resolved, sources, force=force, resume=resume)
    # flushed: a log file (stdout not a terminal, so block-buffered) sees each stage when it starts
    say = (lambda text: None) if quiet else (lambda text: print(text, flush=True))

    def stage(name, action):
        say(f"[{name}] ...")
        started = time.perf_counter()
        result = action()
        timings[name] = time.perf_counter() - started
        (run_dir / STAGE_TIMES).write_text(json.dumps(timings))
        say(f"[{name}] done in {timings[name]:.1f} s")
        return result

    for data in ("train", "test"):
        file, name = run_dir / "data" / f"{data}.h5", f"{'import' if data in given else 'simulate'} {data}"
        if resume and file.exists() and name in timings:  # files appear only when complete
            say(f"[{name}] kept from the earlier start")
        elif data in given:
            stage(name, lambda: save_as_physgan(given[data]["samples"], file, sources[data], force=resume))
        else:
            stage(name, lambda: system.simulate_to_file(file, stages[f"simulate_{data}"], force=resume, quiet=quiet))
    continue_training = resume and (run_dir / "checkpoints/last.pt").exists()
    stage("train", lambda: train(run_dir / "data/train.h5", run_dir, stages["train"], resume=continue_training,
                                 quiet=quiet))
    test = open_samples(run_dir / "data/test.h5")
    sample, conditions = stages["sample"], system.generative.test_conditions(test)

    # with refinement, the raw generator's sample (the same latent draws without the sweeps) from the same pass
    raw_out = run_dir / "samples/generated_raw.h5" if sample.refine_sweeps else None
    sampling = stage("sample", lambda: sample_to_file(
        run_dir / "checkpoints/best.pt", run_dir / "samples/generated.h5", conditions, sample.n_per_condition,
        batch_size=sample.batch_size, device=stages["train"].device, seed=sample.seed,
        refine_sweeps=sample.refine_sweeps, raw_out=raw_out, adhere=sample.adhere,
        adherence_steps=sample.adherence_steps, force=resume, quiet=quiet))
    seconds = {data: timings[f"simulate {data}"] if sources[data] is None else sources[data]["monte_carlo_s"]
               for data in ("train", "test")}
    speed = {"monte_carlo": {"n": open_samples(run_dir / "data/train.h5").n + test.n,
                             "seconds": None if None in seconds.values() else sum(seconds.values()),
                             "time_from": {data: "run" if sources[data] is None else
                                           "provenance" if seconds[data] is not None else None for data in seconds}},
             "generator": {"n": sampling["n"], "seconds": sampling["seconds"], "device": sampling["device"]}}

    def judge(name: str, report: str) -> dict:
        return validate(run_dir / "data/test.h5", run_dir / "samples" / name, run_dir / report,
                        training=run_dir / "data/train.h5", speed=speed, force=resume, quiet=quiet,
                        fidelity=stages["fidelity"], training_log=run_dir / "log.jsonl")

    metrics = stage("validate", lambda: judge("generated.h5", "report"))
    raw = None
    if sample.refine_sweeps:  # the network's own record: the same latent draws without the sweeps, same verdict
        raw = stage("validate raw", lambda: judge("generated_raw.h5", "report_raw"))
        stage("refinement curve", lambda: refinement_curve(system, run_dir, sample.seed, quiet=quiet))
    summary = {"timings_s": {name: round(t, 2) for name, t in timings.items()},
               "total_s": round(sum(timings.values()), 2), "speed": metrics["speed"],
               "refine_sweeps": sample.refine_sweeps, "checks": metrics["checks"],
               "not_judged": metrics["not_judged"], "verdict": metrics["verdict"],
               "raw_generator": None if raw is None else {"checks": raw["checks"], "verdict": raw["verdict"]},
               "data_sources": sources}
    (run_dir / "timings.json").write_text(json.dumps(summary, indent=1))
    if raw is not None:
        say(f"the raw generator, without the {sample.refine_sweeps} refinement sweeps:")
        say(verdict.table(raw))
        say(f"raw generator's {verdict_line(raw, run_dir / 'report_raw')}")
        say(f"the refined sample ({sample.refine_sweeps} sweeps), the run's verdict:")
    say(verdict.table(metrics))
    say(verdict_line(metrics, run_dir / "report"))
    say(f"speed: {speed_line(metrics['speed'])}")
    say(f"run directory: {run_dir} (total {summary['total_s']:.0f} s)")
    return summary


def refinement_curve(system, run_dir: Path, seed: int, *, quiet: bool = False) -> dict:
    """RUN_DIR/refinement/curve.json and curve.png: the main observables' error against the test Monte Carlo
    after K = 0, 1, 2, 4, ... sweeps of the raw sample (system.refine.curve), the record of what
    refinement did and of the network before it."""
    from physgan.io import atomic_output, open_samples
    from physgan.validation import report

    def arrays(path):
        samples = open_samples(path)
        return {name: samples.read(name) for name in (*system.DATA_FIELDS, *system.CONDITIONS)}

    curve = system.refine.curve(arrays(run_dir / "data/test.h5"), arrays(run_dir / "samples/generated_raw.h5"),
                                (seed, 2))
    folder = run_dir / "refinement"
    folder.mkdir(exist_ok=True)
    with atomic_output(folder / "curve.json", force=True) as path:
        path.write_text(json.dumps(curve, indent=1))
    report.refinement_plot(curve, folder / "curve.png")
    if not quiet:
        print(curve_table(curve))
    return curve


def curve_table(curve: dict) -> str:
    """The largest |value| over the conditions per series and K, as a text table."""
    names = list(curve["series"])
    lines = ["K".rjust(4) + "".join(name.rjust(13) for name in names)]
    for k, sweeps in enumerate(curve["sweeps"]):
        worst = [max(curve["series"][name]["values"][k], key=abs) for name in names]
        lines.append(f"{sweeps:4d}" + "".join(f"{value:13.4g}" for value in worst))
    return "refinement curve, the largest difference from the test Monte Carlo over its conditions:\n" + "\n".join(lines)


def given_data(system, stages: dict, paths: dict, *, allow_pickle: bool = False) -> dict:
    """The data files given instead of simulating (paths: "train", "test" -> a path or None), opened and checked
    against the preset's simulate_train / simulate_test before anything is written: name -> {"samples", "record"}
    (record: io.file_record plus format, source, n, provenance and monte_carlo_s, as data/sources.json keeps it).
    Any mismatch is a UserError naming the option."""
    from physgan.io import file_record, monte_carlo_seconds, open_samples

    given = {}
    for name, path in paths.items():
        if path is None:
            continue
        option, section = f"--{name}-data", f"simulate_{name}"
        try:
            samples = open_samples(path, allow_pickle=allow_pickle)
        except UserError as exc:
            raise UserError(f"{option}: {exc}") from None
        if samples.system != system.NAME:
            raise UserError(f"{option} {path}: holds {samples.system} samples, but this is a {system.NAME} run")
        if samples.n == 0:
            raise UserError(f"{option} {path}: the file holds no samples")
        problem = system.data_mismatch(samples, stages[section], section)
        if problem:
            raise UserError(f"{option} {path}: {problem}")
        record = {**file_record(path), "format": samples.format, "source": samples.source, "n": samples.n,
                  "provenance": samples.provenance, "monte_carlo_s": monte_carlo_seconds(samples)}
        given[name] = {"samples": samples, "record": record}
    if len(given) == 2 and given["train"]["record"]["sha256"] == given["test"]["record"]["sha256"]:
        raise UserError("--train-data and --test-data are the same file: the test needs independent samples")
    return given


SOURCES = "data/sources.json"  # the data files given to the run (null: simulated)


def _start_run_directory(run_dir: Path, resolved: str, sources: dict, *, force: bool, resume: bool) -> dict:
    """Prepare run_dir for a new run (or, with resume, check it holds this run: the same settings and the same
    data files given); the stage times so far."""
    config = run_dir / "config.toml"
    if resume:
        if not config.exists():
            raise UserError(f"--resume: {run_dir} holds no run to continue")
        if config.read_text() != resolved:
            raise UserError(f"--resume: the settings differ from those the run started with ({config})")
        started = run_dir / SOURCES  # a run from before sources.json was recorded simulated both files
        before = json.loads(started.read_text()) if started.exists() else {"train": None, "test": None}
        for name in ("train", "test"):
            if _identity(before.get(name)) != _identity(sources[name]):
                raise UserError(f"--resume: the run started with {_describe(name, before.get(name))}, not "
                                f"{_describe(name, sources[name])} ({started})")
        times = run_dir / STAGE_TIMES
        return json.loads(times.read_text()) if times.exists() else {}
    if config.exists() and not force:
        raise UserError(f"{run_dir} already holds a run; pass --force to start it again from scratch "
                        "(or --resume to continue it)")
    if force:
        _clear_run(run_dir)
    (run_dir / "data").mkdir(parents=True, exist_ok=True)
    config.write_text(resolved)
    (run_dir / SOURCES).write_text(json.dumps(sources, indent=1) + "\n")
    return {}


def _identity(record: dict | None):
    return None if record is None else (record["path"], record["sha256"])


def _describe(name: str, record: dict | None) -> str:
    if record is None:
        return f"simulated {name} data"
    return f"--{name}-data {record['path']} (sha256 {record['sha256'][:12]}...)"


def _clear_run(run_dir: Path) -> None:
    """Remove what an earlier run wrote (only physgan's own files and folders)."""
    import shutil

    for name in ("config.toml", "log.jsonl", "timings.json", STAGE_TIMES):
        (run_dir / name).unlink(missing_ok=True)
    for name in ("data", "checkpoints", "samples", "report", "report_raw", "refinement"):
        shutil.rmtree(run_dir / name, ignore_errors=True)
