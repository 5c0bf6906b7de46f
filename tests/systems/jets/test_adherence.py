"""Sampling-time adherence (physgan/gan/adherence.py) on a small hierarchical jets generator: each jet's
latent moved towards the mass drawn for it."""
import numpy as np
import pytest
import torch

from physgan.api import load
from physgan.cli import main
from physgan.gan import adherence
from physgan.gan import checkpoint as checkpoints
from physgan.gan.sample import Sampler
from physgan.gan.train import train
from physgan.io import open_samples
from physgan.systems.jets import generative

from .test_generative import tiny_jets_config

CONDITIONS = {"class": "wprime,qcd", "pt": "250:300", "n": 150}


@pytest.fixture(scope="module")
def hierarchical(jets_mc, tmp_path_factory):
    """The last checkpoint of a tiny generator trained with the mass as its one summary."""
    run = tmp_path_factory.mktemp("jets_hierarchical")
    torch.manual_seed(0)
    train(jets_mc[0], run, tiny_jets_config(hierarchical=["mass"], steps=200), quiet=True)
    return run / "checkpoints/last.pt"


def drawn_masses(sampler: Sampler, request) -> np.ndarray:
    """The masses the sampler draws for a one-batch request: its random streams, in its order."""
    cond = torch.from_numpy(np.repeat(request.conditions, request.n_per_condition, axis=0))
    assert len(cond) <= request.batch_size
    rng = torch.Generator().manual_seed(request.seed)
    sampler.generator(request.device).latent(len(cond), rng)
    return checkpoints.conditioning(sampler.checkpoint).draw_summaries(cond, rng)[:, 0].numpy()


def test_adherence_brings_each_jet_to_its_drawn_mass(hierarchical):
    # The tiny generator misses the drawn mass by 11.6 GeV rms per jet (3.5 GeV after 30 steps at a
    # tolerance of 5 % of the mass's training spread of ~30 GeV). The steps must cut the miss at least in
    # half, keep the jets' other physics (pT within its spread), and draw nothing: 0 steps give the plain
    # sample, and the same seed the same jets.
    sampler = Sampler(hierarchical)
    plain = sampler.request(CONDITIONS, device="cpu", seed=3)
    held = sampler.request(CONDITIONS, device="cpu", seed=3, adhere=["mass"], adherence_steps=30)
    wanted = drawn_masses(sampler, plain)
    samples = {name: sampler.arrays(request, quiet=True) for name, request in (("plain", plain), ("held", held))}
    miss = {name: np.sqrt(np.mean((arrays["jet_mass"] - wanted) ** 2)) for name, arrays in samples.items()}
    assert miss["held"] < 0.5 * miss["plain"], miss
    pt = {name: arrays["image"].sum((1, 2)) for name, arrays in samples.items()}
    assert abs(np.median(pt["held"]) - np.median(pt["plain"])) < 0.5 * np.std(pt["plain"]), pt
    zero = sampler.arrays(sampler.request(CONDITIONS, device="cpu", seed=3, adhere=["mass"], adherence_steps=0),
                          quiet=True)
    again = sampler.arrays(held, quiet=True)
    for name in ("image", "jet_mass"):
        np.testing.assert_array_equal(zero[name], samples["plain"][name])
        np.testing.assert_array_equal(again[name], samples["held"][name])


def test_each_jet_keeps_its_best_iterate():
    # Whatever the generator (here untrained), no jet ends with a higher loss than its own draw had:
    # a step that made a jet worse is not kept.
    torch.manual_seed(0)
    G = generative.Generator(2, generative.NetworkConfig(channels=64, blocks=1, critic_channels=64, z_dim=8,
                                                         embed_dim=8))
    latent, cond = G.latent(64, torch.Generator().manual_seed(1)), torch.rand(64, 2) * 2 - 1
    wanted = torch.linspace(10, 150, 64)[:, None]
    spread = torch.tensor([30.0])

    def loss(z):
        with torch.no_grad():
            made = generative.physics_features(G({"z": z}, cond))[:, :1]
        scale = adherence.TOLERANCE * spread
        return (((made - wanted) / scale) ** 2).sum(1) / 2 + ((z - latent["z"]) ** 2).sum(1) / 2

    moved = adherence.adhere(G, latent, cond, wanted, generative.physics_features, [0], spread, 20)["z"]
    assert bool((loss(moved) <= loss(latent["z"])).all())
    assert loss(moved).mean() < 0.7 * loss(latent["z"]).mean()  # 0.52 x in 20 steps


def test_the_provenance_records_it_and_every_entry_point_makes_the_same_jets(hierarchical, tmp_path, capsys):
    out = tmp_path / "held.h5"
    assert main(["sample", "--checkpoint", str(hierarchical), "--class", "wprime", "--pt", "250:300", "--n", "40",
                 "--adhere", "mass", "--adherence-steps", "10", "--seed", "5", "--device", "cpu", "--out", str(out),
                 "--quiet"]) == 0
    written = open_samples(out)
    assert written.provenance["config"]["adherence"] == {"summaries": ["mass"], "steps": 10,
                                                         "tolerance": adherence.TOLERANCE,
                                                         "learning_rate": adherence.LEARNING_RATE}
    in_memory = load(hierarchical).sample(cls="wprime", pt=(250, 300), n=40, seed=5, adhere="mass",
                                          adherence_steps=10)
    np.testing.assert_array_equal(in_memory["image"], written.read("image"))
    # only a summary the generator was trained with can be adhered to: one line, no file
    assert main(["sample", "--checkpoint", str(hierarchical), "--class", "qcd", "--pt", "250:300", "--adhere", "girth",
                 "--out", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err
    assert err == "physgan: error: adhere to girth: the generator was trained with the summaries mass only " \
                  "(train.hierarchical)\n"
    assert not (tmp_path / "x.h5").exists()
