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


@contextlib.contextmanager
def drawn_histograms():
    """Every histogram the report's plots draw while the block runs: (values, edges, errors) of each
    mplhep.histplot call, as drawn."""
    import mplhep

    calls, draw = [], mplhep.histplot

    def recording(values, bins, *args, yerr=None, **kwargs):
        calls.append((np.array(values, dtype=np.float64), np.array(bins, dtype=np.float64),
                      np.array(yerr, dtype=np.float64)))
        return draw(values, bins, *args, yerr=yerr, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mplhep, "histplot", recording)
        yield calls


def histogram_series(path) -> dict:
    """report/histograms.h5 as {"plot/panel/series": {"edges", "counts", "density", "error", "attrs"}}."""
    import h5py

    found = {}

    def visit(name, node):
        if isinstance(node, h5py.Group) and "edges" in node:
            found[name] = {**{key: node[key][()] for key in ("edges", "counts", "density", "error")},
                           "attrs": dict(node.attrs)}

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return found


def assert_file_holds_what_was_drawn(path, calls) -> dict:
    """Every histogram drawn is in histograms.h5 and nothing else is: each series' density and error, rebuilt
    from its edges and counts by the normalisation the file states, equal those drawn. Returns the series."""
    series = histogram_series(path)
    key = lambda values, edges, errors: (edges.tobytes(), values.tobytes(), errors.tobytes())
    assert sorted(key(s["density"], s["edges"], s["error"]) for s in series.values()) == sorted(
        key(*call) for call in calls)
    for s in series.values():
        scale = s["counts"].sum() * np.diff(s["edges"])
        np.testing.assert_allclose(s["density"], s["counts"] / scale, rtol=1e-12)
        np.testing.assert_allclose(s["error"], np.sqrt(s["counts"]) / scale, rtol=1e-12)
        assert s["attrs"]["entries"] == s["counts"].sum() and "unit area" in s["attrs"]["normalisation"]
    return series


TOY = "tests.toy_system"


@pytest.fixture(scope="module")
def toy():
    """The toy system (tests/toy_system), registered by its own import; forgotten afterwards, so other tests
    never see it."""
    import importlib
    import sys

    from physgan.systems import unregister

    module = importlib.import_module(TOY)
    yield module
    unregister(module.NAME)
    for name in [name for name in sys.modules if name == TOY or name.startswith(f"{TOY}.")]:
        del sys.modules[name]
