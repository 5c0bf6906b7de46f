"""`physgan inspect`: what a sample file holds, in a few lines a person can read."""
from __future__ import annotations

import json

import numpy as np

from physgan.io import Samples

MAX_LISTED = 12  # condition values listed one by one; beyond that a range is shown


def describe(samples: Samples) -> str:
    lines = [f"file:        {samples.path}",
             f"format:      {samples.format}",
             f"system:      {samples.system}",
             f"source:      {samples.source}",
             f"samples:     {samples.n}",
             "datasets:    " + "; ".join(f"{name} {np.dtype(dtype).name} {(samples.n,) + shape}"
                                         for name, (shape, dtype) in samples.fields.items())]
    for name in samples.conditions:
        lines.append(f"condition:   {name}: {_condition_summary(samples.read(name))}")
    for name, columns in samples.tables.items():
        n_rows = len(next(iter(columns.values()))) if columns else 0
        lines.append(f"table:       {name} ({n_rows} rows: {', '.join(columns)})")
    prov = samples.provenance
    for key in ("physgan_version", "created", "command", "shard"):
        if key in prov:
            lines.append(f"{key + ':':<12} {prov[key]}")
    if prov.get("config"):
        lines.append(f"config:      {json.dumps(prov['config'], sort_keys=True)}")
    if prov.get("note"):
        lines.append(f"note:        {prov['note']}")
    return "\n".join(lines)


def _condition_summary(values: np.ndarray) -> str:
    unique, counts = np.unique(values, return_counts=True)
    if len(unique) <= MAX_LISTED:
        listed = ", ".join(f"{u:.6g} (n={c})" for u, c in zip(unique, counts))
        return f"{len(unique)} values: {listed}"
    return (f"{len(unique)} values from {unique[0]:.6g} to {unique[-1]:.6g}, "
            f"{counts.min()} to {counts.max()} samples each")
