"""The product schema: the one definition of a catalogue product, shared by every component.

Catalogue rows are validated into `Product`; anything that fails validation is a rejected
row (dead-letter) with the reason pydantic gives, never a crash.
"""

from __future__ import annotations

import html
import math
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from shoprank.limits import MAX_CATEGORY_LEVELS, MAX_FIELD_BYTES, MAX_ID_BYTES, fit_category, truncate_utf8, utf8_size

# Bi-encoder vector dimension (all-MiniLM-L6-v2); engines refuse a model of another size.
VECTOR_DIM = 384

_WHITESPACE = re.compile(r"[ \t\r\f\v]+")


def clean_text(value: str) -> str:
    """Unescape HTML entities and collapse runs of spaces; newlines are kept (bullet separators)."""
    text = html.unescape(value)
    lines = (_WHITESPACE.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _text(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return clean_text(value)
    return value  # wrong types are rejected by the str field itself


def _bullets(value: Any) -> Any:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = "\n".join(value)
    return _text(value)


def _category(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, str):
        # Flat files carry the path as "Root > Leaf" (or "|"-separated).
        parts = re.split(r"\s*(?:>|\|)\s*", value)
        return [clean_text(p) for p in parts if p.strip()]
    if isinstance(value, list):
        return [clean_text(v) if isinstance(v, str) else v for v in value if v not in (None, "")]
    return value


def _optional_number(value: Any) -> Any:
    if isinstance(value, str) and value.strip() == "":
        return None
    if isinstance(value, bool):
        # pydantic would read True as 1: a boolean in a number column is a wrong type, not a price.
        raise ValueError("expected a number, got a boolean")
    return value


def _flag(value: Any) -> Any:
    # An empty cell (CSV) or null (JSON) means "not a book", like an absent field.
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return False
    return value


def parse_product_id(value: Any) -> str:
    """A product id as text: strings and integers (CSV/JSON numeric ids) are ids, nothing else is."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"id must be a non-empty string, got {type(value).__name__}")
    return str(value).strip()


Text = Annotated[str, BeforeValidator(_text)]


class Product(BaseModel):
    """A catalogue product as stored in the engine and sent to the reranker."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=False)

    id: Annotated[str, Field(min_length=1)]  # at most MAX_ID_BYTES UTF-8 bytes, as the sidecar counts
    title: Annotated[str, BeforeValidator(_text), Field(min_length=1)]
    description: Text = ""
    bullet_points: Annotated[str, BeforeValidator(_bullets)] = ""
    brand: Text = ""
    color: Text = ""
    category: Annotated[list[str], BeforeValidator(_category)] = Field(default_factory=list)
    price: Annotated[float | None, BeforeValidator(_optional_number)] = None
    rating: Annotated[float | None, BeforeValidator(_optional_number)] = None
    rating_count: Annotated[int | None, BeforeValidator(_optional_number)] = None
    is_book: Annotated[bool, BeforeValidator(_flag)] = False
    image: Text = ""

    @field_validator("id", mode="before")
    @classmethod
    def _id_is_text(cls, value: Any) -> Any:
        # Numeric ids from CSV/JSON are fine as text; anything else (lists, objects, bools) is not.
        return parse_product_id(value)

    @field_validator("id")
    @classmethod
    def _id_fits(cls, value: str) -> str:
        # An id cannot be shortened without becoming another product's: too long is a rejected row.
        size = utf8_size(value)
        if size > MAX_ID_BYTES:
            raise ValueError(f"must be at most {MAX_ID_BYTES} UTF-8 bytes, got {size}; shorten the catalogue's ids")
        return value

    @field_validator("price")
    @classmethod
    def _price_is_sane(cls, value: float | None) -> float | None:
        if value is not None and (math.isnan(value) or math.isinf(value) or value < 0):
            raise ValueError("price must be a finite number >= 0 (or empty)")
        return value

    @field_validator("rating")
    @classmethod
    def _rating_is_sane(cls, value: float | None) -> float | None:
        if value is not None and not (0.0 <= value <= 5.0):
            raise ValueError("rating must be between 0 and 5 (or empty)")
        return value

    @field_validator("rating_count")
    @classmethod
    def _count_is_sane(cls, value: int | None) -> int | None:
        if value is not None and value < 0:
            raise ValueError("rating_count must be >= 0 (or empty)")
        return value

    @property
    def category_path(self) -> str:
        """The category path as one string, root to leaf."""
        return " > ".join(self.category)


# Product fields that carry text for search and the templates (engines index these).
TEXT_FIELDS = ("title", "description", "bullet_points", "brand", "color")
# Exact-match facet fields.
FACET_FIELDS = ("brand", "color", "category")


def fit_to_limits(product: Product) -> tuple[Product, tuple[str, ...]]:
    """The product with text fields and category cut to the reranker's limits, and a note per change.

    Stored products must be ones the sidecar takes: one over a limit would fail every rerank
    window it lands in.
    """
    update: dict[str, Any] = {}
    notes = []
    for name in TEXT_FIELDS:
        value: str = getattr(product, name)
        cut = truncate_utf8(value, MAX_FIELD_BYTES)
        if cut != value:
            update[name] = cut
            notes.append(f"{name}: cut from {utf8_size(value)} to {utf8_size(cut)} UTF-8 bytes")
    category = fit_category(product.category, MAX_CATEGORY_LEVELS, MAX_FIELD_BYTES)
    if category != product.category:
        update["category"] = category
        longest = max(utf8_size(level) for level in product.category)
        notes.append(
            f"category: {len(product.category)} levels (longest {longest} bytes) cut to at most "
            f"{MAX_CATEGORY_LEVELS} levels of {MAX_FIELD_BYTES} bytes, keeping the leaf"
        )
    if not update:
        return product, ()
    return product.model_copy(update=update), tuple(notes)
