"""Sampling-time adherence: each generated sample brought closer to the summaries it was asked for.

With hierarchical generation (TrainConfig.hierarchical) the summaries (jets: the mass, ...) are drawn from
the Monte Carlo's quantiles and the generator is trained to meet them, but it meets them only on average:
at the jets full preset the generated mass missed the requested one by about 4 GeV rms per jet, which
widened the W' mass peak to 3 x its Monte Carlo floor in every checkpoint of two trainings
(docs/results/jets.md, attempt F9). Here each sample's latent z moves from its draw z0 by Adam steps on

    L(z) = sum_s ((f_s(G(z)) - s) / (TOLERANCE x spread_s))^2 / 2 + |z - z0|^2 / 2,

f_s the generated sample's summary, s the requested one, spread_s that summary's spread over the training
sample: the nearest latent, in the standard-normal latent's own metric, that meets the chosen summaries to
a TOLERANCE of their spread. Each sample keeps its lowest-loss iterate: without that, Adam's momentum
carried some jets away (the rms mass miss rose from 3.8 to 7.3 GeV on one checkpoint).

It draws no random numbers, so a sample stays named by its seed and batch size, and 0 steps give the
generator's plain sample. It runs the generator forward and backward once per step: 60 steps made 20 000
full-size jets in 231 s on one CPU core instead of 4 s.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from physgan.errors import UserError

if TYPE_CHECKING:
    import torch

TOLERANCE = 0.05  # of each summary's training spread: the misfit's unit
LEARNING_RATE = 0.05  # Adam's step in the latent (a standard normal per coordinate)
STEPS = 60  # the default number of steps (the jets full preset's); the module imports torch only where it
            # runs, so that the run configuration and the command line take this default without it


@dataclass(frozen=True)
class Adherence:
    """Adherence to some of a checkpoint's summaries: for_checkpoint builds it, a call applies it."""

    features: Callable[[torch.Tensor], torch.Tensor]  # the system's physics features of a generated batch
    feature_columns: list[int]  # the chosen summaries among those features
    summary_columns: list[int]  # ... and among the checkpoint's summaries
    spread: torch.Tensor  # their spread over the training sample (InterpolatedQuantiles.spread)
    steps: int

    @classmethod
    def for_checkpoint(cls, system, conditioning, names, steps: int) -> "Adherence | None":
        """Adherence to the summaries `names` of a checkpoint's generator (None where names is empty);
        one clear error where the generator was not trained with them as summaries."""
        if steps < 0:
            raise UserError(f"adherence steps {steps}: must be >= 0")
        if not names:
            return None
        trained = conditioning.summary["features"] if conditioning.summary else []
        unknown = [name for name in names if name not in trained]
        if unknown:
            raise UserError(f"adhere to {unknown[0]}: the generator was trained with "
                            + (f"the summaries {', '.join(trained)} only" if trained else "no summaries")
                            + " (train.hierarchical)")
        summary_columns = [trained.index(name) for name in names]
        return cls(system.generative.physics_features,
                   [list(system.generative.FEATURE_NAMES).index(name) for name in names], summary_columns,
                   conditioning.quantiles.spread()[summary_columns], steps)

    def __call__(self, generator, latent: dict, cond: torch.Tensor, summaries: torch.Tensor) -> dict:
        """The latent dict with latent["z"] moved towards the batch's summaries (B, S) as drawn."""
        return adhere(generator, latent, cond, summaries[:, self.summary_columns], self.features,
                      self.feature_columns, self.spread, self.steps)


def adhere(generator, latent: dict, cond: torch.Tensor, wanted: torch.Tensor, features, columns: list[int],
           spread: torch.Tensor, steps: int) -> dict:
    """The latent dict with latent["z"] moved towards generated samples whose physics features
    features(x)[:, columns] are `wanted` (B, len(columns)), each to TOLERANCE x spread (len(columns),),
    in `steps` Adam steps (module docstring); cond: the network conditions of the batch."""
    import torch

    if steps == 0:
        return latent
    scale = (TOLERANCE * spread).to(cond.device)
    wanted = wanted.to(cond.device)
    z0 = latent["z"].to(cond.device)

    def loss(z):
        made = features(generator({**latent, "z": z}, cond))[:, columns]
        return (((made - wanted) / scale) ** 2).sum(1) / 2 + ((z - z0) ** 2).sum(1) / 2

    z = z0.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=LEARNING_RATE)
    best, lowest = z0.clone(), torch.full((len(z0),), float("inf"), device=z0.device)
    with torch.enable_grad():
        for step in range(steps + 1):
            value = loss(z)
            better = value.detach() < lowest
            best[better], lowest[better] = z.detach()[better], value.detach()[better]
            if step == steps:  # the last iterate is judged, not moved
                break
            # the gradient of z alone: the generator's own parameters gather none
            z.grad, = torch.autograd.grad(value.sum(), z)
            optimizer.step()
    return {**latent, "z": best}
