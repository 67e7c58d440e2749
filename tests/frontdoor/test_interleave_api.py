"""Interleaving in the front door: page 1 drafted from two rankers, the teams on the UBI record."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engines.base import RetrievalMode
from frontdoor.http import create_app
from frontdoor.search import SearchRequest, SearchService
from frontdoor.ubi_capture import UbiCapture
from frontdoor.wiring import interleave_from_settings
from shoprank.settings import Settings
from shoprank.ubi_log import QUERIES, UbiLog, ubi_dir


def test_page_one_is_team_drafted_from_both_rankers_and_recorded(
    service_for: Callable[..., SearchService], closed_address: str, stack_dir: Path
) -> None:
    service = service_for(closed_address, interleave_a="bm25", interleave_b="hybrid")
    api = TestClient(create_app(service))
    body = api.get("/api/search", params={"q": "blue desk lamp", "page_size": 6}).json()
    assert body["experiment"]["variant"] == "a=bm25 b=hybrid"
    teams = body["experiment"]["interleave_teams"]
    assert len(teams) == len(body["results"]) == 6
    shown = [r["id"] for r in body["results"]]
    modes: dict[str, RetrievalMode] = {"a": "bm25", "b": "hybrid"}
    alone = {
        team: [r.product.id for r in service._page(SearchRequest("blue desk lamp", 1, 6, mode=m, rerank=False)).results]
        for team, m in modes.items()
    }
    for pid, team in zip(shown, teams, strict=True):
        assert pid in alone[team]  # each result is its team's
    assert isinstance(service.capture, UbiCapture)
    service.capture.queue.flush()
    (record,) = [r for r in UbiLog(ubi_dir(stack_dir), QUERIES).read() if r["query_id"] == body["query_id"]]
    assert record["query_attributes"]["interleave_teams"] == teams
    assert record["query_attributes"]["experiment"] == "interleave"
    assert record["query_response_hit_ids"] == shown
    page_two = api.get("/api/search", params={"q": "blue desk lamp", "page_size": 6, "page": 2}).json()
    assert "experiment" not in page_two  # only page 1 is interleaved


def test_interleaving_needs_both_rankers() -> None:
    assert interleave_from_settings(Settings()) is None
    with pytest.raises(ValueError, match="both rankers"):
        interleave_from_settings(Settings(interleave_a="bm25"))
