"""System-agnostic metrics comparing a generated sample with a reference (Monte Carlo) sample.

Everything works on numpy arrays: 1D samples of one observable (W1, KS, separation power), feature
arrays (n, d) (FPD, KPD), or arrays of any per-sample shape (n, ...) for the classifier test.
Conventions and published numbers: docs/physics.md, "Generative-model metrics".
"""
from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import scipy.optimize
import scipy.special
import scipy.stats
import torch

from physgan.stats import mean_and_error


# ---------------------------------------------------------------------------------------------
# One observable at a time


def wasserstein_1(a: np.ndarray, b: np.ndarray) -> float:
    """Earth mover's distance W1 between two 1D samples a (n,) and b (m,) (scipy.stats.wasserstein_distance)."""
    return float(scipy.stats.wasserstein_distance(a, b))


def w1_with_floor(reference: np.ndarray, generated: np.ndarray, rng: np.random.Generator,
                  n_boot: int = 5, max_size: int | None = None) -> dict:
    """W1(reference, generated) next to the reference-vs-reference floor, measured with one protocol.

    reference (n_ref,), generated (n_gen,). In each of `n_boot` rounds a subsample of size
    m = min(n_gen, n_ref // 2, max_size) is drawn from `generated`, and two disjoint subsamples of
    size m from `reference`: w1 = W1(ref_1, gen), floor = W1(ref_1, ref_2). The W1 estimator is
    biased upwards and shrinks with m, so only equal-size comparisons make "w1 <= k x floor" honest
    (JetNet's bootstrapped W1, Kansal et al. arXiv:2106.11535 and arXiv:2211.10295).
    Returns {w1, w1_err, floor, floor_err, ratio}; errors are standard errors over the rounds.
    """
    reference, generated = np.ravel(reference), np.ravel(generated)
    m = min(len(generated), len(reference) // 2, max_size or len(generated))
    if m < 1:
        raise ValueError(f"need >= 2 reference and >= 1 generated values, "
                         f"got {len(reference)} and {len(generated)}")
    w1, floor = np.empty(n_boot), np.empty(n_boot)
    for i in range(n_boot):
        ref = reference[rng.permutation(len(reference))[:2 * m]]
        gen = generated[rng.choice(len(generated), size=m, replace=False)]
        w1[i] = wasserstein_1(ref[:m], gen)
        floor[i] = wasserstein_1(ref[:m], ref[m:])
    (w1_mean, w1_err), (floor_mean, floor_err) = mean_and_error(w1), mean_and_error(floor)
    if floor_mean > 0:
        ratio = w1_mean / floor_mean
    else:  # a constant reference: any difference at all is infinitely many floors away
        ratio = 0.0 if w1_mean == 0 else float("inf")
    return {"w1": w1_mean, "w1_err": w1_err, "floor": floor_mean, "floor_err": floor_err, "ratio": ratio}


def ks_statistic(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value for 1D samples a (n,), b (m,) (scipy.stats.ks_2samp)."""
    result = scipy.stats.ks_2samp(a, b)
    return float(result.statistic), float(result.pvalue)


def separation_power(a: np.ndarray, b: np.ndarray, bins: int | np.ndarray = 50) -> float:
    """S = 1/2 sum_i (h1_i - h2_i)^2 / (h1_i + h2_i) for 1D samples a (n,), b (m,); 0 identical, 1 disjoint.

    h1, h2 are histograms with shared edges, each normalised to unit sum (CaloChallenge, eq. 15 of
    arXiv:2009.03796). `bins` is an array of edges, or an int: that many equal-width bins over the
    pooled range of a and b (equal widths, not pooled quantiles, because quantile edges collapse on
    discrete observables such as Ising magnetisations). Values outside given edges are not counted.
    """
    edges = np.histogram_bin_edges(np.concatenate([np.ravel(a), np.ravel(b)]), bins=bins)
    h1, h2 = np.histogram(a, edges)[0], np.histogram(b, edges)[0]
    if h1.sum() == 0 or h2.sum() == 0:
        raise ValueError("a sample has no values inside the histogram edges")
    return histogram_separation_power(h1, h2)


def histogram_separation_power(h1: np.ndarray, h2: np.ndarray) -> float:
    """The separation power of two histograms with shared bins (counts, or any non-negative weights),
    each normalised to unit sum here; for spectra accumulated chunk by chunk."""
    h1, h2 = np.asarray(h1, np.float64), np.asarray(h2, np.float64)
    h1, h2 = h1 / h1.sum(), h2 / h2.sum()
    filled = (h1 + h2) > 0
    return float(0.5 * np.sum((h1[filled] - h2[filled]) ** 2 / (h1[filled] + h2[filled])))


# ---------------------------------------------------------------------------------------------
# Feature vectors: Frechet and kernel physics distances


def normalise_features(real: np.ndarray, gen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Divide both (n, d) feature arrays by max |.| of each feature over the REAL sample (arXiv:2211.10295).

    A feature that is identically zero in the real sample is left unscaled.
    """
    scale = np.max(np.abs(real), axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return real / scale, gen / scale


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to feature arrays x (n, d) and y (m, d).

    FD = ||mu_x - mu_y||^2 + Tr(S_x + S_y - 2 (S_x S_y)^(1/2)) (Dowson & Landau, J. Multivar. Anal. 12,
    450 (1982); Heusel et al. arXiv:1706.08500). Tr (S_x S_y)^(1/2) is the sum of square roots of the
    eigenvalues of the symmetric matrix S_x^(1/2) S_y S_x^(1/2), which avoids complex round-off of sqrtm.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    cov_x = np.atleast_2d(np.cov(x, rowvar=False))
    cov_y = np.atleast_2d(np.cov(y, rowvar=False))
    w, v = np.linalg.eigh(cov_x)
    sqrt_x = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    tr_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(sqrt_x @ cov_y @ sqrt_x), 0, None)))
    diff = x.mean(axis=0) - y.mean(axis=0)
    return float(diff @ diff + np.trace(cov_x) + np.trace(cov_y) - 2 * tr_sqrt)


def fpd(real: np.ndarray, gen: np.ndarray, rng: np.random.Generator, min_samples: int = 20000,
        max_samples: int = 50000, num_points: int = 10, num_batches: int = 20,
        normalise: bool = True) -> tuple[float, float]:
    """Frechet physics distance: the Frechet distance extrapolated to infinite sample size.

    real (n, d), gen (m, d) features (the 36 EFPs with d <= 4 for jets). FD is averaged over
    `num_batches` bootstrap draws (with replacement) at each of `num_points` sizes N evenly spaced in
    1/N between min_samples and max_samples, then fitted as FD = FPD + slope / N with both bounded
    >= 0; returns (intercept, its least-squares error). Kansal et al. arXiv:2211.10295, following
    Chong & Forsyth arXiv:1911.07023 (JetNet's gen_metrics.fpd). Sizes are capped at min(n, m);
    when fewer than min_samples are available the sizes run from half the available size up to it.
    """
    if normalise:
        real, gen = normalise_features(real, gen)
    max_n = min(max_samples, len(real), len(gen))
    min_n = min_samples if min_samples < max_n else max_n // 2
    sizes = (1 / np.linspace(1 / min_n, 1 / max_n, num_points)).astype(int)
    mean_fd = [np.mean([frechet_distance(real[rng.integers(len(real), size=n)],
                                         gen[rng.integers(len(gen), size=n)]) for _ in range(num_batches)])
               for n in sizes]
    return _nonnegative_line_intercept(1 / sizes, np.array(mean_fd))


def _nonnegative_line_intercept(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Intercept and its error of y = a + b x fitted with a, b >= 0 (error as scipy's curve_fit gives it)."""
    design = np.stack([np.ones_like(x), x], axis=1)
    params, residual_norm = scipy.optimize.nnls(design, y)  # exact active-set solution, unlike iterative solvers
    covariance = residual_norm ** 2 / max(len(y) - 2, 1) * np.linalg.pinv(design.T @ design)
    return float(params[0]), float(np.sqrt(covariance[0, 0]))


def kpd(real: np.ndarray, gen: np.ndarray, rng: np.random.Generator, num_batches: int = 10,
        batch_size: int = 5000, normalise: bool = True) -> tuple[float, float]:
    """Kernel physics distance: unbiased MMD^2 with the kernel k(x, y) = (x.y / d + 1)^4.

    real (n, d), gen (m, d) features. Returns the median over `num_batches` batches and half the
    16-84 % range as its error (Kansal et al. arXiv:2211.10295; kernel of Binkowski et al.
    arXiv:1801.01401). Each batch is drawn without replacement (with replacement only where a sample
    is smaller than batch_size), so no point is paired with a copy of itself.
    """
    if normalise:
        real, gen = normalise_features(real, gen)
    values = [_mmd2_unbiased(_draw(real, batch_size, rng), _draw(gen, batch_size, rng))
              for _ in range(num_batches)]
    low, median, high = np.percentile(values, [16, 50, 84])
    return float(median), float((high - low) / 2)


def _draw(x: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    return x[rng.choice(len(x), size=size, replace=size > len(x))]


def _poly_kernel_sum(x: np.ndarray, y: np.ndarray, chunk: int = 1024) -> float:
    """sum_ij (x_i.y_j / d + 1)^4 over rows of x (n, d) and y (m, d), in row chunks to bound memory."""
    d = x.shape[1]
    return float(sum(np.sum((x[i:i + chunk] @ y.T / d + 1) ** 4) for i in range(0, len(x), chunk)))


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 (Gretton et al., JMLR 13, 723 (2012), eq. 3) with the quartic polynomial kernel."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n, m, d = len(x), len(y), x.shape[1]
    k_xx = _poly_kernel_sum(x, x) - np.sum((np.sum(x * x, axis=1) / d + 1) ** 4)
    k_yy = _poly_kernel_sum(y, y) - np.sum((np.sum(y * y, axis=1) / d + 1) ** 4)
    return k_xx / (n * (n - 1)) + k_yy / (m * (m - 1)) - 2 * _poly_kernel_sum(x, y) / (n * m)


# ---------------------------------------------------------------------------------------------
# Classifier two-sample test


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties counting 1/2.

    labels (n,) of 0/1, scores (n,). Mann-Whitney U / (n_1 n_0) from average ranks
    (Hanley & McNeil, Radiology 143, 29 (1982)).
    """
    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("roc_auc needs both classes")
    ranks = scipy.stats.rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auc_standard_error(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an AUC (Hanley & McNeil, Radiology 143, 29 (1982), eqs. 1-3)."""
    q1, q2 = auc / (2 - auc), 2 * auc ** 2 / (1 + auc)
    variance = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc ** 2) + (n_neg - 1) * (q2 - auc ** 2)) / (n_pos * n_neg)
    return float(np.sqrt(variance))


def classifier_two_sample_test(reference: np.ndarray, generated: np.ndarray,
                               make_model: Callable[[], torch.nn.Module], rng: np.random.Generator, *,
                               epochs: int, batch_size: int, lr: float, device: str | torch.device = "cpu",
                               conditions: tuple[np.ndarray, np.ndarray] | None = None,
                               return_test: bool = False) -> dict:
    """Train a classifier to tell reference (label 0) from generated (label 1); AUC 0.5 = indistinguishable.

    reference (n, ...), generated (m, ...) with equal per-sample shapes; `make_model()` returns a torch
    module mapping a float32 batch (B, ...) to logits (B,). The larger class is subsampled to balance,
    the data split 60/20/20 into train/validation/test, the model trained with BCE-with-logits and Adam,
    and the epoch with the lowest validation loss kept (Lopez-Paz & Oquab arXiv:1610.06545; CaloChallenge
    arXiv:2410.21611). Platt scaling fitted on the validation split calibrates the probabilities. AUC is
    invariant under that monotone map, so calibration only affects `jsd`, the Jensen-Shannon divergence
    (in bits, 0..1) implied by the calibrated test loss: log 2 - BCE (the CaloChallenge estimate; a lower bound).
    Returns {auc, auc_err (Hanley & McNeil), n_test, jsd}. Seeds torch from `rng`, so a seeded rng reproduces.

    Optional: `conditions` = (reference_conditions (n, k), generated_conditions (m, k)) makes the test
    conditional: the model is called as model(x, c) with the float32 conditions (B, k), so it judges each
    sample at its own condition (a conditional generator must be right at every condition, not on average).
    `return_test` adds "test": {"labels", "logits", "probabilities" (calibrated), "source": the row of each
    test sample in concatenate([reference, generated])}, all (n_test,), e.g. for AUCs per condition.
    """
    n = min(len(reference), len(generated))
    picked_ref = rng.choice(len(reference), n, replace=False)
    picked_gen = rng.choice(len(generated), n, replace=False)
    inputs = [np.concatenate([reference[picked_ref], generated[picked_gen]]).astype(np.float32)]
    if conditions is not None:
        inputs.append(np.concatenate([conditions[0][picked_ref], conditions[1][picked_gen]]).astype(np.float32))
    y = np.concatenate([np.zeros(n, np.float32), np.ones(n, np.float32)])
    order = rng.permutation(2 * n)
    train, val, test = np.split(order, [int(0.6 * 2 * n), int(0.8 * 2 * n)])
    device = torch.device(device)
    with torch.random.fork_rng(devices=[] if device.type == "cpu" else None):
        torch.manual_seed(int(rng.integers(2 ** 62)))
        model = _train_classifier(make_model().to(device), inputs, y, train, val, rng, epochs, batch_size, lr, device)
        val_logits, test_logits = (_logits(model, _take(inputs, idx), batch_size, device) for idx in (val, test))
    slope, offset = _platt_scaling(val_logits, y[val])
    auc = roc_auc(y[test], test_logits)
    bce = _bce(slope * test_logits + offset, y[test])
    result = {"auc": auc, "auc_err": auc_standard_error(auc, int(y[test].sum()), int((1 - y[test]).sum())),
              "n_test": len(test), "jsd": float((np.log(2) - bce) / np.log(2))}
    if return_test:
        source = np.concatenate([picked_ref, len(reference) + picked_gen])[test]
        result["test"] = {"labels": y[test], "logits": test_logits,
                          "probabilities": scipy.special.expit(slope * test_logits + offset), "source": source}
    return result


def _take(inputs: list[np.ndarray], idx: np.ndarray) -> list[np.ndarray]:
    """The rows idx of every model input (the samples, and their conditions where given)."""
    return [a[idx] for a in inputs]


def _train_classifier(model, inputs, y, train, val, rng, epochs, batch_size, lr, device):
    """Adam on BCE-with-logits; returns the model at the epoch with the lowest validation loss."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    best_loss, best_state = np.inf, copy.deepcopy(model.state_dict())
    val_inputs = _take(inputs, val)
    for _ in range(epochs):
        model.train()
        shuffled = rng.permutation(train)
        for start in range(0, len(shuffled), batch_size):
            idx = shuffled[start:start + batch_size]
            logits = model(*(torch.from_numpy(a).to(device) for a in _take(inputs, idx))).reshape(-1)
            loss = loss_fn(logits, torch.from_numpy(y[idx]).to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        val_loss = _bce(_logits(model, val_inputs, batch_size, device), y[val])
        if val_loss < best_loss:
            best_loss, best_state = val_loss, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return model


@torch.no_grad()
def _logits(model: torch.nn.Module, inputs: list[np.ndarray], batch_size: int, device: torch.device) -> np.ndarray:
    model.eval()
    batches = ([torch.from_numpy(a[i:i + batch_size]).to(device) for a in inputs]
               for i in range(0, len(inputs[0]), batch_size))
    return np.concatenate([model(*batch).reshape(-1).double().cpu().numpy() for batch in batches])


def _bce(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean binary cross-entropy (nats) of logits against 0/1 labels, computed stably."""
    return float(np.mean(np.logaddexp(0, logits) - labels * logits))


def _platt_scaling(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(a, b) minimising the BCE of sigmoid(a z + b) on held-out logits z (Platt 1999)."""
    fit = scipy.optimize.minimize(lambda p: _bce(p[0] * logits + p[1], labels), x0=[1.0, 0.0])
    return float(fit.x[0]), float(fit.x[1])


# ---------------------------------------------------------------------------------------------
# Permutation two-sample tests at the sizes compared, and multiple-testing control

# Largest (permutations x pooled size) block handled at once: bounds the working memory of a batch
# (one float64 array of this many elements, ~400 MB at the cap) for very large samples.
_PERMUTATION_BLOCK_ELEMENTS = 50_000_000


def permutation_test(reference: np.ndarray, generated: np.ndarray, rng: np.random.Generator, *,
                     discrete: bool = False, max_permutations: int = 20000, batch: int = 200,
                     stop_after: int = 20) -> dict:
    """Permutation two-sample test of one 1D observable, reference (n,) vs generated (m,), at their sizes.

    What: the statistic is W1 (1D Wasserstein distance) between the two samples at their full sizes, or,
    with `discrete=True` (values on a finite set of levels, e.g. the Ising energy per site), the chi-square
    statistic of the 2 x K table of level counts, sum (observed - expected)^2 / expected with expected from
    the pooled level frequencies (levels = the distinct pooled values). Its null distribution is built by
    pooling the n + m values and re-splitting them at random into n and m (Fisher-Pitman permutation test):
    exactly the sizes compared, so no asymptotic formula and no merging of sparse levels is needed.

    Why: W1 is biased upwards by a sample-size dependent amount, so "is this W1 large?" only has an answer
    against what an honest sample of the same sizes shows. Next to the p-value this returns `floor`, the
    median null W1 (computed for the discrete test as well), and `effect` = W1 / floor (inf if floor == 0
    < W1, 0 if both are 0): ~1 for a faithful sample, a size-aware effect size otherwise.

    How: the pooled values are sorted once (z, gaps dz); a permutation is a labelling of z, and with A_i, B_i
    the counts of reference and generated labels among z_0..z_i, W1 = sum_i |A_i / n - B_i / m| dz_i (tied
    values have gap 0). Labellings are drawn `batch` at a time as one (batch, n + m) array (split further
    above _PERMUTATION_BLOCK_ELEMENTS); W1 is evaluated exactly in integers up to the final dot product.
    The per-permutation level counts of the chi-square are differences of the same cumulative counts at the
    level boundaries (z is sorted, so every level is a contiguous run; the same counts a bincount gives).

    Sequential stopping (Besag & Clifford, "Sequential Monte Carlo p-values", Biometrika 78, 301 (1991)):
    stop after the batch in which the number of null statistics >= the observed one reaches `stop_after`,
    or at `max_permutations`; p = (1 + count) / (1 + permutations done). Clearly-null comparisons then cost
    about one batch, while strong effects resolve p down to 1 / (1 + max_permutations). At least one batch
    (of min(batch, max_permutations)) is always done, so `floor` is a median of >= that many values.
    Null statistics count as >= observed within a relative 1e-10, so exact ties (common for discrete
    levels) are not lost to rounding.

    Returns {"statistic": "w1" | "chi2", "value": the observed statistic, "w1": observed W1, "floor",
    "effect", "p_value", "permutations": the number done}. Raises ValueError for empty or non-finite input.
    """
    reference = np.asarray(reference, np.float64).ravel()
    generated = np.asarray(generated, np.float64).ravel()
    n, m = len(reference), len(generated)
    if n == 0 or m == 0:
        raise ValueError(f"permutation_test needs non-empty samples, got sizes {n} and {m}")
    if max_permutations < 1 or batch < 1 or stop_after < 1:
        raise ValueError("max_permutations, batch and stop_after must be >= 1")
    pooled = np.concatenate([reference, generated])
    if not np.all(np.isfinite(pooled)):
        raise ValueError("permutation_test needs finite values")
    order = np.argsort(pooled, kind="stable")
    z = pooled[order]
    total = n + m
    dz = np.diff(z)
    levels = None
    if discrete:
        # ends[k]: position in z of the last value of level k; counts[k]: pooled count of level k
        ends = np.flatnonzero(dz != 0)
        counts = np.diff(np.concatenate([[-1], ends, [total - 1]])).astype(np.float64)
        levels = (ends, counts)
    observed_w1, observed_chi2 = _labelled_w1_chi2((order < n)[None, :], dz, n, m, levels)
    observed_w1 = float(observed_w1[0])
    observed = float(observed_chi2[0]) if discrete else observed_w1
    threshold = observed - 1e-10 * abs(observed)

    # Every row of `labelling` holds n reference labels; shuffling the rows in place (Fisher-Yates) gives
    # uniform labellings independent of the previous ones, so the buffer is reused without resetting it.
    rows_per_block = max(1, min(batch, max_permutations, _PERMUTATION_BLOCK_ELEMENTS // total))
    labelling = np.zeros((rows_per_block, total), bool)
    labelling[:, :n] = True
    null_w1, count, done = [], 0, 0
    while done < max_permutations and (done == 0 or count < stop_after):
        size = min(batch, max_permutations - done)
        for start in range(0, size, rows_per_block):
            labels = labelling[:min(rows_per_block, size - start)]
            rng.permuted(labels, axis=1, out=labels)
            w1, chi2 = _labelled_w1_chi2(labels, dz, n, m, levels)
            null_w1.append(w1)
            count += int(np.count_nonzero((chi2 if discrete else w1) >= threshold))
        done += size

    floor = float(np.median(np.concatenate(null_w1)))
    if floor > 0:
        effect = observed_w1 / floor
    else:
        effect = 0.0 if observed_w1 == 0 else float("inf")
    return {"statistic": "chi2" if discrete else "w1", "value": observed, "w1": observed_w1, "floor": floor,
            "effect": effect, "p_value": (1 + count) / (1 + done), "permutations": done}


def _labelled_w1_chi2(labels: np.ndarray, dz: np.ndarray, n: int, m: int,
                      levels: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray | None]:
    """W1 and (with levels) the chi-square of labellings of the sorted pooled sample.

    labels (rows, n + m) bool, True = reference, over the sorted pooled values whose gaps are dz (n + m - 1,);
    levels = (ends, counts): the last position of each level but the final one (K - 1,) and the pooled
    count of every level (K,). Returns (w1 (rows,), chi2 (rows,) or None).
    A_i / n - B_i / m = (A_i (n + m) - (i + 1) n) / (n m) with integers held exactly in float64 (< 2^53).
    chi2 over the 2 x K table with row sums n, m and column sums c_k reduces to
    sum_k (N a_k - n c_k)^2 / (n m c_k), N = n + m, a_k the reference count of level k.
    """
    total, rows = n + m, len(labels)
    cumulative = np.cumsum(labels, axis=1, dtype=np.int32 if total < 2 ** 31 else np.int64)  # A_i
    chi2 = None
    if levels is not None:
        ends, counts = levels
        # reference count per level, in float64 so that N a_k stays exact (no int32 overflow)
        per_level = np.diff(cumulative[:, ends].astype(np.float64), axis=1, prepend=0, append=n)
        chi2 = ((total * per_level - n * counts) ** 2 / (n * m)) @ (1.0 / counts)
    scaled = np.empty((rows, total - 1))
    np.multiply(cumulative[:, :-1], float(total), out=scaled)
    scaled -= n * np.arange(1, total, dtype=np.float64)
    np.abs(scaled, out=scaled)
    return (scaled @ dz) / (n * m), chi2


def _finite_p_values(p_values) -> tuple[np.ndarray, np.ndarray]:
    """Flat float copy of p_values and the mask of those tested (not NaN); checks 0 <= p <= 1."""
    p = np.asarray(p_values, np.float64).ravel()
    tested = ~np.isnan(p)
    if np.any((p[tested] < 0) | (p[tested] > 1)):
        raise ValueError("p-values must lie in [0, 1] (or be NaN for hypotheses not tested)")
    return p, tested


def holm_adjusted(p_values) -> np.ndarray:
    """Holm-adjusted p-values: the smallest family-wise level at which each hypothesis is rejected.

    Holm, "A simple sequentially rejective multiple test procedure", Scand. J. Statist. 6, 65 (1979): with
    the M tested p-values sorted, p_(1) <= ... <= p_(M), H_(1), H_(2), ... are rejected while
    p_(i) <= alpha / (M - i + 1); this controls the probability of any false rejection at alpha under any
    dependence between the tests, and is uniformly more powerful than Bonferroni. Equivalently, a
    hypothesis is rejected at level alpha when its adjusted p-value is <= alpha, with
    adj_(i) = min(1, max_{j <= i} (M - j + 1) p_(j)) over the M tested p-values sorted ascending (Holm 1979;
    Wright, Biometrics 48, 1005 (1992)); monotone in p and capped at 1. NaN entries stay NaN and do not
    count in M. Returns float, same shape as p_values.
    """
    p, tested = _finite_p_values(p_values)
    adjusted = np.full(p.shape, np.nan)
    idx = np.flatnonzero(tested)
    sorted_idx = idx[np.argsort(p[idx], kind="stable")]
    M = len(sorted_idx)
    adjusted[sorted_idx] = np.minimum(1.0, np.maximum.accumulate((M - np.arange(M)) * p[sorted_idx]))
    return adjusted.reshape(np.shape(p_values))
