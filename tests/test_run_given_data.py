"""`physgan run --train-data FILE --test-data FILE`: given data files replace the simulate stages, checked
against the preset before anything is written, recorded in the run directory (data/sources.json), kept by
--resume, and the speed line states a Monte Carlo time only where one is known."""
import filecmp
import hashlib
import json
import shutil

import h5py
import numpy as np
import pytest

from physgan.errors import UserError
from physgan.io import SampleWriter, monte_carlo_seconds, open_samples, save_as_physgan
from physgan.pipeline import given_data, preset_path_values, resolve
from physgan.systems import get_system
from physgan.validation.validate import speed_content, speed_line, speed_summary, to_json
from tests.test_third_system import run_cli

TOY_PRESET = ('system = "toy"\n[simulate_train]\nwidths = [0.5, 2.0]\nn_per_width = 100\nseed = 1\n'
              '[simulate_test]\nwidths = [0.5, 2.0]\nn_per_width = 100\nseed = 2\n'
              '[train]\nsteps = 10\nn_critic = 1\nmonitor_every = 5\ndevice = "cpu"\n'
              '[sample]\nn_per_condition = 100\n')


def assert_one_line_error(code, err, *messages):
    assert code == 2 and err.startswith("physgan: error: ") and err.count("\n") == 1, err
    for message in messages:
        assert message in err, err


def strict_json(path):
    """JSON as the standard has it: NaN or infinities are errors."""
    return json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"{path} holds {name}"))


def stages_of(system_name: str, preset: str = "quick", *overrides: str) -> tuple:
    from physgan import config as cfg

    system = get_system(system_name)
    values = cfg.merge(preset_path_values(system_name, preset), cfg.parse_overrides(list(overrides)))
    return system, resolve(system, values)


# ------------------------------------------------------------------------------------- the toy, whole runs


@pytest.fixture
def toy_files(toy, tmp_path, capsys):
    """Two independent toy Monte Carlo files (their provenance records wall_s) and the tiny preset."""
    paths = {}
    for name, seed in (("train", 5), ("test", 6)):
        paths[name] = tmp_path / f"given_{name}.h5"
        code, _, err = run_cli(capsys, "simulate", "toy", "--widths", "0.5,2", "--n-per-width", 100, "--seed", seed,
                               "--out", paths[name], "--quiet")
        assert code == 0, err
    paths["preset"] = tmp_path / "toy.toml"
    paths["preset"].write_text(TOY_PRESET)
    return paths


def test_given_physgan_files_replace_the_monte_carlo(toy_files, tmp_path, capsys, one_torch_thread):
    run = tmp_path / "run"
    given = ("--train-data", toy_files["train"], "--test-data", toy_files["test"])
    code, out, err = run_cli(capsys, "run", "toy", "--preset", toy_files["preset"], *given, "--out", run)
    summary = strict_json(run / "timings.json")
    assert code == (0 if summary["verdict"] == "pass" else 1), err
    for name in ("train", "test"):  # a physgan file is copied byte for byte, provenance and tables included
        assert filecmp.cmp(toy_files[name], run / "data" / f"{name}.h5", shallow=False)
    assert set(summary["timings_s"]) >= {"import train", "import test", "train", "sample", "validate"}
    assert not {"simulate train", "simulate test"} & set(summary["timings_s"])

    # the sources record: absolute path, size, SHA-256, format and the file's own provenance
    sources = strict_json(run / "data/sources.json")
    assert summary["data_sources"] == sources
    for name in ("train", "test"):
        record, path = sources[name], toy_files[name]
        assert record["path"] == str(path.resolve()) and record["bytes"] == path.stat().st_size
        assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert (record["format"], record["source"], record["n"]) == ("physgan-hdf5", "mc", 200)
        assert record["provenance"] == open_samples(path).provenance
        assert record["monte_carlo_s"] == record["provenance"]["wall_s"] > 0

    # the Monte Carlo time comes from the files' provenance: the speed-up is stated, and says where from
    recorded = sum(sources[name]["provenance"]["wall_s"] for name in ("train", "test"))
    speed = summary["speed"]
    assert speed["monte_carlo"]["seconds"] == pytest.approx(recorded)
    assert speed["monte_carlo"]["time_from"] == {"train": "provenance", "test": "provenance"}
    assert speed["monte_carlo"]["per_second"] == pytest.approx(400 / recorded)
    assert speed["speed_up"] == pytest.approx(speed["generator"]["per_second"] / speed["monte_carlo"]["per_second"])
    assert strict_json(run / "report/metrics.json")["speed"] == speed
    assert "speed-up" in out and "Monte Carlo time from the provenance" in out

    # --resume with the same files keeps them; other files, or none, are refused
    for name in ("samples", "report", "timings.json"):
        (run / name).unlink() if name.endswith(".json") else shutil.rmtree(run / name)
    kept = {name: (run / "data" / f"{name}.h5").stat().st_mtime_ns for name in ("train", "test")}
    code, out, err = run_cli(capsys, "run", "toy", "--preset", toy_files["preset"], *given, "--out", run, "--resume")
    assert code == (0 if strict_json(run / "timings.json")["verdict"] == "pass" else 1), err
    assert "[import train] kept from the earlier start" in out
    assert {name: (run / "data" / f"{name}.h5").stat().st_mtime_ns for name in kept} == kept
    swapped = ("--train-data", toy_files["test"], "--test-data", toy_files["train"])
    code, _, err = run_cli(capsys, "run", "toy", "--preset", toy_files["preset"], *swapped, "--out", run, "--resume")
    assert_one_line_error(code, err, "--resume: the run started with --train-data", str(toy_files["train"].resolve()))
    code, _, err = run_cli(capsys, "run", "toy", "--preset", toy_files["preset"], "--out", run, "--resume")
    assert_one_line_error(code, err, "not simulated train data")


def test_a_file_without_a_recorded_monte_carlo_time(toy_files, tmp_path, capsys, one_torch_thread):
    """A given file that records no Monte Carlo time: the speed line says so, no speed-up is made up, and the
    test file simulated in the run is timed as before."""
    untimed = tmp_path / "untimed.h5"
    samples = open_samples(toy_files["train"])
    provenance = {key: value for key, value in samples.provenance.items() if key != "wall_s"}
    with SampleWriter(untimed, system="toy", source="mc", provenance=provenance) as writer:
        writer.append(**samples.read_chunk(0, samples.n))
    assert monte_carlo_seconds(open_samples(untimed)) is None
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "run", "toy", "--preset", toy_files["preset"], "--train-data", untimed,
                             "--out", run)
    summary = strict_json(run / "timings.json")
    assert code == (0 if summary["verdict"] == "pass" else 1), err
    assert {"import train", "simulate test"} <= set(summary["timings_s"])
    speed = summary["speed"]
    assert speed["monte_carlo"]["time_from"] == {"train": None, "test": "run"}
    assert speed["monte_carlo"]["seconds"] is None and speed["monte_carlo"]["per_second"] is None
    assert speed["speed_up"] is None and speed["generator"]["per_second"] > 0
    assert strict_json(run / "report/metrics.json")["speed"] == speed
    assert "Monte Carlo time unknown (the given train file records none): no speed-up stated" in out
    html = (run / "report/report.html").read_text()
    assert "Monte Carlo time unknown" in html and "<td>unknown</td>" in html
    sources = strict_json(run / "data/sources.json")
    assert sources["test"] is None and sources["train"]["monte_carlo_s"] is None


def test_the_speed_of_a_run_without_a_known_monte_carlo_time():
    speed = speed_summary({"monte_carlo": {"n": 300, "seconds": None, "time_from": {"train": None, "test": None}},
                           "generator": {"n": 100, "seconds": 0.5, "device": "cpu"}})
    assert speed["speed_up"] is None and speed["monte_carlo"]["per_second"] is None
    json.dumps(to_json(speed), allow_nan=False)
    assert speed_line(speed) == ("generator 200 samples/s (cpu); Monte Carlo time unknown (the given train and test "
                                 "files record none): no speed-up stated")
    table = speed_content(speed)["tables"][0]
    assert table["rows"][0] == ["Monte Carlo", "300", "unknown", "unknown", "unknown"]
    assert "no speed-up is stated" in table["note"]
    timed = {"train": "run", "test": "provenance"}
    known = speed_summary({"monte_carlo": {"n": 300, "seconds": 3.0, "time_from": timed},
                           "generator": {"n": 100, "seconds": 0.5, "device": "cpu"}})
    assert known["speed_up"] == pytest.approx(2.0)
    assert "(the given test file: Monte Carlo time from the provenance): speed-up 2x" in speed_line(known)


# ------------------------------------------------------------------------------------- Ising files


def ising_npz(path, L: int, n: int = 6):
    spins = np.random.default_rng(0).choice(np.array([-1, 1], np.int8), size=(n, L, L))
    np.savez(path, spins=spins, T=np.full(n, 2.5))
    return path


def test_simulate_records_its_wall_time_and_merge_sums_it(tmp_path, capsys):
    for i in range(2):
        code, _, err = run_cli(capsys, "simulate", "ising", "--L", 4, "--temps", 2.5, "--n-per-temp", 10, "--shard",
                               f"{i}/2", "--out", tmp_path / f"s{i}.h5", "--quiet")
        assert code == 0, err
    seconds = [open_samples(tmp_path / f"s{i}.h5").provenance["wall_s"] for i in range(2)]
    assert all(s > 0 for s in seconds)
    assert run_cli(capsys, "merge", tmp_path / "s0.h5", tmp_path / "s1.h5", "--out", tmp_path / "m.h5")[0] == 0
    assert monte_carlo_seconds(open_samples(tmp_path / "m.h5")) == pytest.approx(sum(seconds))


def test_an_ising_file_of_the_preset_lattice_is_accepted_in_any_format(tmp_path):
    system, stages = stages_of("ising")  # quick: L = 16
    given = given_data(system, stages, {"train": ising_npz(tmp_path / "spins.npz", 16), "test": None})
    record = given["train"]["record"]
    assert (record["format"], record["source"], record["n"], record["monte_carlo_s"]) == ("npz", "external", 6, None)
    assert "no physgan provenance" in record["provenance"]["note"]
    save_as_physgan(given["train"]["samples"], tmp_path / "train.h5", record)
    converted = open_samples(tmp_path / "train.h5")
    assert (converted.format, converted.source, converted.n) == ("physgan-hdf5", "external", 6)
    assert converted.provenance["converted_from"]["sha256"] == record["sha256"]
    assert converted.provenance["converted_from"]["format"] == "npz"
    np.testing.assert_array_equal(converted.read("spins"), np.load(tmp_path / "spins.npz")["spins"])


def test_a_pickle_is_read_only_with_allow_pickle(tmp_path, capsys):
    import pickle

    path = tmp_path / "Ising2DFM_reSample_L16_T=2.25.pkl"
    bits = np.random.default_rng(0).integers(0, 2, (4, 16 * 16)).astype(np.uint8)
    path.write_bytes(pickle.dumps(np.packbits(bits, axis=1), protocol=4))
    code, _, err = run_cli(capsys, "run", "ising", "--train-data", path, "--out", tmp_path / "run")
    assert_one_line_error(code, err, "--train-data: ", "pass --allow-pickle if you trust it")
    assert not (tmp_path / "run").exists()
    system, stages = stages_of("ising")
    given = given_data(system, stages, {"train": path, "test": None}, allow_pickle=True)
    assert given["train"]["record"]["format"] == "mehta-pickle"


@pytest.mark.parametrize("args, messages", [
    (("ising", "--train-data", "{L8}"), ("--train-data {L8}: lattices of 8 x 8 spins, but the preset's "
                                         "simulate_train.L is 16", "--set simulate_train.L=8")),
    (("ising", "--test-data", "{L8}"), ("--test-data {L8}", "simulate_test.L is 16")),
    (("jets", "--train-data", "{L16}"), ("--train-data {L16}: holds ising samples, but this is a jets run",)),
    (("ising", "--train-data", "{L16}", "--test-data", "{L16}"), ("are the same file",)),
    (("ising", "--train-data", "{tmp}/missing.h5"), ("--train-data: {tmp}/missing.h5: no such file",)),
])
def test_files_that_do_not_fit_the_preset_are_refused_before_anything_is_written(args, messages, tmp_path, capsys):
    names = {"L8": ising_npz(tmp_path / "L8.npz", 8), "L16": ising_npz(tmp_path / "L16.npz", 16), "tmp": tmp_path}
    code, _, err = run_cli(capsys, "run", *(str(a).format(**names) for a in args), "--out", tmp_path / "run")
    assert_one_line_error(code, err, *(m.format(**names) for m in messages))
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------- jets files


def lagan_file(path, n: int = 8, *, pixels: int = 25, signal=None, pt=None, mass=None):
    """A LAGAN-style jet-image file (datasets only, labels stored as float as LAGAN did)."""
    from physgan.systems.jets import DATA_FIELDS

    rng = np.random.default_rng(1)
    arrays = {name: rng.uniform(0.1, 0.9, n).astype(np.float32) for name in DATA_FIELDS}
    arrays["image"] = rng.exponential(1.0, (n, pixels, pixels)).astype(np.float32)
    arrays["signal"] = (np.arange(n) % 2 if signal is None else np.broadcast_to(signal, n)).astype(np.float32)
    arrays["jet_pt"] = rng.uniform(251, 299, n) if pt is None else np.broadcast_to(pt, n)
    arrays["jet_mass"] = rng.uniform(65, 95, n) if mass is None else np.broadcast_to(mass, n)
    with h5py.File(path, "w") as f:
        for name, values in arrays.items():
            f[name] = np.asarray(values, np.float32)
    return path


def test_a_lagan_file_is_checked_and_converted_once(tmp_path):
    system, stages = stages_of("jets")  # quick: both classes, 250 < pT < 300 GeV, no mass window
    paths = {"train": lagan_file(tmp_path / "train.h5"), "test": lagan_file(tmp_path / "test.h5", 6)}
    given = given_data(system, stages, paths)
    assert [given[name]["record"]["format"] for name in paths] == ["lagan-hdf5", "lagan-hdf5"]
    assert given["train"]["record"]["provenance"]["note"].startswith("LAGAN-style HDF5")
    record = given["train"]["record"]
    save_as_physgan(given["train"]["samples"], tmp_path / "run/data/train.h5", record)
    converted = open_samples(tmp_path / "run/data/train.h5")
    assert converted.format == "physgan-hdf5" and set(converted.fields) == set(system.DATA_FIELDS)
    assert converted.provenance["converted_from"] == record  # the original: path, bytes, sha256, format, ...
    for name in system.DATA_FIELDS:
        np.testing.assert_array_equal(converted.read(name), given["train"]["samples"].read(name), err_msg=name)


def test_a_jetnet_file_goes_through_the_chain_once(tmp_path):
    """A constituent-level file (JetNet: W jets only) against a preset for W' jets in a window that holds them;
    the converted file stores the chain's images and jet fields, not the constituents."""
    from tests.systems.jets.conftest import batch, prongs

    jets = batch([prongs([(0.0, 0.0, 0.6), (0.3, 0.1, 0.4)], n_per_prong=40, pt=275.0, seed=k) for k in range(6)])
    padded = jets.padded(80)
    pt = padded[..., 0].sum(axis=1)
    rel = np.stack([padded[..., 1], padded[..., 2], padded[..., 0] / pt[:, None], (padded[..., 0] > 0)], axis=-1)
    with h5py.File(tmp_path / "w.hdf5", "w") as f:
        f["particle_features"] = rel.astype(np.float32)
        f["jet_features"] = np.stack([pt, np.zeros(6), np.zeros(6), (padded[..., 0] > 0).sum(1)], 1).astype(np.float32)
    system, stages = stages_of("jets", "quick", "simulate_train.classes=wprime", "simulate_train.pt=150:400")
    given = given_data(system, stages, {"train": tmp_path / "w.hdf5", "test": None})
    samples, record = given["train"]["samples"], given["train"]["record"]
    assert (samples.format, record["format"]) == ("jetnet-hdf5", "jetnet-hdf5") and "constituents" in samples.fields
    save_as_physgan(samples, tmp_path / "train.h5", record)
    converted = open_samples(tmp_path / "train.h5")
    assert "constituents" not in converted.fields and converted.n == 6
    np.testing.assert_array_equal(converted.read("image"), samples.read("image"))
    assert np.all(converted.read("signal") == 1)
    # the same file against the quick preset's classes (both) is refused
    system, stages = stages_of("jets")
    with pytest.raises(UserError, match="jets of the classes wprime, but the preset's simulate_train.classes are "
                                        "wprime,qcd"):
        given_data(system, stages, {"train": tmp_path / "w.hdf5", "test": None})


@pytest.mark.parametrize("option, make, messages", [
    ("--train-data", dict(pixels=32), ("jet images of 32 x 32 pixels, but physgan's jets are 25 x 25",)),
    ("--train-data", dict(signal=0), ("jets of the classes qcd, but the preset's simulate_train.classes are "
                                      "wprime,qcd", "--set simulate_train.classes=qcd")),
    ("--train-data", dict(pt=np.array([260, 320, 280, 240], np.float32)),
     ("2 of 4 jets have jet_pt outside the preset's simulate_train.pt 250:300 GeV (the file's range: 240.0 to "
      "320.0 GeV); give --set simulate_train.pt=LO:HI covering it",)),
    ("--test-data", dict(pt=np.float32("nan")), ("--test-data", "4 of 4 jets have jet_pt outside the preset's "
                                                 "simulate_test.pt", "the file's range: NaN")),
])
def test_jet_files_outside_the_preset_are_refused(option, make, messages, tmp_path, capsys):
    path = lagan_file(tmp_path / "jets.h5", 4, **make)
    code, _, err = run_cli(capsys, "run", "jets", option, path, "--out", tmp_path / "run")
    assert_one_line_error(code, err, f"{option} {path}: ", *messages)
    assert not (tmp_path / "run").exists()


def test_the_mass_window_is_checked_where_the_preset_has_one(tmp_path):
    from physgan.systems.jets.mc import JetsMCConfig, data_mismatch

    samples = open_samples(lagan_file(tmp_path / "jets.h5", 4, mass=np.array([70, 80, 110, 90], np.float32)))
    assert data_mismatch(samples, JetsMCConfig(), "simulate_train") is None
    problem = data_mismatch(samples, JetsMCConfig(mass_window="60:100"), "simulate_train")
    assert problem.startswith("1 of 4 jets have jet_mass outside the preset's simulate_train.mass_window 60:100 GeV")
    edges = open_samples(lagan_file(tmp_path / "edges.h5", 2, pt=np.array([250, 300], np.float32)))
    assert data_mismatch(edges, JetsMCConfig(), "simulate_train") is None  # the window's ends are inside
