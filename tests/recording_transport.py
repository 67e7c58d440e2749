"""A recording opensearch-py connection in front of a small in-memory OpenSearch.

The real client, serializer, transport and helpers run unchanged; only the HTTP hop is
replaced. Every request is recorded, and when a SpecValidator is attached every request (path,
query parameters, body, bulk action lines, stored documents) and every canned response is
validated against the pinned OpenSearch API spec; problems collect in `cluster.violations`.

The fake keeps what the engine's semantics rest on — index templates applied by pattern, a
strict mapping, aliases changed atomically (a failing action fails the whole request),
documents by id — and answers searches from a hook (or with every document), so tests can
check what the engine sends and how it reads the answers. It does not score.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opensearchpy import Connection, OpenSearch

from tests.opensearch_spec import SpecValidator, document_schema

Response = tuple[int, dict[str, Any]]
# (op_type, index, id, document, attempt) -> (status, error) to refuse an item, or None to accept it.
BulkHook = Callable[[str, str, str, dict[str, Any] | None, int], tuple[int, dict[str, Any]] | None]
SearchHook = Callable[[str, dict[str, Any], dict[str, Any]], dict[str, Any]]

SHARDS = {"total": 1, "successful": 1, "failed": 0}


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, Any]
    body: Any
    status: int = 0
    response: Any = None


@dataclass
class FakeIndex:
    settings: dict[str, Any]
    mappings: dict[str, Any]
    aliases: set[str] = field(default_factory=set)
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)


def _error(status: int, kind: str, reason: str) -> Response:
    cause = {"type": kind, "reason": reason}
    return status, {"error": {"root_cause": [cause], **cause}, "status": status}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(base))
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _flat_index_settings(settings: dict[str, Any]) -> dict[str, Any]:
    flat = dict(settings.get("index") or {})
    flat.update({k.removeprefix("index."): v for k, v in settings.items() if k not in ("index", "analysis")})
    return flat


class FakeCluster:
    """Enough of one OpenSearch node for the engine's write, alias and read paths."""

    def __init__(self, validator: SpecValidator | None = None) -> None:
        self.validator = validator
        self.templates: dict[str, dict[str, Any]] = {}
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.scripts: dict[str, dict[str, Any]] = {}
        self.indices: dict[str, FakeIndex] = {}
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self.bulk_hook: BulkHook | None = None
        self.search_hook: SearchHook | None = None
        self.fail_next: dict[str, Response] = {}
        self._scrolls: dict[str, tuple[int, list[dict[str, Any]]]] = {}  # scroll id -> (page size, hits left)
        self._attempts: dict[tuple[str, str], int] = {}

    # ---- test helpers ---------------------------------------------------------------------

    def client(self, **kwargs: Any) -> OpenSearch:
        """A real opensearch-py client whose connection is this fake."""
        return OpenSearch(
            hosts=[{"host": "fake", "port": 9200}], connection_class=RecordingConnection, cluster=self, **kwargs
        )

    def alias_targets(self, alias: str) -> list[str]:
        return sorted(name for name, index in self.indices.items() if alias in index.aliases)

    def calls(self, method: str | None = None, suffix: str = "") -> list[Recorded]:
        return [r for r in self.requests if (method is None or r.method == method) and r.path.endswith(suffix)]

    def assert_valid(self) -> None:
        assert not self.violations, "\n".join(self.violations)

    # ---- dispatch -------------------------------------------------------------------------

    def handle(self, method: str, path: str, params: dict[str, Any], body: Any) -> Response:
        parts = [p for p in path.split("/") if p]
        key = f"{method} {path}"
        if key in self.fail_next:
            return self.fail_next.pop(key)
        head = parts[0] if parts else ""
        if head == "_index_template":
            return self._template(method, parts[1], body)
        if head == "_search" and parts[1:2] == ["scroll"]:
            return self._scroll(method, body or {})
        if head == "_search" and parts[1:2] == ["pipeline"]:
            self.pipelines[parts[2]] = body
            return 200, {"acknowledged": True}
        if head == "_scripts":
            self.scripts[parts[1]] = body
            return 200, {"acknowledged": True}
        if head == "_aliases":
            return self._update_aliases(body)
        if head == "_alias":
            return self._get_alias(parts[1])
        if head == "_bulk":
            return self._bulk(body)
        if head == "_cluster":
            return self._health(parts[2] if len(parts) > 2 else "")
        if len(parts) == 1:
            return self._index_level(method, parts[0], body)
        return self._index_api(method, parts[0], parts[1], params, body)

    def _template(self, method: str, name: str, body: Any) -> Response:
        if method == "PUT":
            self.templates[name] = body
            return 200, {"acknowledged": True}
        if name not in self.templates:
            return _error(404, "resource_not_found_exception", f"index template matching [{name}] not found")
        return 200, {"index_templates": [{"name": name, "index_template": self.templates[name]}]}

    def _resolve(self, expression: str) -> list[str]:
        names: set[str] = set()
        for part in expression.split(","):
            names.update(n for n in self.indices if fnmatch.fnmatchcase(n, part))
            names.update(n for n, index in self.indices.items() if part in index.aliases)
        return sorted(names)

    def _index_level(self, method: str, name: str, body: Any) -> Response:
        # Index settings as OpenSearch reads them back: only what was set, no nulls.
        if method == "PUT":
            if name in self.indices:
                return _error(400, "resource_already_exists_exception", f"index [{name}] already exists")
            settings, mappings = {}, {}
            for template in self.templates.values():
                if any(fnmatch.fnmatchcase(name, p) for p in template["index_patterns"]):
                    settings = template.get("template", {}).get("settings", {})
                    mappings = template.get("template", {}).get("mappings", {})
            body = body or {}
            index = FakeIndex(
                settings=_merge(settings, body.get("settings", {})), mappings=_merge(mappings, body.get("mappings", {}))
            )
            self.indices[name] = index
            return 200, {"acknowledged": True, "shards_acknowledged": True, "index": name}
        if method == "DELETE":
            for target in self._resolve(name):
                del self.indices[target]
            return 200, {"acknowledged": True}
        found = self._resolve(name)
        return 200, {
            n: {
                "aliases": {a: {} for a in sorted(self.indices[n].aliases)},
                "mappings": self.indices[n].mappings,
                "settings": {"index": _flat_index_settings(self.indices[n].settings)},
            }
            for n in found
        }

    def _index_api(self, method: str, name: str, api: str, params: dict[str, Any], body: Any) -> Response:
        targets = self._resolve(name)
        if not targets:
            return _error(404, "index_not_found_exception", f"no such index [{name}]")
        index = self.indices[targets[0]]
        if api == "_mapping" and method == "PUT":
            index.mappings = _merge(index.mappings, body)
            index.mappings["_meta"] = body.get("_meta", index.mappings.get("_meta"))
            return 200, {"acknowledged": True}
        if api == "_mapping":
            return 200, {t: {"mappings": self.indices[t].mappings} for t in targets}
        if api == "_settings":
            index.settings = _merge(index.settings, body)
            return 200, {"acknowledged": True}
        if api == "_refresh":
            return 200, {"_shards": SHARDS}
        if api == "_count":
            return 200, {"count": len(index.docs), "_shards": {**SHARDS, "skipped": 0}}
        if api == "_mget":
            docs = []
            for doc_id in body["ids"]:
                doc = index.docs.get(doc_id)
                entry: dict[str, Any] = {"_index": targets[0], "_id": doc_id, "found": doc is not None}
                if doc is not None:
                    entry.update({"_version": 1, "_seq_no": 0, "_primary_term": 1, "_source": doc})
                docs.append(entry)
            return 200, {"docs": docs}
        if api == "_search" and "scroll" in params:
            # A scroll over every document, `size` a page (a search hook does not apply).
            size = int(params.get("size") or (body or {}).get("size", 10))
            hits = search_response(targets[0], [(i, 1.0, d) for i, d in sorted(index.docs.items())])["hits"]["hits"]
            scroll_id = f"scroll-{len(self._scrolls)}"
            self._scrolls[scroll_id] = (size, hits[size:])
            response = search_response(targets[0], [(h["_id"], 1.0, h["_source"]) for h in hits[:size]])
            return 200, {**response, "_scroll_id": scroll_id}
        if api == "_search":
            response = (self.search_hook or self._all_docs)(targets[0], body or {}, params)
            return 200, response
        return _error(400, "illegal_argument_exception", f"fake cluster has no {method} {api}")

    def _scroll(self, method: str, body: dict[str, Any]) -> Response:
        scroll_id = str(body.get("scroll_id", ""))
        if method == "DELETE":
            self._scrolls.pop(scroll_id, None)
            return 200, {"succeeded": True, "num_freed": 1}
        size, rest = self._scrolls.get(scroll_id, (10, []))
        page = rest[:size]
        self._scrolls[scroll_id] = (size, rest[size:])
        response = search_response("", [(h["_id"], 1.0, h["_source"]) for h in page])
        for hit, original in zip(response["hits"]["hits"], page, strict=True):
            hit["_index"] = original["_index"]
        return 200, {**response, "_scroll_id": scroll_id}

    def _all_docs(self, index: str, body: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        docs = sorted(self.indices[index].docs.items())[: body.get("size", 10)]
        return search_response(index, [(doc_id, 1.0 / (rank + 1), doc) for rank, (doc_id, doc) in enumerate(docs)])

    def _health(self, index: str) -> Response:
        return 200, {
            "cluster_name": "fake",
            "status": "green",
            "timed_out": False,
            "number_of_nodes": 1,
            "number_of_data_nodes": 1,
            "active_primary_shards": 1,
            "active_shards": 1,
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": 0,
            "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0,
            "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": 100.0,
            "discovered_master": True,
            "discovered_cluster_manager": True,
        }

    def _get_alias(self, alias: str) -> Response:
        targets = self.alias_targets(alias)
        if not targets:
            return 404, {"error": f"alias [{alias}] missing", "status": 404}
        return 200, {t: {"aliases": {alias: {}}} for t in targets}

    def _update_aliases(self, body: dict[str, Any]) -> Response:
        staged = {name: set(index.aliases) for name, index in self.indices.items()}
        for action in body["actions"]:
            ((kind, spec),) = action.items()
            if spec["index"] not in staged:
                return _error(404, "index_not_found_exception", f"no such index [{spec['index']}]")
            if kind == "add":
                staged[spec["index"]].add(spec["alias"])
            elif spec["alias"] not in staged[spec["index"]]:
                return _error(404, "aliases_not_found_exception", f"aliases [{spec['alias']}] missing")
            else:
                staged[spec["index"]].discard(spec["alias"])
        for name, aliases in staged.items():
            self.indices[name].aliases = aliases
        return 200, {"acknowledged": True}

    def _bulk(self, lines: list[dict[str, Any]]) -> Response:
        items = []
        position = 0
        while position < len(lines):
            ((op_type, meta),) = lines[position].items()
            doc = None if op_type == "delete" else lines[position + 1]
            position += 1 if op_type == "delete" else 2
            items.append({op_type: self._bulk_item(op_type, meta, doc)})
        errors = any("error" in next(iter(item.values())) for item in items)
        return 200, {"took": 3, "errors": errors, "items": items}

    def _bulk_item(self, op_type: str, meta: dict[str, Any], doc: dict[str, Any] | None) -> dict[str, Any]:
        name, doc_id = meta["_index"], meta["_id"]
        attempt = self._attempts.get((name, doc_id), 0)
        self._attempts[(name, doc_id)] = attempt + 1
        base: dict[str, Any] = {"_index": name, "_id": doc_id}
        targets = self._resolve(name)
        if meta.get("require_alias") and not self.alias_targets(name):
            kind, reason = "index_not_found_exception", f"[{name}] is not an alias"
            return {**base, "status": 404, "error": {"type": kind, "reason": reason, "index": name}}
        if not targets:
            return {
                **base,
                "status": 404,
                "error": {"type": "index_not_found_exception", "reason": f"no such index [{name}]"},
            }
        refused = self.bulk_hook(op_type, name, doc_id, doc, attempt) if self.bulk_hook else None
        if refused is not None:
            status, error = refused
            return {**base, "status": status, "error": error}
        index = self.indices[targets[0]]
        base["_index"] = targets[0]
        ok = {"_version": 1, "_seq_no": 0, "_primary_term": 1, "_shards": {"total": 1, "successful": 1, "failed": 0}}
        if op_type == "delete":
            found = index.docs.pop(doc_id, None) is not None
            return {**base, **ok, "status": 200 if found else 404, "result": "deleted" if found else "not_found"}
        created = doc_id not in index.docs
        index.docs[doc_id] = doc or {}
        return {**base, **ok, "status": 201 if created else 200, "result": "created" if created else "updated"}


def search_response(
    index: str, hits: list[tuple[str, float, dict[str, Any]]], aggregations: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A search response with these (id, score, source) hits."""
    response: dict[str, Any] = {
        "took": 2,
        "timed_out": False,
        "_shards": {**SHARDS, "skipped": 0},
        "hits": {
            "total": {"value": len(hits), "relation": "eq"},
            "max_score": max((s for _, s, _ in hits), default=None),
            "hits": [{"_index": index, "_id": i, "_score": s, "_source": src} for i, s, src in hits],
        },
    }
    if aggregations is not None:
        response["aggregations"] = aggregations
    return response


class RecordingConnection(Connection):
    """opensearch-py Connection that answers from a FakeCluster and records every request."""

    def __init__(self, cluster: FakeCluster | None = None, **kwargs: Any) -> None:
        super().__init__(
            **{k: v for k, v in kwargs.items() if k in ("host", "port", "url_prefix", "timeout", "headers")}
        )
        assert cluster is not None, "pass cluster= to the client"
        self.cluster = cluster
        self.last_headers: dict[str, str] = {}

    def perform_request(
        self,
        method: str,
        url: str,
        params: Any = None,
        body: Any = None,
        timeout: Any = None,
        ignore: Any = (),
        headers: Any = None,
    ) -> Any:
        cluster = self.cluster
        params = dict(params or {})
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        parsed: Any = None
        if text:
            if url.rstrip("/").endswith("/_bulk"):
                parsed = [json.loads(line) for line in text.splitlines() if line.strip()]
            else:
                parsed = json.loads(text)
        record = Recorded(method, url, params, parsed)
        cluster.requests.append(record)
        if cluster.validator is not None:
            cluster.violations += [
                f"{method} {url}: {e}" for e in cluster.validator.request_errors(method, url, params, parsed)
            ]
            if isinstance(parsed, list) and url.endswith("/_bulk"):
                cluster.violations += self._document_errors(parsed)
        status, response = cluster.handle(method, url, params, parsed)
        record.status, record.response = status, response
        if cluster.validator is not None:
            cluster.violations += [
                f"{method} {url} response: {e}"
                for e in cluster.validator.response_errors(method, url, status, response)
            ]
        raw = json.dumps(response)
        if not (200 <= status < 300) and status not in (ignore or ()):
            self._raise_error(status, raw, "application/json")
        return status, {"content-type": "application/json"}, raw

    def _document_errors(self, lines: list[dict[str, Any]]) -> list[str]:
        """Bulk documents against the mapping of the index they go to (what a strict mapping accepts)."""
        from jsonschema import Draft202012Validator

        errors = []
        position = 0
        while position < len(lines):
            ((op_type, meta),) = lines[position].items()
            if op_type == "delete":
                position += 1
                continue
            targets = self.cluster._resolve(meta["_index"])
            if targets:
                schema = document_schema(self.cluster.indices[targets[0]].mappings)
                for error in Draft202012Validator(schema).iter_errors(lines[position + 1]):
                    errors.append(f"bulk document {meta['_id']}: {error.message[:200]}")
            position += 2
        return errors

    def close(self) -> None:
        """Nothing to close."""
