"""Generate samples from a checkpoint into the same sample-file format as the Monte Carlo (source = "gan")."""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from physgan.gan import adherence as adherences
from physgan.gan import checkpoint as checkpoints
from physgan.hardware import torch_device

logger = logging.getLogger(__name__)


@torch.no_grad()
def generate(generator, checkpoint: dict, cond: torch.Tensor, *, batch_size: int, device: torch.device,
             seed: int = 0, adherence=None):
    """Yield (generated batch, raw condition batch) for the raw conditions `cond` (n, n_cond). adherence: an
    Adherence that moves each latent towards its drawn summaries (physgan/gan/adherence.py), or None."""
    conditioning = checkpoints.conditioning(checkpoint)
    rng = torch.Generator().manual_seed(seed)
    for start in range(0, len(cond), batch_size):
        c = cond[start:start + batch_size].to(device)
        latent = generator.latent(len(c), rng)
        summaries = conditioning.draw_summaries(c, rng)
        latent, net_cond = {**latent, **conditioning.named(summaries)}, conditioning.real(c, summaries)
        if adherence is not None:
            latent = adherence(generator, latent, net_cond, summaries)
        yield generator(latent, net_cond), c


@dataclass(frozen=True)
class Request:
    """What to generate (Sampler.request checks it): the distinct raw conditions (k, n_cond), each drawn
    n_per_condition times, in batches of batch_size on device, latents seeded by seed, moved towards the
    drawn summaries named in adhere by adherence_steps steps (physgan/gan/adherence.py), refine_sweeps
    sweeps of the system's refinement after generation."""

    conditions: np.ndarray
    n_per_condition: int
    batch_size: int
    device: torch.device
    seed: int
    refine_sweeps: int
    adhere: tuple[str, ...] = ()
    adherence_steps: int = 0

    @property
    def n(self) -> int:
        return len(self.conditions) * self.n_per_condition


class Sampler:
    """A checkpoint loaded for sampling: its system and its (EMA) generator, built per device on first use.

    The one way samples are generated: `physgan sample` and `physgan run` (sample_to_file, which streams the
    batches into a file) and the Python API (physgan.api.Generator, which collects them in memory) both go
    through request -> batches, so a file and an in-memory sample of the same request are the same samples.
    """

    def __init__(self, checkpoint_path):
        from physgan.systems import get_system

        self.path = str(checkpoint_path)
        self.checkpoint = checkpoints.load(checkpoint_path)
        self.system = get_system(self.checkpoint["system"], where="checkpoint")
        self._generators = {}  # torch.device -> the EMA generator in eval mode there

    def generator(self, device: torch.device):
        """The checkpoint's (EMA) generator on `device`, built once."""
        if device not in self._generators:
            self._generators[device] = checkpoints.generator(self.checkpoint, device)[1]
        return self._generators[device]

    def request(self, conditions: dict | np.ndarray | None, n_per_condition: int | None = None, *,
                batch_size: int = 1024, device: str = "auto", seed: int = 0, refine_sweeps: int = 0,
                like=None, adhere=(), adherence_steps: int = adherences.STEPS) -> Request:
        """Check a request; conditions as sample_to_file takes them, or like: a sample file (path or
        physgan.io Samples) of this system whose conditions are used sample by sample (n_per_condition per
        sample of it, 1 unless given), with no other conditions given. adhere: names of the generator's
        summaries to adhere to (one name may come as a string), by adherence_steps steps. Logs a warning
        about conditions outside the training range."""
        from physgan.errors import UserError

        device = torch_device(device)
        system = self.system
        if like is not None:
            conditions = self.conditions_like(like, conditions)
            n_per_condition = 1 if n_per_condition is None else n_per_condition
        elif isinstance(conditions, dict):
            _refuse_other_systems_conditions(system, conditions)
            conditions, n_per_condition = system.generative.parse_conditions(conditions)
        if n_per_condition < 1 or batch_size < 1:
            raise UserError("--n and --batch-size must be at least 1")
        if refine_sweeps < 0 or (refine_sweeps > 0 and getattr(system, "refine", None) is None):
            raise UserError(f"--refine-sweeps {refine_sweeps}: " + ("must be >= 0" if refine_sweeps < 0 else
                            f"the {system.NAME} system has no exact refinement"))
        adhere = (adhere,) if isinstance(adhere, str) else tuple(adhere)
        self.adherence(adhere, adherence_steps)  # checked now, not after the first batch
        conditions = np.asarray(conditions, dtype=np.float32)
        _warn_outside_training_range(self.checkpoint, conditions)
        return Request(conditions, int(n_per_condition), int(batch_size), device, int(seed), int(refine_sweeps),
                       adhere, int(adherence_steps) if adhere else 0)

    def adherence(self, names: tuple[str, ...], steps: int) -> adherences.Adherence | None:
        """The adherence to the generator's summaries `names` (None: none named)."""
        return adherences.Adherence.for_checkpoint(self.system, checkpoints.conditioning(self.checkpoint), names,
                                                   steps)

    def conditions_like(self, like, given: dict | None = None) -> np.ndarray:
        """The raw conditions (n, n_cond) of every sample of `like` (a sample file path or Samples); given:
        conditions asked for by name as well (a mistake: the request would be ambiguous)."""
        from physgan.errors import UserError
        from physgan.io import open_samples

        named = [key for key, value in (given or {}).items() if value is not None and key != "n"]
        if named:
            raise UserError(f"give the conditions by --like or by name ({', '.join(named)}), not both")
        reference = open_samples(like)
        if reference.system != self.system.NAME:
            raise UserError(f"--like: a {reference.system} sample; this generator makes {self.system.NAME} samples")
        return np.stack([reference.read(name) for name in self.system.CONDITIONS], 1).astype(np.float32)

    def provenance(self, request: Request) -> dict:
        """The provenance of a generated sample (docs/formats.md, "Provenance")."""
        from physgan.io import provenance

        checkpoint = self.checkpoint
        return provenance({"checkpoint": self.path, "step": checkpoint["step"],
                           "n_per_condition": request.n_per_condition, "batch_size": request.batch_size,
                           "seed": request.seed, "device": str(request.device),
                           "refine": {"sweeps": request.refine_sweeps, "algorithm": self.system.refine.algorithm}
                           if request.refine_sweeps else None,
                           "adherence": {"summaries": list(request.adhere), "steps": request.adherence_steps,
                                         "tolerance": adherences.TOLERANCE, "learning_rate": adherences.LEARNING_RATE}
                           if request.adhere else None,
                           "training": checkpoint["config"], "network": checkpoint["network"]})

    def batches(self, request: Request, timing: dict | None = None,
                before_refinement=None) -> Iterator[dict[str, np.ndarray]]:
        """The request's samples as sample-file arrays (Generative.to_arrays), batch by batch, refined where
        asked: each batch's random streams named by (seed, 1, batch number), so that samples reproduce from
        their seed and batch size. timing: a dict whose "refine_seconds" gathers the refinement's time.
        before_refinement: called with each batch as the network made it, before its refinement (the
        same arrays as a request without refinement gives: the latents do not depend on the sweeps)."""
        system = self.system
        cond = torch.from_numpy(np.repeat(request.conditions, request.n_per_condition, axis=0)).float()
        for batch, (x, c) in enumerate(generate(self.generator(request.device), self.checkpoint, cond,
                                                batch_size=request.batch_size, device=request.device,
                                                seed=request.seed,
                                                adherence=self.adherence(request.adhere, request.adherence_steps))):
            arrays = system.generative.to_arrays(x, c)
            if request.refine_sweeps:
                if before_refinement is not None:
                    before_refinement(arrays)
                begun = time.perf_counter()
                arrays = system.refine(arrays, request.refine_sweeps, (request.seed, 1, batch),
                                       device=str(request.device))
                if timing is not None:
                    timing["refine_seconds"] = timing.get("refine_seconds", 0.0) + time.perf_counter() - begun
            yield arrays

    def arrays(self, request: Request, *, quiet: bool = False) -> dict[str, np.ndarray]:
        """The request's samples in memory: the batches joined (what sample_to_file writes)."""
        from physgan.progress import progress_bar

        parts = []
        with progress_bar(total=request.n, desc="sampling", quiet=quiet) as bar:
            for arrays in self.batches(request):
                parts.append(arrays)
                bar.update(_length(arrays))
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def _length(arrays: dict) -> int:
    return len(next(iter(arrays.values())))


def sample_to_file(checkpoint_path, out, conditions: dict | np.ndarray, n_per_condition: int | None = None, *,
                   batch_size: int = 1024, device: str = "auto", seed: int = 0, refine_sweeps: int = 0, root=None,
                   raw_out=None, like=None, adhere=(), adherence_steps: int = adherences.STEPS, force: bool = False,
                   quiet: bool = False) -> dict:
    """Write generated samples to `out` (and to a ROOT file `root` where the system has that format).

    conditions: raw conditions (k, n_cond), each sampled n_per_condition times, or the system's sampling
    options (Ising {"T": "2.0,3.0", "n": 1000}; jets {"class": "wprime,qcd", "pt": "250:300", "n": 1000}),
    which say both; or like, a sample file whose conditions are used sample by sample (Sampler.request).
    refine_sweeps: K sweeps of the system's exact refinement (system.refine) after generation, each batch's
    random streams named by (seed, 1, batch number), so a file reproduces from its seed and batch size.
    adhere: names of the generator's summaries each sample's latent is moved towards (adherence_steps
    steps, physgan/gan/adherence.py) before the refinement. raw_out: with refinement, also write the
    network's samples before the sweeps there (what refine_sweeps = 0 would write), from the same pass.
    The samples are Sampler.batches', streamed into the file batch by batch (the Python API collects the
    same batches in memory). Returns timing numbers (samples per second of the whole write, refinement and
    a raw_out file included, the refinement's own seconds, and the device; scripts/bench_sampling.py times
    the generator alone).
    """
    from physgan.errors import UserError
    from physgan.io import SampleWriter, open_samples
    from physgan.progress import progress_bar

    sampler = Sampler(checkpoint_path)
    system = sampler.system
    write_root = getattr(system, "write_root", None) if root else None
    if root and write_root is None:
        raise UserError(f"--root: the {system.NAME} system has no ROOT format")
    request = sampler.request(conditions, n_per_condition, batch_size=batch_size, device=device, seed=seed,
                              refine_sweeps=refine_sweeps, like=like, adhere=adhere,
                              adherence_steps=adherence_steps)
    if raw_out is not None and not request.refine_sweeps:
        raise ValueError("raw_out: only a refined sample has a raw one beside it")
    timing = {"refine_seconds": 0.0}
    started = time.perf_counter()
    with contextlib.ExitStack() as outputs:
        writer = outputs.enter_context(SampleWriter(out, system=system.NAME, source="gan",
                                                    provenance=sampler.provenance(request), force=force))
        before_refinement = None
        if raw_out is not None:
            raw = outputs.enter_context(SampleWriter(raw_out, system=system.NAME, source="gan", force=force,
                                                     provenance=sampler.provenance(replace(request, refine_sweeps=0))))
            before_refinement = lambda arrays: raw.append(**arrays)  # noqa: E731
        bar = outputs.enter_context(progress_bar(total=request.n, desc="sampling", quiet=quiet))
        for arrays in sampler.batches(request, timing, before_refinement):
            writer.append(**arrays)
            bar.update(_length(arrays))
    seconds = time.perf_counter() - started
    if write_root is not None:
        try:
            write_root(open_samples(out), root, force=force)
        except BaseException:
            for path in (out, raw_out):  # all outputs or none
                if path is not None:
                    Path(path).unlink(missing_ok=True)
            raise
    return {"n": request.n, "seconds": seconds, "per_second": request.n / seconds,
            "refine_seconds": timing["refine_seconds"], "device": str(request.device)}


EDGE_TOLERANCE = 0.01  # of each condition's training range: how far past its edges a request is not extrapolation


def _warn_outside_training_range(checkpoint: dict, conditions: np.ndarray) -> None:
    """The training range is the training sample's smallest and largest condition: jets made in 250-300 GeV
    span 250.02-299.98 GeV, so a request for 250 GeV is not extrapolation. Only requests more than
    EDGE_TOLERANCE of the range past an edge are warned about."""
    low, high = np.array(checkpoint["condition_low"]), np.array(checkpoint["condition_high"])
    margin = EDGE_TOLERANCE * (high - low)
    outside = np.any((conditions < low - margin) | (conditions > high + margin), axis=1)
    if outside.any():
        logger.warning(f"{outside.sum()} requested condition(s) lie outside the training range "
                       f"{low.tolist()} .. {high.tolist()}: the generator extrapolates there")


def _refuse_other_systems_conditions(system, options: dict) -> None:
    """The command line offers every system's condition flags (only the checkpoint says which system it
    is): one that this system does not declare is a mistake, not something to ignore."""
    from physgan.errors import UserError

    mine = {option.key for option in system.SAMPLE_OPTIONS} | {"n"}
    foreign = sorted(key for key, value in options.items() if value is not None and key not in mine)
    if foreign:
        flags = ", ".join(option.flag for option in system.SAMPLE_OPTIONS if not option.output)
        raise UserError(f"a {system.NAME} checkpoint is sampled at its own conditions ({flags}), "
                        f"not at {', '.join(foreign)}")
