"""Length bucketing for the batcher: cut pairs into inference calls with the least padded work.

A call costs roughly (pairs x its longest pair) token slots plus a fixed per-call overhead, so
the best cut of a length-sorted list is a shortest-path problem: dynamic programming over the
sorted lengths picks where each call ends. One big call pads short pairs to the longest; one
call per pair pays the overhead a hundred times; the plan sits where their sum is least.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# Fixed cost of one inference call in token slots (session start, thread hand-offs, small ops).
# Orders of magnitude measured on a CPU and a GPU: docs/benchmarks.md, "Measurements behind constants".
CPU_CALL_OVERHEAD_TOKENS = 16
CUDA_CALL_OVERHEAD_TOKENS = 2048


def plan_padded_batches(
    lengths: Sequence[int], token_budget: int, max_batch: int, call_overhead_tokens: int = CPU_CALL_OVERHEAD_TOKENS
) -> list[list[int]]:
    """Indices of `lengths` grouped into calls minimising padded tokens + per-call overhead.

    Each call holds pairs of neighbouring lengths, at most `max_batch` of them, and pads to at
    most `token_budget` token slots; a single pair longer than the budget still gets a call.
    Calls come longest first.
    """
    if not lengths:
        return []
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    width = [lengths[i] for i in order]
    count = len(order)
    best = [0.0] + [math.inf] * count  # best[j]: least cost of the first j pairs (longest first)
    start = [0] * (count + 1)
    for end in range(1, count + 1):
        for first in range(end - 1, -1, -1):
            size = end - first
            if size > max_batch or (size > 1 and size * width[first] > token_budget):
                break  # widths only grow as `first` moves left: no longer call can fit either
            cost = best[first] + call_overhead_tokens + size * width[first]
            if cost < best[end]:
                best[end], start[end] = cost, first
    calls: list[list[int]] = []
    end = count
    while end > 0:
        first = start[end]
        calls.append(order[first:end])
        end = first
    calls.reverse()
    return calls


def padded_tokens(lengths: Sequence[int], calls: Sequence[Sequence[int]]) -> int:
    """Token slots the calls take after padding each to its longest pair."""
    return sum(len(call) * max(lengths[i] for i in call) for call in calls if call)
