"""The cascade: the full scorer sees only the cheap scorer's top K; the rest keep the cheap order below."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shoprank.model_meta import ModelNotBuiltError
from shoprank.template import ProductText
from sidecar.cascade import CascadeScorer, FirstStageOrder, compose, plan
from sidecar.diversify import DiversityParams
from sidecar.domain import Admission, Candidate, CandidateProduct, PairScores, RerankQuery
from sidecar.model_loading import load_service
from sidecar.rerank_service import RerankService


class TableScorer:
    """Scores a product by a table of title -> logit and records every call's titles."""

    def __init__(self, table: dict[str, float], version: str) -> None:
        self.table = table
        self.version = version
        self.calls: list[list[str]] = []

    def score(
        self,
        query: str,
        products: Sequence[ProductText],
        deadline: float | None = None,
        ids: Sequence[str] | None = None,
        cancelled: threading.Event | None = None,
        admission: Admission | None = None,
    ) -> PairScores:
        titles = [p.title for p in products]
        self.calls.append(titles)
        return PairScores(logits=np.array([self.table[t] for t in titles], dtype=np.float32))


def _products(n: int) -> list[CandidateProduct]:
    return [CandidateProduct(title=f"p{i}") for i in range(n)]


def test_plan_takes_the_cheap_top_k_ties_in_input_order() -> None:
    cascade = plan(np.array([0.1, 0.9, 0.5, 0.9, 0.2], dtype=np.float32), 2)
    assert cascade.head == [1, 3]
    assert cascade.tail == [2, 4, 0]


def test_compose_puts_the_tail_below_the_head_in_cheap_order() -> None:
    cascade = plan(np.array([5.0, 1.0, 4.0, 3.0, 2.0], dtype=np.float32), 2)  # head [0, 2], tail [3, 4, 1]
    out = compose(5, cascade, np.array([-1.0, 2.0], dtype=np.float32))
    assert out[0] == -1.0
    assert out[2] == 2.0
    assert [int(i) for i in np.argsort(-out, kind="stable")] == [2, 0, 3, 4, 1]
    assert out[[3, 4, 1]].max() < -1.0


def test_full_scorer_rescores_only_the_top_k() -> None:
    products = _products(6)
    # The cheap model prefers p5, p4, p3...; the full model reverses the head's order.
    cheap = TableScorer({f"p{i}": float(i) for i in range(6)}, "cheap:int8")
    full = TableScorer({f"p{i}": float(-i) for i in range(6)}, "full:int8")
    scorer = CascadeScorer(full, cheap, top_k=3)
    logits = scorer.score("q", products, ids=[f"id{i}" for i in range(6)]).logits
    assert cheap.calls == [["p0", "p1", "p2", "p3", "p4", "p5"]]
    assert full.calls == [["p5", "p4", "p3"]]
    order = [int(i) for i in np.argsort(-logits, kind="stable")]
    assert order == [3, 4, 5, 2, 1, 0]  # head by full score, then the tail by cheap score
    assert scorer.version == "full:int8+cascade3:cheap:int8"


def test_a_window_no_larger_than_k_goes_to_the_full_scorer_alone() -> None:
    cheap = TableScorer({f"p{i}": float(i) for i in range(3)}, "cheap")
    full = TableScorer({f"p{i}": float(-i) for i in range(3)}, "full")
    logits = CascadeScorer(full, cheap, top_k=3).score("q", _products(3)).logits
    assert cheap.calls == []
    assert logits.tolist() == [0.0, -1.0, -2.0]


def test_rerank_service_orders_by_the_cascade() -> None:
    cheap = TableScorer({f"p{i}": float(i) for i in range(5)}, "cheap")
    full = TableScorer({"p4": 0.0, "p3": 5.0, "p2": 1.0, "p1": 9.0, "p0": 9.0}, "full")
    service = RerankService(CascadeScorer(full, cheap, top_k=2))
    candidates = [Candidate(f"id{i}", 0.0, p) for i, p in enumerate(_products(5))]
    outcome = service.rerank(RerankQuery("q", candidates, 5, 0.0, DiversityParams(method="none")))
    assert [r.id for r in outcome.results] == ["id3", "id4", "id2", "id1", "id0"]
    assert outcome.model_version == "full+cascade2:cheap"


def test_top_k_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="top_k"):
        CascadeScorer(TableScorer({}, "f"), TableScorer({}, "c"), 0)


def test_first_stage_order_keeps_the_input_order_below_the_head() -> None:
    full = TableScorer({"p0": 0.0, "p1": 3.0, "p2": 9.0, "p3": 9.0}, "full")
    scorer = CascadeScorer(full, FirstStageOrder(), top_k=2)
    logits = scorer.score("q", _products(4)).logits
    assert full.calls == [["p0", "p1"]]  # only the first two as sent
    assert [int(i) for i in np.argsort(-logits, kind="stable")] == [1, 0, 2, 3]


@pytest.mark.service
def test_the_sidecar_serves_the_configured_cascade(tiny_models: Path, settings_for: Any) -> None:
    service = load_service(settings_for(tiny_models, cascade_top_k=2, score_cache_entries=0))
    try:
        assert service.model_version.endswith("+cascade2:first-stage")
        candidates = [Candidate(f"id{i}", float(4 - i), p) for i, p in enumerate(_products(4))]
        outcome = service.rerank(RerankQuery("q", candidates, 4, 0.0, DiversityParams(method="none")))
        assert [r.id for r in outcome.results][2:] == ["id2", "id3"]  # the tail in first-stage order
        assert {r.id for r in outcome.results[:2]} == {"id0", "id1"}
    finally:
        service.close()


@pytest.mark.service
def test_a_model_cascade_without_its_model_says_how_to_build_it(tiny_models: Path, settings_for: Any) -> None:
    with pytest.raises(ModelNotBuiltError, match="models build --only cascade"):
        load_service(settings_for(tiny_models, cascade_top_k=2, cascade_scorer="model"))
