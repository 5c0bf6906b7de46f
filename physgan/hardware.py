"""What machine a benchmark ran on, for the numbers it prints (README's performance table cites them)."""
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
