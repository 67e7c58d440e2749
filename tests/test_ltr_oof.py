"""The out-of-fold protocol: folds by query, a query never in its own model's training data, and
a learnable signal found out of fold on a synthetic window set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from evaluation.ltr_oof import VARIANTS, OutOfFold, baseline_rankings, figures, folds, reorder, splits
from evaluation.ltr_windows import FINE_TUNED, ZERO_SHOT, Window, WindowSet, cut
from sidecar.domain import CandidateProduct


def test_folds_are_disjoint_cover_every_query_and_are_seeded() -> None:
    queries = [f"q{i}" for i in range(23)]
    parts = folds(queries, 5, seed=1)
    assert sorted(q for p in parts for q in p) == sorted(queries)
    assert sorted(len(p) for p in parts) == [4, 4, 4, 5, 5] or sorted(len(p) for p in parts) == [4, 4, 5, 5, 5]
    assert folds(queries, 5, seed=1) == parts
    assert folds(queries, 5, seed=2) != parts
    with pytest.raises(ValueError, match="folds"):
        folds(queries, 1)


def test_no_query_is_in_its_own_training_fold() -> None:
    queries = [f"q{i}" for i in range(12)]
    held_all = []
    for train, held in splits(queries, 4):
        assert not set(train) & set(held)
        assert sorted(train + held) == sorted(queries)
        held_all += held
    assert sorted(held_all) == sorted(queries)  # each query is scored exactly once


def test_reorder_ranks_the_cut_window_and_keeps_the_rest_in_first_stage_order() -> None:
    full = _window("q", ["a", "b", "c", "d"], [0.0] * 4)
    assert reorder(cut(full, 2), [0.1, 0.9], full) == ["b", "a", "c", "d"]


def _window(query: str, ids: Sequence[str], ratings: Sequence[float]) -> Window:
    n = len(ids)
    logits = tuple(float(x) for x in np.linspace(1, -1, n))
    return Window(
        query, tuple(ids), tuple(float(n - i) for i in range(n)), (float("nan"),) * n,
        {FINE_TUNED: logits, ZERO_SHOT: logits}, {FINE_TUNED: 0.01, ZERO_SHOT: 0.01},
    )  # fmt: skip


def synthetic(queries: int = 20, size: int = 15) -> WindowSet:
    """Windows where the five-star product is the exact match and the first stage is uninformative."""
    rng = np.random.default_rng(5)
    windows: dict[str, dict[str, Window]] = {"judged": {}, "end_to_end": {}}
    products: dict[str, CandidateProduct] = {}
    gains: dict[str, dict[str, float]] = {}
    for qi in range(queries):
        q = f"query {qi}"
        ids = [f"{qi}-{i}" for i in range(size)]
        ratings = rng.uniform(1, 4, size)
        ratings[rng.integers(size)] = 5.0  # the exact match: the only five-star product
        for pid, r in zip(ids, ratings, strict=True):
            products[pid] = CandidateProduct(title=f"thing {pid}", rating=float(r), rating_count=50)
        gains[q] = {pid: (1.0 if r == ratings.max() else 0.0) for pid, r in zip(ids, ratings, strict=True)}
        for mode in windows:
            windows[mode][q] = _window(q, ids, list(ratings))
    rankings = {m: {s: {q: list(windows[m][q].ids) for q in gains} for s in ("bm25", "knn", "hybrid")} for m in windows}
    return WindowSet(windows, rankings, products, gains, {"cross_encoders": {FINE_TUNED: "ft", ZERO_SHOT: "zs"}})


def test_out_of_fold_ltr_finds_the_signal_and_never_scores_a_query_it_trained_on() -> None:
    ws = synthetic()
    oof = OutOfFold(ws, k=4, inner_k=2)
    trained_on: list[set[str]] = []
    scored: list[tuple[str, set[str]]] = []
    real_data, real_ranked = oof._data, oof._ranked

    def data(queries: Sequence[str], *args: Any) -> Any:
        trained_on.append(set(queries))
        return real_data(queries, *args)

    def ranked(booster: Any, variant: Any, mode: str, query: str, size: int) -> list[str]:
        scored.append((query, trained_on[-1]))
        return real_ranked(booster, variant, mode, query, size)

    oof._data = data  # type: ignore[method-assign, assignment]
    oof._ranked = ranked  # type: ignore[method-assign]
    variant = VARIANTS[0]
    rankings = {"ltr": oof.rankings(variant), **baseline_rankings(oof.store, oof.queries, 0.5)}
    assert scored
    assert all(query not in training for query, training in scored)
    report = figures(rankings, ws.gains, oof.queries, ("hybrid",))
    for mode in ("judged", "end_to_end"):
        assert report[mode]["hybrid"].ndcg.mean < 0.5
        assert report[mode]["ltr"].ndcg.mean > 0.9
        assert report[mode]["ltr"].versus["hybrid"].low > 0
    assert len(oof.chosen[f"{variant.name}@{10**6}"]) == 4  # one parameter choice per outer fold


def test_the_report_marks_in_sample_stages_and_prices_the_frontier() -> None:
    from evaluation.ltr_report import run_report

    ws = synthetic(queries=12, size=10)
    ws.info["rerank_window"] = 10
    trained = {q for q in ws.gains if not q.endswith(("1", "2", "3"))}  # the "released" CE saw these
    report = run_report(ws, trained, 0.5, k=3, frontier_windows=(5, 10))
    data = report.as_dict()
    assert data["sets"]["all"]["end_to_end"]["blend"]["clean"] is False
    assert data["sets"]["all"]["end_to_end"]["ltr_no_ce"]["clean"] is True
    assert data["sets"]["test"]["end_to_end"]["blend"]["clean"] is True
    assert data["test_queries"] == 4  # queries 1, 2, 3 and 11
    rows = {(r["window"], r["stage"]): r for r in data["frontier"]}
    assert rows[(5, "blend")]["cross_encoder_cpu_ms"] == pytest.approx(rows[(10, "blend")]["cross_encoder_cpu_ms"] / 2)
    assert rows[(10, "ltr_no_ce")]["cross_encoder_cpu_ms"] == 0.0
    assert "(in sample on train+dev)" in report.format()
