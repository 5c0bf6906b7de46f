"""Time and peak memory of a validation: 1e6 vs 1e6 Ising configurations, L = 32, classifier included.

The data are two genuine, independent Monte Carlo samples (physgan.systems.ising.mc with the compiled
kernels; seeds 1 and 2), n/7 configurations at each of 7 temperatures from 1.8 to 3.0 including T_c. They
are simulated in a child process, so that the peak memory printed is that of the validation alone, into
--workdir (and reused from there on the next run) or a temporary directory. Then validate() runs as
`physgan validate` would, with the classifier, and the script prints wall time, peak resident memory
(getrusage), the load average before and after (other jobs share the machine), the hardware and the verdict
(an honest comparison: it should pass).

    python scripts/bench_validate.py [--n 1000000] [--quick] [--workdir DIR]

Target (the issue): under 2 minutes and under 4 GiB on the 2-core development machine.
"""
import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from bench_ising_mc import hardware  # this directory is on sys.path when the script runs

TEMPERATURES = (1.8, 2.0, 2.2, 2.269, 2.4, 2.6, 3.0)
L = 32


def simulate(path: Path, n: int, seed: int) -> None:
    from physgan.systems.ising import mc

    config = mc.IsingMCConfig(L=L, temps=list(TEMPERATURES), n_per_temp=n // len(TEMPERATURES), seed=seed, chains=256)
    mc.write_file(path, config, quiet=True)


def sample_files(workdir: Path, n: int) -> tuple[Path, Path]:
    """Reference and generated files for n configurations each; simulated in a child process if missing."""
    paths = tuple(workdir / f"ising_L{L}_n{n}_seed{seed}.h5" for seed in (1, 2))
    for seed, path in zip((1, 2), paths):
        if not path.exists():
            start = time.perf_counter()
            child = multiprocessing.get_context("spawn").Process(target=simulate, args=(path, n, seed))
            child.start()
            child.join()
            if child.exitcode != 0:
                sys.exit(f"simulation of {path} failed")
            print(f"simulated {path.name} in {time.perf_counter() - start:.0f} s", flush=True)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=float, default=1e6, help="configurations per file (default 1e6)")
    parser.add_argument("--quick", action="store_true", help="n = 1e5")
    parser.add_argument("--workdir", type=Path, help="keep the sample files here and reuse them")
    args = parser.parse_args()
    n = int(1e5 if args.quick else args.n)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        reference, generated = sample_files(workdir, n)

        from physgan.validation.validate import validate

        load_before = os.getloadavg()
        start = time.perf_counter()
        metrics = validate(reference, generated, Path(tmp) / "report", quiet=True)
        seconds = time.perf_counter() - start
        load_after = os.getloadavg()
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: kB
    worst = max(metrics["observables"].items(), key=lambda item: item[1]["worst_ratio"])
    print("\n".join(hardware()))
    print(f"validate: {n} vs {n} Ising configurations, L = {L}, {len(TEMPERATURES)} temperatures, classifier on "
          f"{metrics['classifier']['n_per_class']} per class")
    print(f"wall time {seconds:.1f} s, peak memory {peak_gib:.2f} GiB (target: < 120 s, < 4 GiB)")
    print(f"load average (1 min) before {load_before[0]:.1f}, after {load_after[0]:.1f} on {os.cpu_count()} cores")
    classifier = metrics["classifier"]
    print(f"verdict {metrics['verdict']}; worst W1/floor {worst[1]['worst_ratio']:.2f} ({worst[0]} at "
          f"{worst[1]['worst_condition']}); AUC {classifier['auc']:.3f} ± {classifier['auc_err']:.3f}; "
          f"Fuerrutter D {metrics['ising']['fuerrutter_distance']['D']:.2f}")


if __name__ == "__main__":
    main()
