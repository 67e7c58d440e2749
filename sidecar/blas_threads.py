"""BLAS threads of the sidecar process: one.

The sidecar's numpy work is small per-request matrices (a 100 x 100 cosine matrix for
diversity), where a multi-threaded BLAS only adds hand-offs, which under load cost far more
than the product itself (docs/benchmarks.md, "Measurements behind constants"). Requests
already run in parallel on the server's thread pool, and onnxruntime keeps its own threads,
so nothing is lost.
"""

from __future__ import annotations

from typing import Any

from threadpoolctl import threadpool_limits


def use_one_blas_thread() -> Any:
    """Limit BLAS (OpenBLAS/MKL behind numpy) to one thread from now on.

    Returns the limiter: used as a context manager (`with use_one_blas_thread():`) it restores
    the previous limits on exit; the sidecar calls it once and keeps the limit for its life.
    """
    return threadpool_limits(limits=1, user_api="blas")
