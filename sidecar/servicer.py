"""The thin gRPC servicer: wire → domain, call the rerank service, domain → wire, errors → status."""

from __future__ import annotations

import logging
import threading
import time

import grpc

from shoprank.v1 import rerank_pb2 as pb
from shoprank.v1 import rerank_pb2_grpc as pb_grpc
from sidecar.convert import RequestDefaults, RequestLimits, outcome_to_response, request_to_domain
from sidecar.errors import NotReadyError, SidecarError, status_code
from sidecar.scoring import RerankService

log = logging.getLogger(__name__)


class ModelSlot:
    """The service currently serving; swapped atomically on load and hot reload."""

    def __init__(self) -> None:
        self._service: RerankService | None = None
        self._lock = threading.Lock()

    def set(self, service: RerankService) -> None:
        """Make `service` the one that answers."""
        with self._lock:
            self._service = service

    def get(self) -> RerankService:
        """The serving service, or NotReadyError while none is loaded."""
        service = self._service
        if service is None:
            raise NotReadyError("the model is still loading; retry shortly or fail open")
        return service

    @property
    def ready(self) -> bool:
        """Whether a warmed model is loaded."""
        return self._service is not None


class RerankerServicer(pb_grpc.RerankerServicer):
    """Implements shoprank.v1.Reranker."""

    def __init__(self, slot: ModelSlot, limits: RequestLimits, defaults: RequestDefaults) -> None:
        self.slot = slot
        self.limits = limits
        self.defaults = defaults

    def Rerank(self, request: pb.RerankRequest, context: grpc.ServicerContext) -> pb.RerankResponse:  # noqa: N802
        """Score, blend and diversify the candidates of one query."""
        remaining = context.time_remaining()
        deadline = time.monotonic() + remaining if remaining is not None else None
        try:
            service = self.slot.get()
            query = request_to_domain(request, self.limits, self.defaults, deadline)
            return outcome_to_response(service.rerank(query))
        except SidecarError as error:
            context.abort(status_code(error), str(error))
        except Exception:
            log.exception("rerank failed")
            context.abort(grpc.StatusCode.INTERNAL, "internal error while reranking; see the sidecar log")
