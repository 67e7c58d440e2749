"""Query intent in the front door: built by a full index for its version, switched per request and by
the server default, and shown in the response (categories, probabilities, what was applied)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from engines.base import Filters, Hit
from engines.factory import open_engine
from frontdoor.intent_policy import IntentOptions, boost_hits
from frontdoor.search import SearchPage, SearchRequest, SearchService
from frontdoor.wiring import build_search_service
from indexer.dead_letter import DeadLetter
from indexer.pipeline import Indexer
from intent.model import CategorySums
from intent.store import load_live_model, model_path, models_dir, save_sums
from shoprank.bi_encoder import BiEncoder
from shoprank.settings import Settings
from sidecar.client import RerankClient
from tests.frontdoor.conftest import catalogue_rows

QUERY = "red coffee mug"


@pytest.fixture(scope="module")
def intent_dir(tmp_path_factory: pytest.TempPathFactory, tiny_models: Path) -> Path:
    """A data dir whose full index also wrote the intent model (as `shoprank index` does)."""
    data_dir = tmp_path_factory.mktemp("intent-stack")
    (data_dir / "models").symlink_to(tiny_models, target_is_directory=True)
    _index(data_dir)
    return data_dir


def _index(data_dir: Path) -> str:
    """A full index of the synthetic catalogue, as `shoprank index` runs it; returns the new version."""
    catalogue = data_dir / "catalogue.jsonl"
    catalogue.write_text("".join(json.dumps(row) + "\n" for row in catalogue_rows()), encoding="utf-8")
    settings = Settings(data_dir=data_dir)
    with DeadLetter(None) as dead_letter:
        report = Indexer(
            open_engine(settings),
            BiEncoder(settings.models_dir()),
            dead_letter,
            intent_dir=models_dir(data_dir, settings.engine, settings.index_name),
        ).full(catalogue)
    assert report.version is not None
    assert report.intent_model == str(
        model_path(models_dir(data_dir, settings.engine, settings.index_name), report.version)
    )
    return report.version


def _service(data_dir: Path, closed_address: str, **overrides: object) -> SearchService:
    settings = Settings(data_dir=data_dir, sidecar=closed_address, **overrides)  # type: ignore[arg-type]
    return build_search_service(settings, RerankClient(settings.sidecar, settings.sidecar_deadline_ms))


def _search(service: SearchService, **intent: object) -> SearchPage:
    return service.search(
        SearchRequest(QUERY, page_size=100, rerank=False, facets=True, intent=IntentOptions(**intent))  # type: ignore[arg-type]
    )


def test_the_full_index_builds_the_model_of_its_version(intent_dir: Path) -> None:
    engine = open_engine(Settings(data_dir=intent_dir))
    model = load_live_model(models_dir(intent_dir, "lancedb", "products"), engine.live_version())
    assert model.index_version == engine.live_version()
    assert set(model.labels) == {"Mugs", "Desk Lamps", "Jackets", "Sneakers"}


def test_intent_is_off_by_default_and_the_response_says_so(intent_dir: Path, closed_address: str) -> None:
    page = _search(_service(intent_dir, closed_address))
    shown = page.as_dict()["intent"]
    assert shown["enabled"] is False
    assert shown["categories"] == []
    assert shown["applied"]["filter"] is None


def test_the_boost_reorders_the_first_stage_as_predicted(intent_dir: Path, closed_address: str) -> None:
    service = _service(intent_dir, closed_address)
    off = _search(service, enabled=False)
    on = _search(service, enabled=True, boost=5.0)
    shown = on.as_dict()["intent"]
    assert shown["enabled"] is True
    assert shown["applied"]["boost"] == 5.0
    categories = [c["category"] for c in shown["categories"]]
    assert len(categories) == 4  # the catalogue's leaves, fewer than the 5 shown at most
    probabilities = [c["p"] for c in shown["categories"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0.0 < sum(probabilities) <= 1.0001
    model = load_live_model(
        models_dir(intent_dir, "lancedb", "products"), open_engine(Settings(data_dir=intent_dir)).live_version()
    )
    intent = model.predict(BiEncoder(intent_dir / "models").encode_one(QUERY))
    first_stage = [Hit(r.product, r.score) for r in off.results]
    expected = [h.product.id for h in boost_hits(first_stage, intent, 5.0, "leaf")]
    served = [r.product.id for r in on.results]
    assert served == expected
    assert served != [r.product.id for r in off.results]  # the boost did reorder this window
    facet = [b["value"] for b in on.facets["category"]]
    assert facet[: len(categories)] == [c for c in categories if c in facet]  # the likely categories first
    # Grouped by probability: every product of the most likely category before any of a less likely one.
    leaves = [r.product.category[-1] for r in on.results]
    assert leaves.index(categories[0]) < min(leaves.index(c) for c in categories[1:] if c in leaves)


def test_the_hard_filter_applies_only_at_the_threshold(intent_dir: Path, closed_address: str) -> None:
    service = _service(intent_dir, closed_address)
    probe = _search(service, enabled=True)
    top, p = probe.intent.categories.top() if probe.intent.categories else ("", 0.0)  # type: ignore[misc]
    assert probe.intent.filtered is None  # the server default threshold (1) never filters
    below = _search(service, enabled=True, threshold=min(1.0, p + 0.001))
    assert below.intent.filtered is None
    assert {r.product.category[-1] for r in below.results} != {top}
    at = _search(service, enabled=True, threshold=p)
    assert at.as_dict()["intent"]["applied"]["filter"] == top
    assert at.results
    assert {r.product.category[-1] for r in at.results} == {top}


def test_the_shoppers_category_filter_is_never_replaced(intent_dir: Path, closed_address: str) -> None:
    service = _service(intent_dir, closed_address)
    request = SearchRequest(
        QUERY,
        page_size=100,
        rerank=False,
        filters=Filters(categories=("Jackets",)),
        intent=IntentOptions(enabled=True, threshold=0.0),
    )
    page = service.search(request)
    assert page.intent.filtered is None
    assert {r.product.category[-1] for r in page.results} == {"Jackets"}
    assert "shopper's category filter" in (page.intent.note or "")


def test_the_server_default_switches_it_on_and_a_request_off(intent_dir: Path, closed_address: str) -> None:
    service = _service(intent_dir, closed_address, intent=True, intent_boost=5.0, intent_filter_threshold=0.0)
    page = _search(service)
    assert page.intent.enabled
    assert page.intent.boost == 5.0
    assert page.intent.filtered is not None
    assert not _search(service, enabled=False).intent.enabled


def test_a_model_of_another_index_version_is_not_used(intent_dir: Path, closed_address: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=intent_dir)
    live = open_engine(settings).live_version()
    assert live is not None
    path = model_path(models_dir(intent_dir, settings.engine, settings.index_name), live)
    saved = path.read_bytes()
    try:
        stale = CategorySums(BiEncoder(settings.models_dir()).dim)
        products = open_engine(settings).get([catalogue_rows()[0]["id"]])
        stale.add(products, np.ones((1, stale.dim), dtype=np.float32))
        save_sums(path, "products-older", stale)
        page = _search(_service(intent_dir, closed_address), enabled=True, boost=5.0)
        shown = page.as_dict()["intent"]
        assert shown["categories"] == []
        assert shown["applied"]["boost"] == 0.0
        assert "built for index version products-older" in shown["note"]
        assert "shoprank index" in shown["note"]
    finally:
        path.write_bytes(saved)


def test_the_api_takes_the_switches_and_says_when_there_is_no_model(
    api_for: Callable[..., TestClient], closed_address: str
) -> None:
    api = api_for(closed_address)  # the shared stack: indexed without an intent model
    body = api.get("/api/search", params={"q": "mug", "rerank": "false", "intent": "true", "intent_boost": 2}).json()
    assert body["intent"]["enabled"] is True
    assert body["intent"]["categories"] == []
    assert "no intent model" in body["intent"]["note"]
    assert "shoprank index" in body["intent"]["note"]
    bad = api.get("/api/search", params={"q": "mug", "intent_threshold": 1.5})
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("intent_threshold")


def test_eval_intent_measures_every_setting_on_the_judged_queries(intent_dir: Path) -> None:
    from evaluation.intent_quality import BOOSTS, ENGINE_POLICY, OFF, POLICIES, PREDICTORS, measure_intent
    from relevance.judgments import Judgments

    mugs = [r["id"] for r in catalogue_rows() if r["id"].startswith("mug-")]
    lamps = [r["id"] for r in catalogue_rows() if r["id"].startswith("lamp-")]
    judgments = Judgments({"coffee mug": dict.fromkeys(mugs, 1.0), "desk lamp": dict.fromkeys(lamps, 1.0), "none": {}})
    settings = Settings(data_dir=intent_dir)
    engine = open_engine(settings)
    model = load_live_model(models_dir(intent_dir, "lancedb", "products"), engine.live_version())
    report = measure_intent(engine, BiEncoder(settings.models_dir()), model, judgments, window=72)
    assert [q.query for q in report.per_query] == ["coffee mug", "desk lamp"]  # a query without E products is left out
    assert [q.exact for q in report.per_query] == [{"Mugs"}, {"Desk Lamps"}]
    assert set(report.per_query[0].predictions) == set(PREDICTORS)
    assert report.per_query[0].predictions["majority"].ranked[0] in model.labels
    assert all(len(values) == 2 for values in report.out_of_fold.values())
    assert set(report.out_of_fold) == {*POLICIES, ENGINE_POLICY}
    assert set(report.per_query[0].engine) == {(b, 1.0) for b in BOOSTS}  # every weight, inside the engine
    assert 0.0 <= report.per_query[0].ndcg[OFF] <= 1.0
    shown = report.as_dict()
    assert shown["queries"] == 2
    assert set(shown["accuracy"]) == set(PREDICTORS)


def test_an_engine_that_cannot_say_its_version_leaves_intent_off_with_a_reason(intent_dir: Path) -> None:
    from engines.base import EngineError
    from frontdoor.intent_policy import IntentProvider

    calls: list[str] = []

    def unreachable() -> str | None:
        calls.append("asked")
        raise EngineError("cluster down", "unreachable")

    provider = IntentProvider(models_dir(intent_dir, "lancedb", "products"), unreachable)
    model, error = provider.current()  # what the wiring does at start: no crash
    assert model is None
    assert calls == ["asked"]
    assert "cannot be read (unreachable)" in (error or "")


def test_a_rollback_serves_the_model_of_the_version_it_makes_live(tmp_path: Path, tiny_models: Path) -> None:
    from frontdoor.intent_policy import IntentProvider

    (tmp_path / "models").symlink_to(tiny_models, target_is_directory=True)
    first, second = _index(tmp_path), _index(tmp_path)
    engine = open_engine(Settings(data_dir=tmp_path))
    directory = models_dir(tmp_path, "lancedb", "products")
    assert sorted(p.stem for p in directory.glob("*.npz")) == sorted([first, second])
    provider = IntentProvider(directory, engine.live_version)
    assert provider.current()[0].index_version == second  # type: ignore[union-attr]
    assert engine.rollback() == first
    fresh = IntentProvider(directory, engine.live_version)
    assert fresh.current()[0].index_version == first  # type: ignore[union-attr]
    third = _index(tmp_path)  # keeps two versions (keep_versions): the oldest model goes with its version
    assert sorted(p.stem for p in directory.glob("*.npz")) == sorted(engine.versions())
    assert third in engine.versions()
