"""The rerank pipeline `shoprank opensearch setup --rerank-pipeline` installs (engines/opensearch_rerank.py)."""

from __future__ import annotations

import pytest

from engines.base import EngineError
from engines.opensearch_rerank import RerankPipeline, rerank_pipeline_body, with_default_pipeline
from shoprank.settings import REPO_ROOT, Settings

ASSETS = REPO_ROOT / "opensearch"


def test_the_body_carries_the_settings_and_the_hybrid_fusion() -> None:
    settings = Settings(sidecar="127.0.0.1:50051", sidecar_deadline_ms=250, rerank_window=50, embed_deadline_ms=80)
    assert RerankPipeline.from_settings(settings, "shoprank", as_default=False).targets == ("127.0.0.1:50051",)
    pipeline = RerankPipeline.from_settings(settings, "shoprank", False, "10.0.0.5:50051, 10.0.0.6:50051")
    assert pipeline.targets == ("10.0.0.5:50051", "10.0.0.6:50051")
    body = rerank_pipeline_body(ASSETS, pipeline, "min_max", 0.3)
    assert body["request_processors"] == [
        {"shoprank_embed": {"targets": ["10.0.0.5:50051", "10.0.0.6:50051"], "deadline_ms": 80}},
        {"shoprank_rerank": {"window": 50}},
    ]
    response = body["response_processors"][0]["shoprank_rerank"]
    assert response["targets"] == ["10.0.0.5:50051", "10.0.0.6:50051"]
    assert response["ubi"] == {"index": "ubi_queries", "application": settings.ubi_application}
    quiet = Settings(ubi_capture=False)
    quiet_body = rerank_pipeline_body(ASSETS, RerankPipeline.from_settings(quiet, "s", False), "min_max", 0.5)
    assert "ubi" not in quiet_body["response_processors"][0]["shoprank_rerank"]
    assert response["deadline_ms"] == 250
    normalization = body["phase_results_processors"][0]["normalization-processor"]
    assert normalization["combination"]["parameters"]["weights"] == [0.7, 0.3]
    rrf = rerank_pipeline_body(ASSETS, pipeline, "rrf", 0.3)
    assert "score-ranker-processor" in rrf["phase_results_processors"][0]


def test_missing_or_bad_targets_are_refused() -> None:
    with pytest.raises(EngineError, match="--rerank-targets"):
        RerankPipeline.from_settings(Settings(), "shoprank", False, " , ")
    with pytest.raises(EngineError, match="not host:port"):
        RerankPipeline.from_settings(Settings(), "shoprank", False, "http://sidecar:50051")


def test_the_default_pipeline_goes_into_the_index_templates_settings() -> None:
    template = {"template": {"settings": {"index": {"knn": True}}}}
    out = with_default_pipeline(template, "shoprank")
    assert out["template"]["settings"]["index"] == {"knn": True, "search": {"default_pipeline": "shoprank"}}
    assert "search" not in template["template"]["settings"]["index"], "the input is left alone"
