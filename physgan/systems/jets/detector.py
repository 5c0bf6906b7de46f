"""The LAGAN detector stand-in: a calorimeter of 0.1 x 0.1 (eta, phi) cells over |eta| < 5.

Visible final-state particles deposit their energy in the cell they point at; each hit cell becomes a
massless pseudo-particle at the cell centre with pT = E / cosh(eta_cell) (de Oliveira, Paganini, Nachman,
arXiv:1701.05927; generation code lukedeo/jet-generation). The phi direction has 63 cells of 2 pi / 63
(0.0997): an integer number of equal cells closes the circle without a seam cell of a different size.
"""
from __future__ import annotations

import numpy as np

from physgan.systems.jets.particles import Particles, offsets_from_counts

ETA_MAX = 5.0
ETA_CELLS = 100
PHI_CELLS = 63
ETA_WIDTH = 2 * ETA_MAX / ETA_CELLS
PHI_WIDTH = 2 * np.pi / PHI_CELLS


def calorimeter_cells(eta: np.ndarray, phi: np.ndarray, energy: np.ndarray, counts: np.ndarray) -> Particles:
    """Cells hit in each event.

    eta, phi, energy (total,) of all particles of a batch of events, counts (n_events,) particles per
    event -> Particles with one entry per hit cell, events in order, cells ordered by (eta, phi) index.
    """
    n_events = len(counts)
    event = np.repeat(np.arange(n_events), counts)
    inside = np.abs(eta) < ETA_MAX
    i_eta = ((eta[inside] + ETA_MAX) / ETA_WIDTH).astype(np.int64)
    i_phi = (((phi[inside] + np.pi) / PHI_WIDTH).astype(np.int64)) % PHI_CELLS
    cell = (event[inside] * ETA_CELLS + i_eta) * PHI_CELLS + i_phi
    # bincount over every cell of every event is cheaper than sorting the particles (~600 per event)
    deposits = np.bincount(cell, weights=energy[inside], minlength=n_events * ETA_CELLS * PHI_CELLS)
    hit = np.flatnonzero(deposits > 0)
    event_of_hit, within = np.divmod(hit, ETA_CELLS * PHI_CELLS)
    cell_eta = -ETA_MAX + (within // PHI_CELLS + 0.5) * ETA_WIDTH
    cell_phi = -np.pi + (within % PHI_CELLS + 0.5) * PHI_WIDTH
    return Particles(deposits[hit] / np.cosh(cell_eta), cell_eta, cell_phi,
                     offsets_from_counts(np.bincount(event_of_hit, minlength=n_events)))
