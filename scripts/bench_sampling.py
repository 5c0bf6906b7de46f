"""Generation speed of the Ising WGAN against the Monte Carlo it replaces.

For L = 32 and 64 and batch sizes 256 ... 65536: generated configurations per second (CPU; CUDA when
available), next to the Monte Carlo's independent (thinned) configurations per second at the same
temperature (everything included: thermalisation, tau_int pilot, thinned sweeps), and the speed-up.
The generator has the architecture of a preset (default: full) with untrained weights: its speed does not
depend on the weights. Batches whose activations would exceed --max-memory-gb are skipped.

    python scripts/bench_sampling.py [--quick] [--preset full] [--T 2.269]
"""
import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_ising_mc import hardware, independent_configurations_per_second  # noqa: E402

from physgan.config import build  # noqa: E402
from physgan.pipeline import preset_path_values  # noqa: E402
from physgan.systems.ising import generative  # noqa: E402

BATCHES = (256, 1024, 4096, 16384, 65536)


def generator_for(L: int, preset: str, device: str):
    network = build(generative.NetworkConfig, preset_path_values("ising", preset)["train"].get("network", {}))
    generator, _ = generative.make_networks((1, L, L), 1, network)
    return generator.to(device).eval(), network


@torch.no_grad()
def generated_per_second(generator, L: int, batch: int, device: str, seconds: float) -> float:
    """Lattices per second, including the +-1 int8 conversion and the copy to the host."""
    rng = torch.Generator().manual_seed(0)
    cond = torch.zeros(batch, 1, device=device)
    latent = generator.latent(batch, rng)

    def once():
        spins = generative.to_arrays(generator(latent, cond), cond)["spins"]
        return len(spins)

    once()  # warm-up (CUDA kernels, allocator)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or done == 0:
        done += once()
    if device == "cuda":
        torch.cuda.synchronize()
    return done / (time.perf_counter() - start)


def activation_gb(network, L: int, batch: int) -> float:
    """Rough peak activation memory of one generator call (a few live feature maps of float32)."""
    return 4 * batch * max(network.channels, 1) * L * L * 4 / 1e9


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--preset", default="full", help="preset whose network is timed (default full)")
    parser.add_argument("--T", type=float, default=2.269185314213022, help="temperature of the comparison")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--max-memory-gb", type=float, default=4.0)
    args = parser.parse_args(argv)
    seconds = 0.5 if args.quick else 2.0
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print("\n".join(hardware()))
    print(f"generator: preset {args.preset}; Monte Carlo: physgan simulate at T = {args.T:.4f}")
    print("L | device | batch | generated/s | MC independent/s (algorithm, thin) | speed-up")
    for L in args.sizes:
        mc_rate, algorithm, thin = independent_configurations_per_second(L, args.T, 256 if args.quick else 2048)
        for device in devices:
            generator, network = generator_for(L, args.preset, device)
            for batch in BATCHES:
                if device == "cpu" and activation_gb(network, L, batch) > args.max_memory_gb:
                    print(f"{L} | {device} | {batch} | skipped (> {args.max_memory_gb} GB of activations)")
                    continue
                rate = generated_per_second(generator, L, batch, device, seconds)
                print(f"{L} | {device} | {batch} | {rate:.0f} | {mc_rate:.0f} ({algorithm}, {thin}) | "
                      f"{rate / mc_rate:.2g}x", flush=True)


if __name__ == "__main__":
    main()
