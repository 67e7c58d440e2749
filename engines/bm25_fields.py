"""The searchable text fields and their BM25 boosts: one definition read by every engine.

LanceDB's multi-field full-text search and OpenSearch's `multi_match` (the engine's own
queries and the shop-box search template in opensearch/, which a test and `shoprank
opensearch setup` hold to this table) use the same fields and boosts, so both engines rank
text matches alike.
"""

from __future__ import annotations

import re
import unicodedata

BM25_FIELDS: dict[str, float] = {
    "title": 3.0,
    "brand": 2.0,
    "category_path": 1.5,
    "color": 1.0,
    "bullet_points": 1.0,
    "description": 0.5,
}

# OpenSearch `minimum_should_match` of the shop-box query: one- and two-word queries need every
# word, longer ones 75% of them (rounded down). LanceDB's full-text search has no such option:
# `engines.lance` applies the same rule with `required_terms` over `query_terms`.
MINIMUM_SHOULD_MATCH = "2<75%"
# Lucene's English stop words (OpenSearch's `_english_`, tantivy's English list): both engines'
# analysers drop them, so they never count towards minimum_should_match.
ENGLISH_STOP_WORDS = frozenset(
    {
        *("a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no"),
        *("not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this"),
        *("to", "was", "will", "with"),
    }
)
_WORD = re.compile(r"[^\W_]+")
_RULE = re.compile(r"^(\d+)<(\d+)%$")


def boosted_field_list() -> list[str]:
    """The fields as OpenSearch `multi_match` writes them: "title^3", "category_path^1.5", ..."""
    return [f"{name}^{boost:g}" for name, boost in BM25_FIELDS.items()]


def query_terms(text: str) -> list[str]:
    """The words of a query as both analysers count them: lower-cased, ASCII-folded, split on
    anything that is not a letter or digit, stop words dropped, each word once."""
    folded = unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode("ascii")
    terms: list[str] = []
    for word in _WORD.findall(folded):
        if word not in ENGLISH_STOP_WORDS and word not in terms:
            terms.append(word)
    return terms


def required_terms(terms: int, rule: str = MINIMUM_SHOULD_MATCH) -> int:
    """How many of `terms` query words a product must match under the conditional rule "N<P%"
    (Lucene's syntax: up to N words all are required, above N P% of them, rounded down)."""
    match = _RULE.match(rule)
    if match is None:
        raise ValueError(f"minimum_should_match {rule!r} is not of the form N<P%")
    upto, percent = int(match.group(1)), int(match.group(2))
    if terms <= upto:
        return terms
    return max(1, terms * percent // 100)
