"""A toy system that lives in the tests: independent Gaussian "lattices" (N, 1, 8, 8), every site drawn from
Normal(0, width^2), conditioned on the width. Its distribution is known exactly: the mean of x^2 over a
sample's 64 sites has expectation width^2 and variance 2 width^4 / 64.

It implements physgan.systems.interface.System in one folder without touching physgan/, the worked example
of docs/architecture.md, "Adding a system": tests/test_third_system.py imports it (which registers it) and
runs it through the command line.
"""
import math
import sys
from dataclasses import asdict, dataclass, field

import numpy as np

from physgan.errors import UserError
from physgan.systems import lazy_submodules, register
from physgan.systems.interface import Option

NAME = "toy"
CONDITIONS = ("width",)
DATA_FIELDS = ("x",)
READER_ORDER = 30  # it reads no foreign files
SIDE = 8  # sites per row of a sample
SIMULATE_OPTIONS = (
    Option("--widths", "widths", "toy: Gaussian widths, 0.5,1.0 or start:stop:count"),
    Option("--n-per-width", "n_per_width", "toy: samples per width (default 100)", type=int),
)
SAMPLE_OPTIONS = (Option("--width", "width", "toy: Gaussian widths, 0.5,1.0 or start:stop:count"),)
write_root = None
refine = None


@dataclass
class SimulationConfig:
    """The toy's "Monte Carlo": independent draws."""

    widths: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0])
    """the conditions: standard deviations of the sites"""
    n_per_width: int = 100
    """samples per width (summed over shards)"""
    seed: int = 0
    """root of numpy SeedSequence: shard i of N uses SeedSequence(seed).spawn(N)[i]"""

    def __post_init__(self):
        if self.n_per_width < 1:
            raise UserError(f"n_per_width must be at least 1, got {self.n_per_width}")


@dataclass
class FidelityConfig:
    """A run's acceptance test: the generated mean x^2 at each width within max_pull standard errors of the
    reference's."""

    max_pull: float = 5.0


def mean_square(x: np.ndarray) -> np.ndarray:
    """Mean of x^2 over each sample's sites: (n, ...) -> (n,) float64."""
    return np.square(x.astype(np.float64)).reshape(len(x), -1).mean(axis=1)


def exact_mean_square(width: float) -> tuple[float, float]:
    """Expectation and standard deviation of mean_square for one sample at `width`: width^2 and
    width^2 sqrt(2 / sites) (x^2 / width^2 is chi-squared with one degree of freedom: variance 2)."""
    return width**2, width**2 * math.sqrt(2 / SIDE**2)


def per_width(samples) -> dict[float, np.ndarray]:
    """mean_square of every sample, grouped by width."""
    width, x2 = samples.read("width"), mean_square(samples.read("x"))
    return {float(w): x2[width == w] for w in np.unique(width)}


def read_foreign(path: str, kind: str, allow_pickle: bool):
    """The toy has no file formats but its own: no foreign file is a toy file."""
    return None


def simulate_to_file(path, config: SimulationConfig, shard: tuple[int, int] = (0, 1), *, force: bool = False,
                     quiet: bool = False) -> int:
    """Draw the samples into a physgan sample file; returns how many were stored. The provenance records the
    call's wall time (wall_s)."""
    import time

    from physgan.io import SampleWriter, provenance
    from physgan.shards import shard_count, shard_seed

    started = time.perf_counter()
    rng = np.random.default_rng(shard_seed(config.seed, shard))
    n = shard_count(config.n_per_width, shard)
    prov = provenance(asdict(config), shard=f"{shard[0]}/{shard[1]}")
    with SampleWriter(path, system=NAME, source="mc", provenance=prov, force=force) as writer:
        for width in config.widths:
            writer.append(x=(width * rng.standard_normal((n, 1, SIDE, SIDE))).astype(np.float32),
                          width=np.full(n, width, np.float32))
        prov["wall_s"] = time.perf_counter() - started
    return n * len(config.widths)


def data_mismatch(samples, config: SimulationConfig, section: str) -> str | None:
    """A file given to `physgan run` must hold samples of the toy's shape (its widths are its own)."""
    shape = tuple(samples.fields["x"][0])
    if shape != (1, SIDE, SIDE):
        return f"samples of shape {shape}, but the toy's are {(1, SIDE, SIDE)}"
    return None


def _pulls(samples) -> list[tuple[float, int, float, float]]:
    """Per width: (width, n, mean of mean_square, its pull against the exact value with the exact error)."""
    rows = []
    for width, x2 in per_width(samples).items():
        expected, spread = exact_mean_square(width)
        rows.append((width, len(x2), x2.mean(), (x2.mean() - expected) / (spread / math.sqrt(len(x2)))))
    return rows


def observables_report(samples) -> str:
    """Mean x^2 per width next to its exact value."""
    from physgan.textable import format_table

    rows = [[f"{w:g}", str(n), f"{mean:.4g}", f"{w * w:.4g}", f"{pull:+.2f}"] for w, n, mean, pull in _pulls(samples)]
    return format_table(["width", "n", "<x^2>", "exact", "pull"], rows)


def fidelity_report(reference, generated, fidelity: FidelityConfig, metrics: dict | None = None):
    """Generated against reference mean x^2 per width, in standard errors of the difference."""
    results = []
    for (width, ref), gen in zip(per_width(reference).items(), per_width(generated).values()):
        pull = (gen.mean() - ref.mean()) / math.hypot(ref.std() / math.sqrt(len(ref)), gen.std() / math.sqrt(len(gen)))
        results.append({"width": width, "pull": pull, "pass": bool(abs(pull) <= fidelity.max_pull)})
    text = "\n".join(f"width {r['width']:g}: pull {r['pull']:+.2f} {'pass' if r['pass'] else 'FAIL'}" for r in results)
    checks = [{"check": f"mean x^2 at width {r['width']:g} (preset)", "measured": f"pull {r['pull']:+.2f}",
               "threshold": f"|pull| <= {fidelity.max_pull:g}", "pass": r["pass"]} for r in results]
    return text, {"pass": all(r["pass"] for r in results), "per_width": results, "checks": checks}


__getattr__ = lazy_submodules(__name__)
register(sys.modules[__name__])
