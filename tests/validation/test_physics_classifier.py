"""Classifier two-sample test on physics observables: chance for one distribution (and for MC vs MC), sensitive to
a shifted observable and to a flipped correlation that no marginal shows, reproducible from a seed."""
import numpy as np
import pytest

from physgan.validation.metrics import ks_statistic
from physgan.validation.physics_classifier import physics_classifier_test

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# four correlated "observables"; the condition c = +-1 moves all of them, as temperature or pT would
COVARIANCE = np.array([[1.0, 0.6, 0.3, 0.0],
                       [0.6, 1.0, 0.2, 0.0],
                       [0.3, 0.2, 1.0, 0.4],
                       [0.0, 0.0, 0.4, 1.0]])


def sample(rng, n, shift=0.0, flip=False):
    """(features (n, 4), conditions (n, 1)); shift: feature 2 by `shift` sigma; flip: corr(0, 1) -> -0.6."""
    covariance = COVARIANCE.copy()
    if flip:
        covariance[0, 1] = covariance[1, 0] = -covariance[0, 1]
    conditions = rng.choice([-1.0, 1.0], size=(n, 1))
    features = rng.multivariate_normal(np.zeros(4), covariance, size=n) + 0.5 * conditions
    features[:, 2] += shift
    return features, conditions


def run(seed, n=10000, m=5000, **generated):
    rng = np.random.default_rng(seed)
    reference, generated = sample(rng, n), sample(rng, m, **generated)
    return physics_classifier_test(*reference, *generated, rng)


def test_one_distribution_scores_chance_and_so_does_monte_carlo_against_itself():
    result = run(0)
    assert abs(result["auc"] - 0.5) <= 3 * result["auc_err"]
    assert abs(result["mc_auc"] - 0.5) <= 3 * result["mc_auc_err"]
    assert abs(result["z"]) < 3
    # min(n / 2, m) = 5000 per class in both tests, 20 % of 10000 to test on
    assert result["n_per_class"] == 5000 and result["n_test"] == result["mc_n_test"] == 2000
    assert result["auc_err"] == pytest.approx(result["mc_auc_err"], rel=0.1)
    assert (result["features"], result["conditions"]) == (4, 1)


def test_a_feature_shifted_by_three_tenths_of_a_sigma_is_seen():
    result = run(1, shift=0.3)
    assert result["auc"] > 0.55  # Bayes-optimal Phi(d / sqrt 2) = 0.60, d = 0.35 the shift's Mahalanobis length
    assert result["auc"] > result["mc_auc"] + 3 * np.hypot(result["auc_err"], result["mc_auc_err"])


def test_a_flipped_correlation_with_every_marginal_right_is_seen():
    rng = np.random.default_rng(2)
    reference, generated = sample(rng, 10000), sample(rng, 5000, flip=True)
    for j in range(4):  # no one observable shows it: each marginal passes a KS test
        assert ks_statistic(reference[0][:, j], generated[0][:, j])[1] > 1e-3
    result = physics_classifier_test(*reference, *generated, rng)
    assert result["auc"] > 0.7  # 0.82 here
    assert result["z"] > 3


def test_same_seed_same_numbers():
    first, again, other = run(3), run(3), run(4)
    assert first == again
    assert other["auc"] != first["auc"]


def test_sizes_are_min_of_half_the_reference_and_the_generated_sample_capped_by_max_samples():
    rng = np.random.default_rng(5)
    reference, generated = sample(rng, 1000), sample(rng, 3000)
    assert physics_classifier_test(*reference, *generated, rng, epochs=2)["n_per_class"] == 500
    capped = physics_classifier_test(*reference, *generated, rng, epochs=2, max_samples=200)
    assert (capped["n_per_class"], capped["n_test"], capped["mc_n_test"]) == (200, 80, 80)


def test_units_do_not_matter_and_constant_columns_are_harmless():
    """Standardised by the reference: a feature in units of 1e6 and a constant one still give chance."""
    rng = np.random.default_rng(6)
    (rf, rc), (gf, gc) = sample(rng, 4000), sample(rng, 2000)
    rf, gf = (np.column_stack([f[:, :3], 1e6 * f[:, 3], np.full(len(f), 7.0)]) for f in (rf, gf))
    result = physics_classifier_test(rf, rc, gf, gc, rng)
    assert np.isfinite([result["auc"], result["mc_auc"], result["jsd"]]).all()
    assert abs(result["auc"] - 0.5) <= 3 * result["auc_err"]
    assert result["features"] == 5


def test_no_conditions_is_allowed():
    rng = np.random.default_rng(7)
    (rf, _), (gf, _) = sample(rng, 2000), sample(rng, 1000, shift=1.0)
    result = physics_classifier_test(rf, np.empty((2000, 0)), gf, np.empty((1000, 0)), rng, epochs=5)
    assert result["conditions"] == 0 and result["auc"] > 0.65


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_rows_are_an_error(bad):
    rng = np.random.default_rng(8)
    (rf, rc), (gf, gc) = sample(rng, 100), sample(rng, 100)
    gf[17, 2] = bad
    with pytest.raises(ValueError, match="generated: 1 of 100 rows have non-finite"):
        physics_classifier_test(rf, rc, gf, gc, rng)
    rc[3, 0] = bad
    with pytest.raises(ValueError, match="reference: 1 of 100 rows"):
        physics_classifier_test(rf, rc, gf[:10], gc[:10], rng)


def test_mismatched_shapes_are_an_error():
    rng = np.random.default_rng(9)
    (rf, rc), (gf, gc) = sample(rng, 100), sample(rng, 100)
    with pytest.raises(ValueError, match="4 features and 1 conditions, generated 3 and 1"):
        physics_classifier_test(rf, rc, gf[:, :3], gc, rng)
    with pytest.raises(ValueError, match="features must be"):
        physics_classifier_test(rf, rc[:50], gf, gc, rng)
    with pytest.raises(ValueError, match="too few samples"):
        physics_classifier_test(rf[:10], rc[:10], gf, gc, rng)
