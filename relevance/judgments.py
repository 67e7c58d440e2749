"""Graded relevance judgments (ESCI format) and the seeded split of their queries.

A judgments file is a CSV with `query`, `product_id` and a grade: `esci_label` (E/S/C/I),
`gain` (an NDCG gain in [0, 1], as implicit judgments from clicks are written) and/or `rating`
(100/10/1/0, as OpenSearch's Search Relevance Workbench writes it). Grades become ESCI's
official NDCG gains; the first of esci_label, gain, rating a row fills is its grade. Splits
are always by query, never by pair, so no query is ever seen on both sides.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shoprank.errors import UserInputError
from shoprank.template import query_text

# ESCI's official gains: Exact, Substitute, Complement, Irrelevant.
ESCI_GAINS: Mapping[str, float] = {"E": 1.0, "S": 0.1, "C": 0.01, "I": 0.0}
# The Workbench's ratings for the same labels.
RATING_GAINS: Mapping[float, float] = {100.0: 1.0, 10.0: 0.1, 1.0: 0.01, 0.0: 0.0}
# A product "is relevant" (MRR, recall) when it is at least a substitute.
RELEVANT_GAIN = 0.1

DEFAULT_SPLIT_SEED = 20240917


class JudgmentsError(UserInputError):
    """The judgments file cannot be read; the message says what is wrong with it."""


@dataclass(frozen=True)
class Judgments:
    """Gains per query and product id, queries in file order."""

    gains: dict[str, dict[str, float]]

    @property
    def queries(self) -> list[str]:
        """Judged queries, in the order they first appear in the file."""
        return list(self.gains)

    def pairs(self) -> int:
        """Number of judged (query, product) pairs."""
        return sum(len(products) for products in self.gains.values())

    def product_ids(self) -> set[str]:
        """Every judged product id."""
        return {pid for products in self.gains.values() for pid in products}

    def subset(self, queries: Iterable[str]) -> Judgments:
        """The judgments of some queries only (unknown queries are ignored)."""
        return Judgments({q: self.gains[q] for q in queries if q in self.gains})

    def without_products(self, missing: set[str]) -> Judgments:
        """Drop products (e.g. absent from the catalogue); queries left with none are dropped too."""
        kept = {q: {p: g for p, g in products.items() if p not in missing} for q, products in self.gains.items()}
        return Judgments({q: products for q, products in kept.items() if products})


def normalise_query(query: str) -> str:
    """The form queries are compared in: the serving normalisation, lower-cased."""
    return query_text(query).lower()


def _gain(row: Mapping[str, str | None], line: int) -> float:
    label = (row.get("esci_label") or "").strip().upper()
    if label:
        if label not in ESCI_GAINS:
            raise JudgmentsError(f"line {line}: esci_label {label!r} is not one of E, S, C, I")
        return ESCI_GAINS[label]
    gain = (row.get("gain") or "").strip()
    if gain:
        try:
            value = float(gain)
        except ValueError as exc:
            raise JudgmentsError(f"line {line}: gain {gain!r} is not a number") from exc
        if not 0.0 <= value <= 1.0:
            raise JudgmentsError(f"line {line}: gain {value} is outside [0, 1]")
        return value
    rating = (row.get("rating") or "").strip()
    if not rating:
        raise JudgmentsError(f"line {line}: no esci_label, gain or rating")
    try:
        value = float(rating)
    except ValueError as exc:
        raise JudgmentsError(f"line {line}: rating {rating!r} is not a number") from exc
    if value in RATING_GAINS:
        return RATING_GAINS[value]
    if 0.0 <= value <= 1.0:
        return value  # already a gain
    raise JudgmentsError(f"line {line}: rating {value} is not one of 100/10/1/0 or a gain in [0, 1]")


def load_judgments(path: Path) -> Judgments:
    """Read an ESCI-format CSV (query, product_id, rating, gain and/or esci_label) into gains.

    Queries are normalised like the serving path does (whitespace collapsed); a pair judged
    twice keeps its last grade.
    """
    if not path.is_file():
        raise JudgmentsError(f"no judgments file at {path}")
    gains: dict[str, dict[str, float]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or ())
        if not {"query", "product_id"} <= columns or not ({"rating", "esci_label", "gain"} & columns):
            raise JudgmentsError(
                f"{path} needs the columns query, product_id and rating, gain or esci_label (has: {sorted(columns)})"
            )
        for line, row in enumerate(reader, start=2):
            query = query_text(row.get("query") or "")
            product = (row.get("product_id") or "").strip()
            if not query or not product:
                raise JudgmentsError(f"line {line}: empty query or product_id")
            gains.setdefault(query, {})[product] = _gain(row, line)
    if not gains:
        raise JudgmentsError(f"{path} has no judgments")
    return Judgments(gains)


@dataclass(frozen=True)
class QuerySplit:
    """Disjoint query sets: train (fitting), dev (choosing), test (final figures only)."""

    train: tuple[str, ...]
    dev: tuple[str, ...]
    test: tuple[str, ...]

    def as_dict(self) -> dict[str, list[str]]:
        """JSON-ready form."""
        return {"train": list(self.train), "dev": list(self.dev), "test": list(self.test)}


def split_queries(queries: Sequence[str], seed: int = DEFAULT_SPLIT_SEED, dev: int = 20, test: int = 30) -> QuerySplit:
    """Shuffle the distinct queries with a fixed seed and cut test, then dev, then train.

    Depends only on the set of queries (sorted first), not on file order, so the same file
    always gives the same split.
    """
    distinct = sorted(set(queries))
    if dev < 0 or test < 0 or dev + test >= len(distinct):
        raise UserInputError(f"cannot hold out {dev} dev + {test} test queries of {len(distinct)}")
    random.Random(seed).shuffle(distinct)
    return QuerySplit(
        train=tuple(distinct[dev + test :]),
        dev=tuple(distinct[test : test + dev]),
        test=tuple(distinct[:test]),
    )


def write_gains(path: Path, rows: Iterable[Mapping[str, object]]) -> int:
    """Write judgments as `load_judgments` reads them: query, product_id, gain, then any further columns
    the rows carry (e.g. the click model's score, clicks, impressions); returns the rows written."""
    materialised = list(rows)
    extra = sorted({k for row in materialised for k in row} - {"query", "product_id", "gain"})
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["query", "product_id", "gain", *extra])
        writer.writeheader()
        writer.writerows(materialised)
    return len(materialised)
