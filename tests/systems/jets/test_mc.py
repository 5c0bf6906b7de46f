"""The Pythia + FastJet Monte Carlo: physics of a small real sample, provenance, seeds, shards, errors."""
import json

import h5py
import numpy as np
import pytest

from physgan.errors import UserError
from physgan.io import merge_sample_files, open_samples
from physgan.systems.jets import DATA_FIELDS, mc
from physgan.systems.jets.mc import JetsMCConfig, plan, run_task, write_file
from physgan.systems.jets.reconstruction import describe_jets
from tests.systems.jets.conftest import N_PER_CLASS


def by_class(path):
    samples = open_samples(path)
    data = {name: samples.read(name) for name in ("signal", "jet_pt", "jet_eta", "jet_mass", "tau_21")}
    return {label: {k: v[data["signal"] == label] for k, v in data.items()} for label in (0, 1)}


def test_wprime_mass_peaks_at_the_w_and_qcd_is_lighter(jets_mc):
    classes = by_class(jets_mc[0])
    wprime, qcd = classes[1]["jet_mass"], classes[0]["jet_mass"]
    assert 72 < np.median(wprime) < 88  # docs/physics.md, "Reference shapes": ~79 GeV
    counts, edges = np.histogram(wprime, bins=np.arange(0, 161, 20))
    assert edges[counts.argmax()] in (60, 80)  # the most populated 20 GeV bin contains 80 GeV
    assert np.median(qcd) < 50  # docs/physics.md: ~33 GeV


def test_wprime_jets_are_more_two_pronged_than_qcd(jets_mc):
    classes = by_class(jets_mc[0])
    wprime, qcd = classes[1]["tau_21"], classes[0]["tau_21"]
    error = np.hypot(wprime.std() / np.sqrt(len(wprime)), qcd.std() / np.sqrt(len(qcd)))
    assert qcd.mean() - wprime.mean() > 3 * error  # docs/physics.md, "Reference shapes": ~0.31 vs ~0.49
    assert 0.2 < wprime.mean() < 0.42 and 0.38 < qcd.mean() < 0.6


def test_selection_and_balance(jets_mc):
    for jets in by_class(jets_mc[0]).values():
        assert len(jets["signal"]) == N_PER_CLASS
        assert np.all((jets["jet_pt"] > 250) & (jets["jet_pt"] < 300) & (np.abs(jets["jet_eta"]) < 2))


def test_provenance_holds_every_setting_version_and_seed(jets_mc):
    samples = open_samples(jets_mc[0])
    prov = samples.provenance
    assert prov["config"]["seed"] == 11 and prov["shard"] == "0/1"
    generator = prov["generator"]
    assert "Wprime:coup2WZ = 1" in generator["pythia_settings"]["wprime"]
    assert "PhaseSpace:pTHatMin = 200" in generator["pythia_settings"]["qcd"]
    assert set(generator["versions"]) >= {"pythia8mc", "fastjet"}
    table = samples.tables["mc"]
    assert sorted(table["class"]) == ["qcd", "wprime"] and np.all(table["pythia_seed"] > 0)
    assert table["jets"].sum() == 2 * N_PER_CLASS and np.all(table["events"] > table["jets"])


def test_same_seed_same_jets_other_seed_other_jets():
    config = JetsMCConfig(n_per_class=3, classes=["qcd"], seed=5)
    (task,) = plan(config, (0, 1))
    first, again = run_task(task, config), run_task(task, config)
    for name, values in first.fields.items():
        np.testing.assert_array_equal(values, again.fields[name])
    rebuilt = describe_jets(first.particles)  # the chain is idempotent on its own trimmed particles
    for name in DATA_FIELDS[2:] + ("image",):
        np.testing.assert_array_equal(rebuilt[name], first.fields[name], err_msg=name)
    other = plan(JetsMCConfig(n_per_class=3, classes=["qcd"], seed=6), (0, 1))[0]
    assert other.pythia_seed != task.pythia_seed


def test_tasks_do_not_depend_on_workers_and_shards_split_the_work():
    config = JetsMCConfig(n_per_class=1200, seed=3)
    assert plan(config, (0, 1)) == plan(JetsMCConfig(n_per_class=1200, seed=3, workers=2), (0, 1))
    shards = [plan(config, (i, 3)) for i in range(3)]
    for name in ("wprime", "qcd"):
        assert sum(t.n for tasks in shards for t in tasks if t.name == name) == 1200
    seeds = [t.pythia_seed for tasks in shards for t in tasks]
    assert len(set(seeds)) == len(seeds)
    assert max(t.n for t in plan(config, (0, 1))) <= mc.TASK_JETS


def test_shards_merge_even_when_run_with_different_workers(tmp_path):
    paths = [tmp_path / f"s{i}.h5" for i in range(2)]
    for i, path in enumerate(paths):  # (one task per shard: runs in this process whatever `workers` says)
        write_file(path, JetsMCConfig(n_per_class=4, classes=["qcd"], seed=2, workers=i + 1), (i, 2), quiet=True)
    merged = merge_sample_files([str(p) for p in paths], tmp_path / "all.h5")
    assert merged.n == 4 and list(merged.tables["mc"]["shard"]) == [0, 1]


def test_mass_window_is_applied():
    config = JetsMCConfig(n_per_class=4, classes=["qcd"], mass_window="60:100", seed=1)
    result = run_task(plan(config, (0, 1))[0], config)
    assert np.all((result.fields["jet_mass"] > 60) & (result.fields["jet_mass"] < 100))


@pytest.mark.parametrize("settings, message", [
    ({"classes": ["zprime"]}, "classes"), ({"classes": "qcd,qcd"}, "classes"), ({"pt": "300:250"}, "lo < hi"),
    ({"pt": "fast"}, "lo:hi"), ({"mass_window": "60"}, "lo:hi"), ({"workers": 0}, "workers"),
    ({"pythia": ["Tune:pp 21"]}, "Key = value"), ({"pythia": ["= 21"]}, "Key = value"),
    ({"pythia": ["Random:seed = 7"]}, "random seed"),
])
def test_bad_settings_are_user_errors(settings, message):
    with pytest.raises(UserError, match=message):
        JetsMCConfig(**settings)


def test_settings_accept_strings_and_pairs():
    config = JetsMCConfig(classes=["wprime,qcd"], pt=(250, 300), mass_window="[60, 100]")
    assert (config.classes, config.pt, config.mass_window, config.pthat) == (["wprime", "qcd"], "250:300", "60:100",
                                                                             "200:400")


def test_extra_pythia_settings_come_last_and_change_the_jets():
    config = JetsMCConfig(n_per_class=3, classes=["qcd"], seed=5, pythia="Tune:pp = 21")  # ATLAS A14
    assert mc.pythia_settings(config, "qcd")[-1] == "Tune:pp = 21"
    assert mc.pythia_settings(config, "wprime")[-1] == "Tune:pp = 21"
    (task,) = plan(config, (0, 1))
    assert task == plan(JetsMCConfig(n_per_class=3, classes=["qcd"], seed=5), (0, 1))[0]  # same seed ...
    tuned, monash = run_task(task, config), run_task(task, JetsMCConfig(n_per_class=3, classes=["qcd"], seed=5))
    assert not np.array_equal(tuned.fields["jet_pt"], monash.fields["jet_pt"])  # ... other events


def test_a_setting_pythia_rejects_is_a_user_error():
    config = JetsMCConfig(n_per_class=1, classes=["qcd"], pythia=["TimeShower:alphaSvalue = abc"])
    with pytest.raises(UserError, match="Pythia rejected the setting 'TimeShower:alphaSvalue = abc'"):
        run_task(plan(config, (0, 1))[0], config)


def test_an_impossible_selection_stops_with_a_user_error(monkeypatch, tmp_path):
    monkeypatch.setattr(mc, "MAX_EVENTS_WITHOUT_JETS", 20)
    config = JetsMCConfig(n_per_class=1, classes=["qcd"], pt="2000:2100", pthat="200:400")
    with pytest.raises(UserError, match="no qcd jet passed the selection"):
        write_file(tmp_path / "none.h5", config, quiet=True)
    assert list(tmp_path.iterdir()) == []  # no partial output


def test_root_output_has_the_design_layout(jets_mc):
    import uproot

    with uproot.open(jets_mc[1]) as f:
        assert f.classnames()["jets;1"] == "TTree"
        tree = f["jets"]
        assert {"npart", "part_pt", "part_eta", "part_phi", "part_e", "image", "signal", "tau_21"} <= set(tree.keys())
        assert tree.num_entries == 2 * N_PER_CLASS
        assert json.loads(str(f["physgan"]))["source"] == "mc"
    with h5py.File(jets_mc[0]) as f:
        assert "physgan_format" in f.attrs and f["image"].shape == (2 * N_PER_CLASS, 25, 25)


@pytest.mark.slow
def test_two_workers_write_the_same_file_as_one(tmp_path):
    paths = {workers: tmp_path / f"w{workers}.h5" for workers in (1, 2)}
    for workers, path in paths.items():
        write_file(path, JetsMCConfig(n_per_class=3, seed=8, workers=workers), quiet=True)
    with h5py.File(paths[1]) as one, h5py.File(paths[2]) as two:
        for name in DATA_FIELDS:
            np.testing.assert_array_equal(one[name][:], two[name][:], err_msg=name)
