"""Team-draft interleaving (Radlinski et al. 2008): two rankers' pages merged into one, each result
credited to the team that drafted it, so a shopper's clicks say which ranker they preferred.

Each round the team with fewer picks (a coin flip on a tie) adds its best result not yet shown.
The teams of the page's results are recorded on its ubi_queries record (query_attributes
`interleave_teams`, one letter per position), so clicks credit them by position.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from shoprank.vocabulary import RETRIEVAL_MODES, RetrievalMode

T = TypeVar("T")


@dataclass(frozen=True)
class Ranker:
    """One side of an experiment: a first stage, reranked or not ("hybrid+rerank", "bm25")."""

    mode: RetrievalMode
    rerank: bool

    @classmethod
    def parse(cls, text: str) -> Ranker:
        """MODE or MODE+rerank, e.g. hybrid+rerank."""
        mode, _, extra = text.strip().partition("+")
        if mode not in RETRIEVAL_MODES or extra not in ("", "rerank"):
            raise ValueError(
                f"ranker {text!r}: write MODE or MODE+rerank with MODE one of {', '.join(RETRIEVAL_MODES)}"
            )
        return cls(mode, extra == "rerank")

    @property
    def name(self) -> str:
        """The form `parse` reads."""
        return self.mode + ("+rerank" if self.rerank else "")


def team_draft(a: Sequence[T], b: Sequence[T], size: int, rng: random.Random) -> list[tuple[T, str]]:
    """Up to `size` items drafted from rankings a and b, each with its team ("a" or "b")."""
    shown: list[tuple[T, str]] = []
    taken: set[T] = set()
    picks = {"a": 0, "b": 0}
    rankings = {"a": list(a), "b": list(b)}
    cursor = {"a": 0, "b": 0}
    while len(shown) < size:
        team = "a" if picks["a"] < picks["b"] or (picks["a"] == picks["b"] and rng.random() < 0.5) else "b"
        order = rankings[team]
        while cursor[team] < len(order) and order[cursor[team]] in taken:
            cursor[team] += 1
        if cursor[team] >= len(order):
            other = "b" if team == "a" else "a"
            order = rankings[other]
            while cursor[other] < len(order) and order[cursor[other]] in taken:
                cursor[other] += 1
            if cursor[other] >= len(order):
                break  # both rankings used up
            team = other
        item = rankings[team][cursor[team]]
        taken.add(item)
        picks[team] += 1
        shown.append((item, team))
    return shown


def credit(teams: str, clicked_positions: Sequence[int]) -> str:
    """Who won one interleaved impression: "a", "b", "tie" (equal clicks, some), or "" (no clicks)."""
    clicks = {"a": 0, "b": 0}
    for position in clicked_positions:
        if 0 <= position < len(teams):
            clicks[teams[position]] += 1
    if not clicks["a"] and not clicks["b"]:
        return ""
    if clicks["a"] == clicks["b"]:
        return "tie"
    return "a" if clicks["a"] > clicks["b"] else "b"
