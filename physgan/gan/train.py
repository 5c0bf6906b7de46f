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
from physgan.gan import checkpoint, losses
from physgan.gan.conditioning import Conditioning, SummaryAxes
from physgan.hardware import torch_device

PROGRESS_NUMBERS = ("critic_loss", "generator_loss", "wasserstein")  # shown with the progress (and the score)


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
    lr_decay: float = 0.0
    """fraction of the run, at its end, over which learning rates fall linearly to zero (0: constant)"""
    ema: float = 0.999
    """decay of the exponential moving average of generator weights (0: off)"""
    feature_matching: float = 1.0
    """weight of the per-condition physics-feature matching term in the generator loss (0: off)"""
    spread_matching: float = 0.0
    """weight of the term matching, per condition group, the spread (standard deviation) of the physics
    features as well as their mean (0: off); it acts against a generator that collapses onto typical samples"""
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
        self.device = torch_device(config.device, self.rank)
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
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=config.lr_generator, betas=betas)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=config.lr_critic, betas=betas)
        self.step, self.best_score, self.started = 0, math.inf, time.time()
        self.feature_weights = matching_weights(system)

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
        # once for both matchings, and not at all where neither is on
        wanted = cfg.feature_matching != 0 or summary is not None
        features = self.system.generative.physics_features(fake) if wanted else fake.new_zeros(len(fake), 0)
        matching = self._feature_matching(features, groups)
        summary_gap = self._summary_matching(features, groups, summary)
        # a system's generator may hold a prior on its last forward pass (in condition groups; its weight is
        # a network setting)
        prior = self.G.prior_loss(cfg.group_size) if hasattr(self.G, "prior_loss") else 0.0
        loss_G = adversarial + cfg.feature_matching * matching + cfg.summary_matching * summary_gap + prior
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
        if summary is not None:
            logs["summary_matching"] = summary_gap.item()
        return logs

    def _feature_matching(self, features: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """Mean over condition groups of ((generated mean - training mean) / training spread)^2, plus
        spread_matching x ((generated spread - training spread) / training spread)^2, of the generated
        samples' physics features (B, n_features)."""
        cfg = self.config
        if cfg.feature_matching == 0:
            return torch.zeros((), device=features.device)
        device = features.device
        features = features.view(len(groups), cfg.group_size, -1)
        target, scale = self.data.target_mean[groups].to(device), self.data.target_std[groups].to(device)
        weights = self.feature_weights.to(device)
        average = lambda squares: (squares * weights).mean()  # over groups (and samples) and features
        loss = average(((features.mean(1) - target) / scale) ** 2)
        if cfg.spread_matching > 0 and cfg.group_size > 1:
            loss = loss + cfg.spread_matching * average(((features.std(1) - scale) / scale) ** 2)
        return loss

    def _summary_matching(self, features: torch.Tensor, groups: torch.Tensor,
                          summary: torch.Tensor | None) -> torch.Tensor:
        """Hierarchical: mean of ((summary of each generated sample (among its physics features) - the
        summary it was asked for) / the training spread of its condition group)^2. The critic alone would
        enforce the pairing only as one of many differences it sees; this makes the summary condition
        binding sample by sample."""
        if summary is None:
            return torch.zeros((), device=features.device)
        k, n = self.summary_columns, len(groups)
        made = features[:, k].view(n, -1, len(k))
        scale = self.data.target_std[groups][:, k].to(features.device)[:, None, :]
        return (((made - summary.view(n, -1, len(k))) / scale) ** 2).mean()

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
                score = None  # the latest monitor's, shown beside the progress
                while self.step < cfg.steps:
                    logs = self.train_step()
                    record = {}
                    if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                        record.update(logs)
                    if is_main and (self.step % cfg.monitor_every == 0 or self.step == cfg.steps):
                        record["monitor"] = self.monitor()  # only rank 0 logs and chooses best.pt
                        score = record["monitor"]["score"]
                        if score < self.best_score:
                            self.best_score = score
                            self.save("best.pt")
                    shown = {key: logs[key] for key in PROGRESS_NUMBERS if key in logs}
                    bar.set_postfix(**shown, **({} if score is None else {"score": score}))
                    bar.update(1)
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
    def _modules(self) -> dict:
        return {"generator": self.G, "generator_ema": self.G_ema, "critic": self.D, "opt_generator": self.opt_G,
                "opt_critic": self.opt_D}

    def state(self) -> dict:
        return checkpoint.pack(system=self.system, step=self.step, best_score=self.best_score,
                               config=asdict(self.config), network=asdict(self.network_config),
                               shape=self.data.x.shape[1:], conditioning=self.conditioning, modules=self._modules())

    def save(self, name: str) -> None:
        checkpoint.save(self.state(), self.run_dir / "checkpoints" / name)

    def restore(self, saved: dict) -> None:
        mine = asdict(self.config)
        changed = sorted(k for k in mine if k != "steps" and saved["config"].get(k) != mine[k])
        if changed:  # only the number of steps may change: anything else would not be the same run
            raise UserError(f"--resume: the configuration differs from the checkpoint's ({', '.join(changed)})")
        checkpoint.unpack_into(saved, self._modules())
        self.step, self.best_score = saved["step"], saved["best_score"]


def matching_weights(system) -> torch.Tensor:
    """The features' weights in the matching and the monitor, normalised to mean 1: the system's own
    (generative.FEATURE_WEIGHTS, e.g. several points of one spectrum counting as one feature) or equal."""
    names = system.generative.FEATURE_NAMES
    weights = torch.tensor(getattr(system.generative, "FEATURE_WEIGHTS", [1.0] * len(names)), dtype=torch.float32)
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


def build_network_config(system, values: dict):
    from physgan.config import build

    return build(system.generative.NetworkConfig, values, where="network")


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
        saved = checkpoint.load(last)
        if saved["system"] != system.NAME:
            raise UserError(f"--resume: {last} is a {saved['system']} checkpoint, the data are {system.NAME}")
        trainer.restore(saved)
    trainer.fit()
    if trainer.world > 1:
        # every rank waits for rank 0's last checkpoint; then the group ends while Python is still whole:
        # gloo's threads outliving it aborted a rank at exit (SIGABRT, "terminate called without an
        # active exception", once in CI)
        torch.distributed.barrier()
        if owns_group:
            torch.distributed.destroy_process_group()
    return trainer
