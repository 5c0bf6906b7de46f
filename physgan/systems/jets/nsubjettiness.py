"""N-subjettiness with the normalised measure, beta = 1 (Thaler & Van Tilburg, arXiv:1011.2268, 1108.2701).

    tau_N = sum_k pT_k min_j dR_jk^beta / sum_k pT_k R0^beta,   beta = 1, R0 = 1,

dR in (rapidity, phi); the particles are massless, so rapidity = eta. The axes are those of the LAGAN
generation code, fastjet-contrib's OnePass_WTA_KT_Axes: exclusive kT axes with winner-take-all
recombination (arXiv:1401.2158), refined by the contrib's one-pass minimisation for beta = 1 (Weiszfeld
steps towards each axis's pT-weighted geometric median until the axes move by less than 1e-4 on average).
The fastjet wheel bundles that contrib (its awkward interface's `njettiness`, fastjet >= 3.4.3.1), which
measures every jet of a batch in one C++ call; tests/systems/jets/test_nsubjettiness.py checks it
against an independent numpy implementation.
"""
from __future__ import annotations

import numpy as np

from physgan.systems.jets.clustering import JET_R, cluster_sequence
from physgan.systems.jets.particles import Particles

BETA = 1.0
R0 = 1.0
AXES = "OnePass_WTA_KT_Axes"


def nsubjettiness(jets: Particles, n_max: int = 3) -> np.ndarray:
    """tau_1 ... tau_{n_max} of each jet: (n_jets, n_max) float64.

    A jet with at most N particles has tau_N = 0 (an axis can sit on each particle), as in the contrib.
    """
    import awkward as ak

    # njettiness measures all particles of each entry: the clustering that a ClusterSequence needs is unused
    sequence = cluster_sequence(jets, "kt_algorithm", JET_R)
    taus = sequence.njettiness("NormalizedMeasure", AXES, list(range(1, n_max + 1)), BETA, R0)
    return ak.to_numpy(taus).reshape(jets.n_jets, n_max)


def ratios(taus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """tau_21 = tau_2 / tau_1 and tau_32 = tau_3 / tau_2 from (n, 3); 0 where the denominator is 0."""
    def ratio(a, b):
        return np.divide(a, b, out=np.zeros_like(a), where=b > 0)

    return ratio(taus[:, 1], taus[:, 0]), ratio(taus[:, 2], taus[:, 1])
