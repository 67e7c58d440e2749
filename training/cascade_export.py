"""The cascade's cheap scorer: the released cross-encoder cut to its first few layers, exported to ONNX.

The truncated copy keeps the embeddings, the first `layers` encoder layers, the pooler and the
classifier of the fine-tuned model (no further training): its [CLS] after fewer layers is a
weaker but ~6/layers times cheaper relevance signal, good enough to choose which candidates
the full model rescores (`sidecar/cascade.py`). It is exported like the full model (fused
attention, int8 and fp16 variants, a parity check against the truncated PyTorch model).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from transformers import AutoTokenizer, BertForSequenceClassification

from shoprank.errors import UserInputError
from shoprank.model_meta import CASCADE_SCORER, ModelMetadata, model_dir
from training.export import export_cross_encoder, weights_digest

DEFAULT_CASCADE_LAYERS = 2


def truncated_copy(model: BertForSequenceClassification, layers: int) -> BertForSequenceClassification:
    """A copy of `model` with only its first `layers` encoder layers (same embeddings, pooler, head)."""
    total = len(model.bert.encoder.layer)
    if not 1 <= layers < total:
        raise UserInputError(f"a cascade scorer keeps 1 to {total - 1} of the model's {total} layers, not {layers}")
    cut = copy.deepcopy(model).eval()
    cut.bert.encoder.layer = torch.nn.ModuleList(list(cut.bert.encoder.layer)[:layers])
    cut.config.num_hidden_layers = layers
    return cut


def build_cascade_scorer(
    models_dir: Path, weights: Path, layers: int = DEFAULT_CASCADE_LAYERS, max_length: int = 128
) -> ModelMetadata:
    """Export the first `layers` layers of the fine-tuned cross-encoder at `weights` under models_dir."""
    tokenizer = AutoTokenizer.from_pretrained(str(weights))
    model = BertForSequenceClassification.from_pretrained(str(weights), num_labels=1).float().eval()
    cut = truncated_copy(model, layers)
    return export_cross_encoder(
        cut,
        tokenizer,
        models_dir,
        f"minilm-l{layers}of6-ce-{weights_digest(cut)}",
        str(weights),
        True,
        max_length,
        notes=f"The cascade's cheap scorer: the first {layers} layers of the fine-tuned cross-encoder, not retrained.",
        directory=model_dir(models_dir, CASCADE_SCORER),
    )
