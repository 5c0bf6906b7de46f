"""Jet observables from images and from constituents, computed chunk by chunk.

From an image (pixel centres (x_i, y_i) taken as (eta_i, phi_i), intensities I_i = pT in GeV; LAGAN,
arXiv:1701.05927, and docs/physics.md, "Jets and jet images"):
    pT = |sum_i I_i (cos y_i, sin y_i)|,
    m^2 = (sum I_i cosh x_i)^2 - (sum I_i cos y_i)^2 - (sum I_i sin y_i)^2 - (sum I_i sinh x_i)^2,
the pixel intensity spectrum and the number of non-empty pixels; and the 36 energy flow polynomials of
degree d <= 4 (Komiske, Metodiev, Thaler, arXiv:1712.07124) with pixels as particles, via EnergyFlow.
From constituents: the same quantities through physgan's chain (reconstruction.describe_jets).
"""
from __future__ import annotations

import numpy as np

from physgan.systems.jets.images import pixel_centres
from physgan.systems.jets.particles import Particles

EFP_SETTINGS = dict(measure="hadr", beta=1, normed=None, coords="ptyphim")  # arXiv:1712.07124, 2211.10295
SPECTRUM_EDGES = np.geomspace(1e-2, 1e3, 51)  # pixel pT in GeV, log bins


def _image_sums(images: np.ndarray) -> dict[str, np.ndarray]:
    x, y = pixel_centres()
    flat = np.asarray(images, np.float64).reshape(len(images), -1)
    return {name: flat @ values.ravel() for name, values in
            (("e", np.cosh(x)), ("pz", np.sinh(x)), ("px", np.cos(y)), ("py", np.sin(y)))}


def image_pt(images: np.ndarray) -> np.ndarray:
    """Jet pT (n,) from images (n, P, P)."""
    sums = _image_sums(images)
    return np.hypot(sums["px"], sums["py"])


def image_mass(images: np.ndarray) -> np.ndarray:
    """Jet mass (n,) from images (n, P, P), each pixel a massless particle at its centre."""
    s = _image_sums(images)
    return np.sqrt(np.maximum(s["e"] ** 2 - s["px"] ** 2 - s["py"] ** 2 - s["pz"] ** 2, 0.0))


def nonempty_pixels(images: np.ndarray) -> np.ndarray:
    """Number of pixels with pT > 0 per image, (n,) int64."""
    return np.count_nonzero(np.asarray(images).reshape(len(images), -1) > 0, axis=1)


def pixel_spectrum(images: np.ndarray, edges: np.ndarray = SPECTRUM_EDGES) -> np.ndarray:
    """Histogram counts (len(edges) - 1,) of the non-empty pixels' intensities."""
    values = np.asarray(images).ravel()
    return np.histogram(values[values > 0], bins=edges)[0]


def _efp_set():
    import energyflow

    return energyflow.EFPSet(("d<=", 4), **EFP_SETTINGS)


def efps(images: np.ndarray) -> np.ndarray:
    """The 36 EFPs with d <= 4 of each image, pixels as particles: (n, 36) float64."""
    return constituent_efps(image_particles(images))


def constituent_efps(particles: Particles) -> np.ndarray:
    """The 36 EFPs with d <= 4 of each jet from its particles: (n, 36) float64."""
    events = np.split(np.stack([particles.pt, particles.eta, particles.phi], axis=1), particles.offsets[1:-1])
    efp_set = _efp_set()
    # one process (the machine is shared); EnergyFlow returns a single jet's values unbatched
    return np.asarray(efp_set.batch_compute(events, n_jobs=1)).reshape(len(events), efp_set.count())


def image_particles(images: np.ndarray) -> Particles:
    """The non-empty pixels of each image as massless particles at the pixel centres."""
    x, y = pixel_centres()
    flat = np.asarray(images, np.float64).reshape(len(images), -1)
    rows, pixels = np.nonzero(flat > 0)
    return Particles.from_counts(flat[rows, pixels], x.ravel()[pixels], y.ravel()[pixels],
                                 np.bincount(rows, minlength=len(images)))


def image_observables(images: np.ndarray) -> dict[str, np.ndarray]:
    """pt, mass, tau_1..3, tau_21, tau_32, delta_R, n_pixels (n,) of images (n, P, P), pixels as particles.

    delta_R comes from the trimmed kT subjets of the pixels, tau_N from the pixels as they are (the image
    is already of the trimmed jet).
    """
    from physgan.systems.jets.clustering import trim
    from physgan.systems.jets.nsubjettiness import nsubjettiness, ratios
    from physgan.systems.jets.reconstruction import subjet_delta_r

    pixels = image_particles(images)
    taus = nsubjettiness(pixels)
    tau_21, tau_32 = ratios(taus)
    return {"pt": image_pt(images), "mass": image_mass(images), "tau_1": taus[:, 0], "tau_2": taus[:, 1],
            "tau_3": taus[:, 2], "tau_21": tau_21, "tau_32": tau_32, "delta_R": subjet_delta_r(trim(pixels)),
            "n_pixels": nonempty_pixels(images)}


def image_fields(images: np.ndarray) -> dict[str, np.ndarray]:
    """The per-jet sample-file fields measurable on images alone (float32): jet_mass, jet_delta_R, tau_N."""
    measured = image_observables(images)
    names = {"jet_mass": "mass", "jet_delta_R": "delta_R", **{k: k for k in ("tau_1", "tau_2", "tau_3", "tau_21", "tau_32")}}
    return {field: measured[key].astype(np.float32) for field, key in names.items()}


def constituent_observables(particles: Particles) -> dict[str, np.ndarray]:
    """The keys of image_observables, from jets' particles through physgan's chain (trimming first)."""
    from physgan.systems.jets.reconstruction import describe_jets

    fields = describe_jets(particles)
    return {"pt": fields["jet_pt"], "mass": fields["jet_mass"],
            **{k: fields[k] for k in ("tau_1", "tau_2", "tau_3", "tau_21", "tau_32")},
            "delta_R": fields["jet_delta_R"], "n_pixels": nonempty_pixels(fields["image"])}


REPORT_FIELDS = ("signal", "image", "jet_pt", "jet_mass", "tau_21", "tau_32", "jet_delta_R")


def per_jet(samples, chunk: int = 4096) -> dict[str, np.ndarray]:
    """Per-jet summary columns of a jets sample, streamed: the stored fields of REPORT_FIELDS except the
    image, plus image_pt, image_mass and n_pixels computed from the image."""
    columns = {}
    for data in samples.iter_chunks(chunk, names=REPORT_FIELDS):
        images = data.pop("image")
        data.update(image_pt=image_pt(images), image_mass=image_mass(images), n_pixels=nonempty_pixels(images))
        for name, values in data.items():
            columns.setdefault(name, []).append(values)
    return {name: np.concatenate(parts) for name, parts in columns.items()}


CLASS_NAMES = {1: "signal (W')", 0: "background (QCD)"}


def observables_report(samples) -> str:
    """Per class: n, mass median with 16-84 % range, mean pT, tau_21 and tau_32 with standard errors,
    delta R median, non-empty pixels, and the image's own pT and mass next to the stored ones."""
    from physgan.stats import mean_and_error
    from physgan.textable import format_table, with_error

    columns = per_jet(samples)
    headers = ["class", "n", "mass median [16%, 84%]", "image mass median", "<pT>", "<image pT>",
               "<tau_21>", "<tau_32>", "delta R median", "<pixels>"]
    rows = []
    for label in np.unique(columns["signal"])[::-1]:
        c = {name: values[columns["signal"] == label] for name, values in columns.items()}
        q16, q50, q84 = np.percentile(c["jet_mass"], [16, 50, 84])
        rows.append([CLASS_NAMES.get(int(label), str(label)), str(len(c["signal"])),
                     f"{q50:.1f} [{q16:.1f}, {q84:.1f}]",
                     f"{np.median(c['image_mass']):.1f}", f"{c['jet_pt'].mean():.1f}", f"{c['image_pt'].mean():.1f}",
                     with_error(*mean_and_error(c["tau_21"])), with_error(*mean_and_error(c["tau_32"])),
                     f"{np.median(c['jet_delta_R']):.3f}", f"{c['n_pixels'].mean():.1f}"])
    title = f"{samples.path}: jets ({samples.format}), {samples.n} jets, source {samples.source}; masses and pT in GeV"
    return title + "\n" + format_table(headers, rows)
