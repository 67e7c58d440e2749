"""The searchable text fields and their BM25 boosts: one definition read by every engine.

LanceDB's multi-field full-text search and OpenSearch's `multi_match` (the engine's own
queries and the shop-box search template in opensearch/, which a test and `shoprank
opensearch setup` hold to this table) use the same fields and boosts, so both engines rank
text matches alike.
"""

from __future__ import annotations

BM25_FIELDS: dict[str, float] = {
    "title": 3.0,
    "brand": 2.0,
    "category_path": 1.5,
    "color": 1.0,
    "bullet_points": 1.0,
    "description": 0.5,
}

# OpenSearch `minimum_should_match` of the shop-box query: one- and two-word queries need every
# word, longer ones 75% of them. LanceDB's full-text search has no equivalent and matches any word.
MINIMUM_SHOULD_MATCH = "2<75%"


def boosted_field_list() -> list[str]:
    """The fields as OpenSearch `multi_match` writes them: "title^3", "category_path^1.5", ..."""
    return [f"{name}^{boost:g}" for name, boost in BM25_FIELDS.items()]
