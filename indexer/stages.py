"""Background stages of the indexing pipeline: reading ahead and writing behind the embedder.

onnxruntime releases the GIL while it runs, so parsing/validating the next batch and writing
the previous one overlap with embedding the current one. Queues are bounded (memory stays
flat), an error in a stage is raised in the caller, and a caller that stops early stops the
stage too.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
_POLL_S = 0.1
_END = object()


def _put(channel: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    """Put unless told to stop; False when stopped."""
    while not stop.is_set():
        try:
            channel.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def read_ahead(items: Iterable[T], depth: int = 2, name: str = "read-ahead") -> Generator[T, None, None]:
    """Iterate `items` in a background thread, at most `depth` items ahead of the consumer."""
    channel: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _put(channel, item, stop):
                    return
            _put(channel, _END, stop)
        except BaseException as exc:  # handed to the consumer, raised there
            _put(channel, exc, stop)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = channel.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


class WriteBehind:
    """Runs submitted jobs one at a time, in order, in a background thread.

    `submit` blocks when `depth` jobs are waiting; the first error is raised by the next
    `submit` or by `close`, and no further jobs run after it.
    """

    def __init__(self, depth: int = 2, name: str = "write-behind") -> None:
        self._jobs: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None  # set by the worker, raised by the caller
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _END:
                return
            if self._error is not None or self._stop.is_set():
                continue  # drain without running: the run has failed or is being cancelled
            try:
                job()
            except BaseException as exc:  # raised in the submitting thread
                self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, job: Callable[[], None]) -> None:
        """Queue a job; raises the error of an earlier job, if any."""
        self._raise()
        self._jobs.put(job)  # never blocks for ever: the worker drains the queue until _END

    def close(self) -> None:
        """Wait for every queued job; raises the first error."""
        self._jobs.put(_END)
        self._thread.join()
        self._raise()

    def cancel(self) -> None:
        """Stop: queued jobs are dropped, the running one finishes."""
        self._stop.set()
        self._jobs.put(_END)
        self._thread.join()
