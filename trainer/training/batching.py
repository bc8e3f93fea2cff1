"""Deterministic, rank-aware batches: the order is a pure function of (seed, epoch), so a resumed run
sees exactly the batches the interrupted one would have seen, and every rank gets the same count."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def epoch_batches(
    lengths: Sequence[int],
    batch_size: int,
    seed: int,
    epoch: int,
    rank: int = 0,
    world_size: int = 1,
    shuffle: bool = True,
    group_by_length: bool = True,
    pool_batches: int = 50,
) -> list[list[int]]:
    """Indices of this rank's micro-batches for one epoch.

    With ``group_by_length`` examples are shuffled, cut into pools of ``pool_batches`` batches, sorted by
    length inside each pool and the batches shuffled again: padding stays small (dynamic padding) while
    the order stays random. Batches are dealt round-robin to ranks; the few left over so that every rank
    has the same number are dropped for this epoch (they come back in another order next epoch).
    """
    n = len(lengths)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n) if shuffle else np.arange(n)
    if group_by_length:
        lens = np.asarray(lengths)
        pool = batch_size * pool_batches
        order = np.concatenate(
            [chunk[np.argsort(-lens[chunk], kind="stable")] for chunk in np.array_split(order, max(1, -(-n // pool)))]
        ) if n else order
    batches = [order[i : i + batch_size].tolist() for i in range(0, n, batch_size)]
    if shuffle and group_by_length:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    usable = len(batches) // world_size * world_size
    return batches[rank:usable:world_size]
