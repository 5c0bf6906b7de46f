"""Jets (or events) of massless particles as a ragged batch: flat numpy arrays plus offsets.

Every stage of the jet chain works on whole batches at once, never on one particle at a time in Python:
a batch of n jets holds pt, eta, phi of all their particles back to back, and `offsets` (n + 1,) so that
jet j owns entries offsets[j] ... offsets[j + 1] - 1. Particles are massless (the calorimeter cells of the
detector stand-in are, and foreign inputs give (pt, eta, phi) only), so E = pt cosh(eta) and rapidity = eta.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Angles mapped into [-pi, pi)."""
    return (np.asarray(phi) + np.pi) % (2 * np.pi) - np.pi


def ragged_ranges(offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the entries of `rows` in a ragged array with `offsets`, and the rows' lengths.

    offsets (n + 1,), rows (k,) -> (indices (sum of lengths,), lengths (k,)), rows' entries in order.
    """
    rows = np.asarray(rows, dtype=np.int64)
    lengths = offsets[rows + 1] - offsets[rows]
    starts = np.repeat(offsets[rows] - (np.cumsum(lengths) - lengths), lengths)
    return starts + np.arange(lengths.sum(), dtype=np.int64), lengths


def offsets_from_counts(counts: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(counts, dtype=np.int64)))


@dataclass
class Particles:
    """A batch of jets: pt, eta, phi float64 (total,) and offsets int64 (n_jets + 1,)."""

    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    offsets: np.ndarray

    @classmethod
    def from_counts(cls, pt, eta, phi, counts) -> "Particles":
        return cls(np.asarray(pt, np.float64), np.asarray(eta, np.float64), np.asarray(phi, np.float64),
                   offsets_from_counts(counts))

    @classmethod
    def from_padded(cls, pt, eta, phi) -> "Particles":
        """From zero-padded (n, M) arrays; entries with pt <= 0 are padding."""
        pt = np.asarray(pt, np.float64)
        real = pt > 0
        return cls.from_counts(pt[real], np.asarray(eta)[real], np.asarray(phi)[real], real.sum(axis=1))

    @classmethod
    def concatenate(cls, batches: list["Particles"]) -> "Particles":
        """One batch holding the jets of `batches` in order."""
        return cls.from_counts(*(np.concatenate([getattr(b, a) for b in batches]) for a in ("pt", "eta", "phi")),
                               np.concatenate([b.counts for b in batches]))

    @property
    def n_jets(self) -> int:
        return len(self.offsets) - 1

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def owner(self) -> np.ndarray:
        """The jet index of every particle, (total,)."""
        return np.repeat(np.arange(self.n_jets), self.counts)

    def take(self, rows: np.ndarray) -> "Particles":
        """The jets `rows` (indices or a boolean mask), in that order."""
        rows = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows)
        index, lengths = ragged_ranges(self.offsets, rows)
        return Particles(self.pt[index], self.eta[index], self.phi[index], offsets_from_counts(lengths))

    def momenta(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """px, py, pz, E of every particle (massless)."""
        return (self.pt * np.cos(self.phi), self.pt * np.sin(self.phi), self.pt * np.sinh(self.eta),
                self.pt * np.cosh(self.eta))

    def padded(self, width: int | None = None) -> np.ndarray:
        """(n_jets, width, 4) float32 of (pt, eta, phi, E) per particle, hardest first, zero-padded.

        Jets with more than `width` particles keep their hardest `width`.
        """
        width = int(self.counts.max(initial=0)) if width is None else width
        order = np.lexsort((-self.pt, self.owner))  # by jet, then decreasing pt
        rank = np.arange(len(order)) - np.repeat(self.offsets[:-1], self.counts)
        keep = rank < width
        out = np.zeros((self.n_jets, width, 4), np.float32)
        rows, cols, src = self.owner[keep], rank[keep], order[keep]
        out[rows, cols] = np.stack([self.pt[src], self.eta[src], self.phi[src],
                                    self.pt[src] * np.cosh(self.eta[src])], axis=1)
        return out

    def to_awkward(self):
        """The batch as an awkward array of (px, py, pz, E) records, one list per jet (FastJet's input)."""
        import awkward as ak

        px, py, pz, e = self.momenta()
        records = ak.zip({"px": px, "py": py, "pz": pz, "E": e}, with_name="Momentum4D")
        return ak.unflatten(records, self.counts)


def jet_sums(particles: Particles) -> dict[str, np.ndarray]:
    """Four-momentum sums per jet: pt, eta, phi, mass, each (n_jets,) float64 (empty jets: all 0)."""
    owner, n = particles.owner, particles.n_jets
    px, py, pz, e = (np.bincount(owner, weights=c, minlength=n) for c in particles.momenta())
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / np.where(pt > 0, pt, 1.0)) * (pt > 0)
    mass = np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))
    return {"pt": pt, "eta": eta, "phi": np.arctan2(py, px), "mass": mass}
