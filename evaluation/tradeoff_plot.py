"""A PNG of the relevance–diversity trade-off: NDCG@10 against category and brand coverage@10.

One row per mode, two panels per row (x = category coverage@10, x = brand coverage@10); one
curve per method through its strengths (labelled at each point), the caps as their own point
set, rerank-only as a star; the target region (NDCG@10 within 1% of rerank-only, coverage
+20%) is shaded; a red square marks the configuration that meets the target losing the least
NDCG@10, or, when none does, the one with the most coverage within the NDCG budget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from evaluation.sweep_grid import SweepConfig
from evaluation.tradeoff import MAX_NDCG_LOSS, MIN_COVERAGE_GAIN


class CurvePoint(Protocol):
    """One configuration's point: what it is and its mean metrics (a SweepPoint, a PooledPoint)."""

    @property
    def config(self) -> SweepConfig: ...
    def mean(self, metric: str) -> float: ...


class Curves(Protocol):
    """One mode's sweep as the plot reads it (a TradeoffReport, a PooledTradeoff)."""

    @property
    def baseline(self) -> CurvePoint: ...
    @property
    def points(self) -> Sequence[CurvePoint]: ...
    @property
    def query_count(self) -> int: ...
    def chosen(self) -> CurvePoint | None: ...
    def best_within_budget(self) -> CurvePoint | None: ...


COLORS = {
    "mmr": "#2f6fb0",
    "xquad": "#d9822b",
    "xquad[brand]": "#b8860b",
    "xquad[category+brand]": "#e74c3c",
    "dpp": "#3d9a50",
    "caps": "#8e44ad",
    "mmr+caps": "#7f8c8d",
}
# MMR/DPP on the attribute-mixed similarity ("dpp[attributes 0.75]"): a darker shade of the method's.
MIXED_COLORS = {"mmr": "#0b3d91", "dpp": "#145a32"}


def _color(family: str) -> str:
    method, _, variant = family.partition("[")
    if variant.startswith("attributes") and method in MIXED_COLORS:
        return MIXED_COLORS[method]
    return COLORS.get(family, "#555555")


COVERAGE_AXES = (("category_coverage@10", "category coverage@10"), ("brand_coverage@10", "brand coverage@10"))


def _families(report: Curves) -> dict[str, list[CurvePoint]]:
    families: dict[str, list[CurvePoint]] = {}
    for point in report.points:
        families.setdefault(point.config.family, []).append(point)
    return families


def _point_label(point: CurvePoint) -> str:
    params = point.config.params
    if point.config.family == "caps":
        return point.config.label.removeprefix("caps ")
    return f"{params.strength:g}"


def plot_tradeoff(reports: Mapping[str, Curves], path: Path, title: str = "") -> Path:
    """Write the trade-off curves of every mode's sweep; returns the path."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(reports), 2, figsize=(13, 5 * len(reports)), squeeze=False)
    for row, (mode, report) in zip(axes, reports.items(), strict=True):
        base_ndcg = report.baseline.mean("ndcg@10")
        for ax, (metric, name) in zip(row, COVERAGE_AXES, strict=True):
            base_cov = report.baseline.mean(metric)
            ax.axhspan(base_ndcg * (1 - MAX_NDCG_LOSS), base_ndcg * 1.5 + 0.05, color="#e8f5e9", zorder=0)
            ax.axvspan(base_cov * (1 + MIN_COVERAGE_GAIN), 1.0, color="#e3f2fd", alpha=0.6, zorder=0)
            for family, points in _families(report).items():
                xs = [p.mean(metric) for p in points]
                ys = [p.mean("ndcg@10") for p in points]
                color = _color(family)
                style = "o" if family == "caps" else "o-"
                ax.plot(xs, ys, style, color=color, label=family, markersize=4, linewidth=1.4)
                for point, x, y in zip(points, xs, ys, strict=True):
                    ax.annotate(
                        _point_label(point), (x, y), fontsize=6, color=color, xytext=(3, 3), textcoords="offset points"
                    )
            ax.plot([base_cov], [base_ndcg], "*", color="black", markersize=12, label="rerank only")
            chosen = report.chosen()
            marked, why = (chosen, "meets the target") if chosen else (report.best_within_budget(), "best within 1%")
            if marked:
                ax.plot(
                    [marked.mean(metric)],
                    [marked.mean("ndcg@10")],
                    "s",
                    mfc="none",
                    mec="red",
                    markersize=11,
                    label=f"{why}: {marked.config.label}",
                )
            ys_all = [p.mean("ndcg@10") for p in report.points] + [base_ndcg]
            ax.set_ylim(min(ys_all) - 0.02, max(ys_all) + 0.02)
            ax.set_xlim(0.0, 1.0)
            ax.set_xlabel(name)
            ax.set_ylabel("NDCG@10 (ESCI gains)")
            ax.set_title(f"{mode}: {report.query_count} queries")
            ax.grid(alpha=0.3)
        row[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(title or "relevance-diversity trade-off (green: NDCG within 1%, blue: coverage +20%)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
