"""Histogram binning shared by the metrics (separation power, validate.py) and the plots (report.py), so that
both bin every comparison alike."""
from __future__ import annotations

import math

import numpy as np

BINS = 40  # histogram bins (separation power and plots)


def histogram_edges(reference: np.ndarray, generated: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Bin edges shared by two samples: `bins` equal widths over their pooled range.

    Values on a lattice (Ising m and e take multiples of 2/N and 4/N) get a width of a whole number of
    lattice steps and edges halfway between values, so that no bin catches one value more than its
    neighbours: aliasing would make smooth distributions look spiky and add noise to the separation power.
    """
    pooled = np.concatenate([np.ravel(reference), np.ravel(generated)]).astype(np.float64)
    lo, hi = float(pooled.min()), float(pooled.max())
    if not hi > lo:
        return np.array([lo - 0.5, hi + 0.5])
    values = np.unique(pooled)
    step = float(np.min(np.diff(values)))
    levels = (values - lo) / step
    if (hi - lo) / step <= 1e5 and np.allclose(levels, np.round(levels), atol=1e-3):
        width = step * math.ceil((hi - lo) / step / bins)
        count = math.ceil((hi - lo + step) / width)
        return lo - step / 2 + width * np.arange(count + 1)
    edges = np.linspace(lo, hi, bins + 1)
    edges[-1] = np.nextafter(hi, np.inf)  # the largest value belongs in the last bin, not beyond it
    return edges
