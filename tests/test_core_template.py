"""The product-to-text templates shared by indexer, sidecar and training."""

from __future__ import annotations

from shoprank.schema import Product
from shoprank.template import (
    FIELD_SEPARATOR,
    MAX_DESCRIPTION_CHARS,
    bi_encoder_text,
    cross_encoder_text,
    query_text,
)

TOWEL = Product(
    id="p1",
    title="Cotton Kitchen Towels, 6 Pack",
    brand="Utopia",
    color="Grey",
    category=["Home & Kitchen", "Kitchen & Dining", "Dish Towels"],
    bullet_points="100% cotton\nMachine washable",
    description="Soft and absorbent.",
)


def test_cross_encoder_text_labels_fields_with_explicit_separators() -> None:
    text = cross_encoder_text(TOWEL)
    fields = text.split(FIELD_SEPARATOR)
    assert fields == [
        "Cotton Kitchen Towels, 6 Pack",
        "brand: Utopia",
        "color: Grey",
        "category: Home & Kitchen > Kitchen & Dining > Dish Towels",
        "100% cotton; Machine washable",
        "Soft and absorbent.",
    ]


def test_cross_encoder_text_skips_empty_fields_and_caps_huge_ones() -> None:
    product = Product(id="p2", title="Mug", description="x" * 1_000_000)
    fields = cross_encoder_text(product).split(FIELD_SEPARATOR)
    assert fields[0] == "Mug"
    assert len(fields) == 2
    assert len(fields[1]) == MAX_DESCRIPTION_CHARS


def test_bi_encoder_text_is_short_natural_text() -> None:
    assert bi_encoder_text(TOWEL) == (
        "Cotton Kitchen Towels, 6 Pack. Brand: Utopia. Color: Grey. Category: Kitchen & Dining > Dish Towels"
    )


def test_query_text_is_one_bounded_line() -> None:
    assert query_text("  kitchen \n towels\t") == "kitchen towels"
    assert len(query_text("a" * 10_000)) == 256
