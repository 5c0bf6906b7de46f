"""Ising data users already have: npz, npy (+ sibling temperatures), Mehta et al. packbits pickles."""
import pickle

import numpy as np
import pytest

from physgan.errors import UserError
from physgan.io import open_samples
from tests.conftest import random_spins


def test_npz_with_plus_minus_one_and_flat_lattices(tmp_path):
    spins = random_spins(6, 4)
    np.savez(tmp_path / "a.npz", configs=spins.reshape(6, 16), T=np.linspace(1, 3, 6))
    samples = open_samples(tmp_path / "a.npz")
    assert (samples.system, samples.format, samples.n) == ("ising", "npz", 6)
    np.testing.assert_array_equal(samples.read("spins"), spins)
    assert samples.read("T").dtype == np.float32


def test_zero_one_spins_map_zero_to_down(tmp_path):
    spins = random_spins(5, 4)
    np.savez(tmp_path / "b.npz", spins=(spins + 1) // 2, temperature=2.5)  # scalar T broadcasts
    samples = open_samples(tmp_path / "b.npz")
    np.testing.assert_array_equal(samples.read("spins"), spins)
    np.testing.assert_array_equal(samples.read("T"), np.full(5, 2.5, np.float32))


def test_npy_needs_its_temperature_file(tmp_path):
    spins = random_spins(4, 6)
    np.save(tmp_path / "lat.npy", spins)
    with pytest.raises(UserError, match="lat_T.npy"):
        open_samples(tmp_path / "lat.npy")
    np.save(tmp_path / "lat_T.npy", np.array([1.0, 2.0, 3.0, 4.0]))
    chunks = list(open_samples(tmp_path / "lat.npy").iter_chunks(size=3))
    np.testing.assert_array_equal(np.concatenate([c["spins"] for c in chunks]), spins)


def mehta_file(path, spins):
    bits = ((spins.reshape(len(spins), -1) + 1) // 2).astype(np.uint8)
    with open(path, "wb") as f:
        pickle.dump(np.packbits(bits, axis=1), f)


def test_mehta_pickles_only_on_opt_in(tmp_path):
    spins = random_spins(32, 4)
    path = tmp_path / "Ising2DFM_reSample_L4_T=All.pkl"
    mehta_file(path, spins)
    with pytest.raises(UserError, match="--allow-pickle"):
        open_samples(path)
    samples = open_samples(path, allow_pickle=True)
    np.testing.assert_array_equal(samples.read("spins"), spins)
    np.testing.assert_array_equal(np.unique(samples.read("T")), np.arange(1, 17) * 0.25)
    single = tmp_path / "Ising2DFM_reSample_L4_T=2.25.pkl"
    mehta_file(single, spins[:3])
    np.testing.assert_array_equal(open_samples(single, allow_pickle=True).read("T"), np.full(3, 2.25, np.float32))


@pytest.mark.parametrize("arrays, message", [
    ({"spins": np.full((2, 4, 4), 3)}, "no temperatures"),
    ({"data": np.ones((2, 4, 4))}, "not in any layout"),  # ambiguous key, no T: not claimed as Ising
    ({"spins": np.full((2, 4, 4), 3), "T": [1.0, 2.0]}, "must be \\+-1 or 0/1"),
    ({"spins": np.ones((2, 3, 4)), "T": [1.0, 2.0]}, "shape"),
    ({"spins": np.ones((2, 15)), "T": [1.0, 2.0]}, "not an L x L"),
    ({"spins": np.ones((2, 4, 4)), "T": [1.0, 2.0, 3.0]}, "3 temperatures"),
    ({"spins": np.ones((2, 4, 4)), "T": [1.0, -2.0]}, "positive"),
])
def test_malformed_arrays_are_user_errors(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(UserError, match=message):
        open_samples(tmp_path / "bad.npz")


def test_npz_without_spins_is_not_ising(tmp_path):
    np.savez(tmp_path / "other.npz", weights=np.ones(3))
    with pytest.raises(UserError, match="not in any layout"):
        open_samples(tmp_path / "other.npz")
