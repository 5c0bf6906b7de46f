"""The jets plug-in of physgan validate has teeth: independent Monte Carlo passes, typical generator failures fail.

One Pythia sample (conftest: 200 W' and 200 QCD jets, made once per session) is split into two independent
halves: A is the reference (and, for the memorisation check, the training sample), B plays the generator.
Distorted copies of B: a 5 % energy scale, every pixel's pT shared with its four neighbours (a one-pixel
blur), W' and QCD labels swapped, jet_pt (the requested pT) shuffled; and a "generator" that returns
training images. Plots cost more than everything else, so only the first comparison draws them.
"""
import json

import h5py
import numpy as np
import pytest
import torch

import physgan.systems.jets.validation as plugin
from physgan.cli import main
from physgan.errors import UserError
from physgan.io import SampleWriter, open_samples
from physgan.validation import report
from physgan.validation import validate as engine
from physgan.validation.validate import validate
from tests.conftest import assert_file_holds_what_was_drawn, drawn_histograms

OBSERVABLES = ("mass", "pt", "tau_21", "tau_32", "delta_R", "n_pixels")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write(path, fields, source="gan"):
    with SampleWriter(path, system="jets", source=source, provenance={"note": "test"}) as writer:
        writer.append(**fields)
    return path


def blur_one_pixel(images):
    """Half of each pixel's pT stays, an eighth goes to each of its four neighbours (total pT kept inside)."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    neighbours = padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1] + padded[:, 1:-1, :-2] + padded[:, 1:-1, 2:]
    return (0.5 * images + 0.125 * neighbours).astype(np.float32)


@pytest.fixture(scope="module")
def files(jets_mc_validation, tmp_path_factory):
    d = tmp_path_factory.mktemp("jets_validate")
    samples = open_samples(jets_mc_validation)
    data = samples.read_chunk(0, samples.n)
    a = {name: values[0::2] for name, values in data.items()}
    b = {name: values[1::2] for name, values in data.items()}
    shuffled = np.random.default_rng(3).permutation(len(b["jet_pt"]))
    return {
        "dir": d, "A": write(d / "A.h5", a, source="mc"), "B": write(d / "B.h5", b),
        "scale": write(d / "scale.h5", {**b, "image": b["image"] * np.float32(1.05)}),
        "blur": write(d / "blur.h5", {**b, "image": blur_one_pixel(b["image"])}),
        "swap": write(d / "swap.h5", {**b, "signal": (1 - b["signal"]).astype(np.int8)}),
        "shuffle": write(d / "shuffle.h5", {**b, "jet_pt": b["jet_pt"][shuffled]}),
        "copies_of_A": write(d / "copies_of_A.h5", a),  # a generator that returns its training images
        "B1": write(d / "B1.h5", {name: values[0::2] for name, values in b.items()}, source="mc"),
        "B2": write(d / "B2.h5", {name: values[1::2] for name, values in b.items()}),
    }


@pytest.fixture(scope="module")
def drawn(files):
    """The independent sample's report, and every histogram its plots drew."""
    out = files["dir"] / "report_independent"
    with drawn_histograms() as calls:
        metrics = validate(files["A"], files["B"], out, quiet=True)
    return metrics, out, calls


@pytest.fixture(scope="module")
def independent(drawn):
    return drawn[:2]


@pytest.fixture
def no_plots(monkeypatch):
    """Skip the figures (the slow part); the comparison of independent samples draws them all."""
    monkeypatch.setattr(report, "observable_plots", lambda *args, **kwargs: [])
    monkeypatch.setattr(plugin, "plots", lambda *args, **kwargs: [])


@pytest.fixture
def fast_memorisation(monkeypatch):
    """Fewer queries and candidates: the exact EMDs cost ~1 ms each."""
    monkeypatch.setattr(plugin, "MEMORISATION_QUERIES", 60)
    monkeypatch.setattr(plugin, "CANDIDATES", 5)


def failing_observables(metrics):
    return {name for name, result in metrics["observables"].items() if not result["pass"]}


def by_class(metrics):
    return {entry["signal"]: entry for entry in metrics["jets"]["classes"]}


# ---------------------------------------------------------------------------------------------
# Teeth


def test_an_independent_monte_carlo_sample_passes(independent):
    metrics, out = independent
    assert metrics["verdict"] == "pass"
    assert list(metrics["observables"]) == list(OBSERVABLES)
    for result in metrics["observables"].values():
        assert not any(p["significant"] for p in result["per_condition"])
    assert metrics["exact"] == []  # jets have no exactly known observables
    assert [c["label"] for c in metrics["conditions"]] == [
        "background (QCD), pT 250-275 GeV", "background (QCD), pT 275-300 GeV",
        "signal (W'), pT 250-275 GeV", "signal (W'), pT 275-300 GeV"]
    assert [c["condition"] for c in metrics["conditions"]][0] == {"signal": 0.0, "pt_bin": 262.5}
    for classifier in (metrics["classifier"], metrics["physics_classifier"]):
        assert abs(classifier["auc"] - 0.5) <= 4 * classifier["auc_err"]
    for entry in metrics["jets"]["classes"]:
        assert entry["conditional_pt"]["follows_requested_pt"] is True
        assert 0.9 < entry["conditional_pt"]["ref"]["slope"][0] < 1.1  # image pT ~ 0.99 trimmed jet pT
        assert 0.5 < entry["mean_image"]["chi2_per_pixel"] < 2
        assert entry["pixel_spectrum"]["separation_power"] < 0.02
    assert metrics["jets"]["memorisation"] == {"checked": False, "reason": engine.NOT_CHECKED["reason"]}
    assert metrics["training"] is None
    assert json.loads((out / "metrics.json").read_text()) == metrics


def test_fpd_and_kpd_of_reference_halves_are_computed_like_the_generated_ones(independent):
    """With 50 jets per half both are dominated by the few wide-angle QCD jets (the EFPs' heavy tail), so
    only "consistent with zero, and with each other, within the errors" holds here."""
    metrics, _ = independent
    for entry in metrics["jets"]["classes"]:
        efp = entry["efp"]
        assert efp["n_compared"] == efp["n_real"] == entry["n_ref"] // 2  # halves of the reference, same sizes
        assert efp["fpd_ref"] >= 0 and efp["fpd_ref"] < 3 * efp["fpd_ref_err"]
        assert abs(efp["kpd_ref"]) < 3 * efp["kpd_ref_err"]  # KPD is unbiased: zero for one distribution
        assert abs(efp["fpd_gen"] - efp["fpd_ref"]) < 3 * np.hypot(efp["fpd_gen_err"], efp["fpd_ref_err"])
        assert abs(efp["kpd_gen"] - efp["kpd_ref"]) < 3 * np.hypot(efp["kpd_gen_err"], efp["kpd_ref_err"])
    signal = by_class(metrics)[1]["efp"]  # W' jets have lighter tails: a small value
    assert signal["fpd_ref"] < 0.3 and abs(signal["kpd_ref"]) < 0.05


def test_the_fpd_protocol_on_gaussian_features(monkeypatch):
    """36 Gaussian features standing in for the EFPs. Bootstrapping from pools of 1000 leaves an offset of
    FPD ~ 0.06 that the 1/N extrapolation cannot remove (it is the pools' own distance), the same for
    R1 vs R2 as for R1 vs G: hence the reference-vs-reference value. A shift of 0.2 sigma in every feature
    adds sum_i (0.2 / max|x_i|)^2 (the normalisation) on top of it, and makes KPD significant."""
    rng = np.random.default_rng(0)
    monkeypatch.setattr(plugin, "relative_efps", lambda images: images.reshape(len(images), -1))
    ref, gen = rng.normal(size=(2000, 6, 6)), rng.normal(size=(1000, 6, 6))
    same = plugin.efp_distances(ref, gen, np.random.default_rng(1))
    assert same["n_real"] == same["n_compared"] == 1000 and same["kpd_batch"] == 500
    assert 0.03 < same["fpd_ref"] < 0.1 and abs(same["fpd_gen"] - same["fpd_ref"]) < 0.2 * same["fpd_ref"]
    assert abs(same["kpd_ref"]) < 3 * same["kpd_ref_err"] and abs(same["kpd_gen"]) < 3 * same["kpd_gen_err"]
    shifted = plugin.efp_distances(ref, gen + 0.2, np.random.default_rng(1))
    real = ref[np.random.default_rng(1).permutation(2000)[:1000]].reshape(1000, -1)  # R1, as efp_distances draws it
    expected = np.sum((0.2 / np.max(np.abs(real), axis=0)) ** 2)
    assert shifted["fpd_gen"] - shifted["fpd_ref"] == pytest.approx(expected, rel=0.3)
    assert shifted["kpd_gen"] > 5 * shifted["kpd_gen_err"]


@pytest.mark.parametrize("name, failing", [("scale", "pt"), ("blur", "n_pixels"), ("swap", "mass")])
def test_distortions_fail(files, tmp_path, no_plots, name, failing):
    metrics = validate(files["A"], files[name], tmp_path / "out", quiet=True, classifier=False)
    assert metrics["verdict"] == "fail"
    assert failing in failing_observables(metrics)


def test_blurred_images_show_in_the_mean_image_and_the_pixel_spectrum(files, tmp_path, no_plots):
    blurred = by_class(validate(files["A"], files["blur"], tmp_path / "out", quiet=True, classifier=False))
    for entry in blurred.values():
        assert entry["pixel_spectrum"]["separation_power"] > 0.05
        image = entry["mean_image"]
        assert image["chi2_per_pixel"] > 1.5  # independent samples: 1.0 (both classes)
        assert image["pull"][12][12] < -4  # the leading subjet's pixel loses half its pT to its neighbours


def test_a_generator_that_ignores_the_requested_pt_is_flagged(files, tmp_path, no_plots):
    metrics = validate(files["A"], files["shuffle"], tmp_path / "out", quiet=True, classifier=False)
    for entry in metrics["jets"]["classes"]:
        conditional = entry["conditional_pt"]
        assert conditional["follows_requested_pt"] is False
        assert conditional["slope_pull"] < -4 and abs(conditional["gen"]["slope"][0]) < 0.3
        assert conditional["ratio_w1_ratio"] > 2
    assert "pt" in failing_observables(metrics)  # the 25 GeV bins see it too


def test_copies_of_training_images_are_flagged_as_memorised(files, tmp_path, no_plots, fast_memorisation):
    out = tmp_path / "out"
    assert main(["validate", "--reference", str(files["B"]), "--generated", str(files["copies_of_A"]),
                 "--train", str(files["A"]), "--out", str(out), "--no-classifier", "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["verdict"] == "pass"  # the copies are Monte Carlo jets: every distribution is right
    memo = metrics["jets"]["memorisation"]
    assert memo["checked"] and memo["suspected"] and memo["unit"] == "GeV"
    assert memo["generated"]["fraction_copies"] == 1.0 and memo["generated"]["median"] < 1e-3
    assert memo["reference"]["fraction_copies"] == 0.0 and memo["reference"]["median"] > 5
    assert memo["p_copies"] < 1e-20
    assert metrics["training"]["path"] == str(files["A"])
    assert "Memorisation" in (out / "report.html").read_text()


def test_independent_samples_are_not_flagged_as_memorised(files, tmp_path, no_plots, fast_memorisation):
    metrics = validate(files["B1"], files["B2"], tmp_path / "out", training=files["A"], quiet=True, classifier=False)
    memo = metrics["jets"]["memorisation"]
    assert memo["checked"] and not memo["suspected"]
    assert memo["generated"]["copies"] == memo["reference"]["copies"] == 0
    assert 0.5 < memo["median_ratio"] < 2


def test_report_and_plots(independent):
    _, out = independent
    names = {p.name for p in (out / "plots").iterdir()}
    assert {f"hist_{name}.png" for name in OBSERVABLES} <= names
    assert {"jets_mean_images.png", "jets_pixel_spectrum.png", "jets_pt_response.png"} <= names
    html = (out / "report.html").read_text()
    for text in ("FPD", "KPD", "requested pT", "Memorisation", "not checked", "PASS"):
        assert text in html


def test_every_plotted_histogram_is_in_histograms_h5_and_rebuilds_from_the_images(files, drawn):
    """The file holds each drawn histogram (edges, density, error equal): the observables per class and pT bin,
    the pixel spectra per class; one rebuilt from the reference's images: the W' jet mass at 250-275 GeV."""
    from physgan.systems.jets.observables import image_observables

    metrics, out, calls = drawn
    series = assert_file_holds_what_was_drawn(out / "histograms.h5", calls)
    conditions = [c["condition"] for c in metrics["conditions"]]
    assert len(series) == 2 * (len(OBSERVABLES) * len(conditions) + 2)  # reference and generated
    c = conditions.index({"signal": 1, "pt_bin": 262.5})
    reference = open_samples(files["A"])
    chosen = (reference.read("signal") == 1) & (reference.read("jet_pt") < 275)
    mass = image_observables(reference.read("image")[chosen].astype(np.float32))["mass"]
    entry = series[f"hist_mass/condition_{c}/reference"]
    np.testing.assert_array_equal(np.histogram(mass.astype(np.float64), bins=entry["edges"])[0], entry["counts"])
    spectrum = {s["signal"]: s["pixel_spectrum"] for s in metrics["jets"]["classes"]}
    for key, s in series.items():
        if key.startswith("jets_pixel_spectrum/") and key.endswith("/generated"):
            assert s["counts"].tolist() in (spectrum[0]["gen"], spectrum[1]["gen"])
    with h5py.File(out / "histograms.h5") as f:
        assert (f["hist_mass"].attrs["unit"], f["hist_mass"].attrs["label"]) == ("GeV", "mass")
        assert json.loads(f[f"hist_mass/condition_{c}"].attrs["condition"]) == {"signal": 1, "pt_bin": 262.5}
        assert f["jets_pixel_spectrum"].attrs["unit"] == "GeV"


# ---------------------------------------------------------------------------------------------
# Pieces


def test_conditions_are_fixed_pt_bins_of_the_requested_pt(tmp_path):
    pts = np.array([250.0, 274.99, 275.0, 299.9, 1010.0], np.float32)
    path = write(tmp_path / "x.h5", {"image": np.zeros((5, 25, 25), np.float32), "signal": np.array([1, 0, 1, 0, 1],
                                                                                                      np.int8),
                                     **{name: pts for name in ("jet_pt", "jet_eta", "jet_phi", "jet_mass",
                                                               "jet_delta_R", "tau_1", "tau_2", "tau_3", "tau_21",
                                                               "tau_32")}})
    rows = plugin.conditions(open_samples(path))
    np.testing.assert_array_equal(rows, [[1, 262.5], [0, 262.5], [1, 287.5], [0, 287.5], [1, 1012.5]])
    assert plugin.condition_label(rows[4]) == "signal (W'), pT 1000-1025 GeV"


def test_emd_and_the_nearest_training_image(tmp_path):
    images = np.zeros((3, 25, 25), np.float32)
    images[0, 12, 12] = 100.0
    images[1, 12, 12], images[1, 15, 12] = 60.0, 40.0  # 40 GeV three pixels (0.3) below
    images[2, 12, 14] = 100.0
    events = plugin._events(np.concatenate([images, np.zeros((1, 25, 25), np.float32)]))
    # to itself, 40 GeV moved by 0.3, to an empty image (all of its pT), and two empty images
    np.testing.assert_allclose(plugin.emds(events[:1], events[:2] + events[3:]), [[0, 40 * 0.3 / plugin.EMD_R, 100]],
                               atol=1e-9)
    assert plugin.emds(events[3:], events[3:]) == 0
    training = open_samples(write(tmp_path / "t.h5", {
        "image": images, "signal": np.ones(3, np.int8),
        **{name: np.full(3, 260, np.float32) for name in ("jet_pt", "jet_eta", "jet_phi", "jet_mass",
                                                           "jet_delta_R", "tau_1", "tau_2", "tau_3", "tau_21",
                                                           "tau_32")}}))
    np.testing.assert_allclose(plugin.nearest_emd(images[[2, 0]], training), [0, 0], atol=1e-9)


def test_nearest_emd_equals_the_pair_by_pair_emd_to_the_candidates(files):
    """energyflow's pairwise EMD gives exactly the numbers of energyflow.emd.emd called on each pair."""
    import energyflow

    training = open_samples(files["A"])
    queries = open_samples(files["B"]).read_chunk(0, 6)["image"]
    train_events = plugin._events(training.read_chunk(0, training.n)["image"])
    loop = [min(energyflow.emd.emd(event, train_events[j], R=plugin.EMD_R) for j in row)
            for event, row in zip(plugin._events(queries), plugin.nearest_candidates(queries, training))]
    np.testing.assert_array_equal(plugin.nearest_emd(queries, training), loop)


def test_the_classifier_takes_images_and_conditions():
    model = plugin.make_classifier((1, 25, 25), 2)
    logits = model(torch.rand(4, 1, 25, 25) * 100, torch.zeros(4, 2))
    assert logits.shape == (4,)


# ---------------------------------------------------------------------------------------------
# Bad inputs: one UserError each


def test_a_jets_file_against_an_ising_file(files, small_ising_file, tmp_path):
    with pytest.raises(UserError, match="different systems: .* holds jets, .* holds ising"):
        validate(files["A"], small_ising_file, tmp_path / "out", quiet=True)
    with pytest.raises(UserError, match="the training sample .* holds ising"):
        validate(files["A"], files["B"], tmp_path / "out", training=small_ising_file, quiet=True)
    assert not (tmp_path / "out").exists()


def test_images_of_another_size(files, tmp_path):
    data = open_samples(files["B"]).read_chunk(0, 50)
    small = write(tmp_path / "small.h5", {**data, "image": data["image"][:, 2:-2, 2:-2]})
    with pytest.raises(UserError, match="image sizes differ"):
        validate(files["A"], small, tmp_path / "out", quiet=True)


@pytest.mark.parametrize("field, value, message", [("image", -1.0, "negative pixels"),
                                                   ("image", np.nan, "NaN or infinite"),
                                                   ("jet_pt", np.nan, "jet_pt must be finite")])
def test_unusable_values(files, tmp_path, field, value, message):
    data = open_samples(files["B"]).read_chunk(0, 10_000)
    broken = data[field].copy()
    broken[3] = value
    path = write(tmp_path / "broken.h5", {**data, field: broken})
    with pytest.raises(UserError, match=message):
        validate(files["A"], path, tmp_path / "out", quiet=True)


def test_a_run_checks_the_auc_and_each_fpd_against_its_floor_plus_error():
    from physgan.systems.jets.fidelity import FidelityConfig, _from_metrics

    efps = [{"fpd_gen": 0.029, "fpd_ref": 0.0, "fpd_ref_err": 0.01},  # floor 0 +- 0.01: limit 0.03
            {"fpd_gen": 0.031, "fpd_ref": 0.0, "fpd_ref_err": 0.01}, {"skipped": "too few jets"}]
    metrics = {"classifier": {"auc": 0.99}, "physics_classifier": {"auc": 0.69},
               "jets": {"classes": [{"label": label, "efp": efp} for label, efp in zip("ABC", efps)]}}
    checks = _from_metrics(FidelityConfig(max_auc=0.7, fpd_ratio=3.0), metrics)
    assert list(checks.values()) == [True, True, False, False]
    # the threshold is on the classifier of physics observables; the one on raw images is a diagnostic
    assert next(iter(checks)) == "classifier AUC on physics observables 0.690 <= 0.7"
    assert _from_metrics(FidelityConfig(max_auc=0.7), {}) == {
        "classifier AUC on physics observables not measured <= 0.7": False}


def test_the_preset_checks_script_passes_an_independent_sample_and_fails_swapped_labels(files, tmp_path, no_plots):
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parents[3] / "scripts"))
    from preset_checks import preset_checks

    honest = preset_checks(files["A"], files["B"], tmp_path / "honest", preset="quick")
    targets = [c for c in honest["checks"] if c["check"].endswith("(preset)")]
    assert honest["verdict"] == "pass" and targets and all(c["pass"] for c in targets)
    swapped = preset_checks(files["A"], files["swap"], tmp_path / "swapped", preset="quick")
    assert swapped["verdict"] == "fail"
    assert not all(c["pass"] for c in swapped["checks"] if c["check"].endswith("(preset)"))
