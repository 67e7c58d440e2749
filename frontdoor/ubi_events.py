"""UBI 1.3.0 records as the front door writes and accepts them: query records and shopper events.

The shapes follow UBI's JSON schemas (event.schema.json, query.request.schema.json; the tests
validate against them), narrowed to what shoprank learns from: the four actions, a 0-based
position ordinal, a product id, and a timestamp with its zone. An event that breaks a rule
is refused with the field and what to send; pseudonymous ids only (no `user_id`, no e-mail).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from shoprank.ubi_log import ACTIONS, event_id

UBI_ID_CHARS = 100  # UBI's maxLength of every id and name
UBI_OBJECT_ID_CHARS = 256
MAX_EVENTS_PER_POST = 500
MAX_EVENTS_BODY_BYTES = 1_000_000

_TOP_LEVEL = {
    "action_name",
    "timestamp",
    "query_id",
    "session_id",
    "client_id",
    "user_query",
    "application",
    "message_type",
    "message",
    "event_attributes",
}
_REQUIRED_IDS = ("query_id", "session_id", "client_id")


class EventError(ValueError):
    """One event breaks a rule; the message names the field and says what to send."""


def new_query_id() -> str:
    """A fresh UBI query id (UUID4)."""
    return str(uuid.uuid4())


def utc_now() -> str:
    """Now as an ISO 8601 timestamp with its zone (OpenSearch needs one)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def query_record(
    query_id: str,
    user_query: str,
    hit_ids: Sequence[str],
    client_id: str,
    application: str,
    attributes: Mapping[str, object],
) -> dict[str, Any]:
    """A ubi_queries record: hit ids in served order, attributes as strings (UBI keeps them untyped)."""
    return {
        "timestamp": utc_now(),
        "query_id": query_id,
        "user_query": user_query,
        "client_id": client_id,
        "application": application,
        "query_response_hit_ids": list(hit_ids),
        "query_attributes": {k: str(v) for k, v in attributes.items() if v is not None and v != ""},
    }


def _pseudonymous(name: str, value: object, limit: int = UBI_ID_CHARS) -> str:
    if not isinstance(value, str) or not value.strip():
        raise EventError(f"{name}: must be a non-empty string")
    if len(value) > limit:
        raise EventError(f"{name}: at most {limit} characters (UBI's limit), got {len(value)}")
    if "@" in value:
        raise EventError(f"{name}: looks like an e-mail address; send a pseudonymous id (e.g. a random UUID)")
    return value


def _timestamp(value: object) -> str:
    if not isinstance(value, str):
        raise EventError("timestamp: must be an ISO 8601 string with a zone, e.g. 2026-12-04T19:20:39Z")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise EventError(f"timestamp: {value!r:.40} is not ISO 8601; send e.g. 2026-12-04T19:20:39Z") from error
    if parsed.tzinfo is None:
        raise EventError(f"timestamp: {value!r:.40} has no zone; end it with Z or +HH:MM")
    return value


def validate_event(raw: object) -> dict[str, Any]:
    """The event as stored (with its `event_attributes.event_id`), or EventError naming the bad field."""
    if not isinstance(raw, dict):
        raise EventError("an event must be a JSON object")
    unknown = sorted(set(raw) - _TOP_LEVEL)
    if "user_id" in unknown:
        raise EventError("user_id: not accepted (no personal data); identify shoppers by client_id and session_id")
    if unknown:
        raise EventError(f"{unknown[0]}: unknown field; an event takes {', '.join(sorted(_TOP_LEVEL))}")
    action = raw.get("action_name")
    if action not in ACTIONS:
        raise EventError(f"action_name: must be one of {', '.join(ACTIONS)} (got {action!r:.40})")
    event: dict[str, Any] = {"action_name": action, "timestamp": _timestamp(raw.get("timestamp"))}
    for name in _REQUIRED_IDS:
        event[name] = _pseudonymous(name, raw.get(name))
    for name in ("application", "message_type"):
        if name in raw:
            event[name] = _pseudonymous(name, raw[name])
    if "message" in raw:
        if not isinstance(raw["message"], str) or len(raw["message"]) > 1024:
            raise EventError("message: must be a string of at most 1024 characters")
        event["message"] = raw["message"]
    if "user_query" in raw:
        if not isinstance(raw["user_query"], str):
            raise EventError("user_query: must be a string (the query as the shopper typed it)")
        event["user_query"] = raw["user_query"]
    event["event_attributes"] = _attributes(raw.get("event_attributes"))
    event["event_attributes"].setdefault("event_id", event_id(event))
    return event


def _attributes(raw: object) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise EventError("event_attributes: must be an object with object.object_id and position.ordinal")
    attributes = dict(raw)
    obj = raw.get("object")
    if not isinstance(obj, dict) or "object_id" not in obj:
        raise EventError("event_attributes.object.object_id: required (the product id the shopper acted on)")
    object_id = obj["object_id"]
    if isinstance(object_id, bool) or not isinstance(object_id, str | int):
        raise EventError("event_attributes.object.object_id: must be a string (or an integer)")
    _pseudonymous("event_attributes.object.object_id", str(object_id), UBI_OBJECT_ID_CHARS)
    attributes["object"] = {**obj, "object_id": str(object_id)}
    position = raw.get("position")
    ordinal = position.get("ordinal") if isinstance(position, dict) else None
    if isinstance(ordinal, bool) or not isinstance(ordinal, int) or ordinal < 0:
        raise EventError(
            "event_attributes.position.ordinal: required, the 0-based position of the product in the results "
            f"(got {ordinal!r:.20})"
        )
    given_id = raw.get("event_id")
    if given_id is not None and not (isinstance(given_id, str) and 0 < len(given_id) <= UBI_ID_CHARS):
        raise EventError("event_attributes.event_id: must be a string of 1 to 100 characters when given")
    return attributes


def validate_batch(raw: object) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Good events and, for each bad one, its index and reason (the good ones of a batch are kept)."""
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        raise EventError("the body must be a JSON array of UBI events")
    if len(raw) > MAX_EVENTS_PER_POST:
        raise EventError(f"at most {MAX_EVENTS_PER_POST} events per request (got {len(raw)}); send them in batches")
    good: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        try:
            good.append(validate_event(item))
        except EventError as error:
            rejected.append({"index": index, "error": str(error)})
    return good, rejected
