"""The Ising plug-in's exact checks: Monte Carlo agrees with the exact finite-L values, a shifted generator does not.

Small genuine Monte Carlo (seconds with the compiled kernel): L = 4, where enumeration also gives <|m|> and
<m^2>, and L = 8, where Kaufman's torus solution gives <e> and C. Measured objects are built as
physgan.validation.validate builds them (match_conditions, then the plug-in's per_sample).
"""
import math

import numpy as np
import pytest

from physgan.io import SampleWriter, open_samples
from physgan.systems import get_system
from physgan.systems.ising import mc
from physgan.systems.ising.exact import critical_temperature
from physgan.systems.ising.validation import EXACT_TOLERANCE, OBSERVABLES, exact_checks
from physgan.validation.validate import match_conditions

TC = critical_temperature()
GRIDS = {4: [1.5, 2.0, 2.269, 3.0], 8: [2.0, 2.2, 2.3, 2.6]}
N_PER_TEMP = 3000
SHIFT = 0.05
KEYS = {"quantity": str, "condition": str, "T": float, "exact": float, "gen": float, "gen_err": float,
        "gen_pull": float, "ref": float, "ref_err": float, "ref_pull": float, "relative": float, "p_value": float}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def simulate(path, L, temps, seed):
    config = mc.IsingMCConfig(L=L, temps=[float(t) for t in temps], n_per_temp=N_PER_TEMP, seed=seed, chains=64)
    mc.write_file(path, config, quiet=True)
    return path


def relabel(source, target, temps, shift):
    """Copy a sample file as a generator's output ("gan"), the label of each of `temps` raised by `shift`
    (stored as the reference's float32 labels of temps + shift are, not float32(T) + shift)."""
    samples = open_samples(source)
    stored, labels = np.asarray(temps, np.float32), (np.asarray(temps) + shift).astype(np.float32)
    with SampleWriter(target, system="ising", source="gan", provenance=samples.provenance) as writer:
        for chunk in samples.iter_chunks(1000):
            writer.append(spins=chunk["spins"], T=labels[np.searchsorted(stored, chunk["T"])])
    return target


def measured(reference, generated):
    """reference and generated as validate measures them."""
    plugin = get_system("ising").validation
    ref, gen = match_conditions(plugin, open_samples(reference), open_samples(generated))[:2]  # [2]: not judged
    for m in (ref, gen):
        m.features, _ = plugin.per_sample(m.samples, None)
    return ref, gen


@pytest.fixture(scope="module", params=sorted(GRIDS))
def independent(request, tmp_path_factory):
    L = request.param
    d = tmp_path_factory.mktemp(f"exact_L{L}")
    reference = simulate(d / "reference.h5", L, GRIDS[L], seed=21)
    generated = simulate(d / "generated.h5", L, GRIDS[L], seed=22)
    return L, exact_checks(*measured(reference, generated))


def test_independent_monte_carlo_agrees_with_the_exact_values(independent):
    L, rows = independent
    quantities = ("e", "C", "abs_m", "m2") if L <= 4 else ("e", "C")
    assert [(r["T"], r["quantity"]) for r in rows] == [(T, q) for T in GRIDS[L] for q in quantities]
    for r in rows:
        assert abs(r["ref_pull"]) < 4 and abs(r["gen_pull"]) < 4, r
        assert r["ref_err"] > 0 and 0 < r["gen_err"] and r["p_value"] > 1e-4


def test_the_dicts_keys_and_types(independent):
    L, rows = independent
    for r in rows:
        assert set(r) == set(KEYS) and all(type(r[k]) is t for k, t in KEYS.items()), r
        assert r["quantity"] in EXACT_TOLERANCE and r["condition"] == f"T = {r['T']:.4g}"
        assert r["gen_pull"] == pytest.approx((r["gen"] - r["exact"]) / r["gen_err"])
        assert r["ref_pull"] == pytest.approx((r["ref"] - r["exact"]) / r["ref_err"])
        assert r["relative"] == pytest.approx((r["gen"] - r["exact"]) / abs(r["exact"]))
        assert r["p_value"] == pytest.approx(math.erfc(abs(r["gen_pull"]) / math.sqrt(2)))
    assert {r["condition"] for r in rows} >= {"T = 2", "T = 2.3" if L == 8 else "T = 2.269"}


def test_temperature_labels_shifted_by_five_hundredths_fail_on_e_near_tc(tmp_path):
    """Lattices simulated at T, labelled T + 0.05, against a reference simulated at T + 0.05."""
    L, temps = 8, np.array(GRIDS[8])
    reference = simulate(tmp_path / "reference.h5", L, temps + SHIFT, seed=31)
    generated = relabel(simulate(tmp_path / "colder.h5", L, temps, seed=32), tmp_path / "shifted.h5", temps, SHIFT)
    rows = exact_checks(*measured(reference, generated))
    near = [r for r in rows if r["quantity"] == "e" and abs(r["T"] - TC) < 0.15]
    assert near and max(abs(r["gen_pull"]) for r in near) > 5
    assert all(r["gen"] < r["exact"] for r in rows if r["quantity"] == "e")  # colder: lower energy
    assert all(abs(r["ref_pull"]) < 4 for r in rows)  # the reference itself is honest


def test_the_generated_error_is_capped_at_the_references_spread():
    """A generated sample broader than the reference is judged with the reference's spread, not its own."""
    from physgan.systems.ising.observables import capped_error

    assert capped_error(2.0, 1.0, 100, 100) == 1.0
    assert capped_error(2.0, 1.0, 400, 100) == 2.0  # fewer generated samples: the reference's error scaled up
    assert capped_error(0.5, 1.0, 100, 100) == 0.5  # too narrow: its own, tighter error


def test_lattice_observables_are_marked_discrete():
    assert all(OBSERVABLES[name].discrete for name in ("e", "abs_m", "m", "m2"))


def test_a_preset_s_tolerances_of_means_are_those_of_its_exact_checks():
    from physgan.systems.ising.observables import FidelityConfig

    fidelity = FidelityConfig(relative={"e": 0.02, "abs_m": 0.03, "abs_m@2.2:2.4": 0.05})
    assert fidelity.exact_tolerances() == {"e": 0.02, "abs_m": 0.03}  # a T window is no tolerance at every T
