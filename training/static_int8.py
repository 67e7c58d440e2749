"""Calibrated static int8 (QDQ) for the cross-encoder, beside the dynamic int8 export.

Dynamic int8 measures every activation's range per batch at run time; static int8 fixes the
ranges once, from a calibration set, and stores them in the graph as QuantizeLinear /
DequantizeLinear pairs that onnxruntime fuses into integer matmuls. The calibration set is
drawn from the catalogue, never from the judged queries the figures are measured on:
catalogue-derived pseudo queries (`training.pseudo_queries`), each paired with its source
product and seeded random products, so the ranges cover relevant and irrelevant pairs.

The feed-forward output projections (their input is the GELU output, whose long tail a fixed
range clips) stay in float: with them quantized statically the release lost 0.05-0.08 NDCG@10
on the held-out test queries, quantized dynamically 0.007; in float it ranks as fp32 does
(docs/benchmarks.md has the figures).
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnx

from shoprank.schema import Product
from shoprank.settings import REPO_ROOT
from shoprank.template import cross_encoder_text, query_text
from training.pseudo_queries import pseudo_queries

STATIC_INT8: Final = "int8-static"
STATIC_INT8_FILE = "model.int8-static.onnx"
CALIBRATION_QUERIES = 64
CALIBRATION_PRODUCTS_PER_QUERY = 4
CALIBRATION_SEED = 7
# Ranges cover 99.99% of the calibration activations: min-max ranges, stretched by a few outliers,
# cost the release 0.0056 NDCG@10 where this costs none (docs/benchmarks.md).
CALIBRATION_PERCENTILE = 99.99
# Where a source checkout finds the shared ESCI sample: the default calibration catalogue, and the
# judged queries the calibration set must leave out.
ESCI_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "esci"
SAMPLE_CATALOGUE = ESCI_SAMPLE / "products.ndjson"
SAMPLE_JUDGMENTS = ESCI_SAMPLE / "judgments.csv"
# Activations whose producer is one of these keep their matmul in float (see the module docstring).
_LONG_TAILED = ("BiasGelu", "Gelu", "FastGelu")


def calibration_pairs(
    catalogue: Sequence[Product],
    exclude_queries: Iterable[str],
    queries: int = CALIBRATION_QUERIES,
    per_query: int = CALIBRATION_PRODUCTS_PER_QUERY,
    seed: int = CALIBRATION_SEED,
) -> list[tuple[str, list[str]]]:
    """(query, product texts) groups: a pseudo query, its source product, then seeded random products."""
    products = sorted(catalogue, key=lambda p: p.id)
    if len(products) < per_query:
        raise ValueError(f"a calibration set needs at least {per_query} catalogue products, got {len(products)}")
    rng = random.Random(seed)
    groups = []
    for query, source in pseudo_queries(products, queries, seed, exclude=exclude_queries):
        others = [p for p in rng.sample(products, per_query) if p.id != source.id][: per_query - 1]
        groups.append((query_text(query), [cross_encoder_text(p) for p in [source, *others]]))
    if not groups:
        raise ValueError("the catalogue gave no pseudo queries to calibrate with (titles too short?)")
    return groups


def calibration_source(catalogue: Path | None, judgments: Path | None) -> tuple[list[Product], list[str]]:
    """The calibration catalogue's products and the judged queries to leave out (empty: no static int8)."""
    from relevance.judgments import load_judgments
    from training.pipeline import load_products

    products = list(load_products(catalogue).values()) if catalogue is not None and catalogue.is_file() else []
    exclude = load_judgments(judgments).queries if judgments is not None and judgments.is_file() else []
    return products, exclude


def calibration_feeds(tokenizer: Any, groups: Sequence[tuple[str, list[str]]], max_length: int) -> list[dict[str, Any]]:
    """One padded feed per group, every feed `max_length` wide (histogram calibrators need one shape)."""
    feeds = []
    for query, texts in groups:
        encoded = tokenizer(
            [query] * len(texts),
            texts,
            padding="max_length",
            truncation="only_second",
            max_length=max_length,
            return_tensors="np",
        )
        feeds.append({name: np.asarray(encoded[name], dtype=np.int64) for name in encoded})
    return feeds


class _Reader:
    """onnxruntime's CalibrationDataReader over prepared feeds, filtered to the model's inputs."""

    def __init__(self, feeds: Sequence[dict[str, Any]], inputs: set[str]) -> None:
        self._feeds = iter([{k: v for k, v in feed.items() if k in inputs} for feed in feeds])

    def get_next(self) -> dict[str, Any] | None:
        return next(self._feeds, None)


def long_tailed_matmuls(model: onnx.ModelProto) -> list[str]:
    """Names of the MatMuls fed by a GELU (the feed-forward output projections)."""
    producer = {output: node.op_type for node in model.graph.node for output in node.output}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and producer.get(n.input[0]) in _LONG_TAILED]


def quantize_static_int8(optimized: Path, output: Path, feeds: Sequence[dict[str, Any]]) -> None:
    """Write the QDQ static int8 model of a graph-optimised (fused) fp32 model, calibrated on `feeds`."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        # Fused ops carry no inferred types; without symbolic shape inference the quantizer skips their tensors.
        inferred = Path(tmp) / "inferred.onnx"
        quant_pre_process(str(optimized), str(inferred), skip_optimization=True)
        model = onnx.load(str(inferred))
        inputs = {i.name for i in model.graph.input}
        quantize_static(
            str(inferred),
            str(output),
            _Reader(feeds, inputs),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=long_tailed_matmuls(model),
            calibrate_method=CalibrationMethod.Percentile,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT, "CalibPercentile": CALIBRATION_PERCENTILE},
        )
