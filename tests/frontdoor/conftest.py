"""The front door's test stack: a small synthetic catalogue indexed with the tiny models into a temp
LanceDB, tiny-model sidecars (real gRPC on port 0, a slow one, none), and API clients over it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from fastapi.testclient import TestClient

from frontdoor.http import create_app
from frontdoor.search import SearchService
from frontdoor.wiring import build_search_service
from shoprank.settings import Settings
from shoprank.template import ProductText
from sidecar.client import RerankClient
from sidecar.domain import Admission, PairScores
from sidecar.rerank_service import RerankService
from sidecar.server import create_server

KINDS = {
    "mug": ("Coffee Mug", ["Home", "Kitchen", "Mugs"]),
    "lamp": ("Desk Lamp", ["Home", "Lighting", "Desk Lamps"]),
    "jacket": ("Rain Jacket", ["Clothing", "Outerwear", "Jackets"]),
    "shoes": ("Running Shoes", ["Clothing", "Footwear", "Sneakers"]),
}
BRANDS = ("Acme", "Zenith", "O'Reilly")
COLORS = ("Red", "Blue", "Black")
SIZES = ("small", "large")
PRICES = (4.99, 12.5, 30.0, 60.0, 150.0, 300.0, None)


def catalogue_rows() -> list[dict[str, Any]]:
    """72 products: every kind x brand x color x size, prices spread over every price bucket."""
    rows: list[dict[str, Any]] = []
    for kind, (name, category) in KINDS.items():
        for brand in BRANDS:
            for color in COLORS:
                for size in SIZES:
                    rows.append(
                        {
                            "id": f"{kind}-{brand}-{color}-{size}".lower().replace("'", ""),
                            "title": f"{brand} {color} {name}, {size}",
                            "brand": brand,
                            "color": color,
                            "category": category,
                            "bullet_points": ["Made to last", f"A {size} one"],
                            "price": PRICES[len(rows) % len(PRICES)],
                            "image": f"https://images.example/{kind}.jpg",
                        }
                    )
    return rows


def stack_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings of the test stack (fields not given keep their defaults)."""
    return Settings(data_dir=data_dir, **overrides)


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory, tiny_models: Path) -> Path:
    """A data dir with the tiny models and the synthetic catalogue indexed by the production indexer."""
    from engines.factory import open_engine
    from indexer.dead_letter import DeadLetter
    from indexer.pipeline import Indexer
    from shoprank.bi_encoder import BiEncoder

    data_dir = tmp_path_factory.mktemp("frontdoor-stack")
    (data_dir / "models").symlink_to(tiny_models, target_is_directory=True)
    catalogue = data_dir / "catalogue.jsonl"
    catalogue.write_text("".join(json.dumps(row) + "\n" for row in catalogue_rows()), encoding="utf-8")
    settings = stack_settings(data_dir)
    with DeadLetter(None) as dead_letter:
        report = Indexer(open_engine(settings), BiEncoder(settings.models_dir()), dead_letter).full(catalogue)
    assert report.indexed == len(catalogue_rows())
    return data_dir


@pytest.fixture(scope="session")
def tiny_sidecar(stack_dir: Path) -> Iterator[str]:
    """A real sidecar with the tiny cross-encoder on a free port; yields its address."""
    # No score cache: tests here assert on the sidecar's inference timings, which cache hits skip.
    settings = stack_settings(stack_dir, listen="127.0.0.1:0", score_cache_entries=0)
    server, port, _ = create_server(settings, background_load=False)
    yield f"127.0.0.1:{port}"
    server.stop(0).wait()


class SlowScorer:
    """A pair scorer slower than any deadline the tests set."""

    version = "slow-test-scorer"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def score(
        self,
        query: str,
        products: Sequence[ProductText],
        deadline: float | None = None,
        ids: Sequence[str] | None = None,
        cancelled: threading.Event | None = None,
        admission: Admission | None = None,
    ) -> PairScores:
        time.sleep(self.seconds)
        return PairScores(np.zeros(len(products), dtype=np.float32), inference_ms=self.seconds * 1e3)


@pytest.fixture(scope="session")
def slow_sidecar(stack_dir: Path) -> Iterator[str]:
    """A sidecar that takes 2 s per rerank; yields its address."""
    settings = stack_settings(stack_dir, listen="127.0.0.1:0")
    server, port, _ = create_server(settings, loader=lambda _s: RerankService(SlowScorer(2.0)), background_load=False)
    yield f"127.0.0.1:{port}"
    server.stop(0).wait()


@pytest.fixture(scope="session")
def closed_address() -> Iterator[str]:
    """A loopback address where nothing listens (a stopped sidecar).

    The port stays bound (never listening) for the session: connections are refused, and no
    sidecar a later test starts on port 0 can be given it.
    """
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def service_for(stack_dir: Path) -> Iterator[Callable[..., SearchService]]:
    """Factory: a SearchService on the stack built by the production wiring, settings overridable."""
    clients: list[RerankClient] = []

    def make(sidecar: str, **overrides: Any) -> SearchService:
        settings = stack_settings(stack_dir, sidecar=sidecar, **overrides)
        client = RerankClient(settings.sidecar, settings.sidecar_deadline_ms)
        clients.append(client)
        return build_search_service(settings, client)

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def api_for(service_for: Callable[..., SearchService]) -> Callable[..., TestClient]:
    """Factory: an in-process HTTP client of the front door app."""

    def make(sidecar: str, **overrides: Any) -> TestClient:
        return TestClient(create_app(service_for(sidecar, **overrides)))

    return make


def wait_serving(address: str, timeout_s: float = 30.0) -> None:
    """Block until the sidecar at address reports SERVING."""
    client = RerankClient(address, 1000)
    try:
        if not client.wait_until_serving(timeout_s):
            raise grpc.RpcError(f"sidecar at {address} never became SERVING")
    finally:
        client.close()
