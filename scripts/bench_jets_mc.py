"""Speed of the jet Monte Carlo (physgan.systems.jets.mc): where the time per selected jet goes.

Prints the hardware and load, then
1. ms of CPU per selected jet, split into Pythia (initialisation + event generation, including pythia8mc's
   conversion of the event record to awkward arrays), clustering and observables (calorimeter cells,
   anti-kT, trimming, selection, tau_N), imaging, and I/O (HDF5 + ROOT writing and everything else
   outside the tasks); FastJet's own share (its awkward interface and C++) is measured by wrapping it;
   physgan's overhead = total - Pythia - FastJet, as a fraction of the total;
   and the sample's per-class summary (`physgan observables`);
2. parallel efficiency of --workers 2: wall time with 1 worker / (2 x wall time with 2 workers), same jets
   (meaningful only with 2 idle cores), and the CPU time both runs spend (load-independent).

    python scripts/bench_jets_mc.py [--n-per-class 500] [--quick]
"""

import argparse
import functools
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from physgan.hardware import cpu_line
from physgan.io import open_samples, provenance
from physgan.systems.jets import mc, observables_report


def hardware() -> list[str]:
    return [cpu_line(), f"versions: {mc.generator_settings(mc.JetsMCConfig(), (0, 1))['versions']}"]


class FastJetClock:
    """Accumulates the CPU time spent inside FastJet's awkward interface (C++ clustering included)."""

    METHODS = ("__init__", "inclusive_jets", "constituent_index", "njettiness")

    def __init__(self):
        import fastjet._pyjet

        self.seconds = 0.0
        cls = fastjet._pyjet.AwkwardClusterSequence
        for name in self.METHODS:
            setattr(cls, name, self._timed(getattr(cls, name)))

    def _timed(self, method):
        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            start = time.process_time()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds += time.process_time() - start
        return wrapper


def breakdown(n_per_class: int, directory: Path) -> dict[str, float]:
    """CPU ms per selected jet by stage, from one single-worker run writing HDF5 and ROOT."""
    provenance()  # import torch and h5py now, so that their start-up is not counted as I/O
    clock = FastJetClock()
    config = mc.JetsMCConfig(n_per_class=n_per_class, seed=1)
    start = time.process_time()
    n = mc.write_file(directory / "bench.h5", config, quiet=True, root=directory / "bench.root", force=True)
    total = time.process_time() - start
    table = open_samples(directory / "bench.h5").tables["mc"]
    stage = {s: float(np.sum(table[f"{s}_cpu_s"])) for s in mc.STAGES}
    ms = {"Pythia": stage["init"] + stage["pythia"],
          "clustering and observables": stage["clustering"] + stage["observables"], "imaging": stage["imaging"]}
    ms["I/O and bookkeeping"] = total - sum(ms.values())
    ms = {k: 1e3 * v / n for k, v in ms.items()}
    ms["total"] = 1e3 * total / n
    ms["of which FastJet"] = 1e3 * clock.seconds / n
    ms["events per jet"] = float(np.sum(table["events"])) / n
    for name in ("wprime", "qcd"):
        rows = table["class"] == name
        ms[f"events per {name} jet"] = float(np.sum(table["events"][rows]) / np.sum(table["jets"][rows]))
    return ms


def pythia_conversion_ms(n_events: int = 200) -> tuple[float, float]:
    """ms per QCD event: Pythia's next() alone, and nextBatch() (which also builds the awkward record)."""
    config = mc.JetsMCConfig()
    settings = mc.pythia_settings(config, "qcd")
    pythia = mc._start_pythia(settings, 5)
    start = time.process_time()
    for _ in range(n_events):
        pythia.next()
    plain = time.process_time() - start
    pythia = mc._start_pythia(settings, 5)  # the same events again, batched
    start = time.process_time()
    pythia.nextBatch(n_events)
    batched = time.process_time() - start
    return 1e3 * plain / n_events, 1e3 * batched / n_events


def run_cost(n_per_class: int, workers: int, path: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (this process and its worker processes) of one `simulate` run."""
    def cpu():
        return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                       resource.getrusage(resource.RUSAGE_CHILDREN)))

    cpu_start, start = cpu(), time.perf_counter()
    mc.write_file(path, mc.JetsMCConfig(n_per_class=n_per_class, seed=2, workers=workers), quiet=True, force=True)
    return time.perf_counter() - start, cpu() - cpu_start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-per-class", type=int, default=500, help="jets per class per run (default 500)")
    parser.add_argument("--quick", action="store_true", help="60 jets per class, no parallel run")
    args = parser.parse_args(argv)
    n = 60 if args.quick else args.n_per_class

    print("\n".join(hardware()))
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        ms = breakdown(n, directory)
        print(f"\nCPU ms per selected jet ({2 * n} jets, W' + QCD, 250-300 GeV, 1 worker, HDF5 + ROOT):")
        for name, value in ms.items():
            print(f"  {name:<28} {value:8.2f}" if "events" not in name else f"  {name:<28} {value:8.1f}")
        print(observables_report(open_samples(directory / "bench.h5")))
        overhead = ms["total"] - ms["Pythia"] - ms["of which FastJet"]
        print(f"  physgan overhead beyond Pythia + FastJet: {overhead:.2f} ms "
              f"= {100 * overhead / ms['total']:.1f} % of the total")
        plain, batched = pythia_conversion_ms()
        print(f"  Pythia per QCD event: next() {plain:.2f} ms, nextBatch() {batched:.2f} ms "
              f"(the awkward event record: {100 * (batched - plain) / batched:.0f} % of Pythia's time)")
        if not args.quick:
            (one, cpu_one), (two, cpu_two) = (run_cost(n, w, directory / f"w{w}.h5") for w in (1, 2))
            print(f"\n--workers 2: wall {one:.1f} s with 1 worker, {two:.1f} s with 2: "
                  f"parallel efficiency {100 * one / (2 * two):.0f} % (needs 2 idle cores; "
                  f"load average now {', '.join(f'{x:.2f}' for x in os.getloadavg())})")
            print(f"CPU {cpu_one:.1f} s with 1 worker, {cpu_two:.1f} s with 2 (worker start-up included): "
                  f"CPU efficiency {100 * cpu_one / cpu_two:.0f} %")


if __name__ == "__main__":
    main()
