"""Building blocks for conditional generators and critics on periodic lattices and images.

Conditioning enters at every depth through FiLM (Perez et al., arXiv:1709.07871): each block scales and
shifts its channels by functions of an embedding of the (normalised) condition, which lets one network
represent a family of distributions that changes smoothly with the condition.
"""
from __future__ import annotations

import torch
from torch import nn


def mlp(sizes: list[int], activation=nn.SiLU) -> nn.Sequential:
    """Fully connected layers with `activation` between them (none after the last)."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class ConditionEmbedding(nn.Module):
    """Normalised condition (B, n_cond) -> embedding (B, width) through an MLP."""

    def __init__(self, n_cond: int, width: int):
        super().__init__()
        self.net = mlp([n_cond, width, width])

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return self.net(cond)


class FiLM(nn.Module):
    """Feature-wise affine modulation x * (1 + gamma(c)) + beta(c); starts as the identity."""

    def __init__(self, embed_dim: int, channels: int):
        super().__init__()
        self.to_scale_shift = nn.Linear(embed_dim, 2 * channels)
        nn.init.zeros_(self.to_scale_shift.weight)
        nn.init.zeros_(self.to_scale_shift.bias)

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """x (B, C, ...) (feature maps or plain features), embedding (B, embed_dim)."""
        scale_shift = self.to_scale_shift(embedding)
        gamma, beta = scale_shift.view(scale_shift.shape + (1,) * (x.dim() - 2)).chunk(2, dim=1)
        return x * (1 + gamma) + beta


class PeriodicResBlock(nn.Module):
    """Two circular-padded 3x3 convolutions with FiLM conditioning and a residual connection.

    Circular padding makes the block exactly translation-equivariant on the torus; dilation widens the
    receptive field so a few blocks see the whole lattice (correlations near T_c span the system).
    """

    def __init__(self, channels: int, embed_dim: int, dilation: int = 1, film: bool = True):
        super().__init__()
        conv = lambda: nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, padding_mode="circular")
        self.conv1, self.conv2 = conv(), conv()
        self.film = FiLM(embed_dim, channels) if film else None
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor, embedding: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(self.act(x))
        if self.film is not None:
            h = self.film(h, embedding)
        return x + self.conv2(self.act(h))


def dilations(n_blocks: int, size: int) -> list[int]:
    """1, 2, 4, ... up to a quarter of the lattice, repeated: receptive field ~ the lattice after one cycle."""
    cycle, d = [], 1
    while d <= max(1, size // 4):
        cycle.append(d)
        d *= 2
    return [cycle[i % len(cycle)] for i in range(n_blocks)]
