"""Ising lattices users already have: .npz / .npy arrays and the Mehta et al. packbits pickles.

Each reader returns a `physgan.io.Samples` that streams +-1 int8 spins (n, L, L) and float32 T (n,),
exactly like a physgan HDF5 file, or None when the file is not an Ising layout.

- .npz: one spin array under any of SPIN_KEYS, shape (n, L, L) or (n, L*L), values +-1 or 0/1, and a
  temperature array under any of TEMPERATURE_KEYS, shape (n,) or a scalar.
- .npy: the spin array alone; temperatures from a sibling file NAME_T.npy (shape (n,) or a scalar).
- Mehta et al. (arXiv:1803.08823) pickles: np.packbits uint8 rows of L*L bits, 0 -> -1; temperatures
  from the file name ("..._T=0.25.pkl" or "..._T=All.pkl", the latter T = 0.25 ... 4.00 in steps of
  0.25 with equal counts, in order). Pickles can run code, so they are read only with allow_pickle.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from physgan.errors import UserError

SPIN_KEYS = ("spins", "configs", "configurations", "lattices", "X", "x", "data")
TEMPERATURE_KEYS = ("T", "temps", "temperature", "temperatures")
MEHTA_ALL_TEMPERATURES = np.arange(1, 17) * 0.25


def read_foreign(path: str, kind: str, allow_pickle: bool):
    if kind == "npz":
        return _read_npz(path)
    if kind == "npy":
        return _read_npy(path)
    if kind == "pickle":
        return _read_mehta_pickle(path, allow_pickle)
    return None


def _read_npz(path: str):
    with np.load(path, allow_pickle=False) as archive:
        keys = set(archive.files)
        spin_key = next((k for k in SPIN_KEYS if k in keys), None)
        t_key = next((k for k in TEMPERATURE_KEYS if k in keys), None)
        if spin_key is None or (t_key is None and spin_key != "spins"):
            return None  # e.g. EnergyFlow's X, y: another system's layout, not an Ising file without T
        if t_key is None:
            raise UserError(f"{path}: found spins under {spin_key!r} but no temperatures "
                            f"(store them under one of {', '.join(TEMPERATURE_KEYS)})")
        spins, T = _load_array(archive, spin_key, path), _load_array(archive, t_key, path)
    return _samples(path, "npz", spins, T)


def _read_npy(path: str):
    spins = np.load(path, mmap_mode="r", allow_pickle=False)
    sibling = Path(path).with_name(Path(path).stem + "_T.npy")
    if not sibling.exists():
        raise UserError(f"{path}: a .npy file holds spins only; put the temperatures in {sibling.name} "
                        "(or use one .npz with arrays 'spins' and 'T')")
    return _samples(path, "npy", spins, np.load(sibling, allow_pickle=False))


def _read_mehta_pickle(path: str, allow_pickle: bool):
    if not allow_pickle:
        raise UserError(f"{path} is a Python pickle, which can run arbitrary code when loaded; "
                        "pass --allow-pickle if you trust it")
    import pickle

    try:
        with open(path, "rb") as f:
            packed = np.asarray(pickle.load(f))
    except Exception as exc:  # a corrupt pickle can raise almost anything
        raise UserError(f"{path}: cannot unpickle ({type(exc).__name__}: {exc})") from None
    if packed.dtype != np.uint8 or packed.ndim != 2:
        raise UserError(f"{path}: expected a packbits uint8 array (n, L*L/8), found {packed.dtype} {packed.shape}")
    bits = np.unpackbits(packed, axis=1)
    L = _side(bits.shape[1], path)
    spins = bits.reshape(len(bits), L, L)
    return _samples(path, "mehta-pickle", spins, _mehta_temperatures(path, len(spins)))


def _mehta_temperatures(path: str, n: int) -> np.ndarray:
    match = re.search(r"T=([0-9.]+|All)", Path(path).name)
    if match is None:
        raise UserError(f"{path}: cannot tell the temperature; Mehta et al. files are named ..._T=<value>.pkl or ..._T=All.pkl")
    if match.group(1) != "All":
        return np.full(n, float(match.group(1).rstrip(".")))
    if n % len(MEHTA_ALL_TEMPERATURES):
        raise UserError(f"{path}: {n} configurations do not split evenly over the 16 temperatures of a T=All file")
    return np.repeat(MEHTA_ALL_TEMPERATURES, n // len(MEHTA_ALL_TEMPERATURES))


def _load_array(archive, key: str, path: str) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as exc:  # object arrays need pickle: refuse
        raise UserError(f"{path}: array {key!r} cannot be read without pickle ({exc})") from None


def _side(n_sites: int, path: str) -> int:
    L = int(round(np.sqrt(n_sites)))
    if L * L != n_sites or L < 2:
        raise UserError(f"{path}: {n_sites} spins per configuration is not an L x L lattice")
    return L


def _samples(path: str, fmt: str, spins: np.ndarray, T) -> "Samples":
    from physgan.io import Samples

    if spins.ndim == 2:
        spins = spins.reshape(len(spins), _side(spins.shape[1], path), -1)
    if spins.ndim != 3 or spins.shape[1] != spins.shape[2]:
        raise UserError(f"{path}: spins must have shape (n, L, L) or (n, L*L), found {spins.shape}")
    T = np.broadcast_to(np.asarray(T, dtype=np.float32), (len(spins),)) if np.ndim(T) == 0 else np.asarray(T, dtype=np.float32)
    if T.shape != (len(spins),):
        raise UserError(f"{path}: {len(spins)} configurations but {T.size} temperatures")
    if not np.all(np.isfinite(T)) or np.any(T <= 0):
        raise UserError(f"{path}: temperatures must be positive and finite")
    zero_is_down = _spin_convention(spins[: min(len(spins), 1024)], path)

    def reader(start, stop, names):
        out = {}
        if "spins" in names:
            chunk = np.asarray(spins[start:stop])
            # a first block of all +1 cannot tell 0/1 from +-1: every chunk may settle it
            zero_is_down_here = _spin_convention(chunk, path) or zero_is_down
            out["spins"] = (2 * chunk.astype(np.int8) - 1) if zero_is_down_here else chunk.astype(np.int8)
        if "T" in names:
            out["T"] = np.array(T[start:stop])
        return out

    L = spins.shape[1]
    return Samples(path=path, system="ising", source="external", format=fmt, n=len(spins),
                   fields={"spins": ((L, L), np.dtype(np.int8)), "T": ((), np.dtype(np.float32))},
                   conditions=("T",), provenance={"note": f"read from a {fmt} file; no physgan provenance"},
                   _chunk_reader=reader)


def _spin_convention(spins: np.ndarray, path: str) -> bool:
    """True for 0/1 spins, False for +-1; anything else is a user error."""
    values = np.unique(spins)
    if np.all(np.isin(values, (-1, 1))):
        return False
    if np.all(np.isin(values, (0, 1))):
        return True
    raise UserError(f"{path}: spins must be +-1 or 0/1, found values {values[:5].tolist()}")
