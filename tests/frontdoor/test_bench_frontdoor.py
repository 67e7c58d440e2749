"""`shoprank bench frontdoor`: real shop queries, and (slow) a bounded run on the tiny stack that must
answer every request with 200, also after the sidecar is killed under load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.frontdoor import load_queries
from shoprank.cli import main


def test_queries_are_the_esci_and_wands_shop_queries_once_each(shared_data: Path) -> None:
    queries = load_queries(shared_data)
    assert len(queries) == len(set(queries))
    assert queries[0] == "t towels kitchen"  # ESCI judgments first
    assert "salon chair" in queries  # then WANDS
    assert len(queries) > 500


@pytest.mark.slow
def test_bounded_load_run_answers_everything(
    stack_dir: Path, shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "frontdoor.json"
    args = ["--data-dir", str(stack_dir), "--rerank-window", "10", "bench", "frontdoor"]
    code = main([*args, "--concurrency", "1,2", "--requests", "4", "--max-seconds", "60", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "hardware:" in printed
    report = json.loads(out.read_text())
    rows = [(r["path"], r["concurrency"]) for r in report["rows"]]
    assert rows == [("first-stage", 1), ("reranked", 1), ("first-stage", 2), ("reranked", 2)]
    for row in report["rows"]:
        assert row["ok"] == row["requests"] == 4
        assert 0 < row["p50_ms"] <= row["p99_ms"]
    assert report["rows"][1]["fail_open"] < 4, "the tiny sidecar reranks within the deadline"
    kill = report["kill_phase"]
    assert kill["non_200"] == 0
    assert kill["ok"] == kill["requests"] == 4
    assert kill["fail_open"] >= 1
