"""The distribution of one summary number as a function of one continuous condition, for hierarchical
generation: draw the summary (Ising: |m|) from this model, then the sample from the generator conditioned
on the condition and the summary.

Why: where a distribution changes steeply with the condition, as the Ising magnetisation does near T_c,
a convolutional generator shared across conditions does not follow it (README, "Ising GAN results"). The
steep part is taken out of the generator: what it must then learn, p(sample | condition, summary), changes
smoothly with the condition.

The model: the empirical quantiles of the summary at each training condition, and between two training
conditions the linear interpolation of their quantile functions. For distributions on a line that is the
Wasserstein-2 geodesic (displacement interpolation, McCann 1997), which moves probability mass along the
line instead of mixing the two distributions, so a distribution that shifts with the condition keeps its
shape in between. It needs no training, is exact at the training conditions, and outside the training
range it keeps the distribution of the nearest end.
"""
from __future__ import annotations

import torch
from torch import nn


class InterpolatedQuantiles(nn.Module):
    """Quantiles q[j, k] of the summary at training conditions c[j] (increasing) and levels (k + 1/2) / K."""

    def __init__(self, conditions: torch.Tensor, quantiles: torch.Tensor):
        super().__init__()
        self.register_buffer("conditions", conditions.float())
        self.register_buffer("quantiles", quantiles.float())

    @classmethod
    def fit(cls, cond: torch.Tensor, values: torch.Tensor, levels: int = 128) -> "InterpolatedQuantiles":
        """From samples: cond (N, 1) one continuous condition, values (N,) the summary of each sample."""
        if cond.dim() != 2 or cond.shape[1] != 1:
            from physgan.errors import UserError
            raise UserError("hierarchical generation needs exactly one continuous condition")
        distinct, which = torch.unique(cond[:, 0], return_inverse=True)
        u = (torch.arange(levels, dtype=torch.float64) + 0.5) / levels
        quantiles = torch.stack([torch.quantile(values[which == j].double(), u) for j in range(len(distinct))])
        return cls(distinct, quantiles)

    @classmethod
    def from_state(cls, state: dict) -> "InterpolatedQuantiles":
        return cls(state["conditions"], state["quantiles"])

    def sample(self, cond: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Summaries (B,) at conditions cond (B, 1) and quantile levels u (B,) in [0, 1]."""
        c, q = self.conditions.to(cond.device), self.quantiles.to(cond.device)
        above = torch.searchsorted(c, cond[:, 0].contiguous()).clamp(min(1, len(c) - 1), len(c) - 1)
        below = (above - 1).clamp_min(0)
        span = (c[above] - c[below]).clamp_min(1e-12)
        weight = ((cond[:, 0] - c[below]) / span).clamp(0, 1)  # 0 or 1 beyond the ends: nearest training condition
        return torch.lerp(_at_level(q[below], u), _at_level(q[above], u), weight)


def _at_level(q: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Each row's quantile function (rows of q: values at levels (k + 1/2) / K) at its level u, linear in
    between and flat beyond the outer levels."""
    position = (u.to(q.device) * q.shape[1] - 0.5).clamp(0, q.shape[1] - 1)
    below = position.floor().long().clamp(max=max(0, q.shape[1] - 2))
    upper = (below + 1).clamp(max=q.shape[1] - 1)
    pick = lambda i: q.gather(1, i[:, None]).squeeze(1)
    return torch.lerp(pick(below), pick(upper), position - below)
