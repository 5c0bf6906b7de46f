"""The validation engine has teeth: an independent Monte Carlo sample passes, typical generator failures fail.

Reference and test samples are genuine Monte Carlo (L = 16, three temperatures, 1000 configurations
each, seconds with the compiled kernel); the distorted "generated" files are written from them:
3 % of spins flipped at random, the sign of m forced positive below T_c, and configurations simulated at
T - 0.1 labelled T. Also: the metrics.json schema of docs/formats.md, a self-contained report that escapes
file attributes, and the one-line UserError for every bad input.
"""
import json
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

from physgan.errors import UserError
from physgan.io import SampleWriter, open_samples
from physgan.systems.ising import mc
from physgan.systems.ising.exact import critical_temperature
from physgan.systems.ising.observables import correlation_function, energy_per_site
from physgan.systems.ising.validation import correlation_function_fft, structure_factor_kmin
from physgan.validation.histograms import histogram_edges
from physgan.validation.metrics import classifier_two_sample_test, roc_auc
from physgan.validation.validate import validate
from tests.conftest import assert_file_holds_what_was_drawn, drawn_histograms

TEMPS = np.array([1.8, 2.269, 3.0], dtype=np.float32)
MALICIOUS = "<script>alert(1)</script>"
OBSERVABLES = ("e", "abs_m", "m", "m2")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def simulate(path, temps, seed):
    config = mc.IsingMCConfig(L=16, temps=[float(t) for t in temps], n_per_temp=1000, seed=seed, chains=64)
    mc.write_file(path, config, quiet=True)
    return path


def rewrite(source, target, transform=lambda chunk: chunk, **provenance):
    """Copy a sample file chunk by chunk through `transform`, as a generator's output ("gan")."""
    samples = open_samples(source)
    with SampleWriter(target, system="ising", source="gan", provenance={**samples.provenance, **provenance}) as writer:
        for chunk in samples.iter_chunks(1000):
            writer.append(**transform(chunk))
    return target


def flip_three_percent(chunk, rng=np.random.default_rng(7)):
    spins = chunk["spins"].copy()
    spins[rng.random(spins.shape) < 0.03] *= -1
    return {**chunk, "spins": spins}


def collapse_sign_below_tc(chunk):
    """Every configuration below T_c turned to m >= 0 by a global flip: e and |m| stay exactly as they were."""
    spins = chunk["spins"].copy()
    negative = (chunk["T"] < critical_temperature()) & (spins.reshape(len(spins), -1).sum(axis=1) < 0)
    spins[negative] *= -1
    return {**chunk, "spins": spins}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("validate")
    reference = simulate(d / "reference.h5", TEMPS, seed=11)
    independent = simulate(d / "independent_mc.h5", TEMPS, seed=12)
    colder = simulate(d / "colder_mc.h5", TEMPS - np.float32(0.1), seed=13)
    return {
        "dir": d, "reference": reference,
        # an independent Monte Carlo sample, with a hostile string in its attributes
        "independent": rewrite(independent, d / "independent.h5", command=MALICIOUS, note=f'"{MALICIOUS}" & more'),
        "flipped": rewrite(independent, d / "flipped.h5", flip_three_percent),
        "collapsed": rewrite(independent, d / "collapsed.h5", collapse_sign_below_tc),
        # simulated at T - 0.1, labelled T
        "shifted": rewrite(colder, d / "shifted.h5", lambda c: {**c, "T": TEMPS[np.searchsorted(TEMPS - 0.1, c["T"])]}),
    }


@pytest.fixture(scope="module")
def drawn(files):
    """The independent sample's report, and every histogram its plots drew."""
    out = files["dir"] / "report_independent"
    with drawn_histograms() as calls:
        metrics = validate(files["reference"], files["independent"], out, quiet=True)
    return metrics, out, calls


@pytest.fixture(scope="module")
def independent(drawn):
    return drawn[:2]


def failing_observables(metrics):
    return {name for name, result in metrics["observables"].items() if not result["pass"]}


# ---------------------------------------------------------------------------------------------
# Teeth


def test_an_independent_monte_carlo_sample_passes(independent):
    metrics, _ = independent
    assert metrics["verdict"] == "pass" and all(check["pass"] for check in metrics["checks"])
    comparisons = [p for result in metrics["observables"].values() for p in result["per_condition"]]
    assert not any(p["significant"] for p in comparisons + metrics["exact"])
    assert np.median([p["ratio"] for p in comparisons]) < 1.5  # the effect of an honest sample is about 1
    assert {e["quantity"] for e in metrics["exact"]} >= {"e", "C"} and len(metrics["exact"]) >= 2 * len(TEMPS)
    assert metrics["multiple_testing"]["family_size"] == len(comparisons) + len(metrics["exact"])
    for classifier in (metrics["classifier"], metrics["physics_classifier"]):
        assert abs(classifier["auc"] - 0.5) <= 4 * classifier["auc_err"]
    assert metrics["physics_classifier"]["observables"] == [*OBSERVABLES, "w4", "w2", "S_kmin"]
    assert len(metrics["classifier"]["per_condition"]) == len(TEMPS)
    assert metrics["not_judged"] == [] and metrics["judged"] == {"n_ref": 3000, "n_gen": 3000}
    # Fuerrutter's distance of two honest samples: pulls of variance about 2, so D of order sqrt 2
    assert 0.3 < metrics["ising"]["fuerrutter_distance"]["D"] < 3


def test_three_percent_random_spin_flips_fail(files, tmp_path):
    metrics = validate(files["reference"], files["flipped"], tmp_path / "out", quiet=True, pdf=True)
    assert metrics["verdict"] == "fail"
    assert "e" in failing_observables(metrics)
    assert not all(e["pass"] for e in metrics["exact"] if e["quantity"] == "e")  # <e> far from Kaufman's value
    assert metrics["physics_classifier"]["auc"] > 0.5 + 4 * metrics["physics_classifier"]["auc_err"]
    assert metrics["classifier"]["auc"] > 0.5 + 4 * metrics["classifier"]["auc_err"]
    assert metrics["ising"]["fuerrutter_distance"]["D"] > 5
    assert (tmp_path / "out" / "plots" / "hist_e.pdf").is_file()


def test_a_sign_collapse_below_tc_fails_on_signed_m_alone(files, tmp_path):
    metrics = validate(files["reference"], files["collapsed"], tmp_path / "out", quiet=True, classifier=False)
    assert metrics["verdict"] == "fail"
    assert failing_observables(metrics) == {"m"}
    assert [c["check"] for c in metrics["checks"] if not c["pass"]] == ["m: distribution (chi-square on levels)"]
    below = [c["condition"]["T"] < critical_temperature() for c in metrics["conditions"]]
    assert [not p["pass"] for p in metrics["observables"]["m"]["per_condition"]] == below
    fractions = metrics["ising"]["fraction_m_positive"]
    assert [f["gen"] >= 0.99 for f in fractions] == below  # m = 0 exactly stays (rarely, at T_c)
    assert metrics["classifier"] == {"auc": None, "auc_err": None, "skipped": "disabled"}
    assert metrics["physics_classifier"] == {"auc": None, "auc_err": None, "skipped": "disabled"}


def test_temperature_labels_shifted_by_a_tenth_fail(files, tmp_path):
    metrics = validate(files["reference"], files["shifted"], tmp_path / "out", quiet=True, classifier=False)
    assert metrics["verdict"] == "fail"
    assert "e" in failing_observables(metrics)


def test_a_generator_that_returns_its_training_lattices_is_flagged(files, independent, tmp_path):
    """Memorisation is checked only with a training sample; copies of it sit at Hamming distance 0."""
    assert independent[0]["ising"]["memorisation"]["checked"] is False and independent[0]["training"] is None
    metrics = validate(files["independent"], files["reference"], tmp_path / "out", training=files["reference"],
                       quiet=True, classifier=False)
    memo = metrics["ising"]["memorisation"]
    assert memo["checked"] and memo["suspected"]
    assert memo["generated"]["fraction_copies"] == 1.0 and memo["reference"]["fraction_copies"] < 0.2
    assert metrics["training"]["n"] == 3000


def test_results_reproduce_and_do_not_depend_on_the_other_steps(files, independent, tmp_path):
    """Every comparison has its own seeded generator: without the classifier, the numbers are unchanged."""
    again = validate(files["reference"], files["independent"], tmp_path / "out", quiet=True, classifier=False)
    assert again["observables"] == independent[0]["observables"]


# ---------------------------------------------------------------------------------------------
# Outputs


FILE_SCHEMA = {"path": str, "n": int}
OBSERVABLE_SCHEMA = {"w1": float, "w1_floor": float, "ratio": float, "p_value": float, "ks": float,
                     "separation_power": float, "pass": bool, "per_condition": list}
CONDITION_SCHEMA = {"condition": dict, "ref_mean": float, "ref_err": float, "gen_mean": float, "gen_err": float,
                    "w1": float, "w1_floor": float, "ratio": float, "p_value": float, "significant": bool,
                    "beyond_tolerance": bool, "pass": bool}
CHECK_SCHEMA = {"check": str, "measured": str, "threshold": str, "pass": bool}


def assert_schema(entry, schema):
    for key, kind in schema.items():
        assert isinstance(entry[key], kind), (key, entry[key])


def test_metrics_json_follows_the_design_schema(independent):
    metrics, out = independent
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert_schema(metrics, {"schema_version": int, "physgan_version": str, "system": str, "reference": dict,
                            "generated": dict, "verdict": str, "checks": list, "observables": dict, "exact": list,
                            "multiple_testing": dict, "classifier": dict, "physics_classifier": dict,
                            "not_judged": list, "judged": dict})
    assert metrics["schema_version"] == 2 and metrics["multiple_testing"]["method"] == "holm"
    assert metrics["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", metrics["git_commit"])
    for check in metrics["checks"]:
        assert_schema(check, CHECK_SCHEMA)
    assert metrics["system"] == "ising" and metrics["verdict"] in ("pass", "fail")
    for role in ("reference", "generated"):
        assert_schema(metrics[role], FILE_SCHEMA)
        assert metrics[role]["n"] == 3000
    assert list(metrics["observables"]) == list(OBSERVABLES)
    for result in metrics["observables"].values():
        assert_schema(result, OBSERVABLE_SCHEMA)
        assert [p["condition"] for p in result["per_condition"]] == [{"T": 1.8}, {"T": 2.269}, {"T": 3.0}]
        for entry in result["per_condition"]:
            assert_schema(entry, CONDITION_SCHEMA)
    assert_schema(metrics["classifier"], {"auc": float, "auc_err": float})


def test_report_is_self_contained_and_escapes_file_attributes(independent):
    _, out = independent
    html = (out / "report.html").read_text()
    assert MALICIOUS not in html and "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "http://" not in html and "https://" not in html
    sources = re.findall(r'src="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "Fuerrutter" in html and "PASS" in html


def test_plots_are_written(independent):
    _, out = independent
    names = {p.name for p in (out / "plots").iterdir()}
    expected = {f"hist_{name}.png" for name in OBSERVABLES}
    expected |= {"w1_ratio_overview.png", "ising_correlation_function.png", "ising_fraction_m_positive.png"}
    expected |= {f"ising_{name}_vs_T.png" for name in ("e", "abs_m", "chi_prime", "C", "U4")}
    assert expected <= names
    assert not any(name.endswith(".pdf") for name in names)  # only with pdf=True


def test_every_plotted_histogram_is_in_histograms_h5_and_rebuilds_from_the_data(files, drawn):
    """The file holds each drawn histogram (edges, density, error equal); one rebuilt from the reference's
    lattices: the energy per site at T = 1.8 binned on the file's edges gives its counts."""
    metrics, out, calls = drawn
    series = assert_file_holds_what_was_drawn(out / "histograms.h5", calls)
    assert len(series) == 2 * len(OBSERVABLES) * len(TEMPS)  # reference and generated, per observable and T
    ref_e, gen_e = (energy_per_site(samples.read("spins")[samples.read("T") == TEMPS[0]])
                    for samples in (open_samples(files["reference"]), open_samples(files["independent"])))
    first = series["hist_e/condition_0/reference"]
    np.testing.assert_array_equal(first["edges"], histogram_edges(ref_e, gen_e))
    np.testing.assert_array_equal(np.histogram(ref_e, bins=first["edges"])[0], first["counts"])
    with h5py.File(out / "histograms.h5") as f:
        assert dict(f["hist_e"].attrs) == {"observable": "e", "label": "e", "tex": "$e = E/N$", "unit": "J",
                                           "description": "energy per site", "file": "hist_e.png"}
        assert json.loads(f["hist_e/condition_0"].attrs["condition"]) == metrics["conditions"][0]["condition"]
        assert f["hist_e/condition_0"].attrs["label"] == "T = 1.8" and "unit area" in f.attrs["normalisation"]


# ---------------------------------------------------------------------------------------------
# Bad inputs: one UserError each, nothing left behind


def test_different_lattice_sizes(files, small_ising_file, tmp_path):
    with pytest.raises(UserError, match="lattice sizes differ"):
        validate(files["reference"], small_ising_file, tmp_path / "out", quiet=True)


def test_a_condition_missing_from_one_file(files, tmp_path):
    partial = rewrite(files["independent"], tmp_path / "partial.h5",
                      lambda c: {name: values[c["T"] != TEMPS[2]] for name, values in c.items()})
    with pytest.raises(UserError, match=r"T = 3 only in .*reference\.h5"):
        validate(files["reference"], partial, tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()


def test_a_sparse_condition_is_not_judged_and_the_rest_is(files, tmp_path):
    """Five generated samples at T = 3 cannot be judged: that condition is listed with its counts, the others
    are validated as usual."""
    sparse = rewrite(files["independent"], tmp_path / "sparse.h5",
                     lambda c: {name: values[(c["T"] != TEMPS[2]) | (np.arange(len(c["T"])) < 5)]
                                for name, values in c.items()})
    assert np.count_nonzero(open_samples(sparse).read("T") == TEMPS[2]) == 5
    metrics = validate(files["reference"], sparse, tmp_path / "out", quiet=True, classifier=False)
    assert metrics["not_judged"] == [{"condition": {"T": 3.0}, "label": "T = 3", "n_ref": 1000, "n_gen": 5}]
    assert metrics["judged"] == {"n_ref": 2000, "n_gen": 2000}
    assert [c["label"] for c in metrics["conditions"]] == ["T = 1.8", "T = 2.269"]
    assert all(len(r["per_condition"]) == 2 for r in metrics["observables"].values())
    assert metrics["verdict"] == "pass"


def test_without_the_plotting_extras_validate_refuses_before_any_work(files, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mplhep", None)  # import mplhep now raises ImportError
    with pytest.raises(UserError, match=r"pip install 'physgan\[report\]'"):
        validate(files["reference"], files["independent"], tmp_path / "out", quiet=True)
    assert not (tmp_path / "out").exists()


def test_the_command_line_exits_with_the_verdict(files, tmp_path, capsys):
    from physgan.cli import main

    args = ["validate", "--reference", str(files["reference"]), "--no-classifier"]
    assert main(args + ["--generated", str(files["independent"]), "--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--generated", str(files["collapsed"]), "--out", str(tmp_path / "b")]) == 1
    out = capsys.readouterr().out
    assert out.count("verdict: PASS") == 1 and out.count("verdict: FAIL") == 1  # printed once per run
    assert (tmp_path / "b" / "metrics.json").is_file()  # a failing verdict is written all the same
    assert main(args + ["--generated", str(files["collapsed"]), "--out", str(tmp_path / "c"), "--level", "2"]) == 2


def test_files_of_another_system(files, tmp_path):
    from physgan.systems import get_system, system_names

    unknown = tmp_path / "unknown.h5"
    with SampleWriter(unknown, system="no_such_system", source="mc", provenance={}) as writer:
        writer.append(x=np.zeros(2))
    with pytest.raises(UserError, match="unknown system 'no_such_system'"):
        validate(files["reference"], unknown, tmp_path / "out", quiet=True)
    others = [name for name in system_names() if name != "ising"]
    if not others:
        pytest.skip("no second system registered")
    system = get_system(others[0])
    other = tmp_path / "other.h5"
    with SampleWriter(other, system=system.NAME, source="mc", provenance={}) as writer:
        writer.append(**{name: np.zeros(2, np.float32) for name in system.CONDITIONS + system.DATA_FIELDS})
    with pytest.raises(UserError, match=f"different systems: .* holds ising, .* holds {system.NAME}"):
        validate(files["reference"], other, tmp_path / "out", quiet=True)


@pytest.mark.parametrize("content", [b"not a sample file", b"\x89HDF\r\n\x1a\nbroken"])
def test_unreadable_files(files, tmp_path, content):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(content)
    with pytest.raises(UserError, match="bad.h5"):
        validate(files["reference"], bad, tmp_path / "out", quiet=True)
    with pytest.raises(UserError, match="no such file"):
        validate(tmp_path / "missing.h5", files["reference"], tmp_path / "out", quiet=True)


def test_spins_other_than_plus_minus_one(files, tmp_path):
    soft = rewrite(files["independent"], tmp_path / "soft.h5", lambda c: {**c, "spins": (c["spins"] + 1) // 2})
    with pytest.raises(UserError, match="spins must be -1 or \\+1"):
        validate(files["reference"], soft, tmp_path / "out", quiet=True)


def test_unwritable_output_and_bad_threshold(files, tmp_path):
    (tmp_path / "a_file").write_text("")
    with pytest.raises(UserError, match="cannot write"):
        validate(files["reference"], files["independent"], tmp_path / "a_file" / "out", quiet=True)
    with pytest.raises(UserError, match="not a directory"):
        validate(files["reference"], files["independent"], tmp_path / "a_file", quiet=True)
    with pytest.raises(UserError, match="threshold"):
        validate(files["reference"], files["independent"], tmp_path / "out", threshold=0.0, quiet=True)


def test_an_existing_report_is_replaced_only_with_force(files, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="--force"):
        validate(files["reference"], files["independent"], out, quiet=True)
    assert (out / "keep.txt").read_text() == "mine"

    # a failure half-way leaves the old directory as it was and no temporary directory behind
    from physgan.systems.ising import validation

    monkeypatch.setattr(validation, "extras", lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        validate(files["reference"], files["independent"], out, force=True, quiet=True, classifier=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and (out / "keep.txt").exists()
    monkeypatch.undo()

    validate(files["reference"], files["independent"], out, force=True, quiet=True, classifier=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert not (out / "keep.txt").exists() and (out / "report.html").is_file()


# ---------------------------------------------------------------------------------------------
# Pieces


def test_correlation_function_by_fft_and_structure_factor_agree_with_direct_sums():
    for L in (3, 6, 7, 16):
        spins = np.random.default_rng(L).choice(np.array([-1, 1], np.int8), size=(20, L, L))
        g = correlation_function_fft(spins)
        np.testing.assert_allclose(g, correlation_function(spins), atol=1e-6)
        np.testing.assert_allclose(-2 * g[:, 1], energy_per_site(spins), atol=1e-6)  # e = -2 G(1)
        ft = np.fft.fft2(spins.astype(np.float64))
        np.testing.assert_allclose(structure_factor_kmin(spins),
                                   (np.abs(ft[:, 0, 1]) ** 2 + np.abs(ft[:, 1, 0]) ** 2) / (2 * L * L), atol=1e-9)


class ConditionalMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))

    def forward(self, x, cond):
        return self.net(torch.cat([x, cond], dim=1)).reshape(-1)


def test_the_conditional_classifier_sees_what_the_marginals_hide():
    """x ~ N(c, 1) vs x ~ N(-c, 1) with c = +-1 equally often: identical marginals, different conditionals.

    Given c, the Bayes-optimal AUC is Phi(2 / sqrt 2) = 0.92; the test split's labels and logits give the AUC back.
    """
    rng = np.random.default_rng(3)
    c_ref, c_gen = rng.choice([-1.0, 1.0], size=(2, 3000, 1))
    x_ref, x_gen = rng.normal(c_ref, 1.0), rng.normal(-c_gen, 1.0)
    result = classifier_two_sample_test(x_ref, x_gen, ConditionalMLP, np.random.default_rng(4), epochs=5,
                                        batch_size=128, lr=1e-2, conditions=(c_ref, c_gen), return_test=True)
    assert result["auc"] > 0.85
    test = result["test"]
    assert roc_auc(test["labels"], test["logits"]) == result["auc"]
    assert np.array_equal(test["source"] >= 3000, test["labels"] == 1)


def test_histogram_edges_put_equally_many_lattice_values_in_every_bin():
    m = np.arange(-256, 257, 2) / 256  # magnetisations of a 16 x 16 lattice
    edges = histogram_edges(m[:100], m[100:], bins=40)
    counts = np.histogram(m, edges)[0]
    assert set(counts[:-1]) == {counts[0]} and counts[-1] <= counts[0]
    assert np.allclose(edges[0], -1 - 1 / 256)  # halfway below the smallest value
    continuous = histogram_edges(np.linspace(0, 1, 7), np.sqrt(np.linspace(0, 1, 11)), bins=5)
    assert len(continuous) == 6 and np.histogram(np.linspace(0, 1, 7), continuous)[0].sum() == 7


def test_importing_the_engine_does_not_import_matplotlib():
    code = "import sys, physgan.validation.validate; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.slow
def test_independent_samples_pass_for_several_seeds(tmp_path):
    """Honest comparisons at other seeds pass too (the floor protocol's false-alarm rate is well below 1 %)."""
    reference = simulate(tmp_path / "reference.h5", TEMPS, seed=21)
    for seed in (22, 23, 24):
        other = simulate(tmp_path / f"mc_{seed}.h5", TEMPS, seed=seed)
        metrics = validate(reference, other, tmp_path / f"out_{seed}", quiet=True, classifier=False)
        assert metrics["verdict"] == "pass", {n: r["worst_ratio"] for n, r in metrics["observables"].items()}
