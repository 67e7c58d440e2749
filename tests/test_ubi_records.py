"""UBI records as shoprank writes and accepts them, validated against UBI 1.3.0's own JSON schemas."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from frontdoor.ubi_events import EventError, query_record, validate_batch, validate_event
from shoprank.settings import REPO_ROOT

SCHEMAS = REPO_ROOT.parent / "shared" / "ubi-schema"


def _any_of_strings(node: Any) -> Any:
    """UBI 1.3.0 declares action_name and object_id_type as oneOf [string from a list, any string]: a
    listed value ("click") matches both branches, so strict oneOf refuses exactly the documented
    values. The intent is anyOf; read it so (in memory; the file stays as published)."""
    if isinstance(node, dict):
        out = {k: _any_of_strings(v) for k, v in node.items()}
        branches = out.get("oneOf")
        if isinstance(branches, list) and all(isinstance(b, dict) and b.get("type") == "string" for b in branches):
            out["anyOf"] = out.pop("oneOf")
        return out
    if isinstance(node, list):
        return [_any_of_strings(v) for v in node]
    return node


def _validator(name: str) -> Draft202012Validator:
    path = SCHEMAS / name
    if not path.is_file():
        pytest.skip(f"UBI schemas not at {SCHEMAS} (../shared/ubi-schema)")
    return Draft202012Validator(_any_of_strings(json.loads(path.read_text())), format_checker=FormatChecker())


def schema_errors(name: str, instance: Any) -> list[str]:
    """UBI's schema `name` on instance: every violation as a sentence."""
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _validator(name).iter_errors(instance)]


def good_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "action_name": "click",
        "timestamp": "2026-12-04T19:20:39.123Z",
        "query_id": str(uuid.uuid4()),
        "session_id": "84266fdbd31d4c2c6d0665f7e8380fa3",
        "client_id": "5e3b2a1c-8b7d-4f2e-a3d4-c9b2e1f3a4b5",
        "user_query": "red rain jacket",
        "event_attributes": {"object": {"object_id": "B07XLFYN6S"}, "position": {"ordinal": 3}},
    }
    event.update(overrides)
    return event


def test_a_query_record_is_valid_ubi_with_string_attributes() -> None:
    record = query_record(
        str(uuid.uuid4()), "rain jacket", ["b", "a", "c"], "client-1", "shoprank", {"reranked": True, "page": 1}
    )
    assert schema_errors("query.request.schema.json", record) == []
    assert record["query_response_hit_ids"] == ["b", "a", "c"]
    assert record["query_attributes"] == {"reranked": "True", "page": "1"}
    assert record["timestamp"].endswith("Z")


@pytest.mark.parametrize("action", ["impression", "click", "add_to_cart", "purchase"])
def test_every_accepted_event_is_valid_ubi_and_gets_an_event_id(action: str) -> None:
    stored = validate_event(good_event(action_name=action))
    assert schema_errors("event.schema.json", stored) == []
    assert stored["event_attributes"]["event_id"]
    assert stored["event_attributes"]["position"]["ordinal"] == 3


def test_the_same_event_gets_the_same_id_and_a_different_one_another() -> None:
    event = good_event()
    first = validate_event(copy.deepcopy(event))["event_attributes"]["event_id"]
    again = validate_event(copy.deepcopy(event))["event_attributes"]["event_id"]
    other = validate_event(good_event(action_name="add_to_cart", query_id=event["query_id"]))
    assert first == again
    assert other["event_attributes"]["event_id"] != first


BAD: list[tuple[dict[str, Any], str]] = [
    ({"action_name": "hover"}, "action_name"),
    ({"timestamp": "2026-12-04T19:20:39"}, "timestamp"),
    ({"timestamp": "yesterday"}, "timestamp"),
    ({"query_id": ""}, "query_id"),
    ({"session_id": "x" * 101}, "session_id"),
    ({"client_id": "shopper@example.com"}, "client_id"),
    ({"user_id": "42"}, "user_id"),
    ({"colour": "red"}, "colour"),
    ({"event_attributes": {"position": {"ordinal": 1}}}, "event_attributes.object.object_id"),
    ({"event_attributes": {"object": {"object_id": "B1"}, "position": {"ordinal": -1}}}, "position.ordinal"),
    ({"event_attributes": {"object": {"object_id": "B1"}, "position": {"ordinal": "2"}}}, "position.ordinal"),
    ({"event_attributes": {"object": {"object_id": "B1"}}}, "position.ordinal"),
]


@pytest.mark.parametrize(("change", "field"), BAD)
def test_a_bad_event_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(EventError, match=field.replace(".", r"\.")):
        validate_event(good_event(**change))


def test_events_the_schema_refuses_are_refused_too() -> None:
    """Where UBI's schema says no, so does the API (shoprank is narrower, never looser)."""
    for change, _ in BAD:
        event = good_event(**change)
        if schema_errors("event.schema.json", event):
            with pytest.raises(EventError):
                validate_event(event)


def test_a_batch_keeps_the_good_events_and_names_each_bad_one_by_index() -> None:
    good, rejected = validate_batch([good_event(), good_event(action_name="nope"), good_event(), "x"])
    assert len(good) == 2
    assert [r["index"] for r in rejected] == [1, 3]
    assert "action_name" in rejected[0]["error"]


def test_a_batch_must_be_an_array_of_bounded_size() -> None:
    with pytest.raises(EventError, match="array"):
        validate_batch("click")
    with pytest.raises(EventError, match="at most 500"):
        validate_batch([good_event()] * 501)


def test_the_published_schema_refuses_listed_actions_which_is_why_it_is_read_as_any_of() -> None:
    if not (SCHEMAS / "event.schema.json").is_file():
        pytest.skip("no UBI schemas")
    raw = Draft202012Validator(json.loads((SCHEMAS / "event.schema.json").read_text()))
    assert not raw.is_valid(good_event())  # if UBI fixes this, drop _any_of_strings
    assert _validator("event.schema.json").is_valid(good_event())


def test_schemas_are_read_from_shared_not_copied_into_the_repo() -> None:
    assert not list(Path(REPO_ROOT).glob("**/event.schema.json"))
