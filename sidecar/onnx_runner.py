"""Running one padded batch through an onnxruntime session: plain `run` on CPU, I/O binding on CUDA.

With I/O binding the inputs are placed on the device as OrtValues and the output is allocated
there by onnxruntime, so a call makes one host-to-device copy per input and one copy of the
(batch,) logits back, instead of onnxruntime staging every tensor through its own copies.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from shoprank.arrays import FloatArray

IntArray = npt.NDArray[np.int64]


class BatchRunner(Protocol):
    """Runs one feed of padded int64 inputs; returns the first output as float32 on the host."""

    device: str

    def run(self, feed: dict[str, IntArray]) -> FloatArray: ...


class SessionRunner:
    """`session.run` with host arrays: the CPU path."""

    device = "cpu"

    def __init__(self, session: Any) -> None:
        self._session = session
        self._output = session.get_outputs()[0].name

    def run(self, feed: dict[str, IntArray]) -> FloatArray:
        """Logits of one batch."""
        result: FloatArray = np.asarray(self._session.run([self._output], feed)[0], dtype=np.float32)
        return result


class IoBindingRunner:
    """I/O binding with OrtValues on `device` ("cuda" on a GPU; "cpu" runs the same code path in tests)."""

    def __init__(self, session: Any, device: str = "cuda", device_id: int = 0) -> None:
        import onnxruntime as ort

        self._ort = ort
        self._session = session
        self._output = session.get_outputs()[0].name
        self.device = device
        self._device_id = device_id

    def run(self, feed: dict[str, IntArray]) -> FloatArray:
        """Logits of one batch; inputs copied to the device once, output copied back once."""
        binding = self._session.io_binding()
        # Keep the device tensors referenced until the run has finished.
        values = {
            name: self._ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), self.device, self._device_id)
            for name, array in feed.items()
        }
        for name, value in values.items():
            binding.bind_ortvalue_input(name, value)
        binding.bind_output(self._output, self.device, self._device_id)
        self._session.run_with_iobinding(binding)
        result: FloatArray = np.asarray(binding.copy_outputs_to_cpu()[0], dtype=np.float32)
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
        return result


def runner_for(session: Any, device: str, io_binding: bool | None = None, device_id: int = 0) -> BatchRunner:
    """I/O binding on CUDA (or when asked), plain run otherwise."""
    if io_binding or (io_binding is None and device == "cuda"):
        return IoBindingRunner(session, device, device_id)
    return SessionRunner(session)
