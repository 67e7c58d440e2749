"""The production engine: OpenSearch k-NN indices, one physical index per version behind an alias.

A full reindex creates `<alias>-<stamp>` (refresh off, no replicas), bulk-loads it, restores the
template's refresh interval and replicas, refreshes, checks the document count, then swaps the
alias atomically and keeps the previous index for rollback (engines/opensearch_versions.py says
how the cluster records that). Incremental changes upsert/delete by id through the alias.
Retrieval is BM25 (`multi_match`), kNN (`knn`) or OpenSearch's own `hybrid` query fused by the
min-max (default) or RRF search pipeline that `shoprank opensearch setup` installs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError, SerializationError, TransportError

from engines.base import (
    EngineError,
    NoLiveIndexError,
    RetrievalQuery,
    RetrievalResult,
    WriteFailure,
)
from engines.facet_counts import no_facets
from engines.opensearch_assets import pipeline_name, template_index_settings, template_name, template_vector_dim
from engines.opensearch_bulk import BulkPolicy, delete_actions, index_actions, run_bulk
from engines.opensearch_client import engine_error
from engines.opensearch_query import SOURCE_FIELDS, parse_facets, parse_hits, product_from_source, search_body
from engines.opensearch_versions import (
    BuilderMark,
    VersionState,
    bi_encoder_version_from_meta,
    kept_alias,
    rollback_actions,
    swap_actions,
    version_state,
)
from engines.versions import new_version_name
from shoprank.arrays import FloatArray
from shoprank.schema import Product
from shoprank.settings import HybridTechnique, Settings

log = logging.getLogger(__name__)
# OpenSearch's name for "no search pipeline, not even the index default".
NO_PIPELINE = "_none"

T = TypeVar("T")
R = TypeVar("R")

# Settings of an index while it is bulk-loaded: no refreshes, no replicas to copy segments to.
LOADING_SETTINGS = {"refresh_interval": "-1", "number_of_replicas": 0, "auto_expand_replicas": "false"}


class OpenSearchVersionBuilder:
    """One new physical index being filled; see `engines.base.VersionBuilder`."""

    def __init__(
        self, engine: OpenSearchEngine, version: str, template: dict[str, Any], bi_encoder_version: str | None = None
    ) -> None:
        self.engine = engine
        self.version = version
        self.bi_encoder_version = bi_encoder_version
        self._template = template
        self._written: set[str] = set()
        self._last_heartbeat = time.monotonic()

    def write(self, products: Sequence[Product], vectors: FloatArray) -> list[WriteFailure]:
        """Bulk-index a batch into the new index (a later write of an id replaces it)."""
        if not products:
            return []
        self._heartbeat()
        actions = index_actions(self.version, products, vectors)
        failures = self.engine.call(lambda c: run_bulk(c, actions, self.engine.bulk_policy))
        refused = {f.id for f in failures}
        self._written.update(p.id for p in products if p.id not in refused)
        return failures

    def write_deletes(self, ids: Sequence[str]) -> None:
        """Remove ids written earlier in this run."""
        if ids:
            actions = delete_actions(self.version, ids)
            failures = self.engine.call(lambda c: run_bulk(c, actions, self.engine.bulk_policy))
            if failures:
                raise EngineError(f"could not delete {len(failures)} ids from {self.version}: {failures[0].reason}")
            self._written.difference_update(ids)

    def _heartbeat(self) -> None:
        # Tell other runs this build is alive, a few times per lease (not per batch: it is a cluster-state update).
        if time.monotonic() - self._last_heartbeat < self.engine.lease_s / 4:
            return
        self.engine.call(
            lambda c: c.indices.put_mapping(
                index=self.version,
                body={"_meta": BuilderMark.here().as_meta(self.engine.alias, self.bi_encoder_version)},
            )
        )
        self._last_heartbeat = time.monotonic()

    def _restored_settings(self) -> dict[str, Any]:
        # What the template asks for, else OpenSearch's defaults (1s refresh, 1 replica).
        wanted = template_index_settings(self._template)
        restored: dict[str, Any] = {"refresh_interval": wanted.get("refresh_interval", "1s")}
        if wanted.get("auto_expand_replicas") not in (None, False, "false"):
            restored["auto_expand_replicas"] = wanted["auto_expand_replicas"]
        else:
            restored["number_of_replicas"] = int(wanted.get("number_of_replicas", 1))
        return restored

    def commit(self) -> str:
        """Restore refresh/replicas, refresh, check the count, swap the alias, prune old versions."""
        engine, index = self.engine, self.version
        engine.call(lambda c: c.indices.put_settings(index=index, body={"index": self._restored_settings()}))
        engine.call(lambda c: c.indices.refresh(index=index))
        # Primaries allocated before the swap (the server waits up to its default 30 s). No `timeout`
        # parameter here: opensearch-py would take it as the HTTP timeout.
        engine.call(lambda c: c.cluster.health(index=index, wait_for_status="yellow"))
        stored = int(engine.call(lambda c: c.count(index=index))["count"])
        if stored != len(self._written):
            raise EngineError(
                f"{index} holds {stored} documents but {len(self._written)} were written; "
                "the alias was not swapped (rerun the index)"
            )
        engine.swap_to(index)
        return index

    def abort(self) -> None:
        """Delete the unfinished index; the live one is untouched."""
        self.engine.drop_indices([self.version])


class OpenSearchEngine:
    """OpenSearch engine behind one alias; implements SearchEngine and IndexWriter."""

    name = "opensearch"

    def __init__(
        self,
        client: OpenSearch,
        alias: str = "products",
        keep_versions: int = 2,
        hybrid_technique: HybridTechnique = "min_max",
        bulk_policy: BulkPolicy | None = None,
        lease_s: float = 600.0,
        timeout_s: float = 30.0,
        url: str = "",
        search_client: OpenSearch | None = None,
    ) -> None:
        """search_client: the client searches and reads use (engines.opensearch_client: no transport
        retries); `client` by default."""
        self.client = client
        self.search_client = search_client or client
        self.alias = alias
        self.keep_versions = keep_versions
        self.hybrid_technique = hybrid_technique
        self.bulk_policy = bulk_policy or BulkPolicy()
        self.lease_s = lease_s
        self.timeout_s = timeout_s
        self.url = url
        self._live_dims: dict[str, int] = {}

    @classmethod
    def from_settings(cls, settings: Settings, **client_overrides: Any) -> OpenSearchEngine:
        """The engine the settings describe (client_overrides: e.g. a test transport)."""
        from engines.opensearch_client import client_from_settings, search_client_from_settings

        return cls(
            client_from_settings(settings, **client_overrides),
            alias=settings.index_name,
            keep_versions=settings.keep_versions,
            hybrid_technique=settings.opensearch_hybrid_technique,
            bulk_policy=BulkPolicy(
                chunk_docs=settings.opensearch_bulk_chunk_docs,
                chunk_bytes=settings.opensearch_bulk_chunk_bytes,
                max_retries=settings.opensearch_bulk_max_retries,
                initial_backoff_s=settings.opensearch_bulk_initial_backoff_s,
                max_backoff_s=settings.opensearch_bulk_max_backoff_s,
            ),
            lease_s=settings.opensearch_build_lease_s,
            timeout_s=settings.opensearch_timeout_s,
            url=settings.opensearch_url,
            search_client=search_client_from_settings(settings, **client_overrides),
        )

    def call(self, request: Callable[[OpenSearch], T], client: OpenSearch | None = None) -> T:
        """Run one client request; an OpenSearch error becomes an EngineError that says what to check
        (engines.opensearch_client). A 404 stays a NotFoundError: callers say what is missing."""
        try:
            return request(client or self.client)
        except NotFoundError:
            raise
        except (TransportError, SerializationError) as exc:
            raise engine_error(exc, self.url) from exc

    def read(self, request: Callable[[OpenSearch], T], parse: Callable[[T], R]) -> R:
        """A search-path request on the search client, and its answer parsed; an answer of the
        wrong shape (not a search response) is a `bad_answer` EngineError, not a crash."""
        answer = self.call(request, self.search_client)
        try:
            return parse(answer)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise EngineError(
                f"OpenSearch at {self.url or 'the configured URL'} answered with something that is not a search "
                f"answer ({exc.__class__.__name__}: {str(exc)[:120]}); check that --opensearch-url points at the "
                "cluster itself",
                "bad_answer",
            ) from exc

    @contextmanager
    def _on_alias(self) -> Iterator[None]:
        try:
            yield
        except NotFoundError as exc:
            raise NoLiveIndexError(
                f"nothing is indexed under '{self.alias}' yet; "
                "run `shoprank index --engine opensearch --catalogue PATH`"
            ) from exc

    # ---- versions -------------------------------------------------------------------------

    def state(self) -> VersionState:
        """Live, kept and unfinished physical indices of the alias."""
        indices = self.call(
            lambda c: c.indices.get(index=f"{self.alias}-*", allow_no_indices=True, expand_wildcards="open,closed")
        )
        return version_state(indices, self.alias)

    def live_version(self) -> str | None:
        """The physical index search reads now."""
        return self.state().live

    def versions(self) -> list[str]:
        """Complete versions kept, live first."""
        return self.state().kept

    def bi_encoder_version(self) -> str | None:
        """The bi-encoder version in the live index's mapping `_meta` (None before the first index)."""
        live = self.live_version()
        if live is None:
            return None
        mappings = self.call(lambda c: c.indices.get_mapping(index=live))
        return bi_encoder_version_from_meta(((mappings.get(live) or {}).get("mappings") or {}).get("_meta"))

    def drop_indices(self, names: Sequence[str]) -> None:
        """Delete physical indices (missing ones are fine); failures are logged, not raised."""
        if not names:
            return
        try:
            self.call(lambda c: c.indices.delete(index=",".join(names), ignore_unavailable=True))
        except (TransportError, EngineError) as exc:
            log.warning("could not delete %s (the next run cleans them up): %s", ",".join(names), exc)

    def clean_orphans(self) -> list[str]:
        """Delete unfinished indices whose builder is gone; refuse while another build is alive."""
        state = self.state()
        orphans = []
        for name, mark in state.unfinished.items():
            if mark is not None and mark.is_alive(self.lease_s):
                raise EngineError(
                    f"another indexing run ({mark.host}, pid {mark.pid}) is building {name}; wait for it to finish "
                    f"(if it was killed on another host, its index is cleaned {self.lease_s:.0f}s after its last "
                    "heartbeat)"
                )
            orphans.append(name)
        for name in orphans:
            log.warning("dropping orphaned partial version %s", name)
        self.drop_indices(orphans)
        return orphans

    def _cluster_template(self) -> dict[str, Any]:
        name = template_name(self.alias)
        try:
            found = self.call(lambda c: c.indices.get_index_template(name=name))
        except NotFoundError as exc:
            raise EngineError(
                f"the cluster has no index template '{name}': run `shoprank opensearch setup --opensearch-url URL`"
            ) from exc
        templates = found.get("index_templates") or []
        if not templates:
            raise EngineError(f"the cluster has no index template '{name}': run `shoprank opensearch setup`")
        template: dict[str, Any] = templates[0]["index_template"]
        return template

    def _index_dim(self, index: str) -> int | None:
        mappings = self.call(lambda c: c.indices.get_mapping(index=index))
        for body in mappings.values():
            vector = ((body.get("mappings") or {}).get("properties") or {}).get("vector") or {}
            if "dimension" in vector:
                return int(vector["dimension"])
        return None

    def begin_version(self, dim: int, bi_encoder_version: str | None = None) -> OpenSearchVersionBuilder:
        """Create the next physical index; refuses a model whose vectors do not fit the template."""
        template = self._cluster_template()
        template_dim = template_vector_dim(template)
        if template_dim != dim:
            raise EngineError(
                f"the model's vectors have {dim} dimensions but index template '{template_name(self.alias)}' "
                f"has {template_dim}; build the bi-encoder that matches (`shoprank models build`) or fix "
                "opensearch/index-template.json and rerun `shoprank opensearch setup`"
            )
        self.clean_orphans()
        version = new_version_name(self.alias)
        body = {
            "settings": {"index": LOADING_SETTINGS},
            "mappings": {"_meta": BuilderMark.here().as_meta(self.alias, bi_encoder_version)},
        }
        self.call(lambda c: c.indices.create(index=version, body=body))
        created_dim = self._index_dim(version)
        if created_dim != dim:
            self.drop_indices([version])
            raise EngineError(
                f"{version} was created without the template's {dim}-d vector field (got {created_dim}); "
                f"another index template matching '{self.alias}-*' takes precedence: remove it or rename the alias"
            )
        log.info("building %s behind alias %s", version, self.alias)
        return OpenSearchVersionBuilder(self, version, template, bi_encoder_version)

    def swap_to(self, version: str) -> None:
        """Make `version` live in one atomic `_aliases` request; prune beyond keep_versions."""
        state = self.state()
        actions, pruned = swap_actions(self.alias, version, state, self.keep_versions)
        self.call(lambda c: c.indices.update_aliases(body={"actions": actions}))
        self.drop_indices(pruned)
        self._live_dims.clear()
        log.info("alias %s -> %s (pruned: %s)", self.alias, version, pruned)

    def rollback(self) -> str:
        """Make the previous complete version live; the rolled-back one is deleted."""
        state = self.state()
        if state.live is None:
            raise NoLiveIndexError(f"nothing is indexed under '{self.alias}'; nothing to roll back")
        older = [name for name in state.history() if name < state.live]
        if not older:
            raise EngineError(f"no previous version of '{self.alias}' is kept; nothing to roll back to")
        previous = older[0]
        live = state.live
        actions = rollback_actions(self.alias, live, previous)
        self.call(lambda c: c.indices.update_aliases(body={"actions": actions}))
        self.drop_indices([state.live])
        self._live_dims.clear()
        log.info(
            "rolled back alias %s: %s -> %s (kept alias %s)", self.alias, state.live, previous, kept_alias(self.alias)
        )
        return previous

    # ---- incremental ----------------------------------------------------------------------

    def _live_dim(self) -> int:
        with self._on_alias():
            aliases = self.call(lambda c: c.indices.get_alias(name=self.alias))
        live = next(iter(aliases))
        if live not in self._live_dims:
            dim = self._index_dim(live)
            if dim is None:
                raise EngineError(f"live index {live} has no vector field; reindex with `shoprank index --catalogue`")
            self._live_dims[live] = dim
        return self._live_dims[live]

    def upsert(self, products: Sequence[Product], vectors: FloatArray) -> list[WriteFailure]:
        """Insert or replace by id in the live index (through the alias, never creating an index)."""
        if not products:
            return []
        dim = self._live_dim()
        if vectors.ndim != 2 or vectors.shape[1] != dim:
            raise EngineError(f"vectors have shape {vectors.shape}, the live index takes {dim} dimensions")
        actions = index_actions(self.alias, products, vectors, require_alias=True)
        return self.call(lambda c: run_bulk(c, actions, self.bulk_policy, refresh="wait_for"))

    def delete(self, ids: Sequence[str]) -> int:
        """Delete by id from the live index; returns how many ids were asked for."""
        if not ids:
            return 0
        self._live_dim()
        actions = delete_actions(self.alias, ids)
        failures = self.call(lambda c: run_bulk(c, actions, self.bulk_policy, refresh="wait_for"))
        if failures:
            raise EngineError(
                f"OpenSearch refused {len(failures)} deletes, e.g. {failures[0].id}: {failures[0].reason}"
            )
        return len(ids)

    # ---- search ---------------------------------------------------------------------------

    def count(self) -> int:
        """Documents in the live index."""
        with self._on_alias():
            return self.read(lambda c: c.count(index=self.alias), lambda answer: int(answer["count"]))

    def get(self, ids: Sequence[str]) -> list[Product]:
        """Products by id, in the order asked (missing ids skipped)."""
        if not ids:
            return []

        def products(found: dict[str, Any]) -> dict[str, Product]:
            return {doc["_id"]: product_from_source(doc["_source"]) for doc in found["docs"] if doc.get("found")}

        with self._on_alias():
            by_id = self.read(
                lambda c: c.mget(index=self.alias, body={"ids": list(ids)}, _source_includes=list(SOURCE_FIELDS)),
                products,
            )
        return [by_id[i] for i in ids if i in by_id]

    def vectors(self, ids: Sequence[str]) -> dict[str, FloatArray]:
        """Stored bi-encoder vectors by id (missing ids are skipped): a shopper's products outside the window."""
        if not ids:
            return {}

        def parsed(found: dict[str, Any]) -> dict[str, FloatArray]:
            return {
                doc["_id"]: np.asarray(doc["_source"]["vector"], dtype=np.float32)
                for doc in found["docs"]
                if doc.get("found") and doc.get("_source", {}).get("vector")
            }

        with self._on_alias():
            return self.read(
                lambda c: c.mget(index=self.alias, body={"ids": list(ids)}, _source_includes=["vector"]), parsed
            )

    def retrieve(self, query: RetrievalQuery) -> RetrievalResult:
        """BM25, kNN or hybrid (search-pipeline fusion) top hits, with products, vectors and facets."""
        if query.mode == "bm25" and not query.text.strip():
            return RetrievalResult(hits=[], facets=no_facets() if query.with_facets else {})
        # Never the index's default pipeline (`shoprank opensearch setup --default-pipeline`): the
        # front door reranks the first stage itself, the plugin must not do it first.
        params: dict[str, Any] = {"search_pipeline": NO_PIPELINE}
        if query.mode == "hybrid":
            params["search_pipeline"] = pipeline_name(self.alias, self.hybrid_technique)
        body = search_body(query)

        def result(response: dict[str, Any]) -> RetrievalResult:
            hits = parse_hits(response, query.with_vectors)
            return RetrievalResult(hits=hits, facets=parse_facets(response, hits) if query.with_facets else {})

        with self._on_alias():
            return self.read(lambda c: c.search(index=self.alias, body=body, params=params), result)
