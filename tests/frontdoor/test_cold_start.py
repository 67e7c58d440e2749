"""Cold start: a product indexed incrementally is findable and rankable from its content alone on the next
search, and a shopper's history elsewhere never keeps it off the page (the personal term reads content,
never a product's own behaviour, so a product with none is not pushed down for lacking it)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from frontdoor.http import create_app
from frontdoor.ubi_capture import UbiCapture
from frontdoor.wiring import build_search_service
from shoprank.settings import Settings
from sidecar.client import RerankClient
from tests.frontdoor.conftest import catalogue_rows
from tests.test_ubi_records import good_event

NEW = [
    {
        "id": "new-teapot",
        "title": "Porcelain Teapot with Infuser",
        "brand": "Kyoto",
        "category": ["Home", "Kitchen", "Teapots"],
    },
    {
        "id": "new-kettle",
        "title": "Gooseneck Electric Kettle",
        "brand": "Brewmaster",
        "category": ["Home", "Kitchen", "Kettles"],
    },
    {
        "id": "new-umbrella",
        "title": "Windproof Travel Umbrella",
        "brand": "Stormline",
        "category": ["Clothing", "Accessories", "Umbrellas"],
    },
]
KEY_TERMS = {"new-teapot": "porcelain teapot", "new-kettle": "gooseneck kettle", "new-umbrella": "travel umbrella"}


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def incremental_dir(tmp_path: Path, tiny_models: Path) -> Path:
    """A data dir: the 72-product catalogue indexed in full, then a batch of new products incrementally."""
    from engines.factory import open_engine
    from indexer.dead_letter import DeadLetter
    from indexer.pipeline import Indexer
    from shoprank.bi_encoder import BiEncoder

    (tmp_path / "models").symlink_to(tiny_models, target_is_directory=True)
    settings = Settings(data_dir=tmp_path)
    engine = open_engine(settings)
    encoder = BiEncoder(settings.models_dir())
    with DeadLetter(None) as dead_letter:
        Indexer(engine, encoder, dead_letter).full(_jsonl(tmp_path / "catalogue.jsonl", catalogue_rows()))
    rows = [{**row, "bullet_points": ["New this week"], "price": 25.0} for row in NEW]
    with DeadLetter(None) as dead_letter:
        report = Indexer(engine, encoder, dead_letter).incremental(_jsonl(tmp_path / "batch.jsonl", rows))
    assert report.indexed == len(NEW)
    return tmp_path


def test_new_products_reach_the_first_page_for_their_key_terms_with_and_without_a_shoppers_history(
    incremental_dir: Path, tiny_sidecar: str
) -> None:
    settings = Settings(data_dir=incremental_dir, sidecar=tiny_sidecar)
    client = RerankClient(settings.sidecar, settings.sidecar_deadline_ms)
    service = build_search_service(settings, client)
    api = TestClient(create_app(service))
    session = f"s-{uuid.uuid4().hex}"
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    history = [
        good_event(
            session_id=session,
            action_name="purchase",
            timestamp=now,
            event_attributes={"object": {"object_id": pid}, "position": {"ordinal": 0}},
        )
        for pid in ("mug-acme-red-small", "mug-zenith-blue-large", "shoes-acme-black-small")
    ]
    assert api.post("/api/events", json=history).json()["accepted"] == len(history)
    assert isinstance(service.capture, UbiCapture)
    service.capture.queue.flush()
    try:
        found = {"anonymous": 0, "shopper": 0}
        for pid, terms in KEY_TERMS.items():
            shoppers: dict[str, dict[str, str | float]] = {
                "anonymous": {},
                "shopper": {"session_id": session, "personal_weight": 1.0},
            }
            for who, extra in shoppers.items():
                params: dict[str, str | float] = {"q": terms, "page_size": 10, **extra}
                body = api.get("/api/search", params=params).json()
                assert body["reranked"]
                assert body["personalised"] == (who == "shopper")
                found[who] += pid in [r["id"] for r in body["results"]]
        # Exact matches of their own key terms: every one must be on page 1, for both shoppers.
        assert found == {"anonymous": len(NEW), "shopper": len(NEW)}
    finally:
        client.close()
