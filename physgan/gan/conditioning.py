"""What the networks receive as their condition, shared by training, monitoring and sampling.

Each raw condition column is mapped from its training range onto [-1, 1]. With hierarchical generation
(TrainConfig.hierarchical) one more column follows per summary feature (Ising: |m|, optionally e),
normalised the same way. In training they are the summaries of the real sample the condition came from,
so the critic judges p(sample | condition, summaries) on matched pairs; when generating they are drawn
from their conditional distribution (physgan/gan/quantiles.py).

With anchors (TrainConfig.condition_anchors) the networks also see, after the raw columns, the training
mean of each named physics feature at the condition (Ising: <e>(T), <|m|>(T)), interpolated linearly
between training conditions and normalised the same way. Why: near T_c these means change several times
faster with T than elsewhere, and a network fed T alone, shared across temperatures, smooths that
steepness away (docs/results/ising.md); in the anchors' coordinates the steep part is linear.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from physgan.gan.quantiles import InterpolatedQuantiles, bracket


@dataclass(frozen=True)
class SummaryAxes:
    """Which raw condition column the summaries' distribution is interpolated along, and which (if any)
    is a category with a distribution of its own."""

    position: int = 0
    category: int | None = None

    def split(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Raw conditions (B, n_cond) -> the continuous condition (B, 1) and the categories (B,) or None."""
        category = None if self.category is None else cond[:, self.category].round().long()
        return cond[:, self.position:self.position + 1], category


def normalise(cond: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Map each condition column from its training range onto [-1, 1]."""
    span = torch.where(high > low, high - low, torch.ones_like(high))
    return 2 * (cond - low) / span - 1


class Conditioning:
    """Raw conditions (B, n_cond) [and summaries (B, S)] -> normalised network conditions (B, n_inputs)."""

    def __init__(self, low: torch.Tensor, high: torch.Tensor, summary: dict | None = None,
                 anchors: dict | None = None):
        self.low, self.high = low.float(), high.float()
        self.anchors = anchors  # {"features", "conditions", "means", "low", "high"} or None
        self.summary = summary  # {"features", "low", "high"} and the quantile tables, or None
        self.quantiles = InterpolatedQuantiles.from_state(summary) if summary else None
        self.axes = SummaryAxes(summary.get("position_column", 0), summary.get("category_column")) \
            if summary else None

    @classmethod
    def fit(cls, cond: torch.Tensor, summary_values: torch.Tensor | None = None, features=(),
            anchor_values: torch.Tensor | None = None, anchor_features=(), *,
            axes: SummaryAxes = SummaryAxes(), groups: torch.Tensor | None = None) -> "Conditioning":
        """From the training conditions (N, n_cond) and, for hierarchical generation, the summaries (N, S)
        of every sample, named by `features`, modelled along `axes` with the condition groups (N,) as
        nodes (default: the distinct conditions); for anchors, the anchor features (N, A) of every sample,
        named by `anchor_features` (their means per distinct value of the one condition become the table)."""
        low, high = cond.min(0).values, cond.max(0).values
        anchors = None
        if anchor_values is not None:
            distinct, which = torch.unique(cond[:, 0], return_inverse=True)
            means = torch.stack([anchor_values[which == j].double().mean(0) for j in range(len(distinct))]).float()
            anchors = {"features": list(anchor_features), "conditions": distinct.float(), "means": means,
                       "low": means.min(0).values, "high": means.max(0).values}
        if summary_values is None:
            return cls(low, high, anchors=anchors)
        position, category = axes.split(cond)
        model = InterpolatedQuantiles.fit(position, summary_values, category=category, nodes=groups)
        return cls(low, high, {"features": list(features), "low": summary_values.min(0).values.float(),
                               "high": summary_values.max(0).values.float(), "position_column": axes.position,
                               "category_column": axes.category, **model.state_dict()}, anchors)

    def state(self) -> dict:
        """Plain values and tensors (a checkpoint's conditioning entries; from_state reads them back)."""
        return {"condition_low": self.low.tolist(), "condition_high": self.high.tolist(), "summary": self.summary,
                "anchors": self.anchors}

    @classmethod
    def from_state(cls, state: dict) -> "Conditioning":
        low, high = (torch.tensor(state[k], dtype=torch.float32) for k in ("condition_low", "condition_high"))
        return cls(low, high, state.get("summary"), state.get("anchors"))

    @property
    def n_inputs(self) -> int:
        return (len(self.low) + (len(self.summary["features"]) if self.summary else 0)
                + (len(self.anchors["features"]) if self.anchors else 0))

    def real(self, cond: torch.Tensor, summary_values: torch.Tensor | None = None) -> torch.Tensor:
        """Network conditions for raw conditions: the normalised conditions, then (with anchors) the
        normalised anchor means at them, then (if hierarchical) the given summaries (B, S), normalised."""
        x = normalise(cond, self.low.to(cond.device), self.high.to(cond.device))
        if self.anchors is not None:
            a = {k: self.anchors[k].to(cond.device) for k in ("conditions", "means", "low", "high")}
            below, above, weight = bracket(a["conditions"], cond[:, 0])
            means = torch.lerp(a["means"][below], a["means"][above], weight[:, None])
            x = torch.cat([x, normalise(means, a["low"], a["high"])], dim=1)
        if self.summary is None:
            return x
        s = {k: self.summary[k].to(cond.device) for k in ("low", "high")}
        return torch.cat([x, normalise(summary_values.to(cond.device), s["low"], s["high"])], dim=1)

    def draw_summaries(self, cond: torch.Tensor, generator: torch.Generator) -> torch.Tensor | None:
        """Summaries (B, S) drawn from their model at raw conditions (B, n_cond); None if not hierarchical."""
        if self.summary is None:
            return None
        u = torch.rand(len(cond), len(self.summary["features"]), generator=generator)
        position, category = self.axes.split(cond)
        return self.quantiles.sample(position, u, category)

    def named(self, summaries: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The requested summaries by feature name, added to the generator's latent: a generator may
        impose one exactly (Ising: network.impose_magnetisation)."""
        if summaries is None:
            return {}
        return {name: summaries[:, i] for i, name in enumerate(self.summary["features"])}
