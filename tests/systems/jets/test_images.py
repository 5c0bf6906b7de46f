"""Preprocessing and pixelation: translation, rotation, flip, phi wrap-around, exactness."""
import numpy as np

from physgan.systems.jets.images import PIXEL_WIDTH, PIXELS, jet_images, pixelate, preprocess
from physgan.systems.jets.observables import image_mass, image_pt
from physgan.systems.jets.particles import Particles, wrap_phi
from physgan.systems.jets.reconstruction import image
from physgan.systems.jets.clustering import trim
from tests.systems.jets.conftest import batch, prongs

CENTRE = PIXELS // 2


def three_particles(eta0=0.3, phi0=1.0):
    """Leading at (eta0, phi0), subleading up-right of it, and a soft one that ends up on the left."""
    return Particles.from_counts([100.0, 50.0, 5.0], [eta0, eta0 + 0.3, eta0 - 0.2],
                                 [phi0, phi0 + 0.4, phi0 - 0.1], [3])


def subjets_of(jet):
    """Leading and subleading subjet = the two hardest particles."""
    return (jet.eta[:1], jet.phi[:1], jet.eta[1:2], jet.phi[1:2])


def test_translation_and_rotation_put_the_subleading_subjet_straight_down():
    jet = three_particles()
    x, y = preprocess(jet, *subjets_of(jet))
    np.testing.assert_allclose([x[0], y[0]], [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose([x[1], y[1]], [0.0, -0.5], atol=1e-12)  # distance 0.5, now below
    img = jet_images(jet, *subjets_of(jet))[0]
    assert img[CENTRE, CENTRE] == np.float32(100.0)
    assert img[CENTRE + 5, CENTRE] == np.float32(50.0)  # 0.5 below the centre = 5 rows down, same column


def test_flip_puts_more_pt_on_the_right():
    jet = three_particles()
    for mirrored in (jet, Particles(jet.pt, 2 * jet.eta[0] - jet.eta, jet.phi, jet.offsets)):
        img = jet_images(mirrored, *subjets_of(mirrored))[0]
        # lead and sub lie on the centre column; the soft particle always ends up on the right
        assert img[:, CENTRE + 1:].sum() == np.float32(5.0) and img[:, :CENTRE].sum() == 0


def test_phi_wrap_around_gives_the_same_image():
    here = three_particles(phi0=0.2)
    across = three_particles(phi0=np.pi - 0.1)  # the subleading particle sits beyond +pi
    across = Particles(across.pt, across.eta, wrap_phi(across.phi), across.offsets)
    np.testing.assert_array_equal(jet_images(here, *subjets_of(here)), jet_images(across, *subjets_of(across)))


def test_single_subjet_jets_point_their_principal_axis_down():
    jet = Particles.from_counts([10.0, 3.0, 3.0], [0.0, 0.2, 0.4], [0.0, 0.2, 0.4], [3])
    nan = np.array([np.nan])
    x, y = preprocess(jet, jet.eta[:1], jet.phi[:1], nan, nan)
    np.testing.assert_allclose(x, 0.0, atol=1e-12)
    assert np.all(y[1:] < 0)


def test_pixelation_is_exact_each_particle_whole_in_one_pixel():
    rng = np.random.default_rng(0)
    x, y, pt = rng.uniform(-1.4, 1.4, (3, 500))
    pt = np.abs(pt) + 0.1
    owner = np.repeat(np.arange(5), 100)
    images = pixelate(x, y, pt, owner, 5)
    inside = (np.abs(x) < 1.25) & (np.abs(y) < 1.25)
    np.testing.assert_allclose(images.sum(axis=(1, 2)), np.bincount(owner[inside], pt[inside], 5), rtol=1e-5)
    col = np.floor((x + 1.25) / PIXEL_WIDTH).astype(int)
    row = np.floor((1.25 - y) / PIXEL_WIDTH).astype(int)
    k = np.flatnonzero(inside)[0]
    assert images[owner[k], row[k], col[k]] >= np.float32(pt[k])


def test_image_pt_and_mass_match_the_particles_within_pixelation_error():
    rng = np.random.default_rng(1)
    jets = batch([prongs([(0.0, 0.0, 0.6), (rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), 0.4)],
                         n_per_prong=30, width=0.1, pt=280.0, seed=s) for s in range(30)])
    trimmed = trim(jets)
    images = image(trimmed)
    x, y = preprocess(trimmed.particles, trimmed.lead_eta, trimmed.lead_phi, trimmed.sub_eta, trimmed.sub_phi)
    inside = (np.abs(x) < 1.25) & (np.abs(y) < 1.25)
    owner, pt = trimmed.particles.owner[inside], trimmed.particles.pt[inside]
    # the same formulas on the exact particle positions: only the snapping to pixel centres differs
    x, y = x[inside], y[inside]
    sums = {name: np.bincount(owner, pt * f, minlength=len(images))
            for name, f in (("e", np.cosh(x)), ("pz", np.sinh(x)), ("px", np.cos(y)), ("py", np.sin(y)))}
    exact_pt = np.hypot(sums["px"], sums["py"])
    exact_mass = np.sqrt(sums["e"] ** 2 - sums["px"] ** 2 - sums["py"] ** 2 - sums["pz"] ** 2)
    # snapping moves a particle by at most half a pixel in x and y: pT by well under 1 %,
    # m^2 ~ sum pT_i pT_j dR_ij^2 by about 2 * (pixel / 2) / dR relative for a two-prong jet (dR > 0.1)
    np.testing.assert_allclose(image_pt(images), exact_pt, rtol=5e-3)
    np.testing.assert_allclose(image_mass(images), exact_mass, rtol=0.1)
    assert np.median(np.abs(image_mass(images) / exact_mass - 1)) < 0.02
