"""Pseudo-queries: shopper-like queries generated from a product's own attributes.

Labels are few (a hundred judged queries), the catalogue is not: each sampled product gives a
query built from its title words, brand, leaf category, colour and audience ("slippers
women", "ugg slippers", "chime memory foam mattress queen"). The product is the positive;
products the hybrid first stage retrieves for that query (past the very top, which may hold
equally good matches) are the negatives. Queries equal to a judged query are dropped so the
held-out figures stay honest.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping, Sequence

from shoprank.schema import Product
from training.groups import Group

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "or",
        "the",
        "for",
        "with",
        "of",
        "to",
        "in",
        "on",
        "by",
        "at",
        "from",
        "as",
        "is",
        "are",
        "this",
        "that",
        "your",
        "you",
        "our",
        "it",
        "its",
        "be",
        "new",
        "pack",
        "set",
        "pcs",
        "piece",
        "pieces",
        "count",
        "size",
        "sizes",
        "inch",
        "inches",
        "x",
    ]
)
AUDIENCES = ("women", "men", "girls", "boys", "baby", "kids")
_WORD = re.compile(r"[a-z0-9][a-z0-9'./-]*[a-z0-9]|[a-z0-9]")
MAX_TITLE_WORDS = 10


def title_words(title: str) -> list[str]:
    """Lower-cased content words of a title, first occurrence order, no stopwords."""
    words: list[str] = []
    for word in _WORD.findall(title.lower()):
        if word not in STOPWORDS and word not in words:
            words.append(word)
    return words


def _audience(product: Product) -> str:
    path = " ".join(product.category).lower()
    for audience in AUDIENCES:
        if re.search(rf"\b{audience}\b", path):
            return audience
    return ""


def pseudo_query(product: Product, rng: random.Random) -> str | None:
    """One shopper-like query for a product, or None when it has too little text."""
    words = title_words(product.title)[:MAX_TITLE_WORDS]
    brand = product.brand.lower().strip()
    leaf = product.category[-1].lower() if product.category else ""
    audience = _audience(product)
    non_brand = [w for w in words if w not in brand.split()]
    options: list[list[str]] = []
    if len(words) >= 2:
        options.append(words[: rng.randint(2, min(4, len(words)))])
        k = rng.randint(2, min(4, len(words)))
        options.append([words[i] for i in sorted(rng.sample(range(len(words)), k))])
    if brand and leaf:
        options.append([brand, leaf])
    if brand and len(non_brand) >= 1:
        options.append([brand, *non_brand[: rng.randint(1, min(2, len(non_brand)))]])
    if leaf and (audience or product.color):
        attribute = audience or product.color.lower()
        options.append([leaf, attribute] if rng.random() < 0.5 else [attribute, leaf])
    if len(non_brand) >= 2 and (audience or product.color):
        options.append([*non_brand[:2], audience or product.color.lower()])
    if not options:
        return None
    return " ".join(rng.choice(options))


def pseudo_queries(
    products: Sequence[Product], count: int, seed: int, exclude: Iterable[str] = ()
) -> list[tuple[str, Product]]:
    """`count` (query, source product) pairs from products sampled with a seed; no query in `exclude`."""
    rng = random.Random(seed)
    banned = {q.lower() for q in exclude}
    order = list(range(len(products)))
    rng.shuffle(order)
    out: list[tuple[str, Product]] = []
    seen: set[str] = set()
    for index in order:
        if len(out) >= count:
            break
        query = pseudo_query(products[index], rng)
        if query is None or query in banned or query in seen:
            continue
        seen.add(query)
        out.append((query, products[index]))
    return out


def pseudo_groups(
    pairs: Sequence[tuple[str, Product]],
    hits: Mapping[str, Sequence[str]],
    products: Mapping[str, Product],
    negatives_from: int,
    negatives: int,
) -> list[Group]:
    """A group per pseudo-query: the source product (target 1) and retrieved products (target 0).

    Hits of the same title as the source (size/colour variants) are not negatives.
    """
    groups = []
    for query, source in pairs:
        title = source.title.lower()
        ids = [
            pid
            for pid in list(hits.get(query, ()))[negatives_from:]
            if pid != source.id and pid in products and products[pid].title.lower() != title
        ][:negatives]
        if ids:
            n = len(ids) + 1
            groups.append(Group(query, (source.id, *ids), (1.0,) + (0.0,) * len(ids), (1.0,) * n, "pseudo"))
    return groups
