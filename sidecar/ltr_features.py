"""The learning-to-rank features: one definition each, computed from what a Rerank request carries.

A window (the candidates of one request, in first-stage order) becomes an (n, len(FEATURES))
float matrix. A feature the request cannot give (no embedding, no rating, a query without a
number) is NaN, which LightGBM routes down its learned missing-value branch: a missing feature
never fails a request. Window-relative features (min-max, ranks, price percentile) are taken
within the window, so training windows and served windows must be cut the same way.

Text matching uses the diversity package's word splitter (accents, case and punctuation
aside) and its named-brand matcher, so "tresemme" names "TRESemmé" here as it does there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shoprank.normalise import min_max
from sidecar.diversify.attributes import brand_key, names_brand, words
from sidecar.domain import CandidateProduct

# Cross-encoder features: absent (NaN) when the stage runs without a cross-encoder score.
CROSS_ENCODER_FEATURES = ("ce_logit", "ce_window", "ce_rank")
FEATURES = (
    *CROSS_ENCODER_FEATURES,
    "first_stage_window",  # min-max of the first-stage score within the window
    "first_stage_rank",  # 0-based position in the first-stage order the request was sent in
    "knn_cosine",  # query vector . candidate embedding (both unit vectors); NaN without either
    "title_coverage",  # share of the query's words found in the title
    "brand_coverage",  # ... in the brand
    "category_coverage",  # ... in the category path
    "text_coverage",  # ... anywhere in title, brand, colour, category, bullets and description
    "names_brand",  # 1: the query names this product's brand; 0: it has another brand; NaN: no brand
    "names_other_brand",  # 1: the query names a brand of the window that is not this product's
    "colour_match",  # 1: a word of the product's colour is in the query; 0: none is; NaN: no colour
    "query_colour_missing",  # 1: the query names a colour word absent from the product's text
    "number_coverage",  # share of the query's number tokens (units joined: "12 oz" = "12oz") in the text
    "rating",  # 0-5 stars, NaN unknown
    "rating_count_log",  # log1p(number of ratings)
    "rating_shrunk",  # rating shrunk toward the window's mean by RATING_PRIOR_COUNT pseudo-ratings
    "price_percentile",  # share of the window's priced products cheaper than this one
)
FEATURE_INDEX = {name: i for i, name in enumerate(FEATURES)}
# Pseudo-ratings of the empirical-Bayes shrinkage: a 5.0 from 3 ratings counts less than a 4.6 from 3,000.
RATING_PRIOR_COUNT = 20.0
# Words a query uses for colours (the catalogue's colour field is free text: matched word by word).
COLOURS = frozenset(
    [
        "black",
        "white",
        "red",
        "blue",
        "green",
        "yellow",
        "orange",
        "pink",
        "purple",
        "brown",
        "grey",
        "gray",
        "silver",
        "gold",
        "beige",
        "navy",
        "teal",
        "ivory",
        "cream",
        "tan",
        "maroon",
        "turquoise",
        "violet",
        "clear",
        "transparent",
        "multicolor",
        "rose",
        "bronze",
        "copper",
        "khaki",
    ]
)
# Units a number in a query carries ("12 oz", "32gb"): joined to the number so "12 oz" meets "12oz".
UNITS = frozenset(
    [
        "oz",
        "ounce",
        "ounces",
        "in",
        "inch",
        "inches",
        "ft",
        "feet",
        "foot",
        "cm",
        "mm",
        "m",
        "ml",
        "l",
        "liter",
        "litre",
        "gb",
        "tb",
        "mb",
        "lb",
        "lbs",
        "pound",
        "pounds",
        "kg",
        "g",
        "pack",
        "pk",
        "count",
        "ct",
        "pcs",
        "pieces",
        "piece",
        "w",
        "watt",
        "watts",
        "v",
        "volt",
        "volts",
        "mah",
        "qt",
        "quart",
        "gallon",
        "gal",
        "x",
    ]
)
# Feature matrices and columns are float64: NaN marks a missing value, scores keep full precision.
Float64Array = npt.NDArray[np.float64]
_DIGIT = re.compile(r"\d")
# Words too common in shop queries to say anything about a product.
_STOPWORDS = frozenset(["a", "an", "and", "the", "of", "for", "with", "to", "in", "on", "by", "or", "set"])


def _stem(word: str) -> str:
    """A light plural fold ("towels" -> "towel", "boxes" -> "box") so coverage is not defeated by number."""
    if len(word) > 4 and word.endswith("es") and word[-3] in "sxz":
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def query_terms(query: str) -> list[str]:
    """The query's content words, stemmed, in order, without repeats."""
    seen: dict[str, None] = {}
    for word in words(query):
        if word not in _STOPWORDS:
            seen.setdefault(_stem(word), None)
    return list(seen)


def _terms(text: str) -> set[str]:
    return {_stem(w) for w in words(text)}


def coverage(terms: Sequence[str], text: str) -> float:
    """Share of the terms found among the text's stemmed words (NaN when there are no terms)."""
    if not terms:
        return math.nan
    found = _terms(text)
    return sum(t in found for t in terms) / len(terms)


def number_tokens(text: str) -> set[str]:
    """Tokens with a digit, a unit word that follows joined on ("12 oz" -> "12oz", "32gb" stays)."""
    ws = words(text)
    out = set()
    for i, word in enumerate(ws):
        if _DIGIT.search(word):
            unit = ws[i + 1] if i + 1 < len(ws) and ws[i + 1] in UNITS else ""
            out.add(word + unit)
    return out


@dataclass(frozen=True)
class QueryFacts:
    """What the features need of the query, computed once per request."""

    text: str
    words: tuple[str, ...]
    terms: tuple[str, ...]
    colours: frozenset[str]
    numbers: frozenset[str]

    @classmethod
    def of(cls, query: str) -> QueryFacts:
        """The facts of a query text."""
        query_words = words(query)
        return cls(
            text=query,
            words=tuple(query_words),
            terms=tuple(query_terms(query)),
            colours=frozenset(w for w in query_words if w in COLOURS),
            numbers=frozenset(number_tokens(query)),
        )


def _full_text(product: CandidateProduct) -> str:
    return " ".join(
        (
            product.title,
            product.brand,
            product.color,
            " ".join(product.category),
            product.bullet_points,
            product.description,
        )
    )


def _rank_fraction(values: Float64Array) -> Float64Array:
    """0 for the highest value, 1 for the lowest (ties keep input order)."""
    n = len(values)
    ranks = np.empty(n, dtype=np.float64)
    ranks[np.argsort(-values, kind="stable")] = np.arange(n)
    return ranks / max(n - 1, 1)


def _text_features(facts: QueryFacts, product: CandidateProduct, named: frozenset[str]) -> list[float]:
    terms = facts.terms
    full = _full_text(product)
    key = brand_key(product.brand)
    names = math.nan if not key else float(key in named)
    other = float(bool(named - {key}))
    colour_words = set(words(product.color))
    colour = math.nan if not colour_words else float(bool(colour_words & set(facts.words)))
    product_words = set(words(full))
    missing_colour = float(bool(facts.colours - product_words)) if facts.colours else math.nan
    numbers = math.nan
    if facts.numbers:
        found = number_tokens(full)
        numbers = sum(n in found for n in facts.numbers) / len(facts.numbers)
    return [
        coverage(terms, product.title),
        coverage(terms, product.brand),
        coverage(terms, " ".join(product.category)),
        coverage(terms, full),
        names,
        other,
        colour,
        missing_colour,
        numbers,
    ]


def _rating_features(products: Sequence[CandidateProduct]) -> Float64Array:
    """rating, log1p(count) and the shrunk rating per product (NaN where unknown)."""
    rating = np.array([p.rating if p.rating is not None else math.nan for p in products], dtype=np.float64)
    count = np.array([p.rating_count if p.rating_count is not None else math.nan for p in products], dtype=np.float64)
    known = ~np.isnan(rating)
    prior = float(rating[known].mean()) if known.any() else math.nan
    weight = np.where(np.isnan(count), 0.0, count)
    shrunk = (rating * weight + prior * RATING_PRIOR_COUNT) / (weight + RATING_PRIOR_COUNT)
    return np.stack([rating, np.log1p(count), np.where(known, shrunk, math.nan)], axis=1)


def _price_percentile(products: Sequence[CandidateProduct]) -> Float64Array:
    price = np.array([p.price if p.price is not None else math.nan for p in products], dtype=np.float64)
    known = price[~np.isnan(price)]
    if known.size < 2:
        return np.full(len(products), math.nan)
    cheaper = (known[None, :] < price[:, None]).sum(axis=1) / (known.size - 1)
    return np.where(np.isnan(price), math.nan, cheaper)


def named_brands(facts: QueryFacts, products: Sequence[CandidateProduct]) -> frozenset[str]:
    """Brand keys of the window that the query names (anywhere in the window: the features must
    not depend on an order the ranker is about to change)."""
    if not facts.words:
        return frozenset()
    keys = {brand_key(p.brand): p.brand for p in products if brand_key(p.brand)}
    return frozenset(key for key, brand in keys.items() if names_brand(facts.words, brand))


def window_features(
    query: str,
    products: Sequence[CandidateProduct],
    first_stage: Sequence[float],
    logits: npt.ArrayLike | None = None,
    cosines: npt.ArrayLike | None = None,
) -> Float64Array:
    """The (n, len(FEATURES)) feature matrix of one window, rows in the order given.

    logits: cross-encoder scores (None: the CE features are NaN); cosines: query-candidate
    cosine per row, NaN where a candidate had no embedding (None: all NaN).
    """
    n = len(products)
    out = np.full((n, len(FEATURES)), math.nan, dtype=np.float64)
    if n == 0:
        return out
    first = np.asarray(first_stage, dtype=np.float64)
    if logits is not None:
        ce = np.asarray(logits, dtype=np.float64)
        out[:, FEATURE_INDEX["ce_logit"]] = ce
        out[:, FEATURE_INDEX["ce_window"]] = min_max(ce)
        out[:, FEATURE_INDEX["ce_rank"]] = _rank_fraction(ce)
    out[:, FEATURE_INDEX["first_stage_window"]] = min_max(first)
    out[:, FEATURE_INDEX["first_stage_rank"]] = np.arange(n, dtype=np.float64)
    if cosines is not None:
        out[:, FEATURE_INDEX["knn_cosine"]] = np.asarray(cosines, dtype=np.float64)
    facts = QueryFacts.of(query)
    named = named_brands(facts, products)
    start = FEATURE_INDEX["title_coverage"]
    text_names = FEATURES[start : FEATURE_INDEX["number_coverage"] + 1]
    out[:, start : start + len(text_names)] = [_text_features(facts, p, named) for p in products]
    out[:, FEATURE_INDEX["rating"] : FEATURE_INDEX["rating_shrunk"] + 1] = _rating_features(products)
    out[:, FEATURE_INDEX["price_percentile"]] = _price_percentile(products)
    return out


def cosines(
    query_vector: npt.ArrayLike | None, embeddings: Sequence[npt.NDArray[np.float32] | None]
) -> list[float] | None:
    """Cosine of the query vector with each candidate embedding (NaN where there is none or the size differs)."""
    if query_vector is None or not any(e is not None and e.size for e in embeddings):
        return None
    q = np.asarray(query_vector, dtype=np.float64)
    q = q / (np.linalg.norm(q) or 1.0)
    out = []
    for e in embeddings:
        if e is None or e.size != q.size:
            out.append(math.nan)
            continue
        v = np.asarray(e, dtype=np.float64)
        out.append(float(v @ q / (np.linalg.norm(v) or 1.0)))
    return out
