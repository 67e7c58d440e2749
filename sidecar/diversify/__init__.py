"""Diversification of a scored candidate list: a pure function of scores, embeddings and attributes.

Methods (one module each): "none" (relevance order), MMR on embedding cosine (mmr.py), xQuAD
over leaf-category and/or brand aspects (xquad.py), sliding-window DPP with fast greedy MAP inference
(dpp.py); hard per-brand / per-category caps combine with any of them (caps.py). All share
one deterministic greedy fill (selection.py); diversify() in dispatch.py is the entry point.
"""

from sidecar.diversify.attributes import brand_key, category_aspect
from sidecar.diversify.dispatch import DiversityResult, diversify
from sidecar.diversify.params import (
    EMBEDDING_METHODS,
    FACETS,
    METHODS,
    DiversityParamError,
    DiversityParams,
    Facet,
    Method,
)

__all__ = [
    "EMBEDDING_METHODS",
    "FACETS",
    "METHODS",
    "DiversityParamError",
    "DiversityParams",
    "DiversityResult",
    "Facet",
    "Method",
    "brand_key",
    "category_aspect",
    "diversify",
]
