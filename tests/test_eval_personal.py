"""`shoprank eval-personal` end to end on three ESCI queries with tiny models: the report's shape, history 0
unchanged, the term applied with history, and the latency figures present."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from evaluation.personal import PersonalEvalConfig, evaluate_personal, format_personal
from evaluation.shoppers import ShopperConfig
from shoprank.cli import main
from shoprank.settings import Settings
from tests.test_eval_smoke import QUERIES, small_esci

__all__ = ["small_esci"]  # the fixture, shared with the eval smoke test


def test_history_zero_is_unchanged_and_a_strong_term_moves_rankings(
    small_esci: tuple[Path, Path], tiny_models: Path, settings_for: Callable[..., Settings]
) -> None:
    judgments, catalogue = small_esci
    settings = settings_for(tiny_models)
    config = PersonalEvalConfig(
        judgments=judgments,
        catalogue=catalogue,
        shoppers=ShopperConfig(seed=3, shoppers=2, histories=(0, 3, 10)),
        weights=(0.5, 50.0),
        queries="all",
    )
    report = evaluate_personal(settings, config)
    assert report["info"]["queries"] == QUERIES
    assert report["info"]["units_per_length"] == QUERIES * 2
    assert report["zero_history_rankings_identical"]
    for rows in report["by_weight"].values():
        zero = rows["0"]
        assert zero["difference"]["mean"] == 0.0
        assert zero["esci_ndcg_with"]["mean"] == zero["esci_ndcg_without"]["mean"]
        for row in rows.values():
            assert 0.0 <= row["personal_ndcg_with"]["low"] <= row["personal_ndcg_with"]["high"] <= 1.0
    # A cap of 50 drowns relevance in the personal term: the ESCI ranking must move at history 10.
    strong = report["by_weight"]["50"]["10"]
    assert strong["esci_ndcg_with"]["mean"] != strong["esci_ndcg_without"]["mean"]
    step = report["latency_ms"]["personal_step"]
    assert step["n"] == QUERIES * 2
    assert 0.0 < step["p50"] <= step["p95"]
    text = format_personal(report)
    assert "plain ESCI NDCG@10 at history 0" in text
    assert "rankings identical: True" in text


def test_cli_writes_the_report_and_refuses_bad_flags(
    small_esci: tuple[Path, Path], tiny_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    judgments, catalogue = small_esci
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "models").symlink_to(tiny_models, target_is_directory=True)
    out = tmp_path / "personal.json"
    args = ["--data-dir", str(data_dir), "eval-personal", "--judgments", str(judgments), "--catalogue", str(catalogue)]
    code = main([*args, "--queries", "all", "--shoppers", "1", "--histories", "0,1", "--output", str(out)])
    assert code == 0
    assert "personal NDCG@10" in capsys.readouterr().out
    saved = json.loads(out.read_text())
    assert saved["info"]["shoppers"]["histories"] == [0, 1]
    with pytest.raises(SystemExit):
        main([*args, "--attributes", "colour"])
    assert "choose from brand, category, price" in capsys.readouterr().err
