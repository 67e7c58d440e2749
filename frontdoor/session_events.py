"""A shopper session's recent interactions, read from the UBI events the front door captured.

One small reader, bounded: segments newest first, each read backwards from its end in blocks, so
a search reads the tail of the log (at most `max_bytes`), never the whole table; the first
`limit` events of the session, most recent first. UBI's actions map onto the sidecar's
interactions (click, add_to_cart, purchase); an impression says a product was shown, not that
the shopper cared, so it is not an interaction.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from shoprank.limits import MAX_INTERACTIONS
from shoprank.ubi_log import EVENTS, UbiLog
from shoprank.vocabulary import InteractionAction
from sidecar.personalise import Interaction

log = logging.getLogger(__name__)

# UBI action_name -> the sidecar's interaction action (impressions are left out: shown is not chosen).
UBI_ACTIONS: Mapping[str, InteractionAction] = {"click": "click", "add_to_cart": "add_to_cart", "purchase": "purchase"}
# How much of the events log one search may read looking for a session's events (newest first).
MAX_SCAN_BYTES = 8 * 2**20
BLOCK_BYTES = 64 * 1024


class SessionReader(Protocol):
    """The recent interactions of one session, most recent first."""

    def recent(self, session_id: str) -> list[Interaction]: ...


def _reversed_lines(path: Path, budget: list[int]) -> Iterator[bytes]:
    """Complete lines of a file from its end, reading at most budget[0] bytes (decremented as it reads).

    What follows the last newline is never a complete record (empty, or a write torn by a crash).
    """
    with path.open("rb") as handle:
        position = handle.seek(0, 2)
        pending = b""  # the bytes before the oldest newline read so far: the end of an older line
        torn = True  # until a newline is seen, everything read follows the file's last newline
        while position > 0 and budget[0] > 0:
            size = min(BLOCK_BYTES, position, budget[0])
            position -= size
            budget[0] -= size
            handle.seek(position)
            lines = (handle.read(size) + pending).split(b"\n")
            pending, complete = lines[0], lines[1:]
            if torn and complete:
                complete, torn = complete[:-1], False
            for line in reversed(complete):
                if line:
                    yield line
        if position == 0 and pending and not torn:
            yield pending  # the file's first line


def interaction_of(record: Mapping[str, Any]) -> Interaction | None:
    """The sidecar's interaction for one stored UBI event (None: an impression, or unreadable)."""
    action = UBI_ACTIONS.get(str(record.get("action_name", "")))
    attributes = record.get("event_attributes") or {}
    product_id = str((attributes.get("object") or {}).get("object_id", ""))
    if action is None or not product_id:
        return None
    try:
        moment = datetime.fromisoformat(str(record.get("timestamp", "")))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return Interaction(product_id, action, int(moment.timestamp() * 1000))


class FileSessionEvents:
    """Sessions' interactions from the embedded engine's ubi_events table (shoprank/ubi_log.py)."""

    def __init__(self, root: Path, limit: int = MAX_INTERACTIONS, max_bytes: int = MAX_SCAN_BYTES) -> None:
        self.log = UbiLog(root, EVENTS)
        self.limit = limit
        self.max_bytes = max_bytes

    def recent(self, session_id: str) -> list[Interaction]:
        """The session's last `limit` interactions, most recent first (by timestamp)."""
        if not session_id:
            return []
        needle = json.dumps(session_id)[1:-1].encode("utf-8")  # cheap test before parsing a line
        found: list[Interaction] = []
        budget = [self.max_bytes]
        for segment in reversed(self.log.segments()):
            for line in _reversed_lines(segment, budget):
                if needle not in line:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if not isinstance(record, dict) or record.get("session_id") != session_id:
                    continue
                interaction = interaction_of(record)
                if interaction is not None:
                    found.append(interaction)
                    if len(found) >= self.limit:
                        return sorted(found, key=lambda i: -i.timestamp_ms)
            if budget[0] <= 0:
                log.debug("session %s: read the last %d bytes of ubi_events", session_id, self.max_bytes)
                break
        return sorted(found, key=lambda i: -i.timestamp_ms)


class OpenSearchSessionEvents:
    """Sessions' interactions from OpenSearch's `ubi_events` index: one term query, newest first."""

    def __init__(self, client: Any, limit: int = MAX_INTERACTIONS) -> None:
        self.client = client
        self.limit = limit

    def recent(self, session_id: str) -> list[Interaction]:
        """The session's last `limit` interactions, most recent first; none when the index does not exist."""
        from opensearchpy.exceptions import NotFoundError

        if not session_id:
            return []
        body = {
            "size": self.limit,
            "query": {
                "bool": {
                    "filter": [
                        {"term": {"session_id": session_id}},
                        {"terms": {"action_name": sorted(UBI_ACTIONS)}},
                    ]
                }
            },
        }
        try:
            # The sort as a query parameter: in the body both of the spec's sort forms match `{field: order}`.
            answer = self.client.search(index=EVENTS, body=body, sort="timestamp:desc")
        except NotFoundError:
            return []
        records = [hit.get("_source", {}) for hit in answer.get("hits", {}).get("hits", [])]
        return [i for i in (interaction_of(r) for r in records) if i is not None]
