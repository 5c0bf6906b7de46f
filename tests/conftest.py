"""Shared fixtures: small sample files built by the tests themselves (no data in git)."""
import contextlib

import numpy as np
import pytest

from physgan.systems.ising import mc


@pytest.fixture(scope="session")
def small_ising_file(tmp_path_factory):
    """A real Monte Carlo file: L = 8, three temperatures, 256 configurations each."""
    path = tmp_path_factory.mktemp("mc") / "ising_L8.h5"
    config = mc.IsingMCConfig(L=8, temps=[1.8, 2.269, 3.0], n_per_temp=256, seed=5, chains=32)
    mc.write_file(path, config, quiet=True)
    return path


def random_spins(n, L, seed=0):
    return np.random.default_rng(seed).choice(np.array([-1, 1], np.int8), size=(n, L, L))


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a module: other jobs share the two cores, and intra-op threads then stall."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@contextlib.contextmanager
def no_figures(plugin):
    """Validation without the figures, which cost more than the statistics and decide nothing."""
    from physgan.validation import report

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(report, "observable_plots", lambda *args, **kwargs: [])
        patch.setattr(plugin, "plots", lambda *args, **kwargs: [])
        yield
