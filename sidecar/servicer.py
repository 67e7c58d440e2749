"""The thin gRPC servicer: bytes → domain, call the rerank service, domain → wire, errors → status.

The Rerank method is registered with no request deserializer: the handler sees the raw bytes,
so undecodable or oversized input becomes INVALID_ARGUMENT naming "request" (gRPC's own
deserialisation failure would be INTERNAL), and admission comes before validation. In order,
each step cheaper than the next: the byte size against the request limit, the bytes all
handlers hold against the in-flight budget, protobuf parsing (upb, in C: ~20 us for a
100-candidate request with vectors), then the model's queue for that many candidates. A
refusal never reaches the Python validation and template rendering (milliseconds a request),
and an admitted request keeps its place in the queue while it is validated.
Requests hold a lease on the model they started with, so a hot reload never closes a model
under a request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from shoprank.v1 import rerank_pb2 as pb
from sidecar import metrics
from sidecar.errors import (
    DeadlineExceededError,
    NotReadyError,
    OverloadedError,
    SidecarError,
    status_code,
)
from sidecar.in_flight import InFlight, abort_rpc
from sidecar.memory import TRIM_AFTER_BYTES, MemoryTrimmer
from sidecar.rerank_service import RerankService
from sidecar.wire_request import RequestDefaults, RequestLimits, check_request_size, parse_request, request_to_domain
from sidecar.wire_response import response_to_wire

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Reranker"].full_name
# Request bytes all handlers may hold at once, in requests of the largest allowed size. A request
# costs about three times its bytes while handled (raw, parsed, validated): this bounds that
# memory, where 64 handler threads alone would allow 64 requests of max_request_bytes.
INFLIGHT_REQUESTS_OF_MAX_SIZE = 4
# Back-off named to a request refused for the in-flight byte budget (the budget frees as requests end).
INFLIGHT_RETRY_AFTER_MS = 50


class ModelSlot:
    """The service currently serving; swapped atomically on load and hot reload.

    A replaced service is closed (its inference thread stopped) once the last request that
    leased it has finished.
    """

    def __init__(self) -> None:
        self._service: RerankService | None = None
        self._leases: dict[RerankService, int] = {}
        self._retired: set[RerankService] = set()
        self._lock = threading.Lock()

    def set(self, service: RerankService) -> RerankService | None:
        """Make `service` the one that answers; return the one it replaced."""
        with self._lock:
            previous, self._service = self._service, service
        if previous is not None and previous is not service:
            self._retire(previous)
        return previous

    def get(self) -> RerankService:
        """The serving service, or NotReadyError while none is loaded."""
        service = self._service
        if service is None:
            raise NotReadyError("the model is still loading; retry shortly or fail open")
        return service

    @contextmanager
    def lease(self) -> Iterator[RerankService]:
        """The serving service, kept open until the block ends."""
        with self._lock:
            service = self._service
            if service is None:
                raise NotReadyError("the model is still loading; retry shortly or fail open")
            self._leases[service] = self._leases.get(service, 0) + 1
        try:
            yield service
        finally:
            with self._lock:
                self._leases[service] -= 1
                idle = self._leases[service] == 0
                if idle:
                    del self._leases[service]
                close = idle and service in self._retired
                if close:
                    self._retired.discard(service)
            if close:
                service.close()

    def close(self) -> None:
        """Retire the serving service (shutdown); it closes when its last request ends."""
        with self._lock:
            previous, self._service = self._service, None
        if previous is not None:
            self._retire(previous)

    def _retire(self, service: RerankService) -> None:
        with self._lock:
            busy = self._leases.get(service, 0) > 0
            if busy:
                self._retired.add(service)
        if not busy:
            service.close()

    @property
    def ready(self) -> bool:
        """Whether a warmed model is loaded."""
        return self._service is not None


class RerankerServicer:
    """Implements shoprank.v1.Reranker/Rerank over raw request bytes.

    It counts the requests it is handling so that shutdown can tell drained from cut off.
    """

    def __init__(self, slot: ModelSlot, limits: RequestLimits, defaults: RequestDefaults) -> None:
        self.slot = slot
        self.limits = limits
        self.defaults = defaults
        self.requests = InFlight()
        self._in_flight_bytes = 0
        self.max_in_flight_bytes = INFLIGHT_REQUESTS_OF_MAX_SIZE * limits.max_request_bytes
        self.trimmer = MemoryTrimmer.shared()

    @property
    def in_flight(self) -> int:
        """Requests being handled now."""
        with self.requests.lock:
            return self.requests.count

    def drain(self, timeout: float) -> int:
        """Refuse new requests (UNAVAILABLE), wait up to `timeout` s for in-flight ones; return those left."""
        return self.requests.drain(timeout)

    def _hold_bytes(self, size: int) -> None:
        """Count a request's bytes as held, or refuse it (OverloadedError) past the in-flight budget."""
        with self.requests.lock:
            if self._in_flight_bytes and self._in_flight_bytes + size > self.max_in_flight_bytes:
                metrics.SHED.labels(reason="in_flight_bytes").inc()
                raise OverloadedError(
                    f"requests in flight hold {self._in_flight_bytes} bytes "
                    f"(limit {self.max_in_flight_bytes}); back off",
                    INFLIGHT_RETRY_AFTER_MS,
                )
            self._in_flight_bytes += size

    def rerank(self, data: bytes, context: grpc.ServicerContext) -> pb.RerankResponse:
        """Admit (before validating), then score, blend and diversify the candidates of one query."""
        started = time.perf_counter()
        status = grpc.StatusCode.OK
        held = 0
        draining = self.requests.enter()
        try:
            if draining:
                raise NotReadyError("the sidecar is shutting down; fail open or use another replica")
            remaining = context.time_remaining()
            deadline = time.monotonic() + remaining if remaining is not None else None
            if deadline is not None and remaining is not None and remaining <= 0:
                raise DeadlineExceededError("the deadline passed before the sidecar picked the request up")
            check_request_size(data, self.limits)
            self._hold_bytes(len(data))
            held = len(data)
            request = parse_request(data, self.limits)
            pairs = min(max(1, len(request.candidates)), self.limits.max_candidates)
            with self.slot.lease() as service:
                admission = service.admit(pairs, deadline)  # RESOURCE_EXHAUSTED here costs no validation
                try:
                    cancelled = threading.Event()
                    context.add_callback(cancelled.set)  # runs when the RPC ends: normal end, cancel or deadline
                    query = request_to_domain(request, self.limits, self.defaults, deadline, cancelled, admission)
                    outcome = service.rerank(query)
                finally:
                    if admission is not None:
                        admission.release()
            return response_to_wire(outcome)
        except SidecarError as error:
            status = status_code(error)
            abort_rpc(context, status, error)
        except Exception:
            status = grpc.StatusCode.INTERNAL
            log.exception("rerank failed")
            context.abort(status, "internal error while reranking; see the sidecar log")
        finally:
            with self.requests.lock:
                self._in_flight_bytes -= held
                last_large = len(data) >= TRIM_AFTER_BYTES and self._in_flight_bytes < TRIM_AFTER_BYTES
            self.requests.leave()
            if last_large:
                self.trimmer.request()  # freed request memory back to the OS (glibc keeps it otherwise)
            elapsed = time.perf_counter() - started
            metrics.REQUESTS.labels(status=status.name).inc()
            metrics.REQUEST_SECONDS.labels(status=status.name).observe(elapsed)
            log.debug("rerank %s in %.1f ms", status.name, elapsed * 1e3)

    def handler(self) -> grpc.GenericRpcHandler:
        """The generic handler serving Rerank with raw request bytes."""
        method: grpc.RpcMethodHandler[bytes, pb.RerankResponse] = grpc.unary_unary_rpc_method_handler(
            self.rerank, request_deserializer=None, response_serializer=pb.RerankResponse.SerializeToString
        )
        return grpc.method_handlers_generic_handler(SERVICE_NAME, {"Rerank": method})
