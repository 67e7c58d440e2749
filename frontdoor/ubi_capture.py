"""Capture of UBI records off the request path: a bounded queue, one writer thread, a sink.

A search only puts its query record on the queue (never blocks: when the queue is full the
record is dropped and counted); the writer drains it in batches into the sink: the embedded
engine's JSON Lines tables (shoprank/ubi_log.py), or `ubi_queries` / `ubi_events` indices on
OpenSearch. A failing sink is logged and counted, never raised into a search.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from opensearchpy.exceptions import RequestError

from frontdoor.page import SearchPage, SearchRequest
from frontdoor.ubi_events import MAX_EVENTS_PER_POST, new_query_id, query_record
from shoprank.settings import Settings
from shoprank.ubi_log import EVENTS, QUERIES, UbiLog, ubi_dir

log = logging.getLogger(__name__)

BATCH_RECORDS = 500
SEGMENT_BYTES = 64 * 2**20
RECENT_EVENT_IDS = 100_000  # event ids remembered for idempotent retries (the file sink)

# OpenSearch mappings of UBI's two indices (ids as keywords, so SRW's term queries work on them).
_KEYWORD = {"type": "keyword", "ignore_above": 256}
UBI_MAPPINGS: dict[str, dict[str, Any]] = {
    QUERIES: {
        "dynamic": True,
        "properties": {
            "timestamp": {"type": "date"},
            "query_id": _KEYWORD,
            "user_query": {"type": "keyword"},
            "client_id": _KEYWORD,
            "application": _KEYWORD,
            "query_response_hit_ids": _KEYWORD,
            "query_attributes": {"type": "object", "dynamic": True},
        },
    },
    EVENTS: {
        "dynamic": True,
        "properties": {
            "timestamp": {"type": "date"},
            "action_name": _KEYWORD,
            "query_id": _KEYWORD,
            "session_id": _KEYWORD,
            "client_id": _KEYWORD,
            "application": _KEYWORD,
            "user_query": {"type": "keyword"},
            "event_attributes": {
                "type": "object",
                "properties": {
                    "event_id": _KEYWORD,
                    "object": {"type": "object", "properties": {"object_id": _KEYWORD}},
                    "position": {"type": "object", "properties": {"ordinal": {"type": "integer"}}},
                },
            },
        },
    },
}


class UbiSink(Protocol):
    """Where captured records go; `write` may raise (the writer logs and counts it)."""

    def write(self, table: str, records: Sequence[Mapping[str, Any]]) -> None: ...


class FileSink:
    """The embedded engine's UBI tables under `<data_dir>/ubi/`; events deduplicated by event id."""

    def __init__(self, root: Path, segment_bytes: int, max_bytes: int, retention_s: float) -> None:
        self.logs = {table: UbiLog(root, table, segment_bytes, max_bytes, retention_s) for table in (QUERIES, EVENTS)}
        self._recent: OrderedDict[str, None] = OrderedDict()

    def write(self, table: str, records: Sequence[Mapping[str, Any]]) -> None:
        """Append records; an event whose id was written recently is skipped (a client's retry)."""
        if table == EVENTS:
            fresh = []
            for record in records:
                key = str(record["event_attributes"]["event_id"])
                if key in self._recent:
                    continue
                self._recent[key] = None
                if len(self._recent) > RECENT_EVENT_IDS:
                    self._recent.popitem(last=False)
                fresh.append(record)
            records = fresh
        self.logs[table].append(records)


class OpenSearchSink:
    """`ubi_queries` and `ubi_events` indices (created on first write); documents keyed by their id, so a
    retried event overwrites itself."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._ready: set[str] = set()

    def ensure(self, table: str) -> None:
        """Create the table's index with UBI's mapping unless it exists (setup calls it for the plugin's records)."""
        if table in self._ready:
            return
        try:
            self.client.indices.create(index=table, body={"mappings": UBI_MAPPINGS[table]})
        except RequestError as error:
            if error.error != "resource_already_exists_exception":
                raise
        self._ready.add(table)

    def write(self, table: str, records: Sequence[Mapping[str, Any]]) -> None:
        """Bulk-index records; raises when OpenSearch refuses any."""
        self.ensure(table)
        lines: list[Any] = []
        for record in records:
            doc_id = record["query_id"] if table == QUERIES else record["event_attributes"]["event_id"]
            lines.append({"index": {"_index": table, "_id": doc_id}})
            lines.append(dict(record))
        answer = self.client.bulk(body=lines)
        if answer.get("errors"):
            failed = [i for i in answer.get("items", []) if i.get("index", {}).get("error")]
            raise RuntimeError(f"OpenSearch refused {len(failed)} of {len(records)} {table} records: {failed[:1]}")


def opensearch_records(client: Any, table: str, page_size: int = 1000) -> list[dict[str, Any]]:
    """Every record of a UBI index on OpenSearch (scrolled), oldest first; none when it does not exist."""
    from opensearchpy import helpers
    from opensearchpy.exceptions import NotFoundError

    try:
        records = [
            hit["_source"]
            for hit in helpers.scan(client, index=table, query={"query": {"match_all": {}}}, size=page_size)
        ]
    except NotFoundError:
        return []
    return sorted(records, key=lambda r: str(r.get("timestamp", "")))


@dataclass
class CaptureStats:
    """What capture did since start (the counters an operator reads)."""

    queued: int = 0
    written: int = 0
    dropped: int = 0  # the queue was full
    failed: int = 0  # the sink raised


class CaptureQueue:
    """A bounded queue of (table, record) with one daemon writer thread."""

    def __init__(self, sink: UbiSink, capacity: int) -> None:
        self.sink = sink
        self.stats = CaptureStats()
        self._queue: queue.Queue[tuple[str, Mapping[str, Any]] | None] = queue.Queue(maxsize=capacity)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="ubi-capture", daemon=True)
        self._thread.start()

    def offer(self, table: str, record: Mapping[str, Any]) -> bool:
        """Queue one record without waiting; False (and counted as dropped) when the queue is full."""
        try:
            self._queue.put_nowait((table, record))
        except queue.Full:
            with self._lock:
                self.stats.dropped += 1
            return False
        with self._lock:
            self.stats.queued += 1
        return True

    def offer_all(self, table: str, records: Sequence[Mapping[str, Any]]) -> int:
        """Queue records until the queue is full; returns how many were queued (the rest are dropped)."""
        queued = 0
        for record in records:
            if not self.offer(table, record):
                with self._lock:
                    self.stats.dropped += len(records) - queued - 1
                break
            queued += 1
        return queued

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            batch: dict[str, list[Mapping[str, Any]]] = {}
            count = 0
            while item is not None:
                batch.setdefault(item[0], []).append(item[1])
                count += 1
                if count >= BATCH_RECORDS:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            stop = item is None
            for table, records in batch.items():
                try:
                    self.sink.write(table, records)
                except Exception:
                    log.exception("UBI capture: writing %d %s records failed; they are lost", len(records), table)
                    with self._lock:
                        self.stats.failed += len(records)
                    continue
                with self._lock:
                    self.stats.written += len(records)
            for _ in range(count + (1 if stop else 0)):
                self._queue.task_done()

    def flush(self) -> None:
        """Block until every queued record has been written (or failed)."""
        self._queue.join()

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued, then stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout_s)


class RateLimitedError(RuntimeError):
    """More events than the rate bound allows right now; the message says when to retry."""


class TokenBucket:
    """At most `rate` events a second on average, `burst` at once; all of a batch or none of it."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._tokens = burst
        self._at = clock()
        self._lock = threading.Lock()

    def take(self, count: int) -> float:
        """Take count tokens: 0.0 when taken, else the seconds until they would be there."""
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if count <= self._tokens:
                self._tokens -= count
                return 0.0
            return (count - self._tokens) / self.rate


class UbiCapture:
    """The front door's UBI capture: query records of served pages, and posted events, through one queue."""

    def __init__(self, queue_: CaptureQueue, application: str, events_rate: TokenBucket | None = None) -> None:
        self.queue = queue_
        self.application = application
        self.events_rate = events_rate

    def record(self, request: SearchRequest, page: SearchPage, engine: str) -> str:
        """Queue the page's ubi_queries record (dropped and counted when the queue is full); its query id."""
        query_id = new_query_id()
        attributes: dict[str, object] = {
            "engine": engine,
            "model_version": page.model_version,
            "reranked": str(page.reranked).lower(),
            "fail_open": str(page.fail_open).lower(),
            "mode": request.mode,
            "page": page.page,
            "page_size": page.page_size,
            **page.experiment,
        }
        record = query_record(
            query_id,
            request.query,
            [r.product.id for r in page.results],
            request.client_id,
            self.application,
            attributes,
        )
        self.queue.offer(QUERIES, record)
        return query_id

    def events(self, events: Sequence[Mapping[str, Any]]) -> int:
        """Queue validated events; how many were queued (the rest are dropped: the queue is full).
        RateLimitedError, queueing none, when the batch is over the rate bound."""
        wait = self.events_rate.take(len(events)) if self.events_rate else 0.0
        if wait:
            raise RateLimitedError(f"over the events rate bound; retry in {wait:.1f} s (events are idempotent)")
        return self.queue.offer_all(EVENTS, events)

    def close(self) -> None:
        """Write what is queued and stop the writer."""
        self.queue.close()


def capture_from_settings(settings: Settings) -> UbiCapture | None:
    """The capture the settings ask for: off, the embedded tables (lancedb) or OpenSearch's UBI indices."""
    if not settings.ubi_capture:
        return None
    sink: UbiSink
    if settings.engine == "opensearch":
        from engines.opensearch_client import client_from_settings

        sink = OpenSearchSink(client_from_settings(settings))
    else:
        sink = FileSink(
            ubi_dir(settings.data_dir),
            SEGMENT_BYTES,
            settings.ubi_max_bytes,
            settings.ubi_retention_days * 86400.0,
        )
    rate = settings.ubi_events_per_s
    bucket = TokenBucket(rate, max(rate, MAX_EVENTS_PER_POST)) if rate else None
    return UbiCapture(CaptureQueue(sink, settings.ubi_queue_records), settings.ubi_application, bucket)
