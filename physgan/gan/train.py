"""The conditional WGAN trainer: one loop, readable top to bottom, for any system.

Randomness is a pure function of (seed, step): every step seeds its own generator, which draws the
global batch (conditions, samples, augmentation, latents) identically on every process. Resuming from a
checkpoint therefore continues exactly where the run stopped, and under torchrun each rank takes its
slice of the same global batch. Gradients are averaged across ranks by an explicit all-reduce instead of
DistributedDataParallel, whose hooks do not support the gradient penalty's double backward; with losses
that are batch means, the averaged gradient equals the single-process gradient of the global batch.

Batches are made of condition groups (group_size samples drawn at one training condition), so the
generator can also be asked to match, per condition, the means of the system's physics features
(feature matching, Salimans et al. arXiv:1606.03498) against the training data at that condition.
"""
from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from physgan.errors import UserError
from physgan.gan import losses
from physgan.gan.conditioning import Conditioning, SummaryAxes
from physgan.gan.conditioning import normalise  # noqa: F401 (part of this module's API)

CHECKPOINT_FORMAT = "physgan-checkpoint-1"


@dataclass
class TrainConfig:
    """WGAN training settings (the [train] table of a preset; `--set key=value` overrides)."""

    steps: int = 2000
    """generator steps"""
    batch_size: int = 64
    """global batch (all processes together)"""
    group_size: int = 16
    """samples per condition within a batch"""
    n_critic: int = 5
    """critic steps per generator step"""
    loss: str = "wgan-gp"
    """minimax, non-saturating, wgan-clip or wgan-gp"""
    gp_lambda: float = 10.0
    """gradient-penalty weight (wgan-gp)"""
    clip: float = 0.01
    """weight clipping bound (wgan-clip)"""
    lr_generator: float = 2e-4
    """Adam learning rate of the generator"""
    lr_critic: float = 2e-4
    """Adam learning rate of the critic"""
    beta1: float = 0.0
    """Adam beta1"""
    beta2: float = 0.9
    """Adam beta2"""
    generator_weight_decay: float = 0.0
    """decoupled weight decay of the generator (AdamW; 0: plain Adam). Why: where the generator's output is
    invariant to the scale of its last layer's input (Ising's scale_invariant), nothing else stops its
    weights from growing, and once they have grown Adam's fixed-size steps barely change them"""
    lr_decay: float = 0.0
    """fraction of the run, at its end, over which learning rates fall linearly to zero (0: constant)"""
    ema: float = 0.999
    """decay of the exponential moving average of generator weights (0: off)"""
    feature_matching: float = 1.0
    """weight of the per-condition physics-feature matching term in the generator loss (0: off)"""
    feature_weights: dict = field(default_factory=dict)
    """physics feature name -> its weight in the matching, replacing the system's own (FEATURE_WEIGHTS) for
    that feature, e.g. {lha = 1.0} to match a jets feature that is otherwise only monitored"""
    spread_matching: float = 0.0
    """weight of the term matching, per condition group, the spread (standard deviation) of the physics
    features as well as their mean (0: off); it acts against a generator that collapses onto typical samples"""
    quantile_matching: float = 0.0
    """weight of the term matching, per condition group, the sorted physics features of the generated
    group to the expected sorted features of a training group of the same size (0: off): a
    one-dimensional Wasserstein-2 distance per feature, which constrains the whole shape of each
    feature's distribution (e.g. how bimodal m is near T_c), not only its mean and spread"""
    hierarchical: list[str] = field(default_factory=list)
    """physics features (of the system's FEATURE_NAMES, e.g. ["abs_m"] or ["abs_m", "e"]) drawn first, from
    their distribution interpolated between training conditions; the generator is conditioned on them
    too (physgan/gan/quantiles.py says why). Empty: off"""
    condition_anchors: list[str] = field(default_factory=list)
    """physics features (e.g. ["e", "abs_m"]) whose training mean at the condition, interpolated between
    training conditions, the networks receive as extra condition inputs (physgan/gan/conditioning.py says
    why). Empty: off"""
    summary_matching: float = 5.0
    """hierarchical: weight of the term ((summaries of each generated sample - the requested ones) /
    training spread)^2 in the generator loss"""
    conditional_matching: float = 0.0
    """hierarchical: weight of the term matching, per condition group, the mean of the other physics
    features given the requested summaries (e given |m|), to the training data's regression on a quadratic
    in their ranks (rank_basis) (0: off). Why: a generator can get <e> at T right on average with e too
    steep in |m|"""
    conditional_spread: float = 0.0
    """hierarchical: weight of the term matching, per condition group, the spread of the other features
    given the summaries: the moments of the squared residuals from that regression against the same
    basis, to the training data's (0: off). Why: with the summaries' distribution imposed, the
    conditional mean and spread together fix the features' whole spread (Ising: C, through e)"""
    augment: bool = True
    """apply the system's exact symmetries to training batches"""
    log_every: int = 10
    """steps between lines of log.jsonl"""
    monitor_every: int = 100
    """steps between physics monitors (which choose best.pt)"""
    monitor_samples: int = 256
    """generated samples per monitored condition"""
    monitor_conditions: int = 8
    """training conditions monitored (evenly spread)"""
    checkpoint_every: int = 500
    """steps between last.pt checkpoints"""
    seed: int = 0
    """seed of every random draw"""
    device: str = "auto"
    """cpu, cuda or auto"""
    network: dict = field(default_factory=dict)
    """system-specific network settings"""

    def __post_init__(self):
        checks = [(self.steps >= 1, "steps must be >= 1"), (self.n_critic >= 1, "n_critic must be >= 1"),
                  (self.loss in losses.LOSSES, f"loss must be one of {', '.join(losses.LOSSES)}"),
                  (self.group_size >= 1 and self.batch_size % self.group_size == 0,
                   "batch_size must be a positive multiple of group_size"),
                  (0 <= self.ema < 1, "ema must be in [0, 1)"), (0 <= self.lr_decay <= 1, "lr_decay must be in [0, 1]"),
                  (self.generator_weight_decay >= 0, "generator_weight_decay must be >= 0"),
                  (self.device in ("cpu", "cuda", "auto"), "device must be cpu, cuda or auto")]
        for ok, message in checks:
            if not ok:
                raise UserError(message)


@dataclass
class TrainingData:
    """Training samples grouped by condition, with the physics-feature targets of each group."""

    x: torch.Tensor  # stored representation (e.g. int8 lattices), (N, ...)
    cond: torch.Tensor  # raw conditions (N, n_cond)
    groups: list[torch.Tensor]  # indices of the samples of each condition group (system.condition_groups)
    group_of: torch.Tensor  # (N,) the condition group of every sample
    group_cond: torch.Tensor  # (n_groups, n_cond) raw, the mean condition of each group (for logs)
    target_mean: torch.Tensor  # (n_groups, n_features) feature means per group
    target_std: torch.Tensor  # (n_groups, n_features) feature spreads per group
    features: torch.Tensor  # (N, n_features) physics features of every training sample


def distributed_context() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; initialises the process group when world > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    return rank, world


def prepare_data(system, samples) -> TrainingData:
    x, cond = system.generative.training_tensors(samples)
    group_of = system.generative.condition_groups(cond)
    groups = [torch.nonzero(group_of == g).squeeze(1) for g in range(int(group_of.max()) + 1)]
    features = torch.cat([system.generative.physics_features(system.generative.to_float(x[i:i + 4096]))
                          for i in range(0, len(x), 4096)])
    mean = torch.stack([features[g].mean(0) for g in groups])
    std = torch.stack([features[g].std(0) if len(g) > 1 else torch.ones(features.shape[1]) for g in groups])
    return TrainingData(x=x, cond=cond, groups=groups, group_of=group_of, group_cond=torch.stack([cond[g].mean(0) for g in groups]),
                        target_mean=mean, target_std=std.clamp_min(1e-3), features=features)


def expected_sorted_features(data: TrainingData, group_size: int, draws: int = 512) -> torch.Tensor:
    """(n_groups, group_size, n_features): the mean over random training groups (drawn as draw_batch
    draws them, with replacement) of their sorted features, i.e. the expected order statistics that a
    generated group of the same size is compared with. Using these rather than the population quantiles
    removes the finite-group bias of comparing sorted samples."""
    rng = torch.Generator().manual_seed(0)
    targets = []
    for g in data.groups:
        index = g[torch.randint(len(g), (draws, group_size), generator=rng)]
        targets.append(data.features[index].sort(1).values.mean(0))
    return torch.stack(targets)


def rank_basis(summary: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Summaries (n, n_summaries) of one condition group and that group's sorted training summaries
    (m, n_summaries) -> (n, 1 + 2 n_summaries): 1, then the first two Legendre polynomials, orthonormal on
    [-1, 1], of each summary's mid-rank u = 2 F - 1 in the training distribution F.

    Why ranks: near T_c |m| is skewed, so powers of its standardised value have heavy tails, and a few
    lattices of a group of 32 then dominate every moment against them (for real groups at L = 32, the
    squared moments averaged 1.2-1.7 at T = 2.1-2.15: README has the numbers). Functions of the rank are
    bounded (|P2| <= sqrt(5)), whatever the distribution."""
    columns = []
    for j in range(summary.shape[1]):
        ref, s = reference[:, j].contiguous(), summary[:, j].contiguous()
        below = torch.searchsorted(ref, s, right=False) + torch.searchsorted(ref, s, right=True)
        u = below.to(summary.dtype) / len(ref) - 1  # mid-rank: ties (|m| on a lattice) fall in the middle
        columns += [math.sqrt(3) * u, math.sqrt(5) * (3 * u ** 2 - 1) / 2]
    return torch.stack([torch.ones_like(summary[:, 0]), *columns], dim=1)


@dataclass
class ConditionalRegression:
    """Per condition group: the sorted training summaries (rank_basis's reference), the least-squares
    coefficients (n_basis, n_others) of the features that are not summaries on rank_basis of the summaries,
    and the training data's moments (n_basis, n_others) of the squared residuals (in units of the
    features' spread) against that basis."""

    others: list[int]
    reference: list[torch.Tensor]
    coef: torch.Tensor
    squared_moments: torch.Tensor

    def residuals(self, features: torch.Tensor, summary: torch.Tensor, g: int, scale: torch.Tensor):
        """(basis, residuals / scale) of one group's samples: features (n, n_features), summary (n, k)."""
        basis = rank_basis(summary, self.reference[g].to(summary.device))
        return basis, (features[:, self.others] - basis @ self.coef[g].to(basis)) / scale


def conditional_regression(data: TrainingData, summary_columns: list[int]) -> ConditionalRegression:
    """Fit, within each condition group of the training data, the other features on the summaries."""
    others = [j for j in range(data.features.shape[1]) if j not in summary_columns]
    reference = [data.features[members][:, summary_columns].sort(0).values for members in data.groups]
    coefs, squared = [], []
    for g, members in enumerate(data.groups):
        f = data.features[members].double()
        basis = rank_basis(f[:, summary_columns], reference[g].double())
        coefs.append(torch.linalg.lstsq(basis, f[:, others]).solution)
        residual = (f[:, others] - basis @ coefs[-1]) / data.target_std[g, others].double()
        squared.append(residual_moments(residual[None] ** 2, basis[None])[0])
    return ConditionalRegression(others, reference, torch.stack(coefs).float(), torch.stack(squared).float())


def residual_moments(residual: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """(n_groups, n, n_others) residuals and (n_groups, n, n_basis) basis -> (n_groups, n_basis, n_others):
    the group means of residual x basis function."""
    return (basis[..., None] * residual[:, :, None, :]).mean(1)


def draw_batch(data: TrainingData, config: TrainConfig, generator: torch.Generator):
    """A global batch: random condition groups, then group_size random samples from each.
    Returns the stored samples, their raw conditions, the groups drawn and the samples' indices."""
    n_groups = config.batch_size // config.group_size
    which = torch.randint(len(data.groups), (n_groups,), generator=generator)
    index = torch.cat([data.groups[g][torch.randint(len(data.groups[g]), (config.group_size,), generator=generator)]
                       for g in which.tolist()])
    return data.x[index], data.cond[index], which, index


class Trainer:
    def __init__(self, system, data: TrainingData, config: TrainConfig, run_dir: Path, quiet: bool = False):
        self.system, self.data, self.config, self.quiet = system, data, config, quiet
        self.run_dir = Path(run_dir)
        self.rank, self.world = distributed_context()
        if config.batch_size % (self.world * config.group_size):
            raise UserError(f"batch_size {config.batch_size} must split into whole condition groups "
                            f"of {config.group_size} over {self.world} processes")
        self.device = resolve_device(config.device, self.rank)
        self.network_config = build_network_config(system, config.network)
        self.summary_columns = summary_indices(system, config)
        anchors = feature_indices(system, config.condition_anchors, "condition_anchors")
        self.conditioning = Conditioning.fit(
            data.cond, data.features[:, self.summary_columns] if self.summary_columns else None,
            config.hierarchical, data.features[:, anchors] if anchors else None, config.condition_anchors,
            axes=summary_axes(system), groups=data.group_of)
        torch.manual_seed(config.seed)  # initial weights: identical on every rank
        self.G, self.D = (m.to(self.device) for m in system.generative.make_networks(
            tuple(data.x.shape[1:]), self.conditioning.n_inputs, self.network_config))
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False) if config.ema > 0 else self.G
        betas = (config.beta1, config.beta2)
        self.opt_G = (torch.optim.AdamW(self.G.parameters(), lr=config.lr_generator, betas=betas,
                                        weight_decay=config.generator_weight_decay)
                      if config.generator_weight_decay > 0 else
                      torch.optim.Adam(self.G.parameters(), lr=config.lr_generator, betas=betas))
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=config.lr_critic, betas=betas)
        self.step, self.best_score, self.started = 0, math.inf, time.time()
        if config.quantile_matching > 0:
            self.target_sorted = expected_sorted_features(data, config.group_size)
        if config.conditional_matching > 0 or config.conditional_spread > 0:
            if not self.summary_columns:
                raise UserError("conditional_matching and conditional_spread need hierarchical summaries "
                                "(train.hierarchical)")
            self.regression = conditional_regression(data, self.summary_columns)
        self.feature_weights = matching_weights(system, config)

    # ----- one training step -------------------------------------------------------------------------
    def _my_slice(self, *tensors):
        """This rank's contiguous share of a global batch (whole condition groups)."""
        share = self.config.batch_size // self.world
        piece = slice(self.rank * share, (self.rank + 1) * share)
        return [t[piece] for t in tensors]

    def _inputs(self, generator: torch.Generator):
        x, cond, groups, index = draw_batch(self.data, self.config, generator)
        # hierarchical: the real samples' own summaries (the symmetries leave the physics features unchanged)
        summary = self.data.features[index][:, self.summary_columns]
        x = self.system.generative.to_float(x)
        if self.config.augment:
            x = self.system.generative.apply_symmetry(x, self.system.generative.symmetry_codes(len(x), generator))
        latent = self.G.latent(len(x), generator)
        eps = torch.rand(len(x), generator=generator)  # gradient-penalty interpolation weights
        x, cond, eps, summary = self._my_slice(x, cond, eps, summary)
        latent = dict(zip(latent, self._my_slice(*latent.values())))
        per_rank = len(groups) // self.world
        groups = groups[self.rank * per_rank:(self.rank + 1) * per_rank]
        summary = summary.to(self.device) if self.summary_columns else None
        latent.update(self.conditioning.named(summary))
        return x.to(self.device), self.conditioning.real(cond.to(self.device), summary), latent, groups, eps, summary

    def _set_learning_rates(self) -> None:
        """Constant, then linear to zero over the last lr_decay of the run: a settling game ends more
        precisely than one still oscillating at full step size. A function of the step, so resume is exact."""
        cfg = self.config
        start = cfg.steps * (1 - cfg.lr_decay)
        factor = 1.0 if self.step < start else max(0.0, (cfg.steps - self.step) / max(1.0, cfg.steps - start))
        for optimiser, lr in ((self.opt_G, cfg.lr_generator), (self.opt_D, cfg.lr_critic)):
            for group in optimiser.param_groups:
                group["lr"] = lr * factor

    def train_step(self) -> dict[str, float]:
        cfg = self.config
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + self.step)
        self._set_learning_rates()
        for _ in range(cfg.n_critic):
            real, cond, latent, _, eps, _ = self._inputs(gen)
            with torch.no_grad():
                fake = self.G(latent, cond)
            loss_D, logs = losses.critic_loss(cfg.loss, self.D, real, fake, cond, gp_lambda=cfg.gp_lambda,
                                              eps=eps)
            self.opt_D.zero_grad(set_to_none=True)
            loss_D.backward()
            self._average_gradients(self.D)
            self.opt_D.step()
            if cfg.loss == "wgan-clip":
                losses.clip_weights(self.D, cfg.clip)
        _, cond, latent, groups, _, summary = self._inputs(gen)
        fake = self.G(latent, cond)
        adversarial = losses.generator_loss(cfg.loss, self.D(fake, cond))
        matching = self._feature_matching(fake, groups)
        summary_gap = self._summary_matching(fake, groups, summary)
        conditional_gap, spread_gap = self._conditional_matching(fake, groups, summary)
        # a system's generator may hold a prior on its last forward pass (in condition groups; its weight is
        # a network setting)
        prior = self.G.prior_loss(cfg.group_size) if hasattr(self.G, "prior_loss") else 0.0
        loss_G = (adversarial + cfg.feature_matching * matching + cfg.summary_matching * summary_gap
                  + cfg.conditional_matching * conditional_gap + cfg.conditional_spread * spread_gap + prior)
        self.opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        self._average_gradients(self.G)
        self.opt_G.step()
        self._update_ema()
        self.step += 1
        logs = {"critic_loss": loss_D.item(), **logs, "generator_loss": adversarial.item(),
                "feature_matching": matching.item()}
        if torch.is_tensor(prior):
            logs["generator_prior"] = prior.item()
        if summary is None:
            return logs
        logs["summary_matching"] = summary_gap.item()
        if cfg.conditional_matching > 0:
            logs["conditional_matching"] = conditional_gap.item()
        if cfg.conditional_spread > 0:
            logs["conditional_spread"] = spread_gap.item()
        return logs

    def _feature_matching(self, fake: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """Mean over condition groups of ((generated mean - training mean) / training spread)^2, plus
        spread_matching x ((generated spread - training spread) / training spread)^2."""
        cfg = self.config
        if cfg.feature_matching == 0:
            return torch.zeros((), device=fake.device)
        features = self.system.generative.physics_features(fake).view(len(groups), cfg.group_size, -1)
        target, scale = self.data.target_mean[groups].to(fake.device), self.data.target_std[groups].to(fake.device)
        weights = self.feature_weights.to(fake.device)
        average = lambda squares: (squares * weights).mean()  # over groups (and samples) and features
        loss = average(((features.mean(1) - target) / scale) ** 2)
        if cfg.spread_matching > 0 and cfg.group_size > 1:
            loss = loss + cfg.spread_matching * average(((features.std(1) - scale) / scale) ** 2)
        if cfg.quantile_matching > 0:
            gap = (features.sort(1).values - self.target_sorted[groups].to(fake.device)) / scale[:, None]
            loss = loss + cfg.quantile_matching * average(gap ** 2)
        return loss

    def _summary_matching(self, fake: torch.Tensor, groups: torch.Tensor, summary: torch.Tensor | None) -> torch.Tensor:
        """Hierarchical: mean of ((summary of each generated sample - the summary it was asked for) /
        the training spread of its condition group)^2. The critic alone would enforce the pairing only
        as one of many differences it sees; this makes the summary condition binding sample by sample."""
        if summary is None:
            return torch.zeros((), device=fake.device)
        k, n = self.summary_columns, len(groups)
        made = self.system.generative.physics_features(fake)[:, k].view(n, -1, len(k))
        scale = self.data.target_std[groups][:, k].to(fake.device)[:, None, :]
        return (((made - summary.view(n, -1, len(k))) / scale) ** 2).mean()

    def _conditional_matching(self, fake: torch.Tensor, groups: torch.Tensor,
                              summary: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Hierarchical: (mean, spread) terms. r_i is (a generated sample's other features - the training
        regression at the summaries s_i it was asked for) / training spread, and phi = (1, P1(u), P2(u)) of
        the summaries' ranks (rank_basis). The mean term is the squared moments mean_i r_i phi(s_i) of each group,
        averaged: they all vanish when the generated features scatter around the training data's
        conditional mean, and the P1 and P2 ones measure a wrong slope or curvature that the plain mean
        cannot see. The spread term does the same for mean_i r_i^2 phi(s_i) minus the training data's."""
        cfg = self.config
        zero = torch.zeros((), device=fake.device)
        if cfg.conditional_matching == 0 and cfg.conditional_spread == 0:
            return zero, zero  # otherwise the trainer's constructor has checked that summaries exist
        n, features = len(groups), self.system.generative.physics_features(fake)
        scale = self.data.target_std[:, self.regression.others].to(fake.device)
        pieces = [self.regression.residuals(f, s, g, scale[g]) for f, s, g in
                  zip(features.view(n, -1, features.shape[1]), summary.view(n, -1, summary.shape[1]), groups.tolist())]
        basis, residual = (torch.stack(p) for p in zip(*pieces))  # (n, group, n_basis), (n, group, n_others)
        spread = residual_moments(residual ** 2, basis) - self.regression.squared_moments[groups].to(fake.device)
        return (residual_moments(residual, basis) ** 2).mean(), (spread ** 2).mean()

    def _average_gradients(self, model: torch.nn.Module) -> None:
        if self.world == 1:
            return
        for p in model.parameters():
            if p.grad is not None:
                torch.distributed.all_reduce(p.grad)
                p.grad /= self.world

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.G_ema is self.G:
            return
        for averaged, current in zip(self.G_ema.parameters(), self.G.parameters()):
            averaged.lerp_(current, 1 - self.config.ema)

    # ----- physics monitor ---------------------------------------------------------------------------
    @torch.no_grad()
    def monitor(self) -> dict:
        """Per monitored condition, generated vs training feature means; the score chooses best.pt.

        score = mean over conditions and features of ((generated mean - training mean) / (training
        spread / sqrt(monitor samples)))^2, features weighted as in the matching (FEATURE_WEIGHTS, mean 1):
        about 1 for a perfect generator at any monitor size. The training spread, not the generated one:
        a generator that collapses a feature (a QCD jet's mass step above 90 GeV, all zeros) had a
        standard error of 1e-6, a pull of 1e4 and a score that chose best.pt by that alone.
        """
        cfg, data = self.config, self.data
        picks = np.unique(np.linspace(0, len(data.groups) - 1, min(cfg.monitor_conditions, len(data.groups))).astype(int))
        gen = torch.Generator().manual_seed(cfg.seed + 7)  # the same monitor draw every time
        rows, pulls = [], []
        for g in picks:
            group = data.groups[g]  # conditions drawn from the group's own samples: continuous ones vary
            cond = data.cond[group[torch.randint(len(group), (cfg.monitor_samples,), generator=gen)]]
            cond = cond.to(self.device)
            latent = self.G_ema.latent(cfg.monitor_samples, gen)
            summaries = self.conditioning.draw_summaries(cond, gen)
            fake = self.G_ema({**latent, **self.conditioning.named(summaries)}, self.conditioning.real(cond, summaries))
            features = self.system.generative.physics_features(fake).cpu()
            mean, err = features.mean(0), data.target_std[g] / math.sqrt(len(features))  # std clamped >= 1e-3
            pull = (mean - data.target_mean[g]) / err
            pulls.append(self.feature_weights * pull ** 2)
            rows.append({"condition": data.group_cond[g].tolist(), "generated": mean.tolist(),
                         "training": data.target_mean[g].tolist()})
        return {"score": float(torch.stack(pulls).mean()), "features": list(self.system.generative.FEATURE_NAMES),
                "conditions": rows}

    # ----- the loop ----------------------------------------------------------------------------------
    def fit(self) -> None:
        from physgan.progress import progress_bar

        cfg, is_main = self.config, self.rank == 0
        log = open(self.run_dir / "log.jsonl", "a") if is_main else None
        try:
            with progress_bar(total=cfg.steps - self.step, desc="training", quiet=self.quiet or not is_main) as bar:
                while self.step < cfg.steps:
                    logs = self.train_step()
                    bar.update(1)
                    record = {}
                    if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                        record.update(logs)
                    if is_main and (self.step % cfg.monitor_every == 0 or self.step == cfg.steps):
                        record["monitor"] = self.monitor()  # only rank 0 logs and chooses best.pt
                        if record["monitor"]["score"] < self.best_score:
                            self.best_score = record["monitor"]["score"]
                            self.save("best.pt")
                    if is_main and record:
                        log.write(json.dumps({"step": self.step, "time": round(time.time() - self.started, 3),
                                              **record}) + "\n")
                        log.flush()
                    if is_main and (self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps):
                        self.save("last.pt")
        finally:
            if log:
                log.close()

    # ----- checkpoints -------------------------------------------------------------------------------
    def state(self) -> dict:
        """Tensors and plain values only, so that torch.load(weights_only=True) can read it."""
        return {"format": CHECKPOINT_FORMAT, "system": self.system.NAME, "step": self.step,
                "best_score": self.best_score, "config": asdict(self.config),
                "network": asdict(self.network_config), "shape": list(self.data.x.shape[1:]),
                "conditions": list(self.system.CONDITIONS), "condition_low": self.conditioning.low.tolist(),
                "condition_high": self.conditioning.high.tolist(), "summary": self.conditioning.summary,
                "anchors": self.conditioning.anchors,
                "generator": self.G.state_dict(),
                "generator_ema": self.G_ema.state_dict(), "critic": self.D.state_dict(),
                "opt_generator": self.opt_G.state_dict(), "opt_critic": self.opt_D.state_dict()}

    def save(self, name: str) -> None:
        from physgan.io import atomic_output

        directory = self.run_dir / "checkpoints"
        with atomic_output(directory / name, force=True) as tmp:
            torch.save(self.state(), tmp)

    def restore(self, checkpoint: dict) -> None:
        mine = asdict(self.config)
        changed = sorted(k for k in mine if k != "steps" and checkpoint["config"].get(k) != mine[k])
        if changed:  # only the number of steps may change: anything else would not be the same run
            raise UserError(f"--resume: the configuration differs from the checkpoint's ({', '.join(changed)})")
        self.G.load_state_dict(checkpoint["generator"])
        self.G_ema.load_state_dict(checkpoint["generator_ema"])
        self.D.load_state_dict(checkpoint["critic"])
        self.opt_G.load_state_dict(checkpoint["opt_generator"])
        self.opt_D.load_state_dict(checkpoint["opt_critic"])
        self.step, self.best_score = checkpoint["step"], checkpoint["best_score"]


def matching_weights(system, config: TrainConfig) -> torch.Tensor:
    """The features' weights in the matching and the monitor, mean 1: the system's own (e.g. several
    points of one spectrum counting as one feature), with config.feature_weights replacing them by name."""
    names = list(system.generative.FEATURE_NAMES)
    weights = list(getattr(system.generative, "FEATURE_WEIGHTS", [1.0] * len(names)))
    for column, weight in zip(feature_columns(system, list(config.feature_weights), "feature_weights"),
                              config.feature_weights.values()):
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
            raise UserError(f"feature_weights: the weight of {names[column]!r} must be a number >= 0")
        weights[column] = float(weight)
    weights = torch.tensor(weights, dtype=torch.float32)
    if weights.sum() <= 0:
        raise UserError("feature_weights: at least one feature needs a positive weight")
    return weights / weights.mean()


def summary_indices(system, config: TrainConfig) -> list[int]:
    """Columns of the hierarchical summaries among the system's physics features (empty: not hierarchical)."""
    return feature_indices(system, config.hierarchical, "hierarchical")


def summary_axes(system) -> SummaryAxes:
    """The summaries' model runs along the one continuous condition, within each category of the system's
    categorical condition where it has one (generative.CATEGORY_CONDITION: its column)."""
    category = getattr(system.generative, "CATEGORY_CONDITION", None)
    continuous = [j for j in range(len(system.CONDITIONS)) if j != category]
    return SummaryAxes(position=continuous[0], category=category)


def feature_indices(system, names: list[str], option: str) -> list[int]:
    """Columns of the named physics features, for an option (hierarchical, condition_anchors) whose
    model interpolates along the system's one continuous condition (hierarchical: within each category
    of a categorical one, where the system has that too)."""
    categorical = getattr(system.generative, "CATEGORY_CONDITION", None) is not None and option == "hierarchical"
    if names and len(system.CONDITIONS) != 1 + categorical:
        raise UserError(f"{option} needs one continuous condition{' besides the category' if categorical else ''}; "
                        f"{system.NAME} has {len(system.CONDITIONS)} ({', '.join(system.CONDITIONS)})")
    return feature_columns(system, names, option)


def feature_columns(system, names: list[str], option: str) -> list[int]:
    """Columns of the named physics features (each named once) for an option's error messages."""
    known = list(system.generative.FEATURE_NAMES)
    for name in names:
        if name not in known:
            raise UserError(f"{option}: {name!r} is not one of the {system.NAME} physics features "
                            f"({', '.join(known)})")
    if len(set(names)) < len(names):
        raise UserError(f"{option}: a feature is named twice")
    return [known.index(name) for name in names]


def resolve_device(device: str, rank: int = 0) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available here (use --device cpu or auto)")
        return torch.device("cuda", rank % torch.cuda.device_count())
    return torch.device("cpu")


def build_network_config(system, values: dict):
    from physgan.config import build

    return build(system.generative.NetworkConfig, values, where="network")


def load_checkpoint(path) -> dict:
    """A physgan checkpoint, read with weights_only=True (no code runs); user errors for anything else."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or corrupt files
        raise UserError(f"{path}: not a readable physgan checkpoint ({type(exc).__name__})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path}: not a physgan checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    return checkpoint


def train(data_path, run_dir, config: TrainConfig, *, resume: bool = False, quiet: bool = False) -> Trainer:
    """Train on a sample file into RUN_DIR (log.jsonl, checkpoints/last.pt and best.pt)."""
    from physgan.io import open_samples
    from physgan.systems import get_system

    samples = open_samples(data_path)
    system = get_system(samples.system)
    run_dir = Path(run_dir)
    last = run_dir / "checkpoints" / "last.pt"
    if not resume and last.exists():
        raise UserError(f"{run_dir} already holds a training run; pass --resume to continue it or choose another --out")
    if resume and not last.exists():
        raise UserError(f"--resume: {last} does not exist")
    owns_group = not torch.distributed.is_initialized()  # torchrun: the Trainer starts it, train() ends it
    trainer = Trainer(system, prepare_data(system, samples), config, run_dir, quiet)
    run_dir.mkdir(parents=True, exist_ok=True)  # only once the data and settings have been accepted
    if resume:
        checkpoint = load_checkpoint(last)
        if checkpoint["system"] != system.NAME:
            raise UserError(f"--resume: {last} is a {checkpoint['system']} checkpoint, the data are {system.NAME}")
        trainer.restore(checkpoint)
    trainer.fit()
    if trainer.world > 1:
        # every rank waits for rank 0's last checkpoint; then the group ends while Python is still whole:
        # gloo's threads outliving it aborted a rank at exit (SIGABRT, "terminate called without an
        # active exception", once in CI)
        torch.distributed.barrier()
        if owns_group:
            torch.distributed.destroy_process_group()
    return trainer
