"""A small real Pythia sample, generated once per test session (both classes, one worker)."""
import numpy as np
import pytest

from physgan.systems.jets.mc import JetsMCConfig, write_file
from physgan.systems.jets.particles import Particles

N_PER_CLASS = 120


@pytest.fixture(scope="session")
def jets_mc(tmp_path_factory):
    """(HDF5 path, ROOT path) of 120 W' and 120 QCD jets, 250 < pT < 300 GeV, no mass window."""
    directory = tmp_path_factory.mktemp("jets")
    h5, root = directory / "jets.h5", directory / "jets.root"
    write_file(h5, JetsMCConfig(n_per_class=N_PER_CLASS, seed=11), quiet=True, root=root)
    return h5, root


@pytest.fixture(scope="session")
def jets_mc_validation(tmp_path_factory):
    """HDF5 path of 200 W' and 200 QCD jets (seed 21), for the validation tests (~30 s of Pythia, once)."""
    path = tmp_path_factory.mktemp("jets_validation") / "jets.h5"
    write_file(path, JetsMCConfig(n_per_class=200, seed=21), quiet=True)
    return path


def prongs(centres, n_per_prong=20, width=0.02, pt=100.0, seed=0) -> Particles:
    """One jet: n_per_prong particles around each (eta, phi, pT fraction) centre, Gaussian width in both."""
    rng = np.random.default_rng(seed)
    pts, etas, phis = [], [], []
    for eta, phi, fraction in centres:
        pts.append(rng.uniform(0.5, 1.5, n_per_prong) * pt * fraction / n_per_prong)
        etas.append(rng.normal(eta, width, n_per_prong))
        phis.append(rng.normal(phi, width, n_per_prong))
    return Particles.from_counts(np.concatenate(pts), np.concatenate(etas), np.concatenate(phis),
                                 [n_per_prong * len(centres)])


def batch(jets: list[Particles]) -> Particles:
    return Particles.concatenate(jets)
