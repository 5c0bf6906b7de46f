"""The 2D Ising model on an L x L torus (J = 1, k_B = 1): Monte Carlo, exact results, observables."""
import sys

from physgan.systems import lazy_submodules, register
from physgan.systems.interface import Option
from physgan.systems.ising.formats import read_foreign
from physgan.systems.ising.mc import IsingMCConfig as SimulationConfig
from physgan.systems.ising.mc import data_mismatch
from physgan.systems.ising.mc import write_file as simulate_to_file
from physgan.systems.ising.observables import FidelityConfig, fidelity_report, observables_report
from physgan.systems.ising.refine import refine as refine_lattices

NAME = "ising"
CONDITIONS = ("T",)
DATA_FIELDS = ("spins",)
READER_ORDER = 20  # after jets: the .npz reader takes any array named X (or spins, configs, ...)
SIMULATE_OPTIONS = (
    Option("--L", "L", "lattice side (default 32)", type=int),
    Option("--temps", "temps", "temperatures: 2.0,2.269,3.0 or start:stop:count"),
    Option("--n-per-temp", "n_per_temp", "configurations per temperature (default 1000)", type=int),
    Option("--algorithm", "algorithm", "update algorithm (default auto)", choices=("auto", "metropolis", "wolff")),
    Option("--chains", "chains", "independent chains per temperature (default 64)", type=int),
)
SAMPLE_OPTIONS = (Option("--T", "T", "Ising temperatures: 1.8,2.269,3.0 or start:stop:count"),)
write_root = None  # Ising samples are HDF5 only
refine = refine_lattices  # Metropolis sweeps and Wolff clusters at each lattice's T (refine.py)

# The GAN adapter and the validation plug-in need torch: loaded on first use, so reading files and --help
# stay light.
__getattr__ = lazy_submodules(__name__)
register(sys.modules[__name__])
