"""`shoprank bench pipeline`'s parts that need no cluster: the catalogue slice, the closed loop's counts."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx

from benchmarks.pipeline import _kind, catalogue_slice, closed_loop


def test_the_slice_keeps_the_first_products_as_action_and_source_pairs(tmp_path: Path) -> None:
    source = tmp_path / "all.ndjson"
    lines = []
    for i in range(5):
        lines += [json.dumps({"index": {"_id": f"p{i}"}}), json.dumps({"title": f"product {i}"})]
    source.write_text("\n".join(lines) + "\n")
    out = catalogue_slice(source, 3, tmp_path / "cut.ndjson")
    kept = out.read_text().splitlines()
    assert len(kept) == 6
    assert json.loads(kept[-2]) == {"index": {"_id": "p2"}}


def test_the_closed_loop_sends_each_request_once_and_counts_what_came_back() -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def send(_http: httpx.Client, n: int) -> tuple[str, str | None]:
        with lock:
            seen.append(n)
        if n % 5 == 4:
            return "503", None
        return "200", ("embed:unavailable" if n % 5 == 3 else None)

    row = closed_loop("plugin-w30", send, concurrency=3, requests=20, max_seconds=60.0, offset=100)
    assert sorted(seen) == list(range(100, 120))
    assert (row.requests, row.ok) == (20, 16)
    assert row.other_status == {"503": 4}
    assert row.fail_open == 4
    assert row.fail_open_reasons == {"embed:unavailable": 4}
    assert not row.stopped_by_time_cap
    assert row.p50_ms >= 0.0
    assert row.throughput_rps > 0.0


def test_a_reason_is_named_by_its_kind() -> None:
    assert _kind("unavailable: sidecar 127.0.0.1:1 cannot be reached") == "unavailable"
    assert _kind(None) == "unknown"
