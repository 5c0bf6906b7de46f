"""The machine: which torch device a command runs on, and what a benchmark ran on (for the numbers it prints)."""
from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def cpu_line() -> str:
    """CPU model, cores and the load average (other jobs slow a benchmark down: say so)."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"CPU: {cpu_model()}, {os.cpu_count()} cores; load average (1, 5, 15 min): {load}"


def torch_device(device: str, rank: int = 0):
    """The torch device for --device cpu, cuda or auto (cuda where present); a process of a multi-GPU
    run (rank) takes its own GPU. A missing GPU asked for by name is a user error."""
    import torch

    from physgan.errors import UserError

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available here (use --device cpu or auto)")
        return torch.device("cuda", rank % torch.cuda.device_count())
    return torch.device("cpu")
