"""Giving freed heap memory back to the operating system between the phases of a large build.

Writing a catalogue and building each index allocate from many threads; glibc keeps what they
free in per-thread arenas, so without a trim the peak RSS of a reindex is the sum of phases
that never overlap. A no-op where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def release_free_heap() -> bool:
    """Return free heap pages to the OS; True when the C library could do it."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))
