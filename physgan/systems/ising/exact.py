"""Exact reference values for the 2D Ising model on the square lattice.

Conventions (docs/physics.md, "Ising model"): H = -sum_<ij> s_i s_j (J = 1, k_B = 1), K = 1/T,
N = L^2 sites on an L x L torus, every quantity per site; ``L=None`` is the infinite lattice.
Each function takes T as a scalar or an array and returns a value of the same shape.
"""

from functools import lru_cache

import numpy as np


def critical_temperature():
    """T_c = 2 / ln(1 + sqrt 2), where sinh(2 K_c) = 1 (Onsager 1944, Phys. Rev. 65, 117)."""
    return 2.0 / np.log1p(np.sqrt(2.0))


def energy_per_site(T, L=None):
    """Internal energy per site u = -(1/N) d lnZ/dK.

    Infinite lattice: Onsager 1944, Phys. Rev. 65, 117. Finite L x L torus: Kaufman 1949,
    Phys. Rev. 76, 1232, in the form of Ferdinand & Fisher 1969, Phys. Rev. 185, 832.
    """
    T, L = _check_T(T), _check_L(L)
    if L is None:
        K, kk, kprime = _onsager_moduli(T)
        _, kK1 = _elliptic(kprime, kk)
        return _out(-(1.0 / np.tanh(2 * K)) * (1 + (2 / np.pi) * kK1))
    return _out(_finite(T, L)[1])


def specific_heat_per_site(T, L=None):
    """Specific heat per site c = (K^2/N) d^2 lnZ/dK^2 (infinite lattice: +inf at T_c).

    Infinite lattice: Onsager 1944, Phys. Rev. 65, 117, with the factor 2 in front of
    (1 - tanh^2 2K) that a widely printed version drops. Finite L: Kaufman 1949,
    Phys. Rev. 76, 1232 / Ferdinand & Fisher 1969, Phys. Rev. 185, 832.
    """
    T, L = _check_T(T), _check_L(L)
    if L is None:
        from scipy.special import ellipe

        K, kk, kprime = _onsager_moduli(T)
        K1, kK1 = _elliptic(kprime, kk)
        sech2 = 1.0 / np.cosh(2 * K) ** 2  # 1 - tanh^2 2K
        curly = 2 * K1 - 2 * ellipe(1 - kprime**2) - 2 * sech2 * (np.pi / 2 + kK1)
        return _out((2 / np.pi) * (K / np.tanh(2 * K)) ** 2 * curly)
    return _out(_finite(T, L)[2])


def log_partition_function_per_site(T, L=None):
    """ln Z / N.

    Infinite lattice: Onsager 1944, Phys. Rev. 65, 117,
    ln Z/N = ln(2 cosh 2K) + (1/2pi) int_0^pi ln[(1 + sqrt(1 - k^2 sin^2 phi))/2] dphi.
    Finite L: Kaufman 1949, Phys. Rev. 76, 1232 / Ferdinand & Fisher 1969, Phys. Rev. 185, 832.
    """
    T, L = _check_T(T), _check_L(L)
    if L is not None:
        return _out(_finite(T, L)[0])
    from scipy.integrate import quad_vec

    K, kk, kprime = _onsager_moduli(T)

    # The integrand is symmetric about pi/2, where it has a kink at T_c: integrate [0, pi/2]
    # so the kink sits on an endpoint. 1 - k^2 sin^2 = k'^2 + k^2 cos^2 avoids cancellation.
    def integrand(phi):
        return np.log1p(np.sqrt(kprime**2 + (kk * np.cos(phi)) ** 2)) - np.log(2)

    integral, _ = quad_vec(integrand, 0, np.pi / 2, epsabs=1e-14, epsrel=1e-13, norm="max")
    return _out(np.logaddexp(2 * K, -2 * K) + integral / np.pi)


def spontaneous_magnetization(T):
    """Spontaneous magnetization M = (1 - sinh(2K)^-4)^(1/8) below T_c, 0 at and above T_c.

    Yang 1952, Phys. Rev. 85, 808.
    """
    T = _check_T(T)
    s = np.sinh(2 / T)
    # The explicit T < T_c guard keeps M(T_c) = 0 despite rounding in sinh(2 K_c) = 1.
    m = np.clip(1 - s**-4.0, 0, None) ** 0.125
    return _out(np.where(T < critical_temperature(), m, 0.0))


def enumerate_lattice(T, L):
    """Exact per-site observables of the L x L torus (2 <= L <= 4) by summing all 2^(L^2) states.

    Returns a dict of arrays shaped like T: "log_z" (ln Z/N), "energy" (u), "specific_heat" (c),
    "abs_m" (<|m|>), "m2" (<m^2>), "m4" (<m^4>). Brute force over H = -sum_i s_i (s_{i+x} + s_{i+y})
    with periodic rolls, so at L = 2 each bond is doubled: Z = 2 e^{8K} + 12 + 2 e^{-8K}.
    """
    T, L = _check_T(T), _check_L(L)
    if L > 4:
        raise ValueError(f"enumerate_lattice needs 2 <= L <= 4 (2^(L^2) states), got L={L}")
    E, M, log_g = _density_of_states(L)
    N = L * L
    K = 1.0 / T[..., None]
    logw = log_g - K * E  # log Boltzmann weight of each (E, M) level
    log_z = np.logaddexp.reduce(logw, axis=-1)
    p = np.exp(logw - log_z[..., None])  # log-sum-exp: no overflow at low T
    e_mean = (p * E).sum(-1)
    m = M / N
    return {
        "log_z": _out(log_z / N),
        "energy": _out(e_mean / N),
        # Central second moment rather than <E^2> - <E>^2, which cancels at low T.
        "specific_heat": _out(K[..., 0] ** 2 * (p * (E - e_mean[..., None]) ** 2).sum(-1) / N),
        "abs_m": _out((p * np.abs(m)).sum(-1)),
        "m2": _out((p * m**2).sum(-1)),
        "m4": _out((p * m**4).sum(-1)),
    }


# --------------------------------------------------------------------------------------------
# helpers


def _check_T(T):
    T = np.asarray(T, dtype=float)
    if not np.all(np.isfinite(T)) or np.any(T <= 0):
        raise ValueError(f"temperature must be finite and > 0, got {T}")
    return T


def _check_L(L):
    if L is None:
        return None
    if isinstance(L, bool) or not isinstance(L, (int, np.integer)) or L < 2:
        raise ValueError(f"L must be an integer >= 2 or None (infinite lattice), got {L!r}")
    return int(L)


def _out(x):
    """0-d arrays become numpy floats, so a scalar T gives a scalar result."""
    return np.asarray(x, dtype=float)[()]


def _onsager_moduli(T):
    """K, the modulus k = 2 sinh 2K / cosh^2 2K and the signed k'' = 2 tanh^2 2K - 1.

    |k''| is the complementary modulus sqrt(1 - k^2) = |s^2 - 1| / (1 + s^2); computing it this way
    keeps full precision next to T_c, where 1 - k^2 would cancel.
    """
    K = 1.0 / T
    s = np.sinh(2 * K)
    return K, 2 * s / (1 + s**2), (s - 1) * (s + 1) / (1 + s**2)


def _elliptic(kprime, kk):
    """K1(k) and k'' K1(k); the product -> 0 at T_c although K1 diverges there."""
    from scipy.special import ellipkm1

    with np.errstate(divide="ignore", invalid="ignore"):
        K1 = ellipkm1(kprime**2)  # ellipkm1(p) = K(m = 1 - p): accurate as k -> 1
        return K1, np.where(kprime == 0, 0.0, kprime * K1)


@lru_cache(maxsize=None)
def _density_of_states(L):
    """Distinct (E, M) levels of the L x L torus and the log of their multiplicities."""
    N = L * L
    states = np.arange(2**N, dtype=np.int64)
    spins = (((states[:, None] >> np.arange(N)) & 1) * 2 - 1).reshape(-1, L, L).astype(np.int8)
    E = -(spins * (np.roll(spins, 1, axis=1) + np.roll(spins, 1, axis=2))).sum(axis=(1, 2))
    levels, counts = np.unique(np.stack([E, spins.sum(axis=(1, 2))]), axis=1, return_counts=True)
    return levels[0].astype(float), levels[1].astype(float), np.log(counts)


def _finite(T, L):
    """(ln Z/N, u, c) on the L x L torus; L = 2 is enumerated because Kaufman needs L >= 3."""
    if L == 2:
        r = enumerate_lattice(T, 2)
        return r["log_z"], r["energy"], r["specific_heat"]
    K = 1.0 / T.ravel()
    N = L * L
    log_s, d1, d2 = _kaufman_log_z(K[:, None], L)
    # Prefactor (1/2)(2 sinh 2K)^(N/2); ln(2 sinh 2K) = 2K + ln(1 - e^{-4K}) cannot overflow.
    log_z = log_s - np.log(2) + N / 2 * (2 * K + np.log(-np.expm1(-4 * K)))
    d1 = d1 + N / np.tanh(2 * K)
    d2 = d2 - 2 * N / np.sinh(2 * K) ** 2
    return tuple(y.reshape(T.shape) for y in (log_z / N, -d1 / N, K**2 * d2 / N))


def _kaufman_log_z(K, L):
    """ln(Z1 + Z2 + Z3 + Z4) and its first two K-derivatives (Ferdinand & Fisher 1969).

    Each Z_i is carried as e^ell * (v, v', v'') times a product whose log-derivatives (a, b) are
    known, so nothing overflows at L = 512 and the zero of Z4 at K_c (g_0 = 0) stays exact.
    """
    g, g1, g2 = _gamma(K, L)
    x, x1, x2 = (L / 2 * y for y in (g, g1, g2))  # arguments L g_l / 2 of cosh / sinh
    odd, even = slice(1, None, 2), slice(2, None, 2)
    terms = [
        _positive_term(*_log_prod(x[:, odd], x1[:, odd], x2[:, odd], cosh=True)),  # Z1
        _positive_term(*_log_prod(x[:, odd], x1[:, odd], x2[:, odd], cosh=False)),  # Z2
        _positive_term(*_log_prod(x[:, ::2], x1[:, ::2], x2[:, ::2], cosh=True)),  # Z3
        _z4_term(x[:, 0], x1[:, 0], x2[:, 0], *_log_prod(x[:, even], x1[:, even], x2[:, even], False)),
    ]
    ell, v, dv, ddv, a, b = (np.stack(t) for t in zip(*terms))
    top = ell.max(axis=0)
    w = np.exp(ell - top)  # signed log-sum-exp: w * v carries the sign of each Z_i
    S = (w * v).sum(0)
    mu = (w * (dv + v * a)).sum(0) / S  # d ln S / dK
    # d^2 ln S / dK^2 = S''/S - mu^2, expanded around mu so that the O(N^2) parts never cancel.
    var = (w * (ddv + 2 * dv * (a - mu) + v * ((a - mu) ** 2 + b))).sum(0) / S
    return top + np.log(S), mu, var


def _gamma(K, L):
    """g_l for l = 0 .. 2L-1 and their first two K-derivatives, shape (len(K), 2L).

    cosh g_l = cosh 2K coth 2K - cos(pi l / L) (l >= 1); g_0 = 2K + ln tanh K keeps the sign
    that the arccosh branch loses (g_0 < 0 above T_c).
    """
    s, c = np.sinh(2 * K), np.cosh(2 * K)
    C1 = 2 * c * (1 - 1 / s**2)  # d/dK of cosh 2K coth 2K
    C2 = 4 * s - 4 / s + 8 / (np.tanh(2 * K) ** 2 * s)
    theta = np.pi * np.arange(1, 2 * L) / L
    # cosh g_l - 1 = (s - 1)^2 / s + 2 sin^2(theta/2), free of cancellation near T_c and small theta.
    cm1 = (s - 1) ** 2 / s + 2 * np.sin(theta / 2) ** 2
    sh = np.sqrt(cm1 * (cm1 + 2))  # sinh g_l > 0 for l >= 1
    d1 = C1 / sh  # from cosh g = C(K) - cos theta: g' sinh g = C', g'' sinh g + g'^2 cosh g = C''
    gl = (np.log1p(cm1 + sh), d1, (C2 - (1 + cm1) * d1**2) / sh)
    g0 = (2 * K + np.log(np.tanh(K)), 2 + 2 / s, -4 * c / s**2)
    return tuple(np.concatenate([z0, zl], axis=1) for z0, zl in zip(g0, gl))


def _log_prod(x, x1, x2, cosh):
    """ln prod_r 2cosh(x_r) (or 2sinh, x_r > 0) and its K-derivatives a = (ln P)', b = a'.

    With q = e^{-2|x|}: ln 2cosh|x| = |x| + ln(1 + q), tanh = (1 - q)/(1 + q), sech^2 = 4q/(1 + q)^2,
    and likewise for sinh with 1 + q and 1 - q swapped, so large |x| never overflows.
    """
    ax = np.abs(x)
    q = np.exp(-2 * ax)
    p, n = (1 + q, -np.expm1(-2 * ax)) if cosh else (-np.expm1(-2 * ax), 1 + q)
    f1 = np.sign(x) * n / p  # tanh x or coth x
    f2 = (1 if cosh else -1) * 4 * q / p**2  # d f1/dx: sech^2 x or -csch^2 x
    return (ax + np.log(p)).sum(-1), (f1 * x1).sum(-1), (f2 * x1**2 + f1 * x2).sum(-1)


def _positive_term(ell, a, b):
    one = np.ones_like(ell)
    return ell, one, 0 * one, 0 * one, a, b


def _z4_term(x0, x01, x02, ell, a, b):
    """Z4 = 2 sinh(x0) * P, with 2 sinh(x0) scaled by e^{-|x0|}: value and derivatives stay finite
    and exact when x0 = 0 at K_c, where Z4 = 0 but Z4' = 2 x0' P does not vanish."""
    q = np.exp(-2 * np.abs(x0))
    v = np.sign(x0) * -np.expm1(-2 * np.abs(x0))  # 2 sinh(x0) e^{-|x0|}
    dv = (1 + q) * x01  # 2 cosh(x0) x0' e^{-|x0|}
    ddv = v * x01**2 + (1 + q) * x02
    return ell + np.abs(x0), v, dv, ddv, a, b
