"""The `shoprank eval-ltr` report: every stage out of fold, and the window/cost frontier.

Two query sets: all judged queries (a stage that reads the released cross-encoder is marked
in sample there) and the released model's test queries (every stage out of sample). The
frontier prices each rerank window by the cross-encoder's measured CPU time per pair.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.evaluate import hardware
from evaluation.ltr_oof import (
    FIRST_STAGES,
    IN_SAMPLE_ON_TRAIN_DEV,
    VARIANTS,
    OutOfFold,
    StageFigures,
    Variant,
    baseline_rankings,
    best_first_stage,
    cpu_ms_per_search,
    figures,
    splits,
    timed,
)
from evaluation.ltr_windows import FINE_TUNED, ZERO_SHOT, WindowSet, cut
from evaluation.stages import MODES
from relevance.judgments import normalise_query
from sidecar.ltr_features import window_features
from training.ltr import PARAM_GRID, fit, predict

FRONTIER_WINDOWS = (20, 30, 50, 100)
STAGE_ORDER = (
    *FIRST_STAGES,
    "zero_shot_alone",
    "zero_shot_blend",
    "rerank_alone",
    "blend",
    "ltr_no_ce",
    "ltr_zero_shot_ce",
    "ltr_fine_tuned_ce",
)
# Cross-encoder each stage pays for (frontier cost); LTR without one pays only for its features.
STAGE_SCORER = {
    "zero_shot_blend": ZERO_SHOT,
    "blend": FINE_TUNED,
    "ltr_no_ce": None,
    "ltr_zero_shot_ce": ZERO_SHOT,
    "ltr_fine_tuned_ce": FINE_TUNED,
}


@dataclass
class LtrReport:
    """Figures per query set and mode, the frontier, and what they were measured with."""

    sets: dict[str, dict[str, dict[str, StageFigures]]]  # set -> mode -> stage -> figures
    frontier: list[dict[str, Any]]
    info: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """JSON form (docs/results/ltr.json)."""
        return {
            "sets": {
                name: {
                    mode: {
                        stage: {
                            "ndcg@10": f.ndcg.as_dict(),
                            "minus": {ref: d.as_dict() for ref, d in f.versus.items()},
                            "clean": name == "test" or stage not in IN_SAMPLE_ON_TRAIN_DEV,
                        }
                        for stage, f in stages.items()
                    }
                    for mode, stages in modes.items()
                }
                for name, modes in self.sets.items()
            },
            "frontier": self.frontier,
            **self.info,
        }

    def format(self) -> str:
        """Terminal tables."""
        lines = [f"{k}: {v}" for k, v in self.info.items() if isinstance(v, str | int | float)]
        for name, modes in self.sets.items():
            for mode, stages in modes.items():
                best = best_first_stage(stages)
                lines += ["", f"{name} queries ({stages[best].ndcg.n}), {mode}: NDCG@10 [95% CI], out of fold"]
                lines.append(f"  {'stage':<20} {'NDCG@10':<24} {'- ' + best:<26} {'- blend':<26}")
                for stage in STAGE_ORDER:
                    if stage not in stages:
                        continue
                    f = stages[stage]
                    mark = " (in sample on train+dev)" if name == "all" and stage in IN_SAMPLE_ON_TRAIN_DEV else ""
                    lines.append(
                        f"  {stage:<20} {_ci(f.ndcg):<24} {_diff(f.versus.get(best)):<26} "
                        f"{_diff(f.versus.get('blend')):<26}{mark}"
                    )
        lines += [
            "",
            "frontier (end to end, all queries; CPU ms per search: the cross-encoder at its measured CPU per pair, "
            "plus for LTR its features, trees and query embedding):",
        ]
        for row in self.frontier:
            flag = "" if row["clean"] else "  (in sample)"
            lines.append(
                f"  window {row['window']:>3}  {row['stage']:<18} NDCG@10 {row['ndcg@10']:.3f}  "
                f"- hybrid {row['minus_hybrid']['mean']:+.3f} [{row['minus_hybrid']['low']:+.3f}, "
                f"{row['minus_hybrid']['high']:+.3f}]  test {row.get('test_ndcg@10', float('nan')):.3f}  "
                f"CPU {row['cpu_ms']:.0f} ms{flag}"
            )
        return "\n".join(lines)


def _ci(i: Any) -> str:
    return f"{i.mean:.3f} [{i.low:.3f}, {i.high:.3f}]"


def _diff(i: Any) -> str:
    return "" if i is None else f"{i.mean:+.3f} [{i.low:+.3f}, {i.high:+.3f}]"


def run_report(
    windows: WindowSet,
    trained: set[str],
    blend_weight: float,
    k: int = 5,
    frontier_windows: Sequence[int] = FRONTIER_WINDOWS,
    query_embed_ms: float = 0.0,
) -> LtrReport:
    """Out-of-fold figures of every stage and the frontier over the cached windows."""
    oof = OutOfFold(windows, k=k)
    queries = oof.queries
    test = [q for q in queries if normalise_query(q) not in trained]
    rankings = baseline_rankings(oof.store, queries, blend_weight)
    seconds: dict[str, float] = {}
    for variant in VARIANTS:
        rankings[variant.name], seconds[variant.name] = timed(lambda v=variant: oof.rankings(v))  # type: ignore[misc]
    references = ("hybrid", "knn", "bm25", "blend", "zero_shot_blend")
    sets = {"all": figures(rankings, windows.gains, queries, references)}
    if test:
        sets["test"] = figures(rankings, windows.gains, test, references)
    full = {v.name: rankings[v.name] for v in VARIANTS}
    ltr_ms = ltr_cpu_ms(oof, frontier_windows) | {"query_embedding": query_embed_ms}
    largest = int(windows.info.get("rerank_window", 100))
    sizes = [min(s, largest) for s in frontier_windows]
    frontier = _frontier(oof, queries, test, full, blend_weight, sizes, largest, ltr_ms)
    info = {
        "queries": len(queries),
        "test_queries": len(test),
        "folds": k,
        "inner_folds": oof.inner_k,
        "fold_seed": oof.seed,
        "blend_weight": blend_weight,
        "hardware": hardware(),
        "windows": windows.info,
        "chosen_params": oof.chosen,
        "fit_seconds": {n: round(s, 1) for n, s in seconds.items()},
        "ltr_cpu_ms_per_search": ltr_ms,
        "cpu_ms_per_pair": {
            n: per for n in (FINE_TUNED, ZERO_SHOT) if (per := cpu_ms_per_search(windows, n, 1)) is not None
        },
    }
    return LtrReport(sets, frontier, info)


def _frontier(
    oof: OutOfFold,
    queries: Sequence[str],
    test: Sequence[str],
    full: Mapping[str, Mapping[str, Mapping[str, list[str]]]],
    blend_weight: float,
    sizes: Sequence[int],
    largest: int,
    ltr_ms: Mapping[str, float],
) -> list[dict[str, Any]]:
    """End-to-end NDCG@10 and CE CPU per search of each ranking stage at each rerank window."""
    rows = []
    gains = oof.windows.gains
    for size in sizes:
        rankings: dict[str, Mapping[str, Mapping[str, list[str]]]] = {}
        base = baseline_rankings(oof.store, queries, blend_weight, size)
        rankings.update({s: base[s] for s in ("hybrid", "blend", "zero_shot_blend")})
        for variant in VARIANTS:
            # The recorded window is the full-window run's (end to end; judged lists are never cut).
            rankings[variant.name] = full[variant.name] if size >= largest else oof.rankings(variant, size, True)
        e2e = figures(rankings, gains, queries, ("hybrid",))
        e2e_test = figures(rankings, gains, test, ("hybrid",)) if test else None
        for stage in ("blend", "zero_shot_blend", *(v.name for v in VARIANTS)):
            f = e2e["end_to_end"][stage]
            rows.append(
                {
                    "window": size,
                    "stage": stage,
                    "ndcg@10": f.ndcg.mean,
                    "minus_hybrid": f.versus["hybrid"].as_dict(),
                    **(
                        {
                            "test_ndcg@10": e2e_test["end_to_end"][stage].ndcg.mean,
                            "test_minus_hybrid": e2e_test["end_to_end"][stage].versus["hybrid"].as_dict(),
                        }
                        if e2e_test
                        else {}
                    ),
                    "cpu_ms": cpu_ms_per_search(oof.windows, STAGE_SCORER[stage], size)
                    + _stage_ms(stage, size, ltr_ms),
                    "cross_encoder_cpu_ms": cpu_ms_per_search(oof.windows, STAGE_SCORER[stage], size),
                    "clean": stage not in IN_SAMPLE_ON_TRAIN_DEV,
                }
            )
    return rows


def _stage_ms(stage: str, size: int, ltr_ms: Mapping[str, float]) -> float:
    """What an LTR stage adds to the cross-encoder's CPU: features + trees, and the query embedding
    its knn_cosine feature needs (the sidecar embeds the query itself)."""
    if not stage.startswith("ltr"):
        return 0.0
    return ltr_ms.get(str(size), 0.0) + ltr_ms.get("query_embedding", 0.0)


def ltr_cpu_ms(oof: OutOfFold, sizes: Sequence[int]) -> dict[str, float]:
    """Mean CPU ms per end-to-end window of computing the features and the trees (one fold's model,
    the largest grid point's size), per window size."""
    variant = VARIANTS[-1]
    train, _ = next(splits(oof.queries, oof.k, oof.seed))
    booster = fit(oof._data(train, variant, 10**6), variant.features, PARAM_GRID[-1], oof.seed)
    windows = oof.windows.windows["end_to_end"]
    out = {}
    for size in sizes:
        started = time.process_time()
        for q, w in windows.items():
            c = cut(w, size)
            matrix = window_features(
                q, [oof.windows.products[p] for p in c.ids], c.first_stage, c.logits[FINE_TUNED], c.cosines
            )
            predict(booster, matrix, variant.features)
        out[str(size)] = 1e3 * (time.process_time() - started) / max(len(windows), 1)
    return out


def write_json(report: LtrReport, path: Path) -> None:
    """Write the report's JSON (for docs/results/)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.as_dict(), indent=2, default=float) + "\n")


def variant_named(name: str) -> Variant:
    """The LTR variant of a name (for train-ltr)."""
    for v in VARIANTS:
        if v.name == name:
            return v
    raise KeyError(name)


__all__ = ["MODES", "LtrReport", "run_report", "variant_named", "write_json"]
