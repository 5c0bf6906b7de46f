"""A run's acceptance test for jets: generated against test Monte Carlo, per class, by the issue's targets.

Observables are measured on the images of both files by the same code (observables.image_observables).
W1 is compared with its floor, the median W1 of the permutation null at the same sizes, by the validation
engine's test (validate.compare); per class, all pT pooled.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from physgan.systems.jets.observables import CLASS_NAMES, image_observables

OBSERVABLE_LABELS = {"mass": "mass", "pt": "pT", "tau_21": "tau_21", "tau_32": "tau_32", "delta_R": "delta R",
                     "n_pixels": "pixels"}


@dataclass
class FidelityConfig:
    """Per-class acceptance of a run's generated jets against its test Monte Carlo (a preset's [fidelity])."""

    w1_ratio: dict = field(default_factory=lambda: {"mass": 3.0})
    """observable (mass, pt, tau_21, tau_32, delta_R, n_pixels) -> largest allowed W1 / MC-vs-MC floor, per class"""
    wprime_mass_median_gev: float | None = 5.0
    """largest allowed |generated - MC| W' mass median in GeV (none: not checked)"""
    max_auc: float | None = None
    """largest allowed AUC of `physgan validate`'s classifier on physics observables (none: not checked)"""
    fpd_ratio: float | None = None
    """largest allowed FPD / (MC-vs-MC FPD + its error) per class from `physgan validate` (none: not checked)"""


def _observables(samples) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    signal, parts = [], {}
    for chunk in samples.iter_chunks(names=("image", "signal")):
        signal.append(chunk["signal"])
        for name, values in image_observables(chunk["image"]).items():
            parts.setdefault(name, []).append(values)
    return np.concatenate(signal), {name: np.concatenate(v) for name, v in parts.items()}


def fidelity_report(reference, generated, fidelity: FidelityConfig, metrics: dict | None = None) -> tuple[str, dict]:
    """Per class: W1 / floor of each observable in fidelity.w1_ratio, the W' mass median, and (from the
    validation metrics, when given) FPD / floor and the classifier AUC. Returns (text, results)."""
    from physgan.errors import UserError
    from physgan.textable import format_table
    from physgan.validation.validate import compare

    unknown = sorted(set(fidelity.w1_ratio) - set(OBSERVABLE_LABELS))
    if unknown:
        raise UserError(f"fidelity.w1_ratio: unknown observable {unknown[0]!r} (valid: {', '.join(OBSERVABLE_LABELS)})")
    (ref_signal, ref), (gen_signal, gen) = _observables(reference), _observables(generated)
    rows, results = [], []
    for label in (1, 0):
        r, g = ref_signal == label, gen_signal == label
        if not r.any() or not g.any():
            continue
        checks, row, ratios = {}, [CLASS_NAMES[label]], {}
        for number, (name, limit) in enumerate(sorted(fidelity.w1_ratio.items())):
            measured = compare(ref[name][r], gen[name][g], np.random.default_rng([label, number]), limit)
            ratios[name] = measured["ratio"]
            checks[f"{name}_w1_ratio"] = not measured["beyond_tolerance"]
            row.append(f"{measured['ratio']:.2f} (<= {limit:g})" + ("" if checks[f"{name}_w1_ratio"] else " FAIL"))
        medians = float(np.median(ref["mass"][r])), float(np.median(gen["mass"][g]))
        row.append(f"{medians[0]:.1f} / {medians[1]:.1f}")
        if label == 1 and fidelity.wprime_mass_median_gev is not None:
            checks["wprime_mass_median"] = abs(medians[1] - medians[0]) <= fidelity.wprime_mass_median_gev
            row[-1] += "" if checks["wprime_mass_median"] else " FAIL"
        results.append({"signal": label, "pass": all(checks.values()), "checks": checks, "w1_ratio": ratios,
                        "mass_median_ref": medians[0], "mass_median_gen": medians[1]})
        rows.append(row)
    overall = _from_metrics(fidelity, metrics or {})
    passed = all(r["pass"] for r in results) and all(overall.values())
    headers = (["class"] + [f"W1/floor {OBSERVABLE_LABELS[n]}" for n in sorted(fidelity.w1_ratio)]
               + ["mass median MC / GAN [GeV]"])
    text = "\n".join([
        f"generated ({generated.path}, n = {generated.n}) vs Monte Carlo ({reference.path}, n = {reference.n}); "
        "observables from the images",
        format_table(headers, rows),
        *(f"{name}: {'ok' if ok else 'FAIL'}" for name, ok in overall.items()),
        f"fidelity: {'PASS' if passed else 'FAIL'}"])
    return text, {"pass": passed, "per_condition": results, "overall": overall,
                  "checks": _rows(results, overall, fidelity)}


def _rows(results: list[dict], overall: dict[str, bool], fidelity: FidelityConfig) -> list[dict]:
    """The targets as rows of the verdict's table (check, measured, threshold, pass)."""
    rows = []
    for result in results:
        name_of_class = CLASS_NAMES[result["signal"]]
        for name, limit in sorted(fidelity.w1_ratio.items()):
            rows.append({"check": f"{name_of_class} {OBSERVABLE_LABELS[name]}: W1 / floor, pT pooled (preset)",
                         "measured": f"{result['w1_ratio'][name]:.2f}", "threshold": f"<= {limit:g}",
                         "pass": result["checks"][f"{name}_w1_ratio"]})
        if "wprime_mass_median" in result["checks"]:
            rows.append({"check": "W' mass median (preset)",
                         "measured": f"{result['mass_median_gen']:.1f} GeV against {result['mass_median_ref']:.1f}",
                         "threshold": f"within {fidelity.wprime_mass_median_gev:g} GeV",
                         "pass": result["checks"]["wprime_mass_median"]})
    rows += [{"check": f"{name} (preset)", "measured": "", "threshold": "", "pass": ok} for name, ok in overall.items()]
    return rows


def _from_metrics(fidelity: FidelityConfig, metrics: dict) -> dict[str, bool]:
    """Checks on numbers `physgan validate` measured: classifier AUC and FPD against its floor."""
    checks = {}
    auc = metrics.get("physics_classifier", {}).get("auc")
    if fidelity.max_auc is not None:
        measured = "not measured" if auc is None else f"{auc:.3f}"
        checks[f"classifier AUC on physics observables {measured} <= {fidelity.max_auc:g}"] = (
            auc is not None and auc <= fidelity.max_auc)
    if fidelity.fpd_ratio is not None:
        # the MC-vs-MC FPD is a fit intercept bounded at 0: compare with it plus its error, never with 0
        for entry in metrics.get("jets", {}).get("classes", []):
            efp = entry.get("efp", {})
            if "fpd_gen" not in efp:
                checks[f"FPD {entry['label']}: {efp.get('skipped', 'not measured')}"] = False
                continue
            floor = efp["fpd_ref"] + efp["fpd_ref_err"]
            checks[f"FPD {entry['label']} {efp['fpd_gen']:.3g} <= {fidelity.fpd_ratio:g} x (MC-vs-MC "
                   f"{efp['fpd_ref']:.3g} + {efp['fpd_ref_err']:.2g})"] = efp["fpd_gen"] <= fidelity.fpd_ratio * floor
    return checks
