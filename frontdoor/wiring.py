"""Assembling the front door's parts from settings: engine, query encoder, sidecar client, window cache."""

from __future__ import annotations

from engines.factory import open_engine
from frontdoor.defaults import ServedDefaults
from frontdoor.interleave import Ranker
from frontdoor.search import RankedWindow, SearchService
from frontdoor.ubi_capture import capture_from_settings
from frontdoor.window_cache import WindowCache
from shoprank.bi_encoder import BiEncoder
from shoprank.settings import Settings
from sidecar.client import RerankClient


def build_search_service(settings: Settings, client: RerankClient | None = None) -> SearchService:
    """A SearchService on the configured engine, calling the sidecar at settings.sidecar."""
    encoder = BiEncoder.from_settings(settings, threads=1)  # the precision the products were embedded with
    client = client or RerankClient.from_settings(settings)
    return SearchService(
        open_engine(settings),
        encoder,
        client,
        settings.rerank_window,
        cache=WindowCache[RankedWindow](settings.search_cache_entries),
        cache_ttl_s=settings.search_cache_ttl_s,
        defaults=ServedDefaults.from_settings(settings),
        capture=capture_from_settings(settings),
        interleave=interleave_from_settings(settings),
    )


def interleave_from_settings(settings: Settings) -> tuple[Ranker, Ranker] | None:
    """The two rankers an interleaving experiment compares, or None when it is off."""
    if not settings.interleave_a and not settings.interleave_b:
        return None
    if not (settings.interleave_a and settings.interleave_b):
        raise ValueError("interleaving needs both rankers: set --interleave-a and --interleave-b (or neither)")
    return Ranker.parse(settings.interleave_a), Ranker.parse(settings.interleave_b)
