"""Judge any sample against a reference by a preset's verdict (the checks `physgan run` applies).

    python scripts/preset_checks.py REFERENCE SAMPLE REPORT_DIR [--preset full|quick|FILE.toml]

Runs physgan's validation into REPORT_DIR with the preset's targets among its checks, and prints the
verdict's table. Used to calibrate the targets: a second Monte Carlo seed, another Pythia tune or a
shower-scale variation judged like a generator (docs/results/jets.md, "How strict the full preset's checks
are"). Exit status as `physgan validate`'s: 0 pass, 1 fail, 2 error.
"""
import argparse
import sys

from physgan.errors import UserError
from physgan.io import open_samples
from physgan.pipeline import preset_path_values, resolve
from physgan.systems import get_system
from physgan.validation import verdict
from physgan.validation.validate import validate


def preset_checks(reference, sample, report, preset: str = "full") -> dict:
    """The validation metrics of `sample` against `reference`, the preset's targets among the checks."""
    system = get_system(open_samples(reference).system)
    fidelity = resolve(system, preset_path_values(system.NAME, preset))["fidelity"]  # as `physgan run --preset`
    return validate(reference, sample, report, seed=0, force=True, quiet=True, fidelity=fidelity)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference")
    parser.add_argument("sample")
    parser.add_argument("report")
    parser.add_argument("--preset", default="full", help="as physgan run's: quick, full or a TOML file")
    args = parser.parse_args()
    try:
        metrics = preset_checks(args.reference, args.sample, args.report, args.preset)
    except UserError as error:
        print(f"physgan: error: {error}", file=sys.stderr)
        return 2
    print(verdict.table(metrics))
    return verdict.exit_status(metrics)


if __name__ == "__main__":
    sys.exit(main())
