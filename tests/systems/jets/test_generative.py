"""The jets adapter of the GAN engine: networks, intensity transform, features, conditioning, sampler formats."""
import numpy as np
import pytest
import torch

from physgan.cli import main
from physgan.errors import UserError
from physgan.gan.sample import sample_to_file
from physgan.gan.train import TrainConfig, prepare_data, train
from physgan.io import open_samples
from physgan.systems import get_system
from physgan.systems.jets import generative
from physgan.systems.jets.images import pixel_centres
from physgan.systems.jets.observables import image_mass, image_pt, nonempty_pixels

TINY_NET = {"channels": 64, "blocks": 1, "critic_channels": 64, "z_dim": 8, "embed_dim": 8}


def test_networks_give_non_negative_sparse_images_of_the_right_shape():
    G, D = generative.make_networks((1, 25, 25), 2, generative.NetworkConfig(**TINY_NET))
    cond = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [1.0, 0.0]])
    t = G(G.latent(3, torch.Generator().manual_seed(0)), cond)
    assert t.shape == (3, 1, 25, 25) and bool((t >= 0).all())
    assert 0 < float((t == 0).float().mean()) < 1  # ReLU: exact zeros, as in the data
    assert D(t, cond).shape == (3,)
    # float32 throughout (a float64 bias made every output unit float64: its passes 16 % slower on a CPU)
    assert {p.dtype for p in [*G.parameters(), *D.parameters()]} == {torch.float32} and t.dtype == torch.float32
    critic = generative.make_networks((1, 25, 25), 2, generative.NetworkConfig(**TINY_NET, critic_occupancy=True))[1]
    assert critic(t, cond).shape == (3,)
    images = generative.to_intensity(t)
    assert bool((images >= 0).all())
    torch.testing.assert_close(generative.to_float(images), t, rtol=1e-5, atol=1e-5)
    with pytest.raises(UserError, match="25 x 25"):
        generative.make_networks((1, 32, 32), 2, generative.NetworkConfig())


def test_occupancy_prior_is_the_curvature_of_the_occupancy_probit_map():
    # per group of 16 jets and pixel: logits = target probit + noise of mean 0 and spread 1 - 0.001 exactly
    # (occupancy_probit divides by the spread + 0.001)
    noise = torch.randn(2, 16, 625, generator=torch.Generator().manual_seed(0))
    noise = 0.999 * (noise - noise.mean(1, keepdim=True)) / noise.std(1, unbiased=False, keepdim=True)
    row, column = torch.meshgrid(torch.arange(25.0), torch.arange(25.0), indexing="ij")

    def logits(clamped_maps: torch.Tensor) -> torch.Tensor:  # maps (2, 25, 25) of the clamped probit
        probit = 5.0 * torch.atanh(clamped_maps / 5.0)
        return (probit.view(2, 1, 625) + noise).view(32, 625)

    ramps = torch.stack([0.3 * column - 3.0, 2.0 - 0.2 * row])
    torch.testing.assert_close(generative.occupancy_probit(logits(ramps), 16), ramps, rtol=1e-4, atol=1e-4)
    assert float(generative.occupancy_curvature(logits(ramps), 16)) < 1e-8  # a plane costs nothing
    spike = torch.zeros(2, 25, 25)
    spike[0, 12, 7] = 1.5  # one hot pixel: 1.5^2 at it, (1.5 / 4)^2 at each neighbour, over 2 x 23^2 pixels
    cost = generative.occupancy_curvature(logits(spike), 16)
    torch.testing.assert_close(cost, torch.tensor(1.25 * 1.5**2 / (2 * 23**2)), rtol=1e-4, atol=1e-7)
    # blind (up to the 0.001) to each pixel's logit scale, which the hard gate cannot see
    scaled = logits(spike) * torch.rand(625, generator=torch.Generator().manual_seed(1)).add(0.5)
    torch.testing.assert_close(generative.occupancy_curvature(scaled, 16), cost, rtol=5e-3, atol=1e-7)
    # the generator keeps its gate logits for the trainer only when the prior is on
    cond = torch.zeros(32, 2)
    for weight in (0.0, 0.3):
        config = generative.NetworkConfig(**TINY_NET, occupancy_smoothness=weight)
        G = generative.make_networks((1, 25, 25), 2, config)[0]
        G(G.latent(32, torch.Generator().manual_seed(0)), cond)
        expected = weight * generative.occupancy_curvature(G._gate, 16) if weight else 0.0
        assert G.prior_loss(16) == expected


def test_differentiable_features_equal_the_image_observables(jets_mc):
    data = open_samples(jets_mc[0]).read_chunk(0, 50, ("image",))["image"]
    features = generative.physics_features(generative.to_float(torch.from_numpy(data)[:, None])).double().numpy()
    np.testing.assert_allclose(features[:, 0], image_mass(data), rtol=1e-3, atol=0.05)
    np.testing.assert_allclose(features[:, 1], image_pt(data), rtol=1e-4)
    # girth, sum(I r) / sum(I) with r from the image centre (the leading subjet)
    x, y = pixel_centres()
    girth = (data * np.hypot(x, y)).sum((1, 2)) / data.sum((1, 2))
    np.testing.assert_allclose(features[:, generative.FEATURE_NAMES.index("girth")], girth, rtol=1e-4)


def test_the_soft_pixel_count_counts_lit_pixels_and_negligible_ones_softly():
    image = np.zeros((1, 25, 25), np.float32)
    image[0, 11:13, 11:13] = 100.0  # four bright pixels count one each
    image[0, 24, 24] = 1e-3  # a negligible pixel counts by its soft occupancy, 1 - exp(-0.01)
    features = generative.physics_features(generative.to_float(torch.from_numpy(image)[:, None])).double().numpy()
    lit = 1 - np.exp(-1e-3 / generative.SOFT_PIXEL_GEV)
    np.testing.assert_allclose(features[0, generative.FEATURE_NAMES.index("pixels")], 4 + lit, rtol=1e-5)


def test_spectrum_features_count_the_pixels_above_each_threshold(jets_mc):
    data = open_samples(jets_mc[0]).read_chunk(0, 240, ("image",))["image"]
    features = generative.physics_features(generative.to_float(torch.from_numpy(data)[:, None])).double().numpy()
    first = generative.FEATURE_NAMES.index("pixels_above_0.01")
    assert len(generative.FEATURE_WEIGHTS) == len(generative.FEATURE_NAMES) == features.shape[1]
    flat = data.reshape(len(data), -1)
    assert abs(np.mean(features[:, first] - nonempty_pixels(data))) < 0.5  # 0.01 GeV: about every lit pixel
    for k, cut in enumerate(generative.SPECTRUM_GEV):
        # soft steps (0.3 in log I): a pixel near the threshold counts partly, so allow about one pixel per jet
        difference = features[:, first + k] - (flat > cut).sum(1)
        assert abs(np.mean(difference)) < 0.5 and np.mean(np.abs(difference)) < 1.0


def test_condition_groups_are_class_and_ten_gev_bins():
    cond = torch.tensor([[1, 251.0], [1, 259.9], [1, 260.1], [0, 251.0], [0, 299.0]])
    groups = generative.condition_groups(cond)
    assert groups[0] == groups[1] and len(set(groups.tolist())) == 4


def tiny_jets_config(**changes):
    settings = dict(steps=120, batch_size=32, group_size=8, n_critic=1, lr_generator=2e-3, lr_critic=2e-3,
                    feature_matching=5.0, ema=0.0, log_every=20, monitor_every=60, monitor_samples=32,
                    checkpoint_every=60, device="cpu", network=TINY_NET)
    return TrainConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def trained(jets_mc, tmp_path_factory):
    run = tmp_path_factory.mktemp("jets_gan")
    torch.manual_seed(0)
    train(jets_mc[0], run, tiny_jets_config(), quiet=True)
    # the last step, not best.pt: 32 monitor samples choose between two checkpoints by noise, and the
    # step-60 one had not yet learnt the mass split in 3 of 8 training seeds (W' - QCD median 15-18 GeV;
    # the last, 22-38 GeV in all 8)
    return run / "checkpoints/last.pt"


def test_a_trained_tiny_model_changes_the_mass_with_the_class(trained, tmp_path):
    sample_to_file(trained, tmp_path / "gen.h5", {"class": "wprime,qcd", "pt": "250:300", "n": 200}, device="cpu",
                   quiet=True)
    generated = open_samples(tmp_path / "gen.h5")
    images, signal = generated.read("image"), generated.read("signal")
    mass = image_mass(images)
    wprime, qcd = np.median(mass[signal == 1]), np.median(mass[signal == 0])
    # Monte Carlo: W' ~ 78 GeV, QCD ~ 32 GeV (docs/physics.md, "Reference shapes"); the condition must move
    # the mass the same way
    assert wprime - qcd > 20, (wprime, qcd)


def test_a_hierarchical_tiny_model_makes_the_mass_it_is_asked_for(jets_mc, tmp_path):
    # train.hierarchical = ["mass"]: the mass is drawn per class from the training quantiles, then the
    # image conditioned on it. Asked for QCD jets of 30 and of 90 GeV at the same pT, the generator must
    # follow the request, not the class's typical mass (~32 GeV); the draws stay within the class's range.
    from physgan.gan.train import Trainer

    torch.manual_seed(0)
    data = prepare_data(get_system("jets"), open_samples(jets_mc[0]))
    trainer = Trainer(get_system("jets"), data, tiny_jets_config(hierarchical=["mass"], steps=200), tmp_path,
                      quiet=True)
    trainer.fit()
    cond = torch.tensor([[0.0, 270.0]]).repeat(64, 1)
    latent = trainer.G_ema.latent(64, torch.Generator().manual_seed(1))
    made = {}
    for request in (30.0, 90.0):
        with torch.no_grad():
            t = trainer.G_ema(latent, trainer.conditioning.real(cond, torch.full((64, 1), request)))
        made[request] = image_mass(generative.to_intensity(t)[:, 0].numpy())
    # 200 steps of a tiny model: ~23 and ~75 GeV; the class alone would give both the same mass
    assert np.median(made[90.0]) - np.median(made[30.0]) > 35, made
    drawn = trainer.conditioning.draw_summaries(torch.tensor([[1.0, 270.0]]).repeat(500, 1), torch.Generator())
    wprime = data.features[data.cond[:, 0] == 1, 0]
    assert wprime.min() <= drawn.min() and drawn.max() <= wprime.max()  # W' masses only


def test_sampler_writes_hdf5_and_root_with_the_image_observables(trained, tmp_path):
    h5, root = tmp_path / "gen.h5", tmp_path / "gen.root"
    assert main(["sample", "--checkpoint", str(trained), "--class", "qcd", "--pt", "260:280", "--n", "40",
                 "--out", str(h5), "--root", str(root), "--quiet"]) == 0
    generated = open_samples(h5)
    assert (generated.system, generated.source, generated.n) == ("jets", "gan", 40)
    assert set(get_system("jets").DATA_FIELDS) <= set(generated.fields)
    data = generated.read_chunk(0, 40, tuple(generated.fields))
    np.testing.assert_array_equal(data["signal"], np.zeros(40, np.int8))
    np.testing.assert_allclose(data["jet_pt"], 260 + (np.arange(40) + 0.5) * 0.5, rtol=1e-6)  # the request
    np.testing.assert_allclose(data["jet_mass"], image_mass(data["image"]), rtol=1e-5)
    assert np.all(np.isnan(data["jet_eta"])) and np.all(data["image"] >= 0)
    from_root = open_samples(root)
    assert (from_root.format, from_root.source, from_root.n) == ("physgan-root", "gan", 40)
    for name in ("image", "jet_mass", "tau_21", "jet_pt"):
        np.testing.assert_array_equal(from_root.read(name), data[name])


def test_bad_sampling_requests_are_one_line_errors(trained, tmp_path, capsys):
    cases = [["--class", "top", "--pt", "250:300"], ["--class", "qcd", "--pt", "300:250"], ["--T", "2.0"],
             ["--class", "qcd", "--pt", "250:300", "--T", "2.0"]]  # an Ising condition is refused, not ignored
    for extra in cases:
        assert main(["sample", "--checkpoint", str(trained), *extra, "--out", str(tmp_path / "x.h5")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("physgan: error:") and err.count("\n") == 1
        assert not (tmp_path / "x.h5").exists()
    assert "a jets checkpoint is sampled at its own conditions (--class, --pt), not at T" in err


def test_prepare_data_groups_and_targets(jets_mc):
    data = prepare_data(get_system("jets"), open_samples(jets_mc[0]))
    assert sum(len(g) for g in data.groups) == len(data.x)
    signal = data.group_cond[:, 0]
    # per-group feature targets: W' groups are heavier than QCD groups
    assert data.target_mean[signal == 1, 0].mean() > data.target_mean[signal == 0, 0].mean() + 20


def test_a_tiny_jets_run_end_to_end(tmp_path, capsys):
    preset = tmp_path / "tiny.toml"
    preset.write_text(f"""system = "jets"
[simulate_train]
n_per_class = 40
seed = 31
[simulate_test]
n_per_class = 30
seed = 32
[train]
steps = 3
batch_size = 16
group_size = 4
n_critic = 1
monitor_every = 1
monitor_samples = 8
device = "cpu"
network = {{channels = 16, blocks = 1, critic_channels = 16, z_dim = 4, embed_dim = 8, occupancy_smoothness = 0.01}}
[sample]
n_per_condition = 1
[fidelity]
w1_ratio = {{mass = 3.0, tau_21 = 3.0}}
""")
    code = main(["run", "jets", "--preset", str(preset), "--out", str(tmp_path / "run"), "--quiet"])
    run = tmp_path / "run"
    for path in ("data/train.h5", "data/test.h5", "checkpoints/best.pt", "samples/generated.h5",
                 "report/metrics.json", "timings.json"):
        assert (run / path).exists(), path
    test, generated = open_samples(run / "data/test.h5"), open_samples(run / "samples/generated.h5")
    # one generated jet per test jet, at its class and pT
    for name in ("signal", "jet_pt"):
        np.testing.assert_array_equal(generated.read(name), test.read(name))
    import json

    summary = json.loads((run / "timings.json").read_text())
    assert {"simulate train", "train", "sample", "validate"} <= set(summary["timings_s"])
    # a few steps of training: the verdict may go either way, but the exit status follows it, and the
    # preset's targets are checks of that one verdict
    assert code == (0 if summary["verdict"] == "pass" else 1)
    targets = [c["check"] for c in summary["checks"] if c["check"].endswith("(preset)")]
    assert all(any(f" {name}: W1 / floor" in t for t in targets) for name in ("mass", "tau_21"))
    metrics = json.loads((run / "report/metrics.json").read_text())
    assert metrics["jets"]["memorisation"]["checked"]  # the run passes its training file to validate
    steps = [line for line in map(json.loads, (run / "log.jsonl").read_text().splitlines()) if "generator_loss" in line]
    assert steps and all(line["generator_prior"] > 0 for line in steps)  # the trainer adds the generator's prior
    capsys.readouterr()
    assert main(["run", "jets", "--preset", str(preset), "--out", str(run)]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_the_second_prong_features_on_a_two_prong_jet():
    """A 200 GeV core at the centre and a 100 GeV prong 0.5 straight below it (where the preprocessing puts
    the subleading subjet): prong_share 1/3, prong_distance 0.5, and tau_21 on the two axes 0 (all pT on
    an axis, up to a softening); a 1 GeV pixel 0.3 to the right of the prong then adds 0.3 GeV to tau_2 and to tau_1 its
    distance from the centre. The gradients are finite where a pixel sits on the second axis."""
    x, y = pixel_centres()
    image = np.zeros((1, 25, 25), np.float32)
    core, prong = (12, 12), (17, 12)  # rows run from y = +1.2 down to -1.2 in steps of 0.1
    image[0][core], image[0][prong] = 200.0, 100.0
    assert abs(y[prong] + 0.5) < 1e-6 and x[prong] == 0 == y[core]
    t = generative.to_float(torch.from_numpy(image)[:, None]).requires_grad_(True)
    features = generative.physics_features(t)
    value = {name: features[0, generative.FEATURE_NAMES.index(name)].item()
             for name in ("prong_share", "prong_distance", "tau_21_axes")}
    assert value["prong_share"] == pytest.approx(1 / 3, rel=1e-4)
    assert value["prong_distance"] == pytest.approx(0.5, rel=1e-4)
    # 0 but for the softening of the distance to the second axis (1e-3): 100 GeV x 1e-3 over tau_1 = 100 x 0.5
    assert value["tau_21_axes"] == pytest.approx(0.1 / (50 + 1e-3), rel=1e-2)
    features.sum().backward()
    assert torch.isfinite(t.grad).all()

    image[0, 17, 15] = 1.0  # x = 0.3, y = -0.5
    features = generative.physics_features(generative.to_float(torch.from_numpy(image)[:, None]))
    tau_1 = 100 * 0.5 + 1.0 * np.hypot(0.3, 0.5)
    expected = (0.1 + 1.0 * 0.3) / (tau_1 + 1e-3)
    assert features[0, generative.FEATURE_NAMES.index("tau_21_axes")].item() == pytest.approx(expected, rel=2e-2)


def test_tau_32_on_fixed_axes_puts_the_third_axis_on_the_best_pixel():
    """The two-prong jet of the test above plus a 10 GeV pixel at (0.6, 0) and a 1 GeV one at (0.6, 0.3):
    the third axis on the 10 GeV pixel leaves tau_3 = 1 GeV x 0.3 (the axis on the 1 GeV pixel would leave
    10 x 0.3), and tau_2 = 10 x 0.6 + 1 x |(0.6, 0.3)|, each up to the softening of the second axis's
    distance (1e-3 x 100 GeV). The gradients are finite."""
    image = np.zeros((1, 25, 25), np.float32)
    x, y = pixel_centres()
    image[0, 12, 12], image[0, 17, 12], image[0, 12, 18], image[0, 9, 18] = 200.0, 100.0, 10.0, 1.0
    assert (x[12, 18], y[12, 18]) == pytest.approx((0.6, 0.0)) and (x[9, 18], y[9, 18]) == pytest.approx((0.6, 0.3))
    t = generative.to_float(torch.from_numpy(image)[:, None]).requires_grad_(True)
    features = generative.physics_features(t)
    tau_2 = 0.1 + 10 * 0.6 + 1 * np.hypot(0.6, 0.3)
    expected = (0.1 + 0.3) / (tau_2 + 1e-3)
    assert features[0, generative.FEATURE_NAMES.index("tau_32_axes")].item() == pytest.approx(expected, rel=2e-2)
    features.sum().backward()
    assert torch.isfinite(t.grad).all()


def test_place_prong_puts_the_second_prong_at_the_requested_distance():
    """network.place_prong: a bump of width w around (0, -d) is exp(-|p - a|^2 / 2 w^2) at each pixel centre
    p; with the bumps' amplitudes large, the hardest pixel below the core sits at the requested distance
    (to the half pixel), and prong_distance measures it. Without the summary the option is a one-line error."""
    d = torch.tensor([0.3, 0.55, 0.8])
    bumps = generative.prong_bumps(d)
    x, y = pixel_centres()
    row, col = 12 + 6, 12  # (0, -0.6)
    expected = np.exp(-(x[row, col] ** 2 + (y[row, col] + 0.55) ** 2) / (2 * generative.PRONG_WIDTHS[1] ** 2))
    assert bumps[1, 1, row * 25 + col].item() == pytest.approx(expected, rel=1e-5)
    torch.manual_seed(0)
    G = generative.Generator(2, generative.NetworkConfig(**TINY_NET, place_prong=True))
    with torch.no_grad():
        G.prong.bias[0], G.prong.bias[len(generative.PRONG_WIDTHS)] = 20.0, 3.0  # gate and intensity
    latent = {**G.latent(3, torch.Generator().manual_seed(1)), "prong_distance": d}
    with torch.no_grad():
        t = G(latent, torch.tensor([[1.0, 0.0]]).repeat(3, 1))
    below = generative.to_intensity(t)[:, 0, 14:, 12]  # the column below the core, from y = -0.2 down
    hardest = -torch.from_numpy(y[14:, 12])[below.argmax(1)]
    assert torch.allclose(hardest.float(), d, atol=0.05 + 1e-6), hardest
    distance = generative.physics_features(t)[:, generative.FEATURE_NAMES.index("prong_distance")]
    assert torch.allclose(distance, d, atol=0.05), distance
    with pytest.raises(UserError, match="prong_distance"):
        G(G.latent(3, torch.Generator()), torch.zeros(3, 2))
