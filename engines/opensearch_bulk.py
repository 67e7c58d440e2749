"""Bulk writes to OpenSearch: documents, action lines, chunked streaming with 429 retries, and a
pure classification of every other item error.

`helpers.streaming_bulk` chunks by document count and bytes and retries only items rejected
with 429 (capped exponential backoff). Every other refused item is classified here and returned
as a `WriteFailure`, so the indexing pipeline dead-letters it and the run goes on; a request
that fails as a whole (connection lost after the transport's retries) raises, so a full reindex
aborts and the live index stays as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from opensearchpy import OpenSearch, helpers

from engines.base import FloatArray, WriteFailure
from shoprank.schema import Product

log = logging.getLogger(__name__)

VECTOR_DECIMALS = 7
# OpenSearch refuses a `_id` longer than this many UTF-8 bytes, and refuses it for the whole
# bulk request (action_request_validation_exception), not as one item.
MAX_ID_BYTES = 512
# Longest error text kept per refused document (the dead-letter file keeps it).
MAX_REASON_CHARS = 300

MAPPING_ERRORS = frozenset(
    {
        "mapper_parsing_exception",
        "strict_dynamic_mapping_exception",
        "document_parsing_exception",
        "illegal_argument_exception",
        "parse_exception",
        "json_parse_exception",
        "x_content_parse_exception",
    }
)
OVERLOAD_ERRORS = frozenset(
    {"es_rejected_execution_exception", "rejected_execution_exception", "circuit_breaking_exception"}
)


@dataclass(frozen=True)
class BulkPolicy:
    """How bulk requests are cut and retried (from settings.opensearch_bulk_*)."""

    chunk_docs: int = 500
    chunk_bytes: int = 10_000_000
    max_retries: int = 5
    initial_backoff_s: int = 1
    max_backoff_s: int = 30


def product_document(product: Product, vector: Sequence[float]) -> dict[str, Any]:
    """The stored document: product fields, derived category fields and the vector."""
    doc = product.model_dump()
    doc["category_path"] = product.category_path
    doc["category_leaf"] = product.category[-1] if product.category else ""
    doc["vector"] = list(vector)
    return doc


def index_actions(
    target: str, products: Sequence[Product], vectors: FloatArray, require_alias: bool = False
) -> Iterator[dict[str, Any]]:
    """Index (insert or replace by id) actions for a batch."""
    if len(products) != len(vectors):
        raise ValueError("one vector per product")
    # Seven decimals keep float32 precision where it matters (unit vectors) and halve the JSON.
    rounded = np.round(np.asarray(vectors, dtype=np.float64), VECTOR_DECIMALS).tolist()
    for product, vector in zip(products, rounded, strict=True):
        action: dict[str, Any] = {"_op_type": "index", "_index": target, "_id": product.id}
        if require_alias:
            action["require_alias"] = True
        action["_source"] = product_document(product, vector)
        yield action


def delete_actions(target: str, ids: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Delete-by-id actions (a delete never creates an index, so it needs no `require_alias`)."""
    for doc_id in ids:
        yield {"_op_type": "delete", "_index": target, "_id": doc_id}


def expand_action(action: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One action as its bulk action line and document line (opensearch-py's own expander drops
    `require_alias`, which keeps an incremental write from auto-creating an index)."""
    op_type = action["_op_type"]
    meta: dict[str, Any] = {"_index": action["_index"], "_id": action["_id"]}
    if action.get("require_alias"):
        meta["require_alias"] = True
    return {op_type: meta}, (None if op_type == "delete" else action["_source"])


def _error_text(error: Any) -> tuple[str, str]:
    """(type, reason) of a bulk item error, following `caused_by` for the detail."""
    if isinstance(error, dict):
        kind = str(error.get("type") or "error")
        reason = str(error.get("reason") or "")
        cause = error.get("caused_by")
        if isinstance(cause, dict) and cause.get("reason"):
            reason = f"{reason} ({cause.get('type')}: {cause.get('reason')})" if reason else str(cause["reason"])
        return kind, reason
    return "error", str(error or "")


def classify_bulk_error(status: int, error: Any) -> str:
    """Why an item was refused, as "<category>: <type>: <reason>" (a pure function).

    Categories: `overloaded` (429 after every retry), `version_conflict`, `mapping` (a document
    the index mapping refuses), `index_missing`, `too_large`, `server` (5xx), `invalid`
    (another 4xx) and `unknown`.
    """
    kind, reason = _error_text(error)
    if status == 429 or kind in OVERLOAD_ERRORS:
        category = "overloaded"
    elif status == 409 or kind == "version_conflict_engine_exception":
        category = "version_conflict"
    elif kind in MAPPING_ERRORS:
        category = "mapping"
    elif kind == "index_not_found_exception" or (status == 404 and "index" in kind):
        category = "index_missing"
    elif status == 413:
        category = "too_large"
    elif status >= 500:
        category = "server"
    elif 400 <= status < 500:
        category = "invalid"
    else:
        category = "unknown"
    text = f"{category}: {kind}: {reason}" if reason else f"{category}: {kind}"
    return text[:MAX_REASON_CHARS]


def id_too_long(doc_id: str) -> str | None:
    """Why OpenSearch would refuse this `_id` (over MAX_ID_BYTES in UTF-8), or None."""
    size = len(doc_id.encode("utf-8"))
    if size <= MAX_ID_BYTES:
        return None
    return f"invalid: id_too_long: the id is {size} bytes in UTF-8; OpenSearch takes at most {MAX_ID_BYTES} bytes"


def _sendable(actions: Iterable[dict[str, Any]], failures: list[WriteFailure]) -> Iterator[dict[str, Any]]:
    # An over-long id would fail its whole bulk request: refuse that document alone. Deleting
    # one is a no-op (no such document can exist).
    for action in actions:
        reason = id_too_long(str(action["_id"]))
        if reason is None:
            yield action
        elif action["_op_type"] != "delete":
            failures.append(WriteFailure(str(action["_id"]), reason))


def run_bulk(
    client: OpenSearch, actions: Iterable[dict[str, Any]], policy: BulkPolicy, **params: Any
) -> list[WriteFailure]:
    """Send actions in chunks; returns the items OpenSearch refused (429s only after every retry)
    and those it would refuse for their whole request (an id over MAX_ID_BYTES), unsent.

    Deleting an id that is not there is not a failure. A whole request failing raises.
    """
    failures: list[WriteFailure] = []
    for ok, item in helpers.streaming_bulk(
        client,
        _sendable(actions, failures),
        chunk_size=policy.chunk_docs,
        max_chunk_bytes=policy.chunk_bytes,
        expand_action_callback=expand_action,
        raise_on_error=False,
        raise_on_exception=True,
        max_retries=policy.max_retries,
        initial_backoff=policy.initial_backoff_s,
        max_backoff=policy.max_backoff_s,
        yield_ok=False,
        **params,
    ):
        if ok:
            continue
        op_type, info = next(iter(item.items()))
        status = int(info.get("status", 500))
        if op_type == "delete" and status == 404 and info.get("result") == "not_found":
            continue
        failures.append(WriteFailure(str(info.get("_id", "")), classify_bulk_error(status, info.get("error"))))
    if failures:
        by_category: dict[str, int] = {}
        for failure in failures:
            category = failure.reason.split(":", 1)[0]
            by_category[category] = by_category.get(category, 0) + 1
        log.warning("OpenSearch refused %d documents: %s", len(failures), by_category)
    return failures
