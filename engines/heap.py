"""Keeping the heap of a large index build from growing with the catalogue.

Lance builds its indices from many threads with many large, short-lived allocations. glibc's
malloc adapts to that badly: once a large block served by mmap is freed it raises its mmap and
trim thresholds (up to 32 MiB / 64 MiB), after which such blocks come from the arenas, and what
they free stays in the process: on a 200k-product table that kept far more resident during one
full-text index build than the index itself (docs/benchmarks.md, "Measurements behind
constants"). `bound_heap_growth` fixes the trim threshold, which also turns the adaptation off;
`release_free_heap` returns what is free between the phases of a build. Both are no-ops where the
C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

M_TRIM_THRESHOLD = -1  # mallopt parameter (glibc malloc.h)
# Free memory above this at the top of a heap goes back to the OS; glibc's initial value.
TRIM_THRESHOLD_BYTES = 128 * 1024


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


@functools.cache
def bound_heap_growth() -> bool:
    """Fix malloc's trim threshold for this process (once); True when the C library took it."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))


def release_free_heap() -> bool:
    """Return free heap pages to the OS; True when the C library could do it."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))
