"""Monte Carlo update kernels for the 2D Ising model, H = -sum_<ij> s_i s_j on an L x L torus.

Two backends run many independent chains at once:

- ``"c"``: the compiled extension ``_kernels.c`` (checkerboard Metropolis vectorised over chains,
  Wolff clusters, OpenMP over chains), called through ctypes. Every chain owns a xoshiro128**
  generator, so a chain's trajectory depends only on its seed, never on the thread count or on
  the other chains.
- ``"torch"``: checkerboard Metropolis with int8 spins on the CPU or a CUDA device, random
  numbers from one ``torch.Generator`` (reproducible on the CPU).

Checkerboard Metropolis needs an even L >= 4. States in which every spin has zero local field
(at L = 2 the stripes; for L divisible by 4 e.g. diagonal ++-- stripes) flip deterministically
and form a closed set that other states never reach, so a chain samples the Boltzmann
distribution restricted to the rest; the missing weight is exponentially small in L^2 (below
1e-4 at L = 4, T = 3) except at L = 2, which is therefore refused.

Wolff always runs in the C kernel on the host: for chains on a CUDA device the spins are copied
to the host, updated there and copied back. Algorithms: Metropolis et al., J. Chem. Phys. 21,
1087 (1953); Wolff, PRL 62, 361 (1989).
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import math

import numpy as np
import torch

_REINSTALL = "reinstall physgan (pip install -e . --no-build-isolation) so that the C kernel builds"


@functools.lru_cache(maxsize=None)
def _library() -> ctypes.CDLL | None:
    """The compiled kernels with their C signatures declared, or None if the extension is missing."""
    try:
        module = importlib.import_module("physgan.systems.ising._kernels")
    except ImportError:
        return None
    lib = ctypes.CDLL(module.__file__)
    spins = np.ctypeslib.ndpointer(np.int8, ndim=3, flags="C_CONTIGUOUS,WRITEABLE")
    rng = np.ctypeslib.ndpointer(np.uint64, ndim=2, flags="C_CONTIGUOUS,WRITEABLE")
    flipped = np.ctypeslib.ndpointer(np.int64, ndim=1, flags="C_CONTIGUOUS,WRITEABLE")
    i64, f64 = ctypes.c_int64, ctypes.c_double
    lib.ising_metropolis.argtypes = [spins, i64, i64, rng, f64, i64]
    lib.ising_wolff.argtypes = [spins, i64, i64, rng, f64, i64, flipped]
    lib.ising_metropolis.restype = lib.ising_wolff.restype = ctypes.c_int
    return lib


def compiled_kernels_available() -> bool:
    """Whether the compiled C kernels were built and load."""
    return _library() is not None


def _check_run(beta: float, n: int, what: str) -> tuple[float, int]:
    """beta and a count as the plain float and int that ctypes accepts, after checking them."""
    if not (math.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be a positive finite number, got {beta}")
    if int(n) != n or n < 1:
        raise ValueError(f"{what} must be a positive integer, got {n}")
    return float(beta), int(n)


def _check_status(status: int) -> None:
    if status != 0:
        raise MemoryError("the Ising kernel could not allocate its work space")


class Chains:
    """n independent L x L chains plus their random streams."""

    def __init__(self, spins, rng_state: np.ndarray, generator: torch.Generator | None, backend: str):
        # Use Chains.start(); spins is a numpy array ("c") or a torch tensor ("torch").
        self._spins = spins
        self._rng = rng_state  # per-chain xoshiro128** states for the C kernels, uint64 (n, 2)
        self._generator = generator
        self.backend = backend

    @classmethod
    def start(
        cls,
        n_chains: int,
        L: int,
        seed: np.random.SeedSequence,
        *,
        signs: np.ndarray | None = None,
        device: str = "cpu",
        backend: str | None = None,
    ) -> Chains:
        """Cold start: chain i is all signs[i] (+1 or -1); signs=None means all +1.

        device "cpu" uses the C kernel when it is built, else torch; a CUDA device uses torch.
        backend ("c" or "torch") overrides that choice (the C backend needs device "cpu").
        The same seed gives the same chains; every chain gets its own random stream.
        """
        if int(n_chains) != n_chains or n_chains < 1:
            raise ValueError(f"n_chains must be a positive integer, got {n_chains}")
        if int(L) != L or L < 2 or L * L >= 2**31:
            raise ValueError(f"L must be an integer with 2 <= L and L*L < 2^31, got {L}")
        n_chains, L = int(n_chains), int(L)
        signs = np.ones(n_chains, np.int8) if signs is None else np.asarray(signs)
        if signs.shape != (n_chains,) or not np.all(np.abs(signs) == 1):
            raise ValueError(f"signs must be n_chains = {n_chains} values of +1 or -1")
        spins = np.repeat(signs.astype(np.int8), L * L).reshape(n_chains, L, L)
        return cls.from_spins(spins, seed, device=device, backend=backend)

    @classmethod
    def from_spins(cls, spins: np.ndarray, seed: np.random.SeedSequence, *, device: str = "cpu",
                   backend: str | None = None) -> Chains:
        """Chains that start from the given lattices, int8 (n_chains, L, L) of +-1 (copied), with streams
        from seed (backend and device as in start)."""
        device = torch.device(device)
        if backend is None:
            backend = "c" if device.type == "cpu" and compiled_kernels_available() else "torch"
        if backend not in ("c", "torch"):
            raise ValueError(f'backend must be "c" or "torch", got {backend!r}')
        if backend == "c" and (device.type != "cpu" or not compiled_kernels_available()):
            raise RuntimeError(f"the C backend runs on the CPU only and needs the compiled kernel: {_REINSTALL}")
        spins = np.ascontiguousarray(spins, dtype=np.int8).copy()
        n_chains = spins.shape[0]
        # Word 0 seeds torch; chain i gets words 2i+1, 2i+2, the same whatever n_chains is.
        words = seed.generate_state(2 * n_chains + 1, np.uint64)
        rng_state = words[1:].reshape(n_chains, 2).copy()
        rng_state[(rng_state == 0).all(axis=1), 0] = 1  # xoshiro's one forbidden state
        if backend == "c":
            return cls(spins, rng_state, None, backend)
        generator = torch.Generator(device=device).manual_seed(int(words[0]))
        return cls(torch.from_numpy(spins).to(device), rng_state, generator, backend)

    @property
    def n_chains(self) -> int:
        return self._spins.shape[0]

    @property
    def L(self) -> int:
        return self._spins.shape[1]

    @property
    def spins(self) -> np.ndarray:
        """A host copy of the spins, int8 (n_chains, L, L)."""
        if self.backend == "c":
            return self._spins.copy()
        return self._spins.to("cpu", copy=True).numpy()

    def metropolis(self, beta: float, n_sweeps: int) -> None:
        """n_sweeps checkerboard sweeps (one update attempt per site each) at inverse temperature beta."""
        beta, n_sweeps = _check_run(beta, n_sweeps, "n_sweeps")
        if self.L % 2 or self.L < 4:
            # At L = 2 every site of a stripe state has zero field, so the sweep just cycles through
            # the stripe states: they are never entered or left and the chain is not ergodic.
            raise ValueError(f"checkerboard Metropolis needs an even L >= 4, got L = {self.L}; use wolff()")
        if self.backend == "c":
            _check_status(_library().ising_metropolis(self._spins, self.n_chains, self.L, self._rng, beta, n_sweeps))
        else:
            _torch_metropolis(self._spins, beta, n_sweeps, self._generator)

    def wolff(self, beta: float, n_clusters: int) -> np.ndarray:
        """n_clusters Wolff cluster flips per chain; returns the spins flipped per chain (int64).

        Runs in the C kernel on the host (torch chains are copied there and back)."""
        beta, n_clusters = _check_run(beta, n_clusters, "n_clusters")
        lib = _library()
        if lib is None:  # an installation the user can repair: one line from the command line, no traceback
            from physgan.errors import UserError

            raise UserError(f"Wolff updates need the compiled Ising kernel: {_REINSTALL}")
        host = self._spins if self.backend == "c" else self.spins
        flipped = np.zeros(self.n_chains, np.int64)
        _check_status(lib.ising_wolff(host, self.n_chains, self.L, self._rng, beta, n_clusters, flipped))
        if self.backend == "torch":
            self._spins.copy_(torch.from_numpy(host))
        return flipped

    def flip(self, mask: np.ndarray) -> None:
        """Flips every spin of the chains where mask is True (an exact Z2 symmetry move)."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (self.n_chains,):
            raise ValueError(f"mask must have shape ({self.n_chains},), got {mask.shape}")
        if self.backend == "torch":
            mask = torch.from_numpy(mask).to(self._spins.device)
        self._spins[mask] *= -1


def _torch_metropolis(spins: torch.Tensor, beta: float, n_sweeps: int, generator: torch.Generator) -> None:
    """Checkerboard Metropolis on int8 spins (n, L, L) in place; both colours once per sweep."""
    L, device = spins.shape[1], spins.device
    p4, p8 = math.exp(-4 * beta), math.exp(-8 * beta)  # acceptance for dE = 2 s h with s h = 2, 4
    xy = torch.arange(L, device=device)
    colours = [((xy[:, None] + xy[None, :]) % 2 == c).to(torch.int8) for c in (0, 1)]
    for _ in range(n_sweeps):
        # One float64 uniform per site and sweep (exact to 2^-53); each colour uses its own sites'.
        u = torch.rand(spins.shape, generator=generator, dtype=torch.float64, device=device)
        below4, below8 = u < p4, u < p8
        for colour in colours:
            sh = spins * (spins.roll(1, 1) + spins.roll(-1, 1) + spins.roll(1, 2) + spins.roll(-1, 2))
            accept = (sh <= 0) | below8 | ((sh == 2) & below4)
            spins.mul_(1 - 2 * (accept * colour))
