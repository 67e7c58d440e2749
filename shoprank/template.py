"""Product-to-text templates: the one place that turns a product into model input.

The indexer (bi-encoder), the sidecar (cross-encoder) and training all call these, so a
model is always served with the template it was trained with. A model records
`TEMPLATE_VERSION` in its metadata and the sidecar refuses a model built for another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

TEMPLATE_VERSION = "t2"

# Explicit field separator for the cross-encoder: BERT's own [SEP] token, which the
# tokenizer maps to its special id, so the model sees field boundaries.
FIELD_SEPARATOR = " [SEP] "

# Character caps bound tokenization cost on pathological rows (a 1 MB description); the
# token budget truncates further, on the product side only. Title first: it carries most of
# the signal. The details (bullets, or the description when a product has none) come last as
# a short snippet: on the dev queries a 100-character snippet beat none and beat 200 characters
# (docs/benchmarks.md, "Measurements behind constants"); every extra token also costs serving latency.
MAX_TITLE_CHARS = 400
MAX_DETAILS_CHARS = 100
MAX_QUERY_CHARS = 256
# Only the most specific category levels: the top levels ("Home & Kitchen") say little.
CATEGORY_LEVELS = 3


class ProductText(Protocol):
    """The product fields the templates read (a schema.Product or the sidecar's candidate)."""

    @property
    def title(self) -> str: ...
    @property
    def brand(self) -> str: ...
    @property
    def color(self) -> str: ...
    @property
    def category(self) -> Sequence[str]: ...
    @property
    def bullet_points(self) -> str: ...
    @property
    def description(self) -> str: ...


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]


def _snippet(text: str, limit: int) -> str:
    """`text` on one line, cut to `limit` characters at a word boundary when there is one."""
    # Look at a bounded prefix only: this runs per candidate in the sidecar's hot path.
    line = " ".join(text[: 4 * limit].split())
    if len(line) <= limit:
        return line
    cut = line[: limit + 1].rsplit(" ", 1)[0]
    return cut if cut and len(cut) <= limit else line[:limit]


def query_text(query: str) -> str:
    """Normalise a shopper's query: one line, collapsed whitespace, bounded length."""
    return _cap(" ".join(query.split()), MAX_QUERY_CHARS)


def cross_encoder_text(product: ProductText, details_chars: int = MAX_DETAILS_CHARS) -> str:
    """Product side of a (query, product) cross-encoder pair: labelled fields, explicit separators.

    `details_chars` other than the default is for studies (`shoprank bench pair-length`): a served
    model is always fed the text it was trained with.
    """
    fields = [_cap(product.title, MAX_TITLE_CHARS)]
    if product.brand:
        fields.append(f"brand: {product.brand}")
    if product.color:
        fields.append(f"color: {product.color}")
    if product.category:
        fields.append("category: " + " > ".join(product.category[-CATEGORY_LEVELS:]))
    details = product.bullet_points.replace("\n", "; ") if product.bullet_points.strip() else product.description
    if details.strip() and details_chars > 0:
        fields.append(_snippet(details, details_chars))
    return FIELD_SEPARATOR.join(fields)


def bi_encoder_text(product: ProductText) -> str:
    """Text embedded into the product vector: short and natural, as the bi-encoder was trained."""
    parts = [_cap(product.title, MAX_TITLE_CHARS)]
    if product.brand:
        parts.append(f"Brand: {product.brand}")
    if product.color:
        parts.append(f"Color: {product.color}")
    if product.category:
        parts.append("Category: " + " > ".join(product.category[-2:]))
    return ". ".join(parts)
