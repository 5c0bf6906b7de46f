"""Lagrange multipliers that hold per-group means of the generated samples at their training values.

A quadratic matching term (the trainer's feature_matching) pulls a generated mean towards its target
with a force that vanishes as the gap closes, so wherever the adversarial loss pulls the other way a
gap remains: the generated <|m|> just above T_c stayed 10-15 % high however long the Ising runs trained.
A multiplier per (condition group, quantity), grown by dual ascent (lambda += step x gap after each
generator step) and entering the generator loss as lambda x generated mean, is an integral controller:
it keeps growing while the gap persists, so the only steady state is no gap; the batch noise of the
gap averages out in the sum. One implementation serves the per-group means of the physics features
and the per-pixel occupancy rates of jets.
"""
from __future__ import annotations

import torch


class Multipliers:
    """value (n_groups, n_quantities): one multiplier per condition group and quantity."""

    def __init__(self, target: torch.Tensor, scale: torch.Tensor, step: float, device: torch.device):
        self.target, self.scale, self.step = target.to(device), scale.to(device), step
        self.value = torch.zeros_like(self.target)

    def term(self, quantities: torch.Tensor, groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """quantities (n_batch_groups, group_size, n_quantities) of generated samples, groups (n_batch_groups,)
        -> (the loss term: sum over quantities of multiplier x group mean / scale, averaged over the
        batch's groups; the gaps (group mean - target) / scale, detached)."""
        groups = groups.to(self.value.device)
        means = quantities.mean(1) / self.scale[groups]
        gap = means.detach() - self.target[groups] / self.scale[groups]
        return (self.value[groups] * means).sum(1).mean(), gap

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
