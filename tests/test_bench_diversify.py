"""`shoprank bench diversify` runs end to end on a small budget and reports every method beside the baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shoprank.cli import main


def test_bench_diversify_reports_methods_beside_the_baselines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "diversify.json"
    code = main(["bench", "diversify", "--repeats", "5", "--lists", "4", "--candidates", "40", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "40 candidates x 384-d, page k=10" in printed
    assert "hardware:" in printed
    report = json.loads(out.read_text())
    rows = {row["name"]: row for row in report["rows"]}
    assert list(rows)[:2] == ["relevance sort (numpy argsort)", "none (diversify, relevance order)"]
    assert {"mmr", "xquad", "xquad (brand)", "xquad (category + brand)", "dpp (window 10)"} <= set(rows)
    assert "dpp (window 10, attributes 0.75)" in rows  # the sidecar default kernel
    assert set(report["hardware"]["blas_threads"]) == {1}  # every BLAS loaded (numpy's, torch's) at 1 thread
    for row in rows.values():
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
    baseline = rows["relevance sort (numpy argsort)"]
    assert rows["none (diversify, relevance order)"]["brand_coverage"] == baseline["brand_coverage"]
    assert rows["mmr"]["brand_coverage"] > baseline["brand_coverage"]
    assert rows["mmr"]["relevance_retained"] < 1.0
