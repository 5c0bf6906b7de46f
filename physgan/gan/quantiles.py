"""The distribution of a few summary numbers as a function of one continuous condition, for hierarchical
generation: draw the summaries (Ising: |m|, then e) from this model, then the sample from the generator
conditioned on the condition and the summaries.

Why: where a distribution changes steeply with the condition, as the Ising magnetisation does near T_c,
a convolutional generator shared across conditions does not follow it (docs/results/ising.md). The
steep part is taken out of the generator: what it must then learn, p(sample | condition, summary), changes
smoothly with the condition.

The model: the empirical quantiles of the summary at each training condition, and between two training
conditions the linear interpolation of their quantile functions. For distributions on a line that is the
Wasserstein-2 geodesic (displacement interpolation, McCann 1997), which moves probability mass along the
line instead of mixing the two distributions, so a distribution that shifts with the condition keeps its
shape in between. It needs no training, is exact at the training conditions, and outside the training
range it keeps the distribution of the nearest end. A second summary is drawn from its quantiles within
rank bins of the first, which keeps the two correlated (e and |m| are, strongly, below T_c). Further
summaries come with the second: each level of the second's quantile function carries the other summaries
of the training sample at that rank, so all but the first are drawn as the training samples have them
together. Drawn each from its own quantiles, they would be independent given the first: for W' jets of
a given mass, girth and the second prong's distance correlate -0.5 to -0.7 (a jet with its subjets far
apart has less pT in the second one), and independent draws asked the generator for jets that do not exist.

A system whose conditions are a category and one continuous value (jets: the class and the jet pT) gets
one such sequence per category: a W' jet's mass is never interpolated towards a QCD jet's. Where the
continuous condition takes no repeated values (the jet pT), the nodes are the system's condition groups
(10 GeV of pT), each at its samples' mean condition.
"""
from __future__ import annotations

import torch
from torch import nn

from physgan.errors import UserError


class InterpolatedQuantiles(nn.Module):
    """The joint distribution of S summaries at training conditions c[j] (increasing), as a sequence of
    quantile functions (Knothe-Rosenblatt): first[j, k], the quantiles of summary 0 at levels
    (k + 1/2) / K; rest[j, b, k, 0], the quantiles of summary 1 among the samples in rank bin b (of
    `bins` equal-count bins) of summary 0, and rest[j, b, k, i > 0] summary i + 1 of the samples at those
    ranks of summary 1 (carried along, module docstring). A draw maps two uniform numbers through them
    (the rest of u is unused); between two training conditions every value is interpolated linearly at
    the same uniform numbers."""

    def __init__(self, conditions: torch.Tensor, first: torch.Tensor, rest: torch.Tensor,
                 category: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("conditions", conditions.float())
        self.register_buffer("first", first.float())
        self.register_buffer("rest", rest.float())
        # the category of each node (all 0 without categories: the checkpoints written before them)
        self.register_buffer("category", torch.zeros(len(conditions), dtype=torch.int64) if category is None
                             else category.long())

    @classmethod
    def fit(cls, cond: torch.Tensor, values: torch.Tensor, levels: int = 128, bins: int = 16,
            category: torch.Tensor | None = None, nodes: torch.Tensor | None = None) -> "InterpolatedQuantiles":
        """From samples: cond (N, 1) the continuous condition, values (N,) or (N, S) the summaries of each
        sample; optionally category (N,) integer classes, each with its own nodes, and nodes (N,) the node
        each sample belongs to (default: one node per distinct category and condition). A node sits at the
        mean condition of its samples; nodes must not mix categories."""
        values = values.reshape(len(values), -1).double()
        category = torch.zeros(len(values), dtype=torch.int64) if category is None else category.long()
        if nodes is None:
            nodes = torch.unique(torch.stack([category.double(), cond[:, 0].double()], 1), dim=0,
                                 return_inverse=True)[1]
        _, which = torch.unique(nodes, return_inverse=True)
        members = [torch.nonzero(which == j).squeeze(1) for j in range(int(which.max()) + 1)]
        if any(category[m].unique().numel() > 1 for m in members):
            raise ValueError("a node of the summary model mixes categories")
        smallest = min(len(m) for m in members)
        if values.shape[1] > 1 and smallest < bins:
            raise UserError(f"hierarchical generation with {values.shape[1]} summaries needs at least {bins} "
                            f"training samples in every condition group (one per rank bin of the first "
                            f"summary); the smallest group has {smallest}: give it more training data")
        node_category = torch.stack([category[m[0]] for m in members])
        node_cond = torch.stack([cond[m, 0].double().mean() for m in members])
        order = sorted(range(len(members)), key=lambda j: (int(node_category[j]), float(node_cond[j])))
        u = (torch.arange(levels, dtype=torch.float64) + 0.5) / levels
        first, rest = [], []
        for j in order:
            v = values[members[j]]
            first.append(torch.quantile(v[:, 0], u))
            ranked = v[torch.argsort(v[:, 0], stable=True)]
            rest.append(torch.stack([_carried_quantiles(part[:, 1:], u) for part in ranked.tensor_split(bins)]))
        return cls(node_cond[order], torch.stack(first), torch.stack(rest), node_category[order])

    @classmethod
    def from_state(cls, state: dict) -> "InterpolatedQuantiles":
        return cls(state["conditions"], state["first"], state["rest"], state.get("category"))

    def spread(self) -> torch.Tensor:
        """(S,): each summary's standard deviation over all nodes' quantile tables together, every node
        weighted alike (the training sample's spread where its condition groups are of equal size)."""
        rest = self.rest.flatten(0, 2)  # (nodes x bins x levels, S - 1)
        return torch.cat([self.first.flatten().std(0, keepdim=True), rest.std(0) if rest.shape[1] else rest[0]])

    def brackets(self, cond: torch.Tensor, category: torch.Tensor | None = None):
        """For conditions cond (B, 1) [of categories (B,)]: the nodes below and above each, within its
        category, and the interpolation weight between them (bracket)."""
        c = self.conditions.to(cond.device)
        if category is None:
            return bracket(c, cond[:, 0])
        node_category, category = self.category.to(cond.device), category.to(cond.device).long()
        unknown = set(category.unique().tolist()) - set(node_category.unique().tolist())
        if unknown:
            from physgan.errors import UserError

            raise UserError(f"the generator's summary model has no training samples of category "
                            f"{sorted(unknown)[0]}: it cannot generate that class")
        below, above = (torch.zeros(len(cond), dtype=torch.int64, device=cond.device) for _ in range(2))
        weight = torch.zeros(len(cond), device=cond.device)
        for k in node_category.unique():
            nodes, mine = torch.nonzero(node_category == k).squeeze(1), category == k
            b, a, w = bracket(c[nodes], cond[mine, 0])
            below[mine], above[mine], weight[mine] = nodes[b], nodes[a], w
        return below, above, weight

    def sample(self, cond: torch.Tensor, u: torch.Tensor, category: torch.Tensor | None = None) -> torch.Tensor:
        """Summaries (B, S) at conditions cond (B, 1) [of categories (B,)] for uniform numbers u (B, S)
        in [0, 1)."""
        below, above, weight = self.brackets(cond, category)
        u = u.to(cond.device)
        between = lambda table: torch.lerp(table(below), table(above), weight)
        first = self.first.to(cond.device)
        out = [between(lambda j: _at_level(first[j], u[:, 0]))]
        rest = self.rest.to(cond.device)
        bin_of = (u[:, 0] * rest.shape[1]).long().clamp(0, rest.shape[1] - 1)
        for i in range(rest.shape[-1]):  # all at summary 1's level: the summaries of one training sample
            out.append(between(lambda j: _at_level(rest[j, bin_of, :, i], u[:, 1], nearest=i > 0)))
        return torch.stack(out, dim=1)


def _carried_quantiles(part: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """(K, S') for samples part (n, S'), S' >= 0: column 0's quantiles at levels u (K,), as torch.quantile's
    linear rule (position u (n - 1) in the sorted column), and the other columns of the sample nearest
    each position (one sample's own values: averaging two neighbours would narrow their spread)."""
    if part.shape[1] == 0:
        return part.new_zeros(len(u), 0)
    ranked = part[torch.argsort(part[:, 0], stable=True)]
    position = u.to(part.dtype) * (len(part) - 1)
    below = position.floor().long()
    above = (below + 1).clamp(max=len(part) - 1)
    carried = ranked[position.round().long(), 1:]
    return torch.cat([torch.lerp(ranked[below, :1], ranked[above, :1], (position - below)[:, None]), carried], 1)


def bracket(c: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For points x (B,) and increasing nodes c (J,): the nodes below and above each point and the linear
    interpolation weight between them (0 or 1 beyond the ends: flat extrapolation)."""
    above = torch.searchsorted(c, x.contiguous()).clamp(min(1, len(c) - 1), len(c) - 1)
    below = (above - 1).clamp_min(0)
    weight = ((x - c[below]) / (c[above] - c[below]).clamp_min(1e-12)).clamp(0, 1)
    return below, above, weight


def _at_level(q: torch.Tensor, u: torch.Tensor, nearest: bool = False) -> torch.Tensor:
    """Each row's quantile function (rows of q: values at levels (k + 1/2) / K) at its level u, linear in
    between and flat beyond the outer levels; nearest: the value of the nearest level (carried summaries)."""
    position = (u.to(q.device) * q.shape[1] - 0.5).clamp(0, q.shape[1] - 1)
    if nearest:
        position = position.round()
    below = position.floor().long().clamp(max=max(0, q.shape[1] - 2))
    upper = (below + 1).clamp(max=q.shape[1] - 1)
    pick = lambda i: q.gather(1, i[:, None]).squeeze(1)
    return torch.lerp(pick(below), pick(upper), position - below)
