"""UBI through the front door: every search gets a query id and a ubi_queries record of what it
served; POST /api/events keeps the good events of a batch and names the bad ones."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from frontdoor.http import create_app
from frontdoor.search import SearchService
from frontdoor.ubi_capture import UbiCapture
from shoprank.ubi_log import EVENTS, QUERIES, UbiLog, ubi_dir
from tests.test_ubi_records import good_event, schema_errors

Service = Callable[..., SearchService]


def _capture(service: SearchService) -> UbiCapture:
    assert isinstance(service.capture, UbiCapture)
    return service.capture


def _stored(stack_dir: Path, table: str, key: str, value: str) -> list[dict[str, Any]]:
    return [r for r in UbiLog(ubi_dir(stack_dir), table).read() if r.get(key) == value]


def test_a_search_returns_a_query_id_and_records_what_it_served(
    service_for: Service, tiny_sidecar: str, stack_dir: Path
) -> None:
    service = service_for(tiny_sidecar)
    api = TestClient(create_app(service))
    body = api.get("/api/search", params={"q": "red coffee mug", "client_id": "browser-7", "page_size": 5}).json()
    assert uuid.UUID(body["query_id"]).version == 4
    _capture(service).queue.flush()
    (record,) = _stored(stack_dir, QUERIES, "query_id", body["query_id"])
    assert record["query_response_hit_ids"] == [r["id"] for r in body["results"]]
    assert record["user_query"] == "red coffee mug"
    assert record["client_id"] == "browser-7"
    assert record["application"] == "shoprank"
    attributes = record["query_attributes"]
    assert attributes["engine"] == "lancedb"
    assert attributes["reranked"] == "true"
    assert attributes["model_version"] == body["model_version"] != ""
    assert all(isinstance(v, str) for v in attributes.values())
    assert schema_errors("query.request.schema.json", record) == []
    second = api.get("/api/search", params={"q": "red coffee mug", "page_size": 5}).json()
    assert second["query_id"] != body["query_id"]  # a cached page is still a new query


def test_events_are_kept_and_bad_ones_named_by_index(
    service_for: Service, closed_address: str, stack_dir: Path
) -> None:
    service = service_for(closed_address)
    api = TestClient(create_app(service))
    query_id = api.get("/api/search", params={"q": "desk lamp"}).json()["query_id"]
    good = good_event(query_id=query_id, action_name="impression")
    bad = good_event(query_id=query_id, event_attributes={"object": {"object_id": "x"}, "position": {"ordinal": -2}})
    answer = api.post("/api/events", json=[good, bad, good_event(query_id=query_id)])
    assert answer.status_code == 200
    assert answer.json()["accepted"] == 2
    (rejected,) = answer.json()["rejected"]
    assert rejected["index"] == 1
    assert "event_attributes.position.ordinal" in rejected["error"]
    api.post("/api/events", json=[good])  # a retry: stored once
    _capture(service).queue.flush()
    stored = _stored(stack_dir, EVENTS, "query_id", query_id)
    assert sorted(e["action_name"] for e in stored) == ["click", "impression"]
    assert all(schema_errors("event.schema.json", e) == [] for e in stored)


def test_a_batch_with_no_good_event_is_a_400_naming_the_field(service_for: Service, closed_address: str) -> None:
    api = TestClient(create_app(service_for(closed_address)))
    answer = api.post("/api/events", json=[good_event(timestamp="2026-12-04T10:00:00")])
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("event 0: timestamp")
    assert api.post("/api/events", content=b"not json").status_code == 400
    assert "JSON array" in api.post("/api/events", json="click").json()["error"]
    assert api.post("/api/events", content=b"[" + b" " * 1_000_001 + b"]").status_code == 413


def test_capture_off_still_gives_query_ids_and_refuses_events(service_for: Service, closed_address: str) -> None:
    service = service_for(closed_address, ubi_capture=False)
    assert service.capture is None
    api = TestClient(create_app(service))
    assert uuid.UUID(api.get("/api/search", params={"q": "mug"}).json()["query_id"])
    answer = api.post("/api/events", json=[good_event()])
    assert answer.status_code == 503
    assert "SHOPRANK_UBI_CAPTURE" in answer.json()["error"]


class BrokenSink:
    def write(self, table: str, records: Sequence[Mapping[str, Any]]) -> None:
        raise OSError("disk full")


def test_a_broken_capture_never_breaks_a_search(service_for: Service, closed_address: str) -> None:
    service = service_for(closed_address)
    capture = _capture(service)
    capture.queue.sink = BrokenSink()
    api = TestClient(create_app(service))
    assert api.get("/api/search", params={"q": "rain jacket"}).status_code == 200
    capture.queue.flush()
    assert capture.queue.stats.failed == 1


def test_a_full_capture_queue_drops_records_not_searches(service_for: Service, closed_address: str) -> None:
    service = service_for(closed_address, ubi_queue_records=1)
    capture = _capture(service)
    capture.queue.close()  # no writer: the one slot fills and stays full
    api = TestClient(create_app(service))
    for _ in range(3):
        assert api.get("/api/search", params={"q": "shoes"}).status_code == 200
    assert capture.queue.stats.dropped == 2
    answer = api.post("/api/events", json=[good_event()])
    assert answer.status_code == 503
    assert "retry" in answer.json()["error"]


def test_events_over_the_rate_bound_are_a_429(service_for: Service, closed_address: str) -> None:
    service = service_for(closed_address, ubi_events_per_s=0.001)  # a burst of 500, then ~nothing
    api = TestClient(create_app(service))
    assert api.post("/api/events", json=[good_event(session_id=f"s{n}") for n in range(500)]).status_code == 200
    answer = api.post("/api/events", json=[good_event()])
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "1"
