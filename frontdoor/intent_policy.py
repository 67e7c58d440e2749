"""Query intent on the search path: which model, what a request asks of it, and what it did.

The model is the one `shoprank index` wrote for the live index version; a model built for
another version is not used (the response says so and what to run). What the intent did to a
search (its categories with probabilities, the boost, a hard filter) travels in the response.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engines.base import EngineError, Filters, Hit
from intent.apply import boosted_scores, confident_category
from intent.model import IntentDepth, IntentDistribution, IntentModel, label_at_depth
from intent.store import IntentModelError, load_live_model, model_path

log = logging.getLogger(__name__)

# The live index version is re-read at most this often (on OpenSearch it is a cluster call), so for
# up to this long after a swap the previous version's model may still answer.
VERSION_CHECK_S = 5.0
SHOWN_CATEGORIES = 5


@dataclass(frozen=True)
class IntentOptions:
    """What one request asks of the intent model; None takes the server default."""

    enabled: bool | None = None
    boost: float | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class IntentDefaults:
    """The server defaults (settings intent, intent_boost, intent_filter_threshold)."""

    enabled: bool = False
    boost: float = 0.0
    threshold: float = 1.0  # 1 never filters

    def resolve(self, options: IntentOptions) -> IntentOptions:
        """The request's options with every gap filled from the defaults."""
        return IntentOptions(
            enabled=self.enabled if options.enabled is None else options.enabled,
            boost=self.boost if options.boost is None else options.boost,
            threshold=self.threshold if options.threshold is None else options.threshold,
        )


@dataclass(frozen=True)
class IntentOutcome:
    """What the intent did to one search, as the response shows it."""

    enabled: bool
    categories: IntentDistribution | None = None
    boost: float = 0.0
    threshold: float = 1.0
    filtered: str | None = None
    note: str | None = None
    model_version: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "enabled": self.enabled,
            "model_index_version": self.model_version,
            "categories": self.categories.as_list() if self.categories else [],
            "applied": {
                "boost": self.boost if self.categories else 0.0,
                "filter_threshold": self.threshold,
                "filter": self.filtered,
            },
            "note": self.note,
        }


class IntentProvider:
    """The intent model of the live index version: loaded lazily, reloaded when the live version (a
    swap or a rollback) or its file changes."""

    def __init__(
        self,
        directory: Path,
        live_version: Callable[[], str | None],
        depth: IntentDepth = "leaf",
        temperature: float = 0.05,
        prior_weight: float = 1.0,
    ) -> None:
        self.directory = directory
        self.depth = depth
        self._live_version = live_version
        self._temperature = temperature
        self._prior_weight = prior_weight
        self._lock = threading.Lock()
        self._key: tuple[int, str | None] | None = None
        self._checked = float("-inf")
        self._model: IntentModel | None = None
        self._error: str | None = None

    def current(self) -> tuple[IntentModel | None, str | None]:
        """(model, None), or (None, why there is none and what to run)."""
        with self._lock:
            now = time.monotonic()
            if now - self._checked >= VERSION_CHECK_S:
                self._checked = now
                self._refresh()
            return self._model, self._error

    def _refresh(self) -> None:
        try:
            live = self._live_version()
        except EngineError as exc:  # the engine is down: keep what was loaded, the search reports the engine
            log.warning("query intent: cannot read the live index version (%s); keeping the loaded model", exc)
            if self._model is None:
                self._error = f"the live index version cannot be read ({exc.failure}); intent is off until it can"
            return
        try:
            mtime = model_path(self.directory, live).stat().st_mtime_ns if live else 0
        except FileNotFoundError:
            mtime = 0
        if (mtime, live) == self._key:
            return
        self._key = (mtime, live)
        try:
            self._model = load_live_model(self.directory, live, self.depth, self._temperature, self._prior_weight)
            self._error = None
        except IntentModelError as exc:
            log.warning("query intent off: %s", exc)
            self._model, self._error = None, str(exc)


def intent_filters(filters: Filters, intent: IntentDistribution, threshold: float) -> tuple[Filters, str | None]:
    """The first-stage filters with the confident category added, never over a shopper's own category filter."""
    if filters.categories:
        return filters, None
    category = confident_category(intent, threshold)
    if category is None:
        return filters, None
    return replace(filters, categories=(category,)), category


def boost_hits(hits: Sequence[Hit], intent: IntentDistribution, weight: float, depth: IntentDepth) -> list[Hit]:
    """The window re-scored by intent.apply.boosted_scores and re-sorted (ties keep first-stage order)."""
    if weight <= 0 or not hits:
        return list(hits)
    labels = [label_at_depth(h.product.category, depth) for h in hits]
    scores = boosted_scores([h.score for h in hits], labels, intent, weight)
    order = sorted(range(len(hits)), key=lambda i: (-scores[i], i))
    return [replace(hits[i], score=scores[i]) for i in order]


def intent_ordered_categories(buckets: Sequence[dict[str, Any]], intent: IntentDistribution) -> list[dict[str, Any]]:
    """The shaped category facet with the query's likely categories first, most likely first; the
    rest keep their order (counts, then the ranked window). Counts are untouched."""
    order = sorted(range(len(buckets)), key=lambda i: (-intent.probability(str(buckets[i]["value"])), i))
    return [buckets[i] for i in order]
