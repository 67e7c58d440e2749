"""Assembling the front door's parts from settings: engine, query encoder, sidecar client, window cache."""

from __future__ import annotations

from collections.abc import Callable

from engines.factory import open_engine
from frontdoor.defaults import ServedDefaults
from frontdoor.intent_policy import IntentDefaults, IntentProvider
from frontdoor.interleave import Ranker
from frontdoor.search import RankedWindow, SearchService
from frontdoor.session_events import FileSessionEvents, OpenSearchSessionEvents, SessionReader
from frontdoor.ubi_capture import capture_from_settings
from frontdoor.window_cache import WindowCache
from intent.store import models_dir
from shoprank.bi_encoder import BiEncoder
from shoprank.errors import UserInputError
from shoprank.settings import Settings
from shoprank.ubi_log import ubi_dir
from sidecar.client import RerankClient


def build_search_service(settings: Settings, client: RerankClient | None = None) -> SearchService:
    """A SearchService on the configured engine, calling the sidecar at settings.sidecar."""
    encoder = BiEncoder.from_settings(settings, threads=1)  # the precision the products were embedded with
    client = client or RerankClient.from_settings(settings)
    engine = open_engine(settings)
    return SearchService(
        engine,
        encoder,
        client,
        settings.rerank_window,
        cache=WindowCache[RankedWindow](settings.search_cache_entries),
        cache_ttl_s=settings.search_cache_ttl_s,
        defaults=ServedDefaults.from_settings(settings),
        intent=intent_provider(settings, engine.live_version),
        intent_defaults=IntentDefaults(settings.intent, settings.intent_boost, settings.intent_filter_threshold),
        capture=capture_from_settings(settings),
        interleave=interleave_from_settings(settings),
        sessions=sessions_from_settings(settings),
    )


def sessions_from_settings(settings: Settings) -> SessionReader:
    """Where a session's UBI events are read from: the embedded tables, or OpenSearch's ubi_events index."""
    if settings.engine == "opensearch":
        from engines.opensearch_client import client_from_settings

        return OpenSearchSessionEvents(client_from_settings(settings))
    return FileSessionEvents(ubi_dir(settings.data_dir))


def intent_provider(settings: Settings, live_version: Callable[[], str | None]) -> IntentProvider:
    """The intent model `shoprank index` wrote for the live index, as the settings configure it; loaded
    now when intent is on by default (else the first search that asks for it pays the load, once),
    so a server with intent off never asks the engine for its version."""
    provider = IntentProvider(
        models_dir(settings.data_dir, settings.engine, settings.index_name),
        live_version,
        depth=settings.intent_depth,
        temperature=settings.intent_temperature,
    )
    if settings.intent:
        provider.current()  # a missing or stale model is logged now and answered per search
    return provider


def interleave_from_settings(settings: Settings) -> tuple[Ranker, Ranker] | None:
    """The two rankers an interleaving experiment compares, or None when it is off."""
    if not settings.interleave_a and not settings.interleave_b:
        return None
    if not (settings.interleave_a and settings.interleave_b):
        raise UserInputError("interleaving needs both rankers: set --interleave-a and --interleave-b (or neither)")
    return Ranker.parse(settings.interleave_a), Ranker.parse(settings.interleave_b)
