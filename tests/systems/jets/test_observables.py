"""Jet observables: image formulas pinned to hand-computed values; images against constituents; report."""
import numpy as np

from physgan.io import open_samples
from physgan.systems.jets.images import PIXELS
from physgan.systems.jets.observables import (constituent_efps, constituent_observables, efps, image_mass,
                                              image_observables, image_pt, nonempty_pixels, observables_report,
                                              per_jet, pixel_spectrum)
from physgan.systems.jets.particles import Particles

C = PIXELS // 2


def two_pixel_image():
    """pT 60 at the centre and 40 three pixels right, four up: (dx, dy) = (0.3, 0.4), dR = 0.5."""
    image = np.zeros((1, PIXELS, PIXELS), np.float32)
    image[0, C, C], image[0, C - 4, C + 3] = 60.0, 40.0
    return image


def test_image_pt_and_mass_hand_computed():
    image = two_pixel_image()
    # two massless particles: m^2 = 2 pT1 pT2 (cosh(d eta) - cos(d phi))
    np.testing.assert_allclose(image_mass(image), np.sqrt(2 * 60 * 40 * (np.cosh(0.3) - np.cos(0.4))), rtol=1e-6)
    np.testing.assert_allclose(image_pt(image), np.hypot(60 + 40 * np.cos(0.4), 40 * np.sin(0.4)), rtol=1e-6)
    np.testing.assert_allclose(image_mass(image[:, ::-1, ::-1]), image_mass(image), rtol=1e-12)  # mirror images


def test_pixel_counts_and_spectrum():
    image = two_pixel_image()
    assert nonempty_pixels(image).tolist() == [2]
    spectrum = pixel_spectrum(image, edges=np.array([0.0, 50.0, 100.0]))
    assert spectrum.tolist() == [1, 1]


def test_efps_hand_computed_and_pixels_as_particles():
    values = efps(two_pixel_image())
    assert values.shape == (1, 36)
    # graph 0 (no edge) is sum pT; graph 1 (one edge) is sum_ij pT_i pT_j dR_ij over ordered pairs
    np.testing.assert_allclose(values[0, :2], [100.0, 2 * 60 * 40 * 0.5], rtol=1e-6)
    particles = Particles.from_counts([60.0, 40.0], [0.0, 0.3], [0.0, 0.4], [2])
    np.testing.assert_allclose(constituent_efps(particles), values, rtol=1e-6)


def test_image_observables_track_the_stored_jet_values(jets_mc):
    samples = open_samples(jets_mc[0])
    data = samples.read_chunk(0, samples.n, ("image", "signal", "jet_mass", "jet_pt", "tau_21", "jet_delta_R"))
    from_image = image_observables(data["image"])
    assert np.median(np.abs(from_image["mass"] / data["jet_mass"] - 1)) < 0.03
    assert np.median(np.abs(from_image["pt"] / data["jet_pt"] - 1)) < 0.03
    assert np.median(np.abs(from_image["delta_R"] - data["jet_delta_R"])) < 0.05
    for label in (0, 1):
        mine = data["signal"] == label
        assert abs(from_image["tau_21"][mine].mean() - data["tau_21"][mine].mean()) < 0.05
    signal = data["signal"] == 1
    assert from_image["tau_21"][signal].mean() < from_image["tau_21"][~signal].mean()


def test_constituent_observables_from_root_constituents(jets_mc):
    samples = open_samples(jets_mc[1])
    data = samples.read_chunk(0, 30, ("constituents", "jet_mass", "jet_pt", "image"))
    padded = data["constituents"]
    observed = constituent_observables(Particles.from_padded(padded[..., 0], padded[..., 1], padded[..., 2]))
    np.testing.assert_allclose(observed["mass"], data["jet_mass"], rtol=1e-4)
    np.testing.assert_allclose(observed["pt"], data["jet_pt"], rtol=1e-5)
    assert set(observed) == set(image_observables(data["image"]))


def test_report_and_streaming(jets_mc):
    samples = open_samples(jets_mc[0])
    whole, chunked = per_jet(samples), per_jet(samples, chunk=50)
    for name in whole:  # (BLAS may round a sum differently for another batch size)
        np.testing.assert_allclose(whole[name], chunked[name], rtol=1e-12)
    report = observables_report(samples)
    assert "signal (W')" in report and "background (QCD)" in report and "tau_21" in report
