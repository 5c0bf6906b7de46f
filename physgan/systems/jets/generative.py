"""What the GAN engine needs from the jets system: tensors, networks, physics features, sample arrays.

Jet images are sparse (a W' jet lights ~40 of 625 pixels), positive, span four decades of intensity
(a 150 GeV core next to 0.1 GeV soft pixels) and are not translation invariant: the preprocessing puts
the leading subjet at the centre and the subleading one below it, so position carries physics.
The choices, and why (the runs behind them: docs/results/jets.md):

- Intensity transform t = log(1 + I / 0.1 GeV) / 8 for training, inverted at sampling
  (I = 0.1 GeV x expm1(8 t)). In t a 150 GeV core is 0.91 and a 0.05 GeV soft pixel 0.05: neither the
  critic nor the generator is dominated by the hardest pixel, the soft pixels are visible to the critic,
  and the values are of order one, the scale Adam's steps and initial weights are made for; the inverse
  is exact and non-negative.
- Fully connected networks. Position carries physics, so every pixel needs its own weights: LAGAN
  (arXiv:1701.05927) used locally-connected layers for that reason; at 25 x 25 a dense layer is the
  same idea taken to the whole image, and on a CPU it is much faster per step than a convolutional
  generator with coordinate channels.
- Generator: latent z -> residual MLP with FiLM by the condition (class, pT) at every layer -> per pixel
  a gate g_p and a log intensity l_p, and a log pT scale. The image is the scale times how the pT is
  shared among the lit pixels: weights w_p = [g_p > 0] exp(8 l_p), fractions w_p / sum w. Unlit pixels
  are exactly empty, as in the data; the gate is trained straight-through (sigmoid gradient), so which
  pixels light up and how bright they are are learnt separately, as the data's occupancy and its
  five-decade pixel spectrum are separate facts. Output biases start close to a jet (energy at the
  centre), and per-pixel biases depend on the condition, so each class's typical occupancy (the W's
  second prong below the centre) is learnt directly.
- Critic: an MLP on the 625 values of t (and, with critic_occupancy, each pixel's soft occupancy) plus
  the first nine physics features of the image (mass, pT, girth, soft pixel count, pT_D, the second
  prong's share and distance, and tau_21 and tau_32 on fixed axes) and the condition embedding: it can
  compare a jet's kinematics with the requested class and pT directly. No normalisation layers (they
  would couple samples and spoil the gradient penalty).
- Feature matching (the trainer's, per class and 10 GeV of pT) of the means and spreads of the physics
  features (physics_features).
- Optionally (occupancy_smoothness) a prior on the generator: each condition group's map of how often
  each pixel is lit should be smooth, as the Monte Carlo's is (see occupancy_curvature).
- Optionally (train.hierarchical, e.g. ["mass", "girth", "prong_distance"]) hierarchical generation, as for Ising:
  each jet's mass is drawn first from the training jets' mass quantiles of its class, interpolated along
  the pT between the condition groups, its girth from the quantiles within the mass's rank bin, and its
  second-prong distance with the girth (as the training jet at that rank has them);
  the networks see them as extra conditions, and the trainer's summary matching holds each generated jet
  to what it was asked for. Drawn from the Monte Carlo's own quantiles, the mass distribution is right by
  construction, and what the generator must learn, the image given class, pT and mass, is narrower;
  girth, the pT-weighted distance from the leading subjet, pins how far out the pT sits, and the prong
  distance where the subleading subjet sits (without it the generated subjets sat too close together).
- No symmetry augmentation: the preprocessing has already fixed translation, rotation and reflection,
  so no exact symmetry of the images is left to use.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from physgan.gan.nets import ConditionEmbedding, FiLM, mlp
from physgan.systems.jets.images import PIXELS, pixel_centres

# matched per condition group and monitored during training
SPECTRUM_GEV = (0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)  # points of the pixel-intensity spectrum that are matched
FEATURE_NAMES = ("mass", "pt", "girth", "pixels", "pt_d", "prong_share", "prong_distance", "tau_21_axes",
                 "tau_32_axes", "mass_above_60", "mass_above_90", *(f"pixels_above_{c:g}" for c in SPECTRUM_GEV))
# the spectrum's points count as one feature together in the matching: with equal weights they halved the
# weight of the mass, and a tiny model's class no longer moved its mass enough
FEATURE_WEIGHTS = (1.0,) * (len(FEATURE_NAMES) - len(SPECTRUM_GEV)) + (1.0 / len(SPECTRUM_GEV),) * len(SPECTRUM_GEV)
CRITIC_FEATURES = 9  # the critic's head sees the first nine (the mass steps only shape the matching)
THIRD_AXIS_CANDIDATES = 4  # tau_32_axes: the third axis is the best of this many pixels (8 or 32 give the same values)
INTENSITY_SCALE = 0.1  # GeV
T_SCALE = 8.0  # t = log1p(I / INTENSITY_SCALE) / T_SCALE: a 150 GeV core is t = 0.91, a 0.05 GeV pixel 0.05
MAX_T = float(np.log1p(5000.0 / INTENSITY_SCALE)) / T_SCALE  # clamp before expm1: no pixel carries 5 TeV
GROUP_PT_WIDTH = 10.0  # GeV: training batches are drawn in groups of one class and one 10 GeV pT bin
# hierarchical generation (train.hierarchical, e.g. ["mass"]): the summaries' distribution is modelled per
# class (the condition column "signal") and interpolated along the jet pT between the condition groups
CATEGORY_CONDITION = 0
SOFT_PIXEL_GEV = 0.1  # scale of the soft pixel count
OCCUPANCY_GEV = 0.05  # scale of the critic's occupancy view (critic_occupancy)
MIN_FRACTION = 1e-4  # generated pixels with less of the jet's pT are set to zero (Monte Carlo: 1 % of pixels)
BIAS_GAIN = 10.0  # output biases are stored divided by this: Adam moves them this much faster
PRONG_WIDTHS = (0.05, 0.1, 0.2)  # place_prong: widths of the bumps at the second prong (a pixel is 0.1)


@dataclass
class NetworkConfig:
    """Jet-image generator and critic sizes."""

    channels: int = 256
    """generator width (units per hidden layer)"""
    blocks: int = 2
    """generator residual layers"""
    critic_channels: int = 256
    """critic width"""
    z_dim: int = 32
    """latent dimension"""
    embed_dim: int = 32
    """condition embedding width"""
    critic_occupancy: bool = False
    """also give the critic's body each pixel's soft occupancy 1 - exp(-I / 0.05 GeV): about 1 for any lit
    pixel, whose t may be as small as 0.03, so which pixels are lit is as visible to it as how bright
    they are (and, through the gates' straight-through gradient, to the generator)"""
    occupancy_smoothness: float = 0.0
    """weight of a prior that each condition group's map of how often each pixel is lit be smooth: the
    generator's loss gains this times the map's mean squared curvature (0: off; see occupancy_curvature)"""
    place_prong: bool = False
    """hierarchical training with prong_distance a summary: the generator adds, at the requested distance
    straight below the centre, bumps of PRONG_WIDTHS to its gate and intensity logits, with per-jet
    amplitudes (see prong_bumps)"""


@functools.lru_cache(maxsize=None)
def _coordinates() -> torch.Tensor:
    """(3, 25, 25): pixel centres x (eta'), y (phi') and r = sqrt(x^2 + y^2), in the image layout.
    Computed once (physics_features needs them at every step); callers must not modify it."""
    x, y = (torch.from_numpy(c.astype(np.float32)) for c in pixel_centres())
    return torch.stack([x, y, torch.hypot(x, y)])


@functools.lru_cache(maxsize=None)
def _pixel_distances() -> torch.Tensor:
    """(625, 625): distance between every two pixel centres (flattened image layout)."""
    x, y, _ = _coordinates().flatten(1)
    return torch.hypot(x[:, None] - x[None], y[:, None] - y[None])


@functools.lru_cache(maxsize=None)
def _sum_maps() -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed pixel maps that physics_features sums I (625, 7) and I^2 (625, 3) over, one matrix product
    each: 1, cosh x, sinh x, cos y, sin y (four-momentum), r (girth), the band below the core (y < -0.15,
    |x| < 0.35, where the preprocessing puts the subleading subjet); and 1, the band, -y in the band."""
    x, y, r = _coordinates().flatten(1)
    below = ((y < -0.15) & (x.abs() < 0.35)).float()
    ones = torch.ones_like(x)
    return (torch.stack([ones, torch.cosh(x), torch.sinh(x), torch.cos(y), torch.sin(y), r, below], 1),
            torch.stack([ones, below, -y * below], 1))


def to_float(x: torch.Tensor) -> torch.Tensor:
    """Stored images (GeV) -> the network representation t = log1p(I / 0.1 GeV) / 8 (values of order one)."""
    return torch.log1p(x.float().clamp_min(0) / INTENSITY_SCALE) / T_SCALE


def to_intensity(t: torch.Tensor) -> torch.Tensor:
    """The network representation t -> pixel pT in GeV (the inverse of to_float, >= 0)."""
    return torch.expm1(t.clamp(0, MAX_T) * T_SCALE) * INTENSITY_SCALE


def physics_features(t: torch.Tensor) -> torch.Tensor:
    """(B, 18) of images t (B, 1, 25, 25), differentiable, in the order of FEATURE_NAMES: jet mass and pT
    in GeV; girth sum(I r)/sum(I); a soft count of the lit pixels, sum(o) with o = 1 - exp(-I / 0.1 GeV);
    pT_D = sqrt(sum I^2)/sum(I); the second prong, in the band B below the core (y < -0.15, |x| < 0.35) where
    the preprocessing puts the subleading subjet: its share sum_B(I)/sum(I) and its distance
    sum_B(I^2 (-y))/sum_B(I^2) (the hardest pixels: correlation 0.92 with the clustered delta R), and
    tau_21_axes = sum(I min(r, r_2))/sum(I r), the N-subjettiness ratio with the axes fixed at the centre and
    at (0, -distance), and tau_32_axes = tau_3 / tau_2 on these two axes and a third at the pixel that
    minimises tau_3 among the THIRD_AXIS_CANDIDATES with the most pT-weighted distance from both (the
    winner-take-all axes of the clustered tau_N also sit on particles; on the quick preset's training Monte
    Carlo it correlates 0.77 (W') and 0.60 (QCD) with the clustered tau_32); smooth steps
    sigmoid((m - 60 GeV) / 3 GeV) and sigmoid((m - 90 GeV) / 3 GeV);
    and for each c of SPECTRUM_GEV the number of pixels brighter than c, sum sigmoid(log(I / c) / 0.3).

    Each pixel is a massless particle at its centre, as in observables.image_mass. Why these:
    girth (the pT-weighted mean distance from the leading subjet) measures how spread out the jet is; the
    soft count tracks the number of non-empty pixels without counting negligible ones fully; pT_D (CMS,
    arXiv:1209.2421) how concentrated the pT is in few pixels: two clean prongs (a W) score high, a smeared
    prong low. The mass steps' group means are two points of the mass distribution function (the fractions
    above 60 and 90 GeV, around the W peak), which the mean and spread alone leave free. The spectrum points
    (0.01 GeV: every lit pixel) pin the pixel-intensity spectrum, which the soft count alone leaves too
    soft. What matching each of them did: docs/results/jets.md.
    """
    x, y, r = _coordinates().to(t.device).flatten(1)
    intensity = to_intensity(t).flatten(1)  # (B, 625)
    linear, quadratic = (m.to(t.device) for m in _sum_maps())
    scalar_sum, e, pz, px, py, sum_r, prong_sum = (intensity @ linear).unbind(1)
    squares, hard, hard_y = ((intensity**2) @ quadratic).unbind(1)
    scalar_sum = scalar_sum + 1e-6  # the denominator of the pT-weighted means and of pT_D
    pt = torch.sqrt(px**2 + py**2 + 1e-6)
    mass = torch.sqrt((e**2 - px**2 - py**2 - pz**2).clamp_min(0) + 1e-6)
    girth = sum_r / scalar_sum
    pixels = (1 - torch.exp(-intensity / SOFT_PIXEL_GEV)).sum(1)
    pt_d = torch.sqrt(squares + 1e-6) / scalar_sum
    above = lambda cut: torch.sigmoid((mass - cut) / 3.0)  # smooth steps: points of the mass CDF
    log_cuts = torch.log(torch.tensor(SPECTRUM_GEV, device=t.device))
    brighter = torch.sigmoid((torch.log(intensity + 1e-6)[:, :, None] - log_cuts) / 0.3).sum(1)  # (B, 7)
    # the second prong: its share, and the distance of its hardest pixels (I^2-weighted)
    prong_share = prong_sum / scalar_sum
    prong_distance = hard_y / (hard + 1e-6)
    # N-subjettiness ratio with the two axes the preprocessing fixed: the centre and (0, -prong_distance)
    to_second = torch.sqrt(x**2 + (y + prong_distance[:, None]) ** 2 + 1e-6)  # hypot: NaN gradient at 0
    to_axes = torch.minimum(r, to_second)
    tau_2 = (intensity * to_axes).sum(1)
    tau_21_axes = tau_2 / (sum_r + 1e-3)
    tau_32_axes = third_axis_tau(intensity, to_axes) / (tau_2 + 1e-3)
    return torch.cat([torch.stack([mass, pt, girth, pixels, pt_d, prong_share, prong_distance, tau_21_axes,
                                   tau_32_axes, above(60.0), above(90.0)], 1), brighter], 1)


def third_axis_tau(intensity: torch.Tensor, to_axes: torch.Tensor) -> torch.Tensor:
    """sum_i I_i min(d_i, |p_i - a|) minimised over third axes a at the pixel centres (intensity and d_i, the
    distance to the nearest of the first two axes, (B, 625) each). The candidates are the
    THIRD_AXIS_CANDIDATES pixels of largest I_i d_i: an axis elsewhere gains less (a grid of every pixel
    within r < 1 gave the same values on the quick preset's training Monte Carlo). Differentiable in the
    intensities; which pixel wins is a discrete choice, as in the clustered tau_3."""
    best = (intensity * to_axes).detach().topk(THIRD_AXIS_CANDIDATES, dim=1).indices  # (B, k)
    to_third = _pixel_distances().to(intensity.device)[best]  # (B, k, 625)
    return (intensity[:, None] * torch.minimum(to_axes[:, None], to_third)).sum(2).min(1).values


def prong_bumps(distance: torch.Tensor) -> torch.Tensor:
    """(B, len(PRONG_WIDTHS), 625): Gaussian bumps exp(-|p - a|^2 / 2 w^2) of each width w around the axis
    a = (0, -distance) of each jet, where the preprocessing puts the subleading subjet (distance (B,))."""
    x, y, _ = _coordinates().to(distance.device).flatten(1)
    squared = x**2 + (y + distance[:, None]) ** 2  # (B, 625)
    widths = torch.tensor(PRONG_WIDTHS, device=distance.device)
    return torch.exp(-squared[:, None] / (2 * widths[:, None] ** 2))


def symmetry_codes(batch: int, generator: torch.Generator) -> torch.Tensor:
    """No exact symmetry is left after preprocessing: codes are zeros (draws nothing, so seeds stay aligned)."""
    return torch.zeros(batch, dtype=torch.int64)


def apply_symmetry(x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """The identity (see symmetry_codes)."""
    return x


def hard_gate(g: torch.Tensor) -> torch.Tensor:
    """1 where g > 0, else 0, in the forward pass (exact zeros); the gradient of sigmoid(g) in the backward
    pass (straight-through), so that the network learns which pixels to light."""
    soft = torch.sigmoid(g)
    return soft + ((g > 0).float() - soft).detach()


def share_out(gate: torch.Tensor, log_weight: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """The pT (GeV) of each pixel (gate and log_weight (B, 625)): the jet's pT scale exp(log_scale) (B, 1)
    shared in proportion to w = [gate > 0] exp(8 log_weight). Pixels with less than MIN_FRACTION of the
    jet's pT are switched off (forward only): without this, hundreds of pixels carry 1e-3 GeV each,
    invisible to the critic in t but counted as non-empty."""
    weights = hard_gate(gate) * torch.exp(T_SCALE * log_weight.clamp(max=MAX_T))
    fractions = weights / (weights.sum(1, keepdim=True) + 1e-6)
    fractions = fractions + (torch.where(fractions < MIN_FRACTION, 0.0, fractions) - fractions).detach()
    return torch.exp(log_scale) * fractions


class Generator(nn.Module):
    """(latent, normalised condition (B, 2)) -> images t (B, 1, 25, 25) >= 0 with exact zeros.

    The image is built as (jet pT scale) x (how the pT is shared among pixels): pixel weights
    w_p = [g_p > 0] exp(8 l_p) >= 0, normalised to fractions w_p / sum w, times exp(log_scale), a
    per-jet output that starts at log(275 GeV) and learns the pT condition. Sharing out a total keeps
    the pT right from the first step and makes the shape (mass, girth, prongs) a problem of fractions,
    of order one whatever the jet pT; without it the generator first spends its steps on the total.
    """

    def __init__(self, n_cond: int, config: NetworkConfig):
        super().__init__()
        w, self.config = config.channels, config
        self.embed = ConditionEmbedding(n_cond, config.embed_dim)
        self.inp = nn.Linear(config.z_dim, w)
        self.layers = nn.ModuleList(nn.Linear(w, w) for _ in range(config.blocks))
        self.films = nn.ModuleList(FiLM(config.embed_dim, w) for _ in range(config.blocks + 1))
        self.out = nn.Linear(w, 2 * PIXELS * PIXELS)  # per pixel: a gate (lit or empty) and a log intensity
        nn.init.zeros_(self.out.bias)
        # biases stored divided by BIAS_GAIN: the occupancy of each pixel and the pT scale learn fast
        self.condition_bias = nn.Linear(config.embed_dim, 2 * PIXELS * PIXELS + 1, bias=False)
        nn.init.zeros_(self.condition_bias.weight)
        r = _coordinates()[2].flatten()
        initial = torch.cat([0.8 - 2.0 * r, 1.0 - 2.0 * r, torch.tensor([np.log(275.0)], dtype=torch.float32)])
        self.bias = nn.Parameter(initial / BIAS_GAIN)
        if config.place_prong:
            # per jet, the amplitude of each bump in the gate and in the log intensity; they start lighting
            # the pixel at the prong (gate +2) and raising its intensity
            self.prong = nn.Linear(w, 2 * len(PRONG_WIDTHS))
            nn.init.zeros_(self.prong.weight)
            with torch.no_grad():
                self.prong.bias.zero_()
                self.prong.bias[0], self.prong.bias[len(PRONG_WIDTHS)] = 2.0, 0.5
        self.act = nn.LeakyReLU(0.2)
        self._gate = None  # the last forward pass's gate logits, kept only for prior_loss

    def latent(self, batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """z: the latent vector (B, z_dim)."""
        return {"z": torch.randn(batch, self.config.z_dim, generator=generator)}

    def forward(self, latent: dict[str, torch.Tensor], cond: torch.Tensor) -> torch.Tensor:
        e = self.embed(cond)
        h = self.films[0](self.inp(latent["z"].to(cond.device)), e)
        for layer, film in zip(self.layers, self.films[1:]):
            h = h + film(layer(self.act(h)), e)
        u = nn.functional.pad(self.out(self.act(h)), (0, 1)) + BIAS_GAIN * (self.bias + self.condition_bias(e))
        gate, log_intensity = u[:, :PIXELS * PIXELS], u[:, PIXELS * PIXELS:-1]
        if self.config.place_prong:
            gate, log_intensity = self._place_prong(h, latent, gate, log_intensity)
        self._gate = gate if self.config.occupancy_smoothness > 0 else None
        intensity = share_out(gate, log_intensity, u[:, -1:])
        return to_float(intensity).view(-1, 1, PIXELS, PIXELS)

    def _place_prong(self, h, latent, gate, log_intensity):
        """The logits with the bumps at the requested prong distance added (NetworkConfig.place_prong).
        Why: the prong-distance summary alone put the hardest pixels of the generated second prong at the
        requested distance on average, but spread along the axis (a hard pixel further out and another
        closer in), so the clustered subjet sat closer to the core than in the Monte Carlo."""
        if "prong_distance" not in latent:
            from physgan.errors import UserError
            raise UserError("network.place_prong needs prong_distance among train.hierarchical")
        bumps = prong_bumps(latent["prong_distance"].to(h.device))  # (B, K, 625)
        amplitudes = self.prong(self.act(h)).view(len(h), 2, len(PRONG_WIDTHS))
        placed = amplitudes @ bumps  # (B, 2, 625)
        return gate + placed[:, 0], log_intensity + placed[:, 1]

    def prior_loss(self, group_size: int) -> torch.Tensor | float:
        """occupancy_smoothness x occupancy_curvature of the last forward pass (whose samples come in
        condition groups of group_size), or 0 when the option is off."""
        if self._gate is None:
            return 0.0
        return self.config.occupancy_smoothness * occupancy_curvature(self._gate, group_size)


def occupancy_probit(gates: torch.Tensor, group_size: int) -> torch.Tensor:
    """Gate logits (B, 625) in groups of group_size samples -> (B / group_size, 25, 25): per group and
    pixel, mean / spread of the logit over the group, softly clamped to (-5, 5).

    A pixel is lit where its logit is positive, so if the logit varies about normally over the latent
    space, mean / spread is the probit of the pixel's occupancy (1 % lit: -2.3). Estimated from continuous
    logits, it tells a rare pixel's rate from 16 jets, where counting lit pixels could not (a pixel lit in
    1 % of jets is lit in none of them). The clamp keeps always-dark and always-lit pixels from dominating.
    """
    g = gates.view(-1, group_size, PIXELS * PIXELS)
    probit = g.mean(1) / (g.std(1, unbiased=False) + 1e-3)
    return (5.0 * torch.tanh(probit / 5.0)).view(-1, PIXELS, PIXELS)


def occupancy_curvature(gates: torch.Tensor, group_size: int) -> torch.Tensor:
    """Mean over groups and interior pixels of the squared discrete Laplacian (pixel minus the mean of its
    four neighbours) of occupancy_probit.

    Why: in the full preset the generator lit single "hot" pixels away from the core in 3-10 % of its
    jets where the Monte Carlo lights them in 0-1 %, and left dark periphery pixels the Monte Carlo lights
    in 1-4 %: its occupancy map was speckled where the Monte Carlo's is smooth. Neither the critic nor the
    matching pins a pixel lit in less than one jet of a batch. Curvature, not slope: the map falls from the
    core outwards, and a plane costs nothing and a smooth fall little, while a hot pixel of height h costs
    1.25 h^2 over the interior pixels. The prior is about the map over jets; each jet stays free to be as
    sparse as the data's.
    """
    s = occupancy_probit(gates, group_size)
    neighbours = (s[:, :-2, 1:-1] + s[:, 2:, 1:-1] + s[:, 1:-1, :-2] + s[:, 1:-1, 2:]) / 4
    return (s[:, 1:-1, 1:-1] - neighbours).square().mean()


class Critic(nn.Module):
    """(images t (B, 1, 25, 25), normalised condition (B, 2)) -> scores (B,). No normalisation layers."""

    def __init__(self, n_cond: int, config: NetworkConfig):
        super().__init__()
        w, e = config.critic_channels, config.embed_dim
        self.embed = ConditionEmbedding(n_cond, e)
        act = lambda: nn.LeakyReLU(0.2)
        self.occupancy = config.critic_occupancy
        self.body = mlp([(2 if self.occupancy else 1) * PIXELS * PIXELS, 2 * w, w], activation=act)
        self.head = mlp([w + CRITIC_FEATURES + e, w, 1], activation=act)

    def forward(self, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        seen = t.flatten(1)
        if self.occupancy:
            seen = torch.cat([seen, 1 - torch.exp(-to_intensity(seen) / OCCUPANCY_GEV)], 1)
        h = nn.functional.leaky_relu(self.body(seen), 0.2)
        mass, pt, girth, pixels, pt_d, share, distance, tau_21, tau_32, *_ = physics_features(t).unbind(1)
        physics = torch.stack([mass / 100, pt / 300, 5 * girth, pixels / 20, pt_d, 2 * share, 2 * distance, tau_21,
                               tau_32], 1)  # O(1) inputs
        return self.head(torch.cat([h, physics, self.embed(cond)], 1)).squeeze(1)


def make_networks(shape: tuple[int, ...], n_cond: int, config: NetworkConfig) -> tuple[Generator, Critic]:
    from physgan.errors import UserError

    if tuple(shape) != (1, PIXELS, PIXELS):
        raise UserError(f"jet images must be {PIXELS} x {PIXELS}, got {tuple(shape[1:])}")
    return Generator(n_cond, config), Critic(n_cond, config)


def training_tensors(samples) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 1, 25, 25) float32 GeV and raw conditions (N, 2) = (signal, jet_pt)."""
    images, cond = [], []
    for chunk in samples.iter_chunks(names=("image", "signal", "jet_pt")):
        images.append(torch.from_numpy(chunk["image"].astype(np.float32)))
        cond.append(torch.from_numpy(np.stack([chunk["signal"], chunk["jet_pt"]], 1).astype(np.float32)))
    return torch.cat(images)[:, None], torch.cat(cond)


def condition_groups(cond: torch.Tensor) -> torch.Tensor:
    """Group number (N,) of raw conditions: one group per class and 10 GeV bin of jet pT.

    pT is continuous, so no two jets share a condition; feature matching compares group means instead.
    """
    signal = cond[:, 0].round().long()
    pt_bin = torch.floor(cond[:, 1] / GROUP_PT_WIDTH).long()
    _, groups = torch.unique(torch.stack([signal, pt_bin], 1), dim=0, return_inverse=True)
    return groups


def to_arrays(t: torch.Tensor, cond: torch.Tensor) -> dict[str, np.ndarray]:
    """Generated images t (B, 1, 25, 25) and raw conditions (B, 2) -> jets sample-file arrays.

    image in GeV; signal and jet_pt are the requested condition (jet_pt is the pT the generator was asked
    for; the image's own pT is observables.image_pt); jet_mass, jet_delta_R and tau_N are measured on the
    image; jet_eta and jet_phi are NaN (a preprocessed image has no position in the detector).
    """
    from physgan.systems.jets.observables import image_fields

    images = to_intensity(t)[:, 0].cpu().numpy().astype(np.float32)
    cond = cond.cpu().numpy()
    nan = np.full(len(images), np.nan, np.float32)
    return {"image": images, "signal": np.rint(cond[:, 0]).astype(np.int8),
            **image_fields(images), "jet_pt": cond[:, 1].astype(np.float32), "jet_eta": nan, "jet_phi": nan}


def parse_conditions(options: dict) -> tuple[np.ndarray, int]:
    """Raw conditions (k, 2) and samples per condition from --class and --pt and --n (jets per class).

    pT values are spread evenly over the window (the midpoints of n equal slices): one jet at each.
    """
    from physgan.errors import UserError
    from physgan.systems.jets.mc import CLASSES, parse_window

    if options.get("class") is None or options.get("pt") is None:
        raise UserError("say which jets to generate: --class wprime,qcd --pt 250:300 (and --n jets per class)")
    names = [c.strip() for c in str(options["class"]).split(",") if c.strip()]
    unknown = [c for c in names if c not in CLASSES]
    if unknown or not names:
        raise UserError(f"--class {options['class']!r}: classes are {', '.join(CLASSES)}")
    lo, hi = parse_window(options["pt"], "--pt")
    n = int(options.get("n", 1000))
    pt = lo + (np.arange(n) + 0.5) * (hi - lo) / n
    rows = [np.stack([np.full(n, CLASSES[name]), pt], 1) for name in dict.fromkeys(names)]
    return np.concatenate(rows).astype(np.float32), 1


def test_conditions(samples) -> np.ndarray:
    """The (signal, jet_pt) of every jet of a sample file: a run generates one jet per test jet (or more),
    so generated and test samples have the same class and pT distribution."""
    return np.stack([samples.read("signal"), samples.read("jet_pt")], 1).astype(np.float32)
