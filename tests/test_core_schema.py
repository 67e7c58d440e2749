"""The product schema: what a catalogue row must look like, and how messy text is cleaned."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from shoprank.schema import Product, clean_text


def test_clean_text_unescapes_entities_and_keeps_line_breaks() -> None:
    assert clean_text("Tom &amp; Jerry&#39;s   mug \n\n  second\tline ") == "Tom & Jerry's mug\nsecond line"


def test_esci_row_validates_with_defaults() -> None:
    product = Product.model_validate(
        {"id": "B0", "title": "Towel", "price": None, "category": [], "rating": 4.5, "rating_count": 10}
    )
    assert product.brand == ""
    assert product.category == []
    assert product.price is None
    assert product.category_path == ""


def test_flat_file_values_are_coerced() -> None:
    product = Product.model_validate(
        {"id": 123, "title": "Mug", "category": "Home > Kitchen | Mugs", "price": "12.50", "bullet_points": ["a", "b"]}
    )
    assert product.id == "123"
    assert product.category == ["Home", "Kitchen", "Mugs"]
    assert product.price == 12.5
    assert product.bullet_points == "a\nb"


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"id": "", "title": "x"}, "id"),
        ({"id": "   ", "title": "x"}, "id"),
        ({"id": True, "title": "x"}, "id"),
        ({"id": ["a"], "title": "x"}, "id"),
        ({"id": "é" * 300, "title": "x"}, "id"),  # 300 characters but 600 UTF-8 bytes: over the 512-byte limit
        ({"id": "a", "title": ""}, "title"),
        ({"id": "a"}, "title"),
        ({"id": "a", "title": 5}, "title"),
        ({"id": "a", "title": "x", "price": math.nan}, "price"),
        ({"id": "a", "title": "x", "price": -1}, "price"),
        ({"id": "a", "title": "x", "price": "cheap"}, "price"),
        ({"id": "a", "title": "x", "rating": 7}, "rating"),
        ({"id": "a", "title": "x", "rating_count": -3}, "rating_count"),
        ({"id": "a", "title": "x", "brand": {"name": "b"}}, "brand"),
    ],
)
def test_bad_rows_are_rejected_naming_the_field(row: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Product.model_validate(row)
    assert {str(e["loc"][0]) for e in caught.value.errors()} == {field}
