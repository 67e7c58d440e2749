"""The evaluation report: per-stage metrics with bootstrap intervals, baseline beside result.

Per query and stage: NDCG@10, NDCG@5, MRR, first-stage recall@N, and the diversity of the
first page (category and brand coverage@10, intra-list diversity, alpha-NDCG@10 over category
aspects; evaluation/diversity_metrics.py). Means come with
bootstrap intervals over queries; comparisons are paired differences on the same queries.
`as_dict` is the `--json` output, `format_table` the terminal table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from evaluation.bootstrap import Interval, bootstrap_ci, paired_difference
from evaluation.diversity_metrics import page_diversity
from evaluation.stages import FIRST_STAGES, StageRun
from relevance.judgments import Judgments
from relevance.metrics import ndcg_at_k, recall_at_n, reciprocal_rank
from shoprank.schema import Product

PAGE = 10
RELEVANCE_METRICS = ("ndcg@10", "ndcg@5", "mrr")
DIVERSITY_METRICS = ("category_coverage@10", "brand_coverage@10", "ild@10", "alpha_ndcg@10")

# (result, baseline) pairs whose paired NDCG@10 difference the report states, when both ran.
COMPARISONS: tuple[tuple[str, str], ...] = (
    ("hybrid", "bm25"),
    ("hybrid", "knn"),
    ("rerank", "bm25"),
    ("rerank", "knn"),
    ("rerank", "hybrid"),
    ("rerank", "rerank_zero_shot"),
    ("rerank_fp32", "rerank"),
    ("diversified", "rerank"),
)


def page_diversity_columns(
    ranking: Sequence[str],
    products: Mapping[str, Product],
    gains: Mapping[str, float],
    embeddings: Mapping[str, npt.NDArray[np.float32]],
) -> dict[str, float]:
    """The diversity columns of a first page (definitions in evaluation/diversity_metrics.py)."""
    page = page_diversity(ranking, products, gains, PAGE, embeddings)
    return {
        "category_coverage@10": page.category_coverage,
        "brand_coverage@10": page.brand_coverage,
        "ild@10": page.ild if page.ild is not None else 0.0,
        "alpha_ndcg@10": page.alpha_ndcg,
    }


@dataclass
class StageScores:
    """Per-query values of each metric for one stage (queries in the mode's order)."""

    values: dict[str, list[float]] = field(default_factory=dict)
    seconds_per_query: float = 0.0
    model_version: str = ""


def score_stage(
    run: StageRun,
    judgments: Judgments,
    products: Mapping[str, Product],
    embeddings: Mapping[str, npt.NDArray[np.float32]],
    recall_n: int | None,
) -> StageScores:
    """Every metric for every query of a stage run."""
    scores = StageScores(model_version=run.model_version)
    names = [*RELEVANCE_METRICS, *([f"recall@{recall_n}"] if recall_n else []), *DIVERSITY_METRICS]
    scores.values = {name: [] for name in names}
    for query in judgments.queries:
        ranking = run.rankings.get(query, [])
        judged = judgments.gains[query]
        scores.values["ndcg@10"].append(ndcg_at_k(ranking, judged, 10))
        scores.values["ndcg@5"].append(ndcg_at_k(ranking, judged, 5))
        scores.values["mrr"].append(reciprocal_rank(ranking, judged))
        if recall_n:
            scores.values[f"recall@{recall_n}"].append(recall_at_n(ranking, judged, recall_n))
        for name, value in page_diversity_columns(ranking, products, judged, embeddings).items():
            scores.values[name].append(value)
    scores.seconds_per_query = run.seconds / max(len(judgments.queries), 1)
    return scores


@dataclass
class ModeReport:
    """All stages of one mode over the same queries."""

    mode: str
    queries: list[str]
    stages: dict[str, StageScores]
    notes: list[str] = field(default_factory=list)

    def interval(self, stage: str, metric: str) -> Interval:
        """Mean and bootstrap interval of a metric for a stage."""
        return bootstrap_ci(self.stages[stage].values[metric])

    def difference(self, result: str, baseline: str, metric: str = "ndcg@10") -> Interval:
        """Paired difference result - baseline over the same queries."""
        return paired_difference(self.stages[result].values[metric], self.stages[baseline].values[metric])

    def comparisons(self) -> list[tuple[str, str]]:
        """The (result, baseline) pairs that both ran in this mode."""
        pairs = [(r, b) for r, b in COMPARISONS if r in self.stages and b in self.stages]
        best = self.best_first_stage()
        if "rerank" in self.stages and best and ("rerank", best) not in pairs:
            pairs.append(("rerank", best))
        return pairs

    def best_first_stage(self, metric: str = "ndcg@10") -> str | None:
        """The first stage with the highest mean (the baseline a reranker must beat)."""
        firsts = [s for s in FIRST_STAGES if s in self.stages]
        if not firsts:
            return None
        return max(firsts, key=lambda s: float(np.mean(self.stages[s].values[metric] or [0.0])))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: per stage the means, with intervals under "ci"; paired comparisons."""
        stages: dict[str, Any] = {}
        for name, scores in self.stages.items():
            entry: dict[str, Any] = {}
            ci: dict[str, list[float | None]] = {}
            for metric, values in scores.values.items():
                interval = bootstrap_ci(values)
                entry[metric] = _finite(interval.mean)
                ci[metric] = [_finite(interval.low), _finite(interval.high)]
            entry["ci"] = ci
            entry["seconds_per_query"] = scores.seconds_per_query
            if scores.model_version:
                entry["model_version"] = scores.model_version
            stages[name] = entry
        comparisons = []
        for result, baseline in self.comparisons():
            diff = self.difference(result, baseline)
            comparisons.append(
                {
                    "result": result,
                    "baseline": baseline,
                    "metric": "ndcg@10",
                    "difference": diff.mean,
                    "ci": [diff.low, diff.high],
                    "excludes_zero": diff.excludes_zero(),
                }
            )
        return {
            "queries": len(self.queries),
            "stages": stages,
            "comparisons": comparisons,
            "best_first_stage": self.best_first_stage(),
            "notes": self.notes,
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _cell(interval: Interval) -> str:
    if not math.isfinite(interval.mean):
        return "-"
    return f"{interval.mean:.3f} [{interval.low:.3f}, {interval.high:.3f}]"


def format_table(report: ModeReport) -> str:
    """A terminal table: every stage with its NDCG@10 interval and the other metrics, then the
    paired differences (result vs baseline)."""
    metrics: list[str] = []
    for scores in report.stages.values():
        metrics += [m for m in scores.values if m != "ndcg@10" and m not in metrics]
    header = ["stage", "NDCG@10 [95% CI]", *metrics, "ms/query"]
    rows = [header]
    for name, scores in report.stages.items():
        row = [name, _cell(report.interval(name, "ndcg@10"))]
        row += [f"{float(np.mean(scores.values[m])):.3f}" if scores.values.get(m) else "-" for m in metrics]
        row.append(f"{scores.seconds_per_query * 1e3:.0f}")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [f"{report.mode}: {len(report.queries)} queries"]
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.append("  paired NDCG@10 differences (result - baseline, 95% bootstrap CI over queries):")
    for result, baseline in report.comparisons():
        diff = report.difference(result, baseline)
        mark = "CI excludes 0" if diff.excludes_zero() else "CI includes 0"
        lines.append(f"    {result:<16} vs {baseline:<16} {diff.mean:+.3f} [{diff.low:+.3f}, {diff.high:+.3f}]  {mark}")
    lines += [f"  note: {note}" for note in report.notes]
    return "\n".join(lines)
