"""Ising networks: exact symmetries, straight-through spins, conditioning, physics features."""
import numpy as np
import pytest
import torch

from physgan.errors import UserError
from physgan.gan.conditioning import normalise
from physgan.systems.ising import generative
from physgan.systems.ising.observables import energy_per_site, magnetization
from tests.conftest import random_spins


def test_symmetries_preserve_the_physics_and_cover_both_signs():
    x = torch.from_numpy(random_spins(64, 8, seed=1)).float()[:, None]
    codes = generative.symmetry_codes(64, torch.Generator().manual_seed(0))
    y = generative.apply_symmetry(x, codes)
    features_x, features_y = generative.physics_features(x), generative.physics_features(y)
    torch.testing.assert_close(features_x, features_y)  # e and |m| are invariant
    flipped = (codes & 1).bool()
    m_x, m_y = x.mean((1, 2, 3)), y.mean((1, 2, 3))
    torch.testing.assert_close(m_y, torch.where(flipped, -m_x, m_x))
    assert 0 < flipped.float().mean() < 1
    assert not torch.equal(x, y)


def test_each_lattice_symmetry_is_a_permutation_of_sites():
    x = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(16, 1, 1, 1) + 1
    codes = torch.arange(16) << 1  # no spin flip; every combination of transpose/mirrors and some shifts
    y = generative.apply_symmetry(x, codes)
    for lattice in y:
        assert sorted(lattice.flatten().tolist()) == list(range(1, 17))
    assert len({tuple(l.flatten().tolist()) for l in y[:8]}) == 8  # the 8 elements of D4 are distinct


def test_torch_features_agree_with_the_numpy_observables():
    spins = random_spins(10, 6, seed=2)
    features = generative.physics_features(torch.from_numpy(spins).float()[:, None]).double().numpy()
    np.testing.assert_allclose(features[:, 0], energy_per_site(spins), atol=1e-6)
    np.testing.assert_allclose(features[:, 1], np.abs(magnetization(spins)), atol=1e-6)


@pytest.mark.parametrize("scales, gates", [(0, False), (2, True)])
def test_generator_emits_spins_and_depends_on_temperature(scales, gates):
    torch.manual_seed(0)
    config = generative.NetworkConfig(channels=8, blocks=2, critic_channels=8, critic_blocks=1,
                                      noise_scales=scales, noise_gates=gates)
    G, D = generative.make_networks((1, 8, 8), 1, config)
    for p in G.parameters():  # FiLM starts as the identity; perturb so conditioning has an effect
        torch.nn.init.normal_(p, std=0.3)
    latent = G.latent(32, torch.Generator().manual_seed(1))
    cold, hot = G(latent, torch.full((32, 1), -1.0)), G(latent, torch.full((32, 1), 1.0))
    assert set(cold.unique().tolist()) <= {-1.0, 1.0}
    assert not torch.equal(cold, hot)
    cold.sum().backward()  # straight-through: gradients reach the generator
    assert all(p.grad is not None for p in G.parameters() if p.requires_grad)
    assert D(cold.detach(), torch.zeros(32, 1)).shape == (32,)


def test_conditions_are_normalised_to_the_training_range():
    low, high = torch.tensor([1.5]), torch.tensor([3.5])
    torch.testing.assert_close(normalise(torch.tensor([[1.5], [2.5], [3.5]]), low, high),
                               torch.tensor([[-1.0], [0.0], [1.0]]))


def test_multiscale_noise_has_unit_variance_gaussian_correlations_and_commutes_with_shifts():
    field = torch.randn(64, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    noise = generative.multiscale_noise(field, 3)
    assert torch.equal(noise[:, :1], field)
    torch.testing.assert_close(noise.var(dim=(0, 2, 3)), torch.ones(4), atol=0.03, rtol=0)
    for s in range(3):  # white noise smoothed by a Gaussian of width w: correlation exp(-r^2 / 4 w^2)
        w = 2 ** s
        x = noise[:, 1 + s]
        correlation = (x * torch.roll(x, w, dims=-1)).mean() / x.var()
        assert correlation.item() == pytest.approx(np.exp(-0.25), abs=0.03)
    shifted = generative.multiscale_noise(torch.roll(field, (3, 5), dims=(-2, -1)), 3)
    torch.testing.assert_close(shifted, torch.roll(noise, (3, 5), dims=(-2, -1)))


def test_spin_correlation_closed_forms_and_the_projection_critic():
    L = 8
    checkerboard = torch.tensor((np.indices((L, L)).sum(0) % 2) * 2 - 1, dtype=torch.float32)[None, None]
    stripes = torch.tensor(np.where(np.arange(L) < L // 2, 1, -1), dtype=torch.float32).expand(L, L)[None, None]
    for r in (1, 2, 3, 4):
        assert generative.spin_correlation(checkerboard, r).item() == (-1) ** r
        # stripes of width L/2 along x: G_x(r) = 1 - 4r/L for r <= L/2, G_y(r) = 1
        assert generative.spin_correlation(stripes, r).item() == pytest.approx((1 + 1 - 4 * r / L) / 2)
    config = generative.NetworkConfig(channels=8, blocks=1, critic_channels=8, critic_blocks=1,
                                      critic_projection=True)
    _, D = generative.make_networks((1, L, L), 1, config)
    assert D(torch.cat([checkerboard, stripes]), torch.zeros(2, 1)).shape == (2,)


@pytest.mark.parametrize("abs_m", [0.0, 2 / 64, 0.5, 1.0])
def test_imposed_magnetisation_is_exact(abs_m):
    config = generative.NetworkConfig(impose_magnetisation=True, symmetrize=False)
    logits = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    spins = generative.output_spins(logits, {"abs_m": torch.full((5,), abs_m)}, config)
    torch.testing.assert_close(spins.mean(dim=(1, 2, 3)), torch.full((5,), abs_m))
    # the threshold keeps the largest logits up: the order of the field decides where the minority goes
    up = spins.flatten(1) > 0
    assert torch.all(logits.flatten(1)[up].view(5, -1).min(1).values[:, None] >= logits.flatten(1)[~up].view(5, -1))
    with pytest.raises(UserError, match="impose_magnetisation"):
        generative.output_spins(logits, {}, config)


@pytest.mark.parametrize("scale_invariant", [False, True])
def test_imposed_magnetisation_has_no_gradient_along_a_uniform_shift(scale_invariant):
    """The thresholded field logits - level does not change when every logit of a lattice moves by the
    same amount, so, with the level's own gradient, every lattice's logit gradients sum to zero."""
    config = generative.NetworkConfig(impose_magnetisation=True, symmetrize=False, scale_invariant=scale_invariant)
    logits = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(5)).requires_grad_()
    weights = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(6))
    spins = generative.output_spins(logits, {"abs_m": torch.tensor([0.0, 0.25, 0.5, 1.0])}, config)
    (spins * weights).sum().backward()
    assert logits.grad.abs().sum() > 0
    torch.testing.assert_close(logits.grad.sum(dim=(1, 2, 3)), torch.zeros(4), atol=1e-5, rtol=0)


def test_scale_invariant_output_keeps_spins_and_has_no_gradient_along_the_scale():
    logits = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(3)).requires_grad_()
    latent = {"abs_m": torch.tensor([0.0, 0.25, 0.5, 0.75])}
    weights = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    field = logits.detach() - generative.magnetisation_threshold(logits, latent["abs_m"])  # what tanh sees

    def radial(config):
        """d/d(alpha) of the loss with the thresholded field scaled by alpha, at alpha = 1, relative."""
        logits.grad = None
        spins = generative.output_spins(logits, latent, config)
        (spins * weights).sum().backward()
        return spins, (logits.grad * field).flatten(1).sum(1) / (logits.grad * field).flatten(1).norm(dim=1)

    plain = generative.NetworkConfig(impose_magnetisation=True, symmetrize=False)
    invariant = generative.NetworkConfig(impose_magnetisation=True, symmetrize=False, scale_invariant=True)
    spins_plain, radial_plain = radial(plain)
    spins_invariant, radial_invariant = radial(invariant)
    torch.testing.assert_close(spins_invariant, spins_plain)
    assert radial_invariant.abs().max() < 1e-5
    assert radial_plain.abs().min() > 0.1  # tanh's surrogate gradient does push the scale
    # a fully ordered request still gives a finite field (the rms normalisation must not make NaN)
    spins = generative.output_spins(logits, {"abs_m": torch.ones(4)}, invariant)
    assert torch.isfinite(spins).all() and spins.mean().item() == 1.0
