"""GAN losses, selected by name, for any system: they see only critic scores, never physics.

Conventions: ``critic(x, cond) -> (B,)`` raw scores. For "minimax" and "non-saturating" a score is a
logit, D(x) = sigmoid(score); for the WGAN losses it is the critic value itself. ``real`` and ``fake``
have the same shape (B, ...), ``cond`` is (B, n_cond) and is the condition of both. Every function
returns a loss to *minimise*.

- "minimax": Goodfellow et al. 2014, arXiv:1406.2661, V(D, G) = E log D(x) + E log(1 - D(G(z))).
- "non-saturating": same discriminator, the generator maximises E log D(G(z)) instead (same paper, sec. 3).
- "wgan-clip": Arjovsky et al. 2017, arXiv:1701.07875, Lipschitz constraint by weight clipping.
- "wgan-gp": Gulrajani et al. 2017, arXiv:1704.00028, Lipschitz constraint by a gradient penalty (default).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

LOSSES = ("minimax", "non-saturating", "wgan-clip", "wgan-gp")
_WASSERSTEIN = ("wgan-clip", "wgan-gp")
_LOG4 = 2 * math.log(2)

Critic = Callable[[Tensor, Tensor], Tensor]


def critic_loss(name: str, critic: Critic, real: Tensor, fake: Tensor, cond: Tensor,
                gp_lambda: float = 10.0, eps: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
    """Loss of one critic (discriminator) step, and what to log about it.

    WGAN losses log {"wasserstein": E c(real) - E c(fake), "gradient_penalty": the term added to the
    loss (0 for "wgan-clip")}, so loss = -wasserstein + gradient_penalty. Minimax and non-saturating
    log {"value": V, "js_estimate": (V + 2 log 2) / 2}; at the optimal discriminator V = 2 JS - 2 log 2.
    """
    _check_name(name)
    # The critic step must not push gradients into the generator, whatever the caller passed.
    fake = fake.detach()
    # One critic call on real and fake together: the same result for a per-sample critic, and faster.
    score_real, score_fake = critic(torch.cat([real, fake]), torch.cat([cond, cond])).chunk(2)
    if name in _WASSERSTEIN:
        wasserstein = score_real.mean() - score_fake.mean()
        penalty = torch.zeros_like(wasserstein)
        if name == "wgan-gp":
            penalty = gp_lambda * gradient_penalty(critic, real, fake, cond, eps)
        logs = {"wasserstein": wasserstein.item(), "gradient_penalty": penalty.item()}
        return penalty - wasserstein, logs
    value = gan_value(score_real, score_fake)
    return -value, {"value": value.item(), "js_estimate": (value.item() + _LOG4) / 2}


def gan_value(logit_real: Tensor, logit_fake: Tensor) -> Tensor:
    """V(D, G) = E log D(x) + E log(1 - D(G(z))) from logits (Goodfellow et al., eq. 1).

    log D = logsigmoid(l) and log(1 - D) = logsigmoid(-l): finite for any logit, where
    log(sigmoid(l)) would give -inf once sigmoid underflows.
    """
    return F.logsigmoid(logit_real).mean() + F.logsigmoid(-logit_fake).mean()


def gradient_penalty(critic: Critic, real: Tensor, fake: Tensor, cond: Tensor, eps: Tensor | None = None) -> Tensor:
    """E (||grad_x c(x_hat, cond)||_2 - 1)^2 (Gulrajani et al., eq. 3), without the factor lambda."""
    return (gradient_norms(critic, real, fake, cond, eps) - 1).square().mean()


def gradient_norms(critic: Critic, real: Tensor, fake: Tensor, cond: Tensor, eps: Tensor | None = None) -> Tensor:
    """||grad_x c(x_hat_i, cond_i)||_2, shape (B,), at x_hat_i = eps_i real_i + (1 - eps_i) fake_i.

    eps (B,) ~ U(0, 1); pass it to make the draw reproducible (a trainer draws it with its batch), else it
    comes from torch's global generator. Pairs share their condition, so the gradient is taken with
    respect to x only and ``cond`` goes in unchanged. create_graph=True keeps the norms differentiable
    in the critic's weights, so that a penalty built on them trains the critic.
    """
    if eps is None:
        eps = torch.rand(real.shape[0])
    eps = eps.to(device=real.device, dtype=real.dtype).view((-1,) + (1,) * (real.dim() - 1))
    x_hat = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat, cond).sum(), x_hat, create_graph=True)
    return grad.flatten(1).norm(dim=1)


def generator_loss(name: str, critic_fake: Tensor) -> Tensor:
    """Loss of one generator step from ``critic_fake = critic(G(z), cond)``, shape (B,)."""
    _check_name(name)
    if name == "minimax":
        # Minimise E log(1 - D(G(z))): its gradient vanishes when D confidently rejects the fakes.
        return F.logsigmoid(-critic_fake).mean()
    if name == "non-saturating":
        # Maximise E log D(G(z)) instead: same fixed point, strong gradient exactly where minimax has none.
        return -F.logsigmoid(critic_fake).mean()
    return -critic_fake.mean()


def clip_weights(critic: torch.nn.Module, clip: float = 0.01) -> None:
    """Clamp every critic parameter to [-clip, clip] in place ("wgan-clip", Arjovsky et al., Algorithm 1):
    a crude way to keep the critic K-Lipschitz; call it after each critic step."""
    if clip <= 0:
        raise ValueError(f"clip must be positive, got {clip}")
    with torch.no_grad():
        for parameter in critic.parameters():
            parameter.clamp_(-clip, clip)


def _check_name(name: str) -> None:
    if name not in LOSSES:
        raise ValueError(f"unknown GAN loss {name!r}; choose one of: {', '.join(LOSSES)}")
