"""What an evaluation runs on beside the built models: the zero-shot baseline and the trained queries.

The released model comes from the data dir (training.built_models); the zero-shot baseline is
exported once into the eval cache; the catalogue index is indexer.catalogue_cache's.
"""

from __future__ import annotations

import json
from pathlib import Path

from indexer.catalogue_cache import cache_root
from shoprank.errors import NotSetUpError
from shoprank.model_meta import CROSS_ENCODER, TRAINING_RECORD_FILE
from shoprank.settings import Settings
from training.built_models import is_built


def zero_shot_models(settings: Settings) -> Path:
    """A models dir holding the zero-shot cross-encoder (base weights, seeded untrained head)."""
    root = cache_root(settings) / f"zero-shot-{settings.max_pair_tokens}"
    if is_built(root, CROSS_ENCODER):
        return root
    try:
        from training.export import build_cross_encoder
    except ImportError as exc:
        raise NotSetUpError(
            "the rerank_zero_shot stage exports the base model and needs the train extra: "
            "pip install 'shoprank[train]', or leave the stage out with --stages"
        ) from exc
    build_cross_encoder(root, None, max_length=settings.max_pair_tokens)
    return root


def trained_queries(cross_encoder_dir: Path) -> set[str]:
    """Queries a cross-encoder was fine-tuned on, from its training record (empty when it has none)."""
    record = cross_encoder_dir / TRAINING_RECORD_FILE
    if not record.is_file():
        return set()
    data = json.loads(record.read_text())
    return {str(q) for q in data.get("trained_queries", [])}
