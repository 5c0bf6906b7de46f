"""physgan validate: is a generated sample statistically a Monte Carlo sample? Observable by observable.

    validate(reference, generated, out_dir, training=None) -> metrics

writes out_dir/metrics.json (docs/formats.md, "metrics.json"; the keys are listed in `validate`), out_dir/report.html
(self-contained), out_dir/plots/*.png (and .pdf) and out_dir/histograms.h5 (every plotted histogram as numbers,
docs/formats.md). System-agnostic: everything system-specific comes from
the plug-in `get_system(name).validation` (interface: physgan.systems.interface.Validation); this module
never branches on a system's name.

For every observable of the plug-in, over all samples pooled and per condition: means with standard errors
of both samples, W1 next to its reference floor and their ratio, the KS statistic and the separation power
(docs/physics.md, "Generative-model metrics"). An observable passes when W1 <= threshold x floor in every
condition; the verdict passes when every observable does. A classifier two-sample test (the plug-in's
conditional network, 60/20/20 split, Platt-calibrated; Lopez-Paz & Oquab arXiv:1610.06545) adds the AUC
overall and per condition, both on the held-out test split of one classifier.

The floor protocol. W1 between finite samples is biased upwards (~ 1/sqrt(size)), so W1(reference, generated)
means something only next to W1(reference, reference) measured the same way: metrics.w1_with_floor draws, in
each round, a subsample of size m of the generated sample and two disjoint ones of the reference, and
reports mean W1 / mean floor. Two choices keep the ratio of an honest sample well below the threshold:
- m = min(n_ref, n_gen) // 4, at most 50 000 (JetNet's batch size). The generated sample is one fixed draw,
  so part of W1(ref, gen) is the same in every round and never averages away; with a quarter of the data
  per round that fixed part is about a quarter of the variance (half at m = n/2).
- 30 rounds, which average the rest.
Measured on Gaussian samples, 1000 vs 1000, 4000 repetitions: 99.9 % quantile of the ratio 1.60, none above
2 (largest 1.95). With m = n/2 and 30 rounds: 1.95 and 0.1 % above 2; with m = n/2 and 5 rounds (the
helper's default) 2.4 and 0.3 %. So with ~30 comparisons at threshold 2, an honest sample fails by chance
well under 1 % of the time; the price is a factor sqrt 2 in sensitivity. Each comparison draws from its own
generator, numpy default_rng([seed, 1, observable number, condition number + 1]) (0: all pooled), and the
classifier from default_rng([seed, 0]), so results reproduce whatever the order of the work; the plug-in's
extras and memorisation check get the seed and draw from generators of their own.

Memorisation. Given the generator's training sample (`training`, `physgan validate --train FILE`), the
plug-in's `memorisation` compares the distances from generated samples to their nearest training sample with
those from reference samples (independent of the training) to theirs: nearest_neighbour_summary. A generator
that copies training samples sits closer to them than fresh Monte Carlo does. Without a training file the
metrics say that memorisation was not checked.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.stats

from physgan import __version__
from physgan.errors import UserError
from physgan.io import Samples, open_samples
from physgan.progress import progress_bar
from physgan.stats import mean_and_error
from physgan.systems import get_system
from physgan.validation import metrics as m
from physgan.validation import verdict
from physgan.validation.histograms import Histogram, HistogramFile, histogram_edges
from physgan.validation.verdict import LEVEL

SCHEMA_VERSION = 2  # of metrics.json: 2 added the verdict's checks, the permutation tests and exact checks
POOLED_PERMUTATIONS = 200  # the pooled comparison's null: its floor, and a p-value down to 1/201
MIN_PER_CONDITION = 8  # fewer samples than this in a condition cannot give a floor
MIN_CLASSIFIER_SAMPLES = 50  # per class; below this the split leaves nothing to test on
CLASSIFIER = {"epochs": 5, "batch_size": 128, "lr": 1e-2}
MEMORISATION_LEVEL = 1e-3  # p-value below which generated samples count as closer to the training sample
NOT_CHECKED = {"checked": False, "reason": "no training sample given (physgan validate --train FILE)"}
TEST_PROTOCOL = ("per observable and condition, a permutation test at the sizes compared: W1 between the "
                 "samples (for a discrete observable the chi-square of its level populations) against its "
                 "distribution over random re-splits of the pooled samples (sequential stopping, Besag and "
                 "Clifford 1991); floor = the median W1 of that null distribution, effect = W1 / floor; "
                 "significance by Holm's procedure over all comparisons and exact checks")


@dataclass(frozen=True)
class Observable:
    """How a plug-in describes one per-sample observable: plain label, matplotlib mathtext, unit, description."""

    label: str
    tex: str
    unit: str = ""
    description: str = ""
    discrete: bool = False  # values on a finite set of levels (a lattice's energies): tested level by level

    @property
    def axis_label(self) -> str:
        return f"{self.tex} [{self.unit}]" if self.unit else self.tex


@dataclass
class Measured:
    """One sample file and what was measured on it.

    conditions (n, k): per-sample condition values; rows (C, k): the judged conditions, sorted, the same
    for the reference and the generated sample; index (n,): the row of each sample (-1: a condition too
    sparse to judge); groups: for each row, the indices of its samples; features {name: (n, ...)}: the
    plug-in's per-sample observables and helpers.
    """

    samples: Samples
    conditions: np.ndarray
    rows: np.ndarray
    index: np.ndarray
    features: dict[str, np.ndarray] = field(default_factory=dict)
    groups: list[np.ndarray] = field(init=False)

    def __post_init__(self):
        order = np.argsort(self.index, kind="stable")
        bounds = np.searchsorted(self.index[order], np.arange(len(self.rows) + 1))
        self.groups = [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def values(self, name: str, condition: int | None = None) -> np.ndarray:
        """Feature `name` of all samples, or of those at condition row `condition`."""
        x = self.features[name]
        return x[self.index >= 0] if condition is None else x[self.groups[condition]]


def validate(reference, generated, out_dir, *, training=None, threshold: float = 2.0, level: float = LEVEL,
             pdf: bool = False, force: bool = False, quiet: bool = False, allow_pickle: bool = False, seed: int = 0,
             classifier: bool = True, max_classifier_samples: int = 20000, device: str = "cpu",
             speed: dict | None = None, fidelity=None, training_log=None) -> dict:
    """Compare `generated` with `reference` (sample files of one system, or io.Samples already open, e.g.
    io.samples_in_memory); write the report into `out_dir` (None: write nothing, no report, no plots, and
    matplotlib is not needed; the metrics returned are the same).

    Returns the metrics written to out_dir/metrics.json (docs/formats.md, "metrics.json"). The verdict
    ("pass" or "fail") is that of the table "checks" (verdict.py): the distributions of every observable,
    the exactly known values where the plug-in has them, and, when `fidelity` (the system's FidelityConfig
    of a run's preset) is given, the preset's targets. "not_judged" lists the conditions with too few
    samples; "judged" counts the samples compared. The directory appears complete or not at all (built
    beside it, renamed at the end); an existing non-empty one is replaced only with `force`. User mistakes
    raise UserError, before any work where they can be seen then.

    training: the generator's training sample (optional), for the memorisation check;
    threshold: the effect size (W1 over the null's median W1) beyond which a significant difference fails;
    level: the family-wise error rate of the significance tests (Holm); fidelity: a run preset's targets,
    whose exact_tolerances() (where the FidelityConfig has it) override the plug-in's tolerances of the
    exact checks; pdf: also write plots as PDF;
    seed: of every random choice (same seed, same numbers); classifier: run the classifier tests, on at most
    max_classifier_samples samples of each file (equal numbers per condition), on `device`;
    speed: where the caller timed both ways of producing samples (physgan run), {"monte_carlo": {"n",
    "seconds", "time_from"}, "generator": {"n", "seconds", "device"}}: reported with the speed-up (metrics
    "speed"); the Monte Carlo's seconds are None when unknown, time_from says per data file where its time
    came from ("run", "provenance", None: unknown); training_log: the generator's RUN_DIR/log.jsonl (physgan
    run), drawn as plots/training.png (report.training_plot).
    """
    from physgan.validation import report

    if not (math.isfinite(threshold) and threshold > 0):
        raise UserError(f"--threshold must be a positive number, got {threshold}")
    if not 0 < level < 1:
        raise UserError(f"--level must lie between 0 and 1, got {level}")
    if out_dir is not None:
        report.require_plotting()  # before the work, not after it
    ref_samples, gen_samples = (open_samples(p, allow_pickle=allow_pickle) for p in (reference, generated))
    plugin = _plugin(ref_samples, gen_samples)
    train_samples = None if training is None else _training(plugin, training, ref_samples, allow_pickle)
    ref, gen, not_judged = match_conditions(plugin, ref_samples, gen_samples)
    classifier_rng = np.random.default_rng([seed, 0])
    keep = classifier_selection(ref, gen, max_classifier_samples, classifier_rng) if classifier else (None, None)
    written = output_directory(out_dir, force) if out_dir is not None else contextlib.nullcontext()
    with written as tmp, progress_bar(total=6, desc="validate", quiet=quiet) as bar, single_threaded_torch():
        inputs = []
        for measured, indices in zip((ref, gen), keep):
            measured.features, kept = plugin.per_sample(measured.samples, indices)
            inputs.append(kept)
            bar.update(1)
        observables = {name: compare_observable(plugin, ref, gen, name, number, threshold, seed)
                       for number, name in enumerate(plugin.OBSERVABLES)}
        exact = exact_checks(plugin, ref, gen, getattr(fidelity, "exact_tolerances", dict)())
        family = verdict.decide(observables, exact, level)
        bar.update(1)
        classifier_result = _classifier(plugin, ref, gen, keep, inputs, classifier_rng, device, enabled=classifier)
        physics_result = _physics_classifier(plugin, ref, gen, np.random.default_rng([seed, 2]), device, classifier)
        bar.update(1)
        extras = plugin.extras(ref, gen, seed)
        extras["memorisation"] = (NOT_CHECKED if train_samples is None
                                  else plugin.memorisation(train_samples, ref, gen, seed))
        results = {
            "schema_version": SCHEMA_VERSION, "physgan_version": __version__, "git_commit": git_commit(),
            "system": ref_samples.system,
            "reference": _file_entry(ref_samples), "generated": _file_entry(gen_samples),
            "training": None if train_samples is None else _file_entry(train_samples),
            "observables": observables, "exact": exact, "multiple_testing": family,
            "classifier": classifier_result, "physics_classifier": physics_result,
            "threshold": threshold, "seed": seed, "conditions": _conditions(plugin, ref, gen),
            "not_judged": not_judged, "judged": {"n_ref": int(np.count_nonzero(ref.index >= 0)),
                                                 "n_gen": int(np.count_nonzero(gen.index >= 0))},
            "test_protocol": TEST_PROTOCOL, ref_samples.system: extras,
            "speed": None if speed is None else speed_summary(speed)}
        labels = {name: observable.label for name, observable in plugin.OBSERVABLES.items()}
        checks = verdict.distribution_rows(observables, labels, threshold) + verdict.exact_rows(exact)
        if fidelity is not None:
            text, targets = get_system(ref_samples.system).fidelity_report(ref_samples, gen_samples, fidelity,
                                                                           to_json(results))
            results["fidelity"] = {**targets, "text": text}
            checks += targets["checks"]
        results = to_json({**results, "checks": checks, "verdict": verdict.result(checks)})
        bar.update(1)
        if tmp is not None:
            _write_report(tmp, results, plugin, ref, gen, extras, pdf, training_log)
        bar.update(1)
    return results


def git_commit() -> str | None:
    """The commit physgan runs from, where it runs from a git checkout (None otherwise)."""
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


# ---------------------------------------------------------------------------------------------
# Inputs: systems, compatibility, conditions


def _plugin(reference: Samples, generated: Samples):
    if reference.system != generated.system:
        raise UserError(f"different systems: {reference.path} holds {reference.system}, "
                        f"{generated.path} holds {generated.system}")
    plugin = get_system(reference.system).validation
    plugin.check_compatible(reference, generated)
    return plugin


def _training(plugin, path, reference: Samples, allow_pickle: bool) -> Samples:
    """The training sample, opened and checked against the reference (same system, comparable samples)."""
    training = open_samples(path, allow_pickle=allow_pickle)
    if training.system != reference.system:
        raise UserError(f"the training sample {training.path} holds {training.system}, "
                        f"the reference {reference.path} holds {reference.system}")
    if training.n == 0:
        raise UserError(f"{training.path}: the training file holds no samples")
    plugin.check_compatible(reference, training)
    return training


def match_conditions(plugin, reference: Samples, generated: Samples) -> tuple[Measured, Measured, list[dict]]:
    """Group both samples by condition; the two condition sets must be equal (no silent skipping). A
    condition with fewer than MIN_PER_CONDITION samples in either file is not judged: it is returned, with
    its counts, in the third value, and its samples are left out of every comparison."""
    found = []
    for samples in (reference, generated):
        if samples.n == 0:
            raise UserError(f"{samples.path}: the file holds no samples")
        conditions = np.asarray(plugin.conditions(samples))
        rows, index = np.unique(conditions, axis=0, return_inverse=True)
        found.append((conditions, rows, index.reshape(-1)))
    (ref_cond, ref_rows, ref_index), (gen_cond, gen_rows, gen_index) = found
    ref_set, gen_set = set(map(tuple, ref_rows.tolist())), set(map(tuple, gen_rows.tolist()))
    if ref_set != gen_set:
        only = lambda a, b, path: ([f"{', '.join(plugin.condition_label(r) for r in sorted(a - b))} only in {path}"]
                                   if a - b else [])
        raise UserError("the files hold different conditions: "
                        + "; ".join(only(ref_set, gen_set, reference.path) + only(gen_set, ref_set, generated.path))
                        + " (generate at exactly the reference's conditions)")
    counts = [np.bincount(index, minlength=len(ref_rows)) for index in (ref_index, gen_index)]
    judged = np.minimum(*counts) >= MIN_PER_CONDITION
    not_judged = [{"condition": condition_dict(plugin, row), "label": plugin.condition_label(row), "n_ref": int(r),
                   "n_gen": int(g)} for row, r, g, ok in zip(ref_rows, *counts, judged) if not ok]
    if not judged.any():
        raise UserError(f"no condition has at least {MIN_PER_CONDITION} samples in both {reference.path} and "
                        f"{generated.path}: nothing to judge")
    renumber = np.where(judged, np.cumsum(judged) - 1, -1)  # judged rows keep their order; the rest -> -1
    ref = Measured(reference, ref_cond, ref_rows[judged], renumber[ref_index])
    gen = Measured(generated, gen_cond, ref_rows[judged], renumber[gen_index])
    return ref, gen, not_judged


def _conditions(plugin, ref: Measured, gen: Measured) -> list[dict]:
    return [{"condition": condition_dict(plugin, row), "label": plugin.condition_label(row), "n_ref": len(r),
             "n_gen": len(g)} for row, r, g in zip(ref.rows, ref.groups, gen.groups)]


def condition_dict(plugin, row: np.ndarray) -> dict[str, float]:
    return {name: shortest_float(value) for name, value in zip(plugin.CONDITION_NAMES, row)}


def shortest_float(value) -> float:
    """The shortest decimal that reads back as `value` in its own precision: float32 2.269, not 2.2690000534."""
    return float(np.format_float_positional(value, unique=True, trim="-"))


# ---------------------------------------------------------------------------------------------
# One observable: W1 with floor, KS, separation power, means


def compare(reference: np.ndarray, generated: np.ndarray, rng: np.random.Generator, threshold: float,
            discrete: bool = False, max_permutations: int = 20000) -> dict:
    """All metrics of one observable in one condition (or pooled): reference (n,), generated (m,).

    The test is a permutation test at the sizes compared (metrics.permutation_test): W1, or for a discrete
    observable the chi-square of its level populations; w1_floor is the median W1 of its null distribution
    and ratio = w1 / w1_floor the effect size. beyond_tolerance: ratio > threshold (whether that fails the
    comparison depends on its significance in the whole family: verdict.decide)."""
    test = m.permutation_test(reference, generated, rng, discrete=discrete, max_permutations=max_permutations)
    ks, ks_pvalue = m.ks_statistic(reference, generated)
    (ref_mean, ref_err), (gen_mean, gen_err) = mean_and_error(reference), mean_and_error(generated)
    return {"ref_mean": ref_mean, "ref_err": ref_err, "gen_mean": gen_mean, "gen_err": gen_err,
            "w1": test["w1"], "w1_floor": test["floor"], "ratio": test["effect"], "test": test["statistic"],
            "p_value": test["p_value"], "permutations": test["permutations"], "ks": ks, "ks_pvalue": ks_pvalue,
            "separation_power": m.separation_power(reference, generated, bins=histogram_edges(reference, generated)),
            "beyond_tolerance": bool(test["effect"] > threshold), "n_ref": len(reference), "n_gen": len(generated)}


def compare_observable(plugin, ref: Measured, gen: Measured, name: str, number: int, threshold: float,
                       seed: int) -> dict:
    """Pooled and per-condition comparison of one observable (pass and significance: verdict.decide)."""
    discrete = plugin.OBSERVABLES[name].discrete
    # pooled: a description, outside the verdict's family; its null needs only enough draws for the floor
    pooled = compare(ref.values(name), gen.values(name), np.random.default_rng([seed, 1, number, 0]), threshold,
                     discrete, max_permutations=POOLED_PERMUTATIONS)
    per_condition = []
    for c, row in enumerate(ref.rows):
        result = compare(ref.values(name, c), gen.values(name, c),
                         np.random.default_rng([seed, 1, number, c + 1]), threshold, discrete)
        per_condition.append({"condition": condition_dict(plugin, row), "label": plugin.condition_label(row), **result})
    worst = max(per_condition, key=lambda p: p["ratio"] if math.isfinite(p["ratio"]) else math.inf)
    keys = ("w1", "w1_floor", "ratio", "ks", "separation_power", "ref_mean", "ref_err", "gen_mean", "gen_err",
            "ks_pvalue", "p_value", "test")
    return {**{k: pooled[k] for k in keys}, "worst_ratio": worst["ratio"], "worst_condition": worst["label"],
            "per_condition": per_condition}


def exact_checks(plugin, ref: Measured, gen: Measured, tolerances: dict) -> list[dict]:
    """The plug-in's comparisons with exactly known values (none where it has no exact_checks), each with
    its tolerance (the plug-in's EXACT_TOLERANCE, `tolerances` overriding by quantity)."""
    if getattr(plugin, "exact_checks", None) is None:
        return []
    limits = {**getattr(plugin, "EXACT_TOLERANCE", {}), **tolerances}
    checks = plugin.exact_checks(ref, gen)
    for check in checks:
        check["tolerance"] = float(limits[check["quantity"]])
        check["beyond_tolerance"] = bool(abs(check["relative"]) > check["tolerance"])
    return checks


# ---------------------------------------------------------------------------------------------
# Memorisation: nearest-neighbour distances to the training sample


def nearest_neighbour_summary(ref_nn: np.ndarray, gen_nn: np.ndarray, copy_distance: float) -> dict:
    """Are generated samples closer to the training sample than independent reference samples are?

    ref_nn (n,), gen_nn (m,): each query sample's distance to its nearest training sample (a plug-in's
    metric). Reports, for both, the median with the 16-84 % range and the fraction of (near-)copies,
    distance <= copy_distance; p_copies, Fisher's exact test (one-sided) of more copies among the generated
    samples; p_closer, the Mann-Whitney U test (one-sided) of smaller generated distances. `suspected`
    when either p-value is below MEMORISATION_LEVEL (1e-3): copies of training samples, or generated samples
    that crowd onto the training sample (also a sign of mode collapse onto typical training samples).
    """
    ref_nn, gen_nn = np.asarray(ref_nn, np.float64), np.asarray(gen_nn, np.float64)
    copies = [int(np.count_nonzero(x <= copy_distance)) for x in (ref_nn, gen_nn)]

    def describe(x, n_copies):
        q16, q50, q84 = np.percentile(x, [16, 50, 84])
        return {"n": len(x), "median": q50, "q16": q16, "q84": q84, "copies": n_copies,
                "fraction_copies": n_copies / len(x), "nearest": x.tolist()}

    p_copies = float(scipy.stats.fisher_exact([[copies[1], len(gen_nn) - copies[1]],
                                               [copies[0], len(ref_nn) - copies[0]]], alternative="greater").pvalue)
    p_closer = float(scipy.stats.mannwhitneyu(gen_nn, ref_nn, alternative="less").pvalue)
    ref, gen = describe(ref_nn, copies[0]), describe(gen_nn, copies[1])
    return {"checked": True, "copy_distance": copy_distance, "reference": ref, "generated": gen,
            "median_ratio": gen["median"] / ref["median"] if ref["median"] > 0 else float("nan"),
            "p_copies": p_copies, "p_closer": p_closer, "level": MEMORISATION_LEVEL,
            "suspected": bool(min(p_copies, p_closer) < MEMORISATION_LEVEL)}


def strided(n: int, count: int) -> np.ndarray:
    """At most `count` indices (sorted, distinct) spread evenly over range(n)."""
    return np.unique(np.linspace(0, n - 1, min(n, count)).astype(np.int64))


class RowPicker:
    """The rows at given indices of a file read chunk by chunk, collected in the order of the indices.

    indices (k,) of samples; rows (k, *shape) of `dtype`. add(start, values) takes the chunk of samples
    start, start + 1, ... (values (c, *shape)).
    """

    def __init__(self, indices, shape: tuple[int, ...], dtype):
        self.indices = np.asarray([] if indices is None else indices, dtype=np.int64)
        self._order = np.argsort(self.indices, kind="stable")
        self._sorted = self.indices[self._order]
        self.rows = np.empty((len(self.indices),) + tuple(shape), dtype=dtype)

    def add(self, start: int, values: np.ndarray) -> None:
        lo, hi = np.searchsorted(self._sorted, [start, start + len(values)])
        self.rows[self._order[lo:hi]] = values[self._sorted[lo:hi] - start]


# ---------------------------------------------------------------------------------------------
# Classifier two-sample test


def classifier_selection(ref: Measured, gen: Measured, max_samples: int,
                         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the samples the classifier sees: equal numbers from both files in every condition.

    Equal counts per condition make the condition itself carry no information about the label, so
    the classifier can only win on the samples.
    """
    per_condition = max(1, max_samples // len(ref.rows))
    picks = ([], [])
    for r, g in zip(ref.groups, gen.groups):
        k = min(len(r), len(g), per_condition)
        picks[0].append(np.sort(rng.choice(r, k, replace=False)))
        picks[1].append(np.sort(rng.choice(g, k, replace=False)))
    return np.concatenate(picks[0]), np.concatenate(picks[1])


def _classifier(plugin, ref: Measured, gen: Measured, keep, inputs, rng, device, enabled: bool) -> dict:
    """classifier_test's result, or why there is none (auc and auc_err null)."""
    if not enabled:
        return {"auc": None, "auc_err": None, "skipped": "disabled"}
    if len(keep[0]) < MIN_CLASSIFIER_SAMPLES:
        return {"auc": None, "auc_err": None, "skipped": f"fewer than {MIN_CLASSIFIER_SAMPLES} samples per class"}
    return classifier_test(plugin, ref, gen, keep, inputs, rng, device)


def _physics_classifier(plugin, ref: Measured, gen: Measured, rng, device, enabled: bool) -> dict:
    """The classifier test on each sample's physics observables (the plug-in's CLASSIFIER_FEATURES, by default
    its OBSERVABLES) and condition, next to its Monte-Carlo-against-Monte-Carlo value (physics_classifier.py);
    auc null when not run."""
    if not enabled:
        return {"auc": None, "auc_err": None, "skipped": "disabled"}
    from physgan.validation.physics_classifier import physics_classifier_test

    names = getattr(plugin, "CLASSIFIER_FEATURES", tuple(plugin.OBSERVABLES))
    columns = [(np.stack([measured.values(name) for name in names], axis=1),
                measured.conditions[measured.index >= 0].astype(np.float64)) for measured in (ref, gen)]
    if min(len(columns[0][0]) // 2, len(columns[1][0])) < MIN_CLASSIFIER_SAMPLES:
        return {"auc": None, "auc_err": None, "skipped": f"fewer than {MIN_CLASSIFIER_SAMPLES} samples per class"}
    (ref_x, ref_c), (gen_x, gen_c) = columns
    return {**physics_classifier_test(ref_x, ref_c, gen_x, gen_c, rng, device=device), "observables": list(names)}


def classifier_test(plugin, ref: Measured, gen: Measured, keep, inputs, rng, device) -> dict:
    """AUC overall and per condition, all on the test split of one conditional classifier."""
    mean, std = ref.rows.mean(axis=0), ref.rows.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # standardised conditions: inputs of order one whatever the units
    conditions = tuple((measured.conditions[k].astype(np.float64) - mean) / std
                       for measured, k in zip((ref, gen), keep))
    shape, n_cond = inputs[0].shape[1:], ref.rows.shape[1]
    result = m.classifier_two_sample_test(inputs[0], inputs[1], lambda: plugin.make_classifier(shape, n_cond), rng,
                                          device=device, conditions=conditions, return_test=True, **CLASSIFIER)
    test = result.pop("test")
    condition_of = np.concatenate([ref.index[keep[0]], gen.index[keep[1]]])[test["source"]]
    per_condition = []
    for c, row in enumerate(ref.rows):
        labels, scores = test["labels"][condition_of == c], test["logits"][condition_of == c]
        n_pos, n_neg = int(labels.sum()), int(len(labels) - labels.sum())
        auc = m.roc_auc(labels, scores) if n_pos and n_neg else float("nan")
        per_condition.append({"condition": condition_dict(plugin, row), "label": plugin.condition_label(row),
                              "auc": auc, "auc_err": m.auc_standard_error(auc, n_pos, n_neg) if n_pos and n_neg
                              else float("nan"), "n_test": len(labels)})
    return {**result, "n_per_class": len(keep[0]), "settings": dict(CLASSIFIER, split="60/20/20"),
            "per_condition": per_condition}


# ---------------------------------------------------------------------------------------------
# Output


@contextlib.contextmanager
def output_directory(path, force: bool):
    """Yield a temporary directory beside `path` (with plots/ inside); rename it onto `path` on success.

    A failure leaves nothing behind; an existing non-empty directory is replaced only with `force`.
    """
    target = Path(path)
    try:
        if target.exists() and not target.is_dir():
            raise UserError(f"{target} exists and is not a directory; give a directory for the report")
        if target.is_dir() and any(target.iterdir()) and not force:
            raise UserError(f"{target} exists and is not empty; pass --force to replace it")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
        (tmp / "plots").mkdir(parents=True)  # mkdir, not mkdtemp: the report gets the user's usual permissions
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        yield tmp
        if target.exists():  # only an empty directory or --force get here; keep it until the new one is in place
            old = target.parent / f".{target.name}.{secrets.token_hex(4)}.old"
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def single_threaded_torch():
    """torch on one thread for the duration: the tensors here are small (a 4096-lattice chunk, a batch of 128),
    and on a shared machine intra-op threads wait for busy cores. Measured on 2 cores with other jobs running:
    training the classifier took 3 ms per sample with 2 threads and 0.06 ms with 1."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _write_report(tmp: Path, results: dict, plugin, ref: Measured, gen: Measured, extras: dict, pdf: bool,
                  training_log) -> None:
    from physgan.validation import report

    histograms = HistogramFile()  # every histogram the plots draw, for report/histograms.h5
    plots = report.observable_plots(plugin.OBSERVABLES, ref, gen, results, tmp / "plots", pdf, histograms)
    plots += plugin.plots(ref, gen, extras, tmp / "plots", pdf, histograms)
    content = plugin.report_content(extras)
    memorisation = memorisation_content(extras["memorisation"])
    speed = speed_content(results["speed"])
    content = {key: list(content.get(key, [])) + memorisation[key] + speed[key] for key in ("summary", "tables")}
    if extras["memorisation"]["checked"]:
        plots.append(memorisation_plot(extras["memorisation"], tmp / "plots", pdf, histograms))
    if training_log is not None:
        plots.append(report.training_plot(training_log, tmp / "plots", pdf))
    histograms.write(tmp / "histograms.h5")
    (tmp / "metrics.json").write_text(json.dumps(results, indent=1, allow_nan=False) + "\n")
    report.write_html(tmp / "report.html", results, observables=plugin.OBSERVABLES, content=content, plots=plots,
                      plots_dir=tmp / "plots")


def memorisation_content(memo: dict) -> dict:
    """Summary line and table of extras["memorisation"] (nearest_neighbour_summary plus the plug-in's
    metric, unit and queries)."""
    if not memo["checked"]:
        return {"summary": [("Memorisation", f"not checked: {memo['reason']}")], "tables": []}
    unit = f" {memo['unit']}" if memo["unit"] else ""
    ref, gen = memo["reference"], memo["generated"]
    summary = [("Memorisation", f"{'SUSPECTED' if memo['suspected'] else 'not seen'}: nearest training sample at "
                                f"median {gen['median']:.3g}{unit} (generated) vs {ref['median']:.3g}{unit} "
                                f"(reference, independent of the training); copies {gen['fraction_copies']:.1%} "
                                f"vs {ref['fraction_copies']:.1%}")]
    rows = [[who, str(entry["n"]), f"{entry['median']:.3g}", f"{entry['q16']:.3g} – {entry['q84']:.3g}",
             f"{entry['copies']} ({entry['fraction_copies']:.1%})"] for who, entry in (("reference", ref),
                                                                                      ("generated", gen))]
    note = (f"{memo['metric']}; {memo['queries']}. Copies: distance ≤ {memo['copy_distance']:.3g}{unit}. "
            f"p(more copies among the generated) = {memo['p_copies']:.2g} (Fisher), p(generated closer) = "
            f"{memo['p_closer']:.2g} (Mann-Whitney); memorisation is suspected below {memo['level']:g}.")
    return {"summary": summary, "tables": [{"title": "Memorisation: distance to the nearest training sample",
                                            "headers": ["sample", "queries", f"median{unit}", "16–84 %", "copies"],
                                            "rows": rows, "note": note}]}


def speed_summary(speed: dict) -> dict:
    """Samples per second of the Monte Carlo and of the generator, and the generator's speed-up. A Monte Carlo
    whose time is unknown (seconds None: a given data file that records none) has per_second and speed_up
    None: no number is made up."""
    summary = {who: {**speed[who], "per_second": _rate(speed[who])} for who in ("monte_carlo", "generator")}
    rates = summary["generator"]["per_second"], summary["monte_carlo"]["per_second"]
    summary["speed_up"] = None if None in rates else rates[0] / rates[1]
    return summary


def _rate(entry: dict) -> float | None:
    seconds = entry.get("seconds")
    return None if seconds is None or not seconds > 0 else entry["n"] / seconds


def _untimed(mc: dict) -> list[str]:
    """The data files whose Monte Carlo time is unknown (time_from None), by name."""
    return [name for name, how in mc.get("time_from", {}).items() if how is None]


def speed_line(speed: dict) -> str:
    gen, mc = speed["generator"], speed["monte_carlo"]
    generator = f"generator {gen['per_second']:.4g} samples/s ({gen['device']})"
    if speed["speed_up"] is None:
        files = _untimed(mc) or ["data"]
        return (f"{generator}; Monte Carlo time unknown (the given {' and '.join(files)} "
                f"{'files record' if len(files) > 1 else 'file records'} none): no speed-up stated")
    recorded = [name for name, how in mc.get("time_from", {}).items() if how == "provenance"]
    note = (f" (the given {' and '.join(recorded)} file{'s' if len(recorded) > 1 else ''}: Monte Carlo time "
            "from the provenance)" if recorded else "")
    return (f"{generator} vs Monte Carlo {mc['per_second']:.4g} samples/s{note}: "
            f"speed-up {speed['speed_up']:.3g}x")


TIME_FROM = {"run": "measured in this run", "provenance": "as recorded in its provenance by the physgan simulate "
             "that wrote it", None: "unknown (a given file that records no Monte Carlo time)"}


def speed_content(speed: dict | None) -> dict:
    """Summary line and table of metrics["speed"] (none: nothing to report)."""
    if speed is None:
        return {"summary": [], "tables": []}
    mc, gen = speed["monte_carlo"], speed["generator"]
    summary = [("Speed", speed_line(speed))]

    def row(who: str, entry: dict) -> list[str]:
        if entry["per_second"] is None:
            return [who, str(entry["n"]), "unknown", "unknown", "unknown"]
        return [who, str(entry["n"]), f"{entry['seconds']:.3g}", f"{entry['per_second']:.4g}",
                f"{1e3 / entry['per_second']:.3g}"]

    sources = mc.get("time_from", {"training and test": "run"})
    where = "; ".join(f"{name}: {TIME_FROM[how]}" for name, how in sources.items())
    note = (f"Wall time of the Monte Carlo of the training and test files (event generation or thermalisation "
            f"and thinning included; {where}), and of writing the generated file in this run (observables "
            "included)." + (" Without the time of every data file no speed-up is stated." if speed["speed_up"] is None
                            else ""))
    return {"summary": summary, "tables": [{"title": "Speed: Monte Carlo against the generator",
                                            "headers": ["producer", "samples", "seconds", "samples/s", "ms/sample"],
                                            "rows": [row("Monte Carlo", mc), row("generator", gen)], "note": note}]}


def memorisation_plot(memo: dict, plots_dir, pdf: bool, histograms: HistogramFile) -> tuple[str, str]:
    """Histograms of the distance to the nearest training sample, reference and generated (kept in
    `histograms`)."""
    from physgan.validation import report

    ref, gen = np.array(memo["reference"]["nearest"]), np.array(memo["generated"]["nearest"])
    edges = histogram_edges(ref, gen, bins=20)
    series = {"reference": Histogram.of(ref, edges), "generated": Histogram.of(gen, edges)}
    distance = Observable("distance to the nearest training sample", "distance", memo["unit"], memo["metric"])
    histograms.add("memorisation_nearest_neighbour", "nearest_training_distance", distance, series)
    with report.style():
        fig, (ax, rax) = report.ratio_figure()
        report.histogram_panel(ax, rax, series["reference"], series["generated"])
        unit = f" [{memo['unit']}]" if memo["unit"] else ""
        report.finish(ax, rax, ylabel="probability density", xlabel=f"distance to the nearest training sample{unit}",
                      rlabel="memorisation")
        return ("Distance to the nearest training sample (a copy sits at 0)",
                report.save(fig, plots_dir, "memorisation_nearest_neighbour", pdf))


def _file_entry(samples: Samples) -> dict:
    return {"path": str(samples.path), "n": int(samples.n), "source": samples.source, "format": samples.format,
            "provenance": samples.provenance}


def to_json(obj):
    """Plain JSON values: numpy scalars and arrays become Python ones, NaN and infinities null."""
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_json(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def verdict_line(metrics: dict, out) -> str:
    """One line for the terminal: verdict, failing checks, where the report is (out None: no report)."""
    failing = [check["check"] for check in metrics["checks"] if not check["pass"]]
    return (f"verdict: {metrics['verdict'].upper()}" + (f" (failing: {'; '.join(failing)})" if failing else "")
            + ("" if out is None else f"; report: {out}/report.html"))
