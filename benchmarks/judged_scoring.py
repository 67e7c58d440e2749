"""Scoring the judged test windows directly with a CrossEncoder: NDCG@10 and CPU seconds per search.

Shared by the latency studies (`bench precision`, `bench cascade`, `bench pair-length`). The
queries are the served release's held-out test queries (its training record names them: the
release never saw them), each as a window of judged products among catalogue padding
(`benchmarks.esci_lists.rerank_lists`, the same windows `bench rerank` sends). Scoring is
in-process on this thread (no gRPC, no batcher), one `CrossEncoder.score` per window, so CPU
time is this process's and comparable between variants measured in one run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.esci_lists import RerankList, mean_ndcg, rerank_lists
from shoprank.arrays import FloatArray
from shoprank.errors import NotSetUpError
from shoprank.model_meta import TRAINING_RECORD_FILE
from shoprank.template import ProductText
from sidecar.rerank_service import PairScorer

# More products than ESCI judges for any one query (at most 100 in the shared sample).
JUDGED_WINDOW = 1000

# A scorer of one window: (query, products) -> logits in input order.
Score = Callable[[str, Sequence[ProductText]], FloatArray]


def logits_of(scorer: PairScorer) -> Score:
    """The window scorer of a PairScorer (a CrossEncoder, a cascade): its logits, nothing else."""

    def score(query: str, products: Sequence[ProductText]) -> FloatArray:
        return scorer.score(query, products).logits

    return score


@dataclass(frozen=True)
class Scored:
    """Per-window scores of one variant and the CPU it took."""

    scores: list[dict[str, float]]
    cpu_s: float
    wall_s: float

    def cpu_ms_per_search(self) -> float:
        """Mean CPU milliseconds per window."""
        return self.cpu_s * 1e3 / max(len(self.scores), 1)


def held_out_queries(model_directory: Path) -> list[str]:
    """The held-out test queries of the release built in `model_directory` (from its training record)."""
    record = model_directory / TRAINING_RECORD_FILE
    if not record.is_file():
        raise NotSetUpError(
            f"{record} is missing: the latency studies measure on the release's held-out test queries; "
            "build the released cross-encoder with `shoprank models build`"
        )
    test: list[str] = json.loads(record.read_text())["split"]["test"]
    return test


def held_out_windows(esci: Path, model_directory: Path, candidates: int, seed: int = 0) -> list[RerankList]:
    """The test queries' windows of `candidates` products (judged ones among seeded padding)."""
    wanted = set(held_out_queries(model_directory))
    every = rerank_lists(esci, 10_000, candidates, seed)
    return [item for item in every if item.query in wanted]


def held_out_judged(esci: Path, model_directory: Path) -> list[RerankList]:
    """The test queries' judged products alone (NDCG reads only those; no padding to pay for)."""
    # A window wider than any query's judged list keeps every judged product; the padding is cut.
    lists = held_out_windows(esci, model_directory, JUDGED_WINDOW)
    return [RerankList(i.query, [p for p in i.products if p.id in i.gains], i.gains) for i in lists]


def score_windows(score: Score, lists: Sequence[RerankList]) -> Scored:
    """Every window scored once, with the process CPU and wall time it took."""
    cpu, wall = time.process_time(), time.perf_counter()
    out = []
    for item in lists:
        logits = score(item.query, item.products)
        out.append({p.id: float(s) for p, s in zip(item.products, logits, strict=True)})
    return Scored(out, time.process_time() - cpu, time.perf_counter() - wall)


def ndcg(scored: Scored, lists: Sequence[RerankList]) -> float:
    """Mean NDCG@10 (ESCI gains) of the judged products."""
    return mean_ndcg(scored.scores, lists)
