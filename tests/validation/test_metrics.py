"""Metrics pinned to closed forms (docs/physics.md, "Generative-model metrics") and to their statistical behaviour."""
import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch

from physgan.validation.metrics import (
    auc_standard_error, classifier_two_sample_test, fpd, frechet_distance, kpd, ks_statistic, roc_auc,
    separation_power, w1_with_floor, wasserstein_1,
)
from physgan.validation import metrics as metrics_module
from physgan.validation.metrics import (
    _labelled_w1_chi2, holm_adjusted, permutation_test,
)


def test_w1_of_a_shifted_sample_is_the_shift():
    x = np.random.default_rng(0).normal(size=1000)
    assert wasserstein_1(x, x + 0.37) == pytest.approx(0.37, abs=1e-12)


def test_w1_floor_separates_an_independent_sample_from_a_shifted_one():
    """Same protocol for both: an independent N(0,1) sample sits at the floor, a 0.2 sigma shift does not."""
    rng = np.random.default_rng(1)
    reference = rng.normal(size=10000)  # m = min(5000, 10000 // 2) = 5000 per subsample
    same = w1_with_floor(reference, rng.normal(size=5000), rng)
    shifted = w1_with_floor(reference, rng.normal(0.2, 1.0, size=5000), rng)
    assert same["ratio"] == pytest.approx(1.0, abs=0.5)
    assert same["w1"] <= 2 * same["floor"]
    assert shifted["ratio"] > 4  # about 8 (0.2 over a floor of ~0.025); 5.6-10.6 over 30 seeds
    assert shifted["w1"] == pytest.approx(0.2, abs=0.03)
    assert same["w1_err"] > 0 and same["floor_err"] > 0


def test_w1_floor_of_a_constant_reference():
    rng = np.random.default_rng(2)
    assert w1_with_floor(np.zeros(10), np.zeros(5), rng)["ratio"] == 0.0
    assert w1_with_floor(np.zeros(10), np.ones(5), rng)["ratio"] == np.inf


def test_separation_power_is_zero_for_identical_and_one_for_disjoint_samples():
    x = np.random.default_rng(3).normal(size=500)
    assert separation_power(x, x, bins=20) == 0.0
    assert separation_power(x, x + 100, bins=20) == 1.0
    assert separation_power(x, x + 100, bins=np.linspace(-200, 200, 41)) == 1.0


def test_separation_power_by_hand():
    # edges [0, 1, 2]: h1 = (1, 0), h2 = (1/2, 1/2): S = 1/2 [(1/2)^2 / (3/2) + (1/2)^2 / (1/2)] = 1/3
    edges = np.array([0.0, 1.0, 2.0])
    assert separation_power(np.array([0.5, 0.5]), np.array([0.5, 1.5]), bins=edges) == pytest.approx(1 / 3)


def test_ks_statistic():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=300), rng.normal(0.1, 1.0, size=400)
    assert ks_statistic(x, x + 100)[0] == 1.0
    expected = scipy.stats.ks_2samp(x, y)
    assert ks_statistic(x, y) == pytest.approx((expected.statistic, expected.pvalue))


# FPD/KPD closed forms, shapes as in JetNet's tests: real = 2 * ones((n, 2)), gen = zeros((n, 2)).
# Normalised by max |real| = 2 the features are 1 vs 0; Gaussians of zero covariance leave
# FD = ||mu_real - mu_gen||^2 = d * c^2: 2 * 1^2 = 2 normalised, 2 * 2^2 = 8 unnormalised (so d = 2 is
# what gives the numbers in docs/physics.md). KPD does not depend on d: x.y / d = c^2 for constant vectors, so
# MMD^2 = (c^2 + 1)^4 + 1 - 2 = 16 - 1 = 15 (c = 1) and 625 - 1 = 624 (c = 2).
TWOS, ZEROS = 2 * np.ones((1000, 2)), np.zeros((1000, 2))


@pytest.mark.parametrize("normalise, expected", [(True, 2.0), (False, 8.0)])
def test_fpd_closed_form(normalise, expected):
    rng = np.random.default_rng(5)
    value, error = fpd(TWOS, ZEROS, rng, min_samples=200, max_samples=500, normalise=normalise)
    assert value == pytest.approx(expected, rel=1e-9)
    assert error == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("normalise, expected", [(True, 15.0), (False, 624.0)])
def test_kpd_closed_form(normalise, expected):
    value, error = kpd(TWOS, ZEROS, np.random.default_rng(6), batch_size=300, normalise=normalise)
    assert value == pytest.approx(expected, rel=1e-9)
    assert error == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_of_gaussians_by_hand():
    # 1D: FD = (mu1 - mu2)^2 + (sigma1 - sigma2)^2 = 1 + 1 = 2 for N(0, 1) vs N(1, 2^2)
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(200000, 1)), rng.normal(1.0, 2.0, size=(200000, 1))
    assert frechet_distance(x, y) == pytest.approx(2.0, abs=0.03)


def test_frechet_distance_matches_the_sqrtm_formula_for_correlated_features():
    rng = np.random.default_rng(14)
    x = rng.normal(size=(500, 5)) @ rng.normal(size=(5, 5))
    y = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5)) + 1
    cov_x, cov_y, diff = np.cov(x, rowvar=False), np.cov(y, rowvar=False), x.mean(0) - y.mean(0)
    expected = diff @ diff + np.trace(cov_x + cov_y - 2 * scipy.linalg.sqrtm(cov_x @ cov_y).real)
    assert frechet_distance(x, y) == pytest.approx(expected, rel=1e-10)


def test_fpd_of_one_distribution_is_consistent_with_zero_and_a_shift_gives_its_square():
    rng = np.random.default_rng(8)
    cov = np.array([[1.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 0.5]])
    real = rng.multivariate_normal(np.zeros(3), cov, size=20000)
    same = rng.multivariate_normal(np.zeros(3), cov, size=20000)
    shift = np.array([0.5, -0.3, 0.2])
    shifted = rng.multivariate_normal(shift, cov, size=20000)
    settings = dict(min_samples=500, max_samples=2000)

    value, error = fpd(real, same, rng, **settings)
    assert value <= 3 * error + 1e-12

    # Normalisation divides each feature by max |real|; equal covariances leave ||delta mu / scale||^2.
    expected = np.sum((shift / np.max(np.abs(real), axis=0)) ** 2)
    value, error = fpd(real, shifted, rng, **settings)
    assert value == pytest.approx(expected, abs=3 * error + 0.05 * expected)
    value, error = fpd(real, shifted, rng, normalise=False, **settings)
    assert value == pytest.approx(np.sum(shift ** 2), abs=3 * error + 0.05 * np.sum(shift ** 2))


def test_kpd_of_one_distribution_is_consistent_with_zero_and_positive_for_a_shift():
    rng = np.random.default_rng(9)
    real, same = rng.normal(size=(3000, 3)), rng.normal(size=(3000, 3))
    shifted = rng.normal(0.5, 1.0, size=(3000, 3))
    value, error = kpd(real, same, rng, batch_size=1000)
    assert abs(value) <= 3 * error
    value, error = kpd(real, shifted, rng, batch_size=1000)
    assert value > 10 * error > 0


@pytest.mark.parametrize("labels, scores, expected", [
    ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 1.0),
    ([0, 0, 1, 1], [0.9, 0.8, 0.1, 0.2], 0.0),
    ([0, 0, 1, 1], [0.5, 0.5, 0.5, 0.5], 0.5),
    ([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], 0.75),   # pairs (neg, pos): (.1,.2) (.1,.4) (.3,.2) (.3,.4) -> 3/4
    ([0, 1, 0, 1], [0.1, 0.3, 0.3, 0.4], 0.875),  # (.3 vs .3) is a tie: (1 + 1 + 1/2 + 1) / 4
])
def test_roc_auc_by_hand(labels, scores, expected):
    assert roc_auc(np.array(labels), np.array(scores)) == pytest.approx(expected)


def test_auc_standard_error_at_chance_is_the_mann_whitney_null_width():
    n1, n0 = 300, 500
    assert auc_standard_error(0.5, n1, n0) == pytest.approx(np.sqrt((n1 + n0 + 1) / (12 * n1 * n0)))


def tiny_mlp():
    nn = torch.nn
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1), nn.Flatten(0))


CLASSIFIER = dict(make_model=tiny_mlp, epochs=5, batch_size=128, lr=1e-2)


def test_classifier_cannot_separate_one_distribution_and_reproduces_with_a_seed():
    data = np.random.default_rng(10).normal(size=(4000, 2))
    result = classifier_two_sample_test(data[:2000], data[2000:], rng=np.random.default_rng(11), **CLASSIFIER)
    assert result["n_test"] == 800
    assert abs(result["auc"] - 0.5) <= 3 * result["auc_err"]
    assert result["jsd"] < 0.05
    again = classifier_two_sample_test(data[:2000], data[2000:], rng=np.random.default_rng(11), **CLASSIFIER)
    assert again == result


def test_classifier_separates_clearly_different_samples():
    rng = np.random.default_rng(12)
    # unit Gaussians 3 sigma apart: the Bayes-optimal AUC is Phi(3 / sqrt 2) = 0.983
    reference, generated = rng.normal(size=(3000, 2)), rng.normal(size=(2000, 2)) + np.array([3.0, 0.0])
    result = classifier_two_sample_test(reference, generated, rng=rng, **CLASSIFIER)
    assert result["n_test"] == 800  # balanced: 2000 of each class
    assert result["auc"] > 0.9
    assert result["jsd"] > 0.5


def test_fpd_with_fewer_samples_than_min_samples_uses_half_to_all_of_them():
    # 1000 samples < the default 20000: sizes run from 500 to 1000 and the closed form still holds
    assert fpd(TWOS, ZEROS, np.random.default_rng(13))[0] == pytest.approx(2.0, rel=1e-9)


# ---------------------------------------------------------------------------------------------
# Permutation two-sample tests and multiple-testing control


def test_vectorised_permutation_w1_is_scipys_w1_of_the_same_split():
    rng = np.random.default_rng(20)
    n, m = 70, 110
    pooled = np.round(rng.normal(size=n + m), 1)  # rounded: ties between and within the samples
    z = np.sort(pooled)
    labels = np.stack([rng.permutation(n + m) < n for _ in range(5)])
    w1, chi2 = _labelled_w1_chi2(labels, np.diff(z), n, m, None)
    assert chi2 is None
    for row, value in zip(labels, w1):
        assert value == pytest.approx(scipy.stats.wasserstein_distance(z[row], z[~row]), abs=1e-12)
    reference, generated = pooled[:n], pooled[n:] + 0.25
    result = permutation_test(reference, generated, rng, max_permutations=200)
    assert result["statistic"] == "w1" and result["value"] == result["w1"]
    assert result["w1"] == pytest.approx(scipy.stats.wasserstein_distance(reference, generated), abs=1e-12)


def test_permutation_chi2_is_scipys_contingency_chi2():
    rng = np.random.default_rng(21)
    reference = rng.choice([-1.0, 0.0, 0.5, 2.0], size=40, p=[0.1, 0.4, 0.3, 0.2])
    generated = rng.choice([-1.0, 0.0, 0.5, 2.0, 3.0], size=60, p=[0.2, 0.2, 0.2, 0.3, 0.1])
    levels = np.unique(np.concatenate([reference, generated]))
    table = np.array([[np.sum(reference == v) for v in levels], [np.sum(generated == v) for v in levels]])
    expected = scipy.stats.chi2_contingency(table, correction=False).statistic
    result = permutation_test(reference, generated, rng, discrete=True, max_permutations=200)
    assert result["statistic"] == "chi2"
    assert result["value"] == pytest.approx(expected, rel=1e-12)
    assert result["w1"] == pytest.approx(scipy.stats.wasserstein_distance(reference, generated), abs=1e-12)
    # and per permutation: the vectorised level counts against scipy on the same split
    z = np.sort(np.concatenate([reference, generated]))
    ends = np.flatnonzero(np.diff(z) != 0)
    counts = np.diff(np.concatenate([[-1], ends, [len(z) - 1]])).astype(float)
    labels = np.stack([rng.permutation(100) < 40 for _ in range(5)])
    _, chi2 = _labelled_w1_chi2(labels, np.diff(z), 40, 60, (ends, counts))
    for row, value in zip(labels, chi2):
        split = np.array([[np.sum(z[row] == v) for v in levels], [np.sum(z[~row] == v) for v in levels]])
        assert value == pytest.approx(scipy.stats.chi2_contingency(split, correction=False).statistic, rel=1e-12)


@pytest.mark.parametrize("discrete", [False, True])
def test_permutation_p_values_are_uniform_under_the_null_and_the_effect_is_one(discrete):
    """200 seeded null comparisons at n = 200, m = 300: P(p <= 0.05) within 0.05 +- 3 sigma (binomial,
    sigma = 0.015), median effect ~1 (over 2000 repetitions: 0.050 continuous, 0.041 discrete, which is
    conservative as a discrete statistic must be; median effect 1.007 and 1.009)."""
    rng = np.random.default_rng(22 + discrete)
    p_values, effects = [], []
    for _ in range(200):
        if discrete:  # five levels, e.g. a magnetisation of a 4-spin system
            reference, generated = rng.binomial(4, 0.4, 200).astype(float), rng.binomial(4, 0.4, 300).astype(float)
        else:
            reference, generated = rng.normal(size=200), rng.normal(size=300)
        result = permutation_test(reference, generated, rng, discrete=discrete, max_permutations=500)
        p_values.append(result["p_value"])
        effects.append(result["effect"])
    p_values = np.array(p_values)
    sigma = np.sqrt(0.05 * 0.95 / 200)
    assert abs(np.mean(p_values <= 0.05) - 0.05) <= 3 * sigma
    assert 0.35 <= np.mean(p_values <= 0.5) <= 0.65
    assert np.all((p_values > 0) & (p_values <= 1))
    assert np.median(effects) == pytest.approx(1.0, abs=0.15)


def test_permutation_test_detects_a_shift_and_a_moved_population():
    rng = np.random.default_rng(24)
    # 0.3 sigma at n = m = 1000: p at its minimum and effect > 2 in 200/200 seeds (effect 3.8 at the 1st
    # percentile). At the n = m = 500 one might first try, p < 1e-3 holds in only 88% of seeds (a t-test:
    # 92.5%), so that size would make the check a coin with a fixed seed.
    shifted = permutation_test(rng.normal(size=1000), rng.normal(0.3, 1.0, size=1000), rng, max_permutations=2000)
    assert shifted["p_value"] == pytest.approx(1 / 2001) and shifted["p_value"] < 1e-3
    assert shifted["effect"] > 2
    assert shifted["w1"] == pytest.approx(0.3, abs=0.1)
    # same mean (1), population moved from the middle level to the outer ones
    reference = rng.choice(3, size=300, p=[0.2, 0.6, 0.2]).astype(float)
    generated = rng.choice(3, size=300, p=[0.35, 0.3, 0.35]).astype(float)
    moved = permutation_test(reference, generated, rng, discrete=True, max_permutations=2000)
    assert moved["p_value"] < 1e-3
    assert moved["effect"] > 2


def test_sequential_stopping_is_cheap_for_a_null_and_runs_to_the_end_for_a_strong_effect():
    rng = np.random.default_rng(25)
    null = permutation_test(rng.normal(size=1000), rng.normal(size=1000), rng, max_permutations=20000)
    assert null["p_value"] > 0.1  # this seed; then 20 exceedances come within the first batch
    assert null["permutations"] == 200
    strong = permutation_test(rng.normal(size=1000), rng.normal(1.0, 1.0, size=1000), rng,
                              max_permutations=1050, batch=200)
    assert strong["permutations"] == 1050  # five full batches and a last one of 50
    assert strong["p_value"] == 1 / 1051
    # a batch larger than max_permutations: one (short) batch
    assert permutation_test(np.zeros(3), np.ones(4), rng, max_permutations=30)["permutations"] == 30


def test_permutation_test_split_into_small_blocks(monkeypatch):
    """Blocks smaller than a batch (the memory cap for large samples) give the same answers."""
    monkeypatch.setattr(metrics_module, "_PERMUTATION_BLOCK_ELEMENTS", 3 * 500)  # 3 permutations a block
    rng = np.random.default_rng(26)
    reference, generated = rng.normal(size=200), rng.normal(size=300)
    result = permutation_test(reference, generated + 1.0, rng, max_permutations=1000)
    assert result["permutations"] == 1000 and result["p_value"] == 1 / 1001
    assert result["w1"] == pytest.approx(scipy.stats.wasserstein_distance(reference, generated + 1.0), abs=1e-12)
    # the floor (null median W1 at 200 vs 300) is the same as with whole batches, within its Monte Carlo noise
    monkeypatch.undo()
    unblocked = permutation_test(reference, generated + 1.0, rng, max_permutations=1000)
    assert result["floor"] == pytest.approx(unblocked["floor"], rel=0.1)


def test_permutation_test_degenerate_inputs():
    rng = np.random.default_rng(27)
    for discrete in (False, True):
        same = permutation_test(np.full(5, 2.0), np.full(7, 2.0), rng, discrete=discrete)
        assert same["p_value"] == 1.0 and same["effect"] == 0.0 and same["floor"] == 0.0 and same["w1"] == 0.0
        assert same["permutations"] == 200
        with pytest.raises(ValueError):
            permutation_test(np.array([]), np.ones(3), rng, discrete=discrete)
        with pytest.raises(ValueError):
            permutation_test(np.ones(3), np.array([]), rng, discrete=discrete)
    with pytest.raises(ValueError):
        permutation_test(np.array([0.0, np.nan]), np.ones(3), rng)
    # 0 vs 1 everywhere: the exact p is 1 / C(12, 5) = 1/792 (only the observed split is as extreme)
    split = permutation_test(np.zeros(5), np.ones(7), rng, discrete=True, max_permutations=50000)
    assert split["value"] == pytest.approx(12.0)  # chi2 of a perfectly separated table = N
    assert split["p_value"] == pytest.approx(1 / 792, rel=0.5)
    assert split["w1"] == 1.0 and split["effect"] > 1


def test_holm_by_hand():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # Holm, M = 4, sorted 0.005, 0.01, 0.03, 0.04 against 0.05/4 = 0.0125, 0.05/3 = 0.0167, 0.05/2 = 0.025,
    # 0.05/1: 0.005 <= 0.0125 yes, 0.01 <= 0.0167 yes, 0.03 <= 0.025 no -> stop: rejects 0.005 and 0.01.
    # adjusted: sorted 4 x 0.005 = 0.02, max(0.02, 3 x 0.01) = 0.03, max(0.03, 2 x 0.03) = 0.06,
    # max(0.06, 1 x 0.04) = 0.06 -> back in input order [0.03, 0.06, 0.06, 0.02]
    np.testing.assert_allclose(holm_adjusted(p), [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    np.testing.assert_array_equal(holm_adjusted(p) <= 0.05, [True, False, False, True])
    # 0.03 > 0.0125 at once: Holm rejects none of these, although each is below 0.05
    assert not np.any(holm_adjusted(np.array([0.045, 0.03, 0.048, 0.04])) <= 0.05)


def test_holm_ignores_nan_and_adjusted_p_values_are_monotone():
    p = np.array([0.01, np.nan, 0.04, 0.03, np.nan, 0.005])
    # NaN (not tested) never rejected and not counted: the same family of 4 as the hand-worked example
    adjusted = holm_adjusted(p)
    assert np.isnan(adjusted[[1, 4]]).all()
    np.testing.assert_allclose(adjusted[[0, 2, 3, 5]], [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    assert np.isnan(holm_adjusted(np.full(3, np.nan))).all()
    # random families: adjusted p monotone in p, >= p, <= 1; shape kept
    rng = np.random.default_rng(28)
    for _ in range(20):
        p = rng.uniform(size=(3, 4)) ** 3
        p[rng.uniform(size=p.shape) < 0.2] = np.nan
        adjusted = holm_adjusted(p)
        assert adjusted.shape == p.shape
        tested = ~np.isnan(p)
        order = np.argsort(p[tested])
        assert np.all(np.diff(adjusted[tested][order]) >= 0)
        assert np.all(adjusted[tested] >= p[tested]) and np.all(adjusted[tested] <= 1)
    assert np.all(holm_adjusted(np.array([0.5, 0.6])) == 1.0)  # 2 x 0.5 = 1, then max(1, 1 x 0.6) = 1
    with pytest.raises(ValueError):
        holm_adjusted(np.array([0.1, 1.5]))
