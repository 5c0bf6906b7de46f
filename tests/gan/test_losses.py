"""GAN losses against the closed forms of docs/physics.md, "GAN theory used in tests".

The trained-critic tests draw fresh samples every step (no fixed training set to overfit) and judge
the trained critic on other fresh samples. Budgets are the smallest that pass with a wide margin.
"""
import math

import pytest
import torch
from scipy import integrate, stats

from physgan.gan import losses

LOG2 = math.log(2)
NO_COND = torch.zeros(0)  # the densities below are unconditional; the test critics ignore cond


@pytest.fixture(autouse=True)
def one_thread():
    """Small networks run fastest on one thread, and the machine's cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class MLPCritic(torch.nn.Module):
    """critic(x, cond) -> (B,) with x (B, dim); cond unused. Leaky ReLUs: with plain ReLUs a few seeds
    grow dead, flat regions (zero gradient) that the gradient penalty cannot repair."""

    def __init__(self, dim, width=32):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(dim, width), torch.nn.LeakyReLU(0.2),
                                       torch.nn.Linear(width, width), torch.nn.LeakyReLU(0.2),
                                       torch.nn.Linear(width, 1))

    def forward(self, x, cond):
        return self.net(x).squeeze(-1)


def train_critic(name, sample_real, sample_fake, dim, steps, batch=512, lr=3e-3, seed=0):
    """A critic trained with loss ``name`` on fresh batches from sample_real(n) and sample_fake(n)."""
    torch.manual_seed(seed)
    critic = MLPCritic(dim)
    optimiser = torch.optim.Adam(critic.parameters(), lr=lr, betas=(0.5, 0.9))
    # Decaying the rate to zero ends at the optimum rather than at a random point of Adam's jitter around it.
    schedule = torch.optim.lr_scheduler.LinearLR(optimiser, 1.0, 0.0, total_iters=steps)
    for _ in range(steps):
        loss, _ = losses.critic_loss(name, critic, sample_real(batch), sample_fake(batch), NO_COND)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    return critic


def gaussian(mean):
    return lambda n: torch.randn(n, 1) + mean


def vertical_line(theta):
    """Samples of (theta, U(0, 1)): the parallel-lines example of Arjovsky et al., arXiv:1701.07875."""
    return lambda n: torch.stack([torch.full((n,), float(theta)), torch.rand(n)], dim=1)


def value_on_fresh_samples(critic, sample_real, sample_fake, n=200_000):
    with torch.no_grad():
        return losses.gan_value(critic(sample_real(n), NO_COND), critic(sample_fake(n), NO_COND)).item()


def js_divergence(p, q):
    """JS(p || q) = KL(p || m)/2 + KL(q || m)/2, m = (p + q)/2, by numerical integration on the line."""
    def integrand(x):
        m = (p.pdf(x) + q.pdf(x)) / 2
        return (p.pdf(x) * math.log(p.pdf(x) / m) + q.pdf(x) * math.log(q.pdf(x) / m)) / 2
    return integrate.quad(integrand, -20, 20, points=[0.0], limit=200)[0]


# ---------------------------------------------------------------- minimax: optimal discriminator

def test_optimal_discriminator_is_density_ratio_and_value_gives_js():
    """p_r = N(0,1), p_g = N(1,1): D* = p_r/(p_r + p_g) = sigmoid(1/2 - x), V(D*) = 2 JS - 2 log 2."""
    critic = train_critic("minimax", gaussian(0.0), gaussian(1.0), dim=1, steps=300)
    grid = torch.linspace(-2, 3, 11)
    with torch.no_grad():
        d = torch.sigmoid(critic(grid[:, None], NO_COND))
    assert torch.allclose(d, torch.sigmoid(0.5 - grid), atol=0.04)  # max error <= 0.015 over 20 seeds

    js = js_divergence(stats.norm(0, 1), stats.norm(1, 1))  # 0.1114
    value = value_on_fresh_samples(critic, gaussian(0.0), gaussian(1.0))
    # The tolerance is < 5 % of the distance 2 JS = 0.22 from the no-signal value -2 log 2.
    assert value == pytest.approx(2 * js - 2 * LOG2, abs=0.01)  # |error| <= 0.0035 (sampling) over 20 seeds


def test_identical_distributions_give_one_half_and_minus_two_log_two():
    critic = train_critic("minimax", gaussian(0.0), gaussian(0.0), dim=1, steps=300)
    with torch.no_grad():
        d = torch.sigmoid(critic(torch.linspace(-2, 2, 9)[:, None], NO_COND))
    assert torch.allclose(d, torch.full_like(d, 0.5), atol=0.04)  # max error <= 0.016 over 20 seeds
    value = value_on_fresh_samples(critic, gaussian(0.0), gaussian(0.0))
    assert value == pytest.approx(-2 * LOG2, abs=0.002)  # |error| <= 2e-4 over 20 seeds


# ---------------------------------------------------------------- parallel lines: JS blind, W1 sees theta

@pytest.mark.parametrize("theta", [0.5, 1.0, 2.0])
def test_wgan_gp_critic_recovers_w1_on_parallel_lines(theta):
    """W1 = |theta|. The penalty is soft: along x_1 the optimum of -W + lambda E(|c'| - 1)^2 over the
    interpolates is a slope s = 1 + theta/(2 lambda), so E c(P) - E c(Q) = theta + theta^2/(2 lambda)
    (2.5, 5, 10 % high at theta = 0.5, 1, 2 for lambda = 10); dividing by the critic's gradient norm
    recovers theta. Both agree to <= 0.2 % over 30 seeds; 200 steps fail for a few seeds."""
    critic = train_critic("wgan-gp", vertical_line(0.0), vertical_line(theta), dim=2, steps=400, batch=256)
    p, q = vertical_line(0.0)(20_000), vertical_line(theta)(20_000)
    wasserstein = (critic(p, NO_COND).mean() - critic(q, NO_COND).mean()).item()
    slope = losses.gradient_norms(critic, p, q, NO_COND).mean().item()
    assert wasserstein == pytest.approx(theta + theta**2 / (2 * 10.0), rel=0.02)
    assert wasserstein / slope == pytest.approx(theta, rel=0.02)


@pytest.mark.parametrize("theta", [0.0, 0.5, 1.0, 2.0])
def test_minimax_js_estimate_is_log2_for_any_separated_lines(theta):
    """JS = log 2 for every theta != 0 and 0 at theta = 0: no signal about how far apart the lines are."""
    critic = train_critic("minimax", vertical_line(0.0), vertical_line(theta), dim=2, steps=300, batch=256)
    js_estimate = (value_on_fresh_samples(critic, vertical_line(0.0), vertical_line(theta)) + 2 * LOG2) / 2
    assert js_estimate == pytest.approx(LOG2 if theta else 0.0, abs=0.005)  # |error| <= 5e-5 over 20 seeds


# ---------------------------------------------------------------- closed forms at fixed critics

class LinearCritic(torch.nn.Module):
    """c(x, cond) = <w, x> + <v, cond>: gradient w with respect to x everywhere, |w| = norm."""

    def __init__(self, x_shape, n_cond, norm):
        super().__init__()
        w = torch.randn(math.prod(x_shape), dtype=torch.float64)
        self.w = torch.nn.Parameter(norm * w / w.norm())
        self.v = torch.nn.Parameter(torch.randn(n_cond, dtype=torch.float64))

    def forward(self, x, cond):
        return x.flatten(1) @ self.w + cond @ self.v


@pytest.mark.parametrize("norm", [1.0, 0.5, 3.0])
def test_gradient_penalty_of_linear_critic(norm):
    """|grad| = k everywhere, so the penalty is lambda (k - 1)^2, and its gradient in w is
    2 lambda (k - 1) w/k: nonzero only if the penalty is built with create_graph=True."""
    torch.manual_seed(1)
    critic = LinearCritic((3, 4), n_cond=2, norm=norm)
    real, fake = torch.randn(64, 3, 4, dtype=torch.float64), torch.randn(64, 3, 4, dtype=torch.float64)
    cond = torch.randn(64, 2, dtype=torch.float64)
    loss, logs = losses.critic_loss("wgan-gp", critic, real, fake, cond, gp_lambda=10.0)
    assert logs["gradient_penalty"] == pytest.approx(10.0 * (norm - 1) ** 2, abs=1e-9)
    w1 = (critic(real, cond).mean() - critic(fake, cond).mean()).item()
    assert logs["wasserstein"] == pytest.approx(w1, abs=1e-12)
    assert loss.item() == pytest.approx(logs["gradient_penalty"] - w1, abs=1e-9)

    loss.backward()
    w = critic.w.detach()
    expected = -(real.mean(0) - fake.mean(0)).flatten() + 2 * 10.0 * (norm - 1) * w / norm
    assert torch.allclose(critic.w.grad, expected, atol=1e-9)


def test_clip_weights_bounds_every_parameter():
    torch.manual_seed(2)
    critic = MLPCritic(dim=4)
    before = [p.detach().clone() for p in critic.parameters()]
    assert max(p.abs().max() for p in before) > 0.01  # the default init reaches ~0.5
    losses.clip_weights(critic, clip=0.01)
    for old, new in zip(before, critic.parameters()):
        assert new.abs().max() <= 0.01
        assert torch.equal(new, old.clamp(-0.01, 0.01))  # values inside [-c, c] are untouched
    with pytest.raises(ValueError):
        losses.clip_weights(critic, clip=0.0)


def test_non_saturating_generator_gradient_where_minimax_saturates():
    """At a confidently rejected fake (logit -8, D = 3e-4): d loss/d logit = -D for minimax,
    -(1 - D) for non-saturating. Both push the logit up; only the second with any strength."""
    gradients = {}
    for name in ("minimax", "non-saturating"):
        logit = torch.tensor([-8.0], requires_grad=True)
        losses.generator_loss(name, logit).backward()
        gradients[name] = logit.grad.item()
    d = torch.sigmoid(torch.tensor(-8.0)).item()
    assert gradients["minimax"] == pytest.approx(-d, rel=1e-5)
    assert gradients["non-saturating"] == pytest.approx(-(1 - d), rel=1e-5)
    assert gradients["non-saturating"] / gradients["minimax"] > 1000


@pytest.mark.parametrize("name", ["wgan-clip", "wgan-gp"])
def test_wasserstein_generator_loss_is_minus_mean_critic(name):
    scores = torch.tensor([1.0, -2.0, 4.0])
    assert losses.generator_loss(name, scores).item() == pytest.approx(-1.0)


@pytest.mark.parametrize("name", ["minimax", "non-saturating"])
def test_discriminator_value_closed_forms_and_stability(name):
    """Logits 0: D = 1/2, V = -2 log 2, JS estimate 0. Logits of +-1000 (sigmoid underflows to 0 or 1)
    still give finite values: V = 0 for a perfect discriminator, -2000 for a perfectly wrong one."""
    def constant(logit_real, logit_fake):
        return lambda x, cond: torch.where(x[:, 0] > 0, logit_real, logit_fake)
    real, fake = torch.ones(8, 1), -torch.ones(8, 1)
    loss, logs = losses.critic_loss(name, constant(0.0, 0.0), real, fake, NO_COND)
    assert loss.item() == pytest.approx(2 * LOG2) and logs["value"] == pytest.approx(-2 * LOG2)
    assert logs["js_estimate"] == pytest.approx(0.0, abs=1e-7)
    _, logs = losses.critic_loss(name, constant(1000.0, -1000.0), real, fake, NO_COND)
    assert logs["value"] == 0.0 and logs["js_estimate"] == pytest.approx(LOG2)
    loss, _ = losses.critic_loss(name, constant(-1000.0, 1000.0), real, fake, NO_COND)
    assert loss.item() == pytest.approx(2000.0)


@pytest.mark.parametrize("name", losses.LOSSES)
def test_critic_loss_leaves_the_generator_alone(name):
    """The critic step must not reach the generator's weights, even when the caller forgets to detach."""
    torch.manual_seed(3)
    generator, critic = torch.nn.Linear(2, 2), MLPCritic(dim=2)
    loss, logs = losses.critic_loss(name, critic, torch.randn(16, 2), generator(torch.randn(16, 2)), NO_COND)
    loss.backward()
    assert generator.weight.grad is None
    assert all(p.grad is not None for p in critic.parameters())
    assert all(math.isfinite(v) for v in logs.values())


def test_unknown_loss_name_lists_the_valid_ones():
    for call in (lambda: losses.generator_loss("hinge", torch.zeros(2)),
                 lambda: losses.critic_loss("hinge", MLPCritic(2), torch.zeros(2, 2), torch.zeros(2, 2),
                                            NO_COND)):
        with pytest.raises(ValueError, match="hinge") as error:
            call()
        assert all(name in str(error.value) for name in losses.LOSSES)
