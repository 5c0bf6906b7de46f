"""N-subjettiness on hand-built prongs, hand-computed values, and fastjet-contrib where the wheel has it."""
import numpy as np
import pytest

from physgan.systems.jets.clustering import wta_kt_axes
from physgan.systems.jets.nsubjettiness import nsubjettiness, ratios, refine_axes, tau
from physgan.systems.jets.particles import Particles
from tests.systems.jets.conftest import batch, prongs

ONE = [(0.0, 0.0, 1.0)]
TWO = [(0.0, 0.0, 0.6), (0.4, 0.3, 0.4)]
THREE = [(0.0, 0.0, 0.5), (0.4, 0.3, 0.3), (-0.3, 0.4, 0.2)]


def test_two_particles_hand_computed():
    # pT 2 and 1 at distance 0.5: the WTA axis sits on the harder one, tau_1 = 1 * 0.5 / 3; the refinement
    # keeps it there (the weighted geometric median of two points is the heavier one)
    jet = Particles.from_counts([2.0, 1.0], [0.0, 0.3], [0.0, 0.4], [2])
    taus = nsubjettiness(jet)
    np.testing.assert_allclose(taus[0], [0.5 / 3, 0.0, 0.0], atol=1e-4)


def test_perfect_two_prong_has_tau21_zero_and_one_prong_large():
    two_points = Particles.from_counts([60.0, 40.0], [0.0, 0.4], [0.0, 0.3], [2])
    tau_21, _ = ratios(nsubjettiness(batch([two_points, prongs(TWO, width=0.01), prongs(ONE, width=0.1)])))
    assert tau_21[0] == 0.0
    assert tau_21[1] < 0.1
    assert tau_21[2] > 0.6


def test_three_prongs_have_small_tau32_but_not_small_tau21():
    tau_21, tau_32 = ratios(nsubjettiness(batch([prongs(THREE, width=0.01), prongs(TWO, width=0.01)])))
    assert tau_32[0] < 0.15 and tau_21[0] > 0.3
    assert tau_32[1] > 0.5  # a third axis does not help a two-prong jet much


def test_taus_decrease_with_n_and_are_zero_for_few_particles():
    jets = batch([prongs(THREE, seed=s) for s in range(5)] + [Particles.from_counts([5.0], [0.1], [0.2], [1])])
    taus = nsubjettiness(jets)
    assert np.all(np.diff(taus[:5], axis=1) <= 1e-12)
    np.testing.assert_array_equal(taus[5], [0.0, 0.0, 0.0])
    assert ratios(taus[5:])[0][0] == 0.0  # 0/0 is reported as 0


def test_refinement_never_increases_tau_and_respects_phi_wrap():
    near_pi = prongs([(0.0, np.pi - 0.05, 0.6), (0.3, -np.pi + 0.2, 0.4)], width=0.03)
    shifted = Particles(near_pi.pt, near_pi.eta, near_pi.phi - np.pi, near_pi.offsets)  # same jet, rotated
    for jet in (near_pi, shifted):
        seeds = wta_kt_axes(jet, 2)
        assert tau(jet, *refine_axes(jet, *seeds))[0] <= tau(jet, *seeds)[0] + 1e-12
    np.testing.assert_allclose(nsubjettiness(near_pi), nsubjettiness(shifted), rtol=1e-9)


def _contrib_taus(jets: Particles, axes: str) -> np.ndarray:
    import awkward as ak
    import fastjet

    sequence = fastjet.ClusterSequence(jets.to_awkward(), fastjet.JetDefinition(fastjet.kt_algorithm, 1.0))
    if not hasattr(sequence, "njettiness"):
        pytest.skip("this fastjet wheel has no fastjet-contrib Nsubjettiness to compare with")
    return ak.to_numpy(sequence.njettiness("NormalizedMeasure", axes, [1, 2, 3], 1.0, 1.0)).reshape(-1, 3)


def test_agrees_with_fastjet_contrib():
    rng = np.random.default_rng(3)
    jets = batch([prongs([(rng.normal(0, 0.3), rng.normal(0, 0.3), rng.uniform(0.2, 1)) for _ in range(k)],
                         n_per_prong=15, width=0.08, seed=i) for i, k in enumerate(rng.integers(1, 5, 40))])
    wta = np.stack([tau(jets, *wta_kt_axes(jets, n)) for n in (1, 2, 3)], axis=1)
    np.testing.assert_allclose(wta, _contrib_taus(jets, "WTA_KT_Axes"), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(nsubjettiness(jets), _contrib_taus(jets, "OnePass_WTA_KT_Axes"), rtol=1e-5, atol=1e-7)
