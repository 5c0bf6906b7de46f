"""Lagrange multipliers that hold per-group rates of the generated samples at their training values.

Used for the jets' pixel occupancy (train.occupancy_matching): how often each pixel is lit, per class
and 10 GeV of pT. Most periphery pixels are lit in 0-5 % of jets, less than one jet of a 16-jet group in
a batch, so neither the critic nor a quadratic matching term sees their rate, and the trained generators
left single pixels lit in 3-10 % of jets where the Monte Carlo lights them in 0-1 % (README, "which
pixels are lit"). A multiplier per (group, pixel), grown by dual ascent (lambda += step x gap after each
generator step) and entering the generator loss as lambda x the generated rate, is an integral
controller: it sums the gap over the steps, so a small persistent error is corrected while the batch
noise averages out. (Tried on the Ising means of e and |m| as well: the multipliers oscillated, see
README, "Ising GAN results".)
"""
from __future__ import annotations

import torch


class Multipliers:
    """value (n_groups, n_quantities): one multiplier per condition group and quantity."""

    def __init__(self, target: torch.Tensor, step: float, device: torch.device):
        self.target, self.step = target.to(device), step
        self.value = torch.zeros_like(self.target)

    def term(self, quantities: torch.Tensor, groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """quantities (n_batch_groups, group_size, n_quantities) of generated samples, groups (n_batch_groups,)
        -> (the loss term: sum over quantities of multiplier x group mean, averaged over the batch's
        groups; the gaps, group mean - target, detached)."""
        groups = groups.to(self.value.device)
        means = quantities.mean(1)
        return (self.value[groups] * means).sum(1).mean(), means.detach() - self.target[groups]

    @torch.no_grad()
    def update(self, groups: torch.Tensor, gap: torch.Tensor, world: int = 1) -> None:
        """Dual ascent: each multiplier grows by step x its group's gap, once for each time its group was
        in the batch (summed over the processes' shares of a data-parallel batch)."""
        change = torch.zeros_like(self.value).index_add_(0, groups.to(gap.device), gap)
        if world > 1:
            torch.distributed.all_reduce(change)
        self.value += self.step * change

    def rms(self) -> float:
        return self.value.pow(2).mean().sqrt().item()
