"""A taxonomy-independent check of the intent method on WANDS (Wayfair's 480 queries with their
query_class): centroids of a seeded half of the queries' vectors per class, top-1/top-3 on the
other half. This is Wayfair's taxonomy, not the catalogue's: it checks the method (nearest
centroid with a log-prior on the bi-encoder's vectors), not the served model.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from evaluation.bootstrap import Interval, bootstrap_ci
from intent.model import CategorySums, IntentModel
from shoprank.template import query_text

SPLIT_SEED = 20
TRAIN_SHARE = 0.5


class QueryEncoder(Protocol):
    """What the check needs from the bi-encoder."""

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True)
class WandsReport:
    """Per held-out query: top-1 / top-3 hits of the intent method and of the training majority class."""

    train: int
    test: int
    classes: int
    unseen: int  # held-out queries whose class no training query has (they count as misses)
    hits: dict[str, list[tuple[bool, bool]]]

    def accuracy(self, predictor: str, k: int) -> Interval:
        """Share of held-out queries whose class is in the predictor's top k."""
        return bootstrap_ci([float(hit[0 if k == 1 else 1]) for hit in self.hits[predictor]])

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "taxonomy": "WANDS query_class (Wayfair's), not the catalogue's",
            "train_queries": self.train,
            "test_queries": self.test,
            "classes": self.classes,
            "test_queries_with_unseen_class": self.unseen,
            **{
                name: {"top1": self.accuracy(name, 1).as_dict(), "top3": self.accuracy(name, 3).as_dict()}
                for name in self.hits
            },
        }


def load_wands_queries(path: Path) -> list[tuple[str, str]]:
    """(query, query_class) rows of WANDS' tab-separated query.csv, rows without a class left out."""
    if not path.is_file():
        raise FileNotFoundError(f"no WANDS query file at {path} (tab-separated query_id, query, query_class)")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if rows and not {"query", "query_class"} <= set(rows[0]):
        raise ValueError(f"{path} needs the columns query and query_class (tab-separated)")
    return [(r["query"].strip(), r["query_class"].strip()) for r in rows if r["query"].strip() and r["query_class"]]


def measure_wands(queries: list[tuple[str, str]], encoder: QueryEncoder, seed: int = SPLIT_SEED) -> WandsReport:
    """Train class centroids on a seeded share of the queries, score top-1/top-3 on the rest."""
    order = np.random.default_rng(seed).permutation(len(queries))
    cut = int(len(queries) * TRAIN_SHARE)
    train = [queries[i] for i in order[:cut]]
    test = [queries[i] for i in order[cut:]]
    vectors = encoder.encode([query_text(q) for q, _ in queries])
    sums = CategorySums(vectors.shape[1])
    sums.add_labelled([[cls] for _, cls in train], vectors[order[:cut]])
    model = IntentModel.from_sums("wands", *sums.arrays())
    majority = [cls for cls, _ in Counter(cls for _, cls in train).most_common(3)]
    seen = {cls for _, cls in train}
    hits: dict[str, list[tuple[bool, bool]]] = {"intent": [], "majority": [], "intent_seen_classes": []}
    for (_, cls), i in zip(test, order[cut:], strict=True):
        ranked = model.predict(vectors[i], top=3).categories
        hit = (ranked[0] == cls, cls in ranked)
        hits["intent"].append(hit)
        hits["majority"].append((majority[0] == cls, cls in majority))
        if cls in seen:  # what the method does where it can be right at all
            hits["intent_seen_classes"].append(hit)
    unseen = sum(1 for _, cls in test if cls not in seen)
    return WandsReport(len(train), len(test), len({c for _, c in queries}), unseen, hits)


def format_wands(report: WandsReport) -> str:
    """The lines `shoprank eval-intent --wands` prints."""
    lines = [
        f"WANDS check (Wayfair's query_class taxonomy, not the catalogue's): {report.classes} classes, "
        f"centroids of {report.train} queries, scored on {report.test} ({report.unseen} of a class no training "
        "query has: misses for every predictor)",
    ]
    for name in report.hits:
        t1, t3 = report.accuracy(name, 1), report.accuracy(name, 3)
        lines.append(
            f"  {name:<20} top-1 {t1.mean:.3f} [{t1.low:.3f}, {t1.high:.3f}]  "
            f"top-3 {t3.mean:.3f} [{t3.low:.3f}, {t3.high:.3f}]  ({t1.n} queries)"
        )
    return "\n".join(lines)
