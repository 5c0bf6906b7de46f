"""Exact local refinement of generated lattices: K checkerboard Metropolis sweeps at each lattice's own T.

Every Metropolis sweep at temperature T leaves the Boltzmann distribution at T invariant (Metropolis et
al., J. Chem. Phys. 21, 1087 (1953)): a sample that is already right stays right, and one that is wrong
moves towards the right one. Local structure (lone flipped spins, the roughness of domain walls) relaxes
in O(1) sweeps, while the large scales (domains, the distribution of |m|) need ~L^2.17 sweeps near T_c: so
a few sweeps repair a generator's local statistics and leave its large scales, good or bad, as they were.
The validation therefore judges the raw generator as well as the refined sample.

Each temperature's lattices are updated together by the Monte Carlo's own kernels (the compiled C kernel
on the CPU, torch on CUDA), every lattice with its own random stream drawn from the sample's seed, so a
refined file reproduces from its seed.
"""
from __future__ import annotations

import numpy as np

ALGORITHM = "checkerboard Metropolis"


def refine(arrays: dict[str, np.ndarray], sweeps: int, seed: tuple[int, ...], device: str = "cpu"
           ) -> dict[str, np.ndarray]:
    """Sample-file arrays (spins int8 (n, L, L), T (n,)) after `sweeps` Metropolis sweeps at each lattice's
    T; seed: integers naming this batch's streams (the lattices of the k-th distinct T use
    SeedSequence([*seed, k])). sweeps = 0 returns the arrays unchanged."""
    from physgan.systems.ising.kernels import Chains

    if sweeps == 0:
        return arrays
    spins, T = arrays["spins"].copy(), arrays["T"]
    for k, temperature in enumerate(np.unique(T)):
        rows = np.flatnonzero(T == temperature)
        chains = Chains.from_spins(spins[rows], np.random.SeedSequence([*seed, k]), device=device)
        chains.metropolis(1.0 / float(temperature), sweeps)
        spins[rows] = chains.spins
    return {**arrays, "spins": spins}


refine.algorithm = ALGORITHM  # what the sample file's provenance records
