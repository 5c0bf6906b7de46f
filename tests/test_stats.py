import numpy as np
import pytest

from physgan.stats import integrated_autocorrelation_time, jackknife, mean_and_error


def test_jackknife_of_the_mean_is_the_standard_error():
    x = np.random.default_rng(0).normal(size=400)
    value, error = jackknife(np.mean, x, n_blocks=400)
    assert value == pytest.approx(x.mean())
    assert error == pytest.approx(x.std(ddof=1) / np.sqrt(len(x)), rel=1e-10)
    assert mean_and_error(x) == pytest.approx((value, error))


def test_jackknife_error_of_a_variance_matches_the_normal_theory_value():
    # Var of the sample variance of N(0, 1) draws is 2 / n: the jackknife must reproduce it.
    x = np.random.default_rng(1).normal(size=20000)
    value, error = jackknife(np.var, x, n_blocks=50)
    assert value == pytest.approx(1.0, abs=0.05)
    assert error == pytest.approx(np.sqrt(2 / len(x)), rel=0.25)


@pytest.mark.parametrize("a", [0.0, 0.5, 0.9])
def test_tau_int_of_an_ar1_process(a):
    """AR(1), x_t = a x_{t-1} + noise: rho(t) = a^t, so tau_int = 1/2 + a/(1-a) = (1+a) / (2(1-a))."""
    rng = np.random.default_rng(2)
    n_time, n_chains = 20000, 8
    noise = rng.normal(size=(n_time, n_chains))
    x = np.empty_like(noise)
    x[0] = noise[0] / np.sqrt(1 - a * a)
    for t in range(1, n_time):
        x[t] = a * x[t - 1] + noise[t]
    tau, error, converged = integrated_autocorrelation_time(x)
    expected = (1 + a) / (2 * (1 - a))
    assert converged
    assert abs(tau - expected) < 4 * error + 0.02 * expected


def test_tau_int_reports_a_series_too_short_to_trust():
    # A random walk has no finite tau_int: the window never closes.
    walk = np.cumsum(np.random.default_rng(3).normal(size=(500, 2)), axis=0)
    assert integrated_autocorrelation_time(walk)[2] is False


def test_tau_int_of_a_frozen_chain_is_one_half():
    assert integrated_autocorrelation_time(np.ones((100, 4)))[0] == 0.5
