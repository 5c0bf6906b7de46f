"""What the GAN engine needs from the Ising system: tensors, networks, symmetries, physics features.

Networks (choices and why):
- Generator: a per-site Gaussian noise field plus a global latent vector, turned into a lattice by
  circular-padded, dilated residual convolutions (coarse to fine) with FiLM temperature conditioning,
  then tanh.
  Site noise is the natural source of local thermal fluctuations, the global vector of long-range
  structure (domains, the size of m). With i.i.d. site noise and circular convolutions the output
  distribution is exactly translation invariant.
- The remaining exact symmetries of the Boltzmann weight (global spin flip, the 8 lattice symmetries)
  are imposed on the output by a random group element per sample, so the generator cannot collapse
  onto one sign of m below T_c (the failure reported in the literature: docs/physics.md, "Ising model").
- Straight-through binarisation: the forward pass emits sign(tanh(.)) = +-1, as in the data, while the
  gradient flows through tanh. The critic therefore never sees soft spins it could exploit, and what is
  trained is exactly what is sampled.
- Critic: circular convolutions without BatchNorm (it would couple samples and spoil the gradient
  penalty), global pooling, and an MLP head that also receives e, |m| and m^2 of the input and an
  embedding of T, so it can compare the thermodynamics of a lattice with its temperature directly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from physgan.gan.nets import ConditionEmbedding, FiLM, PeriodicResBlock, dilations, mlp

FEATURE_NAMES = ("e", "abs_m")  # physics features matched per temperature and monitored during training


@dataclass
class NetworkConfig:
    """Ising generator and critic sizes."""

    channels: int = 32
    """generator channels"""
    blocks: int = 4
    """generator residual blocks"""
    critic_channels: int = 32
    """critic channels"""
    critic_blocks: int = 3
    """critic residual blocks"""
    z_dim: int = 16
    """global latent dimension"""
    noise_channels: int = 2
    """channels of per-site Gaussian noise"""
    noise_scales: int = 0
    """also feed the site noise smoothed (circularly) at widths 1, 2, 4, ... sites"""
    noise_gates: bool = False
    """multiply each noise input (the white noise and, with noise_scales, every smoothed copy) by a gain
    set by T, so the mixture of length scales reaching the lattice can change with temperature"""
    impose_magnetisation: bool = False
    """hierarchical training with |m| a summary (train.hierarchical = ["abs_m", ...]): threshold each
    generated lattice at the level that gives exactly the requested |m|"""
    scale_invariant: bool = False
    """divide each lattice's (thresholded) logits by their rms before tanh: the +-1 output is unchanged,
    but the surrogate gradient can no longer grow the logits until tanh saturates"""
    embed_dim: int = 32
    """temperature embedding width"""
    symmetrize: bool = True
    """apply a random global flip and lattice symmetry to every generated sample"""
    critic_projection: bool = False
    """add to the critic's score the projection <w(T), features> (Miyato and Koyama, arXiv:1802.05637),
    so that how each feature is scored depends on T directly, not only through the head's hidden layer"""


def spin_correlation(x: torch.Tensor, r: int) -> torch.Tensor:
    """G(r) = (1/2N) sum_i s_i (s_{i+r x} + s_{i+r y}) per lattice of x (B, 1, L, L), differentiable."""
    return (x * (torch.roll(x, r, dims=-1) + torch.roll(x, r, dims=-2))).mean(dim=(1, 2, 3)) / 2


def lattice_energy(x: torch.Tensor) -> torch.Tensor:
    """e = -(1/N) sum_i s_i (s_{i+x} + s_{i+y}) = -2 G(1) for x (B, 1, L, L) (soft spins allowed)."""
    return -2 * spin_correlation(x, 1)


def physics_features(x: torch.Tensor) -> torch.Tensor:
    """(B, 2): e and |m| per lattice, in the order of FEATURE_NAMES."""
    return torch.stack([lattice_energy(x), x.mean(dim=(1, 2, 3)).abs()], dim=1)


def multiscale_noise(field: torch.Tensor, n_scales: int) -> torch.Tensor:
    """White noise (B, C, L, L) -> (B, C (1 + n_scales), L, L): the field and copies of it smoothed by
    Gaussians of width 1, 2, 4, ... sites, each rescaled to unit variance.

    Why: near T_c the lattice needs fluctuations on every scale (domains), and a few convolutions of white
    noise average large regions down to almost nothing. Smoothing in Fourier space is a circular
    convolution, so it keeps the exact translation invariance.
    """
    if n_scales == 0:
        return field
    L = field.shape[-1]
    k = 2 * torch.pi * torch.fft.fftfreq(L, device=field.device)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    spectrum = torch.fft.fft2(field)
    scales = [field]
    for s in range(n_scales):
        transfer = torch.exp(-0.5 * (2.0 ** s) ** 2 * k2)
        # Parseval: smoothed unit white noise has variance mean_k |H(k)|^2
        scales.append(torch.fft.ifft2(spectrum * transfer).real / transfer.square().mean().sqrt())
    return torch.cat(scales, dim=1)


def symmetry_codes(batch: int, generator: torch.Generator) -> torch.Tensor:
    """Random int64 codes, one per sample, each naming an element of Z2 x translations x D4."""
    return torch.randint(0, 2**62, (batch,), generator=generator)


def apply_symmetry(x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Apply to each lattice of x (B, 1, L, L) the group element its code names.

    Bits of the code: 0 global spin flip, 1 transpose, 2 and 3 mirror images, 4-23 and 24-43 the
    translation. All are exact symmetries of the Ising weight on the torus, so this is free data for the
    critic and an exact constraint on the generator. A per-sample code (not a shared random stream) keeps
    each sample's transformation fixed however a batch is split across processes.
    """
    codes = codes.to(x.device)
    B, L = x.shape[0], x.shape[-1]
    bit = lambda k: ((codes >> k) & 1).bool()[:, None, None, None]
    arange = torch.arange(L, device=x.device)[None, :]
    rows = (arange + ((codes >> 4) % L)[:, None]) % L
    cols = (arange + ((codes >> 24) % L)[:, None]) % L
    x = x[torch.arange(B, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    x = torch.where(bit(1), x.transpose(-1, -2), x)
    x = torch.where(bit(2), x.flip(-1), x)
    x = torch.where(bit(3), x.flip(-2), x)
    return torch.where(bit(0), -x, x)


def straight_through_sign(x: torch.Tensor) -> torch.Tensor:
    """+-1 in the forward pass, identity gradient (Bengio et al., arXiv:1308.3432)."""
    hard = torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))
    return x + (hard - x).detach()


def magnetisation_threshold(logits: torch.Tensor, abs_m: torch.Tensor) -> torch.Tensor:
    """Per lattice (B, 1, 1, 1), the level between the sorted logits (B, 1, L, L) that leaves
    N (1 - |m|) / 2 sites below it (rounded), so sign(logits - level) has magnetisation |m| exactly.

    The level keeps its gradient (that of the two logits it lies between). Why: logits - level is then
    unchanged by a uniform shift of the logits, in the backward pass as in the forward one. Held constant,
    it let the gradient ask for changes that the threshold undoes, and hierarchical runs ran away to
    ordered lattices (docs/results/ising.md)."""
    flat = logits.flatten(1)
    n = flat.shape[1]
    below = ((1 - abs_m.to(flat.device).clamp(0, 1)) * n / 2).round().long()[:, None]
    ordered = flat.sort(dim=1).values
    # finite ends (|m| = 1 puts the level beyond every site): the field minus the level stays finite
    ordered = torch.cat([ordered[:, :1] - 1, ordered, ordered[:, -1:] + 1], dim=1)
    level = (ordered.gather(1, below) + ordered.gather(1, below + 1)) / 2
    return level.view(-1, 1, 1, 1)


def output_spins(logits: torch.Tensor, latent: dict[str, torch.Tensor], config: NetworkConfig) -> torch.Tensor:
    """The generators' last step: tanh, straight-through +-1, then each sample's random symmetry element.

    With impose_magnetisation the order parameter is set exactly, by thresholding at the requested |m|:
    what the network then learns is where the minority spins go (domains, the energy), not how many there
    are. The gradient also flows through the threshold (magnetisation_threshold says why).

    Why scale_invariant: the emitted spins depend only on the signs of the logits, but the straight-through
    surrogate tanh(logits) rewards making them larger, and once a lattice's logits are large everywhere
    tanh' vanishes and the lattice stops learning (seen as domains frozen in at high T). Dividing by the
    rms (inside the gradient) makes the output exactly scale free, so its gradient has no such component."""
    if config.impose_magnetisation:
        if "abs_m" not in latent:
            from physgan.errors import UserError
            raise UserError("network.impose_magnetisation needs abs_m among train.hierarchical")
        logits = logits - magnetisation_threshold(logits, latent["abs_m"])
    if config.scale_invariant:
        logits = logits / logits.square().mean(dim=(1, 2, 3), keepdim=True).add(1e-12).sqrt()
    x = straight_through_sign(torch.tanh(logits))
    if config.symmetrize:
        x = apply_symmetry(x, latent["symmetry"])
    return x


class Generator(nn.Module):
    """(latent, normalised condition (B, n_cond)) -> lattices (B, 1, L, L) of +-1 spins."""

    def __init__(self, L: int, n_cond: int, config: NetworkConfig):
        super().__init__()
        self.L, self.config = L, config
        c = config.channels
        self.embed = ConditionEmbedding(n_cond, config.embed_dim)
        noise_inputs = config.noise_channels * (1 + config.noise_scales)
        self.stem = nn.Conv2d(noise_inputs, c, 3, padding=1, padding_mode="circular")
        # log gains, zero at the start: every noise input passes unchanged until T says otherwise
        self.noise_gain = nn.Linear(config.embed_dim, noise_inputs) if config.noise_gates else None
        if self.noise_gain is not None:
            nn.init.zeros_(self.noise_gain.weight)
            nn.init.zeros_(self.noise_gain.bias)
        self.from_z = nn.Linear(config.z_dim, c)
        self.z_film = FiLM(config.embed_dim, c)
        # coarse to fine: long-range structure first, local alignment (set by e) decided last
        self.blocks = nn.ModuleList(PeriodicResBlock(c, config.embed_dim, d)
                                    for d in reversed(dilations(config.blocks, L)))
        self.out = nn.Conv2d(c, 1, 1)

    def latent(self, batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Random inputs for `batch` samples (CPU tensors; every key has the batch as first dimension)."""
        cfg = self.config
        return {"z": torch.randn(batch, cfg.z_dim, generator=generator),
                "field": torch.randn(batch, cfg.noise_channels, self.L, self.L, generator=generator),
                "symmetry": symmetry_codes(batch, generator)}

    def forward(self, latent: dict[str, torch.Tensor], cond: torch.Tensor) -> torch.Tensor:
        device = cond.device
        embedding = self.embed(cond)
        field = multiscale_noise(latent["field"].to(device), self.config.noise_scales)
        if self.noise_gain is not None:  # why: at high T only short-range noise should reach the lattice
            field = field * torch.exp(self.noise_gain(embedding))[:, :, None, None]
        h = self.stem(field) + self.from_z(latent["z"].to(device))[:, :, None, None]
        h = self.z_film(h, embedding)
        for block in self.blocks:
            h = block(h, embedding)
        return output_spins(self.out(h), latent, self.config)


class Critic(nn.Module):
    """(lattices (B, 1, L, L), normalised condition (B, n_cond)) -> scores (B,)."""

    def __init__(self, L: int, n_cond: int, config: NetworkConfig):
        super().__init__()
        c, e = config.critic_channels, config.embed_dim
        self.embed = ConditionEmbedding(n_cond, e)
        self.stem = nn.Conv2d(1, c, 3, padding=1, padding_mode="circular")
        self.blocks = nn.ModuleList(PeriodicResBlock(c, e, d) for d in dilations(config.critic_blocks, L))
        n_features = 2 * c + 3
        self.head = mlp([n_features + e, 2 * c, 1], activation=lambda: nn.LeakyReLU(0.2))
        self.projection = nn.Linear(e, n_features, bias=False) if config.critic_projection else None

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        embedding = self.embed(cond)
        h = self.stem(x)
        for block in self.blocks:
            h = block(h, embedding)
        pooled = torch.cat([h.mean(dim=(2, 3)), h.abs().mean(dim=(2, 3))], dim=1)
        m = x.mean(dim=(1, 2, 3))
        physics = torch.stack([lattice_energy(x), m.abs(), m * m], dim=1)
        features = torch.cat([pooled, physics], dim=1)
        score = self.head(torch.cat([features, embedding], dim=1)).squeeze(1)
        if self.projection is not None:
            score = score + (self.projection(embedding) * features).sum(dim=1)
        return score


def make_networks(shape: tuple[int, ...], n_cond: int, config: NetworkConfig) -> tuple[Generator, Critic]:
    L = shape[-1]
    return Generator(L, n_cond, config), Critic(L, n_cond, config)


def training_tensors(samples) -> tuple[torch.Tensor, torch.Tensor]:
    """All lattices as int8 (N, 1, L, L) (1 byte a spin: L = 32 x 120k is 123 MB) and raw T as (N, 1)."""
    spins, T = [], []
    for chunk in samples.iter_chunks(names=("spins", "T")):
        spins.append(torch.from_numpy(chunk["spins"]))
        T.append(torch.from_numpy(chunk["T"].astype(np.float32)))
    return torch.cat(spins)[:, None], torch.cat(T)[:, None]


def to_float(x: torch.Tensor) -> torch.Tensor:
    """The network representation of stored lattices: float +-1."""
    return x.float()


def to_arrays(x: torch.Tensor, cond: torch.Tensor) -> dict[str, np.ndarray]:
    """Generated lattices (B, 1, L, L) and raw conditions (B, 1) -> sample-file arrays (+-1 int8 spins, T)."""
    spins = torch.where(x[:, 0] >= 0, 1, -1).to(torch.int8)
    return {"spins": spins.cpu().numpy(), "T": cond[:, 0].cpu().numpy().astype(np.float32)}


def condition_groups(cond: torch.Tensor) -> torch.Tensor:
    """Group number (N,) of raw conditions (N, 1): one group per temperature."""
    return torch.unique(cond, dim=0, return_inverse=True)[1].reshape(-1)


def parse_conditions(options: dict) -> tuple[np.ndarray, int]:
    """Distinct raw conditions (k, 1) and samples per condition from sampling options:
    {"T": "1.8,2.269,3.0" (or start:stop:count, or a list), "n": configurations per temperature}."""
    from physgan.config import parse_temperatures
    from physgan.errors import UserError

    if options.get("T") is None:
        raise UserError("say at which temperatures to sample: --T 1.8,2.269,3.0 (or start:stop:count)")
    return np.array(parse_temperatures(options["T"]), dtype=np.float32)[:, None], int(options.get("n", 1000))


def test_conditions(samples) -> np.ndarray:
    """The distinct conditions (k, 1) of a sample file: where a run samples its generator."""
    return np.unique(samples.read("T")).astype(np.float32)[:, None]
