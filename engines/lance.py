"""The embedded engine: LanceDB tables on disk, one physical table per version behind an alias.

A full reindex fills a new table (invisible to search), builds its BM25 and vector indices,
then swaps the alias file atomically and keeps the previous table for rollback. Incremental
changes upsert/delete by id in the live table. BM25 is Lance's native full-text index
(English stemming), kNN is cosine, hybrid fuses both like OpenSearch's normalization pipeline.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.query import FullTextOperator, MultiMatchQuery

from engines.base import (
    FACET_NAMES,
    PRICE_BUCKETS,
    EngineError,
    FacetBucket,
    FloatArray,
    Hit,
    NoLiveIndexError,
    RetrievalQuery,
    RetrievalResult,
    WriteFailure,
    price_bucket_label,
)
from engines.bm25_fields import BM25_FIELDS
from engines.fusion import min_max_fusion
from engines.versions import AliasFile, AliasState, new_version_name
from shoprank.schema import VECTOR_DIM, Product

log = logging.getLogger(__name__)

# Below this many rows an exact (flat) vector scan is as fast as an ANN index and exact.
ANN_MIN_ROWS = 20_000


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
        for name in (
            "id",
            "title",
            "description",
            "bullet_points",
            "brand",
            "color",
            "category",
            "price",
            "rating",
            "rating_count",
            "is_book",
            "image",
        ):
            columns[name].append(getattr(p, name))
        columns["category_path"].append(p.category_path)
        columns["category_leaf"].append(p.category[-1] if p.category else "")
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    return pa.table({**columns, "vector": pa.FixedSizeListArray.from_arrays(flat, dim)}, schema=arrow_schema(dim))


def _product(row: dict[str, Any]) -> Product:
    # Rows were validated on the way in; construct without re-validating on the hot path.
    fields = {name: row[name] for name in Product.model_fields if name in row}
    fields["category"] = list(fields.get("category") or [])
    return Product.model_construct(**fields)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def filter_sql(query: RetrievalQuery) -> str | None:
    """Shopper filters as a Lance SQL predicate; every value is a quoted literal, never parsed."""
    f = query.filters
    clauses = []
    if f.brands:
        clauses.append(f"brand IN ({', '.join(_quote(b) for b in f.brands)})")
    if f.colors:
        clauses.append(f"color IN ({', '.join(_quote(c) for c in f.colors)})")
    if f.categories:
        clauses.append(f"array_has_any(category, make_array({', '.join(_quote(c) for c in f.categories)}))")
    if f.price_min is not None:
        clauses.append(f"price >= {float(f.price_min)!r}")
    if f.price_max is not None:
        clauses.append(f"price <= {float(f.price_max)!r}")
    return " AND ".join(clauses) or None


class LanceVersionBuilder:
    """One new physical table being filled; see `engines.base.VersionBuilder`."""

    def __init__(self, engine: LanceEngine, dim: int, lock: contextlib.ExitStack) -> None:
        self.engine = engine
        self.version = new_version_name(engine.alias)
        self.dim = dim
        self._lock = lock
        self._table: Any = None
        self._written: set[str] = set()

    def write(self, products: Sequence[Product], vectors: FloatArray) -> list[WriteFailure]:
        """Append a batch to the new table; ids written earlier in this run are replaced (last wins)."""
        if not products:
            return []
        data = to_arrow(products, vectors)
        if self._table is None:
            self._table = self.engine.db.create_table(self.version, data=data, schema=arrow_schema(self.dim))
        else:
            again = [p.id for p in products if p.id in self._written]
            if again:
                self._table.delete(f"id IN ({', '.join(_quote(i) for i in again)})")
            self._table.add(data)
        self._written.update(p.id for p in products)
        return []

    def write_deletes(self, ids: Sequence[str]) -> None:
        """Remove ids written earlier in this run."""
        if self._table is not None and ids:
            self._table.delete(f"id IN ({', '.join(_quote(i) for i in ids)})")
            self._written.difference_update(ids)

    def commit(self) -> str:
        """Build indices, swap the alias to this table, prune versions beyond keep_versions."""
        try:
            if self._table is None:
                self._table = self.engine.db.create_table(self.version, schema=arrow_schema(self.dim))
            self.engine.build_indices(self._table, len(self._written))
            self.engine.swap_to(self.version)
            return self.version
        finally:
            self._lock.close()

    def abort(self) -> None:
        """Drop the unfinished table; the live one is untouched."""
        try:
            self.engine.drop_table(self.version)
        finally:
            self._lock.close()


class LanceEngine:
    """Embedded engine on a LanceDB directory; implements SearchEngine and IndexWriter."""

    name = "lancedb"

    def __init__(self, root: Path, alias: str = "products", keep_versions: int = 2, knn_weight: float = 0.5) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.alias = alias
        self.keep_versions = keep_versions
        self.knn_weight = knn_weight
        self.db = lancedb.connect(str(root))
        self._aliases = AliasFile(root, alias)
        self._open: tuple[int, str, Any] | None = None

    # ---- versions -------------------------------------------------------------------------

    def live_version(self) -> str | None:
        """The table search reads now."""
        return self._aliases.read().live

    def versions(self) -> list[str]:
        """Complete versions kept, live first."""
        return self._aliases.read().kept()

    def _tables(self) -> list[str]:
        return [name for name in self.db.list_tables().tables if name.startswith(self.alias + "-")]

    def drop_table(self, name: str) -> None:
        """Drop a physical table if it exists."""
        with contextlib.suppress(ValueError, FileNotFoundError, RuntimeError):
            self.db.drop_table(name)

    def clean_orphans(self) -> list[str]:
        """Drop tables no alias refers to (left by killed or aborted runs); call under the writer lock."""
        kept = set(self._aliases.read().kept())
        orphans = [name for name in self._tables() if name not in kept]
        for name in orphans:
            log.warning("dropping orphaned partial version %s", name)
            self.drop_table(name)
        return orphans

    def begin_version(self, dim: int) -> LanceVersionBuilder:
        """Start a new version; refuses a model whose vectors do not fit the index schema."""
        if dim != VECTOR_DIM:
            raise EngineError(
                f"the model's vectors have {dim} dimensions but the index schema has {VECTOR_DIM}; "
                "build the bi-encoder with `shoprank models build`"
            )
        lock = contextlib.ExitStack()
        lock.enter_context(self._aliases.writer_lock())
        try:
            self.clean_orphans()
        except BaseException:
            lock.close()
            raise
        return LanceVersionBuilder(self, dim, lock)

    def build_indices(self, table: Any, rows: int) -> None:
        """BM25 indices per text field, a scalar index on id, and an ANN index for large tables."""
        from lancedb.index import FTS

        for column in BM25_FIELDS:
            table.create_index(
                column,
                config=FTS(language="English", stem=True, remove_stop_words=True, ascii_folding=True, lower_case=True),
                replace=True,
            )
        table.create_scalar_index("id", replace=True)
        if rows >= ANN_MIN_ROWS:
            table.create_index(metric="cosine", vector_column_name="vector", index_type="IVF_HNSW_SQ", replace=True)

    def swap_to(self, version: str) -> None:
        """Point the alias at `version` atomically; keep the previous ones, prune beyond keep_versions."""
        state = self._aliases.read()
        history = ([state.live] if state.live else []) + state.history
        keep = history[: self.keep_versions - 1]
        self._aliases.write(AliasState(live=version, history=keep))
        for name in history[self.keep_versions - 1 :]:
            self.drop_table(name)
        log.info("alias %s -> %s (kept for rollback: %s)", self.alias, version, keep)

    def rollback(self) -> str:
        """Make the previous complete version live; the rolled-back one is dropped."""
        with self._aliases.writer_lock():
            state = self._aliases.read()
            if not state.history:
                raise EngineError(f"no previous version of '{self.alias}' is kept; nothing to roll back to")
            bad, previous = state.live, state.history[0]
            self._aliases.write(AliasState(live=previous, history=state.history[1:]))
            if bad:
                self.drop_table(bad)
            return previous

    # ---- incremental ----------------------------------------------------------------------

    def _live_table(self) -> Any:
        stamp = self._aliases.mtime_ns()
        if self._open is not None and self._open[0] == stamp:
            return self._open[2]
        live = self._aliases.read().live
        if live is None:
            raise NoLiveIndexError(
                f"nothing is indexed under '{self.alias}' yet; run `shoprank index --catalogue PATH`"
            )
        table = self.db.open_table(live)
        self._open = (stamp, live, table)
        return table

    def upsert(self, products: Sequence[Product], vectors: FloatArray) -> list[WriteFailure]:
        """Insert or replace by id in the live table."""
        if not products:
            return []
        table = self._live_table()
        dim = table.schema.field("vector").type.list_size
        if vectors.shape[1] != dim:
            raise EngineError(f"vectors have {vectors.shape[1]} dimensions, the live index {dim}")
        with self._aliases.writer_lock():
            (
                table.merge_insert("id")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute(to_arrow(products, vectors))
            )
        return []

    def delete(self, ids: Sequence[str]) -> int:
        """Delete by id from the live table."""
        if not ids:
            return 0
        table = self._live_table()
        with self._aliases.writer_lock():
            for start in range(0, len(ids), 1000):
                chunk = ids[start : start + 1000]
                table.delete(f"id IN ({', '.join(_quote(i) for i in chunk)})")
        return len(ids)

    # ---- search ---------------------------------------------------------------------------

    def count(self) -> int:
        """Rows in the live table."""
        return int(self._live_table().count_rows())

    def get(self, ids: Sequence[str]) -> list[Product]:
        """Products by id, in the order asked."""
        if not ids:
            return []
        rows = self._live_table().search().where(f"id IN ({', '.join(_quote(i) for i in ids)})").limit(len(ids))
        by_id = {row["id"]: _product(row) for row in rows.to_arrow().to_pylist()}
        return [by_id[i] for i in ids if i in by_id]

    def _bm25(self, table: Any, query: RetrievalQuery, where: str | None) -> dict[str, float]:
        if not query.text.strip():
            return {}
        search = table.search(
            MultiMatchQuery(
                query.text, list(BM25_FIELDS), boosts=list(BM25_FIELDS.values()), operator=FullTextOperator.OR
            ),
            query_type="fts",
        )
        if where:
            search = search.where(where, prefilter=True)
        rows = search.select(["id"]).limit(query.size).to_arrow()
        return dict(zip(rows["id"].to_pylist(), rows["_score"].to_pylist(), strict=True))

    def _knn(self, table: Any, query: RetrievalQuery, where: str | None) -> dict[str, float]:
        if query.vector is None:
            raise EngineError(f"{query.mode} retrieval needs a query vector")
        search = table.search(np.asarray(query.vector, dtype=np.float32), vector_column_name="vector")
        search = search.distance_type("cosine")
        if where:
            search = search.where(where, prefilter=True)
        rows = search.select(["id"]).limit(query.size).to_arrow()
        # Score as OpenSearch reports cosinesimil: (1 + cosine) / 2.
        return {
            doc: 1.0 - d / 2.0 for doc, d in zip(rows["id"].to_pylist(), rows["_distance"].to_pylist(), strict=True)
        }

    def retrieve(self, query: RetrievalQuery) -> RetrievalResult:
        """BM25, kNN or hybrid (min-max fusion) top hits, with products, optional vectors and facets."""
        table = self._live_table()
        where = filter_sql(query)
        if query.mode == "bm25":
            ranked = sorted(self._bm25(table, query, where).items(), key=lambda kv: (-kv[1], kv[0]))
        elif query.mode == "knn":
            ranked = sorted(self._knn(table, query, where).items(), key=lambda kv: (-kv[1], kv[0]))
        else:
            lists = [self._bm25(table, query, where), self._knn(table, query, where)]
            ranked = min_max_fusion(lists, [1.0 - self.knn_weight, self.knn_weight])
        ranked = ranked[: query.size]
        rows = self._fetch(table, [doc for doc, _ in ranked], query.with_vectors)
        hits = [
            Hit(
                product=_product(rows[doc]),
                score=float(score),
                vector=np.asarray(rows[doc]["vector"], dtype=np.float32) if query.with_vectors else None,
            )
            for doc, score in ranked
            if doc in rows
        ]
        result = RetrievalResult(hits=hits)
        if query.with_facets:
            result.facets = facet_counts(rows.values())
        return result

    def _fetch(self, table: Any, ids: list[str], with_vectors: bool) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        columns = [name for name in arrow_schema(VECTOR_DIM).names if with_vectors or name != "vector"]
        rows = (
            table.search()
            .where(f"id IN ({', '.join(_quote(i) for i in ids)})")
            .select(columns)
            .limit(len(ids))
            .to_arrow()
        )
        return {row["id"]: row for row in rows.to_pylist()}


def facet_counts(rows: Iterable[dict[str, Any]]) -> dict[str, list[FacetBucket]]:
    """Brand / leaf-category / color / price-bucket counts over rows, most frequent first."""
    counts: dict[str, dict[str, int]] = {name: {} for name in FACET_NAMES}
    for row in rows:
        values = {"brand": row.get("brand"), "category": row.get("category_leaf"), "color": row.get("color")}
        price = row.get("price")
        if price is not None:
            for low, high in PRICE_BUCKETS:
                if price >= low and (high is None or price < high):
                    values["price"] = price_bucket_label(low, high)
                    break
        for name, value in values.items():
            if value:
                counts[name][value] = counts[name].get(value, 0) + 1
    return {
        name: [FacetBucket(v, c) for v, c in sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))]
        for name, values in counts.items()
    }
