"""Personalisation's reads on OpenSearch, against the recording transport (requests checked against the API
spec): stored vectors by id, and a session's events from `ubi_events`, newest first."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from frontdoor.session_events import OpenSearchSessionEvents
from frontdoor.ubi_capture import OpenSearchSink
from shoprank.ubi_log import EVENTS
from tests.opensearch_spec import SpecValidator
from tests.recording_transport import FakeCluster, search_response
from tests.test_opensearch_engine import full_index, make_engine, products, vectors


@pytest.fixture
def cluster(spec_validator: SpecValidator) -> Iterator[FakeCluster]:
    fake = FakeCluster(spec_validator)
    yield fake
    fake.assert_valid()


def test_vectors_by_id_skip_missing_products(cluster: FakeCluster) -> None:
    engine = make_engine(cluster)
    full_index(engine, products(3))
    found = engine.vectors(["p1", "gone", "p2"])
    assert sorted(found) == ["p1", "p2"]
    np.testing.assert_allclose(found["p1"], vectors(3)[1], atol=1e-6)  # stored to 7 decimals
    (call,) = cluster.calls("POST", "/products/_mget")
    assert call.body == {"ids": ["p1", "gone", "p2"]}
    assert engine.vectors([]) == {}


def event(session: str, pid: str, action: str, second: int) -> dict[str, Any]:
    return {
        "action_name": action,
        "timestamp": f"2026-12-04T10:00:{second:02d}.000Z",
        "query_id": "q",
        "session_id": session,
        "client_id": "c",
        "event_attributes": {"object": {"object_id": pid}, "position": {"ordinal": 0}, "event_id": f"{pid}-{second}"},
    }


def test_a_sessions_events_come_from_one_term_query_sorted_newest_first(cluster: FakeCluster) -> None:
    client = cluster.client()
    assert OpenSearchSessionEvents(client).recent("s1") == []  # no ubi_events index yet
    records = [event("s1", "p1", "click", 1), event("s1", "p2", "impression", 2), event("s1", "p3", "purchase", 3)]
    OpenSearchSink(client).write(EVENTS, records)
    seen: list[dict[str, Any]] = []

    def newest_first(index: str, body: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        seen.append(body)
        docs = sorted(cluster.indices[index].docs.items(), key=lambda item: item[1]["timestamp"], reverse=True)
        kept = [(doc_id, 1.0, doc) for doc_id, doc in docs if doc["action_name"] != "impression"]
        return search_response(index, kept[: body["size"]])

    cluster.search_hook = newest_first
    recent = OpenSearchSessionEvents(client, limit=5).recent("s1")
    assert [(i.product_id, i.action) for i in recent] == [("p3", "purchase"), ("p1", "click")]
    (body,) = seen
    assert body["size"] == 5
    assert {"term": {"session_id": "s1"}} in body["query"]["bool"]["filter"]
    call = cluster.calls("POST", "/ubi_events/_search")[-1]
    assert call.params["sort"] in ("timestamp:desc", b"timestamp:desc")
