"""Boosted jets as images: Pythia 8 + FastJet Monte Carlo in the LAGAN setup (arXiv:1701.05927), the jet
formats users already have (LAGAN and JetNet HDF5, EnergyFlow .npz, ROOT), and jet observables.

Importing this package loads numpy only; Pythia, FastJet, awkward, uproot and EnergyFlow are imported by
the functions that need them.
"""
import sys

from physgan.systems import lazy_submodules, register
from physgan.systems.interface import Option
from physgan.systems.jets.fidelity import FidelityConfig, fidelity_report
from physgan.systems.jets.formats import CONDITIONS, FIELD_TYPES, read_foreign, write_root
from physgan.systems.jets.mc import JetsMCConfig as SimulationConfig
from physgan.systems.jets.mc import data_mismatch
from physgan.systems.jets.mc import write_file as simulate_to_file
from physgan.systems.jets.observables import observables_report

NAME = "jets"
DATA_FIELDS = tuple(FIELD_TYPES)  # LAGAN's datasets: image, signal, jet_pt, ..., tau_32
READER_ORDER = 10  # before Ising: these readers claim only exact layouts (EnergyFlow's X (n, M, 4) with labels y)
SIMULATE_OPTIONS = (
    Option("--n-per-class", "n_per_class", "selected jets per class (default 1000)", type=int),
    Option("--classes", "classes", "wprime, qcd or wprime,qcd (default both)"),
    Option("--pt", "pt", "trimmed-jet pT window in GeV, lo:hi (default 250:300)"),
    Option("--mass-window", "mass_window", "trimmed-jet mass window in GeV, lo:hi (LAGAN: 60:100; default none)"),
    Option("--sqrt-s", "sqrt_s", "pp centre-of-mass energy in GeV (default 14000)", type=float),
    Option("--wprime-mass", "wprime_mass", "W' mass in GeV (default 800)", type=float),
    Option("--pythia", "pythia", "an extra Pythia setting, read after the class's own (repeatable), e.g. "
           "'Tune:pp = 21'", action="append", metavar="'KEY = VALUE'"),
    Option("--workers", "workers", "processes running Pythia (default 1; the output does not depend on it)",
           type=int),
    Option("--root", "root", "also write a ROOT file: TTree jets with the constituents as jagged branches",
           output=True),
)
SAMPLE_OPTIONS = (
    Option("--class", "class", "jets: wprime, qcd or wprime,qcd", metavar="CLASSES"),
    Option("--pt", "pt", "jets: jet pT window in GeV, lo:hi (pT values spread evenly over it)"),
    Option("--root", "root", "jets: also write a ROOT file (TTree jets)", output=True),
)
refine = None

# The GAN adapter and the validation plug-in need torch: loaded on first use.
__getattr__ = lazy_submodules(__name__)
register(sys.modules[__name__])
