"""The embedded engine's UBI tables: `ubi_queries` and `ubi_events` as append-only JSON Lines segments.

Why files and not a LanceDB table: every capture batch would be a new Lance fragment (thousands
a day, each a file plus a manifest version) that needs compaction to stay readable; a segment is
one file appended to, fsynced per batch, readable by anything (jq, pandas, an OpenSearch bulk
load). Durable: a batch is on disk when `append` returns; a crash can only tear the last line,
which readers skip. Bounded: a segment rolls at `segment_bytes`; whole segments older than the
retention or beyond `max_bytes` in all are deleted, oldest first.

Layout: `<data_dir>/ubi/<table>/<UTC start time>-<seq>.jsonl`, one record per line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

QUERIES = "ubi_queries"
EVENTS = "ubi_events"
TABLES = (QUERIES, EVENTS)

ACTIONS = ("impression", "click", "add_to_cart", "purchase")  # the actions shoprank learns from


def ubi_dir(data_dir: Path) -> Path:
    """Where the embedded UBI tables live under a data dir."""
    return data_dir / "ubi"


def event_id(event: Mapping[str, Any]) -> str:
    """A stable id of one event: the same event posted twice is stored once (idempotent retries)."""
    attributes = event.get("event_attributes") or {}
    obj = attributes.get("object") or {}
    position = attributes.get("position") or {}
    key = "\x1f".join(
        str(part)
        for part in (
            event.get("query_id", ""),
            event.get("session_id", ""),
            event.get("client_id", ""),
            event.get("action_name", ""),
            obj.get("object_id", ""),
            position.get("ordinal", ""),
            event.get("timestamp", ""),
        )
    )
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


class UbiLog:
    """One UBI table as rolling JSON Lines segments (one writer per process; any number of readers)."""

    def __init__(
        self,
        root: Path,
        table: str,
        segment_bytes: int = 64 * 2**20,
        max_bytes: int = 2 * 2**30,
        retention_s: float = 90 * 86400.0,
    ) -> None:
        if table not in TABLES:
            raise ValueError(f"unknown UBI table {table!r}: one of {', '.join(TABLES)}")
        self.dir = root / table
        self.segment_bytes = segment_bytes
        self.max_bytes = max_bytes
        self.retention_s = retention_s
        self._lock = threading.Lock()
        self._current: Path | None = None
        self._seq = 0

    def append(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Write records durably (fsync) to the current segment; returns how many were written."""
        lines = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records]
        if not lines:
            return 0
        data = "".join(lines).encode("utf-8")
        with self._lock:
            self.dir.mkdir(parents=True, exist_ok=True)
            segment = self._segment(len(data))
            with segment.open("ab") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            self._enforce_bounds()
        return len(lines)

    def _segment(self, incoming: int) -> Path:
        current = self._current
        if current is not None and current.exists() and current.stat().st_size + incoming <= self.segment_bytes:
            return current
        self._seq += 1
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self._current = self.dir / f"{stamp}-{os.getpid()}-{self._seq:06d}.jsonl"
        return self._current

    def segments(self) -> list[Path]:
        """Segment files, oldest first (names start with their UTC creation time)."""
        return sorted(self.dir.glob("*.jsonl")) if self.dir.is_dir() else []

    def _enforce_bounds(self) -> None:
        segments = self.segments()
        now = time.time()
        total = sum(p.stat().st_size for p in segments)
        for path in segments:
            if path == self._current:
                break
            expired = now - path.stat().st_mtime > self.retention_s
            if not expired and total <= self.max_bytes:
                break
            total -= path.stat().st_size
            path.unlink(missing_ok=True)
            log.info("UBI %s: deleted segment %s (%s)", self.dir.name, path.name, "retention" if expired else "size")

    def read(self) -> Iterator[dict[str, Any]]:
        """Every stored record, oldest segment first; a torn or unreadable line is skipped."""
        for path in self.segments():
            with path.open(encoding="utf-8", errors="replace") as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.endswith("\n"):
                        continue  # a write torn by a crash
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        log.warning("UBI %s: skipping unreadable line %s:%d", self.dir.name, path.name, number)
                        continue
                    if isinstance(record, dict):
                        yield record
