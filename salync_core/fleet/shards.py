"""Splitting a fleet's accounts among processes, so one machine's fleet uses every core.

Each process runs a fleet of its own over one shard of the accounts, on its own event loop. An
account belongs to shard ``crc32(name) % shards``: stable across runs and processes, so the same
process keeps the same accounts (and their pacers) while the directory does not change. Two
processes never write one mirror even if shards overlapped: every round takes the mirror's lock.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from salync_core.fleet.account import Account


def shard_of(account: str, shards: int) -> int:
    """The shard (0 to ``shards - 1``) that runs ``account``."""
    return zlib.crc32(account.encode()) % shards


def in_shard(accounts: Sequence[Account], index: int, shards: int) -> list[Account]:
    """The accounts of shard ``index`` of ``shards``."""
    return [a for a in accounts if shard_of(a.name, shards) == index]


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` as (K, N), checked: 0 <= K < N."""
    index, _, total = text.partition("/")
    try:
        k, n = int(index), int(total)
    except ValueError:
        raise ValueError(f"expected K/N, such as 1/4, not {text!r}") from None
    if not 0 <= k < n:
        raise ValueError(f"expected K/N with 0 <= K < N, not {text!r}")
    return k, n
