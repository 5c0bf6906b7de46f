"""Speed of the Ising Monte Carlo kernels (physgan.systems.ising.kernels).

Prints the hardware, then per L and T: checkerboard Metropolis attempted flips per ns for every
available backend (C, torch CPU, torch CUDA), and Wolff clusters per second and spins flipped per ns.
Each number is a rate over runs of at least --seconds, after a short burn-in at that temperature.

    python scripts/bench_ising_mc.py [--quick]
"""

import argparse
import os
import time

import numpy as np
import torch

from physgan.hardware import cpu_line
from physgan.systems.ising.kernels import Chains, compiled_kernels_available
from physgan.systems.ising.mc import IsingMCConfig, simulate

T_C = 2.269185314213022
TEMPERATURES = (2.0, T_C, 3.0)


def hardware() -> list[str]:
    """CPU model, core count, torch version and GPU, one line each."""
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    return [
        f"{cpu_line()}; OpenMP threads: {os.environ.get('OMP_NUM_THREADS', 'all')}",
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), GPU: {gpu}",
        f"compiled C kernel: {'yes' if compiled_kernels_available() else 'NO (reinstall physgan)'}",
    ]


def _timed(run, device: str, seconds: float, repeats: int = 3):
    """Calls run(k) with k = 1, 2, 4, ... until a call lasts `seconds`, then repeats that call;
    returns k and the duration and result of the fastest call (other load only slows a run down)."""
    k = 1
    while True:
        calls = [_time_call(run, k, device)]
        if calls[0][0] >= seconds:
            calls += [_time_call(run, k, device) for _ in range(repeats - 1)]
            return (k,) + min(calls, key=lambda call: call[0])
        k *= 2


def _time_call(run, k: int, device: str):
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = run(k)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, result


def metropolis_flips_per_ns(backend: str, device: str, L: int, T: float, n_chains: int, seconds: float) -> float:
    """Attempted spin flips per ns of checkerboard Metropolis."""
    chains = Chains.start(n_chains, L, np.random.SeedSequence(0), device=device, backend=backend)
    chains.metropolis(1 / T, 10)  # burn-in, and the first CUDA call's start-up cost
    sweeps, elapsed, _ = _timed(lambda k: chains.metropolis(1 / T, k), device, seconds)
    return n_chains * L * L * sweeps / elapsed / 1e9


def wolff_rates(L: int, T: float, n_chains: int, seconds: float) -> tuple[float, float, float]:
    """Wolff cluster flips per second, spins flipped per ns, and the mean cluster size / N."""
    chains = Chains.start(n_chains, L, np.random.SeedSequence(0))
    chains.wolff(1 / T, 50)  # burn-in: the first clusters of a cold start are too large above T_c
    clusters, elapsed, flipped = _timed(lambda k: chains.wolff(1 / T, k), "cpu", seconds)
    n = n_chains * clusters
    return n / elapsed, flipped.sum() / elapsed / 1e9, flipped.sum() / n / (L * L)


def independent_configurations_per_second(L: int, T: float, n: int, device: str = "cpu") -> tuple[float, str, int]:
    """Stored (independent, thinned to >= 2 tau_int) configurations per second of `physgan simulate`,
    everything included: thermalisation, the tau_int pilot, and the thinned production sweeps."""
    config = IsingMCConfig(L=L, temps=[T], n_per_temp=n, device=device)
    start = time.perf_counter()
    ((run, spins),) = list(simulate(config))
    return len(spins) / (time.perf_counter() - start), run.algorithm, run.thin


def metropolis_columns() -> list[tuple[str, str, str]]:
    """(column title, backend, device) of every Metropolis backend this machine has."""
    columns = [("C", "c", "cpu")] if compiled_kernels_available() else []
    columns.append(("torch CPU", "torch", "cpu"))
    if torch.cuda.is_available():
        columns.append(("torch CUDA", "torch", "cuda"))
    return columns


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs (under a minute in all)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64], help="lattice sizes L (default 32 64)")
    parser.add_argument("--chains", type=int, default=256, help="chains on the CPU (default 256)")
    parser.add_argument("--cuda-chains", type=int, default=16384, help="chains on a CUDA device")
    args = parser.parse_args(argv)
    seconds = 0.05 if args.quick else 0.5

    print("\n".join(hardware()))
    columns = metropolis_columns()
    header = ["L", "T"] + [f"Metropolis {title} flips/ns" for title, _, _ in columns]
    if compiled_kernels_available():
        header += ["Wolff clusters/s", "Wolff spins/ns", "<|C|>/N"]
    header += ["independent configs/s (algorithm, thin)"]
    print(" | ".join(header))
    for L in args.sizes:
        for T in TEMPERATURES:
            row = [f"{L}", f"{T:.4f}"]
            for _, backend, device in columns:
                n = args.cuda_chains if device == "cuda" else args.chains
                row.append(f"{metropolis_flips_per_ns(backend, device, L, T, n, seconds):.3f}")
            if compiled_kernels_available():
                clusters, spins, size = wolff_rates(L, T, args.chains, seconds)
                row += [f"{clusters:.3g}", f"{spins:.3f}", f"{size:.3f}"]
            rate, algorithm, thin = independent_configurations_per_second(L, T, 256 if args.quick else 4096)
            row.append(f"{rate:.0f} ({algorithm}, {thin})")
            print(" | ".join(row), flush=True)


if __name__ == "__main__":
    main()
