"""The zero-history case the byte-identity test replays (shared by the golden's generator and the test)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from shoprank.template import ProductText
from shoprank.v1 import rerank_pb2 as pb
from sidecar.domain import PairScores

DIM = 8


class TitleScorer:
    """Relevance: a fixed number per title (its crc32), deterministic across runs and processes."""

    version = "title-crc"

    def score(self, query: str, products: Sequence[ProductText], *args: object, **kwargs: object) -> PairScores:
        return PairScores(np.array([zlib.crc32(p.title.encode()) % 1000 / 100.0 for p in products], dtype=np.float32))


class HashEmbedder:
    """A bi-encoder stand-in: a deterministic vector per text."""

    dim = DIM

    def encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        rows = [np.random.default_rng(zlib.crc32(t.encode())).normal(size=DIM) for t in texts]
        return np.array(rows, dtype=np.float32)


def golden_request(explain: bool) -> pb.RerankRequest:
    """Twelve candidates over three brands and categories, half with vectors; DPP and explanations."""
    request = pb.RerankRequest(query="blue kitchen towel", top_k=8)
    for i in range(12):
        candidate = request.candidates.add(
            id=f"p{i}",
            first_stage_score=float(12 - i),
            product=pb.Product(
                title=f"towel {i} {'blue' if i % 2 else 'grey'}",
                brand=("Acme", "Utopia", "Anker")[i % 3],
                category=["Home", ("Kitchen", "Bath", "Laundry")[i % 3]],
            ),
        )
        candidate.embedding.extend(
            np.random.default_rng(i).normal(size=DIM).astype(np.float32).tolist() if i % 2 == 0 else []
        )
    request.options.explain = explain
    request.options.diversity.method = pb.DIVERSITY_METHOD_DPP
    return request
