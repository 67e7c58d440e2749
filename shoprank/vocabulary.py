"""The names every layer shares, defined once: diversity methods and aspects, retrieval modes.

Settings, the sidecar's diversity, the wire converter, the CLI's choices and the sweeps all
derive from these; nothing else spells the lists out.
"""

from __future__ import annotations

from typing import Literal, get_args

DiversityMethod = Literal["none", "mmr", "xquad", "dpp"]
DIVERSITY_METHODS: tuple[DiversityMethod, ...] = get_args(DiversityMethod)
# Methods whose redundancy comes from product embeddings (attribute similarity without them).
EMBEDDING_METHODS: tuple[DiversityMethod, ...] = ("mmr", "dpp")
# Methods a strength trades off against relevance ("none" has no curve to sweep).
STRENGTH_METHODS: tuple[DiversityMethod, ...] = tuple(m for m in DIVERSITY_METHODS if m != "none")

# The product attributes xQuAD takes its aspects from (each product covers one aspect of each).
DiversityFacet = Literal["category", "brand"]
DIVERSITY_FACETS: tuple[DiversityFacet, ...] = get_args(DiversityFacet)

RetrievalMode = Literal["bm25", "knn", "hybrid"]
RETRIEVAL_MODES: tuple[RetrievalMode, ...] = get_args(RetrievalMode)

# What a shopper did with a product, weakest signal first (the sidecar's personalisation weighs them
# in this order; the front door maps UBI's action names onto them).
InteractionAction = Literal["view", "click", "add_to_cart", "purchase"]
INTERACTION_ACTIONS: tuple[InteractionAction, ...] = get_args(InteractionAction)
