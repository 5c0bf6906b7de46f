"""The toy's plug-in of `physgan validate`: mean x and mean x^2 per sample, their exact expectations, and
memorisation by the Euclidean distance to the nearest training sample."""
from __future__ import annotations

import math

import numpy as np

from physgan.errors import UserError
from physgan.io import DEFAULT_CHUNK
from physgan.validation.validate import Observable, RowPicker, nearest_neighbour_summary, strided
from . import exact_mean_square, mean_square

OBSERVABLES = {"x2": Observable("mean x²", r"$\overline{x^2}$", "", "mean of x^2 over a sample's sites"),
               "x_mean": Observable("mean x", r"$\bar{x}$", "", "mean of x over a sample's sites")}
CONDITION_NAMES = ("width",)
QUERIES = 100  # samples per file whose nearest training sample is searched, evenly strided


def check_compatible(reference, generated) -> None:
    shapes = [samples.fields["x"][0] for samples in (reference, generated)]
    if shapes[0] != shapes[1]:
        raise UserError(f"sample shapes differ: {shapes[0]} in {reference.path}, {shapes[1]} in {generated.path}")


def conditions(samples) -> np.ndarray:
    return samples.read("width").astype(np.float32).reshape(-1, 1)


def condition_label(row) -> str:
    return f"width = {float(row[0]):.4g}"


def per_sample(samples, keep: np.ndarray | None = None):
    """x2 and x_mean (n,), and `queries`, the memorisation queries; kept: the samples at `keep`."""
    shape = samples.fields["x"][0]
    kept, queries = RowPicker(keep, shape, np.float32), RowPicker(strided(samples.n, QUERIES), shape, np.float32)
    parts, start = [], 0
    for chunk in samples.iter_chunks(DEFAULT_CHUNK, names=("x",)):
        x = chunk["x"]
        parts.append({"x2": mean_square(x), "x_mean": x.reshape(len(x), -1).mean(axis=1, dtype=np.float64)})
        kept.add(start, x)
        queries.add(start, x)
        start += len(x)
    features = {name: np.concatenate([p[name] for p in parts]) for name in OBSERVABLES}
    return {**features, "queries": queries.rows}, kept.rows


def make_classifier(shape: tuple[int, ...], n_cond: int):
    import torch
    from torch import nn

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(int(np.prod(shape)) + n_cond, 32), nn.SiLU(), nn.Linear(32, 1))

        def forward(self, x, cond):
            return self.net(torch.cat([x.flatten(1), cond], dim=1)).reshape(-1)

    return Classifier()


def extras(reference, generated, seed: int = 0) -> dict:
    """Mean x^2 per width of both files, with pulls against the exact value (exact standard errors)."""
    rows = []
    for c, row in enumerate(reference.rows):
        expected, spread = exact_mean_square(float(row[0]))
        entry = {"width": float(row[0]), "exact": expected}
        for who, measured in (("ref", reference), ("gen", generated)):
            x2 = measured.values("x2", c)
            entry[who], entry[f"{who}_pull"] = x2.mean(), (x2.mean() - expected) / (spread / math.sqrt(len(x2)))
        rows.append(entry)
    return {"exact_x2": rows}


def memorisation(training, reference, generated, seed: int = 0) -> dict:
    """Root-mean-square site distance from the strided queries of both files to their nearest training sample."""
    queries = [m.features["queries"].reshape(len(m.features["queries"]), -1) for m in (reference, generated)]
    stacked = np.concatenate(queries).astype(np.float64)
    nearest = np.full(len(stacked), np.inf)
    for chunk in training.iter_chunks(DEFAULT_CHUNK, names=("x",)):
        x = chunk["x"].reshape(len(chunk["x"]), -1).astype(np.float64)
        squared = (stacked**2).sum(1)[:, None] - 2 * stacked @ x.T + (x**2).sum(1)[None, :]
        nearest = np.minimum(nearest, np.sqrt(np.maximum(squared, 0).min(axis=1) / x.shape[1]))
    result = nearest_neighbour_summary(nearest[:len(queries[0])], nearest[len(queries[0]):], copy_distance=1e-6)
    return {**result, "metric": "root-mean-square site difference", "unit": "",
            "queries": "evenly strided samples of each file; nearest over every training sample"}


def report_content(extras: dict) -> dict:
    rows = [[f"{e['width']:g}", f"{e['exact']:.4g}", f"{e['ref']:.4g}", f"{e['ref_pull']:+.2f}", f"{e['gen']:.4g}",
             f"{e['gen_pull']:+.2f}"] for e in extras["exact_x2"]]
    worst = max(abs(e["gen_pull"]) for e in extras["exact_x2"])
    return {"summary": [("Exact <x²>", f"largest pull of the generated mean: {worst:.2f}")],
            "tables": [{"title": "Mean x² against its exact value", "rows": rows,
                        "headers": ["width", "exact", "reference", "pull", "generated", "pull"],
                        "note": "pulls in exact standard errors: width² sqrt(2 / 64 / n)"}]}


def plots(reference, generated, extras: dict, plots_dir, pdf: bool, histograms) -> list[tuple[str, str]]:
    return []  # the engine's histograms of OBSERVABLES say it all
