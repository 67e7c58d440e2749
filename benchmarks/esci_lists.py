"""Rerank inputs from ESCI: each judged query with its judged products, padded with other catalogue
products to a fixed window, and NDCG@k with ESCI's gains on the judged products."""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from shoprank.schema import Product

# ESCI's official gains for NDCG.
ESCI_GAINS = {"E": 1.0, "S": 0.1, "C": 0.01, "I": 0.0}


@dataclass(frozen=True)
class RerankList:
    """One query's rerank window: judged products first-stage-shuffled among unjudged padding."""

    query: str
    products: list[Product]
    gains: dict[str, float]  # judged product id (in the window) -> ESCI gain


def load_catalogue(bulk_ndjson: Path) -> dict[str, Product]:
    """Products of an OpenSearch bulk body (action line, document line), validated by the shared schema."""
    products: dict[str, Product] = {}
    lines = bulk_ndjson.read_text(encoding="utf-8").splitlines()
    for action, document in zip(lines[::2], lines[1::2], strict=False):
        doc = json.loads(document)
        doc.setdefault("id", json.loads(action).get("index", {}).get("_id") or doc.get("asin"))
        try:
            product = Product.model_validate(doc)
        except ValidationError:
            continue
        products[product.id] = product
    return products


def rerank_lists(esci_dir: Path, queries: int, window: int, seed: int = 0) -> list[RerankList]:
    """The first `queries` judged queries (sorted), each padded to `window` candidates."""
    catalogue = load_catalogue(esci_dir / "products.ndjson")
    judged: dict[str, dict[str, float]] = {}
    with (esci_dir / "judgments.csv").open(newline="", encoding="utf-8") as rows:
        for row in csv.DictReader(rows):
            if row["product_id"] in catalogue:
                judged.setdefault(row["query"], {})[row["product_id"]] = ESCI_GAINS[row["esci_label"]]
    rng = random.Random(seed)
    everyone = sorted(catalogue)
    lists = []
    for query in sorted(judged)[:queries]:
        ids = list(judged[query])[:window]
        chosen = set(ids)
        while len(ids) < window:
            candidate = rng.choice(everyone)
            if candidate not in chosen:
                chosen.add(candidate)
                ids.append(candidate)
        rng.shuffle(ids)
        in_window = {pid: gain for pid, gain in judged[query].items() if pid in chosen}
        lists.append(RerankList(query, [catalogue[i] for i in ids], in_window))
    return lists


def ndcg_at_k(scores: Mapping[str, float], gains: Mapping[str, float], k: int = 10) -> float | None:
    """NDCG@k of the judged products ranked by score (ties by id); None when no product has a gain."""
    ideal = sorted(gains.values(), reverse=True)[:k]
    ideal_dcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    if ideal_dcg == 0:
        return None
    ranked = sorted(gains, key=lambda pid: (-scores[pid], pid))[:k]
    return sum(gains[pid] / math.log2(rank + 2) for rank, pid in enumerate(ranked)) / ideal_dcg


def mean_ndcg(scored: Sequence[Mapping[str, float]], lists: Sequence[RerankList], k: int = 10) -> float:
    """Mean NDCG@k over the lists that have a positive gain."""
    values = [v for s, lst in zip(scored, lists, strict=True) if (v := ndcg_at_k(s, lst.gains, k)) is not None]
    return sum(values) / len(values) if values else math.nan
