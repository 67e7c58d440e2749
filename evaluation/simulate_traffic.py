"""Simulated shoppers: judged queries replayed through the front door's HTTP API as seeded sessions.

Each session searches (GET /api/search with a pseudonymous client id), sees the page, and acts by
a click model whose attractiveness comes from the product's grade (E > S > C > I; unjudged as I):
- pbm: each result at rank r is examined with probability 1 / (r + 1) ** eta, and clicked when
  examined with its grade's attractiveness;
- cascade: results are scanned top-down, each clicked with its attractiveness, and after a
  click the shopper stops with probability `stop`.
`noise` swaps a grade's attractiveness for a uniform draw that often. A clicked product is put
in the cart with its grade's cart probability, and a cart is bought with `purchase`. Every shown
result is posted as an impression; all events go through POST /api/events.

Deterministic: the same seed, flags, and front-door answers give the same events.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from relevance.judgments import ESCI_GAINS

BehaviourName = Literal["pbm", "cascade"]
GRADES = tuple(ESCI_GAINS)  # E, S, C, I


class Answer(Protocol):
    """What the simulator reads of an HTTP response."""

    @property
    def status_code(self) -> int: ...

    def json(self) -> Any: ...


class Http(Protocol):
    """An HTTP client with the front door as its base URL (httpx.Client, or a test client)."""

    def get(self, url: str, *, params: Mapping[str, str]) -> Answer: ...

    def post(self, url: str, *, json: Any) -> Answer: ...


@dataclass(frozen=True)
class ShopperModel:
    """How simulated shoppers act; every field is a `shoprank simulate-traffic` flag."""

    behaviour: BehaviourName = "pbm"
    attractiveness: Mapping[str, float] = field(default_factory=lambda: {"E": 0.7, "S": 0.35, "C": 0.12, "I": 0.03})
    eta: float = 1.0  # PBM examination decay
    stop: float = 0.6  # cascade: stop after a click
    noise: float = 0.05
    cart: Mapping[str, float] = field(default_factory=lambda: {"E": 0.4, "S": 0.15, "C": 0.05, "I": 0.01})
    purchase: float = 0.5

    def clicks(self, grades: Sequence[str], rng: random.Random) -> list[int]:
        """The ranks a shopper clicks on a page whose results have these grades."""
        chosen: list[int] = []
        for rank, grade in enumerate(grades):
            attract = rng.random() if rng.random() < self.noise else self.attractiveness[grade]
            if self.behaviour == "pbm":
                if rng.random() < 1.0 / (rank + 1) ** self.eta and rng.random() < attract:
                    chosen.append(rank)
            elif rng.random() < attract:
                chosen.append(rank)
                if rng.random() < self.stop:
                    break
        return chosen


@dataclass
class TrafficReport:
    """What a simulation did."""

    sessions: int = 0
    searches_failed: int = 0
    events_posted: int = 0
    events_rejected: int = 0
    actions: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "sessions": self.sessions,
            "searches_failed": self.searches_failed,
            "events_posted": self.events_posted,
            "events_rejected": self.events_rejected,
            "actions": dict(self.actions),
        }


def _grade(gain: float | None) -> str:
    if gain is None:
        return "I"
    return min(GRADES, key=lambda g: abs(ESCI_GAINS[g] - gain))


def simulate(
    http: Http,
    judged: Mapping[str, Mapping[str, float]],
    sessions_per_query: int,
    shopper: ShopperModel,
    seed: int = 0,
    search_params: Mapping[str, str] | None = None,
    modes: Sequence[str] = (),
    start: datetime | None = None,
) -> TrafficReport:
    """Run sessions_per_query sessions of every judged query (in a seeded order) through `http`;
    each session searches with one of `modes` (seeded draw; none: the API's default)."""
    rng = random.Random(seed)
    order = [q for q in sorted(judged) for _ in range(sessions_per_query)]
    rng.shuffle(order)
    clock = start or datetime(2026, 1, 1, tzinfo=UTC)
    report = TrafficReport()
    for number, query in enumerate(order):
        session = uuid.UUID(int=rng.getrandbits(128), version=4).hex
        client = f"sim-{uuid.UUID(int=rng.getrandbits(128), version=4)}"
        params = {"q": query, "client_id": client, **(search_params or {})}
        if modes:
            params["mode"] = rng.choice(list(modes))
        answer = http.get("/api/search", params=params)
        if answer.status_code != 200:
            report.searches_failed += 1
            continue
        page = answer.json()
        report.sessions += 1
        shown = [r["id"] for r in page["results"]]
        grades = [_grade(judged[query].get(pid)) for pid in shown]
        when = clock + timedelta(seconds=number)
        events = [_event("impression", page, query, session, client, pid, rank, when) for rank, pid in enumerate(shown)]
        for rank in shopper.clicks(grades, rng):
            pid = shown[rank]
            events.append(_event("click", page, query, session, client, pid, rank, when))
            if rng.random() < shopper.cart[grades[rank]]:
                events.append(_event("add_to_cart", page, query, session, client, pid, rank, when))
                if rng.random() < shopper.purchase:
                    events.append(_event("purchase", page, query, session, client, pid, rank, when))
        if not events:
            continue  # nothing shown: nothing to report
        reply = http.post("/api/events", json=events)
        body = reply.json()
        if reply.status_code != 200:
            raise RuntimeError(f"the front door refused simulated events: {reply.status_code} {body}")
        report.events_posted += int(body["accepted"])
        report.events_rejected += len(body["rejected"])
        report.actions.update(e["action_name"] for e in events)
    return report


def _event(
    action: str, page: Mapping[str, Any], query: str, session: str, client: str, pid: str, rank: int, when: datetime
) -> dict[str, Any]:
    return {
        "action_name": action,
        "timestamp": when.isoformat().replace("+00:00", "Z"),
        "query_id": page["query_id"],
        "session_id": session,
        "client_id": client,
        "user_query": query,
        "application": "simulate-traffic",
        "event_attributes": {"object": {"object_id": pid, "object_id_type": "product"}, "position": {"ordinal": rank}},
    }
