"""N-subjettiness (fastjet-contrib through the fastjet wheel) on hand-built prongs, hand-computed values,
and against an independent numpy implementation of the same definition, which lives here only."""
import warnings

import numpy as np

from physgan.systems.jets.nsubjettiness import BETA, R0, nsubjettiness, ratios
from physgan.systems.jets.particles import Particles, wrap_phi
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


def _library_taus(jets: Particles, axes: str) -> np.ndarray:
    """tau_1..3 from fastjet-contrib with other axes than physgan's."""
    import awkward as ak
    import fastjet

    sequence = fastjet.ClusterSequence(jets.to_awkward(), fastjet.JetDefinition(fastjet.kt_algorithm, 1.0))
    return ak.to_numpy(sequence.njettiness("NormalizedMeasure", axes, [1, 2, 3], BETA, R0)).reshape(-1, 3)


def test_agrees_with_the_reference_implementation():
    rng = np.random.default_rng(3)
    jets = batch([prongs([(rng.normal(0, 0.3), rng.normal(0, 0.3), rng.uniform(0.2, 1)) for _ in range(k)],
                         n_per_prong=15, width=0.08, seed=i) for i, k in enumerate(rng.integers(1, 5, 40))])
    wta = np.stack([tau(jets, *wta_kt_axes(jets, n)) for n in (1, 2, 3)], axis=1)
    np.testing.assert_allclose(wta, _library_taus(jets, "WTA_KT_Axes"), rtol=1e-12, atol=1e-14)
    # equal to rounding where no particle is equally far from two axes; on the regular cell grid such ties
    # are broken by rounding, which moves tau_N of ~6 % of Monte Carlo jets by up to ~5e-6 (3e-4 relative)
    np.testing.assert_allclose(nsubjettiness(jets), reference_nsubjettiness(jets), rtol=1e-12, atol=1e-14)


# The cross-check: physgan's former implementation, vectorised over jets, from the definitions in
# physgan/systems/jets/nsubjettiness.py and fastjet-contrib's Nsubjettiness (MeasureDefinition.cc).
ACCURACY = 1e-4  # contrib's default: convergence threshold, and the regulator of 1/dR
MAX_STEPS = 1000  # contrib's default nAttempts of the one-pass minimisation
WTA_R = 1000.0  # fastjet::JetDefinition::max_allowable_R, as fastjet-contrib's WTA_KT_Axes uses


def wta_kt_axes(jets: Particles, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Exclusive kT axes with winner-take-all pT recombination: (eta, phi), each (n_jets, n).

    Every jet needs at least n particles.
    """
    import awkward as ak
    import fastjet

    definition = fastjet.JetDefinition(fastjet.kt_algorithm, WTA_R, fastjet.WTA_pt_scheme)
    sequence = fastjet.ClusterSequence(jets.to_awkward(), definition)
    with warnings.catch_warnings():
        # fastjet 3.5's awkward interface warns about exclusive jets for every JetDefinition, kT included
        warnings.simplefilter("ignore", UserWarning)
        axes = sequence.exclusive_jets(n)
    px, py, pz = (ak.to_numpy(ak.flatten(axes[c])).reshape(jets.n_jets, n) for c in ("px", "py", "pz"))
    return np.arcsinh(pz / np.hypot(px, py)), np.arctan2(py, px)


def _distances(jets: Particles, axes_eta: np.ndarray, axes_phi: np.ndarray) -> np.ndarray:
    """dR of every particle to each axis of its jet: axes (n_jets, N) -> (total, N)."""
    owner = jets.owner
    d_eta = jets.eta[:, None] - axes_eta[owner]
    d_phi = wrap_phi(jets.phi[:, None] - axes_phi[owner])
    return np.hypot(d_eta, d_phi)


def tau(jets: Particles, axes_eta: np.ndarray, axes_phi: np.ndarray) -> np.ndarray:
    """tau_N of each jet for given axes (n_jets, N) -> (n_jets,); empty jets give 0."""
    nearest = _distances(jets, axes_eta, axes_phi).min(axis=1)
    numerator = np.bincount(jets.owner, weights=jets.pt * nearest, minlength=jets.n_jets)
    denominator = np.bincount(jets.owner, weights=jets.pt, minlength=jets.n_jets) * R0
    return np.divide(numerator, denominator, out=np.zeros(jets.n_jets), where=denominator > 0)


def refine_axes(jets: Particles, axes_eta: np.ndarray, axes_phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The one-pass minimisation of fastjet-contrib's DefaultMeasure for beta = 1, all jets at once.

    axes (n_jets, N) -> refined axes (n_jets, N). A jet stops once its last step moved its axes by less
    than ACCURACY on average, exactly as the contrib loop does; an axis that attracts no particle stays.
    """
    eta, phi = axes_eta.copy(), axes_phi.copy()
    n_jets, n_axes = eta.shape
    owner = jets.owner
    active = np.ones(n_jets, dtype=bool)
    for _ in range(MAX_STEPS):
        moving = active[owner]
        d_eta = jets.eta[moving, None] - eta[owner[moving]]
        d_phi = wrap_phi(jets.phi[moving, None] - phi[owner[moving]])
        distance = np.hypot(d_eta, d_phi)
        nearest = distance.argmin(axis=1)
        rows = np.arange(len(nearest))
        weight = jets.pt[moving] / np.sqrt(ACCURACY**2 + distance[rows, nearest] ** 2)
        slot = owner[moving] * n_axes + nearest
        total = np.bincount(slot, weights=weight, minlength=n_jets * n_axes)
        shift_eta = np.bincount(slot, weights=weight * d_eta[rows, nearest], minlength=n_jets * n_axes)
        shift_phi = np.bincount(slot, weights=weight * d_phi[rows, nearest], minlength=n_jets * n_axes)
        attracted = (total > 0).reshape(n_jets, n_axes) & active[:, None]
        step_eta = np.divide(shift_eta, total, out=np.zeros_like(total), where=total > 0).reshape(n_jets, n_axes)
        step_phi = np.divide(shift_phi, total, out=np.zeros_like(total), where=total > 0).reshape(n_jets, n_axes)
        step_eta, step_phi = np.where(attracted, step_eta, 0.0), np.where(attracted, step_phi, 0.0)
        eta += step_eta
        phi = wrap_phi(phi + step_phi)
        active &= np.hypot(step_eta, step_phi).mean(axis=1) > ACCURACY
        if not active.any():
            break
    return eta, phi


def reference_nsubjettiness(jets: Particles, n_max: int = 3) -> np.ndarray:
    """tau_1 ... tau_{n_max} of each jet (n_jets, n_max), 0 for jets of at most N particles."""
    taus = np.zeros((jets.n_jets, n_max))
    for n in range(1, n_max + 1):
        enough = np.flatnonzero(jets.counts > n)
        if len(enough) == 0:
            continue
        subset = jets.take(enough)
        axes = refine_axes(subset, *wta_kt_axes(subset, n))
        taus[enough, n - 1] = tau(subset, *axes)
    return taus
