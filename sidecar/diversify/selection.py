"""The greedy page fill every method shares: pick the best remaining candidate by the method's
objective, within the caps, one position at a time.

Candidates arrive sorted by relevance (stable, so ties keep input order) and `argmax` takes
the first maximum, so every tie in the objective goes to the more relevant candidate, then to
the earlier input. That makes the fill deterministic and strength 0 exactly relevance order.
Greedy fills are prefix-stable: the first k picks do not depend on how many are asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from shoprank.arrays import Float64Array
from sidecar.diversify.caps import PageCaps


class Objective(Protocol):
    """A method's marginal objective over the candidates, given the page so far."""

    def values(self) -> tuple[Float64Array, Float64Array]:
        """(objective, diversity term) for every candidate if it were placed next."""
        ...

    def explain(self, index: int) -> str:
        """Why candidate `index`'s diversity term is what it is now (before it is placed)."""
        ...

    def place(self, index: int) -> None:
        """Put candidate `index` on the page."""
        ...


class RelevanceOnly:
    """Method "none": the objective is the relevance itself, no diversity term."""

    def __init__(self, relevance: Float64Array, capped: bool = False) -> None:
        self._values = (relevance, np.zeros_like(relevance))
        self._why = "most relevant within the caps" if capped else "relevance order"

    def values(self) -> tuple[Float64Array, Float64Array]:
        """Relevance, and a zero term."""
        return self._values

    def explain(self, index: int) -> str:
        """Nothing but relevance (and the caps) decides."""
        return self._why

    def place(self, index: int) -> None:
        """No state to update."""


@dataclass(frozen=True)
class Pick:
    """One page position: the candidate (in relevance-rank space), its objective and term, why."""

    index: int
    score: float
    term: float
    reason: str
    over_cap: bool = False


def _movement(position: int, relevance_rank: int) -> str:
    if position > relevance_rank:
        return f"moved down {position - relevance_rank}"
    if position < relevance_rank:
        return f"moved up {relevance_rank - position}"
    return f"kept at #{position + 1}"


def greedy_fill(objective: Objective, n: int, k: int, caps: PageCaps | None) -> list[Pick]:
    """Fill min(k, n) positions; candidate i is the i-th most relevant."""
    remaining = np.ones(n, dtype=bool)
    deferred: dict[int, str] = {}  # why a candidate was passed over by a cap when it was the best
    picks: list[Pick] = []
    for position in range(min(k, n)):
        scores, terms = objective.values()
        best = int(np.argmax(np.where(remaining, scores, -np.inf)))
        cap_note = ""
        if caps is not None:
            within = remaining & caps.allowed
            if within.any():
                best_within = int(np.argmax(np.where(within, scores, -np.inf)))
                if best_within != best:
                    if best not in deferred:
                        deferred[best] = caps.why_blocked(best)
                    best = best_within
            else:
                cap_note = caps.why_relaxed(best)
        why = cap_note or deferred.get(best, "")
        reason = f"{_movement(position, best)}: {why + '; ' if why else ''}{objective.explain(best)}"
        picks.append(Pick(best, float(scores[best]), float(terms[best]), reason, over_cap=bool(cap_note)))
        objective.place(best)
        if caps is not None:
            caps.add(best, position)
        remaining[best] = False
    return picks


def relevance_prefix(relevance: Float64Array, k: int) -> list[Pick]:
    """The first min(k, n) candidates as they are: the greedy fill's result without diversity or caps."""
    return [
        Pick(i, float(relevance[i]), 0.0, f"kept at #{i + 1}: relevance order") for i in range(min(k, len(relevance)))
    ]
