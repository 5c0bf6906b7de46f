"""physgan command line: parse, call the library, turn user mistakes into one line and exit status 2."""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys

from physgan import __version__
from physgan.errors import UserError
from physgan.gan import adherence

EXAMPLES = """\
examples:
  physgan run ising --preset quick --out runs/quick
  physgan train --data data/ising_L32.h5 --out runs/L32 --preset full --set steps=20000
  physgan sample --checkpoint runs/L32/checkpoints/best.pt --T 1.8,2.269,3.0 --n-per-temp 10000 --out gen.h5
  physgan sample --checkpoint runs/jets/checkpoints/best.pt --class wprime,qcd --pt 250:300 --n 100000 --out gen.h5
  physgan validate --reference data/test.h5 --generated gen.h5 --out report/
  physgan simulate ising --L 32 --temps 1.5:3.5:24 --n-per-temp 5000 --seed 0 --out data/ising_L32.h5
  physgan simulate --recipe datasets/ising_L32.toml --out data/ising_L32.h5
  physgan simulate ising --L 64 --temps 2.269 --n-per-temp 1000 --shard 3/8 --out data/shard3.h5
  physgan simulate jets --n-per-class 10000 --classes wprime,qcd --workers 2 --out data/jets.h5 --root data/jets.root
  physgan merge data/shard*.h5 --out data/merged.h5
  physgan inspect data/ising_L32.h5
  physgan observables data/ising_L32.h5
"""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr (the contract for every user error)."""

    def error(self, message):
        raise UserError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="physgan", description="Physics-validated generative fast simulation: Monte Carlo, "
                    "conditional WGANs, and physics validation.", epilog=EXAMPLES,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"physgan {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    _add_run(commands)
    _add_simulate(commands)
    _add_train(commands)
    _add_sample(commands)
    _add_validate(commands)
    _add_merge(commands)
    _add_inspect(commands)
    _add_observables(commands)
    return parser


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated list of names (--adhere mass,girth)."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _command(commands, name: str, help: str, examples: str):
    return commands.add_parser(name, help=help, description=help, epilog="examples:\n" + examples,
                               formatter_class=argparse.RawDescriptionHelpFormatter)


def _add_output(p) -> None:
    p.add_argument("--out", required=True, help="output file (written to a temporary name, renamed when complete)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def _add_system_options(p, attribute: str, systems=None) -> None:
    """One argument group per system with the options it declares for this command (interface.Option; its
    `attribute`: SIMULATE_OPTIONS or SAMPLE_OPTIONS). A flag two systems declare is added once, in the
    first one's group (the other's says it takes it too), and must parse the same way for both."""
    from physgan.systems import all_systems

    first = {}  # flag -> (system name, option)
    for system in all_systems() if systems is None else systems:
        group, shared = p.add_argument_group(system.NAME), []
        for option in getattr(system, attribute):
            if option.flag not in first:
                first[option.flag] = (system.NAME, option)
                group.add_argument(option.flag, dest=_dest(option), help=option.help, **_parsing(option))
                continue
            owner, earlier = first[option.flag]
            if _parsing(earlier) != _parsing(option) or earlier.output != option.output:
                raise TypeError(f"the systems {owner} and {system.NAME} declare {option.flag} differently")
            shared.append(f"{option.flag} (see {owner})")
        if shared:
            group.description = f"also takes {', '.join(shared)}"


def _dest(option) -> str:
    return f"system option {option.flag}"  # never the dest of one of the command's own options


def _parsing(option) -> dict:
    """How argparse reads a system's option; the metavar defaults to the flag in capitals, as argparse's own
    (with choices: the choices)."""
    metavar = option.metavar
    if metavar is None and option.choices is None:
        metavar = option.flag.lstrip("-").replace("-", "_").upper()
    return {"type": option.type, "action": option.action, "choices": option.choices, "metavar": metavar}


def _declared(args, attribute: str):
    """(system, option, value) for every option the systems declare for this command (value None: not given)."""
    from physgan.systems import all_systems

    for system in all_systems():
        for option in getattr(system, attribute):
            yield system, option, getattr(args, _dest(option))


def _given_options(args, attribute: str) -> dict:
    """flag -> (value, systems declaring it) for every system option given on the command line."""
    given = {}
    for system, option, value in _declared(args, attribute):
        if value is not None:
            given.setdefault(option.flag, (value, []))[1].append(system.NAME)
    return given


def _system_values(args, attribute: str, system) -> tuple[dict, dict]:
    """The values of `system`'s options given on the command line by key: (settings, outputs)
    (interface.Option.output). An option that only other systems declare is a mistake."""
    mine = {option.flag: option for option in getattr(system, attribute)}
    settings, outputs = {}, {}
    for flag, (value, owners) in _given_options(args, attribute).items():
        if flag not in mine:
            raise UserError(f"{flag} is an option of {' and '.join(owners)}, not of {system.NAME}")
        (outputs if mine[flag].output else settings)[mine[flag].key] = value
    return settings, outputs


def _add_simulate(commands) -> None:
    from physgan.systems import system_names

    p = _command(commands, "simulate", "Run Monte Carlo and write a sample file.", """\
  physgan simulate ising --L 32 --temps 1.5:3.5:24 --n-per-temp 5000 --seed 0 --out data/ising_L32.h5
  physgan simulate ising --L 16 --temps 2.0,2.269,3.0 --n-per-temp 2000 --algorithm wolff --out ising.h5
  physgan simulate --recipe datasets/ising_L32.toml --out data/ising_L32.h5
  physgan simulate ising --L 64 --temps 2.269 --n-per-temp 8000 --shard 0/4 --out shard0.h5
  physgan simulate jets --n-per-class 10000 --classes wprime,qcd --out data/jets.h5 --root data/jets.root
  physgan simulate jets --n-per-class 2000 --pt 250:300 --mass-window 60:100 --workers 2 --seed 7 --out lagan.h5
  physgan simulate --recipe datasets/jets_lagan.toml --shard 3/100 --out data/jets_shard3.h5
  physgan simulate jets --n-per-class 10000 --pythia 'Tune:pp = 21' --seed 3 --out a14.h5   # another tune
options given on the command line override the recipe; --set key=value overrides any setting.""")
    p.add_argument("system", nargs="?", choices=system_names(), help="the physical system (or take it from --recipe)")
    p.add_argument("--recipe", help="TOML recipe (datasets/*.toml) holding the settings")
    p.add_argument("--seed", type=int, help="root random seed (default 0)")
    p.add_argument("--shard", help="i/N: this job's part of a sharded run (seeds SeedSequence(seed).spawn(N)[i])")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], help="where the Metropolis updates run (default cpu)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any setting, e.g. --set chains=128")
    _add_system_options(p, "SIMULATE_OPTIONS")
    _add_output(p)
    p.set_defaults(run=_simulate)


def _add_run(commands) -> None:
    from physgan.systems import system_names

    p = _command(commands, "run", "Simulate, train, sample and compare in one run directory. Exit status 0: the "
                 "verdict passes; 1: it fails (everything written all the same); 2: a usage or input error.", """\
  physgan run ising --preset quick --out runs/quick
  physgan run ising --preset full --out runs/full --set train.device=cuda
  physgan run ising --preset full --out runs/full --set train.device=cuda --resume
  physgan run jets --preset quick --out runs/jets_quick
  physgan run ising --preset my_preset.toml --out runs/mine
  physgan run jets --preset quick --train-data lagan_train.h5 --test-data lagan_test.h5 --out runs/lagan""")
    p.add_argument("system", choices=system_names())
    p.add_argument("--preset", default="quick", help="quick, full, or a TOML file (default quick)")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a preset value")
    p.add_argument("--train-data", metavar="FILE", help="train on this sample file (any supported format) instead "
                   "of simulating it; checked against the preset's [simulate_train] first")
    p.add_argument("--test-data", metavar="FILE", help="validate against this sample file instead of simulating "
                   "it; checked against the preset's [simulate_test] first")
    p.add_argument("--allow-pickle", action="store_true", help="read Python pickles given as data (trusted files only)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--force", action="store_true", help="replace an earlier run in the directory")
    p.add_argument("--resume", action="store_true",
                   help="continue a run that stopped (same settings): keep its Monte Carlo, resume training")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(run=_run)


def _add_train(commands) -> None:
    p = _command(commands, "train", "Train a conditional WGAN on a sample file.", """\
  physgan train --data data/ising_L16.h5 --out runs/L16 --preset quick
  physgan train --data data/ising_L32.h5 --out runs/L32 --preset full --set steps=20000 --device cuda
  physgan train --data data/ising_L32.h5 --out runs/L32 --preset full --resume
  torchrun --nproc_per_node=2 -m physgan train --data data/ising_L32.h5 --out runs/ddp --preset full""")
    p.add_argument("--data", required=True, help="training sample file (any supported format)")
    p.add_argument("--out", required=True, help="run directory (log.jsonl, checkpoints/)")
    p.add_argument("--preset", help="the [train] table of a preset (quick, full) or of a TOML file")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a training setting")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"])
    p.add_argument("--seed", type=int)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(run=_train)


def _add_sample(commands) -> None:
    p = _command(commands, "sample", "Generate samples from a checkpoint (same file format as the Monte Carlo).", """\
  physgan sample --checkpoint runs/L32/checkpoints/best.pt --T 1.8,2.269,3.0 --n-per-temp 10000 --out gen.h5
  physgan sample --checkpoint best.pt --T 1.5:3.5:41 --n-per-temp 1000 --batch-size 4096 --device cuda --out scan.h5
  physgan sample --checkpoint runs/jets/checkpoints/best.pt --class wprime,qcd --pt 250:300 --n 100000 --out gen.h5 --root gen.root
  physgan sample --checkpoint runs/jets/checkpoints/best.pt --like my_monte_carlo.h5 --out gen.h5""")
    p.add_argument("--checkpoint", required=True)
    _add_system_options(p, "SAMPLE_OPTIONS")
    p.add_argument("--n-per-temp", "--n", dest="n", type=int,
                   help="samples per condition: Ising per temperature, jets per class (default 1000); with --like, "
                   "per sample of that file (default 1)")
    p.add_argument("--like", metavar="FILE", help="generate at the conditions of this sample file (e.g. the Monte Carlo "
                   "to compare with), sample by sample, instead of conditions given by name")
    p.add_argument("--refine-sweeps", type=int, default=0, metavar="K",
                   help="K sweeps of the system's exact update after generation (Ising: a Metropolis pass and a Wolff "
                   "cluster at each lattice's T), recorded in the file's provenance (default 0: the generator's output)")
    p.add_argument("--adhere", metavar="NAMES", type=_names, default=(),
                   help="move each sample's latent towards the summaries drawn for it, these of the generator's "
                   "(train.hierarchical; e.g. mass), recorded in the provenance: the jets full preset's "
                   "sample.adhere (docs/training.md, \"Sampling and refinement\")")
    p.add_argument("--adherence-steps", type=int, default=adherence.STEPS, metavar="N",
                   help=f"with --adhere: the steps of that move (default {adherence.STEPS})")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto")
    p.add_argument("--seed", type=int, default=0)
    _add_output(p)
    p.set_defaults(run=_sample)


def _add_validate(commands) -> None:
    p = _command(commands, "validate", "Judge a generated sample against a reference by physics observables: "
                 "report.html, metrics.json and plots. Exit status 0: the verdict passes; 1: it fails; 2: a usage "
                 "or input error.", """\
  physgan validate --reference runs/quick/data/test.h5 --generated runs/quick/samples/generated.h5 --out report/
  physgan validate --reference mc.h5 --generated gen.h5 --out report/ --threshold 3 --pdf --force
  physgan validate --reference test.h5 --generated gen.h5 --train train.h5 --out report/   # memorisation""")
    p.add_argument("--reference", required=True, help="reference sample (Monte Carlo), any supported format")
    p.add_argument("--generated", required=True, help="the sample to judge")
    p.add_argument("--train", metavar="FILE", help="the generator's training sample: checks memorisation "
                   "(nearest training sample of generated vs reference samples); without it, not checked")
    p.add_argument("--out", required=True, help="report directory (report.html, metrics.json, plots/)")
    p.add_argument("--threshold", type=float, default=2.0,
                   help="effect size (W1 over the median W1 of the permutation null) beyond which a significant "
                   "difference fails (default 2)")
    p.add_argument("--level", type=float, default=0.01,
                   help="family-wise error rate of the significance tests, Holm-corrected over all comparisons "
                   "(default 0.01)")
    p.add_argument("--pdf", action="store_true", help="also write the plots as PDF")
    p.add_argument("--no-classifier", action="store_true", help="skip the classifier two-sample test")
    p.add_argument("--allow-pickle", action="store_true", help="read Python pickles (trusted files only)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
    p.add_argument("--force", action="store_true", help="replace an existing report directory")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(run=_validate)


def _add_merge(commands) -> None:
    p = _command(commands, "merge", "Join the shard files of one sharded simulation.", """\
  physgan merge data/shard0.h5 data/shard1.h5 data/shard2.h5 data/shard3.h5 --out data/all.h5""")
    p.add_argument("shards", nargs="+", help="every shard file i/N of one run")
    _add_output(p)
    p.set_defaults(run=_merge)


def _add_inspect(commands) -> None:
    p = _command(commands, "inspect", "Show what a sample file holds: system, format, N, shapes, conditions, provenance.",
                 """\
  physgan inspect data/ising_L32.h5
  physgan inspect Ising2DFM_reSample_L40_T=All.pkl --allow-pickle""")
    p.add_argument("file")
    p.add_argument("--allow-pickle", action="store_true", help="read Python pickles (they can run code: trusted files only)")
    p.set_defaults(run=_inspect)


def _add_observables(commands) -> None:
    p = _command(commands, "observables", "Measure a sample file's physics observables per condition, with "
                 "standard errors, next to exact values where known.", """\
  physgan observables data/ising_L32.h5""")
    p.add_argument("file")
    p.add_argument("--allow-pickle", action="store_true", help="read Python pickles (trusted files only)")
    p.set_defaults(run=_observables)


def _simulate(args) -> None:
    from physgan import config as cfg
    from physgan.shards import parse_shard
    from physgan.systems import get_system

    recipe = cfg.load_toml(args.recipe) if args.recipe else {}
    system_name = args.system or recipe.get("system")
    if system_name is None:
        raise UserError("say which system to simulate (physgan simulate ising ...) or give --recipe")
    if args.system and recipe.get("system", args.system) != args.system:
        raise UserError(f"--recipe {args.recipe} is for system {recipe['system']!r}, not {args.system!r}")
    system = get_system(system_name)
    settings, outputs = _system_values(args, "SIMULATE_OPTIONS", system)
    common = {k: v for k, v in (("seed", args.seed), ("device", args.device)) if v is not None}
    values = cfg.merge(cfg.merge(recipe.get("simulate", {}), cfg.parse_overrides(args.set)), {**common, **settings})
    config = cfg.build(system.SimulationConfig, values, where="simulate")
    n = system.simulate_to_file(args.out, config, parse_shard(args.shard), force=args.force, quiet=args.quiet,
                                **outputs)
    if not args.quiet:
        print(f"wrote {n} {system.NAME} samples to {args.out}")


def _run(args) -> int:
    from physgan.pipeline import run

    if args.force and args.resume:
        raise UserError("--force starts the run again, --resume continues it: choose one")
    summary = run(args.system, args.preset, args.out, args.set, force=args.force, resume=args.resume,
                  quiet=args.quiet, train_data=args.train_data, test_data=args.test_data,
                  allow_pickle=args.allow_pickle)
    return 0 if summary["verdict"] == "pass" else 1


def _train(args) -> None:
    from physgan import config as cfg
    from physgan.api import training  # physgan.train's engine: preset, overrides, TrainConfig, training

    options = {k: v for k, v in (("device", args.device), ("seed", args.seed)) if v is not None}
    trainer = training(args.data, args.out, args.preset, cfg.merge(cfg.parse_overrides(args.set), options),
                       resume=args.resume, quiet=args.quiet)
    if not args.quiet and trainer.rank == 0:
        print(f"trained {trainer.step} steps; checkpoints in {args.out}/checkpoints (best physics score "
              f"{trainer.best_score:.3g})")


def _sample(args) -> None:
    from physgan.gan.sample import sample_to_file

    # Only the checkpoint says which system it is: every system's conditions go to its parse_conditions by
    # key (None where not given), the outputs given to sample_to_file.
    options, outputs = {}, {}
    for _, option, value in _declared(args, "SAMPLE_OPTIONS"):
        if not option.output:
            options[option.key] = value
        elif value is not None:
            outputs[option.key] = value
    n = args.n if args.n is not None else 1 if args.like else 1000
    timing = sample_to_file(args.checkpoint, args.out, {**options, "n": n}, n, batch_size=args.batch_size,
                            device=args.device, seed=args.seed, refine_sweeps=args.refine_sweeps, like=args.like,
                            adhere=args.adhere, adherence_steps=args.adherence_steps, force=args.force,
                            quiet=args.quiet, **outputs)
    if not args.quiet:
        print(f"wrote {timing['n']} generated samples to {args.out} ({timing['per_second']:.0f} per second)")


def _validate(args) -> int:
    from physgan.api import validate
    from physgan.validation import verdict

    result = validate(args.reference, args.generated, args.out, training=args.train, threshold=args.threshold,
                      level=args.level, pdf=args.pdf, force=args.force, quiet=args.quiet,
                      allow_pickle=args.allow_pickle, seed=args.seed, classifier=not args.no_classifier,
                      device=args.device)
    if not args.quiet:
        print(result.table())
        print(result.line())
    return verdict.exit_status(result.metrics)


def _merge(args) -> None:
    from physgan.io import merge_sample_files

    merged = merge_sample_files(args.shards, args.out, force=args.force)
    if not args.quiet:
        print(f"merged {len(args.shards)} shards ({merged.n} samples) into {args.out}")


def _inspect(args) -> None:
    from physgan.inspect import describe
    from physgan.io import open_samples

    print(describe(open_samples(args.file, allow_pickle=args.allow_pickle)))


def _observables(args) -> None:
    from physgan.io import open_samples
    from physgan.systems import get_system

    samples = open_samples(args.file, allow_pickle=args.allow_pickle)
    print(get_system(samples.system).observables_report(samples))


class _Stderr(logging.Handler):
    """physgan's log records as the command's own lines: warnings `physgan: warning: ...` (as they were
    printed before logging carried them), progress lines as they are. Writes to sys.stderr as it is at
    each record, so a redirection made after the handler (pytest's capture) is followed."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        return text if record.levelno < logging.WARNING else f"physgan: {record.levelname.lower()}: {text}"

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr, flush=True)
        except Exception:  # logging's own contract: a failing handler never stops the program
            self.handleError(record)


@contextlib.contextmanager
def messages_on_stderr(quiet: bool):
    """For one command: the `physgan` logger's records on stderr, warnings always, progress (INFO) unless
    --quiet; not passed on to handlers of the root logger (each line once). Restored afterwards."""
    logger = logging.getLogger("physgan")
    handler, saved = _Stderr(), (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            args = build_parser().parse_args(argv)
            with messages_on_stderr(quiet=getattr(args, "quiet", False)):
                status = args.run(args) or 0  # validate and run: 1 when the verdict fails
        finally:
            sys.stdout.flush()  # so that a reader gone away (physgan inspect F | head) shows up here
    except BrokenPipeError:
        # nothing left to tell the reader; keep the interpreter's own final flush from failing again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as shell tools exit
    except UserError as exc:
        print(f"physgan: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("physgan: interrupted", file=sys.stderr)
        return 130
    return status
