"""How visible the calorimeter lattice is in the Monte Carlo's jet images (see generative.lattice_multiplicity).

Each Monte Carlo pixel holds the calorimeter cells (detector.py) whose centres land in it after the
jet's translation and rotation, so the lit pixels of a jet follow that jet's rotated cell lattice. This
script makes jets with physgan's Monte Carlo, then images them twice: as the Monte Carlo does, and with
each cell's pT moved to a uniform random point within its cell (no lattice: the axes, trimming and
rotation are recomputed from the moved particles). It prints the hardware, the lit-pixel structure of
both (lit pixels, lit-neighbour pairs, fraction of soft pixels < 1 GeV with no lit neighbour), and the
classifier two-sample test (the validation's network, conditional on the class) of lattice against no
lattice on disjoint halves of the jets, and of lattice against lattice (the null, about 0.5).

    python scripts/lattice_visibility.py [--n-per-class 1500] [--seed 7] [--epochs 10]
"""

import argparse

import numpy as np
import torch

from physgan.hardware import cpu_line
from physgan.systems.jets import mc
from physgan.systems.jets.detector import ETA_WIDTH, PHI_WIDTH
from physgan.systems.jets.generative import _neighbour_sum  # the trainer's lit-neighbour count, on hard 0/1 pixels
from physgan.systems.jets.particles import Particles
from physgan.systems.jets.reconstruction import describe_jets
from physgan.systems.jets.validation import make_classifier
from physgan.validation.metrics import classifier_two_sample_test


def moved_within_cells(particles: Particles, rng: np.random.Generator) -> Particles:
    """Each particle (a cell) moved to a uniform random point of its 0.1 x 0.0997 cell."""
    shift = rng.uniform(-0.5, 0.5, (2, len(particles.pt)))
    return Particles(particles.pt, particles.eta + shift[0] * ETA_WIDTH, particles.phi + shift[1] * PHI_WIDTH,
                     particles.offsets)


def structure(images: np.ndarray) -> tuple[float, float, float]:
    """Mean lit pixels and lit-neighbour pairs (8 neighbours) per jet; fraction of soft pixels with no lit neighbour."""
    lit = (images > 0).astype(np.float32)
    neighbours = _neighbour_sum(torch.from_numpy(lit)).numpy()
    soft = (images > 0) & (images < 1.0)
    return lit.sum((1, 2)).mean(), (lit * neighbours).sum((1, 2)).mean() / 2, (soft & (neighbours == 0)).sum() / soft.sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-per-class", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    print(cpu_line())
    config = mc.JetsMCConfig(n_per_class=args.n_per_class, pt="250:300", seed=args.seed, workers=1)
    rng = np.random.default_rng(args.seed)
    lattice, moved, signal = [], [], []
    for result in mc.generate(config):
        lattice.append(result.fields["image"])
        moved.append(describe_jets(moved_within_cells(result.particles, rng))["image"])
        signal.append(result.fields["signal"])
    lattice, moved = np.concatenate(lattice), np.concatenate(moved)
    cond = np.concatenate(signal).astype(np.float32)[:, None]
    for name, images in (("lattice (Monte Carlo)", lattice), ("moved within cells", moved)):
        print(f"{name}: lit pixels %.2f, lit-neighbour pairs %.2f, isolated soft fraction %.3f" % structure(images))
    half = rng.permutation(len(lattice))
    a, b = np.array_split(half, 2)
    test = lambda x, y: classifier_two_sample_test(
        x[a][:, None], y[b][:, None], lambda: make_classifier((1, 25, 25), 1), np.random.default_rng(args.seed),
        epochs=args.epochs, batch_size=128, lr=1e-3, conditions=(cond[a], cond[b]))
    for name, other in (("lattice vs moved within cells", moved), ("lattice vs lattice (null)", lattice)):
        result = test(lattice, other)
        print(f"classifier AUC, {name}: {result['auc']:.3f} +- {result['auc_err']:.3f} ({len(lattice)} jets, halves)")


if __name__ == "__main__":
    main()
