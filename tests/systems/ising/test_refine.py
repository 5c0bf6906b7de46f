"""Exact local refinement: Metropolis sweeps keep an equilibrium sample in equilibrium, repair a wrong
sample's local statistics, and a refined file records its sweeps and reproduces from its seed."""
import numpy as np
import pytest

from physgan.cli import main
from physgan.io import open_samples
from physgan.systems.ising import mc, refine_lattices
from physgan.systems.ising.exact import energy_per_site as exact_energy
from physgan.systems.ising.exact import specific_heat_per_site
from physgan.systems.ising.observables import energy_per_site
from physgan.stats import jackknife, mean_and_error
from tests.validation.test_verdict_calibration import remove_lone_flipped_spins, reproduce_measured_level_populations


def monte_carlo(temps, n, seed, L=16):
    config = mc.IsingMCConfig(L=L, temps=[float(t) for t in temps], n_per_temp=n, seed=seed, chains=64)
    spins = np.concatenate([lattices for _, lattices in mc.simulate(config)])
    return {"spins": spins, "T": np.repeat(np.asarray(temps, np.float32), n)}


def level_populations(spins):
    """Fractions of lattices in the ground state and one spin flip above it."""
    e = energy_per_site(spins)
    return np.mean(np.isclose(e, -2)), np.mean(np.isclose(e, -2 + 8 / spins[0].size))


def test_refinement_leaves_an_equilibrium_sample_in_equilibrium():
    """<e> and C of Monte Carlo lattices after 8 sweeps agree with Kaufman's exact values within 4 standard
    errors at every temperature, as they did before."""
    temps, L = (1.8, 2.269, 3.0), 8
    sample = monte_carlo(temps, 2000, seed=3, L=L)
    refined = refine_lattices(sample, 8, (0, 1, 0))
    assert not np.array_equal(refined["spins"], sample["spins"])  # the sweeps did move spins
    for T in temps:
        e = energy_per_site(refined["spins"][sample["T"] == np.float32(T)])
        mean, err = mean_and_error(e)
        assert abs(mean - exact_energy(np.array([T]), L)[0]) < 4 * err
        c, c_err = jackknife(lambda x: L * L * np.var(x) / T ** 2, e)
        assert abs(c - specific_heat_per_site(np.array([T]), L)[0]) < 4 * c_err


@pytest.mark.parametrize("defect, sweeps", [(reproduce_measured_level_populations, 1), (remove_lone_flipped_spins, 2)])
def test_sweeps_repair_the_level_populations_at_low_temperature(defect, sweeps):
    """At T = 1.6 (L = 16): the quick generator's defect (ground states 19 %, single-flip 3 %, where the
    Monte Carlo has about 12 % and 22 %) returns to the Monte Carlo's populations within 4 errors after one
    sweep; a sample with every lone flipped spin removed (68 % ground states) after two (after one it
    measured 16 % and 26 %: each old lone spin flips back, new ones appear, the rest is still settling)."""
    reference = monte_carlo([1.6], 3000, seed=5)
    wrong = defect(monte_carlo([1.6], 3000, seed=6))
    before, after = (level_populations(s["spins"]) for s in (wrong, refine_lattices(wrong, sweeps, (0, 1, 0))))
    truth = level_populations(reference["spins"])
    error = [np.sqrt(2 * p * (1 - p) / 3000) for p in truth]  # two independent samples of 3000
    assert truth[1] - before[1] > 10 * error[1]  # the defect: far too few single-flip lattices
    for measured, expected, err in zip(after, truth, error):
        assert abs(measured - expected) < 4 * err


def test_the_curve_shows_an_equilibrium_sample_staying_right_and_a_wrong_one_repaired():
    """The refinement curve of a Monte Carlo sample against another: every series within 4 combined errors
    at every K (the level populations too). Of a sample whose lone flipped spins were removed: the one-flip
    fraction at the lowest T far off at K = 0, and every series within 4 errors from K = 2 on."""
    temps = (1.6, 2.269, 3.0)
    reference = monte_carlo(temps, 1500, seed=8)
    for raw, wrong in ((monte_carlo(temps, 1500, seed=9), False),
                       (remove_lone_flipped_spins(monte_carlo(temps, 1500, seed=9)), True)):
        curve = refine_lattices.curve(reference, raw, (0, 2), sweeps=(0, 1, 2, 4))
        assert curve["sweeps"] == [0, 1, 2, 4] and np.allclose(curve["T"], temps)
        for name, entry in curve["series"].items():
            pulls = np.abs(np.array(entry["values"]) / np.array(entry["errors"]))
            if wrong:
                pulls = pulls[2:]  # the defect is local: two sweeps repair it
            assert pulls.max() < 4, (name, wrong, pulls)
        if wrong:
            flip = curve["series"]["single_flip"]
            assert abs(flip["values"][0][0]) > 10 * flip["errors"][0][0]


def test_no_sweeps_change_nothing_and_the_streams_follow_the_seed():
    sample = monte_carlo([2.0, 2.5], 100, seed=7)
    assert refine_lattices(sample, 0, (0, 1, 0)) is sample
    first, again, other = (refine_lattices(sample, 2, seed) for seed in ((0, 1, 0), (0, 1, 0), (1, 1, 0)))
    np.testing.assert_array_equal(first["spins"], again["spins"])
    assert not np.array_equal(first["spins"], other["spins"])
    np.testing.assert_array_equal(first["T"], sample["T"])


@pytest.fixture(scope="module")
def checkpoint(small_ising_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("refine_run")
    assert main(["train", "--data", str(small_ising_file), "--out", str(out), "--quiet", "--set", "steps=2",
                 "--set", "batch_size=16", "--set", "group_size=4", "--set", "n_critic=1", "--device", "cpu",
                 "--set", 'network={channels = 8, blocks = 1, critic_channels = 8, critic_blocks = 1}']) == 0
    return out / "checkpoints" / "last.pt"


def test_a_refined_file_records_its_sweeps_and_reproduces_from_its_seed(checkpoint, tmp_path):
    def sample(name, *extra):
        args = ["sample", "--checkpoint", str(checkpoint), "--T", "1.8,3.0", "--n", "64", "--batch-size", "48",
                "--device", "cpu", "--quiet", "--seed", "4", "--out", str(tmp_path / name), *extra]
        assert main(args) == 0
        return open_samples(tmp_path / name)

    raw, plain = sample("raw.h5"), sample("zero.h5", "--refine-sweeps", "0")
    refined, again = (sample(name, "--refine-sweeps", "3") for name in ("a.h5", "b.h5"))
    np.testing.assert_array_equal(raw.read("spins"), plain.read("spins"))  # no sweeps: the generator's output
    assert raw.provenance["config"]["refine"] is None
    np.testing.assert_array_equal(refined.read("spins"), again.read("spins"))
    assert not np.array_equal(refined.read("spins"), raw.read("spins"))
    np.testing.assert_array_equal(refined.read("T"), raw.read("T"))
    assert refined.provenance["config"]["refine"] == {"sweeps": 3, "algorithm": refine_lattices.algorithm}
    assert "Metropolis" in refine_lattices.algorithm and "Wolff" in refine_lattices.algorithm
    # one pass can write the raw sample beside the refined one: the same files as two separate requests
    from physgan.gan.sample import sample_to_file

    sample_to_file(checkpoint, tmp_path / "c.h5", {"T": "1.8,3.0", "n": 64}, batch_size=48, device="cpu", seed=4,
                   refine_sweeps=3, raw_out=tmp_path / "c_raw.h5", quiet=True)
    both = open_samples(tmp_path / "c.h5"), open_samples(tmp_path / "c_raw.h5")
    np.testing.assert_array_equal(both[0].read("spins"), refined.read("spins"))
    np.testing.assert_array_equal(both[1].read("spins"), raw.read("spins"))
    assert both[1].provenance["config"]["refine"] is None


def test_bad_refinement_requests_are_one_line_errors(checkpoint, tmp_path, capsys):
    args = ["sample", "--checkpoint", str(checkpoint), "--T", "2", "--out", str(tmp_path / "x.h5")]
    assert main(args + ["--refine-sweeps", "-1"]) == 2
    assert "--refine-sweeps -1: must be >= 0" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()


def test_a_run_with_refinement_judges_the_raw_generator_beside_the_refined_sample(tmp_path, capsys):
    import json

    from tests.gan.test_train import tiny_run_preset

    run = tmp_path / "run"
    code = main(["run", "ising", "--preset", str(tiny_run_preset(tmp_path)), "--out", str(run),
                 "--set", "sample.refine_sweeps=2"])
    summary = json.loads((run / "timings.json").read_text())
    assert code == (0 if summary["verdict"] == "pass" else 1)
    assert summary["refine_sweeps"] == 2 and summary["raw_generator"]["verdict"] in ("pass", "fail")
    assert {"validate raw", "refinement curve"} <= set(summary["timings_s"])  # the raw sample: in "sample"
    curve = json.loads((run / "refinement/curve.json").read_text())
    assert curve["sweeps"] == [0, 1, 2, 4, 8, 16, 32] and (run / "refinement/curve.png").is_file()
    assert open_samples(run / "samples/generated.h5").provenance["config"]["refine"]["sweeps"] == 2
    assert open_samples(run / "samples/generated_raw.h5").provenance["config"]["refine"] is None
    assert (run / "report_raw/metrics.json").is_file() and (run / "report/metrics.json").is_file()
    assert "the raw generator, without the 2 refinement sweeps" in capsys.readouterr().out


def test_a_system_without_refinement_refuses_it_before_any_work(tmp_path, capsys):
    assert main(["run", "jets", "--out", str(tmp_path / "r"), "--set", "sample.refine_sweeps=1"]) == 2
    assert "sample.refine_sweeps: the jets system has no exact refinement" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
