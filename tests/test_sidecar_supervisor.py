"""The supervision rules of `shoprank serve`, on fake children and a scripted address (no processes)."""

from __future__ import annotations

from typing import Any

import pytest

from shoprank.settings import Settings
from sidecar.supervisor import FIRST_BACKOFF_S, MAX_BACKOFF_S, Presence, SidecarSupervisor


class FakeChild:
    """A child process that runs until `exit_code` is set."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.exit_code: int | None = None
        self.stopped = False

    def poll(self) -> int | None:
        return self.exit_code

    def stop(self, grace_s: float = 10.0) -> int:
        self.stopped = True
        return self.exit_code if self.exit_code is not None else -15


class Scripted(SidecarSupervisor):
    """A supervisor whose address answers what the test says, on a clock the test moves."""

    def __init__(self, spawning: bool = True) -> None:
        self.children: list[FakeChild] = []
        self.answer = Presence.ABSENT
        self.now = 1000.0
        super().__init__(Settings(sidecar="127.0.0.1:1"), self._new_child, spawning, clock=lambda: self.now)

    def _new_child(self) -> Any:
        self.children.append(FakeChild(len(self.children) + 1))
        return self.children[-1]

    def presence(self) -> Presence:
        return self.answer


def test_never_spawns_where_something_listens() -> None:
    for answer in (Presence.SERVING, Presence.LOADING, Presence.FOREIGN):
        scripted = Scripted()
        scripted.answer = answer
        for _ in range(5):
            scripted.check()
            scripted.now += 1
        assert scripted.children == [], answer


def test_spawns_one_child_and_none_beside_it_while_it_lives() -> None:
    scripted = Scripted()
    for _ in range(5):  # the child is still binding: nothing answers yet
        scripted.check()
        scripted.now += 1
    assert len(scripted.children) == 1


def test_its_own_starting_child_is_never_reported_as_a_foreign_listener(caplog: pytest.LogCaptureFixture) -> None:
    scripted = Scripted()
    scripted.check()  # nothing listens: the child starts
    scripted.answer = Presence.FOREIGN  # the child bound the port; its health check did not answer in time
    assert scripted.check() is Presence.LOADING
    assert "something listens" not in caplog.text
    assert len(scripted.children) == 1


def test_a_dead_child_is_reaped_and_replaced_with_growing_back_off() -> None:
    scripted = Scripted()
    scripted.check()
    waits = []
    for _ in range(8):  # each child dies before it ever serves
        scripted.children[-1].exit_code = 2
        scripted.check()
        assert scripted.children[-1].stopped  # reaped
        died, count = scripted.now, len(scripted.children)
        while len(scripted.children) == count:
            scripted.now += 0.25
            scripted.check()
        waits.append(scripted.now - died)
    assert waits[0] == pytest.approx(FIRST_BACKOFF_S, abs=0.25)
    assert waits == sorted(waits)
    assert waits[-1] == pytest.approx(MAX_BACKOFF_S, abs=0.25)  # capped


def test_a_child_that_served_is_replaced_quickly_and_one_back_on_its_own_is_used() -> None:
    scripted = Scripted()
    scripted.check()
    scripted.answer = Presence.SERVING
    scripted.check()
    scripted.children[-1].exit_code = -9  # SIGKILLed
    scripted.answer = Presence.ABSENT
    scripted.check()
    scripted.now += FIRST_BACKOFF_S
    scripted.check()
    assert len(scripted.children) == 2
    scripted.children[-1].exit_code = -9
    scripted.answer = Presence.SERVING  # someone started one by hand meanwhile
    for _ in range(5):
        scripted.now += MAX_BACKOFF_S
        scripted.check()
    assert len(scripted.children) == 2


def test_watch_only_never_spawns() -> None:
    scripted = Scripted(spawning=False)
    for _ in range(5):
        scripted.check()
        scripted.now += MAX_BACKOFF_S
    assert scripted.children == []
