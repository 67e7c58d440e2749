"""`shoprank eval --sweep`: the trade-off section of --json and its PNG, with tiny models."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from shoprank.cli import main
from shoprank.settings import Settings
from tests.test_eval_smoke import small_esci

__all__ = ["small_esci"]  # the fixture, shared with the eval smoke test


def test_sweep_adds_a_tradeoff_section_and_writes_its_plot(
    small_esci: tuple[Path, Path],
    tiny_models: Path,
    settings_for: Callable[..., Settings],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    judgments, catalogue = small_esci
    settings = settings_for(tiny_models)
    plot = tmp_path / "tradeoff.png"
    args = ["eval", "--data-dir", str(settings.data_dir), "--judgments", str(judgments), "--catalogue", str(catalogue)]
    args += ["--stages", "hybrid,rerank,diversified", "--rerank-window", "20"]
    args += ["--diversity-method", "mmr", "--diversity-strength", "0.3"]
    args += ["--sweep-strengths", "0,0.3", "--sweep-methods", "mmr,xquad", "--sweep-plot", str(plot), "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(report["tradeoff"]) == {"judged", "end_to_end"}
    for mode, sweep in report["tradeoff"].items():
        assert sweep["queries"] == 3
        labels = [p["label"] for p in sweep["points"]]
        # MMR on the server's similarity (attribute weight 0.75 by default), then on cosine alone.
        mixed = f"mmr[attributes {settings.diversity_attribute_weight:g}]"
        assert labels[:6] == [f"{mixed} 0.00", f"{mixed} 0.30", "mmr 0.00", "mmr 0.30", "xquad 0.00", "xquad 0.30"]
        assert "caps brand<=2" in labels
        assert f"{mixed} 0.30 + brand<=2" in labels
        points = {p["label"]: p for p in sweep["points"]}
        assert points[f"{mixed} 0.30"]["attribute_weight"] == 0.75
        stages = report["modes"][mode]["stages"]
        # Rerank-only is the rerank stage's page; the sweep's point at the server's defaults is the diversified page.
        for metric in ("ndcg@10", "category_coverage@10", "brand_coverage@10", "alpha_ndcg@10"):
            assert sweep["rerank_only"][metric] == pytest.approx(stages["rerank"][metric])
            assert points["mmr 0.00"][metric] == pytest.approx(stages["rerank"][metric])
            assert points[f"{mixed} 0.30"][metric] == pytest.approx(stages["diversified"][metric])
        for point in sweep["points"]:
            assert 0.0 <= point["ndcg@10"] <= 1.0
            assert 0.0 < point["category_coverage@10"] <= 1.0
            assert point["meets_target"] in (True, False)
        assert any("diversified" in key and key.startswith(mode) for key in report["targets"])


def test_sweep_needs_the_rerank_stage(
    small_esci: tuple[Path, Path],
    tiny_models: Path,
    settings_for: Callable[..., Settings],
    capsys: pytest.CaptureFixture[str],
) -> None:
    judgments, catalogue = small_esci
    settings = settings_for(tiny_models)
    args = ["eval", "--data-dir", str(settings.data_dir), "--judgments", str(judgments), "--catalogue", str(catalogue)]
    assert main([*args, "--stages", "hybrid", "--modes", "judged", "--sweep"]) == 2
    assert "include rerank in --stages" in capsys.readouterr().err
