"""`shoprank eval` end to end on a small judgments file and catalogue, with tiny models."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evaluation.evaluate import EvalConfig, evaluate
from relevance.judgments import load_judgments
from shoprank.cli import main
from shoprank.model_meta import CROSS_ENCODER, TRAINING_RECORD_FILE
from shoprank.settings import Settings

QUERIES = 3


@pytest.fixture(scope="module")
def small_esci(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The judgments of the first three ESCI queries and a catalogue of their products plus some others."""
    out = tmp_path_factory.mktemp("small-esci")
    lines = (shared_data / "esci" / "judgments.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    queries: list[str] = []
    kept = []
    for row in rows:
        query = row.split(",", 1)[0]
        if query not in queries:
            if len(queries) == QUERIES:
                break
            queries.append(query)
        kept.append(row)
    judgments = out / "judgments.csv"
    judgments.write_text("\n".join([header, *kept]) + "\n")
    wanted = {row.split(",")[1] for row in kept}
    catalogue = out / "products.jsonl"
    bulk = (shared_data / "esci" / "products.ndjson").read_text().splitlines()
    with catalogue.open("w") as handle:
        for index in range(1, len(bulk), 2):
            doc = json.loads(bulk[index])
            if doc["asin"] in wanted or index < 120:  # judged products + 60 unjudged ones
                handle.write(json.dumps({**doc, "id": doc["asin"]}) + "\n")
    return judgments, catalogue


def _check_mode(mode: dict[str, Any], stages: list[str], queries: int) -> None:
    assert mode["queries"] == queries
    assert list(mode["stages"]) == stages
    for stage in mode["stages"].values():
        for metric in ("ndcg@10", "ndcg@5", "mrr"):
            low, high = stage["ci"][metric]
            assert 0.0 <= low <= stage[metric] <= high <= 1.0
        assert 0.1 <= stage["category_coverage@10"] <= 1.0
        assert 0.0 <= stage["ild@10"] <= 2.0


def test_eval_runs_every_stage_in_both_modes(
    small_esci: tuple[Path, Path], tiny_models: Path, settings_for: Callable[..., Settings]
) -> None:
    judgments, catalogue = small_esci
    settings = settings_for(tiny_models, rerank_window=20)
    config = EvalConfig(judgments=judgments, catalogue=catalogue, zero_shot_dir=tiny_models)
    report = evaluate(settings, config).as_dict()
    judged, e2e = report["modes"]["judged"], report["modes"]["end_to_end"]
    _check_mode(judged, ["bm25", "knn", "hybrid", "rerank_zero_shot", "rerank", "rerank_fp32", "diversified"], 3)
    _check_mode(e2e, ["bm25", "knn", "hybrid", "rerank_zero_shot", "rerank", "diversified"], 3)
    assert all(0.0 <= e2e["stages"][s]["recall@20"] <= 1.0 for s in ("bm25", "knn", "hybrid"))
    # Judged mode reorders the same judged list in every stage: the ideal is reachable, and rerank with
    # the same tiny model as the zero-shot stage ranks identically.
    assert judged["stages"]["rerank"]["ndcg@10"] == pytest.approx(judged["stages"]["rerank_zero_shot"]["ndcg@10"])
    names = {(c["result"], c["baseline"]) for c in judged["comparisons"]}
    assert {("rerank", "knn"), ("rerank", "rerank_zero_shot"), ("diversified", "rerank")} <= names
    diversity_target = "diversified NDCG@10 within 1% of rerank, category and brand coverage@10 +20%"
    assert set(report["targets"]) == {
        "judged: rerank > knn",
        "judged: rerank > rerank_zero_shot",
        f"end_to_end: rerank >= {e2e['best_first_stage']} + 0.03",
        *(f"{mode}: {diversity_target}" for mode in ("judged", "end_to_end")),
    }
    assert report["models"]["rerank"] == "tiny-ce:int8"


def test_zero_shot_is_scored_at_the_served_precision(
    small_esci: tuple[Path, Path], tiny_models: Path, settings_for: Callable[..., Settings]
) -> None:
    judgments, catalogue = small_esci
    settings = settings_for(tiny_models, rerank_window=20, cross_encoder_precision="fp32")
    config = EvalConfig(
        judgments=judgments,
        catalogue=catalogue,
        zero_shot_dir=tiny_models,
        modes=["judged"],
        stages=["rerank_zero_shot", "rerank"],
    )
    report = evaluate(settings, config).as_dict()
    assert report["models"]["rerank"] == report["models"]["rerank_zero_shot"] == "tiny-ce:fp32"
    stages = report["modes"]["judged"]["stages"]
    assert stages["rerank"]["ndcg@10"] == pytest.approx(stages["rerank_zero_shot"]["ndcg@10"])


def test_unseen_queries_leave_out_what_the_model_was_trained_on(
    small_esci: tuple[Path, Path], tiny_models: Path, settings_for: Callable[..., Settings], tmp_path: Path
) -> None:
    judgments, catalogue = small_esci
    trained = load_judgments(judgments).queries[0]
    model_copy = tmp_path / "ce"
    model_copy.mkdir()
    for item in (tiny_models / CROSS_ENCODER).iterdir():
        (model_copy / item.name).symlink_to(item)
    (model_copy / TRAINING_RECORD_FILE).write_text(json.dumps({"trained_queries": [trained.lower()]}))
    settings = settings_for(tiny_models, rerank_window=20)
    base = EvalConfig(
        judgments=judgments,
        catalogue=catalogue,
        cross_encoder_dir=model_copy,
        modes=["judged"],
        stages=["knn", "rerank"],
    )
    unseen = evaluate(settings, base).as_dict()["modes"]["judged"]
    assert unseen["queries"] == QUERIES - 1
    assert any("trained on" in note for note in unseen["notes"])
    everything = evaluate(settings, EvalConfig(**{**base.__dict__, "queries": "all"})).as_dict()
    assert everything["modes"]["judged"]["queries"] == QUERIES


def test_cli_prints_json_and_writes_a_plot(
    small_esci: tuple[Path, Path],
    tiny_models: Path,
    settings_for: Callable[..., Settings],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    judgments, catalogue = small_esci
    settings = settings_for(tiny_models)
    zero_shot = settings.data_dir / "eval-cache" / f"zero-shot-{settings.max_pair_tokens}"
    zero_shot.mkdir(parents=True)
    (zero_shot / CROSS_ENCODER).symlink_to(tiny_models / CROSS_ENCODER)  # no base-model export in a unit test
    plot = tmp_path / "eval.png"
    code = main(
        [
            "eval",
            "--data-dir",
            str(settings.data_dir),
            "--judgments",
            str(judgments),
            "--catalogue",
            str(catalogue),
            "--modes",
            "end_to_end",
            "--stages",
            "bm25,hybrid,rerank_zero_shot,rerank",
            "--json",
            "--plot",
            str(plot),
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["modes"]) == ["end_to_end"]
    assert list(report["modes"]["end_to_end"]["stages"]) == ["bm25", "hybrid", "rerank_zero_shot", "rerank"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
