"""Every jet file layout physgan reads, written here in miniature; HDF5 <-> ROOT; the error contract."""
import h5py
import numpy as np
import pytest

from physgan.cli import main
from physgan.io import SampleWriter, open_samples
from physgan.systems.jets import DATA_FIELDS
from physgan.systems.jets.formats import RootBranches, read_root, write_root
from physgan.systems.jets.particles import Particles, wrap_phi
from physgan.systems.jets.reconstruction import describe_jets

JETS = 40  # jets of the session sample used to build the foreign files


def read_all(path, names=DATA_FIELDS):
    samples = open_samples(path)
    return samples, samples.read_chunk(0, samples.n, names)


def assert_same_fields(a: dict, b: dict, names=DATA_FIELDS):
    for name in names:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.fixture(scope="module")
def mc(jets_mc):
    """Fields and trimmed particles of the first JETS jets of the session sample."""
    samples = open_samples(jets_mc[1])
    data = samples.read_chunk(0, JETS, DATA_FIELDS + ("constituents",))
    padded = data.pop("constituents")
    return data, Particles.from_padded(padded[..., 0], padded[..., 1], padded[..., 2])


def test_root_file_holds_what_the_hdf5_file_holds(jets_mc):
    (h5, h5_data), (root, root_data) = read_all(jets_mc[0]), read_all(jets_mc[1])
    assert (h5.format, root.format, root.source) == ("physgan-hdf5", "physgan-root", "mc")
    assert root.provenance["config"] == h5.provenance["config"]
    assert_same_fields(h5_data, root_data)


def test_the_chain_on_the_root_constituents_reproduces_the_stored_jets(mc):
    stored, particles = mc
    again = describe_jets(particles)  # trimming an already trimmed jet keeps every particle
    for name in ("jet_pt", "jet_eta", "jet_phi", "jet_mass"):
        np.testing.assert_allclose(again[name], stored[name], rtol=1e-5, err_msg=name)
    # ROOT keeps float32 positions, which can break exact ties of the cell grid in the kT clusterings
    # (subjets, WTA axes) of ~10 % of the jets: tau_N and delta R move by up to ~0.02 (float64: exact, test_mc)
    for name in ("jet_delta_R", "tau_1", "tau_2", "tau_3"):
        np.testing.assert_allclose(again[name], stored[name], atol=0.03, err_msg=name)
    same_image = np.all(np.isclose(again["image"], stored["image"], atol=1e-3), axis=(1, 2))
    assert same_image.mean() >= 0.9


def test_hdf5_to_root_to_hdf5(jets_mc, tmp_path):
    h5, h5_data = read_all(jets_mc[0])
    write_root(h5, tmp_path / "copy.root")
    root, root_data = read_all(tmp_path / "copy.root")
    assert root.format == "physgan-root" and root.provenance == h5.provenance
    assert_same_fields(h5_data, root_data)
    with SampleWriter(tmp_path / "back.h5", system="jets", source=root.source, provenance=root.provenance) as writer:
        for chunk in root.iter_chunks(100, names=DATA_FIELDS):
            writer.append(**chunk)
    assert_same_fields(h5_data, read_all(tmp_path / "back.h5")[1])


def test_rntuple(mc, tmp_path):
    import awkward as ak
    import uproot

    stored, particles = mc
    part = ak.zip({q: ak.unflatten(getattr(particles, q), particles.counts) for q in ("pt", "eta", "phi")})
    with uproot.recreate(tmp_path / "nt.root") as f:
        f["jets"] = {**{name: stored[name] for name in DATA_FIELDS}, "part": part}
    samples, data = read_all(tmp_path / "nt.root", DATA_FIELDS + ("constituents",))
    assert samples.format == "physgan-root" and samples.n == JETS
    assert_same_fields(stored, data)
    np.testing.assert_allclose(data["constituents"][..., 0].sum(axis=1), np.bincount(particles.owner, particles.pt),
                               rtol=1e-5)


def test_foreign_ttree_with_other_branch_names(mc, tmp_path):
    import awkward as ak
    import uproot

    stored, particles = mc
    jagged = {f"constituents_{q}": ak.unflatten(getattr(particles, q).astype(np.float32), particles.counts)
              for q in ("pt", "eta", "phi")}
    with uproot.recreate(tmp_path / "foreign.root") as f:
        f.mktree("events", {**{k: v.type for k, v in jagged.items()}, "label": np.float64})
        f["events"].extend({**jagged, "label": stored["signal"].astype(np.float64)})
    samples, data = read_all(tmp_path / "foreign.root")
    assert samples.format == "root" and samples.source == "external"
    np.testing.assert_array_equal(data["signal"], stored["signal"])
    np.testing.assert_allclose(data["jet_mass"], stored["jet_mass"], rtol=1e-3)
    branches = RootBranches(tree="events", prefix="constituents", label="label")
    explicit = read_root(str(tmp_path / "foreign.root"), branches)
    assert explicit.n == JETS


def test_lagan_hdf5_without_physgan_attributes(mc, tmp_path):
    stored, _ = mc
    with h5py.File(tmp_path / "lagan.h5", "w") as f:
        for name in DATA_FIELDS:  # LAGAN stored its labels as float32
            f[name] = stored[name].astype(np.float32)
    samples, data = read_all(tmp_path / "lagan.h5")
    assert (samples.format, samples.system, samples.conditions) == ("lagan-hdf5", "jets", ("signal", "jet_pt"))
    assert data["signal"].dtype == np.int8
    assert_same_fields(stored, data)


def jetnet_arrays(particles: Particles, stored: dict, width: int = 30):
    """JetNet's layout: particle_features (eta_rel, phi_rel, pt_rel, mask), jet_features (pt, eta, mass, n)."""
    padded = particles.padded(width)
    pt, eta, phi = padded[..., 0], padded[..., 1], padded[..., 2]
    mask = pt > 0
    rel = np.stack([np.where(mask, eta - stored["jet_eta"][:, None], 0), np.where(mask, wrap_phi(phi), 0),
                    pt / stored["jet_pt"][:, None], mask.astype(np.float32)], axis=-1).astype(np.float32)
    jet = np.stack([stored["jet_pt"], stored["jet_eta"], stored["jet_mass"], mask.sum(axis=1)], axis=1)
    return rel, jet.astype(np.float32)


def test_jetnet_hdf5(mc, tmp_path):
    stored, particles = mc
    rel, jet = jetnet_arrays(particles, stored)
    with h5py.File(tmp_path / "w30.hdf5", "w") as f:
        f["particle_features"], f["jet_features"] = rel, jet
    samples, data = read_all(tmp_path / "w30.hdf5", DATA_FIELDS + ("constituents",))
    assert samples.format == "jetnet-hdf5" and samples.fields["constituents"][0] == (30, 4)
    assert np.all(data["signal"] == 1)
    expected = describe_jets(Particles.from_padded(rel[..., 2] * jet[:, :1], rel[..., 0] + jet[:, 1:2], rel[..., 1]))
    for name in ("image", "jet_pt", "jet_mass", "tau_21"):
        np.testing.assert_allclose(data[name], expected[name], rtol=1e-5, atol=1e-4, err_msg=name)
    np.testing.assert_allclose(data["jet_pt"], stored["jet_pt"], rtol=0.05)  # the 30 hardest carry most pT


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_energyflow_npz_read_in_chunks(mc, tmp_path, save):
    stored, particles = mc
    padded = particles.padded()
    X = np.stack([padded[..., 0], padded[..., 1], padded[..., 2] % (2 * np.pi), np.full(padded.shape[:2], 211.0)], -1)
    X[padded[..., 0] == 0] = 0
    save(tmp_path / "qg.npz", X=X.astype(np.float64), y=stored["signal"].astype(np.float64))
    samples, data = read_all(tmp_path / "qg.npz")
    assert samples.format == "energyflow-npz" and samples.n == JETS
    np.testing.assert_array_equal(data["signal"], stored["signal"])
    np.testing.assert_allclose(data["jet_mass"], stored["jet_mass"], rtol=1e-4)
    chunks = list(samples.iter_chunks(size=7, names=("image", "tau_21")))
    np.testing.assert_array_equal(np.concatenate([c["image"] for c in chunks]), data["image"])


def test_ising_npz_with_an_X_array_is_still_ising(tmp_path):
    spins = np.random.default_rng(0).choice(np.array([-1, 1], np.int8), (6, 4, 4))
    np.savez(tmp_path / "ising.npz", X=spins, T=np.full(6, 2.0))
    assert open_samples(tmp_path / "ising.npz").system == "ising"


def write_h5(path, **arrays):
    with h5py.File(path, "w") as f:
        for name, values in arrays.items():
            f[name] = values


def lagan_like(n=4, **changes):
    arrays = {name: np.zeros(n, np.float32) for name in DATA_FIELDS}
    arrays["image"] = np.zeros((n, 25, 25), np.float32)
    return {**arrays, **changes}


BAD_FILES = {
    "missing.h5": (lambda p: write_h5(p, image=np.zeros((3, 25, 25)), signal=np.zeros(3)), "missing: jet_pt"),
    "labels.h5": (lambda p: write_h5(p, **lagan_like(signal=np.array([0, 1, 2, 1.0]))), "signal must be 0 or 1"),
    "lengths.h5": (lambda p: write_h5(p, **lagan_like(jet_pt=np.zeros(5))), "different lengths"),
    "top.hdf5": (lambda p: write_h5(p, particle_features=np.zeros((2, 30, 4)), jet_features=np.zeros((2, 4))),
                  "cannot tell the JetNet jet type"),
    "g.hdf5": (lambda p: write_h5(p, particle_features=np.zeros((2, 4)), jet_features=np.zeros((2, 4))),
               "JetNet layout needs"),
    "nolabels.npz": (lambda p: np.savez(p, X=np.zeros((2, 5, 4))), "needs labels y"),
    "badlabels.npz": (lambda p: np.savez(p, X=np.zeros((2, 5, 4)), y=np.array([0, 3])), "y must be 0 or 1"),
    "physgan.h5": (lambda p: write_h5(p, image=np.zeros((2, 25, 25))) or _mark_physgan(p), "missing datasets"),
}


def _mark_physgan(path):
    with h5py.File(path, "a") as f:
        f.attrs.update(physgan_format=1, system="jets", source="mc", provenance="{}")


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_corrupt_or_mislabelled_files_are_one_line_user_errors(name, tmp_path, capsys):
    make, message = BAD_FILES[name]
    make(tmp_path / name)
    assert main(["inspect", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("physgan: error: ") and message in err and err.count("\n") == 1


def test_broken_root_files_are_user_errors(jets_mc, tmp_path, capsys):
    import uproot

    (tmp_path / "cut.root").write_bytes(jets_mc[1].read_bytes()[:3000])
    with uproot.recreate(tmp_path / "flat.root") as f:
        f["jets"] = {"x": np.zeros(3)}
    for name, message in (("cut.root", "unreadable ROOT file"), ("flat.root", "no constituent pt branch")):
        assert main(["inspect", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
