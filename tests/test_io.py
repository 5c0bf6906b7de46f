import h5py
import numpy as np
import pytest

from physgan.errors import UserError
from physgan.io import SampleWriter, atomic_output, detect_format, open_samples
from tests.conftest import random_spins


def write(path, n=10, L=4, **kwargs):
    with SampleWriter(path, system="ising", source="mc", provenance={"seed": 1}, **kwargs) as writer:
        for start in range(0, n, 3):  # several appends: datasets grow chunk by chunk
            k = min(3, n - start)
            writer.append(spins=random_spins(k, L, seed=start), T=np.full(k, 2.0 + start, np.float32))
        writer.add_table("mc", {"T": [2.0], "algorithm": ["wolff"]})


def test_round_trip_with_chunked_reads(tmp_path):
    path = tmp_path / "s.h5"
    write(path)
    samples = open_samples(path)
    assert (samples.system, samples.source, samples.format, samples.n) == ("ising", "mc", "physgan-hdf5", 10)
    assert samples.fields["spins"] == ((4, 4), np.dtype(np.int8))
    assert samples.provenance == {"seed": 1}
    assert list(samples.tables["mc"]["algorithm"]) == ["wolff"]
    chunks = list(samples.iter_chunks(size=4))
    assert [len(c["T"]) for c in chunks] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([c["spins"] for c in chunks]), samples.read("spins"))
    np.testing.assert_array_equal(samples.read("spins")[:3], random_spins(3, 4, seed=0))
    with h5py.File(path) as f:  # the docs/formats.md contract, as other tools see it
        assert f.attrs["physgan_format"] == 1 and f["spins"].compression == "gzip" and f["spins"].chunks


def test_no_output_is_left_behind_on_failure_and_nothing_is_overwritten(tmp_path):
    path = tmp_path / "out.h5"
    with pytest.raises(RuntimeError):
        with atomic_output(path):
            raise RuntimeError("half way")
    assert list(tmp_path.iterdir()) == []
    path.write_text("precious")
    with pytest.raises(UserError, match="--force"):
        write(path)
    assert path.read_text() == "precious"
    write(path, force=True)
    assert open_samples(path).n == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5"]


def test_unwritable_output_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match="cannot write"):
        write(blocker / "out.h5")


@pytest.mark.parametrize("content, message", [
    (b"", "not a recognised"), (b"hello world", "not a recognised"),
    (b"\x89HDF\r\n\x1a\n" + b"\x00" * 100, "unreadable HDF5"),
])
def test_corrupt_and_foreign_files_are_user_errors(tmp_path, content, message):
    path = tmp_path / "bad.h5"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        open_samples(path)


def test_hdf5_files_physgan_cannot_use(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["whatever"] = np.zeros(3)
    with pytest.raises(UserError, match="not in any layout"):
        open_samples(tmp_path / "other.h5")
    with h5py.File(tmp_path / "nospins.h5", "w") as f:
        f.attrs.update(physgan_format=1, system="ising", source="mc", provenance="{}")
        f["T"] = np.ones(3, np.float32)
    with pytest.raises(UserError, match="missing datasets: spins"):
        open_samples(tmp_path / "nospins.h5")
    with h5py.File(tmp_path / "alien.h5", "w") as f:
        f.attrs.update(physgan_format=1, system="potts", source="mc", provenance="{}")
    with pytest.raises(UserError, match="unknown system 'potts'"):
        open_samples(tmp_path / "alien.h5")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        detect_format(tmp_path / "nope.h5")
    with pytest.raises(UserError, match="directory"):
        detect_format(tmp_path)


def test_outputs_get_ordinary_file_permissions(tmp_path):
    import os

    write(tmp_path / "p.h5")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "p.h5").stat().st_mode & 0o777 == 0o666 & ~umask
