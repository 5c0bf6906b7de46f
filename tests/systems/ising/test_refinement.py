"""Metropolis refinement: it keeps Boltzmann samples Boltzmann, repairs local disorder against the exact
energy, keeps the slow |m| a generator drew, and refines each lattice at its own temperature."""
import numpy as np
import pytest

from physgan.systems.ising import exact, mc
from physgan.systems.ising.kernels import Chains
from physgan.systems.ising.refinement import refine

L, N = 16, 2000


def energy(spins):
    s = spins.astype(np.float64)
    return -(s * (np.roll(s, 1, -1) + np.roll(s, 1, -2))).mean(axis=(-1, -2))


def abs_m(spins):
    return np.abs(spins.astype(np.float64).mean(axis=(-1, -2)))


def mean_and_error(x):
    return x.mean(), x.std(ddof=1) / np.sqrt(len(x))


@pytest.fixture(scope="module", params=[2.0, 2.269])
def boltzmann(request):
    T = request.param
    config = mc.IsingMCConfig(L=L, temps=[T], n_per_temp=N, seed=3, chains=64)
    _, spins = mc.simulate_temperature(T, N, config, np.random.SeedSequence(3))
    return T, spins


def test_boltzmann_samples_stay_boltzmann(boltzmann):
    T, spins = boltzmann
    refined = refine(spins, np.full(N, T, np.float32), 10, np.random.SeedSequence(1))
    e, e_err = mean_and_error(energy(refined))
    assert abs(e - exact.energy_per_site(T, L)) < 3 * e_err


def test_refinement_repairs_local_disorder_and_keeps_the_magnetisation(boltzmann):
    # 5 % of the spins flipped at random: too disordered, as a generator that breaks too many bonds
    T, spins = boltzmann
    flips = np.random.default_rng(0).random(spins.shape) < 0.05
    corrupted = np.where(flips, -spins, spins).astype(np.int8)
    exact_e = exact.energy_per_site(T, L)
    e, e_err = mean_and_error(energy(corrupted))
    assert e - exact_e > 20 * e_err  # the damage is far outside the statistics
    # 20 sweeps: at T_c 10 leave +3 to +5 standard errors of the damage (measured at L = 16)
    refined = refine(corrupted, np.full(N, T, np.float32), 20, np.random.SeedSequence(2))
    e, e_err = mean_and_error(energy(refined))
    assert abs(e - exact_e) < 3 * e_err
    (m, m_err), (m_ref, m_ref_err) = mean_and_error(abs_m(refined)), mean_and_error(abs_m(spins))
    assert abs(m - m_ref) < 3 * np.hypot(m_err, m_ref_err)


def test_each_lattice_is_refined_at_its_own_temperature():
    # ordered lattices refined at a low and a high temperature, interleaved in one call
    T = np.tile(np.float32([1.5, 4.0]), 400)
    cold = np.ones((len(T), L, L), np.int8)
    refined = refine(cold, T, 60, np.random.SeedSequence(4))
    for t in (1.5, 4.0):
        e, e_err = mean_and_error(energy(refined[T == np.float32(t)]))
        assert abs(e - exact.energy_per_site(float(np.float32(t)), L)) < 4 * e_err
    np.testing.assert_array_equal(refine(cold, T, 60, np.random.SeedSequence(4)), refined)  # seeded


def test_chains_from_spins_copy_and_check_their_lattices():
    spins = np.ones((3, 8, 8), np.int8)
    chains = Chains.from_spins(spins, np.random.SeedSequence(0))
    chains.metropolis(1 / 5.0, 5)
    assert (spins == 1).all() and (chains.spins != 1).any()
    for bad in (np.zeros((2, 8, 8), np.int8), np.ones((2, 8, 6), np.int8), np.ones((8, 8), np.int8)):
        with pytest.raises(ValueError, match="lattices"):
            Chains.from_spins(bad, np.random.SeedSequence(0))
