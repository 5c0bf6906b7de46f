"""Statistics shared by Monte Carlo and validation: jackknife errors and autocorrelation times."""
from __future__ import annotations

from typing import Callable

import numpy as np


def jackknife(estimator: Callable[..., float], *samples: np.ndarray, n_blocks: int = 32) -> tuple[float, float]:
    """Estimate and jackknife standard error of a (possibly nonlinear) function of sample means.

    `estimator(*samples)` maps 1D arrays of equal length to a float. The samples are cut into
    `n_blocks` contiguous blocks; each leave-one-block-out estimate feeds the usual jackknife
    variance (n-1)/n * sum (theta_i - theta_bar)^2. Efron & Stein, Ann. Stat. 9, 586 (1981).
    """
    n = len(samples[0])
    value = float(estimator(*samples))
    n_blocks = min(n_blocks, n)
    if n_blocks < 2:
        return value, float("nan")
    edges = np.linspace(0, n, n_blocks + 1).astype(int)
    keep = np.ones(n, dtype=bool)
    partial = np.empty(n_blocks)
    for i in range(n_blocks):
        keep[edges[i]:edges[i + 1]] = False
        partial[i] = estimator(*(s[keep] for s in samples))
        keep[edges[i]:edges[i + 1]] = True
    error = np.sqrt((n_blocks - 1) / n_blocks * np.sum((partial - partial.mean()) ** 2))
    return value, float(error)


def mean_and_error(x: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of independent draws."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        return float(x.mean()) if len(x) else float("nan"), float("nan")
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(len(x)))


def autocorrelation(series: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation rho(t) of series with shape (n_time, n_chains), averaged over chains.

    Every chain samples the same distribution, so fluctuations are taken about the global mean.
    Computed with a zero-padded FFT (O(n log n) per chain).
    """
    x = np.asarray(series, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    n = x.shape[0]
    x = x - x.mean()
    f = np.fft.rfft(x, n=2 * n, axis=0)
    acov = np.fft.irfft(f * np.conj(f), axis=0)[:n].mean(axis=1) / np.arange(n, 0, -1)
    if acov[0] <= 0:  # a constant series (frozen chain, T -> 0): no correlation to measure
        rho = np.zeros(n)
        rho[0] = 1.0
        return rho
    return acov / acov[0]


def integrated_autocorrelation_time(series: np.ndarray, window_factor: float = 6.0,
                                    min_length: float = 50.0) -> tuple[float, float, bool]:
    """Sokal's self-consistent window estimate of tau_int = 1/2 + sum_{t>=1} rho(t).

    The window W is the smallest with W >= window_factor * tau_int(W) (Sokal, "Monte Carlo Methods in
    Statistical Mechanics", Cargese lectures 1996). Returns (tau_int, its statistical error
    tau * sqrt(2(2W+1)/n) (Madras & Sokal 1988), and whether the estimate can be trusted: the window
    closed within the series and the series is at least `min_length` tau_int long).
    """
    rho = autocorrelation(series)
    n_time = len(rho)
    n_chains = 1 if np.ndim(series) == 1 else np.shape(series)[1]
    taus = 0.5 + np.cumsum(rho[1:])
    windows = np.arange(1, n_time)
    ok = windows >= window_factor * taus
    closed = bool(ok.any())
    w = int(windows[np.argmax(ok)]) if closed else n_time - 1
    tau = max(float(taus[w - 1]) if w >= 1 else 0.5, 0.5)
    error = tau * np.sqrt(2.0 * (2 * w + 1) / (n_time * n_chains))
    return tau, float(error), closed and n_time >= min_length * tau
