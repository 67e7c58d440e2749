"""A PNG of the report: NDCG@10 per stage with its bootstrap interval, one panel per mode."""

from __future__ import annotations

from pathlib import Path

from evaluation.report import ModeReport


def plot_report(modes: dict[str, ModeReport], path: Path, title: str = "") -> Path:
    """Write a bar chart of NDCG@10 (95% CI error bars) per stage for each mode; returns the path."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(modes), figsize=(6 * len(modes), 4.5), squeeze=False)
    for ax, (name, report) in zip(axes[0], modes.items(), strict=True):
        stages = list(report.stages)
        intervals = [report.interval(stage, "ndcg@10") for stage in stages]
        means = [i.mean for i in intervals]
        errors = [[i.mean - i.low for i in intervals], [i.high - i.mean for i in intervals]]
        colors = ["#9aa5b1" if s in ("bm25", "knn", "hybrid") else "#2f6fb0" for s in stages]
        ax.bar(stages, means, yerr=errors, capsize=4, color=colors)
        for x, mean in enumerate(means):
            ax.text(x, mean / 2, f"{mean:.3f}", ha="center", va="center", color="white", fontsize=8)
        ax.set_title(f"{name} ({len(report.queries)} queries)")
        ax.set_ylabel("NDCG@10 (ESCI gains), 95% CI")
        ax.set_ylim(0.0, 1.0)
        ax.tick_params(axis="x", rotation=30)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
