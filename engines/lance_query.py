"""The embedded engine's query helpers: shopper filters as Lance SQL, facet rows out of Arrow."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from engines.base import RetrievalQuery
from engines.facet_counts import FacetRow
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


def facet_rows(rows: pa.Table) -> list[FacetRow]:
    """Rows with the FACET_COLUMNS as the facet counter reads them."""
    columns = [rows[name].to_pylist() for name in ("brand", "category_leaf", "color", "price")]
    return [FacetRow(*values) for values in zip(*columns, strict=True)]
