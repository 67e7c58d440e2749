"""The relevance–diversity sweep: windows recorded through the shipped RerankService, every
configuration applied with the sidecar's diversify(), values checked on hand-made windows."""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from evaluation.report import ModeReport, StageScores
from evaluation.scored_windows import ScoredWindow, WindowRecorder, window_from
from evaluation.sweep_grid import RERANK_ONLY, SweepConfig, sweep_grid
from evaluation.tradeoff import (
    MAX_NDCG_LOSS,
    METRICS,
    SweepPoint,
    TradeoffReport,
    diversified_ranking,
    diversity_targets,
    format_tradeoff,
    run_sweep,
)
from shoprank.template import ProductText
from sidecar.diversify import DiversityParams, Method
from sidecar.domain import Candidate, CandidateProduct, PairScores, RerankQuery
from sidecar.rerank_service import RerankService

DIM = 8


def _dcg(gains: Sequence[float]) -> float:
    return sum(g / math.log2(rank + 1) for rank, g in enumerate(gains, start=1))


def one_brand_window(gap: float = 2.0) -> tuple[ScoredWindow, dict[str, float]]:
    """Ten near-duplicate "acme" towels on top, then ten products of ten other brands and categories,
    the best of them `gap` below the best towel.

    Gains: acme 0-4 exact, acme 5-9 substitutes, other 10-14 exact, other 15-19 irrelevant.
    """
    rng = np.random.default_rng(3)
    base = rng.normal(size=DIM)
    ids, relevance, vectors, products = [], [], [], []
    for i in range(20):
        ids.append(f"p{i:02d}")
        if i < 10:
            relevance.append(5.0 - 0.1 * i)
            vectors.append(base + 0.01 * rng.normal(size=DIM))
            products.append(CandidateProduct(title=f"towel {i}", brand="Acme", category=("Home", "Towels")))
        else:
            relevance.append(5.0 - gap - 0.1 * (i - 10))
            vectors.append(rng.normal(size=DIM))
            products.append(CandidateProduct(title=f"thing {i}", brand=f"Brand {i}", category=("Home", f"Leaf {i}")))
    gains = {pid: 1.0 if i < 5 or 10 <= i < 15 else (0.1 if i < 10 else 0.0) for i, pid in enumerate(ids)}
    window = ScoredWindow(
        query="towels",
        ids=tuple(ids),
        relevance=np.array(relevance),
        embeddings=np.array(vectors, dtype=np.float32),
        products=tuple(products),
    )
    return window, gains


def _sweep(configs: Sequence[SweepConfig], gap: float = 2.0) -> TradeoffReport:
    window, gains = one_brand_window(gap)
    return run_sweep("judged", [window], {window.query: gains}, {}, configs)


def test_strength_zero_is_rerank_only_for_every_method() -> None:
    report = _sweep(sweep_grid(strengths=(0.0,), caps=()))
    assert [p.config.label for p in report.points] == [
        "mmr 0.00",
        "xquad 0.00",
        "xquad[brand] 0.00",
        "xquad[category+brand] 0.00",
        "dpp 0.00",
    ]
    for point in report.points:
        assert point.values == report.baseline.values
        assert report.change(point, "ndcg@10") == 0.0
    base = report.baseline
    assert base.mean("category_coverage@10") == pytest.approx(0.1)  # ten acme towels
    assert base.mean("brand_coverage@10") == pytest.approx(0.1)
    assert base.mean("category_entropy@10") == 0.0
    assert base.mean("ndcg@10") == pytest.approx(_dcg([1.0] * 5 + [0.1] * 5) / _dcg([1.0] * 10))


def test_a_brand_cap_of_one_gives_every_slot_a_new_brand_at_a_known_ndcg() -> None:
    report = _sweep([SweepConfig("caps", DiversityParams(method="none", strength=0.0, max_per_brand=1))])
    (capped,) = report.points
    # The best acme towel, then the nine best of the other brands (p10-p18: five exact, four irrelevant).
    assert capped.mean("brand_coverage@10") == 1.0
    assert capped.mean("category_coverage@10") == 1.0
    assert capped.mean("category_entropy@10") == pytest.approx(math.log2(10))
    assert capped.mean("ndcg@10") == pytest.approx(_dcg([1.0] * 6 + [0.0] * 4) / _dcg([1.0] * 10))
    assert report.change(capped, "brand_coverage@10") == pytest.approx(9.0)  # 0.1 -> 1.0
    assert capped.mean("ild@10") > report.baseline.mean("ild@10")


def test_unjudged_products_are_counted_and_left_out_of_the_judged_only_ndcg() -> None:
    window, gains = one_brand_window()
    del gains["p01"], gains["p03"]  # two of the top ten nobody judged (end-to-end windows have many)
    report = run_sweep("end_to_end", [window], {window.query: gains}, {}, [])
    base = report.baseline
    assert base.mean("unjudged@10") == pytest.approx(0.2)
    assert base.mean("ndcg@10") == pytest.approx(_dcg([1, 0, 1, 0, 1] + [0.1] * 5) / _dcg([1.0] * 8 + [0.1] * 2))
    # Condensed: p00 p02 p04, p05-p09, then p10 p11 move up into the page.
    condensed = _dcg([1, 1, 1] + [0.1] * 5 + [1, 1]) / _dcg([1.0] * 8 + [0.1] * 2)
    assert base.mean("judged_only_ndcg@10") == pytest.approx(condensed)


@pytest.mark.parametrize("method", ["mmr", "xquad", "dpp"])
def test_coverage_rises_with_strength(method: Method) -> None:
    # The other brands score just below the towels. xQuAD weighs a category by its share of the
    # window's relevance, so it trades little for categories that hold little of it (until strength 1).
    strengths = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
    grid = sweep_grid(strengths=strengths, methods=(method,), caps=(), xquad_facets=[("category",)])
    report = _sweep(grid, gap=0.95)
    coverage = [p.mean("category_coverage@10") for p in report.points]
    brands = [p.mean("brand_coverage@10") for p in report.points]
    assert coverage == sorted(coverage)
    assert brands == sorted(brands)
    assert coverage[-1] >= 0.5 > coverage[0] == 0.1
    assert report.points[-1].mean("ild@10") > report.points[0].mean("ild@10")


def test_the_choice_is_the_point_meeting_the_target_with_the_least_ndcg_loss() -> None:
    def point(label: float, ndcg: float, category: float, brand: float) -> SweepPoint:
        config = SweepConfig("mmr", DiversityParams(method="mmr", strength=label))
        values = {"ndcg@10": [ndcg], "category_coverage@10": [category], "brand_coverage@10": [brand]}
        values.update({m: [0.0] for m in METRICS if m not in values})
        return SweepPoint(config, values)

    baseline = point(0.0, 0.60, 0.40, 0.50)
    baseline.config = RERANK_ONLY
    points = [
        point(0.1, 0.600, 0.44, 0.60),  # no loss, category only +10%
        point(0.2, 0.597, 0.48, 0.60),  # -0.5%, +20% / +20%: meets
        point(0.3, 0.595, 0.56, 0.70),  # -0.83%, more coverage: meets, loses more
        point(0.5, 0.590, 0.60, 0.75),  # -1.67%: over the NDCG budget
    ]
    report = TradeoffReport("end_to_end", ["q"], baseline, points)
    assert [report.meets_target(p) for p in points] == [False, True, True, False]
    chosen = report.chosen()
    assert chosen is points[1]
    closest = report.closest()
    assert closest["most_coverage_within_ndcg_budget"][0] == "mmr 0.30"
    assert closest["least_ndcg_loss_reaching_coverage"][0] == "mmr 0.20"
    data = report.as_dict()
    assert data["chosen"]["strength"] == 0.2
    assert data["points"][1]["relative"]["ndcg@10"] == pytest.approx(-0.005)
    assert "chosen: mmr 0.20" in format_tradeoff(report)
    assert report.best_within_budget() is points[2]  # the fallback: most mean coverage within the budget
    none = TradeoffReport("end_to_end", ["q"], baseline, [points[0], points[3]])
    assert none.chosen() is None
    assert none.best_within_budget() is points[0]
    assert "no configuration meets the target; within the NDCG@10 budget" in format_tradeoff(none)
    assert none.as_dict()["best_within_ndcg_budget"]["strength"] == 0.1
    assert MAX_NDCG_LOSS == 0.01


def test_the_diversified_stage_is_held_to_the_target() -> None:
    def scores(ndcg: float, category: float, brand: float) -> StageScores:
        return StageScores({"ndcg@10": [ndcg], "category_coverage@10": [category], "brand_coverage@10": [brand]})

    met = ModeReport("judged", ["q"], {"rerank": scores(0.5, 0.4, 0.5), "diversified": scores(0.496, 0.5, 0.6)})
    missed = ModeReport("end_to_end", ["q"], {"rerank": scores(0.5, 0.4, 0.5), "diversified": scores(0.49, 0.5, 0.6)})
    targets = diversity_targets({"judged": met, "end_to_end": missed, "other": ModeReport("x", [], {})})
    assert list(targets.values()) == [True, False]
    assert all("diversified" in key for key in targets)


class FixedScorer:
    """A PairScorer whose relevance is a fixed number per product title."""

    version = "fixed"

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores

    def score(self, query: str, products: Sequence[ProductText], *args: object, **kwargs: object) -> PairScores:
        return PairScores(np.array([self.scores[p.title] for p in products], dtype=np.float32))


class HashEmbedder:
    """A bi-encoder stand-in: a deterministic vector per text."""

    dim = DIM

    def encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        rows = [np.random.default_rng(zlib.crc32(t.encode())).normal(size=DIM) for t in texts]
        return np.array(rows, dtype=np.float32)


def test_recorded_windows_diversify_exactly_as_the_sidecar_does() -> None:
    window, _ = one_brand_window()
    candidates = [
        # Every third candidate comes without a vector: the sidecar's bi-encoder fills it in.
        Candidate(pid, 0.0, product, None if i % 3 == 0 else window.embeddings[i])  # type: ignore[index]
        for i, (pid, product) in enumerate(zip(window.ids, window.products, strict=True))
    ]
    scorer = FixedScorer({p.title: float(r) for p, r in zip(window.products, window.relevance, strict=True)})
    service = RerankService(scorer, HashEmbedder())
    recorder = WindowRecorder(service)
    none = DiversityParams(method="none")
    recorder.rerank(RerankQuery("towels", candidates, top_k=len(candidates), blend_weight=0.0, diversity=none))
    recorded = recorder.take()["towels"]
    assert recorder.take() == {}
    assert recorded.ids == window.ids
    assert recorded.embeddings is not None
    assert not np.any(np.all(recorded.embeddings == 0.0, axis=1))
    configs = [
        DiversityParams(method="mmr", strength=0.3),
        DiversityParams(method="xquad", strength=0.5),
        DiversityParams(method="dpp", strength=0.2, window=5),
        DiversityParams(method="none", strength=0.0, max_per_brand=1),
        DiversityParams(method="mmr", strength=0.1, max_per_brand=2),
        DiversityParams(method="none", strength=0.0),
    ]
    for params in configs:
        served = service.rerank(RerankQuery("towels", candidates, top_k=10, blend_weight=0.0, diversity=params))
        assert diversified_ranking(recorded, params) == [r.id for r in served.results], params


def test_a_window_is_recorded_only_from_a_complete_rerank_only_outcome() -> None:
    window, _ = one_brand_window()
    candidates = [Candidate(pid, 0.0, p) for pid, p in zip(window.ids, window.products, strict=True)]
    scorer = FixedScorer({p.title: 1.0 for p in window.products})
    service = RerankService(scorer)
    none = DiversityParams(method="none")
    partial = service.rerank(RerankQuery("q", candidates, top_k=5, blend_weight=0.0, diversity=none))
    with pytest.raises(ValueError, match="top_k"):
        window_from(RerankQuery("q", candidates, top_k=5, blend_weight=0.0, diversity=none), partial, None)
    mmr = RerankQuery("q", candidates, top_k=20, blend_weight=0.0, diversity=DiversityParams(method="mmr"))
    with pytest.raises(ValueError, match="without diversity"):
        window_from(mmr, service.rerank(mmr), None)
