"""onnxruntime sessions: provider choice (CUDA or CPU), thread sizing, clear install errors."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from shoprank.errors import MissingFileError, NotSetUpError
from shoprank.settings import Device

log = logging.getLogger(__name__)

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"


class CudaUnavailableError(NotSetUpError):
    """CUDA was asked for but this onnxruntime cannot run on a GPU here."""


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise NotSetUpError(
            "onnxruntime is not installed: pip install 'shoprank[cpu]' (or 'shoprank[gpu]' on a CUDA machine)"
        ) from exc
    return onnxruntime


def cuda_available() -> bool:
    """Whether this onnxruntime build can run on a CUDA GPU."""
    return CUDA_PROVIDER in _ort().get_available_providers()


def resolve_device(device: Device) -> str:
    """Turn auto/cpu/cuda into the device actually used; cuda without a GPU build is an error."""
    if device == "cpu":
        return "cpu"
    if cuda_available():
        return "cuda"
    if device == "cuda":
        raise CudaUnavailableError(
            "--device cuda asked for, but this onnxruntime has no CUDAExecutionProvider; "
            "install 'shoprank[gpu]' on a machine with CUDA, or use --device cpu"
        )
    return "cpu"


def _cgroup_cpu_limit() -> int | None:
    """Whole CPUs granted by a cgroup v2 quota (containers), or None when unlimited/unknown."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, int(int(quota) // int(period)))


def available_cores() -> int:
    """CPUs this process may run on: affinity mask, capped by a container's CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    return max(1, min(cores, limit) if limit else cores)


def intra_op_threads(device: str, configured: int = 0) -> int:
    """Threads of one session's intra-op pool: the configured number, else sized to the machine.

    On CPU one session owns every core (the sidecar runs one inference at a time). On CUDA the
    CPU only feeds the GPU and runs a few small ops, so two threads are enough.
    """
    if configured > 0:
        return configured
    cores = available_cores()
    return min(2, cores) if device == "cuda" else cores


def cuda_provider_options(device_id: int = 0) -> dict[str, Any]:
    """CUDAExecutionProvider options for a long-lived inference session.

    The arena grows by what is asked (not by powers of two) so memory tracks the largest batch;
    copies use the compute stream so I/O binding needs no extra synchronisation.
    """
    return {
        "device_id": device_id,
        "arena_extend_strategy": "kSameAsRequested",
        "cudnn_conv_algo_search": "HEURISTIC",
        "do_copy_in_default_stream": True,
    }


def create_session(
    path: Path,
    device: str,
    intra_threads: int | None = None,
    spinning: bool = True,
    device_id: int = 0,
) -> Any:
    """An InferenceSession on `device` ("cpu"/"cuda") with full graph optimisation.

    `spinning` is onnxruntime's default (on); the sidecar passes settings.inference_spinning.

    On "cuda" a session that onnxruntime quietly put on the CPU (CUDA libraries missing, no GPU
    visible) raises CudaUnavailableError instead of serving slowly on the wrong device.
    """
    ort = _ort()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # One session is driven by one thread at a time: give it the cores, no inter-op pool.
    options.intra_op_num_threads = intra_threads or intra_op_threads(device)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    # Spinning keeps pool threads hot between ops; on shared cores it burns the time slices the other
    # threads need (docs/benchmarks.md, "Measurements behind constants").
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    providers: list[Any] = [CPU_PROVIDER]
    if device == "cuda":
        providers = [(CUDA_PROVIDER, cuda_provider_options(device_id)), CPU_PROVIDER]
    if not path.is_file():
        raise MissingFileError(f"no ONNX model at {path}; run `shoprank models build`")
    session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    active = session.get_providers()
    if device == "cuda" and (not active or active[0] != CUDA_PROVIDER):
        raise CudaUnavailableError(
            f"onnxruntime could not start CUDA for {path.name} (active providers: {', '.join(active)}); "
            "check the CUDA/cuDNN libraries and that a GPU is visible, or use --device cpu"
        )
    log.info("onnx session %s on %s with %d threads", path.name, active[0], options.intra_op_num_threads)
    return session
