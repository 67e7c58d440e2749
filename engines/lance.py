"""The embedded engine: LanceDB tables on disk, one physical table per version behind an alias.

A full reindex fills a new table (invisible to search), builds its BM25 and vector indices,
then swaps the alias file atomically and keeps the previous table for rollback. Incremental
changes upsert/delete by id in the live table. BM25 is Lance's native full-text index
(English stemming), kNN is cosine, hybrid fuses both like OpenSearch's normalization pipeline.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from lancedb.query import FullTextOperator, MultiMatchQuery

from engines.base import (
    BOOST_POOL,
    CategoryBoost,
    EngineError,
    Hit,
    NoLiveIndexError,
    RetrievalQuery,
    RetrievalResult,
    WriteFailure,
    boost_factor,
)
from engines.bm25_fields import BM25_FIELDS, MINIMUM_SHOULD_MATCH, query_terms, required_terms
from engines.facet_counts import count_facets, facet_row
from engines.fusion import min_max_fusion
from engines.heap import bound_heap_growth, release_free_heap
from engines.lance_query import FACET_COLUMNS, empty_facet_rows, facet_rows, filter_sql, in_list
from engines.lance_schema import (
    arrow_schema,
    bi_encoder_version_of,
    product_from_row,
    to_arrow,
    with_bi_encoder_version,
)
from engines.versions import AliasFile, AliasState, new_version_name
from shoprank.arrays import FloatArray
from shoprank.schema import VECTOR_DIM, Product

log = logging.getLogger(__name__)

# Below this many rows an exact (flat) vector scan is as fast as an ANN index and exact.
ANN_MIN_ROWS = 20_000
# Rows buffered before one write to a new version: fewer, larger fragments to index and search.
WRITE_ROWS = 8192
# Memory one full-text index build may use (MiB); Lance spills posting lists beyond it.
FTS_BUILD_MEMORY_MB = 128
# Vectors per IVF partition sampled to train the ANN index (Lance's default is 256). Lance also
# samples 256x this many vectors to train the scalar quantizer and holds the sample in memory:
# 64 bounds that sample whatever the catalogue size, at the same recall@10 as 256
# (docs/benchmarks.md, "Measurements behind constants").
ANN_SAMPLE_RATE = 64
# Lance settings it reads from the environment (a value already set there wins). They keep the IVF
# build's memory nearly flat from 20k to 200k products (docs/benchmarks.md, "Measurements behind constants"):
# reading one fragment ahead instead of several, and the shuffler that writes each partition as it
# goes. The read-ahead is read once per process, at its first scan.
LANCE_ENVIRONMENT = {"LANCE_DEFAULT_FRAGMENT_READAHEAD": "1", "LANCE_LEGACY_SHUFFLER": "1"}
# Incremental rows not yet in the indices are searched by a scan; fold them in past this share.
UNINDEXED_SHARE_TO_OPTIMIZE = 0.05
UNINDEXED_MIN_TO_OPTIMIZE = 1000


class LanceVersionBuilder:
    """One new physical table being filled; see `engines.base.VersionBuilder`.

    Batches are buffered and written WRITE_ROWS at a time (each Lance write is a fragment and
    a table version). A later write of an id replaces the earlier one, buffered or written.
    """

    def __init__(
        self, engine: LanceEngine, dim: int, lock: contextlib.ExitStack, bi_encoder_version: str | None = None
    ) -> None:
        self.engine = engine
        self.version = new_version_name(engine.alias)
        self.dim = dim
        self.schema = with_bi_encoder_version(arrow_schema(dim), bi_encoder_version)
        self._lock = lock
        self._table: Any = None
        self._written: set[str] = set()  # ids in the table
        self._buffer: list[pa.Table] = []
        self._buffered: set[str] = set()  # ids in the buffer
        self._buffered_rows = 0

    def write(self, products: Sequence[Product], vectors: FloatArray) -> list[WriteFailure]:
        """Add a batch to the new table (ids written earlier in this run are replaced: last wins)."""
        if not products:
            return []
        ids = [p.id for p in products]
        if not self._buffered.isdisjoint(ids):
            self._flush()  # the earlier occurrence is still buffered: write it, then replace it
        again = [i for i in ids if i in self._written]
        if again:
            self._delete(again)
        self._buffer.append(to_arrow(products, vectors))
        self._buffered.update(ids)
        self._buffered_rows += len(ids)
        if self._table is None or self._buffered_rows >= WRITE_ROWS:
            self._flush()  # the first batch creates the table at once, later ones go in large writes
        return []

    def _flush(self) -> None:
        if not self._buffer:
            return
        data = pa.concat_tables(self._buffer)
        if self._table is None:
            self._table = self.engine.db.create_table(self.version, data=data.cast(self.schema), schema=self.schema)
        else:
            self._table.add(data)
        self._written.update(self._buffered)
        self._buffer, self._buffered, self._buffered_rows = [], set(), 0

    def _delete(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), 1000):
            self._table.delete(in_list("id", ids[start : start + 1000]))
        self._written.difference_update(ids)

    def write_deletes(self, ids: Sequence[str]) -> None:
        """Remove ids written earlier in this run."""
        if not self._buffered.isdisjoint(ids):
            self._flush()
        present = [i for i in ids if i in self._written]
        if present:
            self._delete(present)

    def commit(self) -> str:
        """Build indices, swap the alias to this table, prune versions beyond keep_versions."""
        try:
            self._flush()
            if self._table is None:
                self._table = self.engine.db.create_table(self.version, schema=self.schema)
            rows = len(self._written)
            self._written.clear()  # not needed any more: leave the memory to the index builds
            self.engine.build_indices(self._table, rows)
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
        for name, value in LANCE_ENVIRONMENT.items():
            os.environ.setdefault(name, value)
        bound_heap_growth()
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.alias = alias
        self.keep_versions = keep_versions
        self.knn_weight = knn_weight
        self.db = lancedb.connect(str(root))
        self._aliases = AliasFile(root, alias)
        self._open: tuple[tuple[str, int], Any] | None = None  # (live, generation) -> table

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
        """Drop a physical table if it exists, even one a killed run left half-written."""
        with contextlib.suppress(ValueError, FileNotFoundError, RuntimeError, OSError):
            self.db.drop_table(name)
        directory = self.root / f"{name}.lance"
        if name.startswith(self.alias + "-") and directory.is_dir():
            shutil.rmtree(directory, ignore_errors=True)

    def clean_orphans(self) -> list[str]:
        """Drop tables no alias refers to (left by killed or aborted runs); call under the writer lock."""
        kept = set(self._aliases.read().kept())
        on_disk = {path.name.removesuffix(".lance") for path in self.root.glob(f"{self.alias}-*.lance")}
        orphans = sorted(name for name in set(self._tables()) | on_disk if name not in kept)
        for name in orphans:
            log.warning("dropping orphaned partial version %s", name)
            self.drop_table(name)
        self._aliases.clean_temp_files()
        return orphans

    def begin_version(self, dim: int, bi_encoder_version: str | None = None) -> LanceVersionBuilder:
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
        return LanceVersionBuilder(self, dim, lock, bi_encoder_version)

    def bi_encoder_version(self) -> str | None:
        """The bi-encoder version in the live table's schema metadata (None before the first index)."""
        if self._aliases.read().live is None:
            return None
        return bi_encoder_version_of(self._live_table().schema)

    def build_indices(self, table: Any, rows: int) -> None:
        """BM25 indices per text field, a scalar index on id, and an ANN index for large tables.

        The ANN index is IVF_SQ: at 200k products it builds much faster than IVF_HNSW_SQ with a
        better recall@10, for a few ms more a query (docs/benchmarks.md, "Measurements behind
        constants"). With ANN_SAMPLE_RATE, LANCE_ENVIRONMENT and `bound_heap_growth` no build
        holds memory in proportion to the catalogue, and freed memory goes back to the OS between
        the builds.
        """
        from lancedb.index import FTS, BTree, IvfSq

        release_free_heap()
        if rows >= ANN_MIN_ROWS:
            ann = IvfSq(distance_type="cosine", sample_rate=ANN_SAMPLE_RATE)
            table.create_index("vector", config=ann, replace=True)
        fts = FTS(
            language="English",
            stem=True,
            remove_stop_words=True,
            ascii_folding=True,
            lower_case=True,
            memory_limit=FTS_BUILD_MEMORY_MB,
        )
        for column in BM25_FIELDS:
            release_free_heap()
            table.create_index(column, config=fts, replace=True)
        table.create_index("id", config=BTree(), replace=True)
        release_free_heap()

    def swap_to(self, version: str) -> None:
        """Point the alias at `version` atomically; keep the previous ones, prune beyond keep_versions."""
        state = self._aliases.read()
        history = ([state.live] if state.live else []) + state.history
        keep = history[: self.keep_versions - 1]
        self._aliases.write(AliasState(live=version, history=keep))  # the commit point of a reindex
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
        # The alias file is tiny: reading it per query lets every reader (another process too)
        # see a swap, a rollback or an incremental change at once; the table is reopened only then.
        state = self._aliases.read()
        if state.live is None:
            raise NoLiveIndexError(
                f"nothing is indexed under '{self.alias}' yet; run `shoprank index --catalogue PATH`"
            )
        key = (state.live, state.generation)
        if self._open is not None and self._open[0] == key:
            return self._open[1]
        table = self.db.open_table(state.live)
        self._open = (key, table)
        return table

    def _changed(self, table: Any) -> None:
        """After an incremental write: fold a large unindexed tail into the indices, tell readers."""
        stats = table.index_stats(f"{next(iter(BM25_FIELDS))}_idx")
        if stats is not None and stats.num_unindexed_rows > max(
            UNINDEXED_MIN_TO_OPTIMIZE, UNINDEXED_SHARE_TO_OPTIMIZE * stats.num_indexed_rows
        ):
            table.optimize()
        self._aliases.write(self._aliases.read())

    def upsert(self, products: Sequence[Product], vectors: FloatArray) -> list[WriteFailure]:
        """Insert or replace by id in the live table; search sees the change when this returns."""
        if not products:
            return []
        with self._aliases.writer_lock():
            table = self._live_table()
            dim = table.schema.field("vector").type.list_size
            if vectors.ndim != 2 or vectors.shape[1] != dim:
                raise EngineError(f"vectors have shape {vectors.shape[1:]}, the live index holds {dim}-d vectors")
            (
                table.merge_insert("id")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute(to_arrow(products, vectors))
            )
            self._changed(table)
        return []

    def delete(self, ids: Sequence[str]) -> int:
        """Delete by id from the live table; search no longer finds them when this returns."""
        if not ids:
            return 0
        with self._aliases.writer_lock():
            table = self._live_table()
            for start in range(0, len(ids), 1000):
                chunk = ids[start : start + 1000]
                table.delete(in_list("id", chunk))
            self._changed(table)
        return len(ids)

    # ---- search ---------------------------------------------------------------------------

    def count(self) -> int:
        """Rows in the live table."""
        return int(self._live_table().count_rows())

    def get(self, ids: Sequence[str]) -> list[Product]:
        """Products by id, in the order asked."""
        if not ids:
            return []
        rows = self._live_table().search().where(in_list("id", ids)).limit(len(ids))
        by_id = {row["id"]: product_from_row(row) for row in rows.to_arrow().to_pylist()}
        return [by_id[i] for i in ids if i in by_id]

    def vectors(self, ids: Sequence[str]) -> dict[str, FloatArray]:
        """Stored bi-encoder vectors by id (missing ids are skipped): a shopper's products outside the window."""
        rows = self._fetch(self._live_table(), list(ids), with_vectors=True)
        return {pid: np.asarray(row["vector"], dtype=np.float32) for pid, row in rows.items()}

    def _fts(self, table: Any, query: RetrievalQuery, where: str | None) -> Any:
        # MultiMatchQuery tokenizes the text with each column's analyzer: no query-string syntax
        # (field:, AND/OR/NOT, quotes, +/-, parentheses) is ever interpreted, so user text is safe.
        search = table.search(
            MultiMatchQuery(
                query.text, list(BM25_FIELDS), boosts=list(BM25_FIELDS.values()), operator=FullTextOperator.OR
            ),
            query_type="fts",
        )
        return search.where(where, prefilter=True) if where else search

    def _bm25(self, table: Any, query: RetrievalQuery, where: str | None) -> dict[str, float]:
        if not query.text.strip():
            return {}
        rows = self._fts(table, query, where).select(["id", "_score"]).limit(query.size).to_arrow()
        return dict(zip(rows["id"].to_pylist(), rows["_score"].to_pylist(), strict=True))

    def _shop_box_matches(
        self, table: Any, query: RetrievalQuery, where: str | None, within: Sequence[str] | None, rule: str
    ) -> pa.Table:
        """Facet columns of the products matching at least `required_terms` of the query's words in
        any BM25 field (OpenSearch's cross-field minimum_should_match), among `within` ids if given."""
        terms = query_terms(query.text)
        if not terms or (within is not None and not within):
            return empty_facet_rows()
        if within is not None:
            where = " AND ".join(c for c in (in_list("id", within), where) if c)
        # No limit means Lance's default of 10: bound by what can match.
        limit = len(within) if within is not None else max(1, int(table.count_rows()))
        per_term = [
            self._fts(table, replace(query, text=term), where)
            .select([*FACET_COLUMNS, "_score"])
            .limit(limit)
            .to_arrow()
            for term in terms
        ]
        rows = pa.concat_tables([t.select(FACET_COLUMNS) for t in per_term])
        if not rows.num_rows:
            return empty_facet_rows()
        counted = pc.value_counts(rows["id"])
        enough = pc.greater_equal(counted.field("counts"), required_terms(len(terms), rule))
        matched = pc.filter(counted.field("values"), enough)
        rows = rows.filter(pc.is_in(rows["id"], value_set=matched))
        _, first = np.unique(rows["id"].to_numpy(zero_copy_only=False), return_index=True)
        return rows.take(np.sort(first))  # each product once (a row per word it matched)

    def text_matches(self, query: RetrievalQuery, minimum_should_match: str | None = MINIMUM_SHOULD_MATCH) -> list[str]:
        """Ids of every product the shop-box text query matches (filtered), in id order: under
        OpenSearch's minimum_should_match rule, or any word (None) as `retrieve` ranks them."""
        table = self._live_table()
        where = filter_sql(query)
        if minimum_should_match is None:
            return sorted(self._bm25(table, replace(query, size=max(1, int(table.count_rows()))), where))
        return sorted(self._shop_box_matches(table, query, where, None, minimum_should_match)["id"].to_pylist())

    def _knn(self, table: Any, query: RetrievalQuery, where: str | None) -> dict[str, float]:
        """kNN window scores."""
        if query.vector is None:
            raise EngineError(f"{query.mode} retrieval needs a query vector")
        search = table.search(np.asarray(query.vector, dtype=np.float32), vector_column_name="vector")
        search = search.distance_type("cosine")
        if where:
            search = search.where(where, prefilter=True)
        rows = search.select(["id", "_distance"]).limit(query.size).to_arrow()
        # Score as OpenSearch reports cosinesimil: (1 + cosine) / 2.
        return {
            doc: 1.0 - d / 2.0 for doc, d in zip(rows["id"].to_pylist(), rows["_distance"].to_pylist(), strict=True)
        }

    def retrieve(self, query: RetrievalQuery) -> RetrievalResult:
        """BM25, kNN or hybrid (min-max fusion) top hits, with products, optional vectors and facets.

        Facets count what engines.facet_counts defines: the shop-box matches (minimum_should_match)
        within the kNN window (knn, hybrid) or among all products (bm25), else the ranked window.
        """
        table = self._live_table()
        where = filter_sql(query)
        knn: dict[str, float] | None = None
        # A boost may lift products from below the window's cut: each list looks deeper, then is cut after.
        deep = replace(query, size=query.size * BOOST_POOL) if query.boosts else query
        if query.mode == "bm25":
            bm25 = self._boosted(table, self._bm25(table, deep, where), query.boosts)
            ranked = sorted(bm25.items(), key=lambda kv: (-kv[1], kv[0]))
        elif query.mode == "knn":
            knn = self._boosted(table, self._knn(table, deep, where), query.boosts)
            ranked = sorted(knn.items(), key=lambda kv: (-kv[1], kv[0]))
        else:
            knn = self._boosted(table, self._knn(table, deep, where), query.boosts)
            bm25 = self._boosted(table, self._bm25(table, deep, where), query.boosts)
            ranked = min_max_fusion([bm25, knn], [1.0 - self.knn_weight, self.knn_weight])
        ranked = ranked[: query.size]
        rows = self._fetch(table, [doc for doc, _ in ranked], query.with_vectors)
        hits = [
            Hit(
                product=product_from_row(rows[doc]),
                score=float(score),
                vector=np.asarray(rows[doc]["vector"], dtype=np.float32) if query.with_vectors else None,
            )
            for doc, score in ranked
            if doc in rows
        ]
        result = RetrievalResult(hits=hits)
        if query.with_facets:
            if knn is not None and query.boosts:  # facets count within the unboosted kNN window, as on OpenSearch
                knn = self._knn(table, query, where)
            within = None if knn is None else list(knn)
            scope = self._shop_box_matches(table, query, where, within, MINIMUM_SHOULD_MATCH)
            counted = facet_rows(scope) if scope.num_rows else [facet_row(hit.product) for hit in hits]
            result.facets = count_facets(counted)
        return result

    def _boosted(self, table: Any, scores: dict[str, float], boosts: Sequence[CategoryBoost]) -> dict[str, float]:
        """Scores x engines.base.boost_factor of each product's category path (OpenSearch's function_score)."""
        if not boosts or not scores:
            return scores
        rows = table.search().where(in_list("id", list(scores))).select(["id", "category"]).limit(len(scores))
        paths = {row["id"]: row["category"] or [] for row in rows.to_arrow().to_pylist()}
        return {doc: score * boost_factor(paths.get(doc, []), boosts) for doc, score in scores.items()}

    def _fetch(self, table: Any, ids: list[str], with_vectors: bool) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        columns = [name for name in arrow_schema(VECTOR_DIM).names if with_vectors or name != "vector"]
        rows = table.search().where(in_list("id", ids)).select(columns).limit(len(ids)).to_arrow()
        return {row["id"]: row for row in rows.to_pylist()}
