"""A tiny fine-tuning run: the loss falls, the weights release compactly, and the export serves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from relevance.judgments import Judgments
from shoprank.model_meta import CROSS_ENCODER, TRAINING_RECORD_FILE, load_metadata
from shoprank.schema import Product
from sidecar.cross_encoder import CrossEncoder
from sidecar.domain import CandidateProduct
from training.base_model import base_model_dir
from training.config import TrainConfig
from training.export import build_cross_encoder, export_cross_encoder, fine_tuned_version
from training.groups import labelled_groups
from training.losses import group_loss
from training.pipeline import release_precision, save_weights
from training.trainer import PairTokenizer, judged_metrics, score_pairs, seed_everything, train

pytestmark = pytest.mark.service  # tiny torch models

PRODUCTS = {
    "towel": Product(id="towel", title="Cotton Kitchen Towels, Set of 6", brand="Utopia", category=["Home", "Kitchen"]),
    "charger": Product(id="charger", title="65W USB C Charger, GaN", brand="Anker", category=["Electronics"]),
    "lego": Product(id="lego", title="LEGO Star Wars Millennium Falcon", brand="LEGO", category=["Toys"]),
    "mattress": Product(id="mattress", title="Queen Memory Foam Mattress 12 inch", brand="Ashley"),
}
JUDGMENTS = Judgments(
    {
        "kitchen towels": {"towel": 1.0, "charger": 0.0, "lego": 0.0, "mattress": 0.0},
        "usb c charger": {"charger": 1.0, "towel": 0.0, "lego": 0.0, "mattress": 0.0},
        "star wars lego": {"lego": 1.0, "charger": 0.0, "towel": 0.01, "mattress": 0.0},
        "queen mattress": {"mattress": 1.0, "lego": 0.0, "towel": 0.1, "charger": 0.0},
    }
)


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return AutoTokenizer.from_pretrained(str(base_model_dir()))


def _tiny_model(tokenizer: Any) -> BertForSequenceClassification:
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    config.num_labels = 1
    return BertForSequenceClassification(config)


def _dataset_loss(model: Any, pairs_tokenizer: PairTokenizer, config: TrainConfig) -> float:
    total = 0.0
    for group in labelled_groups(JUDGMENTS, config, PRODUCTS):
        logits = score_pairs(model, pairs_tokenizer, [(group.query, pid) for pid in group.product_ids])
        total += float(
            group_loss(
                torch.from_numpy(logits),
                torch.tensor(group.targets),
                torch.tensor(group.weights),
                config.listwise_weight,
                config.pointwise_weight,
            )
        )
    return total


def _run(tokenizer: Any, config: TrainConfig) -> tuple[BertForSequenceClassification, float, float]:
    seed_everything(config)
    model = _tiny_model(tokenizer)
    pairs_tokenizer = PairTokenizer(tokenizer, PRODUCTS, config.max_tokens)
    before = _dataset_loss(model, pairs_tokenizer, config)
    result = train(config, model, pairs_tokenizer, labelled_groups(JUDGMENTS, config, PRODUCTS), dev=JUDGMENTS)
    return result.model, before, _dataset_loss(result.model, pairs_tokenizer, config)


# A tiny random model learns a handful of pairs in a few dozen steps at a high learning rate.
CONFIG = TrainConfig(
    steps=60, lr=1e-2, warmup=0.0, list_size=4, groups_per_step=2, max_tokens=48, threads=1, freeze_embeddings=False
)


def test_loss_falls_and_training_data_ends_up_ranked(tokenizer: Any) -> None:
    model, before, after = _run(tokenizer, CONFIG)
    assert after < 0.5 * before
    figures = judged_metrics(model, PairTokenizer(tokenizer, PRODUCTS, 48), JUDGMENTS)
    assert figures["mrr"] == pytest.approx(1.0)


def test_training_is_reproducible(tokenizer: Any) -> None:
    config = CONFIG.model_copy(update={"steps": 4})
    first, _, _ = _run(tokenizer, config)
    again, _, _ = _run(tokenizer, config)
    assert fine_tuned_version(first) == fine_tuned_version(again)


def test_cuda_training_says_what_to_do_without_a_gpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="--train-device cpu"):
        seed_everything(CONFIG.model_copy(update={"train_device": "cuda"}))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (runs on the device machine)")
def test_training_on_cuda_learns_and_hands_back_a_cpu_model(tokenizer: Any) -> None:
    config = CONFIG.model_copy(update={"train_device": "cuda"})
    seed_everything(config)
    model = _tiny_model(tokenizer)
    torch.nn.Module.to(model, "cuda")  # transformers' own `to` is typed for dtypes only
    pairs_tokenizer = PairTokenizer(tokenizer, PRODUCTS, config.max_tokens)
    before = _dataset_loss(model, pairs_tokenizer, config)
    result = train(config, model, pairs_tokenizer, labelled_groups(JUDGMENTS, config, PRODUCTS), dev=JUDGMENTS)
    assert result.model.device.type == "cpu"  # export and hashing need CPU tensors
    assert _dataset_loss(result.model, pairs_tokenizer, config) < 0.5 * before
    assert judged_metrics(result.model, pairs_tokenizer, JUDGMENTS)["mrr"] == pytest.approx(1.0)


def test_released_weights_export_and_serve_in_the_sidecar(tokenizer: Any, tmp_path: Path) -> None:
    config = CONFIG.model_copy(update={"steps": 4})
    model, _, _ = _run(tokenizer, config)
    model = release_precision(model)
    record = {"version": fine_tuned_version(model), "trained_queries": ["kitchen towels"]}
    weights = tmp_path / "weights"
    save_weights(model, tokenizer, record, weights)
    assert json.loads((weights / TRAINING_RECORD_FILE).read_text())["version"] == record["version"]

    # `shoprank models build` path: fp16 weights dir -> fp32 ONNX etc. with the same version id.
    built = build_cross_encoder(tmp_path / "models", weights, max_length=48)
    assert built.version == record["version"]
    assert built.fine_tuned
    directory = tmp_path / "models" / CROSS_ENCODER
    assert (directory / TRAINING_RECORD_FILE).is_file()  # the eval reads which queries to hold out
    assert load_metadata(directory).parity["fp32"] < 1e-3

    encoder = CrossEncoder(tmp_path / "models", precision="fp32", max_length=48)
    assert encoder.version == f"{record['version']}:fp32"
    candidates = [CandidateProduct(title=p.title, brand=p.brand, category=tuple(p.category)) for p in PRODUCTS.values()]
    served = encoder.score("kitchen towels", candidates).logits
    pairs = [("kitchen towels", pid) for pid in PRODUCTS]
    reference = score_pairs(model, PairTokenizer(tokenizer, PRODUCTS, 48), pairs)
    np.testing.assert_allclose(served, reference, atol=1e-4)

    direct = export_cross_encoder(model, tokenizer, tmp_path / "direct", record["version"], "test", True, 48)
    assert direct.version == built.version
