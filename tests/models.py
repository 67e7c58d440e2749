"""Model directories for tests: tiny random BERTs (seconds to build) and the real MiniLM models.

Both are built with the production export code. Real models are cached between runs in
~/.cache/shoprank-tests, keyed by the code that builds them, so a re-run does not re-export.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from shoprank.schema import VECTOR_DIM
from shoprank.settings import REPO_ROOT

CACHE_ROOT = Path.home() / ".cache" / "shoprank-tests"
BUILD_CODE = ("training/export.py", "training/base_model.py", "shoprank/template.py", "shoprank/model_meta.py")


def _code_digest(extra: str) -> str:
    digest = hashlib.sha256(extra.encode())
    for name in BUILD_CODE:
        digest.update((REPO_ROOT / name).read_bytes())
    return digest.hexdigest()[:16]


def build_tiny_models(models_dir: Path, seed: int = 7) -> Path:
    """Random tiny BERTs with the real tokenizer: a 1-layer bi-encoder of the index's 384 dimensions
    and a 2-layer, 32-wide cross-encoder."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

    from training.base_model import base_model_dir
    from training.export import export_bi_encoder, export_cross_encoder

    tokenizer = AutoTokenizer.from_pretrained(str(base_model_dir()))

    def config(hidden: int, layers: int) -> BertConfig:
        return BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=512,
        )

    torch.manual_seed(seed)
    bi = BertModel(config(VECTOR_DIM, 1)).eval()
    export_bi_encoder(bi, tokenizer, models_dir, "tiny-bi", "random tiny BERT (tests)")
    cross_config = config(32, 2)
    cross_config.num_labels = 1
    cross = BertForSequenceClassification(cross_config).eval()
    export_cross_encoder(cross, tokenizer, models_dir, "tiny-ce", "random tiny BERT (tests)", False, 128)
    return models_dir


def real_models_dir() -> Path:
    """The real bi-encoder and (zero-shot or released) cross-encoder, built once and cached."""
    from training.release import released_weights

    weights = released_weights()
    key = _code_digest(str(weights and sorted(p.name for p in weights.iterdir())))
    target = CACHE_ROOT / f"real-{key}"
    if (target / "cross-encoder" / "model.json").is_file() and (target / "bi-encoder" / "model.json").is_file():
        return target
    from training.export import build_bi_encoder, build_cross_encoder

    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    build_bi_encoder(staging)
    build_cross_encoder(staging, weights)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target
