"""Test tiers that select: every test is unit, service or e2e, and `-m unit` runs the fast tier.

- e2e: subprocesses, real models, the browser, a cluster, or minutes of CPU (marked e2e, browser,
  opensearch or slow, or using the real models);
- service: in-process servers and tiny models (uses one of SERVICE_FIXTURES, or marked service);
- unit: everything else: no models and no sockets. A unit test that opens a socket fails, saying
  to mark it `service`, so the tier stays what it says.

A test's tier comes from its markers and fixtures (pytest_collection_modifyitems), not from a list
to keep up to date by hand.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

TIERS = ("unit", "service", "e2e")
E2E_MARKERS = frozenset({"e2e", "browser", "opensearch", "slow"})
E2E_FIXTURES = frozenset({"real_models"})
SERVICE_FIXTURES = frozenset(
    {"tiny_models", "stack_dir", "tiny_sidecar", "slow_sidecar", "closed_address", "service_for", "api_for", "shoprank"}
)


def tier_of(item: pytest.Item) -> str:
    """The tier of one collected test."""
    markers = {mark.name for mark in item.iter_markers()}
    fixtures = set(getattr(item, "fixturenames", ()))
    if markers & E2E_MARKERS or fixtures & E2E_FIXTURES:
        return "e2e"
    if "service" in markers or fixtures & SERVICE_FIXTURES:
        return "service"
    return "unit"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every test its tier marker, so `-m unit` / `-m "not e2e"` select."""
    for item in items:
        tier = tier_of(item)
        if tier not in {mark.name for mark in item.iter_markers()}:
            item.add_marker(tier)


class _NoSockets:
    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{self.nodeid} is a unit test but opened a socket: mark it `service`")


@pytest.fixture(autouse=True)
def _unit_tests_open_no_sockets(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("unit") is not None:
        guard = _NoSockets(request.node.nodeid)
        monkeypatch.setattr(socket.socket, "bind", guard)
        monkeypatch.setattr(socket.socket, "connect", guard)
        monkeypatch.setattr(socket.socket, "connect_ex", guard)
