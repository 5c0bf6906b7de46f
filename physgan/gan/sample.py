"""Generate samples from a checkpoint into the same sample-file format as the Monte Carlo (source = "gan")."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from physgan.gan import checkpoint as checkpoints
from physgan.hardware import torch_device


@torch.no_grad()
def generate(generator, checkpoint: dict, cond: torch.Tensor, *, batch_size: int, device: torch.device,
             seed: int = 0):
    """Yield (generated batch, raw condition batch) for the raw conditions `cond` (n, n_cond)."""
    conditioning = checkpoints.conditioning(checkpoint)
    rng = torch.Generator().manual_seed(seed)
    for start in range(0, len(cond), batch_size):
        c = cond[start:start + batch_size].to(device)
        latent = generator.latent(len(c), rng)
        summaries = conditioning.draw_summaries(c, rng)
        yield generator({**latent, **conditioning.named(summaries)}, conditioning.real(c, summaries)), c


def sample_to_file(checkpoint_path, out, conditions: dict | np.ndarray, n_per_condition: int | None = None, *,
                   batch_size: int = 1024, device: str = "auto", seed: int = 0, refine_sweeps: int = 0, root=None,
                   force: bool = False, quiet: bool = False) -> dict:
    """Write generated samples to `out` (and to a ROOT file `root` where the system has that format).

    conditions: raw conditions (k, n_cond), each sampled n_per_condition times, or the system's sampling
    options (Ising {"T": "2.0,3.0", "n": 1000}; jets {"class": "wprime,qcd", "pt": "250:300", "n": 1000}),
    which say both. refine_sweeps: K sweeps of the system's exact refinement (system.refine) after
    generation, each batch's random streams named by (seed, 1, batch number), so a file reproduces from
    its seed and batch size. Returns timing numbers (samples per second of the whole write, refinement
    included, its own seconds, and the device; scripts/bench_sampling.py times the generator alone).
    """
    from physgan.errors import UserError
    from physgan.io import SampleWriter, open_samples, provenance
    from physgan.progress import progress_bar

    checkpoint = checkpoints.load(checkpoint_path)
    device = torch_device(device)
    system, generator = checkpoints.generator(checkpoint, device)
    if isinstance(conditions, dict):
        _refuse_other_systems_conditions(system, conditions)
        conditions, n_per_condition = system.generative.parse_conditions(conditions)
    if n_per_condition < 1 or batch_size < 1:
        raise UserError("--n and --batch-size must be at least 1")
    if refine_sweeps < 0 or (refine_sweeps > 0 and getattr(system, "refine", None) is None):
        raise UserError(f"--refine-sweeps {refine_sweeps}: " + ("must be >= 0" if refine_sweeps < 0 else
                        f"the {system.NAME} system has no exact refinement"))
    write_root = getattr(system, "write_root", None) if root else None
    if root and write_root is None:
        raise UserError(f"--root: the {system.NAME} system has no ROOT format")
    _warn_outside_training_range(checkpoint, conditions)
    cond = torch.from_numpy(np.repeat(conditions, n_per_condition, axis=0)).float()
    prov = provenance({"checkpoint": str(checkpoint_path), "step": checkpoint["step"], "n_per_condition": n_per_condition,
                       "batch_size": batch_size, "seed": seed, "device": str(device),
                       "refine": {"sweeps": refine_sweeps, "algorithm": system.refine.algorithm} if refine_sweeps
                       else None,
                       "training": checkpoint["config"], "network": checkpoint["network"]})
    started, refining = time.perf_counter(), 0.0
    with SampleWriter(out, system=system.NAME, source="gan", provenance=prov, force=force) as writer, \
            progress_bar(total=len(cond), desc="sampling", quiet=quiet) as bar:
        for batch, (x, c) in enumerate(generate(generator, checkpoint, cond, batch_size=batch_size, device=device,
                                                seed=seed)):
            arrays = system.generative.to_arrays(x, c)
            if refine_sweeps:
                begun = time.perf_counter()
                arrays = system.refine(arrays, refine_sweeps, (seed, 1, batch), device=str(device))
                refining += time.perf_counter() - begun
            writer.append(**arrays)
            bar.update(len(c))
    seconds = time.perf_counter() - started
    if write_root is not None:
        try:
            write_root(open_samples(out), root, force=force)
        except BaseException:
            Path(out).unlink(missing_ok=True)  # both outputs or neither
            raise
    return {"n": len(cond), "seconds": seconds, "per_second": len(cond) / seconds, "refine_seconds": refining,
            "device": str(device)}


def _warn_outside_training_range(checkpoint: dict, conditions: np.ndarray) -> None:
    low, high = np.array(checkpoint["condition_low"]), np.array(checkpoint["condition_high"])
    outside = np.any((conditions < low) | (conditions > high), axis=1)
    if outside.any():
        print(f"physgan: warning: {outside.sum()} requested condition(s) lie outside the training range "
              f"{low.tolist()} .. {high.tolist()}: the generator extrapolates there", file=sys.stderr)


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
