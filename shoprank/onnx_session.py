"""onnxruntime sessions: provider choice (CUDA or CPU), thread sizing, clear install errors."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from shoprank.settings import Device

log = logging.getLogger(__name__)


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "onnxruntime is not installed: pip install 'shoprank[cpu]' (or 'shoprank[gpu]' on a CUDA machine)"
        ) from exc
    return onnxruntime


def cuda_available() -> bool:
    """Whether this onnxruntime build can run on a CUDA GPU."""
    return "CUDAExecutionProvider" in _ort().get_available_providers()


def resolve_device(device: Device) -> str:
    """Turn auto/cpu/cuda into the device actually used; cuda without a GPU build is an error."""
    if device == "cpu":
        return "cpu"
    if cuda_available():
        return "cuda"
    if device == "cuda":
        raise RuntimeError(
            "--device cuda asked for, but this onnxruntime has no CUDAExecutionProvider; "
            "install 'shoprank[gpu]' on a machine with CUDA, or use --device cpu"
        )
    return "cpu"


def create_session(path: Path, device: str, intra_threads: int | None = None, spin: bool = True) -> Any:
    """An InferenceSession on `device` ("cpu"/"cuda") with full graph optimisation.

    `spin=False` makes idle intra-op threads sleep instead of busy-waiting between kernels: a
    little latency for a lot of CPU when other threads (or processes) need the cores too.
    """
    ort = _ort()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # One session is shared by a batching thread: give it the machine's cores, no inter-op pool.
    options.intra_op_num_threads = intra_threads or (os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    providers: list[Any] = ["CPUExecutionProvider"]
    if device == "cuda":
        providers = [("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"]
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX model at {path}; run `shoprank models build`")
    session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    log.info("onnx session %s on %s", path.name, session.get_providers()[0])
    return session
