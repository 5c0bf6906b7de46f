"""Physics checks of the exact 2D Ising references (docs/physics.md, "Ising model")."""

import subprocess
import sys

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from physgan.systems.ising import exact
from physgan.systems.ising.exact import (
    critical_temperature,
    energy_per_site,
    enumerate_lattice,
    log_partition_function_per_site,
    specific_heat_per_site,
    spontaneous_magnetization,
)

TC = critical_temperature()
CATALAN = 0.915965594177219015
FF_AMPLITUDE = 0.4945  # C(T_c; L) = 0.4945 ln L + const (Ferdinand & Fisher 1969)
EXACT_FUNCTIONS = (energy_per_site, specific_heat_per_site, log_partition_function_per_site)


def test_critical_temperature_solves_sinh_2k_equals_one():
    assert TC == pytest.approx(2.269185314213022, abs=1e-15)
    assert np.sinh(2 / TC) == pytest.approx(1.0, abs=1e-15)


# --- finite lattices -------------------------------------------------------------------------


@pytest.mark.parametrize("L", [3, 4])
def test_kaufman_equals_brute_force_enumeration(L):
    T = np.array([0.5, 1.0, 2.0, TC, 2.5, 3.0, 5.0, 10.0])
    ref = enumerate_lattice(T, L)
    for key, f in zip(("energy", "specific_heat", "log_z"), EXACT_FUNCTIONS):
        np.testing.assert_allclose(f(T, L), ref[key], rtol=1e-12, atol=1e-13, err_msg=key)


def test_l2_enumeration_matches_closed_form():
    # Periodic rolls on L = 2 double every bond: Z = 2 e^{8K} + 12 + 2 e^{-8K}.
    T = np.array([0.5, 1.0, TC, 4.0])
    K = 1 / T
    Z = 2 * np.exp(8 * K) + 12 + 2 * np.exp(-8 * K)
    u = -(16 * np.exp(8 * K) - 16 * np.exp(-8 * K)) / Z / 4
    ref = enumerate_lattice(T, 2)
    np.testing.assert_allclose(ref["log_z"], np.log(Z) / 4, rtol=1e-14)
    np.testing.assert_allclose(ref["energy"], u, rtol=1e-14)
    np.testing.assert_allclose(log_partition_function_per_site(T, 2), np.log(Z) / 4, rtol=1e-14)


@pytest.mark.parametrize("L", [2, 4])
def test_enumerated_magnetization_moments_at_the_temperature_extremes(L):
    N = L * L
    cold, hot = enumerate_lattice(0.05, L), enumerate_lattice(1e6, L)
    for key in ("abs_m", "m2", "m4"):
        assert cold[key] == pytest.approx(1.0, abs=1e-12)  # ground states: all up or all down
    # Infinite T, independent spins: <m^2> = 1/N, <m^4> = (3N^2 - 2N)/N^4.
    assert hot["m2"] == pytest.approx(1 / N, rel=1e-4)
    assert hot["m4"] == pytest.approx((3 * N**2 - 2 * N) / N**4, rel=1e-4)
    assert hot["m2"] ** 0.5 > hot["abs_m"] > 0


def test_published_l20_energy():
    # Ferdinand & Fisher 1969 check value.
    assert energy_per_site(2.0, 20) == pytest.approx(-1.7455571250, abs=1e-9)


@pytest.mark.parametrize("L", [None, 8, 32])
@pytest.mark.parametrize("T", [1.5, 2.0, 2.6, 4.0])
def test_specific_heat_is_du_dT(T, L):
    h = 1e-5
    du_dT = (energy_per_site(T + h, L) - energy_per_site(T - h, L)) / (2 * h)
    assert specific_heat_per_site(T, L) == pytest.approx(du_dT, abs=1e-8)


@pytest.mark.parametrize("T", [2.0, 3.0])
def test_energy_is_minus_dlnz_dK(T):
    K, h = 1 / T, 1e-6
    for L in (None, 16):
        lnz = [log_partition_function_per_site(1 / k, L) for k in (K + h, K - h)]
        dlnz = (lnz[0] - lnz[1]) / (2 * h)
        assert energy_per_site(T, L) == pytest.approx(-dlnz, abs=1e-8)


# --- infinite lattice --------------------------------------------------------------------------


def test_onsager_values_at_tc():
    assert energy_per_site(TC) == pytest.approx(-np.sqrt(2), abs=1e-13)
    assert log_partition_function_per_site(TC) == pytest.approx(0.9296953983, abs=1e-10)
    assert log_partition_function_per_site(TC) == pytest.approx(np.log(2) / 2 + 2 * CATALAN / np.pi, abs=1e-12)


def test_onsager_specific_heat_has_the_factor_two():
    # The misprinted formula gives 0.966 at T = 2; the correct one about 0.725.
    assert specific_heat_per_site(2.0) == pytest.approx(0.7249, abs=5e-4)


@pytest.mark.parametrize("T", [2.0, 3.0])
def test_kaufman_converges_to_onsager(T):
    L = 32
    assert energy_per_site(T, L) == pytest.approx(energy_per_site(T), abs=1e-6)
    # Below T_c the torus keeps both ordered phases: ln Z_L/N exceeds the bulk value by ln 2 / N.
    degeneracy = np.log(2) / L**2 if T < TC else 0.0
    assert log_partition_function_per_site(T, L) - log_partition_function_per_site(T) == pytest.approx(
        degeneracy, abs=1e-8
    )


# --- numerical stability and finite-size scaling ----------------------------------------------


def test_large_lattice_is_finite_and_continuous_across_tc():
    L = 512
    T = np.array([0.5, TC * (1 - 1e-9), TC, TC * (1 + 1e-9), 10.0])
    values = [f(T, L) for f in EXACT_FUNCTIONS]
    for v in values:
        assert np.all(np.isfinite(v))
    u, c, _ = values
    assert abs(u[1] - u[3]) < 1e-7
    assert abs(c[1] - c[3]) < 1e-6
    assert c[1] < c[2] < c[3]  # at L = 512 c still rises through T_c towards its peak


def test_large_lattice_derivatives_agree_near_tc():
    L, h = 512, 1e-6
    du_dT = (energy_per_site(TC + h, L) - energy_per_site(TC - h, L)) / (2 * h)
    assert specific_heat_per_site(TC, L) == pytest.approx(du_dT, rel=1e-7)


@pytest.mark.parametrize("L", [16, 32, 64])
def test_specific_heat_peak_sits_above_tc(L):
    peak = minimize_scalar(lambda t: -specific_heat_per_site(t, L), bounds=(TC - 0.1, TC + 0.3), method="bounded")
    shift = L * (peak.x - TC) / TC
    assert 0.32 < shift < 0.37  # Ferdinand & Fisher: -> about 0.36 as L -> infinity


def test_specific_heat_at_tc_grows_logarithmically():
    growth = specific_heat_per_site(TC, 64) - specific_heat_per_site(TC, 32)
    assert growth == pytest.approx(FF_AMPLITUDE * np.log(2), rel=0.02)


# --- spontaneous magnetization ------------------------------------------------------------------


def test_yang_magnetization():
    assert spontaneous_magnetization(2.0) == pytest.approx((1 - np.sinh(1.0) ** -4) ** 0.125, rel=1e-14)
    assert spontaneous_magnetization(0.2) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_array_equal(spontaneous_magnetization([TC, TC * (1 + 1e-9), 3.0, 100.0]), 0.0)
    below = spontaneous_magnetization(np.linspace(0.5, TC * (1 - 1e-6), 200))
    assert np.all(np.diff(below) < 0) and below[-1] > 0


# --- API contract --------------------------------------------------------------------------------


@pytest.mark.parametrize("L", [None, 2, 5])
def test_vectorised_shapes(L):
    T = np.array([[1.0, 2.0, TC], [2.5, 3.0, 6.0]])
    for f in EXACT_FUNCTIONS:
        assert f(T, L).shape == T.shape
        assert np.ndim(f(2.0, L)) == 0 and isinstance(f(2.0, L), float)
    assert spontaneous_magnetization(T).shape == T.shape
    assert all(v.shape == T.shape for v in enumerate_lattice(T, 3).values())


@pytest.mark.parametrize("T", [0.0, -1.0, np.nan, np.inf, [1.0, -2.0]])
def test_bad_temperature_raises(T):
    for f in (*EXACT_FUNCTIONS, spontaneous_magnetization, lambda t: enumerate_lattice(t, 3)):
        with pytest.raises(ValueError, match="temperature"):
            f(T)


@pytest.mark.parametrize("L", [1, 0, -3, 2.5, 3.0, True, "4"])
def test_bad_size_raises(L):
    for f in (*EXACT_FUNCTIONS, enumerate_lattice):
        with pytest.raises(ValueError, match="L must be"):
            f(2.0, L)
    with pytest.raises(ValueError, match="2 <= L <= 4"):
        enumerate_lattice(2.0, 5)


def test_module_imports_without_scipy():
    # scipy is only imported inside the infinite-lattice functions.
    code = (
        "import sys, importlib.util as u; sys.modules['scipy'] = None; "
        f"s = u.spec_from_file_location('exact', {exact.__file__!r}); m = u.module_from_spec(s); "
        "s.loader.exec_module(m); print(m.energy_per_site(2.0, 8))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
