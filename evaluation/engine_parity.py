"""Engine parity: the same judged queries through the first stages of two engines, side by side.

Both engines should hold the same catalogue indexed with the same bi-encoder; the query is
embedded once and sent to each. Per stage and engine: NDCG@10 and recall@window with bootstrap
CIs, the paired NDCG@10 difference, and how much the two engines' lists agree (the share of the
shorter list found in the other, at the window and at the page). Raw scores are never compared:
BM25 and HNSW scores are engine-specific, ranks and sets are not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engines.base import RETRIEVAL_MODES, RetrievalMode, RetrievalQuery, SearchEngine
from evaluation.bootstrap import Interval, bootstrap_ci, paired_difference
from evaluation.stages import QueryEncoder
from relevance.judgments import Judgments
from relevance.metrics import ndcg_at_k, recall_at_n
from shoprank.template import query_text

PAGE = 10


def overlap(first: Sequence[str], second: Sequence[str]) -> float | None:
    """Share of the shorter list's ids found in the other list; None when either is empty."""
    shorter, longer = (first, second) if len(first) <= len(second) else (second, first)
    if not shorter:
        return None
    return len(set(shorter) & set(longer)) / len(shorter)


@dataclass
class StageParity:
    """One first stage on both engines: per-query values, then their intervals."""

    ndcg: dict[str, list[float]] = field(default_factory=dict)
    recall: dict[str, list[float]] = field(default_factory=dict)
    overlap_window: list[float] = field(default_factory=list)
    overlap_page: list[float] = field(default_factory=list)
    empty: dict[str, int] = field(default_factory=dict)

    def as_dict(self, engines: Sequence[str]) -> dict[str, Any]:
        """JSON-ready: intervals per engine, the paired difference, mean overlaps."""
        first, second = engines
        out: dict[str, Any] = {
            "ndcg@10": {name: bootstrap_ci(self.ndcg[name]).as_dict() for name in engines},
            "recall@window": {name: bootstrap_ci(self.recall[name]).as_dict() for name in engines},
            "ndcg@10 difference": {
                f"{first} - {second}": paired_difference(self.ndcg[first], self.ndcg[second]).as_dict()
            },
            "overlap@window": _mean(self.overlap_window),
            "overlap@10": _mean(self.overlap_page),
            "queries with no hits": dict(self.empty),
        }
        return out


@dataclass
class ParityReport:
    """Every first stage on two engines over the same judged queries."""

    engines: tuple[str, str]
    window: int
    queries: int
    stages: dict[str, StageParity]
    info: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The `--json` output, with the table docs/quality.md renders (docs/results/engine-parity.json)."""
        stages = {name: stage.as_dict(self.engines) for name, stage in self.stages.items()}
        return {
            "title": "Engine parity: OpenSearch and LanceDB, first stages on the judged queries",
            "engines": list(self.engines),
            "window": self.window,
            "queries": self.queries,
            "stages": stages,
            **self.info,
            "tables": [self._table(stages)],
        }

    def _table(self, stages: dict[str, Any]) -> dict[str, Any]:
        """The parity table in docs/results' shape (shoprank/results_docs.py)."""
        first, second = self.engines
        names = {"opensearch": "OpenSearch", "lancedb": "LanceDB"}
        a, b = names.get(first, first), names.get(second, second)

        def cell(interval: dict[str, Any]) -> dict[str, Any]:
            return {"value": interval["mean"], "ci": [interval["low"], interval["high"]]}

        rows = []
        for name, stage in stages.items():
            rows.append(
                [
                    name,
                    cell(stage["ndcg@10"][first]),
                    cell(stage["ndcg@10"][second]),
                    cell(stage["ndcg@10 difference"][f"{first} - {second}"]),
                    stage["recall@window"][first]["mean"],
                    stage["recall@window"][second]["mean"],
                    stage["overlap@window"],
                    stage["overlap@10"],
                ]
            )
        columns: list[Any] = ["stage", {"name": f"{a} NDCG@10 [95% CI]", "decimals": 3}]
        columns += [{"name": f"{b} NDCG@10 [95% CI]", "decimals": 3}]
        columns += [{"name": f"{a} − {b}", "decimals": 3, "signed": True}]
        columns += [{"name": f"{e} recall@{self.window}", "decimals": 3} for e in (a, b)]
        columns += [{"name": f"top-{self.window} overlap", "decimals": 2}, {"name": "top-10 overlap", "decimals": 3}]
        return {"columns": columns, "rows": rows}

    def format(self) -> str:
        """The terminal table."""
        first, second = self.engines
        head = (
            f"| stage | {first} NDCG@10 | {second} NDCG@10 | {first} - {second} | {first} recall@{self.window} "
            f"| {second} recall@{self.window} | top-{self.window} overlap | top-10 overlap |"
        )
        lines = [f"{self.queries} judged queries, window {self.window}", "", head, "|" + "---|" * 8]
        for name, stage in self.stages.items():
            diff = paired_difference(stage.ndcg[first], stage.ndcg[second])
            ndcg = " | ".join(_cell(bootstrap_ci(stage.ndcg[engine])) for engine in self.engines)
            recall = " | ".join(f"{np.mean(stage.recall[engine]):.3f}" for engine in self.engines)
            overlaps = f"{_fmt(_mean(stage.overlap_window))} | {_fmt(_mean(stage.overlap_page))}"
            lines.append(f"| {name} | {ndcg} | {_cell(diff, signed=True)} | {recall} | {overlaps} |")
        return "\n".join(lines)


def compare_engines(
    engines: Mapping[str, SearchEngine],
    encoder: QueryEncoder,
    judgments: Judgments,
    window: int = 100,
    stages: Sequence[RetrievalMode] = RETRIEVAL_MODES,
) -> ParityReport:
    """Run `stages` for every judged query on both engines (same text, same query vector)."""
    if len(engines) != 2:
        raise ValueError("parity compares exactly two engines")
    names = tuple(engines)
    report = ParityReport(
        engines=(names[0], names[1]),
        window=window,
        queries=len(judgments.queries),
        stages={stage: StageParity({n: [] for n in names}, {n: [] for n in names}) for stage in stages},
    )
    for query in judgments.queries:
        text = query_text(query)
        vector = encoder.encode_one(text)
        judged = judgments.gains[query]
        for stage in stages:
            parity = report.stages[stage]
            lists: list[list[str]] = []
            for name, engine in engines.items():
                hits = engine.retrieve(RetrievalQuery(text=text, vector=vector, mode=stage, size=window)).hits
                ranking = [hit.product.id for hit in hits]
                if not ranking:
                    parity.empty[name] = parity.empty.get(name, 0) + 1
                parity.ndcg[name].append(ndcg_at_k(ranking, judged, PAGE))
                parity.recall[name].append(recall_at_n(ranking, judged, window))
                lists.append(ranking)
            for share, target in (
                (overlap(lists[0], lists[1]), parity.overlap_window),
                (overlap(lists[0][:PAGE], lists[1][:PAGE]), parity.overlap_page),
            ):
                if share is not None:
                    target.append(share)
    return report


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _cell(interval: Interval, signed: bool = False) -> str:
    sign = "+" if signed else ""
    return f"{interval.mean:{sign}.3f} [{interval.low:{sign}.3f}, {interval.high:{sign}.3f}]"
