"""What an evaluation runs on: the built models, the zero-shot baseline and the catalogue index.

Models come from the data dir (`shoprank models build`, which exports the released
fine-tuned cross-encoder); the zero-shot baseline is exported once into the eval cache.
The catalogue is the data dir's live index, or a file given to the eval, indexed once into
the eval cache by the production indexer (keyed by file and bi-encoder version).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from engines.base import NoLiveIndexError, SearchEngine
from shoprank.bi_encoder import BiEncoder
from shoprank.model_meta import (
    BI_ENCODER,
    CROSS_ENCODER,
    TRAINING_RECORD_FILE,
    ModelNotBuiltError,
    load_metadata,
    model_dir,
)
from shoprank.settings import Settings
from shoprank.template import TEMPLATE_VERSION

log = logging.getLogger(__name__)

CACHE_DIR = "eval-cache"


def cache_root(settings: Settings) -> Path:
    """Where the eval keeps what it builds (zero-shot model, catalogue indices)."""
    return settings.data_dir / CACHE_DIR


def _is_built(models_dir: Path, kind: str) -> bool:
    try:
        load_metadata(model_dir(models_dir, kind))
    except ModelNotBuiltError:
        return False
    return True


def ensure_models(settings: Settings) -> Path:
    """The data dir's models directory, building missing models like `shoprank models build`."""
    models_dir = settings.models_dir()
    missing = [kind for kind in (BI_ENCODER, CROSS_ENCODER) if not _is_built(models_dir, kind)]
    if not missing:
        return models_dir
    try:
        from training.export import build_bi_encoder, build_cross_encoder
        from training.release import released_weights
    except ImportError as exc:
        raise RuntimeError(
            f"no built {', '.join(missing)} under {models_dir}; run `shoprank models build` (needs the train extra)"
        ) from exc
    log.warning("building missing models under %s: %s", models_dir, ", ".join(missing))
    if BI_ENCODER in missing:
        build_bi_encoder(models_dir)
    if CROSS_ENCODER in missing:
        build_cross_encoder(models_dir, released_weights(), max_length=settings.max_pair_tokens)
    return models_dir


def zero_shot_models(settings: Settings) -> Path:
    """A models dir holding the zero-shot cross-encoder (base weights, seeded untrained head)."""
    root = cache_root(settings) / f"zero-shot-{settings.max_pair_tokens}"
    if _is_built(root, CROSS_ENCODER):
        return root
    try:
        from training.export import build_cross_encoder
    except ImportError as exc:
        raise RuntimeError(
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


def _catalogue_key(catalogue: Path, encoder: BiEncoder) -> str:
    stat = catalogue.stat()
    text = f"{catalogue.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{encoder.version}:{TEMPLATE_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def catalogue_engine(settings: Settings, encoder: BiEncoder, catalogue: Path | None) -> SearchEngine:
    """The engine the eval retrieves from: a cached index of `catalogue`, or the data dir's live one."""
    if catalogue is None:
        from engines.factory import open_engine

        engine: SearchEngine = open_engine(settings)
        try:
            engine.count()
        except NoLiveIndexError as exc:
            raise RuntimeError(
                f"{exc}; or pass --catalogue PATH and the eval indexes it into {cache_root(settings)}"
            ) from exc
        return engine
    from engines.lance import LanceEngine
    from indexer.dead_letter import DeadLetter
    from indexer.pipeline import Indexer

    if not catalogue.is_file():
        raise FileNotFoundError(f"no catalogue file at {catalogue}")
    root = cache_root(settings) / f"lancedb-{_catalogue_key(catalogue, encoder)}"
    lance = LanceEngine(root, alias=settings.index_name, knn_weight=settings.hybrid_weight_knn)
    if lance.live_version() is None:
        log.warning("indexing %s into %s for the eval (once; later runs reuse it)", catalogue, root)
        with DeadLetter(root / "dead-letter.jsonl") as dead_letter:
            Indexer(lance, encoder, dead_letter).full(catalogue)
    return lance
