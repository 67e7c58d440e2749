"""Hard negatives: products the first stage retrieves for a query that nobody judged relevant.

The catalogue holds products judged for other queries, so an unjudged hit is usually
irrelevant to this query, but not always (an unlabelled positive). The hits nearest the top
are the likeliest to be unlabelled positives, so the first `skip` unjudged hits are left out,
and hard negatives get a smaller pointwise weight than judged products.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from engines.base import RetrievalQuery, SearchEngine
from evaluation.judgments import Judgments
from shoprank.template import query_text


class QueryEncoder(Protocol):
    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


def hybrid_hits(engine: SearchEngine, encoder: QueryEncoder, queries: Sequence[str], size: int) -> dict[str, list[str]]:
    """Product ids of the hybrid first stage's top `size` for each query, as the front door retrieves them."""
    texts = [query_text(q) for q in queries]
    vectors = encoder.encode(texts)
    out = {}
    for query, text, vector in zip(queries, texts, vectors, strict=True):
        hits = engine.retrieve(RetrievalQuery(text=text, vector=vector, mode="hybrid", size=size)).hits
        out[query] = [h.product.id for h in hits]
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
