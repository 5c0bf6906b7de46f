"""The toy's GAN adapter: tiny networks. The exact generator of this system is x = width * z with z ~ N(0, 1)
per site, so the generator learns a scale from the condition and multiplies site noise by it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

FEATURE_NAMES = ("x2", "x4")  # even moments: the symmetry x -> -x leaves them unchanged


@dataclass
class NetworkConfig:
    """Toy network sizes."""

    hidden: int = 16
    """width of the hidden layers"""


class Generator(nn.Module):
    def __init__(self, shape: tuple[int, ...], n_cond: int, config: NetworkConfig):
        super().__init__()
        self.shape = shape
        self.log_scale = nn.Sequential(nn.Linear(n_cond, config.hidden), nn.SiLU(), nn.Linear(config.hidden, 1))

    def latent(self, batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return {"z": torch.randn((batch, *self.shape), generator=generator)}

    def forward(self, latent: dict[str, torch.Tensor], cond: torch.Tensor) -> torch.Tensor:
        scale = torch.exp(self.log_scale(cond)).view(-1, *([1] * len(self.shape)))
        return latent["z"].to(cond.device) * scale


class Critic(nn.Module):
    """An MLP on the sites, their physics features and the condition."""

    def __init__(self, shape: tuple[int, ...], n_cond: int, config: NetworkConfig):
        super().__init__()
        inputs = int(np.prod(shape)) + len(FEATURE_NAMES) + n_cond
        self.net = nn.Sequential(nn.Linear(inputs, config.hidden), nn.SiLU(), nn.Linear(config.hidden, 1))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x.flatten(1), physics_features(x), cond], dim=1)).reshape(-1)


def make_networks(shape: tuple[int, ...], n_cond: int, config: NetworkConfig) -> tuple[Generator, Critic]:
    return Generator(shape, n_cond, config), Critic(shape, n_cond, config)


def physics_features(x: torch.Tensor) -> torch.Tensor:
    """Mean x^2 and x^4 over each sample's sites (B, 2)."""
    x2 = x.square().flatten(1)
    return torch.stack([x2.mean(1), x2.square().mean(1)], dim=1)


def training_tensors(samples) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples (N, 1, 8, 8) float32 and widths (N, 1)."""
    x, width = [], []
    for chunk in samples.iter_chunks(names=("x", "width")):
        x.append(torch.from_numpy(chunk["x"].astype(np.float32)))
        width.append(torch.from_numpy(chunk["width"].astype(np.float32)))
    return torch.cat(x), torch.cat(width)[:, None]


def to_float(x: torch.Tensor) -> torch.Tensor:
    return x.float()


def to_arrays(x: torch.Tensor, cond: torch.Tensor) -> dict[str, np.ndarray]:
    return {"x": x.detach().cpu().numpy().astype(np.float32), "width": cond[:, 0].cpu().numpy().astype(np.float32)}


def symmetry_codes(batch: int, generator: torch.Generator) -> torch.Tensor:
    """1: flip the sign of every site (an exact symmetry of the Gaussian), 0: leave the sample."""
    return torch.randint(2, (batch,), generator=generator)


def apply_symmetry(x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    return x * (1 - 2 * codes.to(x)).view(-1, 1, 1, 1)


def condition_groups(cond: torch.Tensor) -> torch.Tensor:
    """One group per width."""
    return torch.unique(cond, dim=0, return_inverse=True)[1].reshape(-1)


def parse_conditions(options: dict) -> tuple[np.ndarray, int]:
    """Widths (k, 1) from --width, and --n samples at each."""
    from physgan.config import parse_temperatures
    from physgan.errors import UserError

    if options.get("width") is None:
        raise UserError("say at which widths to sample: --width 0.5,1.0")
    return np.array(parse_temperatures(options["width"]), dtype=np.float32)[:, None], int(options.get("n", 1000))


def test_conditions(samples) -> np.ndarray:
    return np.unique(samples.read("width")).astype(np.float32)[:, None]
