"""The embedded engine's rows: the physical Arrow schema and conversion between products and rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from shoprank.arrays import FloatArray
from shoprank.schema import VECTOR_DIM, Product


def arrow_schema(dim: int) -> pa.Schema:
    """Physical table schema: the product fields, derived search columns and the vector."""
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("title", pa.string()),
            pa.field("description", pa.string()),
            pa.field("bullet_points", pa.string()),
            pa.field("brand", pa.string()),
            pa.field("color", pa.string()),
            pa.field("category", pa.list_(pa.string())),
            pa.field("category_path", pa.string()),
            pa.field("category_leaf", pa.string()),
            pa.field("price", pa.float64()),
            pa.field("rating", pa.float64()),
            pa.field("rating_count", pa.int64()),
            pa.field("is_book", pa.bool_()),
            pa.field("image", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), dim)),
        ]
    )


def to_arrow(products: Sequence[Product], vectors: FloatArray) -> pa.Table:
    """Products and their vectors as one Arrow table in the physical schema."""
    if len(products) != len(vectors):
        raise ValueError("one vector per product")
    dim = vectors.shape[1] if vectors.ndim == 2 else VECTOR_DIM
    columns: dict[str, list[Any]] = {name: [] for name in arrow_schema(dim).names if name != "vector"}
    for p in products:
        for name in Product.model_fields:
            columns[name].append(getattr(p, name))
        columns["category_path"].append(p.category_path)
        columns["category_leaf"].append(p.category[-1] if p.category else "")
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    return pa.table({**columns, "vector": pa.FixedSizeListArray.from_arrays(flat, dim)}, schema=arrow_schema(dim))


def product_from_row(row: dict[str, Any]) -> Product:
    """A stored row as a Product."""
    # Rows were validated on the way in; construct without re-validating on the hot path.
    fields = {name: row[name] for name in Product.model_fields if name in row}
    fields["category"] = list(fields.get("category") or [])
    return Product.model_construct(**fields)


# Schema metadata key of the bi-encoder version a table's vectors were made with.
BI_ENCODER_VERSION_KEY = b"shoprank.bi_encoder_version"


def with_bi_encoder_version(schema: pa.Schema, version: str | None) -> pa.Schema:
    """`schema` recording the bi-encoder version in its metadata (unchanged for None)."""
    if version is None:
        return schema
    return schema.with_metadata({**(schema.metadata or {}), BI_ENCODER_VERSION_KEY: version.encode("utf-8")})


def bi_encoder_version_of(schema: pa.Schema) -> str | None:
    """The bi-encoder version recorded in a table's schema metadata, or None."""
    value = (schema.metadata or {}).get(BI_ENCODER_VERSION_KEY)
    return value.decode("utf-8") if value else None
