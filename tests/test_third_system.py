"""A third system is one folder: tests/toy_system implements physgan.systems.interface.System without
touching physgan/, registers itself on import, and goes through simulate -> train -> sample -> validate by
the real command line and engine."""
import argparse
import json
import math
import types

import numpy as np
import pytest

from physgan.cli import _add_system_options, main
from physgan.io import open_samples
from physgan.systems import foreign_readers, get_system, register, system_names
from physgan.systems.interface import Generative, Option, System, Validation, missing_members

def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", ["ising", "jets", "toy"])
def test_every_system_provides_the_whole_interface(name, toy):
    system = get_system(name)
    assert missing_members(system, System) == []
    assert missing_members(system.generative, Generative) == []
    assert missing_members(system.validation, Validation) == []


def test_the_registry(toy):
    assert {"ising", "jets", "toy"} <= set(system_names())
    readers = [reader.__module__ for reader in foreign_readers()]
    # jets' readers claim only exact layouts; Ising's .npz reader takes any array named X: jets first
    assert readers.index("physgan.systems.jets.formats") < readers.index("physgan.systems.ising.formats")
    assert register(toy) is toy  # registering again changes nothing
    with pytest.raises(TypeError, match="lacks NAME"):
        register(types.ModuleType("not_a_system"))


def test_toy_through_simulate_train_sample_validate(toy, tmp_path, capsys, one_torch_thread):
    train, test, gen, run = (tmp_path / name for name in ("train.h5", "test.h5", "gen.h5", "run"))
    for path, seed in ((train, 1), (test, 2)):
        code, out, _ = run_cli(capsys, "simulate", "toy", "--widths", "0.5,1,2", "--n-per-width", 200,
                               "--seed", seed, "--out", path)
        assert code == 0 and out == f"wrote 600 toy samples to {path}\n"
    samples = open_samples(train)
    for width, x2 in toy.per_width(samples).items():  # the Monte Carlo's mean x^2 is width^2 within errors
        expected, spread = toy.exact_mean_square(width)
        assert abs(x2.mean() - expected) < 4 * spread / math.sqrt(len(x2))
    code, out, _ = run_cli(capsys, "observables", train)
    assert code == 0 and "<x^2>" in out

    code, _, err = run_cli(capsys, "train", "--data", train, "--out", run, "--device", "cpu", "--quiet",
                           *("--set", "steps=20", "--set", "n_critic=1", "--set", "monitor_every=10"))
    assert code == 0, err
    checkpoint = run / "checkpoints" / "best.pt"
    assert checkpoint.exists()

    code, _, err = run_cli(capsys, "sample", "--checkpoint", checkpoint, "--width", "0.5,1,2", "--n", 200,
                           "--device", "cpu", "--quiet", "--out", gen)
    assert code == 0, err
    generated = open_samples(gen)
    assert (generated.system, generated.source) == ("toy", "gan")
    widths, counts = np.unique(generated.read("width"), return_counts=True)
    assert widths.tolist() == [0.5, 1.0, 2.0] and counts.tolist() == [200] * 3

    code, out, err = run_cli(capsys, "validate", "--reference", test, "--generated", gen, "--train", train,
                             "--out", tmp_path / "report", "--quiet")
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert code == (0 if metrics["verdict"] == "pass" else 1), err  # the exit status is the verdict's
    assert metrics["system"] == "toy" and metrics["verdict"] in ("pass", "fail")
    assert set(metrics["observables"]) == {"x2", "x_mean"}
    assert metrics["toy"]["memorisation"]["checked"]
    assert all(abs(row["ref_pull"]) < 4 for row in metrics["toy"]["exact_x2"])  # the reference is exact Monte Carlo


def test_toy_options_and_those_of_other_systems(toy, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    assert "toy:\n  --widths WIDTHS" in capsys.readouterr().out
    for args, message in [(("toy", "--L", 8), "--L is an option of ising, not of toy"),
                          (("ising", "--widths", "1"), "--widths is an option of toy, not of ising"),
                          (("toy", "--n-per-width", 0), "n_per_width must be at least 1")]:
        code, _, err = run_cli(capsys, "simulate", *args, "--out", tmp_path / "x.h5")
        assert code == 2 and err.startswith("physgan: error: ") and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_flag_two_systems_declare_must_parse_the_same_way():
    a = types.SimpleNamespace(NAME="a", SIMULATE_OPTIONS=(Option("--size", "L", "lattice side", type=int),))
    b = types.SimpleNamespace(NAME="b", SIMULATE_OPTIONS=(Option("--size", "side", "side length", type=int),))
    parser = argparse.ArgumentParser()
    _add_system_options(parser, "SIMULATE_OPTIONS", [a, b])
    assert "also takes --size (see a)" in parser.format_help()
    c = types.SimpleNamespace(NAME="c", SIMULATE_OPTIONS=(Option("--size", "side", "side length", type=float),))
    with pytest.raises(TypeError, match="a and c declare --size differently"):
        _add_system_options(argparse.ArgumentParser(), "SIMULATE_OPTIONS", [a, c])


def test_toy_through_physgan_run(toy, tmp_path, capsys, one_torch_thread):
    preset = tmp_path / "toy.toml"
    preset.write_text('system = "toy"\n[simulate_train]\nwidths = [0.5, 2.0]\nn_per_width = 100\nseed = 1\n'
                      '[simulate_test]\nwidths = [0.5, 2.0]\nn_per_width = 100\nseed = 2\n'
                      '[train]\nsteps = 10\nn_critic = 1\nmonitor_every = 5\ndevice = "cpu"\n'
                      '[sample]\nn_per_condition = 100\n')
    code, out, err = run_cli(capsys, "run", "toy", "--preset", preset, "--out", tmp_path / "run", "--quiet")
    summary = json.loads((tmp_path / "run" / "timings.json").read_text())
    assert code == (0 if summary["verdict"] == "pass" else 1), err
    metrics = json.loads((tmp_path / "run" / "report" / "metrics.json").read_text())
    assert [row["width"] for row in metrics["fidelity"]["per_width"]] == [0.5, 2.0]
    assert [c["check"] for c in summary["checks"] if c["check"].endswith("(preset)")] == [
        "mean x^2 at width 0.5 (preset)", "mean x^2 at width 2 (preset)"]
