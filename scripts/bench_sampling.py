"""Generation speed of the WGANs against the Monte Carlo they replace.

Ising: for each L (default 16, 32, 64), temperature (default 2.0, T_c, 3.0) and batch size 256 ... 65536:
generated configurations per second (CPU; CUDA when available), without and with K refinement sweeps
(Metropolis at the lattice's T after generation, --refine-sweeps; the honest cost of a refined sample),
next to the Monte Carlo's independent (thinned) configurations per second at the same temperature
(everything included: thermalisation, tau_int pilot, thinned sweeps), and the speed-up.
Jets (--system jets): generated 25 x 25 images per second (in GeV, on the host) for the same batch sizes,
and per second with the image observables filled in (what `physgan sample` writes: mass, tau_N, delta R
through FastJet), next to physgan's Pythia 8 + FastJet Monte Carlo's ms per selected jet (measured here on
--mc-jets jets per class, one process), and the speed-ups.
The generator has the architecture of a preset (default: full) with untrained weights: its speed does not
depend on the weights. Batches whose activations would exceed --max-memory-gb are skipped.

    python scripts/bench_sampling.py [--quick] [--preset full] [--T 2.0 2.269 3.0] [--refine-sweeps 0 8]
    python scripts/bench_sampling.py --system jets [--quick] [--preset full] [--mc-jets 100]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_ising_mc import hardware, independent_configurations_per_second  # noqa: E402

from physgan.config import build  # noqa: E402
from physgan.pipeline import preset_path_values  # noqa: E402
from physgan.systems.ising import generative  # noqa: E402

BATCHES = (256, 1024, 4096, 16384, 65536)


def condition_inputs(system_conditions: int, train: dict) -> int:
    """The condition inputs a trained checkpoint of a preset's [train] table has: the system's own
    conditions (Ising: T; jets: class and pT), then the hierarchical summaries and the anchors."""
    return system_conditions + len(train.get("hierarchical", [])) + len(train.get("condition_anchors", []))


def generator_for(L: int, preset: str, device: str):
    train = preset_path_values("ising", preset)["train"]
    network = build(generative.NetworkConfig, train.get("network", {}))
    n_cond = condition_inputs(1, train)
    generator, _ = generative.make_networks((1, L, L), n_cond, network)
    return generator.to(device).eval(), network, n_cond


@torch.no_grad()
def generated_per_second(generator, n_cond: int, L: int, batch: int, device: str, seconds: float,
                         T: float = 2.269, sweeps: int = 0) -> float:
    """Lattices per second, including the +-1 int8 conversion, the copy to the host and `sweeps` refinement
    sweeps at T (the Ising system's refine, as `physgan sample --refine-sweeps` runs it)."""
    from physgan.systems.ising import refine_lattices

    rng = torch.Generator().manual_seed(0)
    cond = torch.zeros(batch, n_cond, device=device)
    latent = {**generator.latent(batch, rng), "abs_m": torch.rand(batch, generator=rng)}  # used if imposed

    def once():
        arrays = {**generative.to_arrays(generator(latent, cond), cond), "T": np.full(batch, T, np.float32)}
        return len(refine_lattices(arrays, sweeps, (0, 1, 0), device=device)["spins"])

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


def jets_generator(preset: str, device: str):
    from physgan.systems.jets import generative as jets

    train = preset_path_values("jets", preset)["train"]
    network = build(jets.NetworkConfig, train.get("network", {}))
    n_cond = condition_inputs(2, train)
    generator, _ = jets.make_networks((1, 25, 25), n_cond, network)
    return generator.to(device).eval(), n_cond


def adherence_steps(system: str, preset: str) -> int:
    """The steps of a preset's sample.adhere (0: it adheres to nothing)."""
    from physgan.pipeline import SampleConfig

    sample = build(SampleConfig, preset_path_values(system, preset).get("sample", {}))
    return sample.adherence_steps if sample.adhere else 0


@torch.no_grad()
def jet_images_per_second(generator, n_cond: int, batch: int, device: str, seconds: float,
                          observables: bool = False, adherence_steps: int = 0) -> float:
    """Images per second at alternating classes and pT 275 GeV (hierarchical summaries at the middle of
    their range); with `observables`, as `physgan sample` writes them (image observables included); with
    adherence_steps, each latent first moved that many steps towards a mass of 80 GeV (sample.adhere).
    A hierarchical preset's draw of the summaries from their quantile model is not timed."""
    from physgan.gan.adherence import adhere
    from physgan.systems.jets import generative as jets

    rng = torch.Generator().manual_seed(0)
    cond = torch.zeros(batch, n_cond)
    cond[:, 0] = torch.arange(batch) % 2 * 2.0 - 1
    cond = cond.to(device)
    # the drawn prong distance, used where the generator places the prong (network.place_prong)
    latent = {**generator.latent(batch, rng), "prong_distance": torch.full((batch,), 0.4)}
    mass = [jets.FEATURE_NAMES.index("mass")]

    def once():
        moved = adhere(generator, latent, cond, torch.full((batch, 1), 80.0), jets.physics_features, mass,
                       torch.tensor([30.0]), adherence_steps)
        t = generator(moved, cond)
        if observables:
            return len(jets.to_arrays(t, cond)["image"])
        return len(jets.to_intensity(t).cpu().numpy())

    once()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or done == 0:
        done += once()
    return done / (time.perf_counter() - start)


def jets_mc_ms_per_jet(n_per_class: int) -> float:
    """Wall ms per selected jet of physgan's jet Monte Carlo (both classes, one process, HDF5 output)."""
    import tempfile

    from physgan.systems.jets.mc import JetsMCConfig, write_file

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_file(Path(tmp) / "jets.h5", JetsMCConfig(n_per_class=n_per_class, seed=3), quiet=True)
        return 1000 * (time.perf_counter() - start) / (2 * n_per_class)


def jets_main(args, devices, seconds) -> None:
    from physgan.hardware import cpu_line

    print(cpu_line())
    mc_ms = jets_mc_ms_per_jet(args.mc_jets)
    print(f"generator: jets preset {args.preset}; Monte Carlo: {mc_ms:.1f} ms per jet ({args.mc_jets} per class, "
          "Pythia 8 + FastJet, 1 process)")
    steps = adherence_steps("jets", args.preset)
    print("device | batch | images/s | speed-up vs MC | with observables/s | speed-up"
          + (f" | with the preset's {steps} adherence steps/s | speed-up" if steps else ""))
    for device in devices:
        generator, n_cond = jets_generator(args.preset, device)
        for batch in BATCHES:
            rate = jet_images_per_second(generator, n_cond, batch, device, seconds)
            line = f"{device} | {batch} | {rate:.0f} | {rate * mc_ms / 1000:.3g}x"
            for steps_now in (0, steps) if steps else (0,):  # the observables' rate, then with adherence
                full = (jet_images_per_second(generator, n_cond, batch, device, seconds, observables=True,
                                              adherence_steps=steps_now) if batch <= 4096 else None)
                line += f" | {full:.0f} | {full * mc_ms / 1000:.3g}x" if full else " | - | -"
            print(line, flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--preset", default="full", help="preset whose network is timed (default full)")
    parser.add_argument("--T", type=float, nargs="+", default=[2.0, 2.269185314213022, 3.0],
                        help="temperatures of the comparison")
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--refine-sweeps", type=int, nargs="+", default=[0, 8], help="K of each generator row")
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    parser.add_argument("--max-memory-gb", type=float, default=4.0)
    parser.add_argument("--system", choices=["ising", "jets"], default="ising")
    parser.add_argument("--mc-jets", type=int, default=100, help="jets: Monte Carlo jets per class timed")
    args = parser.parse_args(argv)
    seconds = 0.5 if args.quick else 2.0
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if args.system == "jets":
        return jets_main(args, devices, seconds)
    print("\n".join(hardware()))
    print(f"generator: preset {args.preset}; Monte Carlo: physgan simulate at the same T")
    print("L | T | device | batch | K | generated (+ K sweeps)/s | MC independent/s (algorithm, thin) | speed-up")
    for L in args.sizes:
        for T in args.T:
            mc_rate, algorithm, thin = independent_configurations_per_second(L, T, 256 if args.quick else 2048)
            for device in devices:
                generator, network, n_cond = generator_for(L, args.preset, device)
                for batch in args.batches:
                    if device == "cpu" and activation_gb(network, L, batch) > args.max_memory_gb:
                        print(f"{L} | {T:.4g} | {device} | {batch} | - | skipped (> {args.max_memory_gb} GB)")
                        continue
                    for sweeps in args.refine_sweeps:
                        rate = generated_per_second(generator, n_cond, L, batch, device, seconds, T, sweeps)
                        print(f"{L} | {T:.4g} | {device} | {batch} | {sweeps} | {rate:.0f} | {mc_rate:.0f} "
                              f"({algorithm}, {thin}) | {rate / mc_rate:.2g}x", flush=True)


if __name__ == "__main__":
    main()
