"""`physgan run SYSTEM --preset NAME --out RUN_DIR`: simulate -> train -> sample -> compare, in one directory.

    RUN_DIR/config.toml          the fully resolved configuration
    RUN_DIR/data/train.h5        Monte Carlo used for training
    RUN_DIR/data/test.h5         independent Monte Carlo (other seed, held-out conditions included)
    RUN_DIR/checkpoints/         last.pt, best.pt
    RUN_DIR/log.jsonl            training log
    RUN_DIR/samples/generated.h5 generated sample at the test conditions (refined, with sample.refine_sweeps)
    RUN_DIR/samples/generated_raw.h5, RUN_DIR/report_raw/   with refinement: the raw generator's sample and
                                 its validation (the same verdict; the network's own record)
    RUN_DIR/timings.json         wall time of every stage, the speed-up, the verdict and its checks
    RUN_DIR/.stage_times.json    stage times so far (what --resume keeps)
    RUN_DIR/report/              report.html, metrics.json, plots/ (physgan validate)

The validation applies the preset's [fidelity] targets (the system's FidelityConfig) as checks of its one
verdict, beside the statistical and exact checks; `physgan run` exits 1 when that verdict fails.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from physgan import config as cfg
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

    def __post_init__(self):
        if self.n_per_condition < 1 or self.batch_size < 1 or self.refine_sweeps < 0:
            raise UserError("sample: n_per_condition and batch_size must be at least 1, refine_sweeps at least 0")


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
    return {"simulate_train": cfg.build(system.SimulationConfig, values.get("simulate_train", {}), "simulate_train"),
            "simulate_test": cfg.build(system.SimulationConfig, values.get("simulate_test", {}), "simulate_test"),
            "train": train,
            "sample": sample,
            "fidelity": cfg.build(system.FidelityConfig, values.get("fidelity", {}), "fidelity")}


def run(system_name: str, preset: str, run_dir, overrides: list[str] | None = None, *, force: bool = False,
        resume: bool = False, quiet: bool = False) -> dict:
    """Run every stage into run_dir. resume: continue a run that stopped (same settings): keep its Monte
    Carlo files and the stage times recorded with them, continue training from checkpoints/last.pt, then
    sample and compare again. Long CPU runs of the full presets span sessions this way."""
    from physgan.gan.sample import sample_to_file
    from physgan.gan.train import train
    from physgan.io import open_samples
    from physgan.systems import get_system
    from physgan.validation import verdict
    from physgan.validation.validate import speed_line, validate, verdict_line

    system = get_system(system_name)
    values = cfg.merge(preset_path_values(system_name, preset), cfg.parse_overrides(overrides))
    stages = resolve(system, values)
    run_dir = Path(run_dir)
    resolved = cfg.to_toml({"system": system_name, **{name: asdict(value) for name, value in stages.items()}})
    timings = _start_run_directory(run_dir, resolved, force=force, resume=resume)
    say = (lambda text: None) if quiet else print

    def stage(name, action):
        say(f"[{name}] ...")
        started = time.perf_counter()
        result = action()
        timings[name] = time.perf_counter() - started
        (run_dir / STAGE_TIMES).write_text(json.dumps(timings))
        say(f"[{name}] done in {timings[name]:.1f} s")
        return result

    for name, file in (("simulate train", "train.h5"), ("simulate test", "test.h5")):
        config = stages[name.replace(" ", "_")]
        if resume and (run_dir / "data" / file).exists() and name in timings:  # files appear only when complete
            say(f"[{name}] kept from the earlier start")
        else:
            stage(name, lambda: system.simulate_to_file(run_dir / "data" / file, config, force=resume, quiet=quiet))
    continue_training = resume and (run_dir / "checkpoints/last.pt").exists()
    stage("train", lambda: train(run_dir / "data/train.h5", run_dir, stages["train"], resume=continue_training,
                                 quiet=quiet))
    test = open_samples(run_dir / "data/test.h5")
    sample, conditions = stages["sample"], system.generative.test_conditions(test)

    def generate(name: str, sweeps: int) -> dict:
        return sample_to_file(run_dir / "checkpoints/best.pt", run_dir / "samples" / name, conditions,
                              sample.n_per_condition, batch_size=sample.batch_size, device=stages["train"].device,
                              seed=sample.seed, refine_sweeps=sweeps, force=resume, quiet=quiet)

    sampling = stage("sample", lambda: generate("generated.h5", sample.refine_sweeps))
    speed = {"monte_carlo": {"n": open_samples(run_dir / "data/train.h5").n + test.n,
                             "seconds": timings["simulate train"] + timings["simulate test"]},
             "generator": {"n": sampling["n"], "seconds": sampling["seconds"], "device": sampling["device"]}}

    def judge(name: str, report: str) -> dict:
        return validate(run_dir / "data/test.h5", run_dir / "samples" / name, run_dir / report,
                        training=run_dir / "data/train.h5", speed=speed, force=resume, quiet=quiet,
                        fidelity=stages["fidelity"])

    metrics = stage("validate", lambda: judge("generated.h5", "report"))
    raw = None
    if sample.refine_sweeps:  # the network's own record: the same latent draws without the sweeps, same verdict
        stage("sample raw", lambda: generate("generated_raw.h5", 0))
        raw = stage("validate raw", lambda: judge("generated_raw.h5", "report_raw"))
    summary = {"timings_s": {name: round(t, 2) for name, t in timings.items()},
               "total_s": round(sum(timings.values()), 2), "speed": metrics["speed"],
               "refine_sweeps": sample.refine_sweeps, "checks": metrics["checks"],
               "not_judged": metrics["not_judged"], "verdict": metrics["verdict"],
               "raw_generator": None if raw is None else {"checks": raw["checks"], "verdict": raw["verdict"]}}
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


def _start_run_directory(run_dir: Path, resolved: str, *, force: bool, resume: bool) -> dict:
    """Prepare run_dir for a new run (or, with resume, check it holds this run); the stage times so far."""
    config = run_dir / "config.toml"
    if resume:
        if not config.exists():
            raise UserError(f"--resume: {run_dir} holds no run to continue")
        if config.read_text() != resolved:
            raise UserError(f"--resume: the settings differ from those the run started with ({config})")
        times = run_dir / STAGE_TIMES
        return json.loads(times.read_text()) if times.exists() else {}
    if config.exists() and not force:
        raise UserError(f"{run_dir} already holds a run; pass --force to start it again from scratch "
                        "(or --resume to continue it)")
    if force:
        _clear_run(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config.write_text(resolved)
    return {}


def _clear_run(run_dir: Path) -> None:
    """Remove what an earlier run wrote (only physgan's own files and folders)."""
    import shutil

    for name in ("config.toml", "log.jsonl", "timings.json", STAGE_TIMES):
        (run_dir / name).unlink(missing_ok=True)
    for name in ("data", "checkpoints", "samples", "report", "report_raw"):
        shutil.rmtree(run_dir / name, ignore_errors=True)
