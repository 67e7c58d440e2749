"""UBI events as click-model input: the embedded `ubi_events` table joined to `ubi_queries` for the
user query when an event does not carry it, each event id counted once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from relevance.click_models import Interaction
from shoprank.template import query_text
from shoprank.ubi_log import EVENTS, QUERIES, UbiLog


def interactions(events: Iterable[Mapping[str, Any]], queries: Iterable[Mapping[str, Any]]) -> list[Interaction]:
    """Impression and click events with their user query (normalised as judgments are); others are skipped."""
    user_query = {str(q.get("query_id")): str(q.get("user_query", "")) for q in queries}
    seen: set[str] = set()
    out: list[Interaction] = []
    for event in events:
        action = event.get("action_name")
        attributes = event.get("event_attributes") or {}
        if action not in ("impression", "click"):
            continue
        key = str(attributes.get("event_id", ""))
        if key:
            if key in seen:
                continue
            seen.add(key)
        query_id = str(event.get("query_id", ""))
        text = query_text(str(event.get("user_query") or user_query.get(query_id, "")))
        ordinal = (attributes.get("position") or {}).get("ordinal")
        product = (attributes.get("object") or {}).get("object_id")
        if not text or not isinstance(ordinal, int) or product is None:
            continue
        out.append(Interaction(query_id, text, str(product), str(action), ordinal))
    return out


def read_interactions(root: Path) -> list[Interaction]:
    """The click-model input stored under an embedded UBI dir (`<data_dir>/ubi`)."""
    if not (root / EVENTS).is_dir():
        raise FileNotFoundError(f"no UBI events under {root}: serve searches and POST /api/events first")
    return interactions(UbiLog(root, EVENTS).read(), UbiLog(root, QUERIES).read())
