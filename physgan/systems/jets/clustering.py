"""The FastJet steps of the LAGAN chain, each run on a whole batch of events or jets in one C++ call.

- anti-kT R = 1.0 jets (Cacciari, Salam, Soyez, arXiv:0802.1189), keeping the leading jet per event;
- trimming (Krohn, Thaler, Wang, arXiv:0912.1342): recluster the jet into kT subjets of R_sub = 0.3 and
  drop those with less than f_cut = 5 % of the jet pT, as fastjet::Filter(JetDefinition(kt, 0.3),
  SelectorPtFractionMin(0.05)) does in the LAGAN generation code (lukedeo/jet-generation).
FastJet's awkward interface clusters every event of a batch in one call (cluster_sequence, which
nsubjettiness.py also uses); everything around it is numpy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from physgan.systems.jets.particles import Particles, jet_sums, offsets_from_counts, ragged_ranges

JET_R = 1.0
TRIM_R = 0.3
TRIM_FCUT = 0.05


@dataclass
class Clustered:
    """Jets of a batch of events: momenta px, py, pz, E (n_jets,) with event offsets (n_events + 1,),
    and the particles of jet k at particle indices members[member_offsets[k]:member_offsets[k + 1]]."""

    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    jet_offsets: np.ndarray
    members: np.ndarray
    member_offsets: np.ndarray

    @property
    def pt(self) -> np.ndarray:
        return np.hypot(self.px, self.py)

    @property
    def event(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.jet_offsets) - 1), np.diff(self.jet_offsets))

    def eta_phi(self, rows) -> tuple[np.ndarray, np.ndarray]:
        pt = self.pt[rows]
        return np.arcsinh(self.pz[rows] / pt), np.arctan2(self.py[rows], self.px[rows])


def _fastjet():
    """The fastjet module, its banner silenced: it would go to stdout, which belongs to the CLI's output.
    (Please cite FastJet, arXiv:1111.6097, as its banner asks; docs/jets.md does.)"""
    import fastjet

    fastjet._swig.ClusterSequence.set_fastjet_banner_stream(None)
    return fastjet


def cluster_sequence(particles: Particles, algorithm: str, R: float):
    """FastJet's ClusterSequence of every entry (event or jet) of `particles`, clustered in one C++ call
    with `algorithm` (a fastjet name: "kt_algorithm", ...) and radius R."""
    fastjet = _fastjet()
    return fastjet.ClusterSequence(particles.to_awkward(), fastjet.JetDefinition(getattr(fastjet, algorithm), R))


def inclusive_jets(particles: Particles, algorithm: str, R: float, pt_min: float = 0.0) -> Clustered:
    """Inclusive jets above pt_min of every event (here: every entry) of `particles`."""
    import awkward as ak

    sequence = cluster_sequence(particles, algorithm, R)
    jets = sequence.inclusive_jets(pt_min)
    index = sequence.constituent_index(pt_min)
    flat = {c: ak.to_numpy(ak.flatten(jets[c])) for c in ("px", "py", "pz", "E")}
    jet_offsets = offsets_from_counts(ak.to_numpy(ak.num(jets)))
    member_offsets = offsets_from_counts(ak.to_numpy(ak.flatten(ak.num(index, axis=2))))
    # FastJet numbers particles within each event; make the indices global to the batch
    local = ak.to_numpy(ak.flatten(index, axis=None)).astype(np.int64)
    event_of_member = np.repeat(np.repeat(np.arange(particles.n_jets), np.diff(jet_offsets)),
                                np.diff(member_offsets))
    return Clustered(flat["px"], flat["py"], flat["pz"], flat["E"], jet_offsets,
                     local + particles.offsets[event_of_member], member_offsets)


def _particles_of(particles: Particles, clustered: Clustered, jets: np.ndarray,
                  per_entry: np.ndarray | None = None) -> Particles:
    """The particles of the chosen jets: one entry per jet, or entries of per_entry[i] consecutive jets."""
    index, lengths = ragged_ranges(clustered.member_offsets, jets)
    if per_entry is not None:
        entry = np.repeat(np.arange(len(per_entry)), per_entry)
        lengths = np.bincount(entry, weights=lengths, minlength=len(per_entry)).astype(np.int64)
    members = clustered.members[index]
    return Particles(particles.pt[members], particles.eta[members], particles.phi[members],
                     offsets_from_counts(lengths))


def _hardest(pt: np.ndarray, jet_offsets: np.ndarray, rank: int) -> np.ndarray:
    """Per event, the index of its rank-th hardest jet (0 = leading), or -1 where it has fewer jets.

    pt (n_jets,) of jets grouped by event with jet_offsets (n_events + 1,).
    """
    counts = np.diff(jet_offsets)
    order = np.lexsort((-pt, np.repeat(np.arange(len(counts)), counts)))
    out = np.full(len(counts), -1, dtype=np.int64)
    has = counts > rank
    out[has] = order[jet_offsets[:-1][has] + rank]
    return out


def leading_jets(events: Particles, pt_min: float, R: float = JET_R) -> Particles:
    """The particles of the anti-kT leading jet of each event whose leading jet has pT >= pt_min."""
    clustered = inclusive_jets(events, "antikt_algorithm", R, pt_min)
    leading = _hardest(clustered.pt, clustered.jet_offsets, 0)
    return _particles_of(events, clustered, leading[leading >= 0])


@dataclass
class Trimmed:
    """Trimmed jets: their particles, and (eta, phi) of the leading and subleading kept subjets
    (n_jets,) each; subleading is NaN for jets left with one subjet."""

    particles: Particles
    lead_eta: np.ndarray
    lead_phi: np.ndarray
    sub_eta: np.ndarray
    sub_phi: np.ndarray

    def take(self, rows) -> "Trimmed":
        return Trimmed(self.particles.take(rows), self.lead_eta[rows], self.lead_phi[rows],
                       self.sub_eta[rows], self.sub_phi[rows])


def trim(jets: Particles, r_sub: float = TRIM_R, f_cut: float = TRIM_FCUT) -> Trimmed:
    """Trim each jet: keep its kT subjets (radius r_sub) carrying at least f_cut of the jet's pT."""
    subjets = inclusive_jets(jets, "kt_algorithm", r_sub)
    kept = np.flatnonzero(subjets.pt >= f_cut * jet_sums(jets)["pt"][subjets.event])
    kept_offsets = offsets_from_counts(np.bincount(subjets.event[kept], minlength=jets.n_jets))
    eta_phi = []
    for rank in (0, 1):
        hardest = _hardest(subjets.pt[kept], kept_offsets, rank)
        eta, phi = np.full(jets.n_jets, np.nan), np.full(jets.n_jets, np.nan)
        found = hardest >= 0
        eta[found], phi[found] = subjets.eta_phi(kept[hardest[found]])
        eta_phi += [eta, phi]
    return Trimmed(_particles_of(jets, subjets, kept, np.diff(kept_offsets)), *eta_phi)
