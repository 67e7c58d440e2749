"""The thin gRPC servicer of shoprank.v1.Embedder/Embed: bytes → domain, embed, domain → wire, errors → status.

Like Rerank it takes raw request bytes (undecodable or oversized input is INVALID_ARGUMENT naming
"request", not gRPC's INTERNAL) and admits before it validates. The bi-encoder is the one the
serving model slot loaded beside the cross-encoder (`sidecar.model_loading.load_service`), so a hot
reload swaps both together and a request keeps the one it started with.
"""

from __future__ import annotations

import logging
import time

import grpc

from shoprank.v1 import rerank_pb2 as pb
from sidecar import metrics
from sidecar.embed_service import EmbedGate, TextEmbedder, embed
from sidecar.errors import (
    DeadlineExceededError,
    NotReadyError,
    SidecarError,
    status_code,
)
from sidecar.in_flight import InFlight, abort_rpc
from sidecar.servicer import ModelSlot
from sidecar.wire_embed import embed_outcome_to_response, embed_request_to_domain, parse_embed_request
from sidecar.wire_request import RequestLimits

log = logging.getLogger(__name__)

EMBED_SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Embedder"].full_name


class EmbedderServicer:
    """Implements Embed over raw request bytes; counts requests in flight so shutdown can drain them."""

    def __init__(self, slot: ModelSlot, limits: RequestLimits, gate: EmbedGate) -> None:
        self.slot = slot
        self.limits = limits
        self.gate = gate
        self.requests = InFlight()

    def drain(self, timeout: float) -> int:
        """Refuse new requests (UNAVAILABLE), wait up to `timeout` s for in-flight ones; return those left."""
        return self.requests.drain(timeout)

    def embed(self, data: bytes, context: grpc.ServicerContext) -> pb.EmbedResponse:
        """Admit, validate, embed the texts with the serving bi-encoder."""
        started = time.perf_counter()
        status = grpc.StatusCode.OK
        admitted = 0
        draining = self.requests.enter()
        try:
            if draining:
                raise NotReadyError("the sidecar is shutting down; use another replica")
            remaining = context.time_remaining()
            deadline = time.monotonic() + remaining if remaining is not None else None
            if remaining is not None and remaining <= 0:
                raise DeadlineExceededError("the deadline passed before the sidecar picked the request up")
            request = parse_embed_request(data, self.limits)
            count = len(request.texts)
            with self.slot.lease() as service:
                embedder: object = service.embedder  # the RerankService's optional bi-encoder
                if not isinstance(embedder, TextEmbedder):
                    raise NotReadyError(
                        "this sidecar has no bi-encoder: build it into its models dir (`shoprank models build`)"
                    )
                # RESOURCE_EXHAUSTED here costs no validation; an over-long list is validation's to refuse.
                texts = min(max(1, count), self.limits.max_embed_texts)
                self.gate.admit(texts, deadline)
                admitted = texts
                query = embed_request_to_domain(request, self.limits, deadline)
                outcome = embed(embedder, self.gate, query)
            return embed_outcome_to_response(outcome)
        except SidecarError as error:
            status = status_code(error)
            abort_rpc(context, status, error)
        except Exception:
            status = grpc.StatusCode.INTERNAL
            log.exception("embed failed")
            context.abort(status, "internal error while embedding; see the sidecar log")
        finally:
            if admitted:
                self.gate.release(admitted)
            self.requests.leave()
            elapsed = time.perf_counter() - started
            metrics.EMBED_REQUESTS.labels(status=status.name).inc()
            metrics.EMBED_SECONDS.labels(status=status.name).observe(elapsed)

    def handler(self) -> grpc.GenericRpcHandler:
        """The generic handler serving Embed with raw request bytes."""
        method: grpc.RpcMethodHandler[bytes, pb.EmbedResponse] = grpc.unary_unary_rpc_method_handler(
            self.embed, request_deserializer=None, response_serializer=pb.EmbedResponse.SerializeToString
        )
        return grpc.method_handlers_generic_handler(EMBED_SERVICE_NAME, {"Embed": method})
