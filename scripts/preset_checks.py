"""Judge any jets sample against a reference by a preset's acceptance checks (the ones `physgan run` applies).

    python scripts/preset_checks.py REFERENCE SAMPLE REPORT_DIR [--preset full|quick|FILE.toml]

Runs physgan's validation (classifier AUC, FPD, W1 per class and pT bin) into REPORT_DIR, then the preset's
per-class checks (W1 / floor with all pT pooled, the W' mass median, AUC, FPD). Used to calibrate the
targets: a second Monte Carlo seed, another Pythia tune or a shower-scale variation judged like a generator
(docs/results/jets.md, "How strict the full preset's checks are").
"""
import argparse
import sys

from physgan.errors import UserError
from physgan.io import open_samples
from physgan.pipeline import preset_path_values, resolve
from physgan.systems import get_system
from physgan.validation.validate import validate


def preset_checks(reference, sample, metrics: dict, preset: str = "full") -> str:
    """The preset's acceptance text for `sample` against `reference`, given their validation metrics."""
    jets = get_system("jets")
    fidelity = resolve(jets, preset_path_values("jets", preset))["fidelity"]  # as `physgan run jets --preset`
    text, _ = jets.fidelity_report(open_samples(reference), open_samples(sample), fidelity, metrics)
    classifier = metrics["classifier"]
    lines = [text, f"classifier AUC {classifier['auc']:.3f} +- {classifier['auc_err']:.3f}; per class and pT bin: "
             + ", ".join(f"{entry['auc']:.3f}" for entry in classifier["per_condition"])]
    lines += [f"W1/floor {name}: pooled {entry['ratio']:.2f}; per class and pT bin: "
              + ", ".join(f"{p['ratio']:.2f}" for p in entry["per_condition"])
              for name, entry in metrics["observables"].items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference")
    parser.add_argument("sample")
    parser.add_argument("report")
    parser.add_argument("--preset", default="full", help="as physgan run's: quick, full or a TOML file")
    args = parser.parse_args()
    try:
        metrics = validate(args.reference, args.sample, args.report, seed=0, force=True, quiet=True)
        print(preset_checks(args.reference, args.sample, metrics, args.preset))
    except UserError as error:
        print(f"physgan: error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
