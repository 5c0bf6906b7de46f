"""N-subjettiness with the normalised measure, beta = 1 (Thaler & Van Tilburg, arXiv:1011.2268, 1108.2701).

    tau_N = sum_k pT_k min_j dR_jk^beta / sum_k pT_k R0^beta,   beta = 1, R0 = 1,

dR in (rapidity, phi); the particles are massless, so rapidity = eta. The axes are those of the LAGAN
generation code, fastjet-contrib's OnePass_WTA_KT_Axes: exclusive kT axes with winner-take-all
recombination (arXiv:1401.2158), then refined by the contrib's iterative minimisation for beta = 1 (each
particle joins its nearest axis; each axis moves to the mean (rapidity, phi) of its particles weighted by
pT / dR, a Weiszfeld step towards their pT-weighted geometric median) until the axes move less than 1e-4
on average or after 1000 steps. fastjet-contrib is not part of the fastjet wheel's C++ API, so this is
physgan's own implementation, vectorised over a batch of jets.
"""
from __future__ import annotations

import numpy as np

from physgan.systems.jets.particles import Particles, wrap_phi

R0 = 1.0
ACCURACY = 1e-4  # contrib's default: convergence threshold, and the regulator of 1/dR
MAX_STEPS = 1000  # contrib's default nAttempts of the one-pass minimisation


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


def nsubjettiness(jets: Particles, n_max: int = 3) -> np.ndarray:
    """tau_1 ... tau_{n_max} of each jet: (n_jets, n_max) float64.

    A jet with at most N particles has tau_N = 0 (an axis can sit on each particle).
    """
    from physgan.systems.jets.clustering import wta_kt_axes

    taus = np.zeros((jets.n_jets, n_max))
    for n in range(1, n_max + 1):
        enough = np.flatnonzero(jets.counts > n)
        if len(enough) == 0:
            continue
        subset = jets.take(enough)
        axes = refine_axes(subset, *wta_kt_axes(subset, n))
        taus[enough, n - 1] = tau(subset, *axes)
    return taus


def ratios(taus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """tau_21 = tau_2 / tau_1 and tau_32 = tau_3 / tau_2 from (n, 3); 0 where the denominator is 0."""
    def ratio(a, b):
        return np.divide(a, b, out=np.zeros_like(a), where=b > 0)

    return ratio(taus[:, 1], taus[:, 0]), ratio(taus[:, 2], taus[:, 1])
