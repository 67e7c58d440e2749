"""Out-of-fold evaluation of the learning-to-rank stage over every judged query (`shoprank eval-ltr`).

Queries are split into k folds (seeded); each fold's queries are ranked by a model trained on
the other folds only, with its hyperparameters chosen inside those folds (an inner k-fold over
the training queries: the reported folds never choose anything). Baselines come from the same
cached windows (evaluation.ltr_windows): BM25, kNN, hybrid, each cross-encoder alone and
blended as the sidecar blends. Every figure is NDCG@10 with ESCI gains and a bootstrap CI
over queries, with paired differences.

Which figures are clean: the released cross-encoder was fine-tuned on the 70 train + dev
queries of the seeded split, so any stage that reads its score is in sample there and only
its figures on the 30 test queries are honest; the zero-shot cross-encoder, the first stages
and every LTR model's own training are out of sample on all 100.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from evaluation.bootstrap import Interval, bootstrap_ci, paired_difference
from evaluation.ltr_windows import FINE_TUNED, ZERO_SHOT, Window, WindowSet, cut, per_pair_cpu_ms
from evaluation.stages import MODES
from relevance.judgments import split_queries
from relevance.metrics import ndcg_at_k
from sidecar.blend import blend
from sidecar.ltr_features import CROSS_ENCODER_FEATURES, FEATURES, window_features
from training.ltr import PARAM_GRID, LtrParams, RankingData, fit, params_from, predict

K = 10
FOLD_SEED = 20261204
FIRST_STAGES = ("bm25", "knn", "hybrid")


@dataclass(frozen=True)
class Variant:
    """An LTR configuration: which features, fed by which cross-encoder (None: no CE features)."""

    name: str
    cross_encoder: str | None

    @property
    def features(self) -> tuple[str, ...]:
        """The feature columns the model reads."""
        if self.cross_encoder is None:
            return tuple(f for f in FEATURES if f not in CROSS_ENCODER_FEATURES)
        return FEATURES


VARIANTS = (
    Variant("ltr_no_ce", None),
    Variant("ltr_zero_shot_ce", ZERO_SHOT),
    Variant("ltr_fine_tuned_ce", FINE_TUNED),
)
# Stages whose figures are honest only on the released model's test queries.
IN_SAMPLE_ON_TRAIN_DEV = ("rerank_alone", "blend", "ltr_fine_tuned_ce")


def folds(queries: Sequence[str], k: int, seed: int = FOLD_SEED) -> list[list[str]]:
    """k disjoint folds of the queries, seeded; sizes differ by at most one."""
    if not 2 <= k <= len(queries):
        raise ValueError(f"folds must be between 2 and the number of queries ({len(queries)}), got {k}")
    order = list(queries)
    np.random.default_rng(seed).shuffle(order)
    return [order[i::k] for i in range(k)]


def splits(queries: Sequence[str], k: int, seed: int = FOLD_SEED) -> Iterator[tuple[list[str], list[str]]]:
    """(training queries, held-out queries) per fold; a held-out query is never in its training set."""
    parts = folds(queries, k, seed)
    for i, held in enumerate(parts):
        train = [q for j, part in enumerate(parts) if j != i for q in part]
        assert not set(train) & set(held)
        yield train, held


@dataclass
class FeatureStore:
    """Feature matrices of the windows, computed once per (mode, query, cross-encoder, size)."""

    windows: WindowSet
    _cache: dict[tuple[str, str, str | None, int], npt.NDArray[np.float64]] = field(default_factory=dict)

    def window(self, mode: str, query: str, size: int) -> Window:
        """A query's window in a mode, cut to `size` candidates."""
        return cut(self.windows.windows[mode][query], size)

    def matrix(self, mode: str, query: str, cross_encoder: str | None, size: int) -> npt.NDArray[np.float64]:
        """The window's window_features() matrix (CE features from `cross_encoder`, or NaN)."""
        key = (mode, query, cross_encoder, size)
        if key not in self._cache:
            w = self.window(mode, query, size)
            self._cache[key] = window_features(
                query,
                [self.windows.products[pid] for pid in w.ids],
                w.first_stage,
                w.logits[cross_encoder] if cross_encoder else None,
                w.cosines,
            )
        return self._cache[key]

    def gains(self, mode: str, query: str, size: int) -> list[float]:
        """ESCI gain per candidate of the cut window (unjudged: 0)."""
        judged = self.windows.gains[query]
        return [judged.get(pid, 0.0) for pid in self.window(mode, query, size).ids]


def _ndcg(ids: Sequence[str], judged: Mapping[str, float]) -> float:
    return ndcg_at_k(list(ids), judged, K)


def reorder(window: Window, scores: npt.ArrayLike, full: Window) -> list[str]:
    """The cut window in score order (ties: first-stage order), then the rest of the full window."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    head = [window.ids[i] for i in order]
    return head + list(full.ids[len(window.ids) :])


class OutOfFold:
    """Nested out-of-fold LTR scoring over one window set."""

    def __init__(self, windows: WindowSet, k: int = 5, inner_k: int = 3, seed: int = FOLD_SEED) -> None:
        self.windows = windows
        self.store = FeatureStore(windows)
        self.k = k
        self.inner_k = inner_k
        self.seed = seed
        self.queries = [q for q in windows.queries if all(q in windows.windows[m] for m in MODES)]
        self.chosen: dict[str, list[dict[str, Any]]] = {}

    def _data(self, queries: Sequence[str], variant: Variant, size: int) -> RankingData:
        rows = []
        for mode in MODES:
            for q in queries:
                s = size if mode == "end_to_end" else 10**6
                rows.append((self.store.matrix(mode, q, variant.cross_encoder, s), self.store.gains(mode, q, s)))
        return RankingData.stack(rows)

    def _ranked(self, booster: Any, variant: Variant, mode: str, query: str, size: int) -> list[str]:
        s = size if mode == "end_to_end" else 10**6
        scores = predict(booster, self.store.matrix(mode, query, variant.cross_encoder, s), variant.features)
        return reorder(self.store.window(mode, query, s), scores, self.windows.windows[mode][query])

    def _score(self, booster: Any, variant: Variant, queries: Sequence[str], size: int) -> float:
        values = [
            _ndcg(self._ranked(booster, variant, mode, q, size), self.windows.gains[q])
            for mode in MODES
            for q in queries
        ]
        return float(np.mean(values))

    def choose(self, train: Sequence[str], variant: Variant, size: int) -> LtrParams:
        """The grid point with the best inner out-of-fold NDCG@10 (both modes) over the training queries."""
        best, best_score = PARAM_GRID[0], -1.0
        for params in PARAM_GRID:
            inner = [
                self._score(fit(self._data(t, variant, size), variant.features, params, self.seed), variant, h, size)
                for t, h in splits(train, self.inner_k, self.seed + 1)
            ]
            score = float(np.mean(inner))
            if score > best_score:
                best, best_score = params, score
        return best

    def rankings(
        self, variant: Variant, size: int = 10**6, reuse_choice: bool = False
    ) -> dict[str, dict[str, list[str]]]:
        """mode -> query -> out-of-fold ranking of one variant (end-to-end windows cut to `size`).

        reuse_choice: take each fold's parameters from this variant's full-window run (chosen inside
        the same training folds) instead of choosing again: the frontier's smaller windows then cost
        one fit per fold.
        """
        out: dict[str, dict[str, list[str]]] = {m: {} for m in MODES}
        earlier = self.chosen.get(f"{variant.name}@{10**6}", []) if reuse_choice else []
        record = self.chosen.setdefault(f"{variant.name}@{size}", [])
        for fold, (train, held) in enumerate(splits(self.queries, self.k, self.seed)):
            params = params_from(earlier[fold]["params"]) if earlier else self.choose(train, variant, size)
            record.append({"fold": fold, "held_out": len(held), "params": params.as_dict()})
            booster = fit(self._data(train, variant, size), variant.features, params, self.seed)
            for mode in MODES:
                for q in held:
                    out[mode][q] = self._ranked(booster, variant, mode, q, size)
        return out


def baseline_rankings(
    store: FeatureStore, queries: Sequence[str], blend_weight: float, size: int = 10**6
) -> dict[str, dict[str, dict[str, list[str]]]]:
    """stage -> mode -> query -> ranking for the first stages and the cross-encoder stages."""
    ws = store.windows
    out: dict[str, dict[str, dict[str, list[str]]]] = {}
    for stage in FIRST_STAGES:
        out[stage] = {m: {q: ws.rankings[m][stage][q] for q in queries} for m in MODES}
    scorers: dict[str, Callable[[Window], npt.NDArray[np.float64]]] = {
        "rerank_alone": lambda w: np.asarray(w.logits[FINE_TUNED]),
        "blend": lambda w: np.asarray(blend(np.asarray(w.logits[FINE_TUNED]), np.asarray(w.first_stage), blend_weight)),
        "zero_shot_alone": lambda w: np.asarray(w.logits[ZERO_SHOT]),
        "zero_shot_blend": lambda w: np.asarray(
            blend(np.asarray(w.logits[ZERO_SHOT]), np.asarray(w.first_stage), blend_weight)
        ),
    }
    for stage, score in scorers.items():
        out[stage] = {}
        for mode in MODES:
            s = size if mode == "end_to_end" else 10**6
            out[stage][mode] = {
                q: reorder(store.window(mode, q, s), score(store.window(mode, q, s)), ws.windows[mode][q])
                for q in queries
            }
    return out


@dataclass(frozen=True)
class StageFigures:
    """One stage's NDCG@10 in one mode over one query set, with paired differences."""

    ndcg: Interval
    versus: dict[str, Interval]
    per_query: list[float]


def figures(
    rankings: Mapping[str, Mapping[str, Mapping[str, list[str]]]],
    gains: Mapping[str, Mapping[str, float]],
    queries: Sequence[str],
    references: Sequence[str],
) -> dict[str, dict[str, StageFigures]]:
    """mode -> stage -> figures over `queries`, with differences against each reference stage."""
    out: dict[str, dict[str, StageFigures]] = {}
    for mode in MODES:
        per = {s: [_ndcg(r[mode][q], gains[q]) for q in queries] for s, r in rankings.items()}
        out[mode] = {
            s: StageFigures(
                bootstrap_ci(v),
                {ref: paired_difference(v, per[ref]) for ref in references if ref in per and ref != s},
                v,
            )
            for s, v in per.items()
        }
    return out


def best_first_stage(report: Mapping[str, StageFigures]) -> str:
    """The first stage with the highest mean NDCG@10."""
    return max(FIRST_STAGES, key=lambda s: report[s].ndcg.mean)


def test_queries(queries: Sequence[str]) -> list[str]:
    """The queries of the released cross-encoder's test part (seeded by-query split)."""
    return [q for q in queries if q in set(split_queries(queries).test)]


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    """A call's result and its wall seconds."""
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def cpu_ms_per_search(windows: WindowSet, scorer: str | None, size: int) -> float:
    """Cross-encoder CPU milliseconds a search costs at a rerank window of `size` (0 without one)."""
    if scorer is None:
        return 0.0
    e2e = list(windows.windows["end_to_end"].values())
    return per_pair_cpu_ms(e2e, scorer) * float(np.mean([min(size, len(w.ids)) for w in e2e]))
