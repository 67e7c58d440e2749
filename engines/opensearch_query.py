"""OpenSearch search bodies for the first stage, and reading their responses back.

The shapes mirror opensearch/search-templates/shop-box.mustache (a test renders the template
and compares): a `multi_match` over the shared BM25 fields, a `knn` clause on `vector`, both
inside a `hybrid` query whose scores a search pipeline fuses, shopper filters inside each
sub-query, and facet aggregations inside a `filter` aggregation that scopes them to the products
engines.facet_counts defines (the text matches inside the kNN window). Shopper text only ever
goes into `multi_match.query`, which does not parse query syntax.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from engines.base import (
    BOOST_POOL,
    FACET_NAMES,
    PRICE_BUCKETS,
    CategoryBoost,
    EngineError,
    FacetBucket,
    Filters,
    Hit,
    RetrievalQuery,
    price_bucket_label,
)
from engines.bm25_fields import MINIMUM_SHOULD_MATCH, boosted_field_list
from engines.facet_counts import count_facets, facet_row
from shoprank.schema import Product

# Product fields stored in `_source`; everything the templates and the sidecar read.
SOURCE_FIELDS = tuple(Product.model_fields)
# Most values one terms facet returns.
FACET_TERMS_SIZE = 50
# Facet name -> keyword field it counts.
FACET_FIELDS = {"brand": "brand.keyword", "category": "category_leaf", "color": "color.keyword"}
# The `filter` aggregation holding the facet aggregations.
FACET_SCOPE = "facets"


def filter_clauses(filters: Filters) -> list[dict[str, Any]]:
    """Shopper filters as term-level clauses: exact values, never analysed or parsed."""
    clauses: list[dict[str, Any]] = []
    if filters.brands:
        clauses.append({"terms": {"brand.keyword": list(filters.brands)}})
    if filters.categories:
        clauses.append({"terms": {"category": list(filters.categories)}})
    if filters.colors:
        clauses.append({"terms": {"color.keyword": list(filters.colors)}})
    if filters.price_min is not None or filters.price_max is not None:
        bounds: dict[str, float] = {"gte": float(filters.price_min or 0.0)}
        if filters.price_max is not None:
            bounds["lte"] = float(filters.price_max)
        clauses.append({"range": {"price": bounds}})
    return clauses


def bm25_query(text: str, filters: Filters) -> dict[str, Any]:
    """The shop-box text query: cross-field match over the boosted fields, filtered."""
    query: dict[str, Any] = {
        "bool": {
            "must": [
                {
                    "multi_match": {
                        "query": text,
                        "type": "cross_fields",
                        "operator": "or",
                        "minimum_should_match": MINIMUM_SHOULD_MATCH,
                        "fields": boosted_field_list(),
                    }
                }
            ]
        }
    }
    clauses = filter_clauses(filters)
    if clauses:
        query["bool"]["filter"] = clauses
    return query


def knn_query(vector: Any, k: int, filters: Filters) -> dict[str, Any]:
    """Approximate nearest neighbours on `vector`, filtered during the graph search."""
    clause: dict[str, Any] = {"vector": np.asarray(vector, dtype=np.float32).tolist(), "k": k}
    clauses = filter_clauses(filters)
    if clauses:
        clause["filter"] = {"bool": {"filter": clauses}}
    return {"knn": {"vector": clause}}


def facet_aggregations() -> dict[str, Any]:
    """Facet aggregations: terms on brand, leaf category and color; price in the contract's buckets."""
    aggs: dict[str, Any] = {
        name: {"terms": {"field": field, "size": FACET_TERMS_SIZE}} for name, field in FACET_FIELDS.items()
    }
    ranges: list[dict[str, Any]] = []
    for low, high in PRICE_BUCKETS:
        bucket: dict[str, Any] = {"key": price_bucket_label(low, high), "from": low}
        if high is not None:
            bucket["to"] = high
        ranges.append(bucket)
    aggs["price"] = {"range": {"field": "price", "ranges": ranges}}
    return aggs


def facet_scope(query: RetrievalQuery) -> dict[str, Any]:
    """The filter of the facet aggregations: the shop-box text query (with minimum_should_match),
    inside the kNN window in hybrid mode. In knn mode the searched set already is the kNN window,
    in bm25 mode it already is the text match."""
    text = bm25_query(query.text, query.filters)
    if query.mode == "hybrid":
        return {"bool": {"filter": [text, knn_query(_vector(query), query.size, query.filters)]}}
    return text


def boosted(clause: dict[str, Any], boosts: Sequence[CategoryBoost]) -> dict[str, Any]:
    """The clause with each boosted category's matches scored x (1 + weight), the largest weight when
    a product's path holds several (engines.base.boost_factor); unmatched products keep their score."""
    if not boosts:
        return clause
    functions = [{"filter": {"term": {"category": b.category}}, "weight": 1.0 + b.weight} for b in boosts]
    return {"function_score": {"query": clause, "functions": functions, "score_mode": "max", "boost_mode": "multiply"}}


def search_body(query: RetrievalQuery) -> dict[str, Any]:
    """The `_search` body of a first-stage query (the hybrid pipeline is a request parameter)."""
    # A boost can lift a product from below the kNN cut only if the cut is deeper than the window.
    k = query.size * BOOST_POOL if query.boosts else query.size
    bm25 = boosted(bm25_query(query.text, query.filters), query.boosts)
    knn = boosted(knn_query(_vector(query), k, query.filters), query.boosts) if query.mode != "bm25" else {}
    if query.mode == "bm25":
        clause = bm25
    elif query.mode == "knn":
        clause = knn
    else:
        clause = {"hybrid": {"queries": [bm25, knn]}}
    source: dict[str, Any] = {"includes": [*SOURCE_FIELDS, "vector"] if query.with_vectors else list(SOURCE_FIELDS)}
    body: dict[str, Any] = {"size": query.size, "_source": source, "query": clause}
    if query.with_facets:
        body["aggs"] = {FACET_SCOPE: {"filter": facet_scope(query), "aggs": facet_aggregations()}}
    return body


def _vector(query: RetrievalQuery) -> Any:
    if query.vector is None:
        raise EngineError(f"{query.mode} retrieval needs a query vector")
    return query.vector


def product_from_source(source: dict[str, Any]) -> Product:
    """A stored document back as a Product (validated on the way in; not re-validated here)."""
    fields = {name: source[name] for name in Product.model_fields if name in source}
    fields["category"] = list(fields.get("category") or [])
    return Product.model_construct(**fields)


def parse_hits(response: dict[str, Any], with_vectors: bool) -> list[Hit]:
    """Hits of a search response, best first, with vectors when asked (KeyError/TypeError: not one)."""
    hits = []
    for raw in response["hits"]["hits"]:
        source = raw.get("_source") or {}
        vector = source.get("vector") if with_vectors else None
        hits.append(
            Hit(
                product=product_from_source(source),
                score=float(raw.get("_score") or 0.0),
                vector=np.asarray(vector, dtype=np.float32) if vector is not None else None,
            )
        )
    return hits


def parse_facets(response: dict[str, Any], window: Sequence[Hit]) -> dict[str, list[FacetBucket]]:
    """Facet buckets from the scoped aggregations, most frequent first (empty buckets left out); the
    ranked window's counts when no product is in the scope (engines.facet_counts)."""
    scoped = (response.get("aggregations") or {}).get(FACET_SCOPE) or {}
    if int(scoped.get("doc_count") or 0) == 0:
        return count_facets(facet_row(hit.product) for hit in window)
    facets: dict[str, list[FacetBucket]] = {}
    for name in FACET_NAMES:
        buckets = (scoped.get(name) or {}).get("buckets") or []
        counted = [FacetBucket(str(b["key"]), int(b["doc_count"])) for b in buckets if int(b.get("doc_count", 0)) > 0]
        facets[name] = counted if name == "price" else sorted(counted, key=lambda b: (-b.count, b.value))
    return facets
