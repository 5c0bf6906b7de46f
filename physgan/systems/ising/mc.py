"""Ising Monte Carlo: independent equilibrium configurations at chosen temperatures.

Per temperature: start many independent chains ordered (each with a random overall sign: a hot start on a
torus can freeze into long-lived stripe states at low T), let them relax while measuring the integrated
autocorrelation time tau_int of |m| and e (Sokal's window, series averaged over chains), lengthening the
run until it covers >= 50 tau_int after >= 50 tau_int of thermalisation, then store one configuration per
chain every ceil(thin_factor * tau_int) sweeps. Each stored configuration also gets a random global spin
flip, an exact move of the Z2-symmetric Boltzmann weight, so both signs of m appear below T_c where no
local or cluster dynamics would tunnel between them on a large lattice.

Checkerboard Metropolis decorrelates slowly near T_c (z = 2.17, Nightingale & Bloete 1996), so `auto`
switches to Wolff cluster updates (Wolff, PRL 62, 361 (1989)) within `wolff_window` of T_c.
One Wolff "sweep" is a fixed number of cluster flips that flips about L^2 spins in total, so that tau_int
is in comparable units for both algorithms; the number is fixed after a first burst, never adapted
on the fly, because a data-dependent stopping rule would bias the stationary distribution.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from physgan.errors import UserError
from physgan.hardware import torch_device
from physgan.shards import shard_count, shard_seed
from physgan.stats import integrated_autocorrelation_time
from physgan.systems.ising.exact import critical_temperature
from physgan.systems.ising.observables import energy_per_site, magnetization

ALGORITHMS = ("auto", "metropolis", "wolff")
SERIES_POINTS = 2048  # measurements per pilot run; longer runs measure every few sweeps


@dataclass
class IsingMCConfig:
    """Ising Monte Carlo settings (a recipe in datasets/ is a TOML file of these)."""

    L: int = 32
    """lattice side; Metropolis needs it even"""
    temps: list[float] = field(default_factory=lambda: [2.0, critical_temperature(), 3.0])
    """temperatures, as a list or the strings "a,b,c" / "start:stop:count" """
    n_per_temp: int = 1000
    """stored configurations per temperature (summed over shards)"""
    algorithm: str = "auto"
    """metropolis, wolff, or auto (Wolff within wolff_window of T_c)"""
    seed: int = 0
    """root of numpy SeedSequence: shard i of N uses SeedSequence(seed).spawn(N)[i]"""
    chains: int = 64
    """independent chains per temperature"""
    device: str = "cpu"
    """cpu, cuda or auto (Metropolis only; Wolff runs on the CPU)"""
    wolff_window: float = 0.15
    """auto uses Wolff for |T/T_c - 1| < wolff_window"""
    thin_factor: float = 2.0
    """sweeps between stored configurations, in units of the measured tau_int (>= 2)"""
    min_sweeps: int = 256
    """shortest thermalisation and shortest pilot run, in sweeps"""
    max_sweeps: int = 1 << 20
    """longest thermalisation + pilot per temperature; beyond it tau_int is recorded as not converged"""

    def __post_init__(self):
        self.temps = [float(t) for t in self.temps]
        checks = [
            (self.L >= 2, f"L must be at least 2, got {self.L}"),
            (all(t > 0 and math.isfinite(t) for t in self.temps), "temperatures must be positive and finite"),
            (self.n_per_temp >= 1, f"n_per_temp must be at least 1, got {self.n_per_temp}"),
            (self.algorithm in ALGORITHMS, f"algorithm must be one of {', '.join(ALGORITHMS)}, got {self.algorithm!r}"),
            (self.chains >= 1, f"chains must be at least 1, got {self.chains}"),
            (self.device in ("cpu", "cuda", "auto"), f"device must be cpu, cuda or auto, got {self.device!r}"),
            (self.thin_factor >= 2.0, f"thin_factor must be >= 2 (independent draws), got {self.thin_factor}"),
            (self.seed >= 0, f"seed must be >= 0, got {self.seed}"),
            (1 <= self.min_sweeps <= self.max_sweeps, "need 1 <= min_sweeps <= max_sweeps"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)
        if self.algorithm == "metropolis" and not _metropolis_ok(self.L):
            raise UserError(f"L = {self.L}: checkerboard Metropolis needs an even L >= 4 (use --algorithm wolff)")


@dataclass
class TemperatureRun:
    """What the Monte Carlo did at one temperature (stored as a row of the file's `mc` table)."""

    T: float
    algorithm: str
    n: int
    tau_int_abs_m: float
    tau_int_abs_m_err: float
    tau_int_e: float
    tau_int_e_err: float
    thin: int
    thermalization_sweeps: int
    tau_converged: bool
    clusters_per_sweep: int


def _metropolis_ok(L: int) -> bool:
    # Odd L breaks the checkerboard; at L = 2 its sweeps trap the stripe states (zero local field
    # everywhere, so they flip back and forth deterministically): not ergodic.
    return L % 2 == 0 and L >= 4


def choose_algorithm(T: float, config: IsingMCConfig) -> str:
    if config.algorithm != "auto":
        return config.algorithm
    near_critical = abs(T / critical_temperature() - 1.0) < config.wolff_window
    return "wolff" if near_critical or not _metropolis_ok(config.L) else "metropolis"


def simulate(config: IsingMCConfig, shard: tuple[int, int] = (0, 1), progress=None):
    """Yield (TemperatureRun, spins int8 (n, L, L)) for each temperature of the configuration."""
    n = shard_count(config.n_per_temp, shard)
    for T, seed in zip(config.temps, shard_seed(config.seed, shard).spawn(len(config.temps))):
        run, spins = simulate_temperature(T, n, config, seed)
        if progress is not None:
            progress.update(1)
        yield run, spins


def simulate_temperature(T: float, n: int, config: IsingMCConfig, seed: np.random.SeedSequence):
    from physgan.systems.ising.kernels import Chains

    algorithm, beta = choose_algorithm(T, config), 1.0 / T
    kernel_seed, move_seed = seed.spawn(2)
    rng = np.random.default_rng(move_seed)
    n_chains = min(config.chains, n) if n else 1
    chains = Chains.start(n_chains, config.L, kernel_seed, signs=rng.choice(np.array([-1, 1], np.int8), n_chains),
                          device=torch_device(config.device).type if algorithm == "metropolis" else "cpu")
    sweep, clusters = _sweeper(chains, algorithm, beta, config.L)
    tau_m, tau_e, sweeps, converged = _equilibrate(chains, sweep, config)
    thin = max(1, math.ceil(config.thin_factor * max(tau_m[0], tau_e[0])))
    spins = np.empty((n, config.L, config.L), dtype=np.int8)
    for start in range(0, n, n_chains):
        sweep(thin)
        chains.flip(rng.random(n_chains) < 0.5)
        stop = min(n, start + n_chains)
        spins[start:stop] = chains.spins[: stop - start]
    run = TemperatureRun(T=T, algorithm=algorithm, n=n, tau_int_abs_m=tau_m[0], tau_int_abs_m_err=tau_m[1],
                         tau_int_e=tau_e[0], tau_int_e_err=tau_e[1], thin=thin, thermalization_sweeps=sweeps,
                         tau_converged=converged, clusters_per_sweep=clusters)
    return run, spins


def _sweeper(chains, algorithm: str, beta: float, L: int):
    """A function advancing every chain by k sweeps, and the Wolff clusters per sweep (0 for Metropolis)."""
    if algorithm == "metropolis":
        return (lambda k: chains.metropolis(beta, k)), 0
    chains.wolff(beta, 16)  # relax from the ordered start before measuring the mean cluster size
    burst = 64
    mean_cluster = chains.wolff(beta, burst).sum() / (burst * chains.n_chains)
    clusters = max(1, round(L * L / mean_cluster))
    return (lambda k: chains.wolff(beta, clusters * k)), clusters


def _equilibrate(chains, sweep, config: IsingMCConfig):
    """Thermalise and measure tau_int of |m| and e, doubling the run until it is long enough.

    Each round runs S sweeps of thermalisation and then a pilot of S sweeps whose |m| and e series give
    tau_int; it ends when the pilot covers >= 50 tau_int (so the thermalisation before it did too) and
    Sokal's window closed. Returns ((tau_m, err), (tau_e, err), sweeps spent, converged).
    """
    S, spent = config.min_sweeps, 0
    while True:
        sweep(S)
        stride = max(1, S // SERIES_POINTS)
        abs_m, e = [], []
        for _ in range(S // stride):
            sweep(stride)
            spins = chains.spins
            abs_m.append(np.abs(magnetization(spins)))
            e.append(energy_per_site(spins))
        spent += 2 * S
        tau_m = integrated_autocorrelation_time(np.array(abs_m))
        tau_e = integrated_autocorrelation_time(np.array(e))
        converged = tau_m[2] and tau_e[2]  # each series >= 50 tau_int long, window closed
        if converged or 4 * S + spent > config.max_sweeps:
            scaled = lambda t: (stride * t[0], stride * t[1])
            return scaled(tau_m), scaled(tau_e), spent, bool(converged)
        S *= 2


def write_file(path, config: IsingMCConfig, shard: tuple[int, int] = (0, 1), *, force=False, quiet=False) -> int:
    """Run the Monte Carlo and write a physgan sample file (atomically). Returns the number stored. The
    provenance records the call's wall time (wall_s)."""
    from physgan.io import SampleWriter, provenance
    from physgan.progress import progress_bar
    from physgan.systems.ising.kernels import compiled_kernels_available

    started = time.perf_counter()
    settings = {"seed_sequence": f"SeedSequence({config.seed}).spawn({shard[1]})[{shard[0]}]",
                "metropolis_backend": "c" if compiled_kernels_available() and torch_device(config.device).type == "cpu"
                else "torch"}
    prov = provenance(asdict(config), shard=f"{shard[0]}/{shard[1]}", generator=settings)
    runs = []
    with SampleWriter(path, system="ising", source="mc", provenance=prov, force=force) as writer, \
            progress_bar(total=len(config.temps), desc="temperatures", quiet=quiet) as bar:
        for run, spins in simulate(config, shard, progress=bar):
            writer.append(spins=spins, T=np.full(len(spins), run.T, dtype=np.float32))
            runs.append(run)
        writer.add_table("mc", {key: [asdict(r)[key] for r in runs] for key in asdict(runs[0])})
        prov["wall_s"] = round(time.perf_counter() - started, 3)
    return sum(r.n for r in runs)


def data_mismatch(samples, config: IsingMCConfig, section: str) -> str | None:
    """interface.System.data_mismatch: a file given to `physgan run` must hold lattices of the preset's L (its
    temperatures and counts are its own)."""
    shape = samples.fields["spins"][0]
    if tuple(shape) != (config.L, config.L):
        side = " x ".join(str(n) for n in shape)
        return (f"lattices of {side} spins, but the preset's {section}.L is {config.L} "
                f"(give a file of L = {config.L}, or --set {section}.L={shape[0]})")
    return None
