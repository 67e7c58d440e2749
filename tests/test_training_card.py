"""The model card says what the model is, what it was trained on, how, and how well it does."""

from __future__ import annotations

from typing import Any

from training.card import render_card
from training.config import TrainConfig


def _record(holdout: str, dev: dict[str, float]) -> dict[str, Any]:
    return {
        "version": f"minilm-l6-ce-{holdout}",
        "base_model": "sentence-transformers/all-MiniLM-L6-v2",
        "template_version": "t9",
        "config": TrainConfig(holdout=holdout, steps=321).model_dump(),
        "data": {
            "judgments": "judgments.csv",
            "judgments_sha256": "ab" * 32,
            "catalogue": "products.ndjson",
            "catalogue_sha256": "cd" * 32,
            "products": 6764,
            "queries": 100,
            "pairs": 4454,
        },
        "split": {"seed": 7, "counts": {"train": 50, "dev": 20, "test": 30}},
        "trained_queries": ["q"] * (70 if holdout == "test" else 50),
        "groups": {"labelled": 70},
        "dev": dev,
        "train_seconds": 1500.0,
        "total_seconds": 1700.0,
        "hardware": "x86_64 torch threads=1",
        "pairs_seen": 6400,
        "software": {"torch": "2"},
    }


def _stage(ndcg: float) -> dict[str, Any]:
    interval = [ndcg - 0.05, ndcg + 0.05]
    return {"ndcg@10": ndcg, "ndcg@5": ndcg, "mrr": 0.9, "ci": {"ndcg@10": interval}, "seconds_per_query": 0.25}


def test_card_states_version_data_split_dev_figures_notes_and_held_out_eval() -> None:
    report = {
        "judgments": "judgments.csv",
        "queries": 30,
        "blend_weight": 0.5,
        "modes": {
            "judged": {
                "stages": {"knn": _stage(0.6), "rerank": _stage(0.7)},
                "comparisons": [{"result": "rerank", "baseline": "knn", "difference": 0.1, "ci": [0.02, 0.18]}],
            }
        },
        "targets": {"judged: rerank > knn": True},
    }
    card = render_card(
        _record("test", {}), _record("dev", {"ndcg@10": 0.657}), report, notes="## How it was chosen\n\nOn dev."
    )
    assert card.startswith("# shoprank cross-encoder `minilm-l6-ce-test`")
    assert "template `t9`" in card
    assert "50 train, 20 dev, 30 test queries" in card
    assert "trained on train + dev (70 queries)" in card
    assert "(`--holdout dev`, version minilm-l6-ce-dev)" in card
    assert "ndcg@10 0.6570" in card
    assert "| steps | 321 |" in card  # the full recipe, from the record
    assert "## How it was chosen\n\nOn dev." in card
    assert "first-stage score at weight 0.5" in card
    assert "| rerank | 0.700 [0.650, 0.750] |" in card
    assert "- rerank vs knn: +0.100 [+0.020, +0.180]" in card
    assert "judged: rerank > knn: met" in card


def test_card_without_dev_figures_says_so() -> None:
    card = render_card(_record("test", {}))
    assert "No dev run recorded." in card
    assert "Held-out evaluation" not in card
