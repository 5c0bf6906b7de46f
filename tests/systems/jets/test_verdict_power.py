"""Jets: the defects generators make fail the verdict of physgan validate, by the checks named.

Reference: the session's validation Monte Carlo (conftest `jets_mc_validation`: 200 W' and 200 QCD jets,
seed 21). Generated: the session's other Monte Carlo (conftest `jets_mc`: 120 W' and 120 QCD jets, seed 11),
rewritten with a defect. Both samples are made for other tests too, so in a full run this module costs no
Pythia of its own. Per condition (class x 25 GeV bin of pT) that is 68 to 132 reference and 51 to 69
generated jets; the family of the verdict is 6 observables x 4 conditions = 24 comparisons, so Holm's
smallest threshold at the level 0.01 is p <= 4.2e-4, and the permutation test resolves p down to 5e-5.

Defects (docs/validation.md has the numbers):
- a 3 % energy scale: every pixel x 1.03;
- a one-pixel blur: half of each pixel's pT stays, an eighth goes to each of its four neighbours;
- W' and QCD labels swapped;
- the subleading subjet moved 0.1 closer to the leading one. The images are preprocessed with the leading
  subjet at the centre pixel (12, 12) and the subleading one straight below it (images.py), so every pixel
  below the centre row and more than 2.5 pixels from the centre moves one row (0.1) up: for W' jets Delta R
  drops by 0.099 (median; the median is 0.58) and the mass median from 78 to 68 GeV.
The last one is a 0.5 standard deviation shift of the W' Delta R distribution: at the split of
test_validation.py (100 jets of each class in each file, 33 to 67 per condition) it misses significance,
recorded as a strict xfail.
"""
import numpy as np
import pytest

import physgan.systems.jets.validation as plugin
from physgan.io import SampleWriter, open_samples
from physgan.systems.jets.images import PIXELS
from physgan.validation.validate import validate
from tests.conftest import no_figures

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CENTRE = PIXELS // 2  # the leading subjet's pixel is (CENTRE, CENTRE)
PRONG_RADIUS = 2.5  # pixels: what lies closer to the centre belongs to the leading subjet and stays


@pytest.fixture(scope="module", autouse=True)
def no_plots():
    with no_figures(plugin):
        yield


def write(path, fields, source="gan"):
    with SampleWriter(path, system="jets", source=source, provenance={"note": "test"}) as writer:
        writer.append(**fields)
    return path


def read_all(path) -> dict:
    samples = open_samples(path)
    return samples.read_chunk(0, samples.n)


def blur_one_pixel(images):
    """Half of each pixel's pT stays, an eighth goes to each of its four neighbours."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    neighbours = padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1] + padded[:, 1:-1, :-2] + padded[:, 1:-1, 2:]
    return (0.5 * images + 0.125 * neighbours).astype(np.float32)


def subleading_prong_closer(images):
    """The pixels below the centre row and beyond PRONG_RADIUS of the centre move one row (0.1) up."""
    rows, cols = np.mgrid[0:PIXELS, 0:PIXELS]
    prong = (rows > CENTRE) & (np.hypot(rows - CENTRE, cols - CENTRE) > PRONG_RADIUS)
    moved = np.where(prong, 0, images)
    moved[:, :-1] += np.where(prong, images, 0)[:, 1:]
    return moved.astype(np.float32)


DEFECTS = {
    "energy_scale": lambda data: {**data, "image": data["image"] * np.float32(1.03)},
    "blur": lambda data: {**data, "image": blur_one_pixel(data["image"])},
    "swapped_labels": lambda data: {**data, "signal": (1 - data["signal"]).astype(np.int8)},
    "subleading_closer": lambda data: {**data, "image": subleading_prong_closer(data["image"])},
}


@pytest.fixture(scope="module")
def files(jets_mc, jets_mc_validation, tmp_path_factory):
    d = tmp_path_factory.mktemp("jets_verdict_power")
    generated = read_all(jets_mc[0])
    out = {"reference": jets_mc_validation, "honest": write(d / "honest.h5", generated)}
    out.update({name: write(d / f"{name}.h5", defect(generated)) for name, defect in DEFECTS.items()})
    return out


def judge(reference, generated, out):
    return validate(reference, generated, out, quiet=True, classifier=False)


def failing_observables(metrics) -> set[str]:
    return {name for name, result in metrics["observables"].items() if not result["pass"]}


def test_the_sizes_are_those_stated(files, tmp_path):
    metrics = judge(files["reference"], files["honest"], tmp_path / "out")
    assert metrics["judged"] == {"n_ref": 400, "n_gen": 240} and metrics["not_judged"] == []
    assert metrics["multiple_testing"]["family_size"] == 24
    counts = [(c["n_ref"], c["n_gen"]) for c in metrics["conditions"]]
    assert min(n for n, _ in counts) >= 60 and min(n for _, n in counts) >= 50
    assert metrics["verdict"] == "pass"  # the undistorted generated file: independent Monte Carlo


@pytest.mark.parametrize("defect, failing", [
    ("energy_scale", {"pt"}),
    ("blur", {"tau_21", "tau_32", "n_pixels"}),
    ("swapped_labels", {"mass", "tau_21", "delta_R"}),
    ("subleading_closer", {"mass", "delta_R"}),
])
def test_a_defect_fails_by_the_checks_it_distorts(files, tmp_path, defect, failing):
    metrics = judge(files["reference"], files[defect], tmp_path / "out")
    assert metrics["verdict"] == "fail"
    assert failing <= failing_observables(metrics)
    for name in failing:
        worst = max(metrics["observables"][name]["per_condition"], key=lambda entry: entry["ratio"])
        assert worst["significant"] and worst["ratio"] > 2


def test_the_subleading_subjet_moves_by_a_tenth(files):
    from physgan.systems.jets.observables import image_observables

    before, after = read_all(files["honest"]), read_all(files["subleading_closer"])
    wprime = before["signal"] == 1
    shift = image_observables(after["image"][wprime])["delta_R"] - image_observables(before["image"][wprime])["delta_R"]
    assert np.median(shift) == pytest.approx(-0.1, abs=0.01)
    np.testing.assert_allclose(after["image"].sum(axis=(1, 2)), before["image"].sum(axis=(1, 2)), rtol=1e-5)


@pytest.mark.xfail(strict=True, reason="lacks power at 100 jets of each class per file: measured Delta R effect "
                   "2.81 with p = 0.0016 and mass effect 2.15 with p = 0.0062 (W', 275-300 GeV, 65 against 67 "
                   "jets); Holm's smallest threshold over the 24 comparisons is 4.2e-4")
def test_the_subleading_subjet_closer_at_the_split_of_test_validation(jets_mc_validation, tmp_path):
    data = read_all(jets_mc_validation)
    reference = write(tmp_path / "A.h5", {name: values[0::2] for name, values in data.items()}, source="mc")
    closer = DEFECTS["subleading_closer"]({name: values[1::2] for name, values in data.items()})
    metrics = judge(reference, write(tmp_path / "B.h5", closer), tmp_path / "out")
    assert metrics["verdict"] == "fail"
