"""How well the intent model predicts a query's categories, and what it does to the first stage.

Over the judged queries with exact (E) products in the catalogue (the intent model never sees
them: it is built from the catalogue's products alone):

- accuracy: top-1 / top-3 hit of the predicted categories on the categories (at the model's
  depth) of the query's exact products, and log-loss of the mass on them, beside two baselines:
  the catalogue's majority category and the category counts of the first-stage top 10;
- NDCG@10 of the first stage (hybrid window, the front door's default) with the intent's boost
  and hard filter (frontdoor.intent_policy, the code the front door runs) over a grid, the
  setting chosen on k-1 folds of queries and scored on the held-out fold (k-fold by query), with
  paired bootstrap CIs against intent off;
- with a reranker (`eval-intent --rerank`), the same for the served ranking: the intent-boosted
  (or filtered) window reranked by the released cross-encoder and blended as the sidecar does,
  each setting chosen out of fold on the served NDCG@10.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from engines.base import CategoryBoost, Filters, Hit, RetrievalQuery, SearchEngine
from evaluation.bootstrap import Interval, bootstrap_ci, paired_difference
from frontdoor.facets import shape_facets
from frontdoor.intent_policy import SHOWN_CATEGORIES, boost_hits, intent_filters, intent_ordered_categories
from intent.model import IntentDepth, IntentDistribution, IntentModel, label_at_depth
from relevance.judgments import ESCI_GAINS, Judgments
from relevance.metrics import ndcg_at_k
from shoprank.schema import Product

EXACT_GAIN = ESCI_GAINS["E"]
BASELINE_WINDOW = 10
K = 10
FOLDS = 5
FOLD_SEED = 20
# Grid of the front door's intent settings: boost weight x filter threshold (1: never filter).
# Ordered simplest first: a fold keeps the earlier of two settings that score the same.
BOOSTS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)
THRESHOLDS = (1.0, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5)
OFF = (0.0, 1.0)
# Log-loss floor, and the share of the catalogue prior mixed into a count baseline (else log 0).
LOG_FLOOR = 1e-6
PRIOR_MIX = 0.01
POLICIES = {"boost": (BOOSTS, (1.0,)), "filter": ((0.0,), THRESHOLDS), "boost+filter": (BOOSTS, THRESHOLDS)}
# The boost inside the engine's scoring (engines.base.CategoryBoost), over the same weights.
ENGINE_POLICY = "engine boost"


class QueryEncoder(Protocol):
    """What the measurement needs from the bi-encoder."""

    def encode_one(self, text: str) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True)
class Prediction:
    """One predictor's ranked categories and the probability mass on the exact categories."""

    ranked: tuple[str, ...]
    exact_mass: float

    def hit(self, exact: set[str], k: int) -> bool:
        """Is one of the first k categories an exact product's?"""
        return any(c in exact for c in self.ranked[:k])


@dataclass
class QueryIntent:
    """One judged query's figures."""

    query: str
    exact: set[str]
    predictions: dict[str, Prediction]
    top_p: float
    ndcg: dict[tuple[float, float], float] = field(default_factory=dict)
    served: dict[tuple[float, float], float] = field(default_factory=dict)  # reranked (with a reranker)
    # The boost inside the engine (RetrievalQuery.boosts), keyed (boost, 1.0): first stage and served.
    engine: dict[tuple[float, float], float] = field(default_factory=dict)
    engine_served: dict[tuple[float, float], float] = field(default_factory=dict)
    # Is the category facet's first value an exact product's category: in count order, in intent order?
    facet_top: dict[str, bool] = field(default_factory=dict)


@dataclass
class IntentReport:
    """Accuracy of each predictor and the first stage's NDCG@10 under each intent policy."""

    depth: str
    window: int
    labels: int
    per_query: list[QueryIntent]
    predict_ms_p50: float
    folds: int = FOLDS
    chosen: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    out_of_fold: dict[str, list[float]] = field(default_factory=dict)
    served_chosen: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    served_out_of_fold: dict[str, list[float]] = field(default_factory=dict)
    reranker: str | None = None

    def accuracy(self, predictor: str, k: int) -> Interval:
        """Share of queries whose top-k holds an exact product's category."""
        return bootstrap_ci([float(q.predictions[predictor].hit(q.exact, k)) for q in self.per_query])

    def log_loss(self, predictor: str) -> Interval:
        """Mean -log of the mass a predictor puts on the exact categories."""
        return bootstrap_ci([-np.log(max(q.predictions[predictor].exact_mass, LOG_FLOOR)) for q in self.per_query])

    def facet_top(self, order: str) -> Interval:
        """Share of queries whose category facet shows an exact product's category first."""
        return bootstrap_ci([float(q.facet_top[order]) for q in self.per_query if order in q.facet_top])

    def facet_top_gain(self) -> Interval:
        """Paired difference of that share, intent order minus count order."""
        tops = [q.facet_top for q in self.per_query if q.facet_top]
        return paired_difference([float(t["intent"]) for t in tops], [float(t["count"]) for t in tops])

    def ndcg(self, setting: tuple[float, float]) -> list[float]:
        """Per-query NDCG@10 of one (boost, threshold) setting."""
        return [q.ndcg[setting] for q in self.per_query]

    def served_ndcg(self, setting: tuple[float, float]) -> list[float]:
        """Per-query NDCG@10 of the reranked window under one setting (with a reranker)."""
        return [q.served[setting] for q in self.per_query]

    def _served_dict(self) -> dict[str, Any]:
        if not self.served_out_of_fold:
            return {}
        off = self.served_ndcg(OFF)
        return {
            "served": {
                "reranker": self.reranker,
                "ndcg10_off": bootstrap_ci(off).as_dict(),
                "out_of_fold": {
                    name: {
                        "ndcg10": bootstrap_ci(values).as_dict(),
                        "minus_off": paired_difference(values, off).as_dict(),
                        "chosen_per_fold": [{"boost": b, "threshold": t} for b, t in self.served_chosen[name]],
                    }
                    for name, values in self.served_out_of_fold.items()
                },
            }
        }

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        off = self.ndcg(OFF)
        return {
            "depth": self.depth,
            "window": self.window,
            "labels": self.labels,
            "queries": len(self.per_query),
            "predict_ms_p50": self.predict_ms_p50,
            "accuracy": {
                name: {
                    "top1": self.accuracy(name, 1).as_dict(),
                    "top3": self.accuracy(name, 3).as_dict(),
                    "log_loss": self.log_loss(name).as_dict(),
                }
                for name in PREDICTORS
            },
            "category_facet_first_is_exact": {
                "count_order": self.facet_top("count").as_dict(),
                "intent_order": self.facet_top("intent").as_dict(),
                "intent_minus_count": self.facet_top_gain().as_dict(),
            },
            "ndcg10_off": bootstrap_ci(off).as_dict(),
            "out_of_fold": {
                name: {
                    "ndcg10": bootstrap_ci(values).as_dict(),
                    "minus_off": paired_difference(values, off).as_dict(),
                    "chosen_per_fold": [{"boost": b, "threshold": t} for b, t in self.chosen[name]],
                }
                for name, values in self.out_of_fold.items()
            },
            "in_sample": {f"boost={b:g},threshold={t:g}": float(np.mean(self.ndcg((b, t)))) for b, t in _grid()},
            **self._served_dict(),
            "per_query": [
                {
                    "query": q.query,
                    "exact": sorted(q.exact),
                    "predicted": list(q.predictions["intent"].ranked[:3]),
                    "top_p": q.top_p,
                    "ndcg10_off": q.ndcg[OFF],
                    "category_facet_first_is_exact": q.facet_top,
                }
                for q in self.per_query
            ],
        }


PREDICTORS = {
    "intent": "the intent model (category centroids of the stored product vectors)",
    "majority": "the catalogue's most stocked categories, whatever the query",
    "first_stage_top10": f"category counts of the hybrid first stage's top {BASELINE_WINDOW}",
}


def _grid() -> list[tuple[float, float]]:
    return [(b, t) for t in THRESHOLDS for b in BOOSTS]


def _exact_categories(products: Sequence[Product], depth: IntentDepth) -> set[str]:
    return {label for p in products if (label := label_at_depth(p.category, depth)) is not None}


def _count_prediction(labels: Sequence[str | None], exact: set[str], model: IntentModel) -> Prediction:
    """Categories by count in a list of hits, mixed with a little of the prior for the log-loss."""
    counts: dict[str, int] = {}
    for label in labels:
        if label is not None:
            counts[label] = counts.get(label, 0) + 1
    ranked = tuple(sorted(counts, key=lambda c: (-counts[c], labels.index(c))))
    prior = dict(zip(model.labels, np.exp(model.log_prior).tolist(), strict=True))
    total = max(sum(counts.values()), 1)
    mass = sum((1 - PRIOR_MIX) * counts.get(c, 0) / total + PRIOR_MIX * prior.get(c, 0.0) for c in exact)
    return Prediction(ranked, mass)


# Reranks a query's window (hits in the order and with the scores the sidecar would be sent) into ids.
WindowReranker = Callable[[str, Sequence[Hit]], list[str]]


def _ndcg_grid(
    query: str,
    window: Sequence[Hit],
    filtered: Sequence[Hit] | None,
    intent: IntentDistribution,
    gains: dict[str, float],
    depth: IntentDepth,
    rerank: WindowReranker | None = None,
) -> tuple[dict[tuple[float, float], float], dict[tuple[float, float], float]]:
    """NDCG@10 of the first stage, and of the served (reranked) window when a reranker is given,
    under every (boost, threshold) setting."""
    top = intent.top()
    scores: dict[tuple[float, float], float] = {}
    served: dict[tuple[float, float], float] = {}
    for boost, threshold in _grid():
        applied = filtered is not None and top is not None and threshold < 1.0 and top[1] >= threshold
        hits = filtered if applied and filtered is not None else window
        ranked = boost_hits(hits, intent, boost, depth)
        scores[(boost, threshold)] = ndcg_at_k([h.product.id for h in ranked], gains, K)
        if rerank is not None:
            served[(boost, threshold)] = ndcg_at_k(rerank(query, ranked), gains, K)
    return scores, served


Scores = Callable[[QueryIntent], dict[tuple[float, float], float]]


def first_stage(query: QueryIntent) -> dict[tuple[float, float], float]:
    """The first stage's NDCG@10 per setting (the front door's window boost and filter)."""
    return query.ndcg


def engine_boosts(intent: IntentDistribution, weight: float) -> tuple[CategoryBoost, ...]:
    """The engine-side boosts of a query's shown categories: weight x P(c | q) each."""
    return tuple(CategoryBoost(c, weight * p) for c, p in zip(intent.categories, intent.probabilities, strict=True))


def _engine_grid(
    engine: SearchEngine,
    query: RetrievalQuery,
    intent: IntentDistribution,
    gains: dict[str, float],
    off: tuple[float, float],
    rerank: WindowReranker | None,
) -> tuple[dict[tuple[float, float], float], dict[tuple[float, float], float]]:
    """NDCG@10 of the engine-boosted first stage (and its served ranking) per boost weight."""
    first: dict[tuple[float, float], float] = {OFF: off[0]}
    served: dict[tuple[float, float], float] = {OFF: off[1]} if rerank is not None else {}
    for boost in BOOSTS:
        if boost == 0.0:
            continue
        hits = engine.retrieve(replace(query, boosts=engine_boosts(intent, boost))).hits
        first[(boost, 1.0)] = ndcg_at_k([h.product.id for h in hits], gains, K)
        if rerank is not None:
            served[(boost, 1.0)] = ndcg_at_k(rerank(query.text, hits), gains, K)
    return first, served


def _choose(
    per_query: Sequence[QueryIntent], grid: Sequence[tuple[float, float]], scores: Scores
) -> tuple[float, float]:
    means = [float(np.mean([scores(q)[s] for q in per_query])) for s in grid]
    return grid[int(np.argmax(means))]  # argmax keeps the first (simplest) of equal means


def out_of_fold(
    per_query: Sequence[QueryIntent],
    grid: Sequence[tuple[float, float]],
    folds: int = FOLDS,
    seed: int = FOLD_SEED,
    scores: Scores = first_stage,
) -> tuple[list[float], list[tuple[float, float]]]:
    """Per-query NDCG@10 of the setting chosen on the other folds (queries in their given order),
    chosen and scored on `scores` (the first stage's by default, or the served ranking's)."""
    order = np.random.default_rng(seed).permutation(len(per_query))
    fold_of = np.empty(len(per_query), dtype=int)
    fold_of[order] = np.arange(len(per_query)) % folds
    values = [0.0] * len(per_query)
    chosen = []
    for fold in range(folds):
        train = [q for q, f in zip(per_query, fold_of, strict=True) if f != fold]
        setting = _choose(train, grid, scores)
        chosen.append(setting)
        for i, f in enumerate(fold_of):
            if f == fold:
                values[i] = scores(per_query[i])[setting]
    return values, chosen


def measure_intent(
    engine: SearchEngine,
    encoder: QueryEncoder,
    model: IntentModel,
    judgments: Judgments,
    window: int = 100,
    rerank: WindowReranker | None = None,
    reranker_name: str | None = None,
) -> IntentReport:
    """Accuracy and first-stage NDCG@10 with intent over the judged queries with exact products in the
    catalogue; with `rerank`, the served ranking's NDCG@10 under the same settings too."""
    per_query: list[QueryIntent] = []
    predict_ms: list[float] = []
    majority = tuple(model.labels[i] for i in np.argsort(-model.log_prior, kind="stable"))
    prior = np.exp(model.log_prior)
    index = {label: i for i, label in enumerate(model.labels)}
    for query, gains in judgments.gains.items():
        exact_ids = [pid for pid, gain in gains.items() if gain >= EXACT_GAIN]
        exact = _exact_categories(engine.get(exact_ids), model.depth)
        if not exact:
            continue
        vector = encoder.encode_one(query)
        started = time.perf_counter()
        intent = model.predict(vector, top=SHOWN_CATEGORIES)
        predict_ms.append((time.perf_counter() - started) * 1e3)
        probs = model.probabilities(vector)
        ranked = tuple(model.labels[i] for i in np.argsort(-probs, kind="stable")[:SHOWN_CATEGORIES])
        with_vectors = rerank is not None  # the served path sends the window's vectors (MMR/DPP)
        retrieved = engine.retrieve(
            RetrievalQuery(query, vector, "hybrid", window, Filters(), with_facets=True, with_vectors=with_vectors)
        )
        hits = retrieved.hits
        filters, category = intent_filters(Filters(), intent, min(THRESHOLDS))
        filtered = (
            engine.retrieve(RetrievalQuery(query, vector, "hybrid", window, filters, with_vectors=with_vectors)).hits
            if category
            else None
        )
        labels = [label_at_depth(h.product.category, model.depth) for h in hits[:BASELINE_WINDOW]]
        predictions = {
            "intent": Prediction(ranked, float(sum(probs[index[c]] for c in exact if c in index))),
            "majority": Prediction(
                majority[:SHOWN_CATEGORIES], float(sum(prior[index[c]] for c in exact if c in index))
            ),
            "first_stage_top10": _count_prediction(labels, exact, model),
        }
        top = intent.top()
        entry = QueryIntent(query, exact, predictions, top[1] if top else 0.0)
        entry.ndcg, entry.served = _ndcg_grid(query, hits, filtered, intent, gains, model.depth, rerank)
        plain = RetrievalQuery(query, vector, "hybrid", window, Filters(), with_vectors=with_vectors)
        off = (entry.ndcg[OFF], entry.served.get(OFF, 0.0))
        entry.engine, entry.engine_served = _engine_grid(engine, plain, intent, gains, off, rerank)
        shaped = shape_facets(retrieved.facets, Filters(), [h.product for h in hits])["category"]
        if shaped:
            entry.facet_top = {
                "count": shaped[0]["value"] in exact,
                "intent": intent_ordered_categories(shaped, intent)[0]["value"] in exact,
            }
        per_query.append(entry)
    report = IntentReport(
        model.depth,
        window,
        len(model.labels),
        per_query,
        float(np.median(predict_ms)) if predict_ms else 0.0,
        folds=max(1, min(FOLDS, len(per_query))),
        reranker=reranker_name if rerank is not None else None,
    )
    engine_grid = [(b, 1.0) for b in BOOSTS]
    report.out_of_fold[ENGINE_POLICY], report.chosen[ENGINE_POLICY] = out_of_fold(
        per_query, engine_grid, report.folds, scores=lambda q: q.engine
    )
    if rerank is not None:
        report.served_out_of_fold[ENGINE_POLICY], report.served_chosen[ENGINE_POLICY] = out_of_fold(
            per_query, engine_grid, report.folds, scores=lambda q: q.engine_served
        )
    for name, (boosts, thresholds) in POLICIES.items():
        grid = [(b, t) for t in thresholds for b in boosts]
        report.out_of_fold[name], report.chosen[name] = out_of_fold(per_query, grid, report.folds)
        if rerank is not None:
            report.served_out_of_fold[name], report.served_chosen[name] = out_of_fold(
                per_query, grid, report.folds, scores=lambda q: q.served
            )
    return report
