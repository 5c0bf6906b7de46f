"""The distribution of a few summary numbers as a function of one continuous condition, for hierarchical
generation: draw the summaries (Ising: |m|, then e) from this model, then the sample from the generator
conditioned on the condition and the summaries.

Why: where a distribution changes steeply with the condition, as the Ising magnetisation does near T_c,
a convolutional generator shared across conditions does not follow it (README, "Ising GAN results"). The
steep part is taken out of the generator: what it must then learn, p(sample | condition, summary), changes
smoothly with the condition.

The model: the empirical quantiles of the summary at each training condition, and between two training
conditions the linear interpolation of their quantile functions. For distributions on a line that is the
Wasserstein-2 geodesic (displacement interpolation, McCann 1997), which moves probability mass along the
line instead of mixing the two distributions, so a distribution that shifts with the condition keeps its
shape in between. It needs no training, is exact at the training conditions, and outside the training
range it keeps the distribution of the nearest end. A second summary is drawn from its quantiles within
rank bins of the first, which keeps the two correlated (e and |m| are, strongly, below T_c).
"""
from __future__ import annotations

import torch
from torch import nn


class InterpolatedQuantiles(nn.Module):
    """The joint distribution of S summaries at training conditions c[j] (increasing), as a sequence of
    quantile functions (Knothe-Rosenblatt): first[j, k], the quantiles of summary 0 at levels
    (k + 1/2) / K; rest[j, b, k, i], the quantiles of summary i + 1 among the samples in rank bin b (of
    `bins` equal-count bins) of summary 0. A draw maps S uniform numbers through them; between two
    training conditions every quantile is interpolated linearly at the same uniform numbers."""

    def __init__(self, conditions: torch.Tensor, first: torch.Tensor, rest: torch.Tensor):
        super().__init__()
        self.register_buffer("conditions", conditions.float())
        self.register_buffer("first", first.float())
        self.register_buffer("rest", rest.float())

    @classmethod
    def fit(cls, cond: torch.Tensor, values: torch.Tensor, levels: int = 128,
            bins: int = 16) -> "InterpolatedQuantiles":
        """From samples: cond (N, 1) one continuous condition (train.summary_indices checks a system has
        one), values (N,) or (N, S) the summaries of each sample."""
        values = values.reshape(len(values), -1).double()
        distinct, which = torch.unique(cond[:, 0], return_inverse=True)
        u = (torch.arange(levels, dtype=torch.float64) + 0.5) / levels
        first, rest = [], []
        for j in range(len(distinct)):
            v = values[which == j]
            first.append(torch.quantile(v[:, 0], u))
            ranked = v[torch.argsort(v[:, 0], stable=True)]
            rest.append(torch.stack([torch.quantile(part[:, 1:], u, dim=0) if v.shape[1] > 1 else
                                     torch.zeros(levels, 0, dtype=v.dtype) for part in ranked.tensor_split(bins)]))
        return cls(distinct, torch.stack(first), torch.stack(rest))

    @classmethod
    def from_state(cls, state: dict) -> "InterpolatedQuantiles":
        return cls(state["conditions"], state["first"], state["rest"])

    def sample(self, cond: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Summaries (B, S) at conditions cond (B, 1) for uniform numbers u (B, S) in [0, 1)."""
        below, above, weight = bracket(self.conditions.to(cond.device), cond[:, 0])
        u = u.to(cond.device)
        between = lambda table: torch.lerp(table(below), table(above), weight)
        first = self.first.to(cond.device)
        out = [between(lambda j: _at_level(first[j], u[:, 0]))]
        rest = self.rest.to(cond.device)
        bin_of = (u[:, 0] * rest.shape[1]).long().clamp(0, rest.shape[1] - 1)
        for i in range(rest.shape[-1]):
            out.append(between(lambda j: _at_level(rest[j, bin_of, :, i], u[:, i + 1])))
        return torch.stack(out, dim=1)


def bracket(c: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For points x (B,) and increasing nodes c (J,): the nodes below and above each point and the linear
    interpolation weight between them (0 or 1 beyond the ends: flat extrapolation)."""
    above = torch.searchsorted(c, x.contiguous()).clamp(min(1, len(c) - 1), len(c) - 1)
    below = (above - 1).clamp_min(0)
    weight = ((x - c[below]) / (c[above] - c[below]).clamp_min(1e-12)).clamp(0, 1)
    return below, above, weight


def _at_level(q: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Each row's quantile function (rows of q: values at levels (k + 1/2) / K) at its level u, linear in
    between and flat beyond the outer levels."""
    position = (u.to(q.device) * q.shape[1] - 0.5).clamp(0, q.shape[1] - 1)
    below = position.floor().long().clamp(max=max(0, q.shape[1] - 2))
    upper = (below + 1).clamp(max=q.shape[1] - 1)
    pick = lambda i: q.gather(1, i[:, None]).squeeze(1)
    return torch.lerp(pick(below), pick(upper), position - below)
