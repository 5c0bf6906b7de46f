"""The local-equilibrium temperature (Callen identity): exact on constructed neighbourhood statistics, T for
Monte Carlo samples within their errors, higher for lattices with random local damage."""
import numpy as np
import pytest

from physgan.systems.ising import mc
from physgan.systems.ising.observables import (energy_per_site, local_field_fractions, local_temperature,
                                              magnetization, per_temperature)

L, N = 16, 2000


@pytest.mark.parametrize("T", [0.8, 1.5, 2.269, 3.0, 10.0])
def test_the_identity_is_solved_exactly(T):
    # neighbourhood fractions w4, w2 and the energy a Boltzmann sample at T would have with them
    beta, w4, w2 = 1 / T, np.array([0.55, 0.45]), np.array([0.30, 0.38])
    e = -(4 * np.tanh(4 * beta) * w4 + 2 * np.tanh(2 * beta) * w2) / 2
    assert local_temperature(e, w4, w2) == pytest.approx(T, rel=1e-9)


def test_no_temperature_fits_impossible_statistics():
    assert local_temperature(np.array([0.1]), np.array([0.5]), np.array([0.3])) == float("inf")  # -2e < 0
    assert local_temperature(np.array([-2.0]), np.array([0.9]), np.array([0.1])) == 0.0  # more order than T = 0


def measured_local_temperature(spins, T):
    """T_local and its error as physgan's tables give them (observables, validate, run)."""
    table = per_temperature(np.full(len(spins), T), magnetization(spins), energy_per_site(spins), spins.shape[-1],
                            local=local_field_fractions(spins))
    return table["T_local"][0], table["T_local_err"][0]


def test_fractions_of_an_ordered_and_a_checkerboard_lattice():
    ordered, checkerboard = np.ones((1, 4, 4), np.int8), np.indices((4, 4)).sum(0)[None] % 2 * 2 - 1
    assert [f[0] for f in local_field_fractions(ordered)] == [1.0, 0.0]
    assert [f[0] for f in local_field_fractions(checkerboard.astype(np.int8))] == [1.0, 0.0]
    stripes = np.tile(np.int8([1, 1, -1, -1]), (4, 1))[None]  # every site: 3 like neighbours, 1 unlike
    assert [f[0] for f in local_field_fractions(stripes)] == [0.0, 1.0]


@pytest.mark.parametrize("T", [1.8, 2.269, 3.0])
def test_monte_carlo_lattices_are_in_local_equilibrium_at_their_temperature(T):
    config = mc.IsingMCConfig(L=L, temps=[T], n_per_temp=N, seed=8, chains=64)
    _, spins = mc.simulate_temperature(T, N, config, np.random.SeedSequence(8))
    value, error = measured_local_temperature(spins, T)
    assert abs(value - T) < 3 * error
    # 3 % of the spins flipped at random: locally too hot, far beyond the error
    flips = np.random.default_rng(1).random(spins.shape) < 0.03
    value, error = measured_local_temperature(np.where(flips, -spins, spins).astype(np.int8), T)
    assert value - T > 10 * error
