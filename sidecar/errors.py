"""Domain errors of the sidecar and the one table that maps them to gRPC status codes."""

from __future__ import annotations

import grpc

# Trailing metadata key of RESOURCE_EXHAUSTED answers: milliseconds the client should back off.
RETRY_AFTER_KEY = "retry-after-ms"


class SidecarError(Exception):
    """Base of errors a client can act on."""


class InvalidRequestError(SidecarError):
    """A request field is wrong; the message starts with the field's path."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class OverloadedError(SidecarError):
    """The queue is full, or the work ahead would outlast the deadline: back off or fail open."""

    def __init__(self, message: str, retry_after_ms: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms


class DeadlineExceededError(SidecarError):
    """The request's deadline passed before it could be scored."""


class NotReadyError(SidecarError):
    """No model is loaded and warmed yet, or the sidecar is stopping."""


class ModelMismatchError(SidecarError):
    """The caller expects another model version than the one serving (its index was built with another)."""


class InferenceError(SidecarError):
    """The model failed on a batch (the sidecar keeps serving; the log has the cause)."""


STATUS_CODES: dict[type[SidecarError], grpc.StatusCode] = {
    InvalidRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    OverloadedError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    DeadlineExceededError: grpc.StatusCode.DEADLINE_EXCEEDED,
    NotReadyError: grpc.StatusCode.UNAVAILABLE,
    InferenceError: grpc.StatusCode.INTERNAL,
    ModelMismatchError: grpc.StatusCode.FAILED_PRECONDITION,
}


def status_code(error: SidecarError) -> grpc.StatusCode:
    """The gRPC status for a domain error (INTERNAL for anything unmapped)."""
    for kind in type(error).__mro__:
        if kind in STATUS_CODES:
            return STATUS_CODES[kind]
    return grpc.StatusCode.INTERNAL
