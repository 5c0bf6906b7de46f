"""A jet-image generator that places particles and pixelates them, as the Monte Carlo does.

Why: the pixel generator (generative.Generator) decides for each of the 625 pixels whether it is lit. An
image classifier told its jets from Monte Carlo ones by which soft pixels are lit (AUC 0.966 on the
occupancy alone, full preset): each Monte Carlo particle lands whole in one pixel, at a position of its
own, so its soft pixels scatter (22 % of the W' soft pixels have no lit neighbour), where the pixel
generator's latent gave one smooth pattern per jet (11 %). Independent draws per pixel (stochastic_gates)
broke up the prongs too. Here the jet is a set of particle slots, as a Monte Carlo jet is a set of
particles (MPGAN, arXiv:2106.11535, generated JetNet jets as point clouds):

- a jet context: latent z -> residual MLP with FiLM by the condition (as the pixel generator's);
- per slot: the context + a learnt slot embedding (so slots can specialise: the leading prong, the W's
  second prong, soft radiation) + its own noise, two per-particle layers with one DeepSets round in
  between (each slot sees the slots' mean), out: a mean position, a spread, a log weight and an
  existence gate; the position is 1.25 tanh(mean + spread x a normal draw of the slot's own), so a soft
  particle's position varies independently of the rest of the jet by construction (without the explicit
  spread, quick preset, one run: AUC 0.979); slot 0 is always lit;
- the pT shared out among the lit slots as the pixel generator shares it among pixels (share_out);
- pixelation exact in the forward pass (each particle's pT whole in the pixel it falls in, as
  images.pixelate), and in the backward pass the gradient of a tent-shaped spread over the pixels
  around it (straight-through, like the gates): the critic's gradient moves particles between pixels.

Two particles in one pixel add up, as Monte Carlo particles do. Tried on the quick preset against the pixel
generator on the same Monte Carlo (one run each; README, "Particles instead of pixels, and a
convolutional critic"): worse, classifier AUC 0.957 against 0.751, tau_21 W1/floor 3.9 against 1.1, its
soft pixels now too isolated (28 % against the Monte Carlo's 21 %); so the pixel generator stays the
default. The occupancy prior (occupancy_smoothness) works on per-pixel gates and has no meaning here
(make_networks refuses the combination).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from physgan.gan.nets import ConditionEmbedding, FiLM
from physgan.systems.jets.generative import BIAS_GAIN, NetworkConfig, jet_context, share_out, to_float
from physgan.systems.jets.images import HALF_WIDTH, PIXEL_WIDTH, PIXELS

OUTPUTS = 6  # per slot: mean x and y, log spread of x and y, log weight, gate
EDGE = HALF_WIDTH - 1e-4  # positions stay inside the image: each particle lands in a pixel
ALWAYS_LIT = 10.0  # the gate logit of slot 0


def pixelate(x: torch.Tensor, y: torch.Tensor, pt: torch.Tensor) -> torch.Tensor:
    """Images (B, 25, 25): the pT (B, n) of particles at (x, y) (B, n), summed per pixel, in the layout of
    images.pixelate (rows from y = +1.25 down). Forward: exact (one pixel per particle); backward: the
    gradient of tent weights over the pixel centres nearby."""
    centres = -HALF_WIDTH + (torch.arange(PIXELS, device=x.device, dtype=x.dtype) + 0.5) * PIXEL_WIDTH
    col = _straight_through_bins(x, centres)
    row = _straight_through_bins(y, centres.flip(0))
    return torch.einsum("bn,bnr,bnc->brc", pt, row, col)


def _straight_through_bins(u: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(B, n, 25): one-hot of the pixel whose interval holds u in the forward pass; in the backward pass
    tent weights max(0, 1 - |u - centre| / (2 width)) / 2, which sum to 1 over the pixels (so moving a
    particle moves pT, never creates it) and reach two pixels out: a particle at a pixel centre still
    feels its neighbours (a tent one pixel wide is flat there)."""
    distance = (u[..., None] - centres).abs()
    tent = (1 - distance / (2 * PIXEL_WIDTH)).clamp_min(0) / 2
    hard = nn.functional.one_hot(distance.argmin(-1), PIXELS).to(u.dtype)
    return tent + (hard - tent).detach()


class ParticleGenerator(nn.Module):
    """(latent, normalised condition) -> images t (B, 1, 25, 25) >= 0 made of config.particles particles."""

    def __init__(self, n_cond: int, config: NetworkConfig):
        super().__init__()
        w, p, n, self.config = config.channels, config.particle_channels, config.particles, config
        self.embed = ConditionEmbedding(n_cond, config.embed_dim)
        self.inp = nn.Linear(config.z_dim, w)
        self.layers = nn.ModuleList(nn.Linear(w, w) for _ in range(config.blocks))
        self.films = nn.ModuleList(FiLM(config.embed_dim, w) for _ in range(config.blocks + 1))
        self.to_slots = nn.Linear(w, p)
        self.slots = nn.Parameter(0.5 * torch.randn(n, p))
        self.noise = nn.Linear(config.particle_noise, p)
        self.particle = nn.Linear(p, p)
        self.message = nn.Linear(2 * p, p)  # a slot and the mean of all slots
        self.out = nn.Linear(p, OUTPUTS)
        nn.init.zeros_(self.out.bias)
        with torch.no_grad():  # jets start close to the bias's template (positions move 1.25 per unit)
            self.out.weight.mul_(0.1)
        self.condition_bias = nn.Linear(config.embed_dim, n * OUTPUTS + 1, bias=False)
        nn.init.zeros_(self.condition_bias.weight)
        self.bias = nn.Parameter(_initial_bias(n) / BIAS_GAIN)
        self.act = nn.LeakyReLU(0.2)

    def latent(self, batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """z for the jet, and for each particle slot noise for its layers and a draw of its position."""
        n = self.config.particles
        return {"z": torch.randn(batch, self.config.z_dim, generator=generator),
                "particle_noise": torch.randn(batch, n, self.config.particle_noise, generator=generator),
                "position_noise": torch.randn(batch, n, 2, generator=generator)}

    def forward(self, latent: dict[str, torch.Tensor], cond: torch.Tensor) -> torch.Tensor:
        h, e = jet_context(self, latent, cond)
        s = self.to_slots(self.act(h))[:, None] + self.slots + self.noise(latent["particle_noise"].to(cond.device))
        s = s + self.particle(self.act(s))
        s = s + self.message(self.act(torch.cat([s, s.mean(1, keepdim=True).expand_as(s)], -1)))
        bias = BIAS_GAIN * (self.bias + self.condition_bias(e))
        u = self.out(self.act(s)) + bias[:, :-1].view(len(e), -1, OUTPUTS)
        position = u[..., :2] + torch.exp(u[..., 2:4]) * latent["position_noise"].to(cond.device)
        x, y = (EDGE * torch.tanh(position[..., k]) for k in (0, 1))
        # slot 0 is always lit: a jet has at least one particle (with every gate shut, an empty image's
        # pT_D, 1e-3 / 1e-6, threw the critic and the matching off, quick preset, one run)
        gate = torch.cat([torch.full_like(u[..., :1, 5], ALWAYS_LIT), u[..., 1:, 5]], 1)
        pt = share_out(gate, u[..., 4], bias[:, -1:])
        return to_float(pixelate(x, y, pt))[:, None]

    def prior_loss(self, group_size: int) -> float:
        return 0.0  # no per-pixel gates (see the module docstring)


def _initial_bias(n: int) -> torch.Tensor:
    """(n * 6 + 1,): slots start as a jet, all lit: slot 0 at the centre, the others spread about it
    (a normal of 0.3 per axis, drawn from a fixed seed), each with a spread of 0.1 (atanh units, about
    a pixel), weights falling as in the pixel generator's start (log weight 1 - 2 r), and the log pT
    scale at log(275 GeV)."""
    xy = 0.3 * torch.randn(n, 2, generator=torch.Generator().manual_seed(0))
    xy[0] = 0
    xy = xy.clamp(-1.0, 1.0)
    r = xy.norm(dim=1)
    spread = torch.full((n,), float(np.log(0.1)))
    per_slot = torch.stack([torch.atanh(xy[:, 0] / EDGE), torch.atanh(xy[:, 1] / EDGE), spread, spread,
                            1.0 - 2.0 * r, torch.ones(n)], 1)
    return torch.cat([per_slot.flatten(), torch.tensor([np.log(275.0)])]).float()
