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
("NIKE " is "Nike"); an empty brand is no brand (xQuAD's brand facet pools those likewise).

A query that names a brand ("dewalt tool cases", "tresemme shampoo") has stated its brand:
a page of that brand is what the shopper asked for, not redundancy. The named brands are
those of the first page (in relevance order) whose words appear in the query, accents,
case and punctuation aside ("TRESemmé" in "tresemme", "E-Cloth" in "ecloth"); requiring
them on the first page keeps a stray product whose brand is a common word ("Salt" for
"salt gun") from switching brand diversity off when the ranker does not back it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import cached_property

import numpy as np
import numpy.typing as npt

# The aspect key of a product without a category.
UNCATEGORISED = ""
PATH_SEPARATOR = " > "
# How deep in relevance order a brand the query names must appear to count as its intent.
NAMED_BRAND_DEPTH = 10
# A brand spelt as one word ("ecloth") matches up to this many adjacent query words ("e cloth").
_MAX_JOINED_WORDS = 3
_WORD = re.compile(r"[^\W_]+")


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


def words(text: str) -> list[str]:
    """Casefolded words of a text without accents or punctuation: "TRESemmé E-Cloth" -> tresemme, e, cloth."""
    decomposed = unicodedata.normalize("NFKD", text)
    return _WORD.findall("".join(c for c in decomposed if not unicodedata.combining(c)).casefold())


def names_brand(query_words: Sequence[str], brand: str) -> bool:
    """Whether the query (its words()) names the brand: the brand's words in a row, or the brand's
    words run together equal to one to three adjacent query words run together ("t fal" names "T-fal")."""
    brand_words = words(brand)
    if not brand_words:
        return False
    n, q = len(brand_words), list(query_words)
    if any(q[i : i + n] == brand_words for i in range(len(q) - n + 1)):
        return True
    joined = "".join(brand_words)
    return any("".join(q[i : i + m]) == joined for m in range(1, _MAX_JOINED_WORDS + 1) for i in range(len(q) - m + 1))


def codes(keys: Sequence[str]) -> npt.NDArray[np.int64]:
    """Integer code per key in first-seen order; the empty key (unknown) is -1."""
    seen: dict[str, int] = {}
    return np.array([seen.setdefault(key, len(seen)) if key else -1 for key in keys], dtype=np.int64)


class CandidateAttributes:
    """Brand and category keys of the candidates in a given order, computed on first use
    (most requests need one of them or neither)."""

    def __init__(
        self, brands: Sequence[str], categories: Sequence[Sequence[str]], order: Sequence[int], query: str = ""
    ) -> None:
        self._brands = brands
        self._categories = categories
        self._order = order
        self._query = query

    @cached_property
    def aspects(self) -> list[str]:
        """Category aspect key per candidate ("" = uncategorised)."""
        if not self._categories:
            return [""] * len(self._order)
        return [category_aspect(self._categories[i]) for i in self._order]

    @cached_property
    def category_codes(self) -> npt.NDArray[np.int64]:
        """Category aspect code per candidate (-1 = uncategorised)."""
        return codes(self.aspects)

    @cached_property
    def brand_keys(self) -> list[str]:
        """Brand key per candidate ("" = no brand)."""
        if not self._brands:
            return [""] * len(self._order)
        return [brand_key(self._brands[i]) for i in self._order]

    @cached_property
    def brand_codes(self) -> npt.NDArray[np.int64]:
        """Brand code per candidate (-1 = no brand)."""
        return codes(self.brand_keys)

    @cached_property
    def diversity_brand_codes(self) -> npt.NDArray[np.int64]:
        """Brand codes as caps and attribute similarity count them: a brand the query names counts as no brand."""
        named = self.named_brands
        if not named:
            return self.brand_codes
        return np.where([key in named for key in self.brand_keys], -1, self.brand_codes)

    @cached_property
    def brand_labels(self) -> dict[str, str]:
        """Each brand key as the first candidate with it spells it, for explanations ("" = "no brand")."""
        labels = {"": "no brand"}
        for i, key in zip(self._order, self.brand_keys, strict=True):
            if key not in labels:
                labels[key] = " ".join(self._brands[i].split())
        return labels

    @cached_property
    def named_brands(self) -> frozenset[str]:
        """Brand keys the query names, among the first NAMED_BRAND_DEPTH candidates (empty without a query)."""
        query_words = words(self._query)
        if not query_words:
            return frozenset()
        first_page = {key for key in self.brand_keys[:NAMED_BRAND_DEPTH] if key}
        return frozenset(key for key in first_page if names_brand(query_words, self.brand_labels[key]))
