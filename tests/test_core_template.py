"""The product-to-text templates shared by indexer, sidecar and training."""

from __future__ import annotations

from shoprank.schema import Product
from shoprank.template import (
    FIELD_SEPARATOR,
    MAX_DETAILS_CHARS,
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
    ]


def test_cross_encoder_text_keeps_the_most_specific_category_levels() -> None:
    product = Product(id="p3", title="Mug", category=["A", "B", "C", "D", "E"])
    assert cross_encoder_text(product).split(FIELD_SEPARATOR) == ["Mug", "category: C > D > E"]


def test_cross_encoder_text_uses_the_description_only_without_bullets() -> None:
    product = Product(id="p4", title="Mug", bullet_points=" \n ", description="Holds\n  tea.")
    assert cross_encoder_text(product).split(FIELD_SEPARATOR) == ["Mug", "Holds tea."]


def test_cross_encoder_text_cuts_long_details_at_a_word_boundary() -> None:
    words = "absorbent cotton towel " * 100
    details = cross_encoder_text(Product(id="p5", title="Towel", bullet_points=words)).split(FIELD_SEPARATOR)[1]
    assert len(details) <= MAX_DETAILS_CHARS
    assert len(details) > MAX_DETAILS_CHARS - len("absorbent ")
    assert words.startswith(details + " ")


def test_cross_encoder_text_skips_empty_fields_and_caps_huge_ones() -> None:
    product = Product(id="p2", title="Mug", description="x" * 1_000_000)
    fields = cross_encoder_text(product).split(FIELD_SEPARATOR)
    assert fields[0] == "Mug"
    assert len(fields) == 2
    assert fields[1] == "x" * MAX_DETAILS_CHARS


def test_bi_encoder_text_is_short_natural_text() -> None:
    assert bi_encoder_text(TOWEL) == (
        "Cotton Kitchen Towels, 6 Pack. Brand: Utopia. Color: Grey. Category: Kitchen & Dining > Dish Towels"
    )


def test_query_text_is_one_bounded_line() -> None:
    assert query_text("  kitchen \n towels\t") == "kitchen towels"
    assert len(query_text("a" * 10_000)) == 256
