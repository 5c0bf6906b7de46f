"""Boosted jets as images: Pythia 8 + FastJet Monte Carlo in the LAGAN setup (arXiv:1701.05927), the jet
formats users already have (LAGAN and JetNet HDF5, EnergyFlow .npz, ROOT), and jet observables.

Importing this package loads numpy only; Pythia, FastJet, awkward, uproot and EnergyFlow are imported by
the functions that need them.
"""
from physgan.systems.jets.formats import CONDITIONS, FIELD_TYPES, read_foreign
from physgan.systems.jets.mc import JetsMCConfig as SimulationConfig
from physgan.systems.jets.mc import write_file as simulate_to_file
from physgan.systems.jets.observables import observables_report

NAME = "jets"
DATA_FIELDS = tuple(FIELD_TYPES)  # LAGAN's datasets: image, signal, jet_pt, ..., tau_32

__all__ = ["NAME", "CONDITIONS", "DATA_FIELDS", "SimulationConfig", "observables_report", "read_foreign",
           "simulate_to_file"]
