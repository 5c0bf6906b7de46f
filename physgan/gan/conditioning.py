"""What the networks receive as their condition, shared by training, monitoring and sampling.

Each raw condition column is mapped from its training range onto [-1, 1]. With hierarchical generation
(TrainConfig.hierarchical) one more column follows: the system's summary feature (Ising: |m|), normalised
the same way. In training it is the summary of the real sample the condition came from, so the critic
judges p(sample | condition, summary) on matched pairs; when generating it is drawn from the summary's
conditional distribution (physgan/gan/quantiles.py).
"""
from __future__ import annotations

import torch

from physgan.gan.quantiles import InterpolatedQuantiles


def normalise(cond: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Map each condition column from its training range onto [-1, 1]."""
    span = torch.where(high > low, high - low, torch.ones_like(high))
    return 2 * (cond - low) / span - 1


class Conditioning:
    """Raw conditions (B, n_cond) [and summaries (B,)] -> normalised network conditions (B, n_inputs)."""

    def __init__(self, low: torch.Tensor, high: torch.Tensor, summary: dict | None = None):
        self.low, self.high = low.float(), high.float()
        self.summary = summary  # {"feature", "low", "high", "conditions", "quantiles"} or None
        self.quantiles = InterpolatedQuantiles.from_state(summary) if summary else None

    @classmethod
    def fit(cls, cond: torch.Tensor, summary_values: torch.Tensor | None = None, feature: str = "") -> "Conditioning":
        """From the training conditions (N, n_cond) and, for hierarchical generation, the summary of every sample."""
        low, high = cond.min(0).values, cond.max(0).values
        if summary_values is None:
            return cls(low, high)
        model = InterpolatedQuantiles.fit(cond, summary_values)
        return cls(low, high, {"feature": feature, "low": float(summary_values.min()),
                               "high": float(summary_values.max()), **model.state_dict()})

    @classmethod
    def from_checkpoint(cls, checkpoint: dict) -> "Conditioning":
        low, high = (torch.tensor(checkpoint[k], dtype=torch.float32) for k in ("condition_low", "condition_high"))
        return cls(low, high, checkpoint.get("summary"))

    @property
    def n_inputs(self) -> int:
        return len(self.low) + (self.summary is not None)

    def real(self, cond: torch.Tensor, summary_values: torch.Tensor | None = None) -> torch.Tensor:
        """Network conditions for raw conditions and, if hierarchical, the given summaries."""
        x = normalise(cond, self.low.to(cond.device), self.high.to(cond.device))
        if self.summary is None:
            return x
        s = self.summary
        span = max(s["high"] - s["low"], 1e-12)
        return torch.cat([x, (2 * (summary_values.to(cond.device) - s["low"]) / span - 1)[:, None]], dim=1)

    def drawn(self, cond: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Network conditions for raw conditions, summaries (if hierarchical) drawn from their model."""
        if self.summary is None:
            return self.real(cond)
        u = torch.rand(len(cond), generator=generator)
        return self.real(cond, self.quantiles.sample(cond, u.to(cond.device)))
