"""Hard negatives: products the first stage retrieves for a query that nobody judged relevant.

The catalogue holds products judged for other queries, so an unjudged hit is usually
irrelevant to this query, but not always (an unlabelled positive). The hits nearest the top
are the likeliest to be unlabelled positives, so the first `skip` unjudged hits are left out,
and hard negatives get a smaller pointwise weight than judged products.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from engines.base import RetrievalQuery, SearchEngine
from relevance.judgments import Judgments
from shoprank.template import query_text


class QueryEncoder(Protocol):
    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


@dataclass
class RetrievedLists:
    """Hybrid first-stage hits per query, with the query vectors and the stored product vectors."""

    ids: dict[str, list[str]] = field(default_factory=dict)
    query_vectors: dict[str, npt.NDArray[np.float32]] = field(default_factory=dict)
    product_vectors: dict[str, npt.NDArray[np.float32]] = field(default_factory=dict)


def hybrid_hits(engine: SearchEngine, encoder: QueryEncoder, queries: Sequence[str], size: int) -> RetrievedLists:
    """The hybrid first stage's top `size` for each query, as the front door retrieves them."""
    texts = [query_text(q) for q in queries]
    out = RetrievedLists()
    for query, text, vector in zip(queries, texts, encoder.encode(texts), strict=True):
        query_ = RetrievalQuery(text=text, vector=vector, mode="hybrid", size=size, with_vectors=True)
        hits = engine.retrieve(query_).hits
        out.ids[query] = [h.product.id for h in hits]
        out.query_vectors[query] = vector
        out.product_vectors.update({h.product.id: h.vector for h in hits if h.vector is not None})
    return out


def select_hard_negatives(
    hits: Mapping[str, Sequence[str]], judgments: Judgments, count: int, skip: int
) -> dict[str, list[str]]:
    """Per query: up to `count` unjudged hits, after skipping the first `skip` unjudged ones."""
    out = {}
    for query, ids in hits.items():
        judged = judgments.gains.get(query, {})
        unjudged = [pid for pid in ids if pid not in judged]
        out[query] = unjudged[skip : skip + count]
    return out
