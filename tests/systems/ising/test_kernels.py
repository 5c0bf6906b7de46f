"""Monte Carlo kernels: reproducibility, chain independence, and sampling against exact enumeration."""
import numpy as np
import pytest
import torch

from physgan.errors import UserError
from physgan.systems.ising import kernels
from physgan.systems.ising.kernels import Chains, compiled_kernels_available

TC = 2.269185314213022
needs_c = pytest.mark.skipif(not compiled_kernels_available(), reason="compiled Ising kernel not built")
BACKENDS = [pytest.param("c", marks=needs_c), "torch"]


def seed(n):
    return np.random.SeedSequence(n)


def evolve(chains, beta=1 / TC):
    if chains.L % 2 == 0:
        chains.metropolis(beta, 5)
    if compiled_kernels_available():
        chains.wolff(beta, 3)
    return chains.spins


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_same_spins_and_different_seed_differs(backend):
    a, b, c = (evolve(Chains.start(8, 8, seed(s), backend=backend)) for s in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("backend", BACKENDS)
def test_identically_started_chains_diverge_and_stay_pm1_int8(backend):
    spins = evolve(Chains.start(2, 16, seed(3), signs=np.array([1, 1]), backend=backend), beta=1 / 3)
    assert not np.array_equal(spins[0], spins[1])
    assert spins.dtype == np.int8 and spins.shape == (2, 16, 16)
    assert set(np.unique(spins)) <= {-1, 1}


@needs_c
def test_a_chain_does_not_depend_on_the_other_chains():
    """Chain 0 alone and chain 0 among 40 (two SIMD blocks, both threads) follow the same path."""
    alone, crowd = (evolve(Chains.start(n, 6, seed(4))) for n in (1, 40))
    np.testing.assert_array_equal(alone[0], crowd[0])


@needs_c
def test_wolff_on_torch_chains_matches_the_c_backend():
    c, t = (Chains.start(4, 5, seed(5), signs=np.array([1, -1, 1, -1]), backend=b) for b in ("c", "torch"))
    np.testing.assert_array_equal(c.wolff(0.4, 7), t.wolff(0.4, 7))
    np.testing.assert_array_equal(c.spins, t.spins)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cold_start_and_global_flip(backend):
    chains = Chains.start(3, 4, seed(6), signs=np.array([1, -1, 1]), backend=backend)
    np.testing.assert_array_equal(chains.spins.sum(axis=(1, 2)), [16, -16, 16])
    before = evolve(chains)
    chains.flip(np.array([True, False, True]))
    np.testing.assert_array_equal(chains.spins, before * np.array([-1, 1, -1], np.int8)[:, None, None])
    with pytest.raises(ValueError, match="mask"):
        chains.flip(np.array([True]))


@needs_c
@pytest.mark.parametrize("L", [2, 5, 8])
def test_wolff_cluster_is_the_whole_lattice_at_very_low_temperature(L):
    chains = Chains.start(5, L, seed(7), signs=np.array([1, -1, 1, -1, 1]))
    np.testing.assert_array_equal(chains.wolff(20.0, 3), 3 * L * L)
    assert np.all(chains.spins == -np.array([1, -1, 1, -1, 1])[:, None, None])


@needs_c
@pytest.mark.parametrize("L, T", [(4, TC), (3, 3.0)])
def test_wolff_mean_cluster_size_is_n_times_mean_m_squared(L, T):
    """Improved estimator <|C|> = N <m^2> (Wolff, PRL 62, 361 (1989)) against enumeration."""
    n_chains, n_clusters = 4096, 200
    chains = Chains.start(n_chains, L, seed(8))
    chains.wolff(1 / T, 100)
    size = chains.wolff(1 / T, n_clusters) / n_clusters  # per-chain means: independent samples
    pull = (size.mean() - L * L * exact_averages(L, T)["m2"]) / (size.std(ddof=1) / np.sqrt(n_chains))
    assert abs(pull) < 4, f"mean cluster size {size.mean()} is {pull:+.1f} sigma from N <m^2>"


def test_invalid_arguments_are_rejected():
    for L in (2, 5):
        with pytest.raises(ValueError, match="even L >= 4"):
            Chains.start(2, L, seed(9)).metropolis(0.4, 1)
    with pytest.raises(ValueError, match="L must"):
        Chains.start(2, 1, seed(9))
    with pytest.raises(ValueError, match="n_chains"):
        Chains.start(0, 4, seed(9))
    chains = Chains.start(2, 4, seed(9))
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="beta"):
            chains.metropolis(bad, 1)
    with pytest.raises(ValueError, match="n_sweeps"):
        chains.metropolis(0.4, 0)
    with pytest.raises(ValueError, match="n_clusters"):
        chains.wolff(0.4, 0)


def test_without_the_compiled_kernel_cpu_falls_back_to_torch_and_wolff_says_why(monkeypatch):
    monkeypatch.setattr(kernels, "_library", lambda: None)
    chains = Chains.start(2, 4, seed(10))
    assert chains.backend == "torch"
    with pytest.raises(UserError, match="reinstall physgan"):
        chains.wolff(0.4, 1)


# --- sampling against exact enumeration of all 2^(L*L) states ----------------------------------


def exact_averages(L, T):
    """<e>, <|m|>, <m^2> by brute force; periodic rolls double every bond at L = 2, as Wolff does."""
    codes = np.arange(2 ** (L * L))[:, None] >> np.arange(L * L) & 1
    s = (2 * codes - 1).reshape(-1, L, L)
    e = -(s * (np.roll(s, 1, 1) + np.roll(s, 1, 2))).sum(axis=(1, 2)) / (L * L)
    m = s.mean(axis=(1, 2))
    w = np.exp(-(e - e.min()) * L * L / T)
    return {name: (w * x).sum() / w.sum() for name, x in (("e", e), ("|m|", np.abs(m)), ("m2", m * m))}


def sample_e_abs_m(chains, update, n_samples):
    """Per-chain time averages; their spread across independent chains gives an honest error."""
    L = chains.L
    e_sum, m_sum = np.zeros(chains.n_chains), np.zeros(chains.n_chains)
    for _ in range(n_samples):
        update()
        s = chains.spins.astype(np.int64)
        e_sum -= (s * (np.roll(s, 1, 1) + np.roll(s, 1, 2))).sum(axis=(1, 2)) / (L * L)
        m_sum += np.abs(s.mean(axis=(1, 2)))
    return e_sum / n_samples, m_sum / n_samples


def assert_samples_exact(chains, update, T, n_samples, label):
    """Burn in for 50 updates, then compare <e> and <|m|> with enumeration within 4 standard errors."""
    sample_e_abs_m(chains, update, 50)
    exact = exact_averages(chains.L, T)
    for name, estimate in zip(("e", "|m|"), sample_e_abs_m(chains, update, n_samples)):
        pull = (estimate.mean() - exact[name]) / (estimate.std(ddof=1) / np.sqrt(len(estimate)))
        assert abs(pull) < 4, f"{label} L={chains.L} T={T}: <{name}> = {estimate.mean()} vs {exact[name]} ({pull:+.1f} sigma)"


@pytest.mark.parametrize(
    "algorithm, backend, L, T, n_chains, n_samples",
    [
        pytest.param("metropolis", "c", 4, 2.0, 4096, 400, marks=needs_c),
        pytest.param("metropolis", "c", 4, 3.0, 4096, 400, marks=needs_c),

        ("metropolis", "torch", 4, TC, 2048, 200),
        pytest.param("wolff", "c", 4, TC, 4096, 400, marks=needs_c),
        pytest.param("wolff", "c", 3, 2.0, 4096, 200, marks=needs_c),
        pytest.param("wolff", "c", 2, TC, 4096, 200, marks=needs_c),
    ],
)
def test_sampling_matches_exact_enumeration(algorithm, backend, L, T, n_chains, n_samples):
    signs = np.random.default_rng(L).choice(np.array([-1, 1], np.int8), n_chains)
    chains = Chains.start(n_chains, L, seed(11), signs=signs, backend=backend)
    # Thinning: 2 sweeps or 2 clusters between samples.
    update = getattr(chains, algorithm)
    assert_samples_exact(chains, lambda: update(1 / T, 2), T, n_samples, f"{algorithm}/{backend}")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_backend_samples_the_exact_distribution():
    chains = Chains.start(4096, 4, seed(12), device="cuda")
    assert chains.backend == "torch"
    assert_samples_exact(chains, lambda: chains.metropolis(1 / TC, 2), TC, 200, "metropolis/cuda")
    chains.wolff(1 / TC, 2)  # runs on host copies
    assert set(np.unique(chains.spins)) <= {-1, 1}
