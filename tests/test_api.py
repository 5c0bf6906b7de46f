"""The Python API (physgan/api.py): what it returns is what the command line writes, bit for bit, and a
mistake is one UserError line."""
import json
import subprocess
import sys

import numpy as np
import pytest

import physgan
from physgan.cli import main
from physgan.errors import UserError
from physgan.io import open_samples
from physgan.systems import get_system
from physgan.systems.ising.exact import energy_per_site as exact_energy
from physgan.systems.ising.observables import energy_per_site
from physgan.stats import mean_and_error
from tests.conftest import no_figures

TINY_ISING = dict(steps=2, batch_size=16, group_size=4, n_critic=1, monitor_every=1, monitor_samples=8, device="cpu",
                  network={"channels": 8, "blocks": 1, "critic_channels": 8, "critic_blocks": 1})
MC = dict(L=8, temps=[1.8, 3.0], n_per_temp=128, chains=16)


def cli(*args) -> int:
    return main([str(a) for a in args])


def same_arrays(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)  # NaN equal to NaN (generated jet_eta)


def file_arrays(path) -> dict:
    samples = open_samples(path)
    return samples.read_chunk(0, samples.n, tuple(samples.fields))


def test_import_physgan_stays_light_and_the_api_loads_on_first_use():
    code = ("import sys, physgan; assert not {'numpy', 'torch', 'h5py'} & set(sys.modules), sys.modules.keys(); "
            "physgan.Sample, physgan.simulate, physgan.validate; assert 'torch' not in sys.modules; "
            "assert set(physgan.__all__) <= set(dir(physgan))")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------------
# simulate, Sample, save, load_sample


@pytest.fixture(scope="module")
def monte_carlo():
    return physgan.simulate("ising", seed=3, quiet=True, **MC)


def test_simulate_is_physgan_simulate_and_real_monte_carlo(monte_carlo, tmp_path):
    assert (monte_carlo.system, monte_carlo.source, len(monte_carlo), monte_carlo.path) == ("ising", "mc", 256, None)
    assert monte_carlo["spins"].dtype == np.int8 and monte_carlo["spins"].shape == (256, 8, 8)
    assert monte_carlo["T"].dtype == np.float32 and set(np.unique(np.abs(monte_carlo["spins"]))) == {1}
    assert cli("simulate", "ising", "--L", 8, "--temps", "1.8,3.0", "--n-per-temp", 128, "--chains", 16, "--seed", 3,
               "--quiet", "--out", tmp_path / "cli.h5") == 0
    same_arrays(monte_carlo.arrays, file_arrays(tmp_path / "cli.h5"))  # the same Monte Carlo, spin for spin
    written = open_samples(tmp_path / "cli.h5")
    assert monte_carlo.provenance["config"] == written.provenance["config"]
    assert set(monte_carlo.tables) == {"mc"}
    same_arrays(monte_carlo.tables["mc"], written.tables["mc"])  # tau_int, thinning, ... per temperature
    assert monte_carlo.provenance["wall_s"] > 0
    # and it is equilibrium: <e> within 4 standard errors of Kaufman's exact value on the 8 x 8 torus
    for T in MC["temps"]:
        mean, err = mean_and_error(energy_per_site(monte_carlo["spins"][monte_carlo["T"] == np.float32(T)]))
        assert abs(mean - exact_energy(np.array([T]), 8)[0]) < 4 * err, T


def test_save_then_load_sample_is_the_same_sample(monte_carlo, tmp_path):
    path = monte_carlo.save(tmp_path / "mc.h5")
    back = physgan.load_sample(path)
    same_arrays(monte_carlo.arrays, back.arrays)
    same_arrays(monte_carlo.tables["mc"], back.tables["mc"])
    assert (back.system, back.source, back.provenance, back.path) == ("ising", "mc", monte_carlo.provenance, str(path))
    assert back.conditions == ("T",) and len(back) == 256 and "spins" in back and list(back.keys()) == ["spins", "T"]
    with pytest.raises(UserError, match="exists; pass --force"):
        monte_carlo.save(path)
    monte_carlo.save(path, force=True)
    with pytest.raises(KeyError, match="'image': this ising sample holds spins, T"):
        back["image"]


def test_arrays_of_your_own_make_a_sample(tmp_path):
    spins = np.random.default_rng(0).choice(np.array([-1, 1], np.int8), size=(10, 4, 4))
    mine = physgan.Sample({"spins": spins, "T": np.full(10, 2.5, np.float32)}, "ising")
    back = physgan.load_sample(mine.save(tmp_path / "mine.h5"))
    same_arrays(mine.arrays, back.arrays)
    assert back.source == "external"
    np.savez(tmp_path / "foreign.npz", spins=spins, T=np.full(10, 2.5))  # a foreign layout, read as physgan reads it
    foreign = physgan.load_sample(tmp_path / "foreign.npz")
    np.testing.assert_array_equal(foreign["spins"], spins)


# ---------------------------------------------------------------------------------------------
# train, load, Generator.sample


@pytest.fixture(scope="module")
def checkpoint(small_ising_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("api_run")
    best = physgan.train(physgan.load_sample(small_ising_file), out, quiet=True, **TINY_ISING)  # in memory
    assert best == out / "checkpoints" / "best.pt" and best.is_file()
    return best


def test_train_takes_the_settings_of_physgan_train(small_ising_file, tmp_path):
    """The same settings through the command line and through the API: the same networks, weight for weight."""
    import torch

    assert cli("train", "--data", small_ising_file, "--out", tmp_path / "cli", "--quiet", "--device", "cpu",
               "--set", "steps=2", "--set", "batch_size=16", "--set", "group_size=4", "--set", "n_critic=1",
               "--set", "monitor_every=1", "--set", "monitor_samples=8",
               "--set", "network={channels = 8, blocks = 1, critic_channels = 8, critic_blocks = 1}") == 0
    physgan.train(small_ising_file, tmp_path / "api", quiet=True, **TINY_ISING)
    a, b = (torch.load(tmp_path / run / "checkpoints/last.pt", weights_only=True) for run in ("cli", "api"))
    assert a["config"] == b["config"]
    for name, tensor in a["generator_ema"].items():
        torch.testing.assert_close(b["generator_ema"][name], tensor, rtol=0, atol=0)


def test_a_generator_knows_its_system_and_training_range(checkpoint):
    gen = physgan.load(checkpoint)
    assert (gen.system, gen.conditions, gen.step >= 1) == ("ising", {"T": (1.8, 3.0)}, True)
    assert "ising" in repr(gen) and "1.8 .. 3" in repr(gen)


@pytest.mark.parametrize("sweeps", [0, 3])
def test_in_memory_samples_are_the_file_physgan_sample_writes(checkpoint, tmp_path, sweeps):
    """Same seed and batch size: the same lattices, refined or not; 80 lattices in batches of 48 (two batches,
    so the refinement's per-batch streams are exercised)."""
    out = tmp_path / "gen.h5"
    assert cli("sample", "--checkpoint", checkpoint, "--T", "1.8,3.0", "--n", 40, "--batch-size", 48, "--seed", 4,
               "--refine-sweeps", sweeps, "--device", "cpu", "--quiet", "--out", out) == 0
    gen = physgan.load(checkpoint)
    sample = gen.sample(T=[1.8, 3.0], n=40, batch_size=48, seed=4, refine_sweeps=sweeps, quiet=True)
    same_arrays(file_arrays(out), sample.arrays)
    assert (sample.system, sample.source, len(sample)) == ("ising", "gan", 80)
    assert sample.provenance["config"] == open_samples(out).provenance["config"]
    assert sample.provenance["config"]["refine"] == (None if sweeps == 0 else
                                                     {"sweeps": 3, "algorithm": get_system("ising").refine.algorithm})
    for spelling in ((1.8, 3.0), np.array([1.8, 3.0], np.float32), "1.8,3.0", "1.8:3.0:2"):  # one parser
        same_arrays(sample.arrays, gen.sample(T=spelling, n=40, batch_size=48, seed=4, refine_sweeps=sweeps,
                                              quiet=True).arrays)
    other_seed = gen.sample(T=[1.8, 3.0], n=40, batch_size=48, seed=5, refine_sweeps=sweeps, quiet=True)
    assert not np.array_equal(other_seed["spins"], sample["spins"])
    if sweeps:
        raw = gen.sample(T=[1.8, 3.0], n=40, batch_size=48, seed=4, quiet=True)
        assert not np.array_equal(raw["spins"], sample["spins"])  # the sweeps did move spins


def jets_arrays(n: int, seed: int = 0) -> dict:
    """Stand-in jets (no Pythia): a few lit pixels per image summing to the jet pT, both classes."""
    rng = np.random.default_rng(seed)
    image = np.zeros((n, 25, 25), np.float32)
    pt = rng.uniform(250, 300, n).astype(np.float32)
    for k in range(n):
        cells = rng.choice(625, 12, replace=False)
        shares = rng.dirichlet(np.ones(12))
        image[k].flat[cells] = pt[k] * shares
    arrays = {"image": image, "signal": (np.arange(n) % 2).astype(np.int8), "jet_pt": pt}
    for name in ("jet_eta", "jet_phi", "jet_mass", "jet_delta_R", "tau_1", "tau_2", "tau_3", "tau_21", "tau_32"):
        arrays[name] = rng.uniform(0.1, 1.0, n).astype(np.float32)
    return arrays


def test_jets_by_class_and_pt_are_the_file_physgan_sample_writes(tmp_path):
    pytest.importorskip("fastjet")  # generated jets get their tau_N through fastjet-contrib
    jets = physgan.Sample(jets_arrays(64), "jets")
    best = physgan.train(jets, tmp_path / "run", steps=2, batch_size=16, group_size=4, n_critic=1, monitor_every=1,
                         monitor_samples=8, device="cpu", quiet=True,
                         network={"channels": 16, "blocks": 1, "critic_channels": 16, "z_dim": 4, "embed_dim": 4})
    gen = physgan.load(best)
    assert gen.system == "jets" and gen.conditions["signal"] == (0.0, 1.0)
    assert cli("sample", "--checkpoint", best, "--class", "wprime,qcd", "--pt", "255:295", "--n", 12, "--batch-size",
               10, "--device", "cpu", "--quiet", "--out", tmp_path / "gen.h5") == 0
    sample = gen.sample(cls=["wprime", "qcd"], pt=(255, 295), n=12, batch_size=10, quiet=True)
    same_arrays(file_arrays(tmp_path / "gen.h5"), sample.arrays)
    np.testing.assert_array_equal(sample["signal"], np.repeat(np.array([1, 0], np.int8), 12))
    np.testing.assert_allclose(sample["jet_pt"][:12], 255 + (np.arange(12) + 0.5) * 40 / 12, rtol=1e-6)
    same_arrays(sample.arrays, gen.sample(class_="wprime,qcd", pt="255:295", n=12, batch_size=10, quiet=True).arrays)
    same_arrays(sample.arrays, gen.sample(**{"class": ("wprime", "qcd")}, pt=[255.0, 295.0], n=12, batch_size=10,
                                          quiet=True).arrays)
    with pytest.raises(UserError, match=r"^T= is not a condition of this jets generator: it takes cls=, pt= and n="):
        gen.sample(cls="qcd", pt=(250, 300), T=2.0)
    with pytest.raises(UserError, match=r"--class 'top': classes are wprime, qcd"):  # the one parser's words
        gen.sample(cls="top", pt=(250, 300))


# ---------------------------------------------------------------------------------------------
# validate


def test_validate_in_memory_gives_the_metrics_of_physgan_validate_on_files(monte_carlo, tmp_path, capsys,
                                                                           one_torch_thread):
    """Two independent Monte Carlo samples (and a third as the training sample): the command line on files
    and the API in memory, without a report, give the same metrics, number for number, and the honest
    pair passes."""
    generated = physgan.simulate("ising", seed=4, quiet=True, **MC)
    training = physgan.simulate("ising", seed=5, quiet=True, **MC)
    paths = [sample.save(tmp_path / f"{name}.h5") for name, sample in
             (("reference", monte_carlo), ("generated", generated), ("training", training))]
    with no_figures(get_system("ising").validation):
        code = cli("validate", "--reference", paths[0], "--generated", paths[1], "--train", paths[2],
                   "--out", tmp_path / "report")
    printed = capsys.readouterr().out
    on_files = json.loads((tmp_path / "report/metrics.json").read_text())
    result = physgan.validate(monte_carlo, generated, training=training, quiet=True)
    in_memory = result.metrics
    for key in ("reference", "generated", "training"):
        assert in_memory[key]["format"] == "in-memory" and in_memory[key]["path"] == f"<{key} in memory>"
        assert {k: v for k, v in in_memory[key].items() if k not in ("format", "path")} == \
               {k: v for k, v in on_files[key].items() if k not in ("format", "path")}
        in_memory.pop(key), on_files.pop(key)
    assert in_memory == on_files
    assert in_memory["classifier"]["auc"] is not None and in_memory["ising"]["memorisation"]["checked"]
    assert code == 0 and result.passed and result.verdict == "pass" and result.checks == on_files["checks"]
    assert result.table() in printed and result.out is None and result.line() == "verdict: PASS"
    assert not list(tmp_path.glob(".*.tmp"))  # out=None wrote nothing anywhere
    # a preset's [fidelity] table as a mapping: its targets join the checks, its tolerance replaces the exact one
    by_path = physgan.validate(paths[0], paths[1], fidelity={"relative": {"e": 0.02, "abs_m": 0.03}}, quiet=True)
    targets = [check["check"] for check in by_path.checks if check["check"].endswith("(preset)")]
    assert targets == ["<e> against the test Monte Carlo (preset)", "<|m|> against the test Monte Carlo (preset)",
                       "fraction of m > 0 below T_c (preset)"]
    assert by_path.checks[4]["threshold"] == "|deviation| <= 2 % where significant"  # e exact: 1 % without


# ---------------------------------------------------------------------------------------------
# mistakes


@pytest.mark.parametrize("call, message", [
    (lambda g, s: physgan.simulate("potts", L=8), "unknown system 'potts' (physgan knows: "),
    (lambda g, s: physgan.simulate(3), "system must be a name such as 'ising', not int"),
    (lambda g, s: physgan.simulate("ising", Lx=8), "unknown ising simulate key 'Lx' (valid keys: "),
    (lambda g, s: physgan.simulate("ising", L="big"), "ising simulate key 'L': 'big' is not a number"),
    (lambda g, s: physgan.simulate("ising", L=8, n_per_class=10), "unknown ising simulate key 'n_per_class'"),
    (lambda g, s: g.sample(cls="wprime", n=8), "cls= is not a condition of this ising generator: it takes T= and n="),
    (lambda g, s: g.sample(pt=(250, 300), n=8), "pt= is not a condition of this ising generator"),
    (lambda g, s: g.sample(T={"low": 2.0}), "T={'low': 2.0}: expected a number, a string or a list of them, not dict"),
    (lambda g, s: g.sample(T=True), "T=True: expected a number, a string or a list of them, not a boolean"),
    (lambda g, s: g.sample(T=[]), "T=[]: expected numbers or strings in the list, got an empty one"),
    (lambda g, s: g.sample(T=[[2.0]]), "T=[[2.0]]: expected numbers or strings in the list"),
    (lambda g, s: g.sample(T="hot"), "temperature: 'hot' is not a number"),
    (lambda g, s: g.sample(), "say at which temperatures to sample"),
    (lambda g, s: g.sample(T=2.0, n=2.5), "n must be a whole number, not 2.5"),
    (lambda g, s: g.sample(T=2.0, n=0), "must be at least 1"),
    (lambda g, s: g.sample(T=2.0, refine_sweeps=-1), "--refine-sweeps -1: must be >= 0"),
    (lambda g, s: g.sample(T=2.0, device="gpu"), "device must be 'cpu', 'cuda' or 'auto', not 'gpu'"),
    (lambda g, s: physgan.load("missing.pt"), "missing.pt: no such checkpoint file"),
    (lambda g, s: physgan.load(s), "load: expected a file path, not Sample"),
    (lambda g, s: physgan.load_sample("missing.h5"), "missing.h5: no such file"),
    (lambda g, s: physgan.validate(s, 5), "generated: expected a physgan.Sample or a sample file path, not int"),
    (lambda g, s: physgan.validate(s, s, level=2), "--level must lie between 0 and 1"),
    (lambda g, s: physgan.train(s, "x", stepz=3), "unknown train key 'stepz'"),
    (lambda g, s: physgan.train(s, "x", preset="nope"), "unknown preset 'nope' for ising"),
    (lambda g, s: physgan.Sample({"spins": s["spins"]}, "ising"), "a ising sample needs the arrays spins, T; "
                                                                  "missing: T"),
    (lambda g, s: physgan.Sample({"spins": s["spins"], "T": s["T"][:3]}, "ising"),
     "all of the same length; got spins 256, T 3"),
])
def test_mistakes_are_one_user_error_line(checkpoint, monte_carlo, tmp_path, monkeypatch, call, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as caught:
        call(physgan.load(checkpoint), monte_carlo)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "x").exists()  # refused before anything was written


def test_like_generates_at_the_conditions_of_a_reference_sample(checkpoint, monte_carlo, tmp_path):
    """like=: one generated lattice per reference lattice, at its T (n: that many per lattice), the same
    lattices as asking for those temperatures by name; from a Sample or from its file."""
    gen = physgan.load(checkpoint)
    reference = physgan.Sample({"spins": monte_carlo["spins"][:6], "T": np.array([1.8, 1.8, 1.8, 3.0, 3.0, 3.0],
                                                                                  np.float32)}, "ising")
    sample = gen.sample(like=reference, seed=2, quiet=True)
    np.testing.assert_array_equal(sample["T"], reference["T"])
    by_name = gen.sample(T=[1.8, 3.0], n=3, seed=2, quiet=True)
    np.testing.assert_array_equal(sample["spins"], by_name["spins"])
    twice = gen.sample(like=reference.save(tmp_path / "ref.h5"), n=2, seed=2, quiet=True)
    np.testing.assert_array_equal(twice["T"], np.repeat(reference["T"], 2))
    with pytest.raises(UserError, match=r"by --like or by name \(T\), not both"):
        gen.sample(like=reference, T=2.0)
    with pytest.raises(UserError, match="like: expected a physgan.Sample or a sample file path, not int"):
        gen.sample(like=3)
    with pytest.raises(UserError, match="must be at least 1"):
        gen.sample(like=reference, n=0)
    with pytest.raises(UserError, match="--like: a jets sample; this generator makes ising samples"):
        gen.sample(like=physgan.Sample(jets_arrays(4), "jets"))


def test_physgan_sample_like_is_the_api_s_like(checkpoint, monte_carlo, tmp_path, capsys):
    """`physgan sample --like FILE` writes the lattices Generator.sample(like=FILE) makes; with conditions
    by name too, one error line and no file."""
    reference = physgan.Sample({"spins": monte_carlo["spins"][:5], "T": np.array([1.8, 3.0, 3.0, 2.2, 1.8],
                                                                                  np.float32)}, "ising")
    path = reference.save(tmp_path / "ref.h5")
    out = tmp_path / "gen.h5"
    assert cli("sample", "--checkpoint", checkpoint, "--like", path, "--n", 2, "--seed", 3, "--device", "cpu",
               "--quiet", "--out", out) == 0
    same_arrays(file_arrays(out), physgan.load(checkpoint).sample(like=reference, n=2, seed=3, quiet=True).arrays)
    assert cli("sample", "--checkpoint", checkpoint, "--like", path, "--T", "2.0", "--out", tmp_path / "x.h5") == 2
    assert "by --like or by name (T), not both" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()
