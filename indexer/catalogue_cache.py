"""A catalogue file indexed once into a cache under the data dir, for jobs that retrieve from it.

Training (hard negatives) and evaluation (end-to-end stages) both search a catalogue; each
file is indexed by the production indexer into the embedded engine once, keyed by the file,
the bi-encoder version and the text template, and reused by later runs.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from engines.base import NoLiveIndexError, SearchEngine
from shoprank.bi_encoder import BiEncoder
from shoprank.errors import MissingFileError, NotSetUpError
from shoprank.settings import Settings
from shoprank.template import TEMPLATE_VERSION

log = logging.getLogger(__name__)

CACHE_DIR = "eval-cache"


def cache_root(settings: Settings) -> Path:
    """Where cached catalogue indices (and the eval's zero-shot model) are kept."""
    return settings.data_dir / CACHE_DIR


def _catalogue_key(catalogue: Path, encoder: BiEncoder) -> str:
    stat = catalogue.stat()
    text = f"{catalogue.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{encoder.version}:{TEMPLATE_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def catalogue_engine(settings: Settings, encoder: BiEncoder, catalogue: Path | None) -> SearchEngine:
    """A cached index of `catalogue`, or the data dir's live engine when no file is given."""
    if catalogue is None:
        from engines.factory import open_engine

        engine: SearchEngine = open_engine(settings)
        try:
            engine.count()
        except NoLiveIndexError as exc:
            raise NotSetUpError(
                f"{exc}; or pass --catalogue PATH and the eval indexes it into {cache_root(settings)}"
            ) from exc
        return engine
    from engines.lance import LanceEngine
    from indexer.dead_letter import DeadLetter
    from indexer.pipeline import Indexer

    if not catalogue.is_file():
        raise MissingFileError(f"no catalogue file at {catalogue}")
    root = cache_root(settings) / f"lancedb-{_catalogue_key(catalogue, encoder)}"
    lance = LanceEngine(root, alias=settings.index_name, knn_weight=settings.hybrid_weight_knn)
    if lance.live_version() is None:
        log.warning("indexing %s into %s (once; later runs reuse it)", catalogue, root)
        with DeadLetter(root / "dead-letter.jsonl") as dead_letter:
            Indexer(lance, encoder, dead_letter).full(catalogue)
    return lance
