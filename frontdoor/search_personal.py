"""The search path's personalisation hook: a session's recent UBI events as the sidecar's interactions.

A search never fails for its personalisation: a session store or vector lookup that cannot answer
leaves the search anonymous (logged), as a new shopper's is.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from engines.base import Hit, SearchEngine
from frontdoor.session_events import SessionReader
from sidecar.personalise import Interaction

log = logging.getLogger(__name__)


def session_history(sessions: SessionReader | None, session_id: str) -> list[Interaction]:
    """The session's recent interactions, most recent first; none when there is no session or it cannot be read."""
    if sessions is None or not session_id:
        return []
    try:
        return sessions.recent(session_id)
    except Exception:
        log.warning("reading session %s's events failed: not personalised", session_id, exc_info=True)
        return []


def history_key(history: Sequence[Interaction]) -> tuple[tuple[str, str, int], ...]:
    """What of a history the ranked-window cache keys on: a new event changes the next search."""
    return tuple((i.product_id, i.action, i.timestamp_ms) for i in history)


def with_vectors(engine: SearchEngine, history: Sequence[Interaction], hits: Sequence[Hit]) -> list[Interaction]:
    """The history with each product's stored vector: the window's products the sidecar finds by id, the
    others come from the engine (one lookup), and those it no longer holds are left out."""
    if not history:
        return []
    in_window = {h.product.id for h in hits}
    outside = sorted({i.product_id for i in history} - in_window)
    lookup = getattr(engine, "vectors", None)
    vectors: dict[str, npt.NDArray[np.float32]] = {}
    if outside and callable(lookup):
        try:
            vectors = lookup(outside)
        except Exception:  # the window's own products still personalise
            log.warning("looking up %d interaction vectors failed", len(outside), exc_info=True)
    return [
        replace(i, embedding=vectors[i.product_id]) if i.product_id in vectors else i
        for i in history
        if i.product_id in in_window or i.product_id in vectors
    ]
