"""Lagrange multipliers: the loss term and the dual-ascent update."""
import torch

from physgan.gan.multipliers import Multipliers


def test_the_gap_and_term_at_and_off_the_targets():
    target = torch.tensor([[0.1, 0.5], [0.9, 0.0], [0.3, 0.3]])
    m = Multipliers(target, step=0.5, device=torch.device("cpu"))
    m.value = torch.tensor([[1.0, -2.0], [0.5, 0.5], [3.0, 3.0]])
    groups = torch.tensor([2, 0])
    at_target = target[groups][:, None, :].expand(2, 4, 2)
    term, gap = m.term(at_target, groups)
    assert float(gap.abs().max()) == 0
    # sum over quantities of multiplier x group mean, averaged over the groups: (1.8 + (0.1 - 1.0)) / 2
    torch.testing.assert_close(term, torch.tensor(0.45))
    shifted = at_target + torch.tensor([0.2, -0.1])
    _, gap = m.term(shifted, groups)
    torch.testing.assert_close(gap, torch.tensor([[0.2, -0.1], [0.2, -0.1]]))


def test_dual_ascent_adds_step_times_gap_for_every_time_a_group_is_drawn():
    m = Multipliers(torch.zeros(3, 4), step=0.5, device=torch.device("cpu"))
    gap = torch.linspace(-1, 1, 4)
    m.update(torch.tensor([1, 1, 0]), gap.expand(3, 4))
    torch.testing.assert_close(m.value, torch.stack([0.5 * gap, gap, torch.zeros(4)]))
    m.update(torch.tensor([1]), -gap[None])
    torch.testing.assert_close(m.value[1], 0.5 * gap)
    torch.testing.assert_close(m.rms(), float(m.value.pow(2).mean().sqrt()))
