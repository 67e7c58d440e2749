"""`shoprank bench rerank` runs end to end on a small budget: the sidecar over gRPC and the PyTorch
baseline on the same ESCI windows, both at each concurrency, with NDCG for both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.esci_lists import ndcg_at_k, rerank_lists
from shoprank.cli import main


def tiny_fine_tuned_models(models_dir: Path, weights_dir: Path) -> Path:
    """A tiny cross-encoder exported as 'fine-tuned' from saved weights, so the baseline can load them."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from training.base_model import base_model_dir
    from training.export import export_cross_encoder

    tokenizer = AutoTokenizer.from_pretrained(str(base_model_dir()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    config.num_labels = 1
    torch.manual_seed(3)
    model: Any = BertForSequenceClassification(config)
    model.eval()
    model.save_pretrained(str(weights_dir))
    tokenizer.save_pretrained(str(weights_dir))
    export_cross_encoder(model, tokenizer, models_dir, "tiny-ft", str(weights_dir), True, 64)
    return models_dir


def test_ndcg_uses_esci_gains_on_judged_products() -> None:
    gains = {"a": 1.0, "b": 0.1, "c": 0.0}
    assert ndcg_at_k({"a": 3, "b": 2, "c": 1}, gains) == pytest.approx(1.0)
    worst = ndcg_at_k({"a": 1, "b": 2, "c": 3}, gains)
    assert worst is not None
    assert 0 < worst < 1
    assert ndcg_at_k({"c": 1}, {"c": 0.0}) is None


def test_rerank_lists_pad_judged_products_to_the_window(shared_data: Path) -> None:
    lists = rerank_lists(shared_data / "esci", queries=3, window=100)
    assert len(lists) == 3
    for item in lists:
        ids = [p.id for p in item.products]
        assert len(ids) == len(set(ids)) == 100
        assert set(item.gains) <= set(ids)
    assert rerank_lists(shared_data / "esci", 3, 100)[0].products == lists[0].products  # seeded


@pytest.mark.service
def test_bench_rerank_reports_both_sides_per_concurrency(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    tiny_fine_tuned_models(data_dir / "models", tmp_path / "weights")
    out = tmp_path / "rerank.json"
    flags = ["--queries", "4", "--candidates", "16", "--json", "--max-pair-tokens", "64", "--out", str(out)]
    code = main(["--data-dir", str(data_dir), "bench", "rerank", *flags, "--esci", str(shared_data / "esci")])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)  # --json prints nothing but the report
    report = json.loads(out.read_text())
    assert printed == report
    assert report["inputs"]["queries"] == 4
    assert report["inputs"]["candidates"] == 16
    for side in ("sidecar", "baseline"):
        for clients in ("1", "8"):
            level = report[side][clients]
            assert level["requests"] == 4
            assert level["pairs"] == 64
            assert 0 < level["p50_ms"] <= level["p95_ms"] <= level["p99_ms"]
            assert level["pairs_per_s"] > 0
    served = report["sidecar"]["served"]
    assert served["model_version"] == "tiny-ft:int8"
    assert served["cache_hits"] == 0  # the cache is off: every pair was computed
    assert served["tokens"] <= served["padded_tokens"] <= report["baseline"]["facts"]["padded_tokens"]
    assert report["baseline"]["facts"]["parity_with_served_fp32_onnx"] < 1e-3
    ndcg = report["ndcg@10"]
    assert 0 <= ndcg["served"] <= 1
    assert 0 <= ndcg["pytorch_fp32"] <= 1
    assert report["hardware"]["cores"] >= 1
    assert set(report["targets"]) == {"p50_at_most_a_third", "pairs_per_s_at_least_3x", "ndcg_within"}
