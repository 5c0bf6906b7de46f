"""The verdict of a validation: every comparison tested, multiple testing controlled, one table of checks.

A report makes dozens of comparisons (each observable at each condition, each exactly known quantity at
each condition), so some p-values are small by chance. They form one family, and Holm's step-down
procedure (Holm 1979, Scand. J. Statist. 6, 65) keeps the probability that any comparison of an honest
sample is called significant below the stated level. A comparison FAILS only when it is significant after
that correction AND beyond its practical tolerance:

- distributions (W1 permutation test, or the chi-square test on the levels of a discrete observable):
  effect = W1 / the median W1 of the permutation null at the same sizes, tolerance `threshold`;
- exact values (the plug-in's exact_checks): the relative deviation of the generated mean from the exact
  value, tolerance per quantity (the plug-in's EXACT_TOLERANCE, which a run's preset may override).

So "significant but tiny" (a real difference smaller than the tolerance, visible only because the samples
are large) and "large but underpowered" (a big difference that few samples cannot establish) both pass,
and the report shows both numbers of every comparison so that a reader sees which is which. The verdict's
table holds one row per observable and per exact quantity (its worst condition), and one per target of a
run's preset (the system's fidelity_report); the verdict passes when every row does.
"""
from __future__ import annotations

import math

import numpy as np

from physgan.validation import metrics as m

LEVEL = 0.01  # family-wise error rate of the statistical checks (Holm)


def decide(observables: dict, exact: list[dict], level: float) -> dict:
    """Mark every comparison of the family (per-condition distributions and exact values) significant
    or not (Holm at `level`) and pass or not; returns the family's description for metrics.json."""
    family = [entry for result in observables.values() for entry in result["per_condition"]] + exact
    p_values = np.array([_finite(entry["p_value"]) for entry in family], dtype=np.float64)
    for entry, adjusted in zip(family, m.holm_adjusted(p_values)):
        entry["p_adjusted"] = float(adjusted)
        entry["significant"] = bool(adjusted <= level)  # NaN (not tested): never significant
        entry["pass"] = not (entry["significant"] and entry["beyond_tolerance"])
    for result in observables.values():
        result["pass"] = all(entry["pass"] for entry in result["per_condition"])
    return {"method": "holm", "level": level, "family_size": int(np.count_nonzero(~np.isnan(p_values)))}


def _finite(p) -> float:
    return float("nan") if p is None or not math.isfinite(p) else float(p)


def distribution_rows(observables: dict, labels: dict, threshold: float) -> list[dict]:
    """One verdict row per observable: its worst condition (a failing one first, else the largest effect)."""
    rows = []
    for name, result in observables.items():
        entry = _worst(result["per_condition"], lambda e: e["ratio"])
        test = "chi-square on levels" if entry.get("test") == "chi2" else "W1 permutation test"
        rows.append({"check": f"{labels[name]}: distribution ({test})",
                     "measured": f"effect {_fmt(entry['ratio'])}, p = {_p(entry)} at {entry['label']}",
                     "threshold": f"effect <= {threshold:g} where significant",
                     "pass": result["pass"]})
    return rows


def exact_rows(exact: list[dict]) -> list[dict]:
    """One verdict row per exactly known quantity: its worst condition."""
    rows = []
    for quantity in dict.fromkeys(entry["quantity"] for entry in exact):
        entries = [e for e in exact if e["quantity"] == quantity]
        entry = _worst(entries, lambda e: abs(e["relative"]))
        rows.append({"check": f"{quantity} against the exact solution",
                     "measured": f"{100 * entry['relative']:+.2f} % (pull {entry['gen_pull']:+.1f}, Monte Carlo "
                                 f"{entry['ref_pull']:+.1f}; p = {_p(entry)}) at {entry['condition']}",
                     "threshold": f"|deviation| <= {100 * entry['tolerance']:g} % where significant",
                     "pass": all(e["pass"] for e in entries)})
    return rows


def _worst(entries: list[dict], size) -> dict:
    failing = [e for e in entries if not e["pass"]]
    pool = failing or entries
    return max(pool, key=lambda e: size(e) if math.isfinite(size(e)) else math.inf)


def _fmt(x: float) -> str:
    return "inf" if not math.isfinite(x) else f"{x:.2f}"


def _p(entry: dict) -> str:
    significance = ", significant" if entry.get("significant") else ""
    return f"{entry['p_value']:.2g}{significance}"


def result(checks: list[dict]) -> str:
    return "pass" if all(check["pass"] for check in checks) else "fail"


def exit_status(metrics: dict) -> int:
    """physgan validate's and run's exit status: 0 when the verdict passes, 1 when it fails."""
    return 0 if metrics["verdict"] == "pass" else 1


def table(metrics: dict) -> str:
    """The verdict's table as text, with the family tested and the conditions not judged (the verdict
    itself: validate.verdict_line)."""
    from physgan.textable import format_table

    rows = [[c["check"], c["measured"], c["threshold"], "pass" if c["pass"] else "FAIL"] for c in metrics["checks"]]
    family = metrics["multiple_testing"]
    judged = metrics["judged"]
    lines = [format_table(["check", "measured", "threshold", "result"], rows),
             f"significance: Holm over {family['family_size']} comparisons at family-wise level {family['level']:g}; "
             f"judged {judged['n_ref']} reference and {judged['n_gen']} generated samples"]
    for skipped in metrics["not_judged"]:
        lines.append(f"not judged (too few samples): {skipped['label']}: {skipped['n_ref']} reference, "
                     f"{skipped['n_gen']} generated")
    return "\n".join(lines)
