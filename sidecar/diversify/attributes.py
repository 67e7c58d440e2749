"""Which brand and which category a product counts as, for diversity and its metrics.

One definition shared by the diversity methods (caps, xQuAD aspects, attribute similarity)
and by evaluation/diversity_metrics.py, so a page is diversified and measured on the same keys.

Category granularity: the leaf category, identified by its full path from the root
("Electronics > ... > Cases" under phones and under cameras are different aspects; the leaf
name alone is ambiguous). On the ESCI sample a query's judged candidates span ~0.23 distinct
leaf paths per product against ~0.13 at depth 3, so the leaf is where a 10-result page has
room to vary. Products without a category have no aspect key (""): caps never count them,
coverage never credits them, and xQuAD pools them into one "uncategorised" aspect so they
are neither favoured nor penalised. Brands compare case- and space-insensitively
("NIKE " is "Nike"); an empty brand is no brand.
"""

from __future__ import annotations

from collections.abc import Sequence

# The aspect key of a product without a category.
UNCATEGORISED = ""
PATH_SEPARATOR = " > "


def category_aspect(category: Sequence[str]) -> str:
    """The category aspect key of a product: its leaf path, or "" when it has no category."""
    levels = [level.strip() for level in category if level and level.strip()]
    return PATH_SEPARATOR.join(levels)


def category_label(aspect: str) -> str:
    """Short human name of a category aspect for explanations: the leaf level."""
    return aspect.rsplit(PATH_SEPARATOR, 1)[-1] if aspect else "uncategorised"


def brand_key(brand: str) -> str:
    """The brand as compared for caps, similarity and coverage: casefolded, spaces collapsed."""
    return " ".join(brand.split()).casefold()
