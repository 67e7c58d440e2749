"""What both sidecar servicers (Rerank, Embed) share about the requests they handle: a count that
shutdown drains, and the answer a domain error gets on the wire."""

from __future__ import annotations

import threading
from typing import NoReturn

import grpc

from sidecar.errors import RETRY_AFTER_KEY, OverloadedError, SidecarError


class InFlight:
    """Requests being handled; after `drain` every new one is refused (the caller checks `enter`)."""

    def __init__(self) -> None:
        self.lock = threading.Condition()  # also guards what a servicer counts beside (request bytes)
        self.count = 0
        self.draining = False

    def enter(self) -> bool:
        """Count a request in; True when the servicer is draining and must refuse it."""
        with self.lock:
            self.count += 1
            return self.draining

    def leave(self) -> None:
        """Count a request out (whatever its outcome), waking a drain that waits for none."""
        with self.lock:
            self.count -= 1
            self.lock.notify_all()

    def drain(self, timeout: float) -> int:
        """Refuse new requests, wait up to `timeout` s for in-flight ones; return those left."""
        with self.lock:
            self.draining = True
            self.lock.wait_for(lambda: self.count == 0, timeout=max(timeout, 0.0))
            return self.count


def abort_rpc(context: grpc.ServicerContext, status: grpc.StatusCode, error: SidecarError) -> NoReturn:
    """End the RPC with the error's status and message; an overload says when to retry in a trailer."""
    if isinstance(error, OverloadedError) and error.retry_after_ms is not None:
        context.set_trailing_metadata(((RETRY_AFTER_KEY, str(error.retry_after_ms)),))
    context.abort(status, str(error))
