"""Monte Carlo against the exact solution, within 4 standard errors (docs/physics.md, "Ising model")."""
import numpy as np
import pytest

from physgan.io import merge_sample_files, open_samples
from physgan.errors import UserError
from physgan.systems.ising import exact, mc
from physgan.systems.ising.observables import energy_per_site, magnetization, per_temperature

TC = exact.critical_temperature()
PULL = 4.0


def run_table(**settings):
    """Simulate in memory and return the per-temperature table of observables."""
    config = mc.IsingMCConfig(**settings)
    T, m, e = [], [], []
    for run, spins in mc.simulate(config):
        assert run.tau_converged, f"tau_int did not converge at T = {run.T}"
        assert run.thin >= 2 * max(run.tau_int_abs_m, run.tau_int_e)
        T.append(np.full(len(spins), run.T))
        m.append(magnetization(spins))
        e.append(energy_per_site(spins))
    return per_temperature(np.concatenate(T), np.concatenate(m), np.concatenate(e), config.L)


def assert_within(table, name, exact_values):
    pulls = (table[name] - exact_values) / table[name + "_err"]
    assert np.all(np.abs(pulls) < PULL), f"{name}: pulls {pulls} at T = {table['T']}"


@pytest.mark.parametrize("algorithm", ["metropolis", "wolff"])
def test_energy_and_specific_heat_at_L8(algorithm):
    temps = [2.0, TC, 3.0]
    table = run_table(L=8, temps=temps, n_per_temp=4000, algorithm=algorithm, seed=11, chains=64)
    assert_within(table, "e", exact.energy_per_site(table["T"], 8))
    assert_within(table, "C", exact.specific_heat_per_site(table["T"], 8))


@pytest.mark.parametrize("algorithm", ["metropolis", "wolff"])
def test_magnetisation_moments_at_L4_against_enumeration(algorithm):
    table = run_table(L=4, temps=[1.5, 2.269, 3.5], n_per_temp=6000, algorithm=algorithm, seed=3, chains=64)
    truth = exact.enumerate_lattice(table["T"], 4)
    for name, key in (("abs_m", "abs_m"), ("m2", "m2"), ("m4", "m4"), ("e", "energy")):
        assert_within(table, name, truth[key])


def test_energy_at_L32_low_temperature_and_critical_point():
    # T = 1.5 on a torus: a hot start can freeze into stripes; the ordered start must not.
    table = run_table(L=32, temps=[1.5, TC], n_per_temp=1024, seed=7, chains=64)
    assert_within(table, "e", exact.energy_per_site(table["T"], 32))


def test_both_signs_of_m_below_tc():
    table = run_table(L=16, temps=[1.8], n_per_temp=2000, algorithm="metropolis", seed=4)
    fraction, error = table["frac_m_pos"][0], table["frac_m_pos_err"][0]
    assert abs(fraction - 0.5) < PULL * error
    assert table["abs_m"][0] > 0.9  # ordered, yet symmetric


def test_auto_uses_wolff_only_near_tc():
    config = mc.IsingMCConfig(L=16)
    assert [mc.choose_algorithm(T, config) for T in (1.5, 2.269, 3.5)] == ["metropolis", "wolff", "metropolis"]


def test_same_seed_same_spins_and_the_file_records_tau(tmp_path):
    config = mc.IsingMCConfig(L=8, temps=[2.0, 3.0], n_per_temp=100, seed=9, chains=16)
    for name in ("a.h5", "b.h5"):
        mc.write_file(tmp_path / name, config, quiet=True)
    a, b = open_samples(tmp_path / "a.h5"), open_samples(tmp_path / "b.h5")
    np.testing.assert_array_equal(a.read("spins"), b.read("spins"))
    assert a.read("spins").dtype == np.int8 and set(np.unique(a.read("spins"))) == {-1, 1}
    assert a.read("T").dtype == np.float32 and a.n == 200
    table = a.tables["mc"]
    assert list(table["T"]) == [2.0, 3.0]
    assert np.all(table["thin"] >= 2 * table["tau_int_e"]) and np.all(table["thin"] >= 2 * table["tau_int_abs_m"])
    other = mc.IsingMCConfig(L=8, temps=[2.0, 3.0], n_per_temp=100, seed=10, chains=16)
    mc.write_file(tmp_path / "c.h5", other, quiet=True)
    assert not np.array_equal(a.read("spins"), open_samples(tmp_path / "c.h5").read("spins"))


def test_shards_are_independent_and_merge(tmp_path):
    config = mc.IsingMCConfig(L=8, temps=[2.5], n_per_temp=101, seed=1, chains=8)
    paths = [tmp_path / f"s{i}.h5" for i in range(3)]
    for i, path in enumerate(paths):
        mc.write_file(path, config, (i, 3), quiet=True)
    shards = [open_samples(p) for p in paths]
    assert [s.n for s in shards] == [34, 34, 33]
    assert not np.array_equal(shards[0].read("spins")[:33], shards[1].read("spins")[:33])
    merged = merge_sample_files([str(p) for p in reversed(paths)], tmp_path / "all.h5")
    assert merged.n == 101
    np.testing.assert_array_equal(merged.read("spins"), np.concatenate([s.read("spins") for s in shards]))
    assert list(merged.tables["mc"]["shard"]) == [0, 1, 2]
    with pytest.raises(UserError, match="missing shards"):
        merge_sample_files([str(paths[0]), str(paths[1])], tmp_path / "x.h5")
    with pytest.raises(UserError, match="given twice"):
        merge_sample_files([str(p) for p in paths + [paths[0]]], tmp_path / "x.h5")
    mc.write_file(tmp_path / "other.h5", mc.IsingMCConfig(L=8, temps=[2.5], n_per_temp=101, seed=2, chains=8),
                  (2, 3), quiet=True)
    with pytest.raises(UserError, match="different configuration"):
        merge_sample_files([str(paths[0]), str(paths[1]), str(tmp_path / "other.h5")], tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.slow
def test_large_lattices_against_kaufman():
    """L = 64 across the transition, every algorithm choice of `auto`: e and C within 4 standard errors."""
    table = run_table(L=64, temps=[1.8, 2.1, TC, 2.5, 3.2], n_per_temp=4096, seed=21, chains=128)
    assert_within(table, "e", exact.energy_per_site(table["T"], 64))
    assert_within(table, "C", exact.specific_heat_per_site(table["T"], 64))


@pytest.mark.slow
def test_binder_cumulant_crossing_near_tc():
    """U4 curves for L = 8 and 16 cross near T_c (Salas & Sokal 2000: U4* = 0.61069 in the limit)."""
    temps = [2.2, 2.269185314213022, 2.34]
    small = run_table(L=8, temps=temps, n_per_temp=8000, seed=31, chains=128)
    large = run_table(L=16, temps=temps, n_per_temp=8000, seed=32, chains=128)
    assert large["U4"][0] > small["U4"][0] and large["U4"][2] < small["U4"][2]  # the curves cross inside
    assert abs(large["U4"][1] - 0.61069) < 0.02
