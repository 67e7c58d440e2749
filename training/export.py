"""ONNX export of the bi-encoder and the cross-encoder, with a parity check against PyTorch.

Named inputs/outputs, dynamic batch and sequence axes, pinned opset. Each model is exported
in fp32, then graph-optimised (fused attention) and quantised to int8 for CPU, and converted
to fp16 for GPU. An fp32 export that does not match PyTorch within tolerance is refused.

Models are traced with eager attention: the SDPA graph (IsNaN/Where around the softmax) is not
recognised by onnxruntime's BERT fusion, which then leaves attention unfused and the int8 model
~20% slower. The cross-encoder's last layer computes only the [CLS] row (the only one the
classifier reads): same logits, ~1/7 fewer multiply-adds.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from transformers import AutoModel, AutoTokenizer, BertForSequenceClassification

from shoprank.model_meta import (
    BI_ENCODER,
    CROSS_ENCODER,
    TOKENIZER_FILE,
    TRAINING_RECORD_FILE,
    ModelMetadata,
    model_dir,
    write_metadata,
)
from shoprank.schema import Product
from training.base_model import BASE_MODEL_NAME, base_model_dir
from training.static_int8 import (
    STATIC_INT8,
    STATIC_INT8_FILE,
    calibration_feeds,
    calibration_pairs,
    quantize_static_int8,
)

log = logging.getLogger(__name__)

OPSET = 17
INPUT_NAMES = ["input_ids", "attention_mask", "token_type_ids"]
DYNAMIC_AXES = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
FP32_TOLERANCE = 1e-3
BI_ENCODER_MAX_LENGTH = 128
ZERO_SHOT_SEED = 1234
INT8_OP_TYPES = ["MatMul"]

# Parity inputs: real shop queries and product-like texts of different lengths.
PARITY_QUERIES = ["kitchen towels", "usb c charger 65w", "queen memory foam mattress", "lego star wars"]
PARITY_PRODUCTS = [
    "Kitchen Towels, 100% Cotton, Set of 6 [SEP] brand: Utopia [SEP] color: Grey",
    "Anker 65W USB C Charger, GaN fast charger for laptops and phones [SEP] brand: Anker",
    "Signature Design 12 inch Medium Firm Memory Foam Mattress, Queen [SEP] category: Home > Mattresses",
    "LEGO Star Wars Millennium Falcon building kit, 1351 pieces, for ages 9 and up " * 3,
]


class _MeanPooledEncoder(torch.nn.Module):
    """Sentence-transformers pooling inside the graph: masked mean, then L2 normalisation."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> Any:
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=-1)


class _ClsOnlyLastLayer(torch.nn.Module):
    """A BERT layer that returns only the [CLS] position: keys and values from every token,
    the query, output projection and feed-forward for the first token alone."""

    def __init__(self, layer: torch.nn.Module) -> None:
        super().__init__()
        self.layer: Any = layer  # a transformers BertLayer (untyped submodules)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, *_: Any, **__: Any
    ) -> Any:
        attention = self.layer.attention.self
        batch = hidden_states.shape[0]
        heads, size = attention.num_attention_heads, attention.attention_head_size
        cls = hidden_states[:, :1]
        query = attention.query(cls).view(batch, 1, heads, size).transpose(1, 2)
        key = attention.key(hidden_states).view(batch, -1, heads, size).transpose(1, 2)
        value = attention.value(hidden_states).view(batch, -1, heads, size).transpose(1, 2)
        scores = torch.matmul(query, key.transpose(2, 3)) * attention.scaling
        if attention_mask is not None:
            scores = scores + attention_mask[:, :, :1, :]  # the additive mask row of the first query
        context = torch.matmul(torch.softmax(scores, dim=-1), value).transpose(1, 2).reshape(batch, 1, heads * size)
        attended = self.layer.attention.output(context, cls)
        return self.layer.feed_forward_chunk(attended)


def _eager_attention(model: Any) -> None:
    """Trace attention as explicit matmul/softmax so onnxruntime's BERT fusion recognises it."""
    model.set_attn_implementation("eager")


def _cls_only_serving_copy(model: BertForSequenceClassification) -> BertForSequenceClassification:
    """A copy whose last encoder layer computes the [CLS] row only; logits equal the original's."""
    serving = copy.deepcopy(model).eval()
    layers = serving.bert.encoder.layer
    layers[len(layers) - 1] = _ClsOnlyLastLayer(layers[len(layers) - 1])
    return serving


class _LogitHead(torch.nn.Module):
    """Cross-encoder returning one relevance logit per pair."""

    def __init__(self, model: BertForSequenceClassification) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> Any:
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits
        return logits[:, 0]


def weights_digest(module: torch.nn.Module) -> str:
    """Short digest of a model's weights: the version id changes exactly when the weights do."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def fine_tuned_version(model: torch.nn.Module) -> str:
    """Version id of a fine-tuned cross-encoder: name + digest of its (fp32) weights."""
    return f"minilm-l6-ce-{weights_digest(model)}"


def _export(module: torch.nn.Module, sample: dict[str, torch.Tensor], output: str, path: Path) -> None:
    module.eval()
    with torch.no_grad():
        torch.onnx.export(
            module,
            (sample["input_ids"], sample["attention_mask"], sample["token_type_ids"]),
            str(path),
            input_names=INPUT_NAMES,
            output_names=[output],
            dynamic_axes={**DYNAMIC_AXES, output: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


def _onnx_outputs(path: Path, feed: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    result: np.ndarray = session.run(None, {k: v for k, v in feed.items() if k in names})[0]
    return result


def _derive_precisions(
    fp32: Path, directory: Path, num_heads: int, hidden: int, calibration: Sequence[dict[str, Any]] = ()
) -> dict[str, str]:
    """Write int8 (CPU) and fp16 (GPU) variants beside the fp32 model, and a calibrated static int8
    when `calibration` feeds are given; return precision -> file."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer

    files = {"fp32": fp32.name}
    optimized = optimizer.optimize_model(str(fp32), model_type="bert", num_heads=num_heads, hidden_size=hidden)
    fused = optimized.get_fused_operator_statistics()
    if not fused.get("Attention"):
        # Still a correct model, only slower: say so rather than ship it silently.
        log.warning("no attention was fused in %s (fused ops: %s); the int8/fp16 models will be slow", fp32, fused)
    with tempfile.TemporaryDirectory() as tmp:
        opt_path = Path(tmp) / "optimized.onnx"
        optimized.save_model_to_file(str(opt_path))
        # Only the MatMul weights go int8, where the time is spent. Quantizing the embedding
        # tables too (the Gathers, on by default) saves disk but no time, and costs the fine-tuned
        # cross-encoder NDCG@10 (docs/benchmarks.md, "Measurements behind constants").
        # Fused ops (Attention, SkipLayerNorm) carry no inferred types: tell the quantiser they are float.
        quantize_dynamic(
            opt_path,
            directory / "model.int8.onnx",
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=INT8_OP_TYPES,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        if calibration:
            quantize_static_int8(opt_path, directory / STATIC_INT8_FILE, calibration)
            files[STATIC_INT8] = STATIC_INT8_FILE
    files["int8"] = "model.int8.onnx"
    optimized.convert_float_to_float16(keep_io_types=True)
    optimized.save_model_to_file(str(directory / "model.fp16.onnx"))
    files["fp16"] = "model.fp16.onnx"
    return files


def _check_parity(
    reference: np.ndarray, directory: Path, files: dict[str, str], feed: dict[str, Any]
) -> dict[str, float]:
    parity: dict[str, float] = {}
    for precision, name in files.items():
        if precision == "fp16":
            continue  # fp16 kernels are a GPU matter; `shoprank bench rerank` checks it on CUDA
        got = _onnx_outputs(directory / name, feed)
        parity[precision] = float(np.abs(got - reference).max())
    if parity["fp32"] > FP32_TOLERANCE:
        raise RuntimeError(f"fp32 ONNX export differs from PyTorch by {parity['fp32']:.2e} > {FP32_TOLERANCE}")
    return parity


def _fresh_dir(directory: Path) -> Path:
    staging = directory.with_name(directory.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def _publish(staging: Path, directory: Path) -> None:
    old = directory.with_name(directory.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        directory.rename(old)
    staging.rename(directory)
    shutil.rmtree(old, ignore_errors=True)


def _save_tokenizer(tokenizer: Any, staging: Path) -> None:
    tokenizer.backend_tokenizer.save(str(staging / TOKENIZER_FILE))


def export_bi_encoder(encoder: Any, tokenizer: Any, models_dir: Path, name: str, source: str) -> ModelMetadata:
    """Export a BERT encoder with mean pooling + L2 norm to ONNX under models_dir/bi-encoder."""
    _eager_attention(encoder)
    module = _MeanPooledEncoder(encoder).eval()
    directory = model_dir(models_dir, BI_ENCODER)
    staging = _fresh_dir(directory)
    sample = tokenizer(
        PARITY_PRODUCTS, padding=True, truncation=True, max_length=BI_ENCODER_MAX_LENGTH, return_tensors="pt"
    )
    _export(module, sample, "embedding", staging / "model.onnx")
    config = encoder.config
    files = _derive_precisions(staging / "model.onnx", staging, config.num_attention_heads, config.hidden_size)
    with torch.no_grad():
        reference = module(**sample).numpy()
    parity = _check_parity(reference, staging, files, {k: v.numpy() for k, v in sample.items()})
    _save_tokenizer(tokenizer, staging)
    meta = ModelMetadata(
        kind="bi-encoder",
        version=f"{name}-{weights_digest(encoder)}",
        source=source,
        fine_tuned=False,
        max_length=BI_ENCODER_MAX_LENGTH,
        dim=config.hidden_size,
        files=files,
        parity=parity,
    )
    write_metadata(staging, meta)
    _publish(staging, directory)
    log.info("bi-encoder %s built, parity %s", meta.version, parity)
    return meta


def build_bi_encoder(models_dir: Path) -> ModelMetadata:
    """Export all-MiniLM-L6-v2 (mean pooling + L2 norm) to ONNX under models_dir/bi-encoder."""
    source = base_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    encoder = AutoModel.from_pretrained(str(source))
    return export_bi_encoder(encoder, tokenizer, models_dir, "minilm-l6-bi", BASE_MODEL_NAME)


def zero_shot_cross_encoder() -> BertForSequenceClassification:
    """Cross-encoder initialised from the base weights with a seeded, untrained scoring head."""
    torch.manual_seed(ZERO_SHOT_SEED)
    model = BertForSequenceClassification.from_pretrained(str(base_model_dir()), num_labels=1)
    return model.eval()


def export_cross_encoder(
    model: BertForSequenceClassification,
    tokenizer: Any,
    models_dir: Path,
    version: str,
    source: str,
    fine_tuned: bool,
    max_length: int = 128,
    notes: str = "",
    extra_files: Sequence[Path] = (),
    directory: Path | None = None,
    calibration: Sequence[tuple[str, list[str]]] = (),
) -> ModelMetadata:
    """Export a one-logit cross-encoder to ONNX under models_dir/cross-encoder (or `directory`), with parity checks.

    The exported graph computes the last layer for [CLS] only; parity is checked against the
    unmodified PyTorch model. `extra_files` (e.g. the training record) are copied into the model
    directory. `calibration` ((query, product texts) groups, `training.static_int8.calibration_pairs`)
    adds the calibrated static int8 variant.
    """
    _eager_attention(model)
    module = _LogitHead(model).eval()
    directory = directory or model_dir(models_dir, CROSS_ENCODER)
    staging = _fresh_dir(directory)
    sample = tokenizer(
        PARITY_QUERIES,
        PARITY_PRODUCTS,
        padding=True,
        truncation="only_second",
        max_length=max_length,
        return_tensors="pt",
    )
    _export(_LogitHead(_cls_only_serving_copy(model)), sample, "logit", staging / "model.onnx")
    feeds = calibration_feeds(tokenizer, calibration, max_length) if calibration else []
    files = _derive_precisions(
        staging / "model.onnx", staging, model.config.num_attention_heads, model.config.hidden_size, feeds
    )
    with torch.no_grad():
        reference = module(**sample).numpy()
    parity = _check_parity(reference, staging, files, {k: v.numpy() for k, v in sample.items()})
    _save_tokenizer(tokenizer, staging)
    for extra in extra_files:
        shutil.copyfile(extra, staging / extra.name)
    meta = ModelMetadata(
        kind="cross-encoder",
        version=version,
        source=source,
        fine_tuned=fine_tuned,
        max_length=max_length,
        files=files,
        parity=parity,
        notes=notes,
    )
    write_metadata(staging, meta)
    _publish(staging, directory)
    log.info("cross-encoder %s built, parity %s", meta.version, parity)
    return meta


def build_cross_encoder(
    models_dir: Path,
    weights: Path | None = None,
    max_length: int = 128,
    calibration_catalogue: Sequence[Product] = (),
    exclude_queries: Sequence[str] = (),
) -> ModelMetadata:
    """Export the cross-encoder: fine-tuned `weights` (a Hugging Face dir), or zero-shot from the base.

    With a `calibration_catalogue` the export adds a static int8 calibrated on pseudo queries of
    those products (none equal to `exclude_queries`, the judged queries figures are measured on).
    """
    calibration = calibration_pairs(calibration_catalogue, exclude_queries) if calibration_catalogue else []
    if weights is not None:
        tokenizer = AutoTokenizer.from_pretrained(str(weights))
        # Released weights are stored in fp16; export (and the version digest) work in fp32.
        model = BertForSequenceClassification.from_pretrained(str(weights), num_labels=1).float().eval()
        record = weights / TRAINING_RECORD_FILE
        return export_cross_encoder(
            model,
            tokenizer,
            models_dir,
            fine_tuned_version(model),
            str(weights),
            True,
            max_length,
            notes="Fine-tuned on graded shop relevance labels; see the model card beside the weights.",
            extra_files=[record] if record.is_file() else [],
            calibration=calibration,
        )
    tokenizer = AutoTokenizer.from_pretrained(str(base_model_dir()))
    model = zero_shot_cross_encoder()
    return export_cross_encoder(
        model,
        tokenizer,
        models_dir,
        f"minilm-l6-ce-zeroshot-{weights_digest(model)}",
        f"{BASE_MODEL_NAME} (zero-shot: scoring head not trained)",
        False,
        max_length,
        notes="Initialised from the bi-encoder's weights with an untrained head; not fine-tuned.",
        calibration=calibration,
    )
