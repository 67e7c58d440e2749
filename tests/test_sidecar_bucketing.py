"""Length bucketing: every pair in exactly one call, budgets held, and the least padded work."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.bucketing import padded_tokens, plan_padded_batches


def cost(lengths: list[int], calls: list[list[int]], overhead: int) -> int:
    return padded_tokens(lengths, calls) + overhead * len(calls)


def brute_force_best(lengths: list[int], budget: int, max_batch: int, overhead: int) -> int:
    """Least cost over every cut of the length-sorted list (contiguous calls)."""
    ordered = sorted(lengths, reverse=True)
    best = None
    for cuts in itertools.product([False, True], repeat=len(ordered) - 1):
        calls, current = [], [0]
        for i, cut in enumerate(cuts, start=1):
            if cut:
                calls.append(current)
                current = []
            current.append(i)
        calls.append(current)
        if any(len(c) > max_batch or (len(c) > 1 and len(c) * ordered[c[0]] > budget) for c in calls):
            continue
        total = cost(ordered, calls, overhead)
        best = total if best is None else min(best, total)
    assert best is not None
    return best


@settings(max_examples=150, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 128), min_size=1, max_size=9),
    budget=st.integers(64, 600),
    max_batch=st.integers(1, 6),
    overhead=st.integers(0, 100),
)
def test_plan_is_a_partition_within_budget_and_optimal(
    lengths: list[int], budget: int, max_batch: int, overhead: int
) -> None:
    calls = plan_padded_batches(lengths, budget, max_batch, overhead)
    assert sorted(i for call in calls for i in call) == list(range(len(lengths)))
    for call in calls:
        assert len(call) <= max_batch
        assert len(call) == 1 or len(call) * max(lengths[i] for i in call) <= budget
    assert cost(lengths, calls, overhead) == brute_force_best(lengths, budget, max_batch, overhead)


def test_mixed_lengths_are_split_instead_of_padded_to_the_longest() -> None:
    lengths = [128] * 50 + [30] * 50
    calls = plan_padded_batches(lengths, token_budget=100_000, max_batch=256, call_overhead_tokens=16)
    assert len(calls) == 2
    assert padded_tokens(lengths, calls) == 50 * 128 + 50 * 30  # no padding at all
    one_call = padded_tokens(lengths, [list(range(100))])
    assert one_call == 100 * 128


def test_a_pair_longer_than_the_budget_still_gets_a_call() -> None:
    assert plan_padded_batches([500, 10], token_budget=128, max_batch=8) == [[0], [1]]


def test_empty_input_plans_nothing() -> None:
    assert plan_padded_batches([], 128, 8) == []
