"""The relevance–diversity trade-off: every diversity configuration over the same scored windows.

Each query is reranked once (evaluation/scored_windows.py); every configuration of the grid
(MMR, xQuAD and DPP over a range of strengths, hard brand/category caps, caps combined with
a method) is applied to the recorded windows with the sidecar's own `diversify()`, and the
first page is scored: NDCG@10, category and brand coverage@10, category entropy@10,
intra-list diversity and alpha-NDCG@10 over category aspects (evaluation/diversity_metrics.py),
beside rerank-only (relevance order). Strength 0 is rerank-only exactly.

End to end, the window holds products nobody judged (gain 0), and diversity draws from deeper
in the window, where more of them are: the share of unjudged products on the page and the
judged-only NDCG@10 (unjudged products removed before scoring: Sakai's condensed list) say how
much of an NDCG loss is relevance lost and how much is judgments missing. In judged mode every
candidate is judged and the two NDCGs are the same.

The target (issue 6): NDCG@10 at most 1% below rerank-only (relative, mean over queries)
while category coverage@10 and brand coverage@10 each rise at least 20% (relative). The
configuration chosen among those that meet it is the one that loses the least NDCG@10
(ties: the larger smaller-of-the-two coverage gains): choosing on dev queries, the point
farthest from the relevance limit is the one most likely to hold on unseen queries.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from evaluation.bootstrap import paired_difference
from evaluation.diversity_metrics import ProductAttributes, page_diversity
from evaluation.report import PAGE, ModeReport
from evaluation.scored_windows import ScoredWindow
from evaluation.sweep_grid import RERANK_ONLY, SweepConfig
from relevance.metrics import ndcg_at_k
from sidecar.diversify import DiversityParams, diversify

METRICS = (
    "ndcg@10",
    "category_coverage@10",
    "brand_coverage@10",
    "category_entropy@10",
    "ild@10",
    "alpha_ndcg@10",
    "unjudged@10",
    "judged_only_ndcg@10",
)
MAX_NDCG_LOSS = 0.01
TARGET_METRICS = ("ndcg@10", "category_coverage@10", "brand_coverage@10")
MIN_COVERAGE_GAIN = 0.20


def diversified_ranking(window: ScoredWindow, params: DiversityParams, k: int = PAGE) -> list[str]:
    """The first k results the sidecar would serve for this window under these parameters (the
    greedy fill is prefix-stable: the first page of k = window is the page of k = 10)."""
    result = diversify(
        window.relevance,
        k,
        params,
        embeddings=window.embeddings if params.needs_embeddings else None,
        brands=window.brands,
        categories=window.categories,
        query=window.query,
    )
    return [window.ids[i] for i in result.order]


def page_metrics(
    ranking: Sequence[str],
    gains: Mapping[str, float],
    products: Mapping[str, ProductAttributes],
    embeddings: Mapping[str, npt.NDArray[np.float32]],
) -> dict[str, float]:
    """Every sweep metric of the first page of a ranking (the whole diversified window: the
    judged-only NDCG reads past the page)."""
    page = page_diversity(ranking, products, gains, PAGE, embeddings)
    return {
        "ndcg@10": ndcg_at_k(ranking, gains, PAGE),
        "category_coverage@10": page.category_coverage,
        "brand_coverage@10": page.brand_coverage,
        "category_entropy@10": page.category_entropy,
        "ild@10": page.ild if page.ild is not None else 0.0,
        "alpha_ndcg@10": page.alpha_ndcg,
        "unjudged@10": sum(1 for pid in ranking[:PAGE] if pid not in gains) / PAGE,
        "judged_only_ndcg@10": ndcg_at_k([pid for pid in ranking if pid in gains], gains, PAGE),
    }


@dataclass
class SweepPoint:
    """Per-query values of every metric for one configuration (queries in the report's order)."""

    config: SweepConfig
    values: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METRICS})

    def mean(self, metric: str) -> float:
        """Mean over queries (nan without queries)."""
        values = self.values[metric]
        return float(np.mean(values)) if values else math.nan


def relative_change(value: float, baseline: float) -> float:
    """value / baseline - 1 (0 when both are 0, inf when only the baseline is 0)."""
    if baseline == 0.0:
        return 0.0 if value == 0.0 else math.inf
    return value / baseline - 1.0


def meets_target(ndcg_change: float, category_change: float, brand_change: float) -> bool:
    """NDCG@10 loss <= 1% and category and brand coverage@10 each up >= 20% (relative changes)."""
    slack = 1e-12  # relative changes of equal means come out a rounding error off
    return ndcg_change >= -MAX_NDCG_LOSS - slack and min(category_change, brand_change) >= MIN_COVERAGE_GAIN - slack


Point = TypeVar("Point")
# A point's relative change of a metric vs rerank-only (-0.01 = 1% lower).
Change = Callable[[Point, str], float]


def _coverage(point: Point, change: Change[Point]) -> tuple[float, float]:
    return change(point, "category_coverage@10"), change(point, "brand_coverage@10")


def choose_meeting_target(points: Sequence[Point], change: Change[Point]) -> Point | None:
    """The point that meets the target losing the least NDCG@10 (ties: the larger smaller coverage
    gain); None when none does. The one choice rule of a sweep and of a pool of sweeps."""
    meeting = [p for p in points if meets_target(change(p, "ndcg@10"), *_coverage(p, change))]
    return max(meeting, key=lambda p: (round(change(p, "ndcg@10"), 9), min(_coverage(p, change))), default=None)


def most_coverage_within_budget(points: Sequence[Point], change: Change[Point]) -> Point | None:
    """Within the NDCG@10 budget, the point with the largest mean coverage gain (None when none gains any)."""

    def mean_gain(p: Point) -> float:
        return float(np.mean(_coverage(p, change)))

    within = [p for p in points if meets_target(change(p, "ndcg@10"), math.inf, math.inf) and mean_gain(p) > 0.0]
    return max(within, key=lambda p: (round(mean_gain(p), 9), change(p, "ndcg@10")), default=None)


@dataclass
class TradeoffReport:
    """The sweep over one mode's queries: rerank-only and every configuration."""

    mode: str
    queries: list[str]
    baseline: SweepPoint
    points: list[SweepPoint]
    windows: list[ScoredWindow] = field(default_factory=list, repr=False)  # what was swept (not in as_dict)

    @property
    def query_count(self) -> int:
        """How many queries were swept."""
        return len(self.queries)

    def change(self, point: SweepPoint, metric: str) -> float:
        """Relative change of the mean vs rerank-only (-0.01 = 1% lower)."""
        return relative_change(point.mean(metric), self.baseline.mean(metric))

    def _coverage_changes(self, point: SweepPoint) -> tuple[float, float]:
        return self.change(point, "category_coverage@10"), self.change(point, "brand_coverage@10")

    def mean_coverage_gain(self, point: SweepPoint) -> float:
        """The mean of the relative category and brand coverage@10 gains."""
        return float(np.mean(self._coverage_changes(point)))

    def within_budget(self, point: SweepPoint) -> bool:
        """NDCG@10 at most 1% below rerank-only (relative)."""
        return meets_target(self.change(point, "ndcg@10"), math.inf, math.inf)

    def meets_target(self, point: SweepPoint) -> bool:
        """NDCG@10 loss <= 1% and category and brand coverage@10 each up >= 20% (relative)."""
        return meets_target(self.change(point, "ndcg@10"), *self._coverage_changes(point))

    def chosen(self) -> SweepPoint | None:
        """The configuration that meets the target losing the least NDCG@10 (None when none does)."""
        return choose_meeting_target(self.points, self.change)

    def best_within_budget(self) -> SweepPoint | None:
        """When nothing meets the target: the configuration within the NDCG@10 budget with the
        largest mean coverage gain (None when none gains any)."""
        return most_coverage_within_budget(self.points, self.change)

    def closest(self, n: int = 3) -> dict[str, list[str]]:
        """The best trade-off points either side of the target: most coverage (mean gain) within
        the NDCG budget, and least NDCG loss among those that reach the coverage gain."""
        within = [p for p in self.points if self.within_budget(p)]
        reaching = [p for p in self.points if meets_target(0.0, *self._coverage_changes(p))]
        within.sort(key=lambda p: -self.mean_coverage_gain(p))
        reaching.sort(key=lambda p: -self.change(p, "ndcg@10"))
        return {
            "most_coverage_within_ndcg_budget": [p.config.label for p in within[:n]],
            "least_ndcg_loss_reaching_coverage": [p.config.label for p in reaching[:n]],
        }

    def _point_dict(self, point: SweepPoint) -> dict[str, Any]:
        entry: dict[str, Any] = point.config.as_dict()
        entry.update({metric: point.mean(metric) for metric in METRICS})
        entry["relative"] = {metric: self.change(point, metric) for metric in METRICS}
        diff = paired_difference(point.values["ndcg@10"], self.baseline.values["ndcg@10"])
        entry["ndcg@10_difference_ci"] = [diff.low, diff.high]
        entry["meets_target"] = self.meets_target(point)
        return entry

    def as_dict(self) -> dict[str, Any]:
        """The `tradeoff` section of `shoprank eval --json` for this mode."""
        chosen, best = self.chosen(), self.best_within_budget()
        return {
            "queries": len(self.queries),
            "query_texts": list(self.queries),
            "target": {"max_ndcg_loss": MAX_NDCG_LOSS, "min_coverage_gain": MIN_COVERAGE_GAIN},
            "rerank_only": {metric: self.baseline.mean(metric) for metric in METRICS},
            "points": [self._point_dict(p) for p in self.points],
            "chosen": chosen.config.as_dict() if chosen else None,
            "best_within_ndcg_budget": best.config.as_dict() if best else None,
            "closest": self.closest(),
        }


def diversity_targets(modes: Mapping[str, ModeReport]) -> dict[str, bool]:
    """The diversity target for the `diversified` stage (the sidecar's default) vs `rerank`, per mode."""
    out = {}
    for name, report in modes.items():
        if "diversified" not in report.stages or "rerank" not in report.stages:
            continue
        result, base = report.stages["diversified"].values, report.stages["rerank"].values
        changes = [relative_change(float(np.mean(result[m])), float(np.mean(base[m]))) for m in TARGET_METRICS]
        key = f"{name}: diversified NDCG@10 within {MAX_NDCG_LOSS:.0%} of rerank, category and brand coverage@10 "
        out[key + f"+{MIN_COVERAGE_GAIN:.0%}"] = meets_target(*changes)
    return out


def run_sweep(
    mode: str,
    windows: Sequence[ScoredWindow],
    gains: Mapping[str, Mapping[str, float]],
    products: Mapping[str, ProductAttributes],
    configs: Sequence[SweepConfig],
) -> TradeoffReport:
    """Apply every configuration to every window and score the pages.

    gains: judged gains per query (unjudged = 0); products: brand and category of judged
    products that are not in a window (alpha-NDCG's ideal page needs them).
    """
    baseline = SweepPoint(RERANK_ONLY)
    points = [SweepPoint(config) for config in configs]
    for window in windows:
        judged = gains[window.query]
        attributes: dict[str, ProductAttributes] = dict(products)
        attributes.update(zip(window.ids, window.products, strict=True))
        vectors = dict(zip(window.ids, window.embeddings, strict=True)) if window.embeddings is not None else {}
        pages: dict[DiversityParams, list[str]] = {RERANK_ONLY.params: window.relevance_order()}
        for point in [baseline, *points]:
            params = point.config.params
            if params not in pages:
                pages[params] = diversified_ranking(window, params, len(window.ids))
            for metric, value in page_metrics(pages[params], judged, attributes, vectors).items():
                point.values[metric].append(value)
    return TradeoffReport(mode, [w.query for w in windows], baseline, points, list(windows))


def format_change(change: float) -> str:
    """E.g. "+12.3%" ("-" when not finite)."""
    return f"{change * 100:+.1f}%" if math.isfinite(change) else "-"


def format_tradeoff(report: TradeoffReport) -> str:
    """A terminal table of the sweep: means with the relative change vs rerank-only, and the
    configuration chosen (or the closest points when none meets the target)."""
    header = ["configuration", "NDCG@10", "(chg)", "cat cov@10", "(chg)", "brand cov@10", "(chg)"]
    header += ["cat entropy@10", "ILD@10", "alpha-NDCG@10", "unjudged@10", "judged-only NDCG@10", "target"]
    rows = [header]
    for point in [report.baseline, *report.points]:
        row = [point.config.label]
        for metric in ("ndcg@10", "category_coverage@10", "brand_coverage@10"):
            row += [f"{point.mean(metric):.3f}", format_change(report.change(point, metric))]
        row += [f"{point.mean(m):.3f}" for m in METRICS[3:]]
        row.append("" if point is report.baseline else ("met" if report.meets_target(point) else "-"))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        f"trade-off sweep, {report.mode}: {len(report.queries)} queries, rerank window diversified into a page "
        f"of {PAGE} (target: NDCG@10 loss <= {MAX_NDCG_LOSS:.0%}, category and brand coverage@10 each "
        f"+{MIN_COVERAGE_GAIN:.0%} or more, relative to rerank only)"
    ]
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    chosen = report.chosen()
    if chosen:
        lines.append(f"  chosen: {chosen.config.label} (meets the target, least NDCG@10 loss)")
    else:
        best = report.best_within_budget()
        lines.append(
            "  no configuration meets the target; within the NDCG@10 budget the largest mean coverage gain is "
            f"{best.config.label if best else 'none'}; closest:"
        )
        for name, labels in report.closest().items():
            lines.append(f"    {name.replace('_', ' ')}: {', '.join(labels) or '-'}")
    return "\n".join(lines)
