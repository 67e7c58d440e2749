"""Products over the sidecar's limits (issue 15, "poisoned windows"): the indexer cuts or dead-letters
them, and a search whose rerank window holds one that is already stored is still reranked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engines.factory import open_engine
from frontdoor.search import SearchRequest
from frontdoor.wiring import build_search_service
from indexer.dead_letter import DeadLetter
from indexer.pipeline import Indexer
from shoprank.bi_encoder import BiEncoder
from shoprank.limits import MAX_CATEGORY_LEVELS, MAX_FIELD_BYTES, MAX_ID_BYTES, utf8_size
from shoprank.schema import Product
from shoprank.settings import Settings
from sidecar.client import RerankClient, RerankOptions, build_request
from sidecar.server import start_sidecar
from sidecar.wire_request import RequestDefaults, RequestLimits, request_to_domain

LONG_DESCRIPTION = "squeaky chew toy for dogs " * 2700  # ~70 KB, over the 64 KiB field limit
DEEP_CATEGORY = [f"Level {i}" for i in range(MAX_CATEGORY_LEVELS + 1)]  # 17 levels
LONG_ID = "é" * 300  # 300 characters, 600 UTF-8 bytes
assert utf8_size(LONG_DESCRIPTION) > MAX_FIELD_BYTES
assert utf8_size(LONG_ID) > MAX_ID_BYTES


def dog_toys() -> list[dict[str, Any]]:
    """A small dog-toy catalogue with one product over each limit."""
    rows: list[dict[str, Any]] = [
        {"id": f"toy-{i}", "title": f"Dog toy rope ball {i}", "brand": "Acme", "category": ["Pets", "Dog Toys"]}
        for i in range(8)
    ]
    rows.append({"id": "essay", "title": "Dog toy with an essay", "description": LONG_DESCRIPTION})
    rows.append({"id": "deep", "title": "Dog toy deep in the tree", "category": DEEP_CATEGORY})
    rows.append({"id": LONG_ID, "title": "Dog toy with a long id"})
    return rows


class Hit:
    """A first-stage hit as the client reads it."""

    def __init__(self, pid: str, score: float, product: Product) -> None:
        self.id = pid
        self.first_stage_score = score
        self.product = product
        self.embedding = None


@pytest.fixture
def settings(tiny_models: Path, tmp_path: Path) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "models").symlink_to(tiny_models, target_is_directory=True)
    return Settings(data_dir=data_dir, listen="127.0.0.1:0", metrics_listen="", score_cache_entries=0)


@pytest.fixture
def sidecar_address(settings: Settings) -> Iterator[str]:
    sidecar = start_sidecar(settings, background_load=False)
    yield f"127.0.0.1:{sidecar.port}"
    sidecar.shutdown(0)


def test_the_indexer_cuts_long_fields_and_dead_letters_a_long_id(settings: Settings, tmp_path: Path) -> None:
    catalogue = tmp_path / "dog-toys.jsonl"
    catalogue.write_text("".join(json.dumps(row) + "\n" for row in dog_toys()), encoding="utf-8")
    dead_letter_path = tmp_path / "rejected.jsonl"
    with DeadLetter(dead_letter_path) as dead_letter:
        report = Indexer(open_engine(settings), BiEncoder(settings.models_dir()), dead_letter).full(catalogue)

    assert (report.indexed, report.rejected) == (10, 1)
    assert report.reject_reasons == {"id": 1}
    (record,) = [json.loads(line) for line in dead_letter_path.read_text(encoding="utf-8").splitlines()]
    assert record["line"] == 11
    assert record["reason"].startswith(f"id: must be at most {MAX_ID_BYTES} UTF-8 bytes, got 600")
    assert (report.truncated, report.truncated_fields) == (2, {"description": 1, "category": 1})
    assert sorted(report.truncated_ids) == ["deep", "essay"]

    stored = {p.id: p for p in open_engine(settings).get(["essay", "deep"])}
    assert utf8_size(stored["essay"].description) <= MAX_FIELD_BYTES
    assert LONG_DESCRIPTION.startswith(stored["essay"].description)
    assert len(stored["essay"].description) > MAX_FIELD_BYTES - 100  # cut at the limit, not emptied
    assert len(stored["deep"].category) == MAX_CATEGORY_LEVELS
    assert stored["deep"].category[-1] == DEEP_CATEGORY[-1]  # the leaf survives
    assert stored["deep"].category[:-1] == DEEP_CATEGORY[: MAX_CATEGORY_LEVELS - 1]


def store_unchecked(settings: Settings, rows: list[dict[str, Any]]) -> None:
    """Write products as an index built before the limits were enforced holds them."""
    engine = open_engine(settings)
    encoder = BiEncoder(settings.models_dir())
    products = [Product.model_construct(**{"category": [], "description": "", **row}) for row in rows]
    vectors = encoder.encode([p.title for p in products])
    builder = engine.begin_version(encoder.dim)
    assert builder.write(products, np.asarray(vectors, dtype=np.float32)) == []
    builder.commit()


def test_a_window_holding_stored_products_over_the_limits_is_reranked(settings: Settings, sidecar_address: str) -> None:
    store_unchecked(settings, dog_toys())
    client = RerankClient(sidecar_address, 5000)
    try:
        service = build_search_service(settings.model_copy(update={"sidecar": sidecar_address}), client)
        page = service.search(SearchRequest(query="dog toys", page_size=20, mode="bm25"))
    finally:
        client.close()

    assert page.reranked, page.fail_open_reason
    ids = {item.product.id for item in page.results}
    assert {"essay", "deep", LONG_ID} <= ids  # the window holds all three, under their real ids


def test_the_client_sends_what_the_sidecar_takes() -> None:
    """build_request fits every field; the sidecar's own validation accepts the result."""
    hits = [
        Hit("essay", 3.0, Product.model_construct(id="essay", title="t", description=LONG_DESCRIPTION, category=[])),
        Hit("deep", 2.0, Product.model_construct(id="deep", title="t", category=DEEP_CATEGORY)),
        Hit(LONG_ID, 1.0, Product.model_construct(id=LONG_ID, title="t", category=["x" * (MAX_FIELD_BYTES + 1)])),
    ]
    limits = RequestLimits()
    message = build_request("q" * 2000, hits, 3, RerankOptions(), limits)

    query = request_to_domain(message, limits, RequestDefaults())  # raises InvalidRequestError if not
    assert [c.id for c in query.candidates][:2] == ["essay", "deep"]
    assert utf8_size(query.candidates[2].id) <= MAX_ID_BYTES
    assert utf8_size(query.query) <= limits.max_query_bytes


def test_a_request_over_the_byte_limit_is_shrunk_to_fit() -> None:
    hits = [
        Hit(f"p{i}", 1.0, Product.model_construct(id=f"p{i}", title="t", description=LONG_DESCRIPTION, category=[]))
        for i in range(40)
    ]
    limits = RequestLimits(max_request_bytes=1024 * 1024)
    message = build_request("dog toys", hits, 0, RerankOptions(), limits)
    assert message.ByteSize() <= limits.max_request_bytes
    assert all(c.product.description for c in message.candidates)  # cut, never dropped
