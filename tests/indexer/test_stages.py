"""Read-ahead and write-behind stages: order kept, errors raised in the caller, early stops stop them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from indexer.stages import WriteBehind, read_ahead


def test_read_ahead_keeps_order_and_stays_bounded() -> None:
    produced: list[int] = []

    def numbers() -> Iterator[int]:
        for i in range(50):
            produced.append(i)
            yield i

    items = read_ahead(numbers(), depth=2)
    assert next(items) == 0
    time.sleep(0.2)
    assert len(produced) <= 4  # the one handed over, two queued, one waiting to be queued
    assert [0, *items] == list(range(50))


def test_read_ahead_raises_the_producer_error_in_the_consumer() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("row source broke")

    items = read_ahead(failing())
    assert next(items) == 1
    with pytest.raises(ValueError, match="row source broke"):
        next(items)


def test_closing_read_ahead_stops_the_producer() -> None:
    def endless() -> Iterator[int]:
        i = 0
        while True:
            yield i
            i += 1

    before = threading.active_count()
    items = read_ahead(endless(), depth=1)
    assert next(items) == 0
    items.close()
    assert threading.active_count() == before


def test_write_behind_runs_jobs_in_order_and_raises_the_first_error() -> None:
    done: list[int] = []
    writer = WriteBehind(depth=1)
    for i in range(5):
        writer.submit(lambda i=i: done.append(i))  # type: ignore[misc]
    writer.close()
    assert done == list(range(5))

    failing = WriteBehind(depth=1)
    failing.submit(lambda: (_ for _ in ()).throw(OSError("disk full")))
    time.sleep(0.2)  # the first job has failed by now
    with pytest.raises(OSError, match="disk full"):
        failing.submit(lambda: done.append(99))
    with pytest.raises(OSError, match="disk full"):
        failing.close()
    assert 99 not in done  # nothing ran after the failure
