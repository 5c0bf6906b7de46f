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
