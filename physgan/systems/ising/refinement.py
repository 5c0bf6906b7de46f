"""Metropolis refinement of generated lattices: a few sweeps at each lattice's own temperature.

Why: a Markov kernel that leaves the Boltzmann distribution pi invariant can only bring any distribution
closer to pi (the KL divergence and the total-variation distance to pi never grow under it), so refining
generated samples never makes them worse in distribution. A few sweeps relax what local updates relax
fast, the short-range order that sets the energy (a generator that leaves too many broken bonds near
T_c is too disordered by ~1 %), while the slow modes, the size and shape of domains and so |m| near and
below T_c (Metropolis needs ~L^2.17 sweeps to decorrelate them at T_c), stay what the generator drew.
Above T_c, where correlations are short, enough sweeps forget the starting lattice altogether; the
README's comparison with lattices drawn at random and refined the same way shows where that happens.

The result is a hybrid sampler (generator, then Metropolis), and sample files say so: their provenance
records refine_sweeps.
"""
from __future__ import annotations

import numpy as np

from physgan.systems.ising.kernels import Chains


def refine(spins: np.ndarray, T: np.ndarray, sweeps: int, seed: np.random.SeedSequence) -> np.ndarray:
    """+-1 lattices (n, L, L) after `sweeps` checkerboard Metropolis sweeps each at its temperature T (n,).

    Lattices at one temperature share a set of chains; each temperature gets its own child of `seed`,
    so the result depends only on (spins, T, sweeps, seed).
    """
    out = np.empty_like(spins, dtype=np.int8)
    temperatures = np.unique(T)
    for t, child in zip(temperatures, seed.spawn(len(temperatures))):
        at = T == t
        chains = Chains.from_spins(spins[at], child)
        chains.metropolis(1.0 / float(t), sweeps)
        out[at] = chains.spins
    return out
