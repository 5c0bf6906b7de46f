"""Boosted jets as images: Pythia 8 + FastJet Monte Carlo in the LAGAN setup (arXiv:1701.05927), the jet
formats users already have (LAGAN and JetNet HDF5, EnergyFlow .npz, ROOT), and jet observables.

Importing this package loads numpy only; Pythia, FastJet, awkward, uproot and EnergyFlow are imported by
the functions that need them.
"""
from physgan.systems.jets.fidelity import FidelityConfig, fidelity_report
from physgan.systems.jets.formats import CONDITIONS, FIELD_TYPES, read_foreign, write_root
from physgan.systems.jets.mc import JetsMCConfig as SimulationConfig
from physgan.systems.jets.mc import write_file as simulate_to_file
from physgan.systems.jets.observables import observables_report

NAME = "jets"
DATA_FIELDS = tuple(FIELD_TYPES)  # LAGAN's datasets: image, signal, jet_pt, ..., tau_32

__all__ = ["NAME", "CONDITIONS", "DATA_FIELDS", "FidelityConfig", "SimulationConfig", "fidelity_report",
           "observables_report", "read_foreign", "simulate_to_file", "write_root"]


def __getattr__(name):
    # The GAN adapter and the validation plug-in need torch: load them on first use.
    if name in ("generative", "validation"):
        import importlib

        return importlib.import_module(f"physgan.systems.jets.{name}")
    raise AttributeError(name)
