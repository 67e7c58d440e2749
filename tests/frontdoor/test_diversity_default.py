"""The server's default diversity reaches the front door: vectors travel when the sidecar's default
(or the request) diversifies on embeddings, and the default page is diversified by it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engines.base import RetrievalQuery, RetrievalResult
from frontdoor.search import SearchRequest, SearchService
from shoprank.settings import Settings
from sidecar.client import RerankOptions


def _recorded(service: SearchService) -> list[RetrievalQuery]:
    """Record the engine queries of a service."""
    seen: list[RetrievalQuery] = []
    retrieve = service.engine.retrieve

    def recording(query: RetrievalQuery) -> RetrievalResult:
        seen.append(query)
        return retrieve(query)

    service.engine.retrieve = recording  # type: ignore[method-assign]
    return seen


@pytest.mark.parametrize(
    ("default", "asked", "vectors"),
    [
        ("dpp", None, True),
        ("mmr", None, True),
        ("xquad", None, False),
        ("none", None, False),
        ("none", "mmr", True),
        ("dpp", "xquad", False),
        ("dpp", "none", False),
    ],
)
def test_vectors_travel_when_the_effective_method_reads_embeddings(
    service_for: Callable[..., SearchService], closed_address: str, default: str, asked: str | None, vectors: bool
) -> None:
    service = service_for(closed_address, diversity_method=default)
    seen = _recorded(service)
    page = service.search(SearchRequest("mug", options=RerankOptions(diversity=asked)))
    assert page.results, "the first stage still answers (fail-open: no sidecar)"
    assert [q.with_vectors for q in seen] == [vectors]


@pytest.mark.parametrize(
    ("settings", "options", "vectors"),
    [
        ({"diversity_attribute_weight": 1.0}, RerankOptions(), False),  # brands and categories alone
        ({}, RerankOptions(attribute_weight=1.0), False),
        ({}, RerankOptions(strength=0.0), False),  # strength 0 is relevance order
        ({"diversity_strength": 0.0}, RerankOptions(strength=0.2), True),
        ({"diversity_attribute_weight": 1.0}, RerankOptions(diversity="mmr", attribute_weight=0.5), True),
    ],
)
def test_the_front_door_asks_the_sidecars_rule_whether_vectors_are_read(
    service_for: Callable[..., SearchService],
    closed_address: str,
    settings: dict[str, float],
    options: RerankOptions,
    vectors: bool,
) -> None:
    service = service_for(closed_address, diversity_method="dpp", **settings)
    seen = _recorded(service)
    service.search(SearchRequest("mug", options=options))
    assert [q.with_vectors for q in seen] == [vectors]


def test_the_default_page_is_diversified_by_the_settings_default(
    service_for: Callable[..., SearchService], tiny_sidecar: str
) -> None:
    service = service_for(tiny_sidecar)
    page = service.search(SearchRequest("shoes", page_size=5))
    assert page.reranked
    assert page.diversity_method == Settings().diversity_method != "none"
