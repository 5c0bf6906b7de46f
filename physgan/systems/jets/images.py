"""Jet images: LAGAN preprocessing applied to the particles, then pixelation (arXiv:1701.05927).

Preprocessing, in the (eta, phi) plane of each jet's particles:
1. translate so the leading subjet sits at the origin (phi differences wrapped into [-pi, pi));
2. rotate about the origin so the subleading subjet points straight down (to negative y); a jet left with
   one subjet is rotated so the pT-weighted principal axis of its particles points down instead;
3. flip x -> -x if the left half (x < 0) carries more pT than the right half.
LAGAN rotated the finished image with a cubic spline, which smears and leaves artefacts; moving the
particles before pixelation is exact, each particle's pT lands whole in one pixel.

Image layout: image[row, col], 25 x 25 pixels of 0.1 over [-1.25, 1.25]^2, pixel = sum of pT in GeV.
Columns run along x (rotated eta) from left (-1.25) to right; rows along y (rotated phi) from top
(+1.25) to bottom, so that `plt.imshow(image)` shows the jet the right way up: leading subjet at the
centre pixel (12, 12), subleading subjet below it, more pT on the right.
"""
from __future__ import annotations

import numpy as np

from physgan.systems.jets.particles import Particles, wrap_phi

PIXELS = 25
HALF_WIDTH = 1.25
PIXEL_WIDTH = 2 * HALF_WIDTH / PIXELS
ON_AXIS = 1e-9  # |x| below this counts as on the vertical axis when choosing the flip


def pixel_centres() -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the pixel centres, each (25, 25), in the image layout above."""
    centres = -HALF_WIDTH + (np.arange(PIXELS) + 0.5) * PIXEL_WIDTH
    return np.meshgrid(centres, centres[::-1])


def _principal_direction(x: np.ndarray, y: np.ndarray, pt: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Angle (n,) of each jet's pT-weighted principal axis, signed to point towards the pT centroid."""
    def weighted(values):
        return np.bincount(owner, weights=pt * values, minlength=n)

    total = np.maximum(weighted(np.ones_like(x)), 1e-300)
    mx, my = weighted(x) / total, weighted(y) / total
    sxx = weighted(x * x) / total - mx**2
    syy = weighted(y * y) / total - my**2
    sxy = weighted(x * y) / total - mx * my
    angle = 0.5 * np.arctan2(2 * sxy, sxx - syy)
    towards_centroid = np.cos(angle) * mx + np.sin(angle) * my >= 0
    return np.where(towards_centroid, angle, angle + np.pi)


def preprocess(particles: Particles, lead_eta, lead_phi, sub_eta, sub_phi) -> tuple[np.ndarray, np.ndarray]:
    """Particle coordinates (x, y) (total,) after translation, rotation and flip.

    lead_* (n_jets,): the leading subjet of each jet; sub_* (n_jets,): the subleading one, NaN if none.
    """
    owner, n = particles.owner, particles.n_jets
    x = particles.eta - lead_eta[owner]
    y = wrap_phi(particles.phi - lead_phi[owner])
    sub_x, sub_y = sub_eta - lead_eta, wrap_phi(sub_phi - lead_phi)
    direction = np.where(np.isfinite(sub_x), np.arctan2(sub_y, sub_x),
                         _principal_direction(x, y, particles.pt, owner, n))
    turn = (-np.pi / 2 - direction)[owner]  # rotates `direction` onto the negative y axis
    x, y = x * np.cos(turn) - y * np.sin(turn), x * np.sin(turn) + y * np.cos(turn)
    # particles on the axis (the subjets themselves, up to rounding) belong to neither half
    right = np.bincount(owner, weights=particles.pt * (x > ON_AXIS), minlength=n)
    left = np.bincount(owner, weights=particles.pt * (x < -ON_AXIS), minlength=n)
    return np.where((left > right)[owner], -x, x), y


def pixelate(x: np.ndarray, y: np.ndarray, pt: np.ndarray, owner: np.ndarray, n_jets: int) -> np.ndarray:
    """Images (n_jets, 25, 25) float32: the pT of the particles at (x, y) summed per pixel.

    Particles outside [-1.25, 1.25]^2 are not in the image.
    """
    col = np.floor((x + HALF_WIDTH) / PIXEL_WIDTH).astype(np.int64)
    row = np.floor((HALF_WIDTH - y) / PIXEL_WIDTH).astype(np.int64)
    inside = (col >= 0) & (col < PIXELS) & (row >= 0) & (row < PIXELS)
    cell = (owner[inside] * PIXELS + row[inside]) * PIXELS + col[inside]
    flat = np.bincount(cell, weights=pt[inside], minlength=n_jets * PIXELS * PIXELS)
    return flat.reshape(n_jets, PIXELS, PIXELS).astype(np.float32)


def jet_images(particles: Particles, lead_eta, lead_phi, sub_eta, sub_phi) -> np.ndarray:
    """Preprocessed images (n_jets, 25, 25) float32 of a batch of jets (see the module docstring)."""
    x, y = preprocess(particles, lead_eta, lead_phi, sub_eta, sub_phi)
    return pixelate(x, y, particles.pt, particles.owner, particles.n_jets)
