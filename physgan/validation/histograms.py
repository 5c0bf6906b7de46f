"""Histogram binning shared by the metrics (separation power, validate.py) and the plots (report.py), so that
both bin every comparison alike; the histograms the plots draw (Histogram), and their file for reuse
(HistogramFile: report/histograms.h5)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

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


NORMALISATION = ("density = counts / (sum of counts x bin width), unit area; error = sqrt(counts) / (sum of counts "
                 "x bin width), Poisson")


@dataclass(frozen=True)
class Histogram:
    """One histogram as the report draws it: edges and counts; the density (unit area) and its Poisson error
    follow from them (NORMALISATION), so the plots and report/histograms.h5 cannot disagree."""

    edges: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray, edges: np.ndarray) -> Histogram:
        """Binned by numpy, as the metrics bin."""
        return cls(np.asarray(edges, np.float64), np.histogram(np.asarray(values, np.float64), bins=edges)[0])

    @property
    def _scale(self) -> np.ndarray:
        return max(float(self.counts.sum()), 1.0) * np.diff(self.edges)

    @property
    def density(self) -> np.ndarray:
        return self.counts / self._scale

    @property
    def error(self) -> np.ndarray:
        return np.sqrt(self.counts) / self._scale


class HistogramFile:
    """Every histogram a report plots, as plotted, for report/histograms.h5 (layout: docs/formats.md).

    One group per plot (the PNG's name), in it one group per panel ("all" for a figure of one panel, else
    "condition_0", ...), in that one group per series ("reference", "generated").
    """

    def __init__(self):
        self.plots: dict[str, dict] = {}

    def add(self, plot: str, name: str, observable, series: dict[str, Histogram], *, panel: str = "all",
            label: str = "", condition: dict | None = None) -> None:
        """Keep the histograms `series` of one panel of `plot`; `observable` (validate.Observable) names what
        is binned, `label` and `condition` (its values by name) the panel's condition."""
        about = {"observable": name, "label": observable.label, "tex": observable.tex, "unit": observable.unit,
                 "description": observable.description, "file": f"{plot}.png"}
        entry = self.plots.setdefault(plot, {"attrs": about, "panels": {}})
        entry["panels"][panel] = ({"label": label, "condition": json.dumps(condition or {})}, series)

    def write(self, path) -> None:
        import h5py

        with h5py.File(path, "w") as f:
            f.attrs["normalisation"] = NORMALISATION
            for plot, entry in self.plots.items():
                group = f.create_group(plot)
                group.attrs.update(entry["attrs"])
                for panel, (attrs, series) in entry["panels"].items():
                    panel_group = group.create_group(panel)
                    panel_group.attrs.update(attrs)
                    for who, histogram in series.items():
                        out = panel_group.create_group(who)
                        for field in ("edges", "counts", "density", "error"):
                            out.create_dataset(field, data=getattr(histogram, field))
                        out.attrs.update(normalisation=NORMALISATION, entries=int(histogram.counts.sum()))
