"""UBI capture on the real node: a front door on OpenSearch writes ubi_queries and ubi_events there,
the node accepts the mappings and documents, and judgments-from-clicks reads them back."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engines.opensearch import OpenSearchEngine
from frontdoor.http import create_app
from frontdoor.search import SearchService
from frontdoor.ubi_capture import UbiCapture, opensearch_records
from frontdoor.wiring import build_search_service
from relevance.judgments import load_judgments
from shoprank.settings import Settings
from shoprank.ubi_log import EVENTS, QUERIES
from sidecar.client import RerankClient
from tests.opensearch_live import LiveCluster, engine_under_alias
from tests.test_ubi_records import good_event

pytestmark = pytest.mark.opensearch


@pytest.fixture
def settings(opensearch_cluster: LiveCluster, tiny_models: Path, tmp_path: Path) -> Iterator[Settings]:
    from indexer.dead_letter import DeadLetter
    from indexer.pipeline import Indexer
    from shoprank.bi_encoder import BiEncoder

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "models").symlink_to(tiny_models, target_is_directory=True)
    catalogue = tmp_path / "catalogue.jsonl"
    catalogue.write_text("\n".join(json.dumps({"id": f"m{i}", "title": f"stoneware mug {i}"}) for i in range(6)))
    with engine_under_alias(opensearch_cluster) as engine:
        with DeadLetter(tmp_path / "dead.jsonl") as dead:
            assert Indexer(engine, BiEncoder(tiny_models), dead).full(catalogue).indexed == 6
        yield opensearch_cluster.settings(engine.alias, engine="opensearch", data_dir=data_dir, ubi_capture=True)


def test_searches_and_events_land_in_the_nodes_ubi_indices_and_become_judgments(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shoprank.cli import main

    query = f"stoneware mug {uuid.uuid4().hex[:6]}"  # this test's own query among the session's UBI records
    with socket.socket() as closed:  # bound, never listening: no sidecar, first-stage order, still captured
        closed.bind(("127.0.0.1", 0))
        client = RerankClient(f"127.0.0.1:{closed.getsockname()[1]}", 200)
        service = build_search_service(settings, client)
        body, shown = _search_and_click(service, query)
        client.close()

    node = OpenSearchEngine.from_settings(settings).client
    node.indices.refresh(index=[QUERIES, EVENTS])
    (record,) = [r for r in opensearch_records(node, QUERIES) if r["query_id"] == body["query_id"]]
    assert record["query_response_hit_ids"] == shown
    assert record["query_attributes"]["engine"] == "opensearch"
    stored = [e for e in opensearch_records(node, EVENTS) if e["query_id"] == body["query_id"]]
    assert sorted(e["action_name"] for e in stored) == ["click", "impression", "impression", "impression"]
    # The node's mapping keeps the position as a number and the product id as a keyword: both searchable.
    clicked = node.search(
        index=EVENTS,
        body={
            "query": {
                "bool": {"filter": [{"term": {"query_id": body["query_id"]}}, {"term": {"action_name": "click"}}]}
            }
        },
    )["hits"]["hits"]
    assert [hit["_source"]["event_attributes"]["position"]["ordinal"] for hit in clicked] == [1]

    monkeypatch.setenv("SHOPRANK_OPENSEARCH_URL", settings.opensearch_url)
    out = tmp_path / "implicit.csv"
    assert main(["judgments-from-clicks", "--engine", "opensearch", "--model", "ctr", "--output", str(out)]) == 0
    gains = load_judgments(out).gains[query]
    assert gains[shown[1]] > gains[shown[0]]
    assert gains[shown[0]] == gains[shown[2]] == 0.0


def _search_and_click(service: SearchService, query: str) -> tuple[dict[str, Any], list[str]]:
    """One search, three impressions and a click on the second result, captured and flushed."""
    api = TestClient(create_app(service))
    body = api.get("/api/search", params={"q": query, "mode": "bm25", "page_size": 3}).json()
    shown = [result["id"] for result in body["results"]]
    assert len(shown) == 3
    events = [
        good_event(
            query_id=body["query_id"],
            user_query=query,
            action_name=action,
            event_attributes={"object": {"object_id": shown[rank]}, "position": {"ordinal": rank}},
        )
        for action, ranks in {"impression": [0, 1, 2], "click": [1]}.items()
        for rank in ranks
    ]
    answer = api.post("/api/events", json=events)
    assert answer.json() == {"accepted": 4, "rejected": []}
    assert isinstance(service.capture, UbiCapture)
    service.capture.queue.flush()
    assert service.capture.queue.stats.failed == 0
    service.capture.close()
    return body, shown
