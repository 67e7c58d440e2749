"""End to end on the embedded engine: index a catalogue written here, start the sidecar in-process
on port 0, search over a real gRPC channel, and fail open when the sidecar is slow or stopped."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from shoprank.cli import main
from shoprank.model_meta import CROSS_ENCODER, load_metadata
from shoprank.settings import Settings
from sidecar.server import create_server, load_service

pytestmark = pytest.mark.e2e

TOWELS = [
    ("t1", "Cotton Kitchen Towels, 6 Pack, Grey", "Utopia", ["Home", "Kitchen", "Dish Towels"]),
    ("t2", "Flour Sack Kitchen Towels 12 Pack", "Zeppoli", ["Home", "Kitchen", "Dish Towels"]),
    ("t3", "Microfiber Kitchen Dish Towels, Absorbent", "AIDEA", ["Home", "Kitchen", "Dish Towels"]),
]
OTHERS = [
    ("c1", "USB C Charger 65W GaN Fast Charger", "Anker", ["Electronics", "Chargers"]),
    ("c2", "Wireless Charging Pad for iPhone", "Belkin", ["Electronics", "Chargers"]),
    ("m1", "Queen Memory Foam Mattress 12 inch", "Zinus", ["Home", "Bedroom", "Mattresses"]),
    ("m2", "Twin Hybrid Mattress, Medium Firm", "Signature Design", ["Home", "Bedroom", "Mattresses"]),
    ("l1", "LEGO Star Wars Millennium Falcon Building Kit", "LEGO", ["Toys", "Building Sets"]),
    ("g1", "Ceramic Coffee Mug 12 oz", "Amazon Basics", ["Home", "Kitchen", "Mugs"]),
    ("g2", "Stainless Steel Whisk Set of 3", "OXO", ["Home", "Kitchen", "Utensils"]),
    ("b1", "Bath Towels Set, 4 Pack, Hotel Quality", "Amazon Basics", ["Home", "Bath", "Bath Towels"]),
    ("p1", "Paper Towels, 12 Double Rolls", "Bounty", ["Household", "Paper Towels"]),
]
CATALOGUE_IDS = {pid for pid, *_ in TOWELS + OTHERS}


def write_catalogue(path: Path) -> Path:
    """A JSONL catalogue in the ESCI field layout (asin as id)."""
    with path.open("w") as handle:
        for pid, title, brand, category in TOWELS + OTHERS:
            row = {
                "asin": pid,
                "title": title,
                "brand": brand,
                "category": category,
                "bullet_points": f"{title}\nGreat value",
                "price": 9.99,
                "color": "",
                "description": "",
            }
            handle.write(json.dumps(row) + "\n")
    return path


def cli_json(capsys: pytest.CaptureFixture[str], settings: Settings, *args: str) -> dict[str, Any]:
    """Run `shoprank ...` in-process and parse its JSON output."""
    code = main(["--data-dir", str(settings.data_dir), *args])
    out = capsys.readouterr().out
    assert code == 0, out
    result: dict[str, Any] = json.loads(out)
    return result


@pytest.fixture
def indexed(
    request: pytest.FixtureRequest,
    settings_for: Callable[..., Settings],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Settings:
    """Settings with the test catalogue indexed, on the models named by the test's parameter."""
    models = request.getfixturevalue(getattr(request, "param", "tiny_models"))
    settings = settings_for(models, listen="127.0.0.1:0", sidecar_deadline_ms=5000)
    report = cli_json(capsys, settings, "index", "--catalogue", str(write_catalogue(tmp_path / "c.jsonl")), "--json")
    assert report["indexed"] == len(CATALOGUE_IDS)
    assert report["rejected"] == 0
    return settings


@pytest.fixture
def sidecar(indexed: Settings) -> Iterator[tuple[grpc.Server, str]]:
    """The sidecar serving the built cross-encoder on a free port."""
    server, port, slot = create_server(indexed, background_load=False)
    assert slot.ready
    yield server, f"127.0.0.1:{port}"
    server.stop(0).wait()


def search(capsys: pytest.CaptureFixture[str], settings: Settings, address: str, *extra: str) -> dict[str, Any]:
    return cli_json(capsys, settings, "--sidecar", address, "search", "kitchen towels", "--k", "5", "--json", *extra)


def test_search_is_reranked_by_the_sidecar_over_grpc(
    indexed: Settings, sidecar: tuple[grpc.Server, str], capsys: pytest.CaptureFixture[str]
) -> None:
    page = search(capsys, indexed, sidecar[1])
    version = load_metadata(indexed.models_dir() / CROSS_ENCODER).version
    assert page["reranked"] is True
    assert page["fail_open_reason"] is None
    assert page["model_version"].startswith(version)
    ids = [r["id"] for r in page["results"]]
    assert len(ids) == 5 == len(set(ids))
    assert set(ids) <= CATALOGUE_IDS
    scores = [r["score"] for r in page["results"]]
    assert scores == sorted(scores, reverse=True)
    assert page["window"] == len(CATALOGUE_IDS)  # the window is the rerank window, not the page
    assert page["timings"]["sidecar_inference_ms"] > 0


def test_stopped_sidecar_fails_open_to_first_stage_order(
    indexed: Settings, sidecar: tuple[grpc.Server, str], capsys: pytest.CaptureFixture[str]
) -> None:
    server, address = sidecar
    first_stage = search(capsys, indexed, address, "--no-rerank")
    server.stop(0).wait()
    started = time.monotonic()
    page = search(capsys, indexed, address)
    assert time.monotonic() - started < indexed.sidecar_deadline_ms / 1000  # refused at once, not at the deadline
    assert page["reranked"] is False
    assert page["fail_open_reason"].startswith("UNAVAILABLE")
    assert [r["id"] for r in page["results"]] == [r["id"] for r in first_stage["results"]]


def test_slow_sidecar_fails_open_at_the_deadline(indexed: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    def slow_loader(settings: Settings) -> Any:
        service = load_service(settings)
        rerank = service.rerank

        def late(query: Any) -> Any:
            time.sleep(1.0)
            return rerank(query)

        service.rerank = late  # type: ignore[method-assign]
        return service

    server, port, _ = create_server(indexed, loader=slow_loader, background_load=False)
    try:
        page = search(capsys, indexed, f"127.0.0.1:{port}", "--sidecar-deadline-ms", "200")
    finally:
        server.stop(0).wait()
    assert page["reranked"] is False
    assert page["fail_open_reason"].startswith("DEADLINE_EXCEEDED")
    assert len(page["results"]) == 5


@pytest.mark.parametrize("indexed", ["real_models"], indirect=True)
def test_real_models_find_kitchen_towels(
    indexed: Settings, sidecar: tuple[grpc.Server, str], capsys: pytest.CaptureFixture[str]
) -> None:
    towels = {pid for pid, *_ in TOWELS}
    first_stage = search(capsys, indexed, sidecar[1], "--no-rerank")
    assert {r["id"] for r in first_stage["results"][:3]} == towels
    page = search(capsys, indexed, sidecar[1])
    assert page["reranked"] is True
    assert {r["id"] for r in page["results"]} <= CATALOGUE_IDS
