"""`shoprank eval-pool`: sweeps of disjoint query sets pooled into exact query-weighted means."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evaluation.tradeoff_pool import PoolError, format_pooled, pool_tradeoffs
from shoprank.cli import main

METRICS = ("ndcg@10", "category_coverage@10", "brand_coverage@10")


def _point(label: str, values: tuple[float, ...]) -> dict[str, Any]:
    method, strength = label.split()
    config = {"family": method, "method": method, "strength": float(strength), "window": 10, "facets": ["category"]}
    config.update(max_per_brand=None, max_per_category=None, attribute_weight=0.0)
    return {"label": label, **config, **dict(zip(METRICS, values, strict=True))}


def _sweep(
    queries: list[str], base: tuple[float, float, float], points: dict[str, tuple[float, ...]]
) -> dict[str, Any]:
    return {
        "queries": len(queries),
        "query_texts": queries,
        "rerank_only": dict(zip(METRICS, base, strict=True)),
        "points": [_point(label, values) for label, values in points.items()],
    }


def _report(split: str, queries: list[str], base: tuple[float, float, float], points: dict[str, Any]) -> dict[str, Any]:
    return {"split": split, "models": {"rerank": f"ce-{split}"}, "tradeoff": {"judged": _sweep(queries, base, points)}}


# One query at NDCG 0.5 and three at 0.9: the pooled baseline is (0.5 + 3 * 0.9) / 4 = 0.8.
DEV = _report("dev", ["a"], (0.5, 0.2, 0.4), {"dpp 0.10": (0.5, 0.4, 0.5), "mmr 0.30": (0.40, 0.3, 0.6)})
TRAIN = _report("train", ["b", "c", "d"], (0.9, 0.4, 0.6), {"dpp 0.10": (0.9, 0.5, 0.75), "mmr 0.30": (0.95, 0.4, 0.6)})


def test_pooled_changes_are_query_weighted_means_not_averaged_ratios() -> None:
    pooled = pool_tradeoffs([DEV, TRAIN])["judged"]
    assert pooled.queries == 4
    assert pooled.rerank_only["ndcg@10"] == pytest.approx(0.8)
    dpp, mmr = pooled.points
    assert dpp.changes["ndcg@10"] == pytest.approx(0.0)
    # category: (0.4 + 3 * 0.5) / (0.2 + 3 * 0.4) - 1 = 1.9 / 1.4 - 1; brand: (0.5 + 2.25) / (0.4 + 1.8) - 1
    assert dpp.changes["category_coverage@10"] == pytest.approx(1.9 / 1.4 - 1)
    assert dpp.changes["brand_coverage@10"] == pytest.approx(2.75 / 2.2 - 1)
    assert dpp.meets_target
    # mmr: NDCG (0.4 + 2.85) / 3.2 - 1 = +1.6% (the dev query's -20% is one query of four)
    assert mmr.changes["ndcg@10"] == pytest.approx(3.25 / 3.2 - 1)
    assert not mmr.meets_target  # brand (0.6 + 1.8) / 2.2 - 1 = +9%
    assert pooled.chosen() is dpp
    assert "chosen: dpp 0.10" in format_pooled(pooled)


def test_a_query_in_two_reports_is_refused() -> None:
    again = _report("test", ["d"], (0.9, 0.4, 0.6), {"dpp 0.10": (0.9, 0.5, 0.7), "mmr 0.30": (0.9, 0.4, 0.6)})
    with pytest.raises(PoolError, match="query 'd' is in both train"):
        pool_tradeoffs([TRAIN, again])


def test_reports_with_other_configurations_or_no_sweep_are_refused() -> None:
    other = _report("test", ["e"], (0.9, 0.4, 0.6), {"dpp 0.20": (0.9, 0.5, 0.7), "mmr 0.30": (0.9, 0.4, 0.6)})
    with pytest.raises(PoolError, match="other configurations"):
        pool_tradeoffs([DEV, other])
    with pytest.raises(PoolError, match="no trade-off sweep"):
        pool_tradeoffs([DEV, {"split": "test", "modes": {}}])


def test_a_point_without_its_configuration_is_refused() -> None:
    bare = _report("test", ["e"], (0.9, 0.4, 0.6), {"dpp 0.10": (0.9, 0.5, 0.7), "mmr 0.30": (0.9, 0.4, 0.6)})
    del bare["tradeoff"]["judged"]["points"][0]["method"]
    with pytest.raises(PoolError, match="lacks 'method'"):
        pool_tradeoffs([bare])


def test_cli_prints_the_pooled_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = []
    for name, report in (("dev", DEV), ("train", TRAIN)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(report))
    plot = tmp_path / "pooled.png"
    assert main(["eval-pool", *map(str, paths), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "pooled trade-off, judged: 4 queries from dev (ce-dev), train (ce-train)" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["eval-pool", "--json", *map(str, paths)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["judged"]["chosen"] == "dpp 0.10"
    assert data["judged"]["rerank_only"]["ndcg@10"] == pytest.approx(0.8)
