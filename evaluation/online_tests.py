"""Online comparisons read from UBI records: team-draft interleaving verdicts, and the A/B test the
same traffic would have needed.

Interleaving: each interleaved impression (a ubi_queries record with `interleave_teams`) is won by
the team whose results got more clicks; a two-sided sign test on wins against losses (ties left
out) gives p. A/B: sessions split by a query attribute (e.g. `mode`), each a success when it got a
click; a two-proportion z-test gives p. Both report the impressions after which p stayed below
alpha to the end (None when it ends above): looking at p after every impression and stopping
at the first dip would find "significance" in A-vs-A traffic far more often than alpha.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from frontdoor.interleave import credit


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact binomial p of wins vs losses under no preference (1.0 with no decided impressions)."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1))
    return min(1.0, float(2 * tail / 2**n))


def two_proportion_p(success_a: int, n_a: int, success_b: int, n_b: int) -> float:
    """Two-sided p of a two-proportion z-test (pooled variance); 1.0 when undefined."""
    if not n_a or not n_b:
        return 1.0
    pooled = (success_a + success_b) / (n_a + n_b)
    variance = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
    if variance <= 0:
        return 1.0
    z = (success_a / n_a - success_b / n_b) / math.sqrt(variance)
    return math.erfc(abs(z) / math.sqrt(2))


@dataclass(frozen=True)
class InterleaveVerdict:
    """An interleaving experiment's outcome."""

    variant: str
    impressions: int
    wins_a: int
    wins_b: int
    ties: int
    no_clicks: int
    preference_a: float  # (wins_a + ties / 2) / decided-or-tied - 0.5: > 0 prefers a
    p_value: float
    impressions_to_significance: int | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class AbVerdict:
    """An A/B comparison's outcome: sessions with a click, per arm."""

    attribute: str
    arms: dict[str, tuple[int, int]]  # arm -> (sessions with a click, sessions)
    p_value: float
    impressions_to_significance: int | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def clicked_positions(events: Iterable[Mapping[str, Any]]) -> dict[str, list[int]]:
    """Per query id, the positions of its click events."""
    out: dict[str, list[int]] = defaultdict(list)
    for event in events:
        if event.get("action_name") != "click":
            continue
        ordinal = ((event.get("event_attributes") or {}).get("position") or {}).get("ordinal")
        if isinstance(ordinal, int):
            out[str(event.get("query_id"))].append(ordinal)
    return out


def interleaving(
    queries: Sequence[Mapping[str, Any]], clicks: Mapping[str, Sequence[int]], alpha: float = 0.05
) -> InterleaveVerdict:
    """Credit every interleaved impression by its clicks, in record order."""
    wins = {"a": 0, "b": 0, "tie": 0, "": 0}
    first: int | None = None
    variant = ""
    impressions = 0
    for record in queries:
        attributes = record.get("query_attributes") or {}
        teams = attributes.get("interleave_teams")
        if attributes.get("experiment") != "interleave" or not isinstance(teams, str):
            continue
        variant = variant or str(attributes.get("variant", ""))
        impressions += 1
        wins[credit(teams, clicks.get(str(record.get("query_id")), ()))] += 1
        if sign_test(wins["a"], wins["b"]) >= alpha:
            first = None
        elif first is None:
            first = impressions
    decided = wins["a"] + wins["b"] + wins["tie"]
    preference = (wins["a"] + wins["tie"] / 2) / decided - 0.5 if decided else 0.0
    return InterleaveVerdict(
        variant,
        impressions,
        wins["a"],
        wins["b"],
        wins["tie"],
        wins[""],
        preference,
        sign_test(wins["a"], wins["b"]),
        first,
    )


def ab_test(
    queries: Sequence[Mapping[str, Any]], clicks: Mapping[str, Sequence[int]], attribute: str, alpha: float = 0.05
) -> AbVerdict:
    """Sessions split by `attribute` (two arms), in record order; success = at least one click."""
    arms: dict[str, list[int]] = {}
    first: int | None = None
    seen = 0
    for record in queries:
        attributes = record.get("query_attributes") or {}
        if attributes.get("experiment") == "interleave" or attribute not in attributes:
            continue
        arm = arms.setdefault(str(attributes[attribute]), [0, 0])
        arm[0] += bool(clicks.get(str(record.get("query_id"))))
        arm[1] += 1
        seen += 1
        if len(arms) > 2:
            raise ValueError(f"attribute {attribute!r} has more than two values: {sorted(arms)}")
        if len(arms) < 2 or _ab_p(arms) >= alpha:
            first = None
        elif first is None:
            first = seen
    return AbVerdict(attribute, {k: (v[0], v[1]) for k, v in arms.items()}, _ab_p(arms), first)


def _ab_p(arms: Mapping[str, Sequence[int]]) -> float:
    if len(arms) != 2:
        return 1.0
    (sa, na), (sb, nb) = arms.values()
    return two_proportion_p(sa, na, sb, nb)
