"""Exact refinement of generated lattices: K sweeps at each lattice's own T, each sweep one checkerboard
Metropolis pass over every site followed by one Wolff cluster flip.

Both updates leave the Boltzmann distribution at T invariant (Metropolis et al., J. Chem. Phys. 21, 1087
(1953); Wolff, Phys. Rev. Lett. 62, 361 (1989)), so a sample that is already right stays right and one that
is wrong moves towards the right one. Local structure (lone flipped spins, the roughness of domain walls)
relaxes in O(1) Metropolis sweeps; near T_c the generator's excess domain wall does not, and there a Wolff
cluster, which near T_c spans a large part of the lattice, removes much of it (docs/results/ising.md,
"Refinement by Metropolis sweeps"). Far from T_c a cluster is a few sites (high T) or flips the whole
majority domain (low T, an exact symmetry move): cheap and harmless. The large scales (the distribution of
|m|) still need ~L^2.17 Metropolis sweeps to decorrelate and stay mostly the generator's, which is why the
validation also judges the raw generator and `curve` records what each K did.

Each temperature's lattices are updated together by the Monte Carlo's own kernels (the compiled C kernel;
Metropolis in torch on CUDA), every lattice with its own random stream drawn from the sample's seed, so a
refined file reproduces from its seed.
"""
from __future__ import annotations

import numpy as np

from physgan.systems.ising import observables as obs

ALGORITHM = "checkerboard Metropolis sweep + Wolff cluster"
CURVE_SWEEPS = (0, 1, 2, 4, 8, 16, 32)  # the K of physgan run's refinement curve


class Refinement:
    """The Ising system's exact refinement (System.refine)."""

    algorithm = ALGORITHM  # what the sample file's provenance records

    def __call__(self, arrays: dict[str, np.ndarray], sweeps: int, seed: tuple[int, ...], device: str = "cpu"
                 ) -> dict[str, np.ndarray]:
        """Sample-file arrays (spins int8 (n, L, L), T (n,)) after `sweeps` sweeps at each lattice's T;
        seed: integers naming this batch's streams (the lattices of the k-th distinct T use
        SeedSequence([*seed, k])). sweeps = 0 returns the arrays unchanged."""
        if sweeps == 0:
            return arrays
        spins = arrays["spins"].copy()
        for rows, temperature, chains in _chains(arrays, seed, device):
            _sweep(chains, temperature, sweeps)
            spins[rows] = chains.spins
        return {**arrays, "spins": spins}

    def curve(self, reference: dict[str, np.ndarray], raw: dict[str, np.ndarray], seed: tuple[int, ...],
              sweeps: tuple[int, ...] = CURVE_SWEEPS, device: str = "cpu") -> dict:
        """How the main observables' error against the reference sample falls with K: the raw lattices
        refined to each K of `sweeps` in turn (one stream per temperature, as __call__), compared with the
        reference at every temperature. Returns {"sweeps", "T", "series": {name: {"label", "values",
        "errors"}}} with values[k][t] the generated minus reference value (relative for e, |m|, C, chi';
        absolute for the level populations and T_local - T) and errors the combined standard errors."""
        ref = _measure(reference)
        series: dict[str, dict] = {name: {"label": label, "values": [], "errors": []}
                                   for name, label in CURVE_LABELS.items()}
        chains = list(_chains(raw, seed, device))
        done = 0
        for k in sweeps:
            spins = raw["spins"].copy()
            for rows, temperature, chain in chains:
                _sweep(chain, temperature, k - done)
                spins[rows] = chain.spins
            done = k
            for name, (value, error) in _differences(ref, _measure({**raw, "spins": spins})).items():
                series[name]["values"].append(value)
                series[name]["errors"].append(error)
        return {"sweeps": list(sweeps), "T": ref["T"].tolist(), "algorithm": ALGORITHM, "series": series}


CURVE_LABELS = {"e": "<e> (relative)", "abs_m": "<|m|> (relative)", "C": "C (relative)",
                "chi_prime": "χ' (relative)", "T_local": "T_local - T",
                "ground": "ground-state fraction at the lowest T", "single_flip": "one-flip fraction at the lowest T"}


def _chains(arrays: dict[str, np.ndarray], seed: tuple[int, ...], device: str):
    from physgan.systems.ising.kernels import Chains

    T = arrays["T"]
    for k, temperature in enumerate(np.unique(T)):
        rows = np.flatnonzero(T == temperature)
        yield rows, float(temperature), Chains.from_spins(arrays["spins"][rows], np.random.SeedSequence([*seed, k]),
                                                          device=device)


def _sweep(chains, temperature: float, sweeps: int) -> None:
    for _ in range(sweeps):
        chains.metropolis(1.0 / temperature, 1)
        chains.wolff(1.0 / temperature, 1)


def _measure(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The per-temperature table with T_local, plus the level populations at the lowest temperature."""
    spins, T = arrays["spins"], arrays["T"]
    e = obs.energy_per_site(spins)
    table = obs.per_temperature(T, obs.magnetization(spins), e, spins.shape[-1], local=obs.local_field_fractions(spins))
    lowest = e[T == table["T"][0]]
    for name, level in (("ground", -2.0), ("single_flip", -2.0 + 8.0 / spins[0].size)):
        p = float(np.mean(np.isclose(lowest, level)))
        table[name], table[name + "_err"] = p, np.sqrt(p * (1 - p) / len(lowest))
    return table


def _differences(ref: dict, gen: dict) -> dict[str, tuple[list, list]]:
    out = {}
    for name in ("e", "abs_m", "C", "chi_prime"):
        scale = np.abs(ref[name])
        out[name] = ((gen[name] - ref[name]) / scale, np.hypot(gen[name + "_err"], ref[name + "_err"]) / scale)
    out["T_local"] = (gen["T_local"] - gen["T"], gen["T_local_err"])
    for name in ("ground", "single_flip"):
        out[name] = (np.array([gen[name] - ref[name]]), np.array([np.hypot(gen[name + "_err"], ref[name + "_err"])]))
    return {name: (np.asarray(v, float).tolist(), np.asarray(s, float).tolist()) for name, (v, s) in out.items()}


refine = Refinement()
