"""The checkpoint: one file with a training run's networks, optimisers and what sampling needs.

The trainer writes it (pack, save), resume reads it back (unpack_into), sampling builds the generator and
its conditioning from it (generator, conditioning). This module is the only one that knows the layout, a
dict of tensors and plain values, so that torch.load(weights_only=True) reads it and no code runs:

    format                      "physgan-checkpoint-1"
    system                      the system's NAME
    step, best_score            generator steps taken; the best physics-monitor score so far
    config, network             the TrainConfig and the system's NetworkConfig, as mappings
    shape                       one stored sample's shape (e.g. [1, 32, 32])
    conditions                  the system's condition names
    condition_low, condition_high, summary, anchors
                                the networks' conditioning (Conditioning.state: training range of the
                                raw conditions, hierarchical summary model, anchor table)
    generator, generator_ema, critic, opt_generator, opt_critic
                                state dicts
"""
from __future__ import annotations

from pathlib import Path

import torch

from physgan.errors import UserError
from physgan.gan.conditioning import Conditioning

FORMAT = "physgan-checkpoint-1"
NETWORKS = ("generator", "generator_ema", "critic", "opt_generator", "opt_critic")  # state-dict entries


def pack(*, system, step: int, best_score: float, config: dict, network: dict, shape, conditioning: Conditioning,
         modules: dict) -> dict:
    """The checkpoint of a run; modules maps each name of NETWORKS to its network or optimiser."""
    return {"format": FORMAT, "system": system.NAME, "step": step, "best_score": best_score, "config": config,
            "network": network, "shape": list(shape), "conditions": list(system.CONDITIONS),
            **conditioning.state(), **{name: modules[name].state_dict() for name in NETWORKS}}


def save(checkpoint: dict, path) -> None:
    """Write atomically: a reader (or a crash) never sees half a checkpoint."""
    from physgan.io import atomic_output

    with atomic_output(path, force=True) as tmp:
        torch.save(checkpoint, tmp)


def load(path) -> dict:
    """A physgan checkpoint, read with weights_only=True; user errors for anything else."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or corrupt files
        raise UserError(f"{path}: not a readable physgan checkpoint ({type(exc).__name__})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise UserError(f"{path}: not a physgan checkpoint (no '{FORMAT}' marker)")
    return checkpoint


def unpack_into(checkpoint: dict, modules: dict) -> None:
    """Load the state dicts of NETWORKS into the run's networks and optimisers (resume)."""
    for name in NETWORKS:
        modules[name].load_state_dict(checkpoint[name])


def conditioning(checkpoint: dict) -> Conditioning:
    return Conditioning.from_state(checkpoint)


def generator(checkpoint: dict, device: torch.device):
    """The checkpoint's system and its (EMA) generator, in eval mode on device."""
    from physgan.config import build
    from physgan.systems import get_system

    system = get_system(checkpoint["system"], where="checkpoint")
    network = build(system.generative.NetworkConfig, checkpoint["network"], where="checkpoint network")
    made, _ = system.generative.make_networks(tuple(checkpoint["shape"]), conditioning(checkpoint).n_inputs, network)
    made.load_state_dict(checkpoint["generator_ema"])
    return system, made.to(device).eval()
