"""The command line: real entry points with tiny budgets, and the user-error contract."""
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from physgan.cli import main


def run_cli(*args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_help_is_fast_and_shows_examples():
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "physgan", "--help"],
                            capture_output=True, text=True, check=True)
    assert "physgan simulate ising --L 32" in result.stdout
    heavy = {"torch", "h5py", "scipy", "matplotlib", "uproot", "awkward", "energyflow", "fastjet", "pythia8"}
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines()[1:]}
    assert not heavy & imported, f"--help imported {heavy & imported}"


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path, capsys):
    """physgan inspect F | head: here the pipe is closed before physgan writes; the exit is quiet."""
    run_cli("simulate", "ising", "--L", 4, "--temps", "2.0", "--n-per-temp", 8, "--out", tmp_path / "mc.h5",
            capsys=capsys)
    read_end, write_end = os.pipe()
    os.close(read_end)
    result = subprocess.run([sys.executable, "-m", "physgan", "inspect", str(tmp_path / "mc.h5")], stdout=write_end,
                            stderr=subprocess.PIPE, text=True)
    os.close(write_end)
    assert (result.returncode, result.stderr) == (141, "")


@pytest.mark.parametrize("command", ["simulate", "merge", "inspect", "observables"])
def test_every_subcommand_has_examples(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert f"physgan {command}" in capsys.readouterr().out


def test_simulate_inspect_observables(tmp_path, capsys):
    out = tmp_path / "mc.h5"
    code, stdout, _ = run_cli("simulate", "ising", "--L", 8, "--temps", "2.0,3.0", "--n-per-temp", 200,
                              "--seed", 2, "--chains", 16, "--out", out, capsys=capsys)
    assert code == 0 and "wrote 400 ising samples" in stdout
    code, stdout, _ = run_cli("inspect", out, capsys=capsys)
    assert code == 0
    for expected in ("system:      ising", "source:      mc", "samples:     400", "spins int8 (400, 8, 8)",
                     "T: 2 values: 2 (n=200), 3 (n=200)", "table:       mc", '"seed": 2'):
        assert expected in stdout
    code, stdout, _ = run_cli("observables", out, capsys=capsys)
    assert code == 0 and "4 of 4 comparisons within 4 standard errors" in stdout


def test_recipe_with_overrides_matches_plain_options(tmp_path, capsys):
    recipe = tmp_path / "r.toml"
    recipe.write_text('system = "ising"\n[simulate]\nL = 8\ntemps = "2.0:3.0:2"\nn_per_temp = 50\nseed = 4\nchains = 8\n')
    assert run_cli("simulate", "--recipe", recipe, "--set", "n_per_temp=40", "--out", tmp_path / "a.h5",
                   "--quiet", capsys=capsys)[0] == 0
    assert run_cli("simulate", "ising", "--L", 8, "--temps", "2,3", "--n-per-temp", 40, "--seed", 4, "--chains", 8,
                   "--out", tmp_path / "b.h5", "--quiet", capsys=capsys)[0] == 0
    with h5py.File(tmp_path / "a.h5") as a, h5py.File(tmp_path / "b.h5") as b:
        np.testing.assert_array_equal(a["spins"][:], b["spins"][:])


def test_sharded_simulation_and_merge_from_the_command_line(tmp_path, capsys):
    for i in range(2):
        assert run_cli("simulate", "ising", "--L", 4, "--temps", 2.5, "--n-per-temp", 10, "--shard", f"{i}/2",
                       "--out", tmp_path / f"s{i}.h5", "--quiet", capsys=capsys)[0] == 0
    code, stdout, _ = run_cli("merge", tmp_path / "s0.h5", tmp_path / "s1.h5", "--out", tmp_path / "m.h5", capsys=capsys)
    assert code == 0 and "10 samples" in stdout


BAD_SIMULATIONS = [
    (["--L", "1"], "L must be at least 2"),
    (["--L", "7", "--algorithm", "metropolis"], "even L >= 4"),
    (["--L", "2", "--algorithm", "metropolis"], "even L >= 4"),
    (["--temps", "-1"], "positive"),
    (["--temps", "2.0,abc"], "not a number"),
    (["--temps", "1:2"], "start:stop:count"),
    (["--n-per-temp", "0"], "at least 1"),
    (["--shard", "2/2"], "0 <= i < N"),
    (["--set", "nonsense=1"], "unknown simulate key"),
    (["--L", "x"], "invalid int value"),
]


@pytest.mark.parametrize("options, message", BAD_SIMULATIONS)
def test_bad_simulation_options(tmp_path, capsys, options, message):
    out = tmp_path / "o.h5"
    code, _, err = run_cli("simulate", "ising", "--temps", "2.0", "--n-per-temp", 4, *options, "--out", out,
                           capsys=capsys)
    assert code == 2
    assert err.startswith("physgan: error: ") and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_existing_and_unwritable_outputs(tmp_path, capsys):
    existing = tmp_path / "exists.h5"
    existing.write_text("keep me")
    code, _, err = run_cli("simulate", "ising", "--L", 4, "--temps", 2, "--n-per-temp", 2, "--out", existing,
                           capsys=capsys)
    assert code == 2 and "--force" in err and existing.read_text() == "keep me"
    code, _, err = run_cli("simulate", "ising", "--L", 4, "--temps", 2, "--n-per-temp", 2,
                           "--out", existing / "sub.h5", capsys=capsys)
    assert code == 2 and "cannot write" in err


def test_inspect_of_corrupt_or_missing_files_is_one_line(tmp_path):
    bad = tmp_path / "corrupt.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n garbage")
    for path in (bad, tmp_path / "missing.h5"):
        result = subprocess.run([sys.executable, "-m", "physgan", "inspect", str(path)], capture_output=True, text=True)
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.startswith("physgan: error: ") and result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr


def test_recipe_for_another_system_is_refused(tmp_path, capsys):
    recipe = tmp_path / "r.toml"
    recipe.write_text('system = "potts"\n')
    code, _, err = run_cli("simulate", "--recipe", recipe, "--out", tmp_path / "x.h5", capsys=capsys)
    assert code == 2 and "unknown system 'potts'" in err
