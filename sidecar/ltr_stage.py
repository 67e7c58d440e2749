"""The learning-to-rank stage: after the cross-encoder, in place of the blend.

RerankService calls `LtrStage.rank` with the request and the cross-encoder's logits; it
returns the window's scores min-max scaled to [0, 1] (the blend's scale, so diversity
strengths mean the same) and, for `explain`, each row's top feature contributions. Any
failure inside the stage (a feature that cannot be computed, a model error) logs and falls
back to the blend: the stage never fails a request.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from shoprank.normalise import min_max
from shoprank.template import query_text
from sidecar.domain import FeatureContribution, RerankQuery
from sidecar.ltr_features import FEATURE_INDEX, Float64Array, cosines, window_features
from sidecar.ltr_model import LtrModel

log = logging.getLogger(__name__)

# Contributions an explanation carries per result, largest magnitude first.
TOP_CONTRIBUTIONS = 5


class QueryEmbedder(Protocol):
    """The sidecar's bi-encoder, for the query vector of the knn_cosine feature."""

    dim: int

    def encode(self, texts: list[str]) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True)
class LtrRanking:
    """The stage's scores for a window and what explain needs."""

    scores: Float64Array  # in [0, 1], rows in request order
    features: Float64Array  # the full window_features() matrix
    version: str


class LtrStage:
    """A loaded LTR model and how to feed it from a request."""

    def __init__(self, model: LtrModel, embedder: QueryEmbedder | None = None) -> None:
        self.model = model
        self.embedder = embedder
        self._reads_cosine = "knn_cosine" in model.card.features
        # Without cross-encoder features the service skips the cross-encoder altogether.
        self.reads_cross_encoder = model.card.uses_cross_encoder

    @property
    def version(self) -> str:
        """The LTR model's version."""
        return self.model.version

    def _cosines(self, query: RerankQuery) -> list[float] | None:
        embeddings = [c.embedding for c in query.candidates]
        if not self._reads_cosine or self.embedder is None or not any(e is not None for e in embeddings):
            return None
        vector = self.embedder.encode([query_text(query.query)])[0]
        return cosines(vector, embeddings)

    def rank(self, query: RerankQuery, logits: npt.ArrayLike | None) -> LtrRanking | None:
        """The window's LTR scores, or None (logged) when the stage cannot score this request."""
        logits = logits if self.reads_cross_encoder else None
        try:
            features = window_features(
                query.query,
                [c.product for c in query.candidates],
                [c.first_stage_score for c in query.candidates],
                logits,
                self._cosines(query),
            )
            raw = self.model.score(features)
            if not np.isfinite(raw).all():
                raise ValueError("the model gave a non-finite score")
        except Exception:  # the stage is an improvement, never a reason to fail a rerank
            log.exception("the LTR stage failed on a request; it was ranked by the blend")
            return None
        return LtrRanking(min_max(raw), features, self.version)

    def contributions(self, ranking: LtrRanking, rows: Sequence[int]) -> dict[int, tuple[FeatureContribution, ...]]:
        """Top contributions per row asked for (empty tuples when LightGBM cannot give them)."""
        if not rows:
            return {}
        try:
            contrib = self.model.contributions(ranking.features[list(rows)])
        except Exception:
            log.exception("LTR contributions failed; explanations carry none")
            return dict.fromkeys(rows, ())
        names = self.model.card.features
        out = {}
        for i, row in enumerate(rows):
            values = contrib[i, : len(names)]
            top = np.argsort(-np.abs(values), kind="stable")[:TOP_CONTRIBUTIONS]
            out[row] = tuple(
                FeatureContribution(names[j], float(ranking.features[row, FEATURE_INDEX[names[j]]]), float(values[j]))
                for j in top
            )
        return out
