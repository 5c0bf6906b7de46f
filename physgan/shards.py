"""Sharded generation (`--shard i/N`): independent random streams and each shard's share of the work."""
from __future__ import annotations

import numpy as np

from physgan.errors import UserError


def parse_shard(text: str | None) -> tuple[int, int]:
    """'i/N' -> (i, N) with 0 <= i < N; None -> (0, 1)."""
    if text is None:
        return 0, 1
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UserError(f"--shard {text!r}: expected i/N, e.g. 0/8") from None
    if not 0 <= i < n:
        raise UserError(f"--shard {text!r}: need 0 <= i < N")
    return i, n


def shard_seed(seed: int, shard: tuple[int, int]) -> np.random.SeedSequence:
    """The random stream of shard i of N: SeedSequence(seed).spawn(N)[i] (docs/formats.md, "Shards and seeds")."""
    return np.random.SeedSequence(seed).spawn(shard[1])[shard[0]]


def shard_count(n: int, shard: tuple[int, int]) -> int:
    """Shard i's share of n items, so that the N shares sum to n."""
    i, n_shards = shard
    return n // n_shards + (i < n % n_shards)
