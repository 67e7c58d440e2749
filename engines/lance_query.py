"""The embedded engine's query helpers: shopper filters as Lance SQL, facet counts over Arrow rows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engines.base import PRICE_BUCKETS, FacetBucket, RetrievalQuery, price_bucket_label
from engines.lance_schema import arrow_schema
from shoprank.schema import VECTOR_DIM

# Columns a facet count reads: never the text or the vector.
FACET_COLUMNS = ["id", "brand", "category_leaf", "color", "price"]


def quote(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def in_list(column: str, values: Sequence[str]) -> str:
    """`column IN ('a', 'b')` with every value a quoted literal."""
    return f"{column} IN ({', '.join(quote(v) for v in values)})"


def filter_sql(query: RetrievalQuery) -> str | None:
    """Shopper filters as a Lance SQL predicate; every value is a quoted literal, never parsed."""
    f = query.filters
    clauses = []
    if f.brands:
        clauses.append(in_list("brand", f.brands))
    if f.colors:
        clauses.append(in_list("color", f.colors))
    if f.categories:
        clauses.append(f"array_has_any(category, make_array({', '.join(quote(c) for c in f.categories)}))")
    if f.price_min is not None:
        clauses.append(f"price >= {float(f.price_min)!r}")
    if f.price_max is not None:
        clauses.append(f"price <= {float(f.price_max)!r}")
    return " AND ".join(clauses) or None


def empty_facet_rows() -> pa.Table:
    """No rows, in the facet columns."""
    return arrow_schema(VECTOR_DIM).empty_table().select(FACET_COLUMNS)


def union_by_id(tables: Sequence[pa.Table]) -> pa.Table:
    """Rows of all tables, each id once (the first table's row wins)."""
    if not tables:
        return empty_facet_rows()
    union = tables[0]
    for table in tables[1:]:
        new = pc.invert(pc.is_in(table["id"], value_set=union["id"]))
        union = pa.concat_tables([union, table.filter(new).cast(union.schema)])
    return union


def facet_counts(rows: pa.Table) -> dict[str, list[FacetBucket]]:
    """Brand / leaf-category / color counts (most frequent first) and price-bucket counts (in bucket
    order, empty buckets left out) over rows with the FACET_COLUMNS."""
    facets: dict[str, list[FacetBucket]] = {}
    for name, column in (("brand", "brand"), ("category", "category_leaf"), ("color", "color")):
        counted = pc.value_counts(rows[column]) if rows.num_rows else pa.array([], pa.struct([]))
        buckets = [
            FacetBucket(str(item["values"]), int(item["counts"]))
            for item in counted.to_pylist()
            if item.get("values")  # nulls and empty strings are no facet value
        ]
        facets[name] = sorted(buckets, key=lambda b: (-b.count, b.value))
    prices = rows["price"].drop_null().to_numpy(zero_copy_only=False) if rows.num_rows else np.empty(0)
    facets["price"] = []
    for low, high in PRICE_BUCKETS:
        inside = (prices >= low) if high is None else ((prices >= low) & (prices < high))
        count = int(np.count_nonzero(inside))
        if count:
            facets["price"].append(FacetBucket(price_bucket_label(low, high), count))
    return facets
