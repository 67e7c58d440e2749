"""Size limits of a product and of one Rerank request: the one definition every component reads.

The product schema refuses ids over MAX_ID_BYTES, the indexer trims stored text to these limits,
the sidecar refuses requests beyond them (INVALID_ARGUMENT naming the field) and its client
trims what it sends, so a product the indexer accepts is one the sidecar takes. Limits are in
UTF-8 bytes, as the wire counts them. Field and request sizes are settings (max_field_bytes,
max_request_bytes) whose defaults are these.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_ID_BYTES = 512
MAX_FIELD_BYTES = 64 * 1024  # one text field, and one category level
MAX_CATEGORY_LEVELS = 16
MAX_QUERY_BYTES = 1024
MAX_EMBEDDING_DIM = 4096
MAX_CANDIDATES = 1000
MAX_REQUEST_BYTES = 16 * 1024 * 1024
# One Embed request: texts per call, and bytes per text (a shop-box query, or a product's bi-encoder
# text; the tokenizer truncates to the model's max length, this bounds the tokenizing work).
MAX_EMBED_TEXTS = 256
MAX_EMBED_TEXT_BYTES = 8 * 1024
# The shopper's recent interactions one request may carry (the front door reads at most this many
# of a session's events), and how far in the future an interaction's timestamp may be (clock skew).
MAX_INTERACTIONS = 200
MAX_INTERACTION_FUTURE_MS = 5 * 60 * 1000


def utf8_size(text: str) -> int:
    """Bytes of `text` in UTF-8."""
    return len(text.encode("utf-8"))


def truncate_utf8(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` UTF-8 bytes on a character boundary (unchanged when it fits)."""
    if len(text) * 4 <= max_bytes:  # no character takes more than 4 bytes: fits without encoding
        return text
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode("utf-8", errors="ignore")


def fit_category(levels: Sequence[str], max_levels: int, max_bytes: int) -> list[str]:
    """A category path within `max_levels` levels of `max_bytes` each.

    A path too deep keeps its first levels and its leaf: the leaf category is what facets and
    diversity read.
    """
    kept = list(levels)
    if len(kept) > max_levels:
        kept = [*kept[: max_levels - 1], kept[-1]] if max_levels > 1 else [kept[-1]]
    return [truncate_utf8(level, max_bytes) for level in kept]
