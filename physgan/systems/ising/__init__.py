"""The 2D Ising model on an L x L torus (J = 1, k_B = 1): Monte Carlo, exact results, observables."""
from physgan.systems.ising.formats import read_foreign
from physgan.systems.ising.mc import IsingMCConfig as SimulationConfig
from physgan.systems.ising.mc import write_file as simulate_to_file
from physgan.systems.ising.observables import FidelityConfig, fidelity_report, observables_report

NAME = "ising"
CONDITIONS = ("T",)
DATA_FIELDS = ("spins",)

__all__ = ["NAME", "CONDITIONS", "DATA_FIELDS", "FidelityConfig", "SimulationConfig", "fidelity_report", "observables_report",
           "read_foreign", "simulate_to_file"]


def __getattr__(name):
    # The GAN adapter and the validation plug-in need torch: load them on first use, so reading files and
    # --help stay light.
    if name in ("generative", "validation"):
        import importlib

        return importlib.import_module(f"physgan.systems.ising.{name}")
    raise AttributeError(name)
