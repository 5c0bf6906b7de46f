"""From a jet's particles to the fields of a jets sample file: the LAGAN chain after jet finding.

One function serves the Monte Carlo (particles = calorimeter cells of the leading anti-kT jet) and every
foreign constituent format (particles as given), so all jets samples mean the same thing:
trim -> kinematics of the trimmed jet -> delta R of the two leading subjets -> tau_1..3 -> image.
"""
from __future__ import annotations

import numpy as np

from physgan.systems.jets.clustering import Trimmed, trim
from physgan.systems.jets.images import jet_images
from physgan.systems.jets.nsubjettiness import nsubjettiness, ratios
from physgan.systems.jets.particles import Particles, jet_sums, wrap_phi

# The per-jet fields of a jets sample (besides `signal`), LAGAN's names and units (GeV, radians).
JET_FIELDS = ("jet_pt", "jet_eta", "jet_phi", "jet_mass", "jet_delta_R", "tau_1", "tau_2", "tau_3",
              "tau_21", "tau_32")


def subjet_delta_r(trimmed: Trimmed) -> np.ndarray:
    """(eta, phi) distance of the leading and subleading subjets (n_jets,); 0 with one subjet, as LAGAN."""
    d_r = np.hypot(trimmed.sub_eta - trimmed.lead_eta, wrap_phi(trimmed.sub_phi - trimmed.lead_phi))
    return np.nan_to_num(d_r, nan=0.0)


def jet_fields(trimmed: Trimmed) -> dict[str, np.ndarray]:
    """Each of JET_FIELDS (n,) float32 for trimmed jets."""
    kinematics = jet_sums(trimmed.particles)
    taus = nsubjettiness(trimmed.particles)
    tau_21, tau_32 = ratios(taus)
    fields = {"jet_pt": kinematics["pt"], "jet_eta": kinematics["eta"], "jet_phi": kinematics["phi"],
              "jet_mass": kinematics["mass"], "jet_delta_R": subjet_delta_r(trimmed),
              "tau_1": taus[:, 0], "tau_2": taus[:, 1], "tau_3": taus[:, 2], "tau_21": tau_21, "tau_32": tau_32}
    return {name: values.astype(np.float32) for name, values in fields.items()}


def image(trimmed: Trimmed) -> np.ndarray:
    """Preprocessed jet images (n, 25, 25) float32 of trimmed jets."""
    return jet_images(trimmed.particles, trimmed.lead_eta, trimmed.lead_phi, trimmed.sub_eta, trimmed.sub_phi)


def describe(trimmed: Trimmed) -> dict[str, np.ndarray]:
    """The sample-file fields of trimmed jets: `image` and JET_FIELDS."""
    return {"image": image(trimmed), **jet_fields(trimmed)}


def describe_jets(jets: Particles) -> dict[str, np.ndarray]:
    """The sample-file fields of jets given as particles (trimmed here first)."""
    return describe(trim(jets))
