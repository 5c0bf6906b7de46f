"""physgan command line: parse, call the library, turn user mistakes into one line and exit status 2."""
from __future__ import annotations

import argparse
import os
import sys

from physgan import __version__
from physgan.errors import UserError

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


def _command(commands, name: str, help: str, examples: str):
    return commands.add_parser(name, help=help, description=help, epilog="examples:\n" + examples,
                               formatter_class=argparse.RawDescriptionHelpFormatter)


def _add_output(p) -> None:
    p.add_argument("--out", required=True, help="output file (written to a temporary name, renamed when complete)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def _add_simulate(commands) -> None:
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
    p.add_argument("system", nargs="?", choices=["ising", "jets"], help="the physical system (or take it from --recipe)")
    p.add_argument("--recipe", help="TOML recipe (datasets/*.toml) holding the settings")
    p.add_argument("--seed", type=int, help="root random seed (default 0)")
    p.add_argument("--shard", help="i/N: this job's part of a sharded run (seeds SeedSequence(seed).spawn(N)[i])")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], help="where the Metropolis updates run (default cpu)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any setting, e.g. --set chains=128")
    ising = p.add_argument_group("ising")
    ising.add_argument("--L", type=int, help="lattice side (default 32)")
    ising.add_argument("--temps", help="temperatures: 2.0,2.269,3.0 or start:stop:count")
    ising.add_argument("--n-per-temp", type=int, help="configurations per temperature (default 1000)")
    ising.add_argument("--algorithm", choices=["auto", "metropolis", "wolff"], help="update algorithm (default auto)")
    ising.add_argument("--chains", type=int, help="independent chains per temperature (default 64)")
    jets = p.add_argument_group("jets")
    jets.add_argument("--n-per-class", type=int, help="selected jets per class (default 1000)")
    jets.add_argument("--classes", help="wprime, qcd or wprime,qcd (default both)")
    jets.add_argument("--pt", help="trimmed-jet pT window in GeV, lo:hi (default 250:300)")
    jets.add_argument("--mass-window", help="trimmed-jet mass window in GeV, lo:hi (LAGAN: 60:100; default none)")
    jets.add_argument("--sqrt-s", type=float, help="pp centre-of-mass energy in GeV (default 14000)")
    jets.add_argument("--wprime-mass", type=float, help="W' mass in GeV (default 800)")
    jets.add_argument("--pythia", action="append", metavar="'KEY = VALUE'",
                      help="an extra Pythia setting, read after the class's own (repeatable), e.g. 'Tune:pp = 21'")
    jets.add_argument("--workers", type=int, help="processes running Pythia (default 1; the output does not depend on it)")
    jets.add_argument("--root", help="also write a ROOT file: TTree jets with the constituents as jagged branches")
    _add_output(p)
    p.set_defaults(run=_simulate)


def _add_run(commands) -> None:
    p = _command(commands, "run", "Simulate, train, sample and compare in one run directory.", """\
  physgan run ising --preset quick --out runs/quick
  physgan run ising --preset full --out runs/full --set train.device=cuda
  physgan run ising --preset full --out runs/full --set train.device=cuda --resume
  physgan run jets --preset quick --out runs/jets_quick
  physgan run ising --preset my_preset.toml --out runs/mine""")
    p.add_argument("system", choices=["ising", "jets"])
    p.add_argument("--preset", default="quick", help="quick, full, or a TOML file (default quick)")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a preset value")
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
  physgan sample --checkpoint runs/jets/checkpoints/best.pt --class wprime,qcd --pt 250:300 --n 100000 --out gen.h5 --root gen.root""")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--T", help="Ising temperatures: 1.8,2.269,3.0 or start:stop:count")
    p.add_argument("--class", dest="classes", help="jets: wprime, qcd or wprime,qcd")
    p.add_argument("--pt", help="jets: jet pT window in GeV, lo:hi (pT values spread evenly over it)")
    p.add_argument("--n-per-temp", "--n", dest="n", type=int, default=1000,
                   help="samples per condition: Ising per temperature, jets per class (default 1000)")
    p.add_argument("--root", help="jets: also write a ROOT file (TTree jets)")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto")
    p.add_argument("--seed", type=int, default=0)
    _add_output(p)
    p.set_defaults(run=_sample)


def _add_validate(commands) -> None:
    p = _command(commands, "validate", "Judge a generated sample against a reference by physics observables: "
                 "report.html, metrics.json and plots.", """\
  physgan validate --reference runs/quick/data/test.h5 --generated runs/quick/samples/generated.h5 --out report/
  physgan validate --reference mc.h5 --generated gen.h5 --out report/ --threshold 3 --pdf --force
  physgan validate --reference test.h5 --generated gen.h5 --train train.h5 --out report/   # memorisation""")
    p.add_argument("--reference", required=True, help="reference sample (Monte Carlo), any supported format")
    p.add_argument("--generated", required=True, help="the sample to judge")
    p.add_argument("--train", metavar="FILE", help="the generator's training sample: checks memorisation "
                   "(nearest training sample of generated vs reference samples); without it, not checked")
    p.add_argument("--out", required=True, help="report directory (report.html, metrics.json, plots/)")
    p.add_argument("--threshold", type=float, default=2.0,
                   help="an observable passes when W1 <= threshold x its reference floor in every condition")
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
    options = {"L": args.L, "temps": args.temps, "n_per_temp": args.n_per_temp, "algorithm": args.algorithm,
               "chains": args.chains, "seed": args.seed, "device": args.device,
               "n_per_class": args.n_per_class, "classes": args.classes, "pt": args.pt, "mass_window": args.mass_window,
               "sqrt_s": args.sqrt_s, "wprime_mass": args.wprime_mass, "pythia": args.pythia, "workers": args.workers}
    values = cfg.merge(cfg.merge(recipe.get("simulate", {}), cfg.parse_overrides(args.set)),
                       {k: v for k, v in options.items() if v is not None})
    system = get_system(system_name)
    config = cfg.build(system.SimulationConfig, values, where="simulate")
    n = system.simulate_to_file(args.out, config, parse_shard(args.shard), force=args.force, quiet=args.quiet,
                                root=getattr(args, "root", None))
    if not args.quiet:
        print(f"wrote {n} {system.NAME} samples to {args.out}")


def _run(args) -> None:
    from physgan.pipeline import run

    if args.force and args.resume:
        raise UserError("--force starts the run again, --resume continues it: choose one")
    run(args.system, args.preset, args.out, args.set, force=args.force, resume=args.resume, quiet=args.quiet)


def _train(args) -> None:
    from physgan import config as cfg
    from physgan.gan.train import TrainConfig, train
    from physgan.io import open_samples
    from physgan.pipeline import preset_path_values

    values = {}
    if args.preset:
        values = preset_path_values(open_samples(args.data).system, args.preset).get("train", {})
    options = {k: v for k, v in (("device", args.device), ("seed", args.seed)) if v is not None}
    config = cfg.build(TrainConfig, cfg.merge(cfg.merge(values, cfg.parse_overrides(args.set)), options), "train")
    trainer = train(args.data, args.out, config, resume=args.resume, quiet=args.quiet)
    if not args.quiet and trainer.rank == 0:
        print(f"trained {trainer.step} steps; checkpoints in {args.out}/checkpoints (best physics score "
              f"{trainer.best_score:.3g})")


def _sample(args) -> None:
    from physgan.gan.sample import sample_to_file

    options = {"T": args.T, "class": args.classes, "pt": args.pt, "n": args.n}
    timing = sample_to_file(args.checkpoint, args.out, options, batch_size=args.batch_size, device=args.device,
                            seed=args.seed, root=args.root, force=args.force, quiet=args.quiet)
    if not args.quiet:
        print(f"wrote {timing['n']} generated samples to {args.out} ({timing['per_second']:.0f} per second)")


def _validate(args) -> None:
    from physgan.validation.validate import validate, verdict_line

    metrics = validate(args.reference, args.generated, args.out, training=args.train, threshold=args.threshold,
                       pdf=args.pdf, force=args.force, quiet=args.quiet, allow_pickle=args.allow_pickle,
                       seed=args.seed, classifier=not args.no_classifier, device=args.device)
    if not args.quiet:
        print(verdict_line(metrics, args.out))


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


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            args = build_parser().parse_args(argv)
            args.run(args)
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
    return 0
