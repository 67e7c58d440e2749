"""Calibrated static int8: built beside dynamic int8 from catalogue pseudo queries, loadable, ranks like fp32."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from shoprank.model_meta import CROSS_ENCODER, load_metadata
from shoprank.schema import Product
from sidecar.cross_encoder import CrossEncoder
from sidecar.domain import CandidateProduct
from training.base_model import base_model_dir
from training.export import export_cross_encoder
from training.static_int8 import STATIC_INT8, calibration_pairs, long_tailed_matmuls

pytestmark = pytest.mark.service  # tiny torch models

CATALOGUE = [
    Product(id=f"p{i}", title=title, brand=brand, category=category)
    for i, (title, brand, category) in enumerate(
        [
            ("Cotton Kitchen Towels Set of 6", "Utopia", ["Home", "Kitchen", "Towels"]),
            ("65W USB C Charger GaN Fast", "Anker", ["Electronics", "Chargers"]),
            ("LEGO Star Wars Millennium Falcon Kit", "LEGO", ["Toys", "Building"]),
            ("Queen Memory Foam Mattress 12 inch", "Ashley", ["Home", "Mattresses"]),
            ("Stainless Steel Deep Frying Pan", "Tramontina", ["Kitchen", "Cookware"]),
            ("Womens Running Shoes Lightweight Mesh", "Nike", ["Shoes", "Women"]),
            ("Weighted Blanket Glass Beads Queen", "YnM", ["Home", "Bedding"]),
            ("Wireless Bluetooth Earbuds Charging Case", "Soundcore", ["Electronics", "Audio"]),
        ]
    )
]
JUDGED = ["kitchen towels", "usb c charger"]


def _tiny(tokenizer: Any) -> BertForSequenceClassification:
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        initializer_range=0.2,  # wider than BERT's 0.02, so a random model's logits differ by product
    )
    config.num_labels = 1
    torch.manual_seed(3)
    model = BertForSequenceClassification(config)
    model.train(False)
    return model


def test_calibration_set_comes_from_the_catalogue_without_the_judged_queries() -> None:
    groups = calibration_pairs(CATALOGUE, exclude_queries=JUDGED, queries=6, per_query=3)
    assert groups
    assert all(query not in JUDGED for query, _ in groups)
    assert all(len(texts) == 3 for _, texts in groups)
    # The first text of each group is the product the pseudo query was made from: it shares a word.
    assert all(set(query.split()) & set(texts[0].lower().split()) for query, texts in groups)


def test_static_int8_loads_and_ranks_like_fp32(tmp_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(base_model_dir()))
    calibration = calibration_pairs(CATALOGUE, exclude_queries=JUDGED, queries=8, per_query=4)
    export_cross_encoder(_tiny(tokenizer), tokenizer, tmp_path, "tiny-ce", "tiny", False, 64, calibration=calibration)
    meta = load_metadata(tmp_path / CROSS_ENCODER)
    assert meta.files[STATIC_INT8] == "model.int8-static.onnx"
    graph = onnx.load(str(tmp_path / CROSS_ENCODER / meta.files[STATIC_INT8]))
    assert sum(n.op_type == "QuantizeLinear" for n in graph.graph.node) > 0  # activations carry fixed ranges
    # The GELU-fed projections stay in float (the quantizer left them out).
    kept = set(long_tailed_matmuls(graph))
    assert kept
    assert all(n.op_type == "MatMul" for n in graph.graph.node if n.name in kept)

    static = CrossEncoder(tmp_path, precision="int8-static", threads=1)
    assert CrossEncoder(tmp_path, threads=1).precision == "int8"  # built beside it, served only when asked for
    fp32 = CrossEncoder(tmp_path, precision="fp32", threads=1)
    products = [CandidateProduct(title=p.title, brand=p.brand, category=p.category) for p in CATALOGUE]
    for query in JUDGED:
        a = fp32.score(query, products).logits
        b = static.score(query, products).logits
        assert np.isfinite(b).all()
        spread = float(a.max() - a.min())
        assert float(np.abs(a - b).max()) < 0.15 * spread
        assert np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1] > 0.9


def test_without_a_static_build_the_cpu_default_is_dynamic_int8(tiny_models: Path) -> None:
    assert CrossEncoder(tiny_models, threads=1).precision == "int8"
