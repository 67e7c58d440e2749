"""The release gate: a click-trained cross-encoder replaces the release only if it does not lose
NDCG@10 on labelled queries neither model saw."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evaluation.release_gate import MIN_GATE_QUERIES, GateReport, gate_queries, release_gate
from shoprank.model_meta import CROSS_ENCODER, TRAINING_RECORD_FILE
from shoprank.settings import Settings


def _model_dir(root: Path, name: str, trained: list[str]) -> Path:
    directory = root / name
    directory.mkdir()
    (directory / TRAINING_RECORD_FILE).write_text(json.dumps({"trained_queries": trained}))
    return directory


def test_the_gate_keeps_queries_neither_model_saw_that_have_a_relevant_product(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "query,product_id,esci_label\n"
        "Red Mug,a,E\nred mug,b,I\nkettle,c,E\nlamp,d,S\nsofa,e,E\nrug,f,I\n"  # rug: nothing relevant
    )
    candidate = _model_dir(tmp_path, "candidate", ["red mug"])
    current = _model_dir(tmp_path, "current", ["lamp"])
    assert gate_queries(labels, candidate, current) == ["kettle", "sofa"]


def test_a_candidate_passes_only_when_it_loses_no_more_than_the_margin() -> None:
    def report(candidate: list[float], margin: float = 0.0) -> GateReport:
        return GateReport(["a", "b"], "new", "old", candidate, [0.5, 0.5], margin)

    assert report([0.5, 0.5]).passed
    assert report([0.6, 0.5]).passed
    assert not report([0.5, 0.48]).passed
    assert report([0.5, 0.48], margin=0.01).passed
    assert "FAILED: not released" in report([0.4, 0.4]).format()
    assert report([0.6, 0.4]).as_dict()["difference"]["mean"] == pytest.approx(0.0)


@pytest.fixture(scope="module")
def gate_esci(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Judgments of the first ESCI queries with a relevant product, enough for the gate, and their products."""
    out = tmp_path_factory.mktemp("gate-esci")
    lines = (shared_data / "esci" / "judgments.csv").read_text().splitlines()
    queries: list[str] = []
    kept = []
    for row in lines[1:]:
        query = row.split(",", 1)[0]
        if query not in queries:
            if len(queries) == MIN_GATE_QUERIES + 2:
                break
            queries.append(query)
        kept.append(row)
    judgments = out / "judgments.csv"
    judgments.write_text("\n".join([lines[0], *kept]) + "\n")
    wanted = {row.split(",")[1] for row in kept}
    catalogue = out / "products.jsonl"
    bulk = (shared_data / "esci" / "products.ndjson").read_text().splitlines()
    with catalogue.open("w") as handle:
        for index in range(1, len(bulk), 2):
            doc = json.loads(bulk[index])
            if doc["asin"] in wanted:
                handle.write(json.dumps({**doc, "id": doc["asin"]}) + "\n")
    return judgments, catalogue


@pytest.mark.slow
def test_the_same_model_on_both_sides_passes_with_a_zero_difference(
    gate_esci: tuple[Path, Path], tiny_models: Path, settings_for: Callable[..., Settings]
) -> None:
    judgments, catalogue = gate_esci
    settings = settings_for(tiny_models, rerank_window=20)
    model = tiny_models / CROSS_ENCODER
    report = release_gate(settings, judgments, model, model, catalogue=catalogue)
    assert len(report.queries) >= MIN_GATE_QUERIES
    assert report.candidate_ndcg == report.current_ndcg
    assert all(0.0 <= v <= 1.0 for v in report.candidate_ndcg)
    assert report.passed
    assert report.difference.mean == 0.0


def test_too_few_held_out_queries_are_refused_with_what_to_do(tmp_path: Path) -> None:
    from shoprank.errors import UserInputError

    labels = tmp_path / "labels.csv"
    labels.write_text("query,product_id,esci_label\nkettle,c,E\n")
    model = _model_dir(tmp_path, "m", [])
    with pytest.raises(UserInputError, match="--holdout both models share"):
        release_gate(Settings(data_dir=tmp_path), labels, model, model)


class _Run:
    def __init__(self, root: Path) -> None:
        self.output = root
        self.weights = root / "weights"
        self.models_dir = root / "models"
        self.record = {"version": "ce-clicks", "trained_queries": [], "train_seconds": 1.0, "pairs_seen": 1, "dev": {}}


@pytest.fixture
def fake_training(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """run_training, release and the gate replaced: what the CLI decides is what is recorded."""
    import evaluation.release_gate as gate_module
    import training.built_models as built_models
    import training.pipeline as pipeline
    import training.release as release_module

    state: dict[str, Any] = {"released": [], "trained": 0, "gate": None}

    def run_training(*args: object) -> _Run:
        state["trained"] += 1
        return _Run(tmp_path)

    def gate(settings: Settings, labels: Path, candidate: Path, current: Path, margin: float, catalogue: Any) -> Any:
        state["gate_args"] = (labels, candidate, current, margin)
        return state["gate"]

    monkeypatch.setattr(pipeline, "run_training", run_training)
    monkeypatch.setattr(release_module, "release", lambda weights, target, record: state["released"].append(weights))
    monkeypatch.setattr(gate_module, "release_gate", gate)
    monkeypatch.setattr(built_models, "ensure_models", lambda settings: tmp_path / "served")
    return state


def _train(tmp_path: Path, *flags: str) -> int:
    from shoprank.cli import main

    clicks = tmp_path / "clicks.csv"
    clicks.write_text("query,product_id,gain\nred mug,a,0.5\n")
    catalogue = tmp_path / "products.jsonl"
    catalogue.write_text("")
    return main(
        ["--data-dir", str(tmp_path), "train", "--judgments", str(clicks), "--catalogue", str(catalogue), *flags]
    )


def test_releasing_a_click_trained_model_without_a_gate_is_refused_before_training(
    fake_training: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(tmp_path, "--release") == 2
    assert "--gate-judgments" in capsys.readouterr().err
    assert fake_training["trained"] == 0


def test_a_failed_gate_keeps_the_current_release(
    fake_training: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = tmp_path / "labels.csv"
    fake_training["gate"] = GateReport(["a", "b"], "ce-clicks", "ce-labels", [0.4, 0.5], [0.5, 0.5], 0.0)
    assert _train(tmp_path, "--release", "--gate-judgments", str(labels)) == 1
    assert fake_training["released"] == []
    assert "kept the current release" in capsys.readouterr().out
    assert fake_training["gate_args"][0] == labels
    assert fake_training["gate_args"][2] == tmp_path / "served" / CROSS_ENCODER


def test_a_passed_gate_releases_and_force_overrides_a_failed_one(fake_training: dict[str, Any], tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    fake_training["gate"] = GateReport(["a", "b"], "ce-clicks", "ce-labels", [0.6, 0.5], [0.5, 0.5], 0.0)
    assert _train(tmp_path, "--release", "--gate-judgments", str(labels)) == 0
    assert fake_training["released"] == [tmp_path / "weights"]
    fake_training["gate"] = GateReport(["a", "b"], "ce-clicks", "ce-labels", [0.1, 0.1], [0.5, 0.5], 0.0)
    assert _train(tmp_path, "--release", "--gate-judgments", str(labels), "--force-release") == 0
    assert len(fake_training["released"]) == 2
