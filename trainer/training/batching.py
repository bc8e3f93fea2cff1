"""Deterministic, rank-aware batches: the order is a pure function of (seed, epoch), so a resumed run
sees exactly the batches the interrupted one would have seen, and every rank gets the same count."""

from __future__ import annotations

from typing import Sequence

import numpy as np

POOL_BATCHES = 50  # batches per length-sorted pool: larger pools pad less but mix lengths less randomly


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> list[list[int]]:
    """Indices of this rank's micro-batches for one epoch.

    Examples are shuffled, cut into pools of ``POOL_BATCHES`` batches, sorted by length inside each pool
    and the batches shuffled again: padding stays small (dynamic padding) while the order stays random.
    Batches are dealt round-robin to ranks; the few left over so that every rank has the same number are
    dropped for this epoch (they come back in another order next epoch).
    """
    n = len(lengths)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n)
    if n:
        lens = np.asarray(lengths)
        pools = np.array_split(order, max(1, -(-n // (batch_size * POOL_BATCHES))))
        order = np.concatenate([pool[np.argsort(-lens[pool], kind="stable")] for pool in pools])
    batches = [order[i : i + batch_size].tolist() for i in range(0, n, batch_size)]
    batches = [batches[i] for i in rng.permutation(len(batches))]
    usable = len(batches) // world_size * world_size
    return batches[rank:usable:world_size]
