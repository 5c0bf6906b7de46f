"""`physgan simulate jets`, `inspect` and `observables` from the command line, with tiny budgets."""
import h5py
import pytest

from physgan.cli import main

RECIPE = "datasets/jets_lagan.toml"


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_simulate_with_root_then_inspect_and_observables(tmp_path, capsys):
    h5, root = tmp_path / "qcd.h5", tmp_path / "qcd.root"
    code, out, _ = run_cli(capsys, "simulate", "jets", "--classes", "qcd", "--n-per-class", 3, "--seed", 4,
                           "--out", h5, "--root", root)
    assert code == 0 and out == f"wrote 3 jets samples to {h5}\n"  # nothing else on stdout (no banners)
    code, out, _ = run_cli(capsys, "inspect", root)
    assert code == 0 and "format:      physgan-root" in out and "samples:     3" in out
    code, out, _ = run_cli(capsys, "observables", h5)
    assert code == 0 and "background (QCD)" in out


def test_recipe_applies_the_lagan_mass_window(tmp_path, capsys):
    out = tmp_path / "lagan.h5"
    code, _, _ = run_cli(capsys, "simulate", "--recipe", RECIPE, "--classes", "qcd", "--set", "n_per_class=2",
                         "--quiet", "--out", out)
    assert code == 0
    with h5py.File(out) as f:
        mass = f["jet_mass"][:]
    assert len(mass) == 2 and ((mass > 60) & (mass < 100)).all()


def test_extra_pythia_settings_from_the_command_line_are_in_the_provenance(tmp_path, capsys):
    from physgan.io import open_samples

    out = tmp_path / "a14.h5"
    code, _, _ = run_cli(capsys, "simulate", "jets", "--classes", "qcd", "--n-per-class", 2, "--quiet", "--out", out,
                         "--pythia", "Tune:pp = 21", "--pythia", "TimeShower:renormMultFac = 4")
    provenance = open_samples(out).provenance
    assert code == 0 and provenance["config"]["pythia"] == ["Tune:pp = 21", "TimeShower:renormMultFac = 4"]
    assert provenance["generator"]["pythia_settings"]["qcd"][-2:] == provenance["config"]["pythia"]


@pytest.mark.parametrize("args, message", [
    (("jets", "--pt", "300:250"), "need 0 <= lo < hi"),
    (("jets", "--classes", "ttbar"), "classes"),
    (("jets", "--L", 8), "--L is an option of ising, not of jets"),
    (("jets", "--set", "L=8"), "unknown simulate key 'L'"),
    (("ising", "--root", "x.root"), "--root is an option of jets, not of ising"),
    (("jets", "--pythia", "Random:seed = 3"), "the random seed is set by --seed"),
    (("jets", "--classes", "qcd", "--n-per-class", 1, "--pythia", "Bad:key = 1"), "Pythia rejected the setting"),
])
def test_bad_options_are_one_line_errors_and_leave_nothing(args, message, tmp_path, capsys):
    code, _, err = run_cli(capsys, "simulate", *args, "--out", tmp_path / "x.h5")
    assert code == 2 and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
