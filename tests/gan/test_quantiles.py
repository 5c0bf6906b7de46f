"""The summary model of hierarchical generation: interpolated quantile functions, and the conditioning."""
import pytest
import torch

from physgan.gan.conditioning import Conditioning, SummaryAxes
from physgan.errors import UserError
from physgan.gan.quantiles import InterpolatedQuantiles


def gaussian_training_set(n=100_000):
    """N(0, 1) at condition 0 and N(4, 3^2) at condition 1."""
    g = torch.Generator().manual_seed(1)
    cond = torch.cat([torch.zeros(n), torch.ones(n)])[:, None]
    values = torch.cat([torch.randn(n, generator=g), 4 + 3 * torch.randn(n, generator=g)])
    return cond, values


def draw(model, c, n=200_000, seed=2):
    u = torch.rand(n, model.rest.shape[-1] + 1, generator=torch.Generator().manual_seed(seed))
    return model.sample(torch.full((n, 1), float(c)), u)[:, 0]


def test_between_conditions_it_follows_the_wasserstein_geodesic():
    # Between two Gaussians the W2 geodesic is Gaussian with mean and standard deviation interpolated
    # linearly (McCann): at t = 1/4, N(1, 1.5^2). A mixture would have mean 1 but sd sqrt(4.75) = 2.18.
    model = InterpolatedQuantiles.fit(*gaussian_training_set())
    for c, mean, sd in ((0.0, 0.0, 1.0), (0.25, 1.0, 1.5), (0.5, 2.0, 2.0), (1.0, 4.0, 3.0)):
        x = draw(model, c)
        assert abs(x.mean() - mean) < 0.02, c
        assert abs(x.std() - sd) < 0.03 * sd, c  # 128 levels: the tails beyond 1/256 are flat


def test_beyond_the_training_range_it_keeps_the_nearest_distribution():
    model = InterpolatedQuantiles.fit(*gaussian_training_set(10_000))
    torch.testing.assert_close(draw(model, -3.0), draw(model, 0.0))
    torch.testing.assert_close(draw(model, 7.0), draw(model, 1.0))


def test_quantile_levels_reproduce_the_training_quantiles():
    cond, values = gaussian_training_set(10_000)
    model = InterpolatedQuantiles.fit(cond, values, levels=8)
    u = (torch.arange(8) + 0.5) / 8
    expected = torch.quantile(values[10_000:].double(), u.double()).float()
    torch.testing.assert_close(model.sample(torch.ones(8, 1), u[:, None])[:, 0], expected)


def test_a_second_summary_keeps_its_correlation_with_the_first():
    # (x, y) standard normal with correlation rho at condition 0 and -rho at condition 1. Drawn through
    # the rank bins of x, the pairs keep the correlation (16 bins: rho slightly diluted within a bin),
    # and y's marginal stays N(0, 1) at both ends.
    g = torch.Generator().manual_seed(4)
    n, rho = 50_000, 0.8
    x = torch.randn(2 * n, generator=g)
    sign = torch.cat([torch.ones(n), -torch.ones(n)])
    y = sign * rho * x + (1 - rho ** 2) ** 0.5 * torch.randn(2 * n, generator=g)
    model = InterpolatedQuantiles.fit((sign < 0).float()[:, None], torch.stack([x, y], dim=1))
    u = torch.rand(n, 2, generator=torch.Generator().manual_seed(5))
    for c, expected in ((0.0, rho), (1.0, -rho)):
        drawn = model.sample(torch.full((n, 1), c), u)
        assert abs(torch.corrcoef(drawn.T)[0, 1] - expected) < 0.02
        assert abs(drawn[:, 1].std() - 1) < 0.02 and abs(drawn[:, 1].mean()) < 0.02


def test_a_second_summary_needs_a_sample_in_every_rank_bin():
    values = torch.randn(40, 2, generator=torch.Generator().manual_seed(6))
    cond = torch.cat([torch.zeros(30), torch.ones(10)])[:, None]  # the second condition: 10 < 16 samples
    with pytest.raises(UserError, match="at least 16 training samples .* the smallest group has 10"):
        InterpolatedQuantiles.fit(cond, values)
    InterpolatedQuantiles.fit(cond, values, bins=8)
    InterpolatedQuantiles.fit(cond, values[:, :1])  # one summary: no rank bins, any group size


def test_conditioning_appends_the_normalised_summary_and_survives_a_checkpoint(tmp_path):
    cond, values = gaussian_training_set(1000)
    conditioning = Conditioning.fit(2 + cond, values.abs()[:, None], ["abs_x"])
    assert conditioning.n_inputs == 2
    extremes = torch.stack([values.abs().min(), values.abs().max()])[:, None]
    got = conditioning.real(torch.tensor([[2.0], [3.0]]), extremes)
    torch.testing.assert_close(got, torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))
    torch.save(conditioning.state(), tmp_path / "c.pt")
    loaded = Conditioning.from_state(torch.load(tmp_path / "c.pt", weights_only=True))
    c = torch.full((64, 1), 2.5)
    drawn = [x.draw_summaries(c, torch.Generator().manual_seed(3)) for x in (conditioning, loaded)]
    torch.testing.assert_close(drawn[0], drawn[1])
    assert drawn[0].unique().numel() > 32  # a summary drawn per sample
    assert conditioning.named(drawn[0])["abs_x"] is not None and conditioning.real(c, drawn[0]).shape == (64, 2)
    plain = Conditioning.fit(cond)
    assert plain.n_inputs == 1 and plain.draw_summaries(c, torch.Generator()) is None and plain.named(None) == {}


def test_anchors_are_the_training_means_interpolated_between_conditions(tmp_path):
    cond, values = gaussian_training_set(1000)
    means = torch.stack([values[:1000].mean(), values[1000:].mean()])  # about 0 and 4
    conditioning = Conditioning.fit(2 + cond, anchor_values=values[:, None], anchor_features=["x"])
    assert conditioning.n_inputs == 2
    at = lambda c: conditioning.real(torch.tensor([[c]]))[0]
    # [normalised condition, normalised mean]: the ends of the table map onto -1 and +1
    torch.testing.assert_close(at(2.0), torch.tensor([-1.0, -1.0]))
    torch.testing.assert_close(at(3.0), torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(at(2.25), torch.tensor([-0.5, -0.5]))  # linear in between
    torch.testing.assert_close(at(5.0)[1], torch.tensor(1.0))  # flat beyond the training range
    torch.save(conditioning.state(), tmp_path / "c.pt")
    loaded = Conditioning.from_state(torch.load(tmp_path / "c.pt", weights_only=True))
    torch.testing.assert_close(loaded.anchors["means"][:, 0], means)
    c = torch.linspace(1.5, 3.5, 9)[:, None]
    torch.testing.assert_close(loaded.real(c), conditioning.real(c))


def test_each_category_has_its_own_distribution_interpolated_along_a_continuous_condition():
    # Category 0: N(x, 1), category 1: N(100 - x, 2^2), x continuous in [0, 10): no value repeats, so
    # the nodes are bins of width 2 (as the jets' 10 GeV groups), each at its samples' mean x. Between
    # node centres the mean follows x linearly; the categories never mix.
    g = torch.Generator().manual_seed(6)
    n = 200_000
    category = (torch.arange(n) % 2)
    x = 10 * torch.rand(n, generator=g)
    values = torch.where(category == 0, x + torch.randn(n, generator=g), 100 - x + 2 * torch.randn(n, generator=g))
    nodes = 2 * category + 10 * (x // 2).long()  # distinct per category and bin
    model = InterpolatedQuantiles.fit(x[:, None], values, category=category, nodes=nodes)
    assert model.conditions.shape == (10,) and model.category.tolist() == [0] * 5 + [1] * 5
    u = torch.rand(n, 1, generator=torch.Generator().manual_seed(7))
    for c, at, mean, sd in ((0, 4.0, 4.0, 1.0), (1, 4.0, 96.0, 2.0), (0, 6.5, 6.5, 1.0), (1, 0.0, 99.0, 2.0)):
        drawn = model.sample(torch.full((n, 1), at), u, torch.full((n,), c))[:, 0]
        assert abs(drawn.mean() - mean) < 0.03, (c, at)  # node at 1.0 (mean x of [0, 2)): flat below it
        # a node pools its bin: the spread gains the bin's own spread of means, 2^2 / 12
        assert abs(drawn.std() - (sd ** 2 + 4 / 12) ** 0.5) < 0.02 * sd, (c, at)
    with pytest.raises(UserError, match="no training samples of category 2"):
        model.sample(torch.zeros(1, 1), u[:1], torch.tensor([2]))
    with pytest.raises(ValueError, match="mixes categories"):
        InterpolatedQuantiles.fit(x[:, None], values, category=category, nodes=torch.zeros(n, dtype=torch.int64))


def test_conditioning_draws_summaries_per_category_and_keeps_the_axes_in_a_checkpoint(tmp_path):
    # jets-like conditions (class, pT): the class's summary distribution, whichever its pT
    g = torch.Generator().manual_seed(8)
    n = 4000
    signal = (torch.arange(n) % 2).float()
    pt = 250 + 50 * torch.rand(n, generator=g)
    mass = torch.where(signal > 0, 80 + torch.randn(n, generator=g), 30 + 10 * torch.rand(n, generator=g))
    cond = torch.stack([signal, pt], 1)
    groups = 2 * (pt // 10).long() + signal.long()
    conditioning = Conditioning.fit(cond, mass[:, None], ["mass"], axes=SummaryAxes(position=1, category=0),
                                    groups=groups)
    torch.save(conditioning.state(), tmp_path / "c.pt")
    loaded = Conditioning.from_state(torch.load(tmp_path / "c.pt", weights_only=True))
    request = torch.tensor([[1.0, 262.0], [0.0, 262.0]]).repeat(500, 1)
    drawn = loaded.draw_summaries(request, torch.Generator().manual_seed(9))[:, 0]
    assert 75 < drawn[0::2].min() and drawn[0::2].max() < 85  # W-like: never a QCD mass
    assert 30 <= drawn[1::2].min() and drawn[1::2].max() <= 40
    torch.testing.assert_close(drawn, conditioning.draw_summaries(request, torch.Generator().manual_seed(9))[:, 0])


def test_further_summaries_are_drawn_together_with_the_second():
    """(x, y, z) with y and z correlated 0.8 and both independent of x: drawn, y and z keep their
    correlation (each drawn from its own quantiles they would be independent), and z its N(0, 1) marginal.
    The second summary's quantiles are still torch.quantile's."""
    g = torch.Generator().manual_seed(7)
    n, rho = 50_000, 0.8
    x, y = torch.randn(n, generator=g), torch.randn(n, generator=g)
    z = rho * y + (1 - rho ** 2) ** 0.5 * torch.randn(n, generator=g)
    values = torch.stack([x, y, z], dim=1)
    model = InterpolatedQuantiles.fit(torch.zeros(n, 1), values)
    drawn = model.sample(torch.zeros(n, 1), torch.rand(n, 3, generator=torch.Generator().manual_seed(8)))
    assert abs(torch.corrcoef(drawn[:, 1:].T)[0, 1] - rho) < 0.03
    assert abs(drawn[:, 2].std() - 1) < 0.03 and abs(drawn[:, 2].mean()) < 0.03
    first_bin = values[torch.argsort(x)[: n // 16], 1].double()
    levels = (torch.arange(128, dtype=torch.float64) + 0.5) / 128
    torch.testing.assert_close(model.rest[0, 0, :, 0], torch.quantile(first_bin, levels).float())


def test_spread_is_the_pooled_standard_deviation_of_the_training_values():
    # N(0, 1) and N(4, 3^2), equal counts: the pooled variance is (1 + 9) / 2 + 2^2 = 9 (sd 3); a second
    # summary, 2 x the first, has twice that. 128 quantile levels cut the tails beyond 1/256: within 2 %.
    cond, values = gaussian_training_set(20_000)
    model = InterpolatedQuantiles.fit(cond, torch.stack([values, 2 * values], 1))
    torch.testing.assert_close(model.spread(), torch.tensor([3.0, 6.0]), rtol=0.02, atol=0)
