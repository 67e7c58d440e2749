"""Length-bucketed batching under a token budget: small padding, bounded memory per batch."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


def plan_batches(lengths: Sequence[int], token_budget: int, max_batch: int) -> Iterator[list[int]]:
    """Group item indices into batches of similar length whose padded size fits `token_budget`.

    Items are taken longest first, so each batch pads to its first item's length; a single
    item longer than the budget still forms a batch of one.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batch: list[int] = []
    width = 0
    for index in order:
        width = max(width, lengths[index]) if batch else lengths[index]
        if batch and (width * (len(batch) + 1) > token_budget or len(batch) >= max_batch):
            yield batch
            batch, width = [], lengths[index]
        batch.append(index)
    if batch:
        yield batch


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[IntArray, IntArray]:
    """Right-pad token id lists into (ids, attention_mask) int64 arrays of the longest length."""
    width = max(len(s) for s in sequences)
    ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), width), dtype=np.int64)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return ids, mask
