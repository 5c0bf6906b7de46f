"""Observables pinned to hand-computed lattices and to exact enumeration."""
import numpy as np
import pytest

from physgan.systems.ising import exact
from physgan.systems.ising.observables import (correlation_function, energy_per_site, exact_values, magnetization,
                                               per_temperature)


def lattices(L=4):
    up = np.ones((L, L), np.int8)
    checker = np.where(np.add.outer(np.arange(L), np.arange(L)) % 2 == 0, 1, -1).astype(np.int8)
    stripes = np.repeat(np.array([1, -1] * (L // 2), np.int8)[:, None], L, axis=1)  # rows alternate
    one_flipped = up.copy()
    one_flipped[0, 0] = -1
    return np.stack([up, -up, checker, stripes, one_flipped])


def test_magnetisation_and_energy_by_hand():
    L = 4
    m, e = magnetization(lattices(L)), energy_per_site(lattices(L))
    np.testing.assert_allclose(m, [1, -1, 0, 0, 1 - 2 / 16])
    # stripes: horizontal bonds satisfied (-1 each), vertical ones broken (+1): e = 0.
    # one flipped spin breaks 4 of the 2N = 32 bonds: E = -(32 - 8) = -24.
    np.testing.assert_allclose(e, [-2, -2, 2, 0, -24 / 16])


def test_correlation_function_by_hand():
    g = correlation_function(lattices(4))
    np.testing.assert_allclose(g[0], [1, 1, 1])
    np.testing.assert_allclose(g[2], [1, -1, 1])  # antiferromagnet: (-1)^r
    np.testing.assert_allclose(g[3], [1, 0, 1])  # stripes: +1 along rows, (-1)^r across, averaged


def test_table_estimators_against_exact_distribution_at_L4():
    """Draw configurations exactly from the Boltzmann weights at L = 4: every column matches enumeration."""
    L, T = 4, 2.5
    states = ((np.arange(1 << 16)[:, None] >> np.arange(16)) & 1).astype(np.int8) * 2 - 1
    states = states.reshape(-1, L, L)
    e_all = energy_per_site(states)
    weights = np.exp(-(e_all - e_all.min()) * L * L / T)
    draws = np.random.default_rng(0).choice(len(states), size=40000, p=weights / weights.sum())
    m, e = magnetization(states[draws]), e_all[draws]
    table = per_temperature(np.full(len(draws), T), m, e, L)
    truth = exact_values([T], L)
    for name in ("e", "C", "abs_m", "m2", "m4"):
        pull = (table[name][0] - truth[name][0]) / table[name + "_err"][0]
        assert abs(pull) < 4, (name, pull)
    N, beta = L * L, 1 / T
    assert table["chi"][0] == pytest.approx(N * beta * np.mean(m**2))
    assert table["U4"][0] == pytest.approx(1 - np.mean(m**4) / (3 * np.mean(m**2) ** 2))
    assert table["frac_m_pos"][0] == pytest.approx(np.mean(m > 0))


def test_exact_values_use_kaufman_beyond_enumeration():
    values = exact_values([2.0], 20)
    assert set(values) == {"e", "C"}
    assert values["e"][0] == pytest.approx(-1.7455571250, abs=1e-9)
    assert values["C"][0] == pytest.approx(exact.specific_heat_per_site(2.0, 20))


def test_peak_temperature_is_the_vertex_of_the_parabola_through_the_top_three():
    from physgan.systems.ising.observables import peak_temperature

    T = np.array([1.9, 2.1, 2.2, 2.35, 2.6, 3.0])
    assert peak_temperature(T, -(T - 2.28) ** 2) == pytest.approx(2.28, abs=1e-12)  # uneven spacing
    assert peak_temperature(T, T) == 3.0  # monotonic: the end point
    # Kaufman's C at L = 16 on a 0.05 grid: the parabola finds the exact peak of a dense scan within 0.01
    grid = np.arange(2.0, 2.6, 0.05)
    dense = np.linspace(2.0, 2.6, 6001)
    exact_peak = dense[np.argmax(exact.specific_heat_per_site(dense, 16))]
    assert abs(peak_temperature(grid, exact.specific_heat_per_site(grid, 16)) - exact_peak) < 0.01


def test_fidelity_report_compares_peak_temperatures(small_ising_file):
    from physgan.io import open_samples
    from physgan.systems.ising.observables import FidelityConfig, fidelity_report

    samples = open_samples(small_ising_file)
    text, result = fidelity_report(samples, samples, FidelityConfig(relative={"e": 0.0}, peak_tolerance=0.0))
    assert result["pass"] and {p["quantity"] for p in result["peaks"]} == {"C", "chi_prime"}
    assert "peak temperature of C" in text


def test_a_too_broad_generated_sample_does_not_widen_its_own_tolerance(small_ising_file, tmp_path):
    """Ordered and antiferromagnetic lattices mixed to give <e> 10 % off: their own standard error
    (~0.12) would put that within 3 combined standard errors; the Monte Carlo's spread does not."""
    from physgan.io import SampleWriter, open_samples
    from physgan.systems.ising.observables import FidelityConfig, fidelity_report, measure_file

    reference = open_samples(small_ising_file)
    table, L = measure_file(reference)
    ordered = np.ones((L, L), np.int8)
    antiferro = np.where(np.indices((L, L)).sum(0) % 2 == 0, 1, -1).astype(np.int8)
    with SampleWriter(tmp_path / "broad.h5", system="ising", source="gan", provenance={}) as writer:
        for T, e in zip(table["T"], table["e"]):
            n_ordered = int(round(256 * (2 - 0.9 * e) / 4))  # e = (-2 n_o + 2 (256 - n_o)) / 256 = 0.9 <e>
            spins = np.stack([ordered] * n_ordered + [antiferro] * (256 - n_ordered))
            writer.append(spins=spins, T=np.full(256, T, np.float32))
    broad = open_samples(tmp_path / "broad.h5")
    generated, _ = measure_file(broad)
    spread_error = generated["e_err"]
    assert np.all(np.abs(generated["e"] - table["e"]) < 3 * np.hypot(spread_error, table["e_err"]))
    _, result = fidelity_report(reference, broad, FidelityConfig(relative={"e": 0.02}))
    assert not any(r["checks"]["e"] for r in result["per_condition"])
    _, same = fidelity_report(reference, reference, FidelityConfig(relative={"e": 0.0}))
    assert all(r["checks"]["e"] for r in same["per_condition"])
