"""Pooling trade-off sweeps of disjoint query sets into one (`shoprank eval-pool`).

Twenty dev queries cannot resolve a 1% NDCG budget, and every judged query a released model
was trained on is one its diversity cannot be measured on fairly (its rerank order there is
fitted to the labels). Cross-fitting fixes both: train one model per part of the split
(`shoprank train --holdout train`, `--holdout dev`, the release for test), sweep each part
with the model that never saw it (`shoprank eval --split PART --sweep --json --cross-encoder
...`), then pool the reports here: every judged query counts, each reranked out of fold.

A pooled mean is the query-weighted mean of the reports' means, so the pooled relative
changes are exact (not an average of ratios). Per-query values are not in the reports, so
there are no pooled confidence intervals; each report keeps its own. The target and the
choice rule are those of evaluation/tradeoff.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evaluation.sweep_grid import RERANK_ONLY, SweepConfig
from evaluation.tradeoff import (
    MAX_NDCG_LOSS,
    MIN_COVERAGE_GAIN,
    TARGET_METRICS,
    choose_meeting_target,
    format_change,
    meets_target,
    most_coverage_within_budget,
    relative_change,
)
from shoprank.errors import UserInputError


class PoolError(UserInputError):
    """The reports cannot be pooled; the message says which and why."""


@dataclass(frozen=True)
class PooledPoint:
    """One configuration over every pooled query: pooled means and changes vs rerank-only."""

    label: str
    means: dict[str, float]
    changes: dict[str, float]
    config: SweepConfig

    def mean(self, metric: str) -> float:
        """The pooled mean of a metric."""
        return self.means[metric]

    @property
    def meets_target(self) -> bool:
        """NDCG@10 loss within the budget and both coverages up by the target."""
        return meets_target(*(self.changes[m] for m in TARGET_METRICS))

    @property
    def within_budget(self) -> bool:
        """NDCG@10 loss within the budget."""
        return meets_target(self.changes["ndcg@10"], math.inf, math.inf)

    def change(self, metric: str) -> float:
        """The relative change of a metric's pooled mean vs rerank-only."""
        return self.changes[metric]


@dataclass(frozen=True)
class PooledTradeoff:
    """One mode's sweep over the pooled queries."""

    mode: str
    queries: int
    parts: list[str]
    rerank_only: dict[str, float]
    points: list[PooledPoint]

    @property
    def query_count(self) -> int:
        """How many queries were pooled."""
        return self.queries

    @property
    def baseline(self) -> PooledPoint:
        """Rerank-only as a point (no change against itself)."""
        return PooledPoint(RERANK_ONLY.label, self.rerank_only, dict.fromkeys(self.rerank_only, 0.0), RERANK_ONLY)

    def chosen(self) -> PooledPoint | None:
        """The configuration meeting the target with the least NDCG@10 loss (None when none does)."""
        return choose_meeting_target(self.points, PooledPoint.change)

    def best_within_budget(self) -> PooledPoint | None:
        """Within the NDCG@10 budget, the configuration with the largest mean coverage gain."""
        return most_coverage_within_budget(self.points, PooledPoint.change)


def _weighted(values: Sequence[tuple[int, float]]) -> float:
    total = sum(n for n, _ in values)
    return sum(n * v for n, v in values) / total


def _part_name(report: Mapping[str, Any], index: int) -> str:
    model = report.get("models", {}).get("rerank", "?")
    return f"{report.get('split') or 'all'} ({model})" if "split" in report else f"report {index + 1} ({model})"


def pool_tradeoffs(reports: Sequence[Mapping[str, Any]]) -> dict[str, PooledTradeoff]:
    """Pool the `tradeoff` sections of `shoprank eval --sweep --json` reports, per mode they all have.

    Raises PoolError when a report has no sweep, the reports share a query, or their
    configurations differ.
    """
    if not reports:
        raise PoolError("give at least one `shoprank eval --sweep --json` report")
    for i, report in enumerate(reports):
        if not report.get("tradeoff"):
            raise PoolError(f"report {i + 1} has no trade-off sweep: run `shoprank eval --sweep --json`")
    modes = [m for m in reports[0]["tradeoff"] if all(m in r["tradeoff"] for r in reports)]
    if not modes:
        raise PoolError("the reports have no mode in common (judged / end_to_end)")
    parts = [_part_name(r, i) for i, r in enumerate(reports)]
    return {mode: _pool_mode(mode, [r["tradeoff"][mode] for r in reports], parts) for mode in modes}


def _pool_mode(mode: str, sweeps: Sequence[Mapping[str, Any]], parts: list[str]) -> PooledTradeoff:
    seen: dict[str, str] = {}
    for part, sweep in zip(parts, sweeps, strict=True):
        for query in sweep.get("query_texts", []):
            if query in seen:
                raise PoolError(f"{mode}: query {query!r} is in both {seen[query]} and {part}; pool disjoint splits")
            seen[query] = part
    labels = [p["label"] for p in sweeps[0]["points"]]
    for part, sweep in zip(parts[1:], sweeps[1:], strict=True):
        if [p["label"] for p in sweep["points"]] != labels:
            raise PoolError(f"{mode}: {part} swept other configurations than {parts[0]}; use the same sweep options")
    sizes = [int(s["queries"]) for s in sweeps]
    metrics = list(sweeps[0]["rerank_only"])
    base = {m: _weighted([(n, s["rerank_only"][m]) for n, s in zip(sizes, sweeps, strict=True)]) for m in metrics}
    points = []
    for i, label in enumerate(labels):
        means = {m: _weighted([(n, s["points"][i][m]) for n, s in zip(sizes, sweeps, strict=True)]) for m in metrics}
        changes = {m: relative_change(means[m], base[m]) for m in metrics}
        points.append(PooledPoint(label, means, changes, _config(sweeps[0]["points"][i])))
    return PooledTradeoff(mode, sum(sizes), parts, base, points)


def _config(point: Mapping[str, Any]) -> SweepConfig:
    """The sweep configuration a report's point was measured with."""
    try:
        return SweepConfig.from_dict(point)
    except KeyError as missing:
        label = point.get("label")
        raise PoolError(f"point {label!r} lacks {missing}: not a `shoprank eval --sweep --json` report") from None


def format_pooled(pooled: PooledTradeoff) -> str:
    """A terminal table: pooled means and changes vs rerank-only, and the choice."""
    header = ["configuration", "NDCG@10", "(chg)", "cat cov@10", "(chg)", "brand cov@10", "(chg)", "target"]
    rows = [header, ["rerank only", *[x for m in TARGET_METRICS for x in (f"{pooled.rerank_only[m]:.3f}", "")], ""]]
    for p in pooled.points:
        cells = [x for m in TARGET_METRICS for x in (f"{p.means[m]:.3f}", format_change(p.changes[m]))]
        rows.append([p.label, *cells, "met" if p.meets_target else ("budget" if p.within_budget else "-")])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        f"pooled trade-off, {pooled.mode}: {pooled.queries} queries from {', '.join(pooled.parts)} (target: NDCG@10 "
        f"loss <= {MAX_NDCG_LOSS:.0%}, category and brand coverage@10 each +{MIN_COVERAGE_GAIN:.0%}; "
        "budget = within the NDCG@10 loss only)"
    ]
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    chosen, best = pooled.chosen(), pooled.best_within_budget()
    if chosen:
        lines.append(f"  chosen: {chosen.label} (meets the target, least NDCG@10 loss)")
    else:
        lines.append(
            "  no configuration meets the target; within the NDCG@10 budget the largest mean coverage gain is "
            f"{best.label if best else 'none'}"
        )
    return "\n".join(lines)


def pooled_as_dict(pooled: PooledTradeoff) -> dict[str, Any]:
    """JSON-ready form of one mode's pooled sweep."""
    chosen, best = pooled.chosen(), pooled.best_within_budget()
    return {
        "queries": pooled.queries,
        "parts": pooled.parts,
        "rerank_only": pooled.rerank_only,
        "points": [
            {"label": p.label, **p.means, "relative": p.changes, "meets_target": p.meets_target} for p in pooled.points
        ],
        "chosen": chosen.label if chosen else None,
        "best_within_ndcg_budget": best.label if best else None,
    }
