"""A session's UBI events personalise its searches end to end: POST /api/events, then GET /api/search with
the session id reads them back (most recent first), resolves the products' vectors (the window's, or the
engine's for products outside it) and the sidecar ranks by the personal term."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from frontdoor.http import create_app
from frontdoor.search import SearchService
from frontdoor.session_events import FileSessionEvents
from frontdoor.ubi_capture import UbiCapture
from shoprank.ubi_log import ubi_dir
from tests.test_ubi_records import good_event

Service = Callable[..., SearchService]


def _post(api: TestClient, service: SearchService, session: str, events: list[tuple[str, str, int]]) -> None:
    """(product id, UBI action, minutes ago) per event, posted and written."""
    now = datetime.now(UTC)
    body = [
        good_event(
            session_id=session,
            action_name=action,
            timestamp=(now - timedelta(minutes=ago)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            event_attributes={"object": {"object_id": pid}, "position": {"ordinal": 0}},
        )
        for pid, action, ago in events
    ]
    assert api.post("/api/events", json=body).json()["accepted"] == len(body)
    assert isinstance(service.capture, UbiCapture)
    service.capture.queue.flush()


def _search(api: TestClient, **params: Any) -> dict[str, Any]:
    answer = api.get("/api/search", params={"page_size": 10, "explain": True, **params})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_a_sessions_events_personalise_its_search_and_another_session_is_ranked_as_before(
    service_for: Service, tiny_sidecar: str
) -> None:
    service = service_for(tiny_sidecar, diversity_method="none")
    api = TestClient(create_app(service))
    liked = "lamp-zenith-blue-large"
    session = f"s-{uuid.uuid4().hex}"
    _post(api, service, session, [(liked, "purchase", 5), (liked, "click", 10), (liked, "impression", 1)])

    plain = {"q": "Zenith", "diversity": "none", "page_size": 24}
    anonymous = _search(api, **plain)
    stranger = _search(api, **plain, session_id=f"new-{uuid.uuid4().hex}")
    shopper = _search(api, **plain, session_id=session, personal_weight=5.0)

    assert not anonymous["personalised"]
    assert not stranger["personalised"]  # a new shopper: beta = 0, ranked as an anonymous search
    assert [r["id"] for r in stranger["results"]] == [r["id"] for r in anonymous["results"]]
    assert shopper["personalised"]
    assert shopper["personal_interactions"] == 2  # the impression is not an interaction
    # A one-product history: the user vector is that product's own (cosine 1, the largest term), and
    # beta(2) = 5 x 2 / personal_ramp (5) = 2.
    terms = {r["id"]: r["explanation"]["personal_term"] for r in shopper["results"]}
    assert terms[liked] == max(terms.values()) == pytest.approx(2.0, rel=1e-5)
    totals = [r["explanation"]["blended"] + r["explanation"]["personal_term"] for r in shopper["results"]]
    assert totals == sorted(totals, reverse=True)  # the page ranks by blended + personal term
    rank = {name: [r["id"] for r in body["results"]].index(liked) for name, body in (("a", anonymous), ("s", shopper))}
    assert rank["s"] <= rank["a"]
    assert all(r["explanation"]["personal_term"] == 0 for r in anonymous["results"])


def test_products_outside_the_window_get_their_vectors_from_the_engine(service_for: Service, tiny_sidecar: str) -> None:
    service = service_for(tiny_sidecar, rerank_window=5, diversity_method="none")
    api = TestClient(create_app(service))
    session = f"s-{uuid.uuid4().hex}"
    mugs = ["mug-acme-red-small", "mug-acme-blue-large"]
    _post(
        api, service, session, [(mugs[0], "add_to_cart", 30), (mugs[1], "click", 20), ("no-such-product", "click", 1)]
    )
    body = _search(api, q="rain jacket", mode="bm25", session_id=session)
    assert not {r["id"] for r in body["results"]} & set(mugs)  # the mugs are not in this window
    assert body["personalised"]
    assert body["personal_interactions"] == 2  # the unknown product is left out


def test_the_reader_returns_a_sessions_most_recent_events_first_and_at_most_its_limit(
    service_for: Service, closed_address: str, stack_dir: Any
) -> None:
    service = service_for(closed_address)
    api = TestClient(create_app(service))
    session = f"s-{uuid.uuid4().hex}"
    events = [(f"p{i}", "click", 60 - i) for i in range(12)]  # p11 is the most recent
    _post(api, service, session, events[:6])
    _post(api, service, f"other-{uuid.uuid4().hex}", [("q1", "click", 0)])
    _post(api, service, session, events[6:])
    recent = FileSessionEvents(ubi_dir(stack_dir), limit=5).recent(session)
    assert [i.product_id for i in recent] == ["p11", "p10", "p9", "p8", "p7"]
    assert all(i.action == "click" for i in recent)
    everything = FileSessionEvents(ubi_dir(stack_dir)).recent(session)
    assert len(everything) == 12


class BrokenSessions:
    """A session store that cannot be read (a disk error, OpenSearch down)."""

    def recent(self, session_id: str) -> list[Any]:
        raise OSError("ubi_events unreadable")


def test_a_session_store_that_fails_leaves_the_search_unpersonalised_not_failed(
    service_for: Service, tiny_sidecar: str
) -> None:
    service = service_for(tiny_sidecar)
    service.sessions = BrokenSessions()
    api = TestClient(create_app(service))
    body = _search(api, q="desk lamp", session_id="s-any")
    assert body["reranked"]
    assert not body["personalised"]
    assert body["results"]
