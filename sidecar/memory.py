"""Giving freed heap back to the OS after large requests.

glibc keeps memory freed by a thread in that thread's arena: after a burst of large requests
the sidecar's resident size stays near its high-water mark, even after idling (figures:
docs/benchmarks.md, "Measurements behind constants"). `malloc_trim(0)`
returns the free pages of every arena. It runs on a thread of its own, at most once a second,
so no request waits for it. Where the C library has no malloc_trim (musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

# A request at least this large asks for a trim once it is done.
TRIM_AFTER_BYTES = 1024 * 1024
MIN_INTERVAL_S = 1.0


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


class MemoryTrimmer:
    """Calls malloc_trim in the background when asked, at most once every MIN_INTERVAL_S seconds.

    The heap is the process's: servers share one trimmer (`shared`).
    """

    _shared: MemoryTrimmer | None = None
    _shared_lock = threading.Lock()

    @classmethod
    def shared(cls) -> MemoryTrimmer:
        """The process's trimmer (one thread however many servers run in it)."""
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def __init__(self, min_interval_s: float = MIN_INTERVAL_S) -> None:
        self._trim = _malloc_trim()
        self._wanted = threading.Event()
        self._min_interval_s = min_interval_s
        self.trims = 0
        if self._trim is not None:
            threading.Thread(target=self._loop, name="memory-trim", daemon=True).start()

    @property
    def available(self) -> bool:
        """Whether this C library can trim (glibc)."""
        return self._trim is not None

    def request(self) -> None:
        """Ask for a trim soon (cheap: sets an event)."""
        self._wanted.set()

    def _loop(self) -> None:
        assert self._trim is not None
        while True:
            self._wanted.wait()
            self._wanted.clear()
            self._trim(0)  # ctypes releases the GIL while it runs
            self.trims += 1
            threading.Event().wait(self._min_interval_s)
