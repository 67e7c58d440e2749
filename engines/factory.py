"""Opening the configured engine."""

from __future__ import annotations

from engines.base import Engine
from shoprank.settings import Settings


def open_engine(settings: Settings) -> Engine:
    """The engine named by settings.engine, implementing both SearchEngine and IndexWriter."""
    if settings.engine == "lancedb":
        from engines.lance import LanceEngine

        return LanceEngine(
            settings.data_dir / "lancedb",
            alias=settings.index_name,
            keep_versions=settings.keep_versions,
            knn_weight=settings.hybrid_weight_knn,
        )
    from engines.opensearch import OpenSearchEngine

    return OpenSearchEngine.from_settings(settings)
