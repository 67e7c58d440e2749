"""What the search API answers when the engine cannot: one table from the engine's failure class
(engines.base EngineFailure) to the HTTP status and the sentence a shopper-facing answer carries.

The answer names the class only ("search engine unavailable: it refused the front door's
credentials", reason "unauthorized"); the engine's own message, which says what to fix and may
name the cluster's URL, goes to the front door's log.
"""

from __future__ import annotations

import logging
from typing import Any

from engines.base import EngineError, EngineFailure

log = logging.getLogger(__name__)

PUBLIC_PREFIX = "search engine unavailable"
# failure -> (HTTP status, what the public answer says after PUBLIC_PREFIX).
ENGINE_FAILURE_ANSWERS: dict[EngineFailure, tuple[int, str]] = {
    "unreachable": (503, "it cannot be reached"),
    "timeout": (503, "it did not answer in time"),
    "unauthorized": (503, "it refused the front door's credentials"),
    "forbidden": (503, "the front door may not search it"),
    "overloaded": (503, "it is overloaded"),
    "unavailable": (503, "it is temporarily unavailable"),
    "failed": (503, "it failed to answer"),
    "bad_answer": (503, "its answer was not a search result"),
    "rejected": (503, "it refused the search"),
    "no_index": (503, "nothing has been indexed yet"),
}


def engine_error_answer(error: EngineError) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body for an engine error; logs the operator's details."""
    status, sentence = ENGINE_FAILURE_ANSWERS.get(error.failure, ENGINE_FAILURE_ANSWERS["failed"])
    log.warning("search engine error (%s, answered %d): %s", error.failure, status, error)
    return status, {"error": f"{PUBLIC_PREFIX}: {sentence}", "reason": error.failure}
