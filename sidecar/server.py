"""Building and running the sidecar's gRPC server: Reranker, health, reflection, graceful shutdown."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from concurrent import futures
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from shoprank.bi_encoder import BiEncoder
from shoprank.model_meta import ModelNotBuiltError
from shoprank.onnx_session import resolve_device
from shoprank.settings import Settings
from shoprank.v1 import rerank_pb2 as pb
from shoprank.v1 import rerank_pb2_grpc as pb_grpc
from sidecar.blas_threads import use_one_blas_thread
from sidecar.convert import RequestDefaults, RequestLimits
from sidecar.diversify import DiversityParams
from sidecar.reranker import CrossEncoder
from sidecar.scoring import RerankService
from sidecar.servicer import ModelSlot, RerankerServicer

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Reranker"].full_name
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def load_service(settings: Settings) -> RerankService:
    """Load and warm the cross-encoder (and the bi-encoder for diversity when built)."""
    device = resolve_device(settings.device)
    encoder = CrossEncoder(settings.models_dir(), device=device, max_length=settings.max_pair_tokens)
    encoder.warm_up()
    embedder = None
    try:
        embedder = BiEncoder(settings.models_dir(), device=device)
    except ModelNotBuiltError:
        log.warning("no bi-encoder built: MMR/DPP fall back to attribute redundancy for candidates without embeddings")
    return RerankService(encoder, embedder)


def defaults_from(settings: Settings) -> RequestDefaults:
    """Server-side defaults for per-request options."""
    return RequestDefaults(
        blend_weight=settings.blend_weight,
        diversity=DiversityParams(
            method=settings.diversity_method, strength=settings.diversity_strength, window=settings.diversity_window
        ),
    )


def create_server(
    settings: Settings,
    loader: Callable[[Settings], RerankService] = load_service,
    background_load: bool = True,
) -> tuple[grpc.Server, int, ModelSlot]:
    """Build and start the server on settings.listen (port 0 picks a free port).

    Health answers NOT_SERVING until the model is loaded and warmed; returns the server,
    the bound port and the model slot.
    """
    slot = ModelSlot()
    health_servicer = health.HealthServicer()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="rerank"),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    limits = RequestLimits(max_candidates=settings.max_candidates)
    pb_grpc.add_RerankerServicer_to_server(RerankerServicer(slot, limits, defaults_from(settings)), server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    port = server.add_insecure_port(settings.listen)
    if port == 0:
        raise RuntimeError(f"could not bind {settings.listen}; is the port in use?")
    server.start()

    def load() -> None:
        try:
            slot.set(loader(settings))
        except Exception:
            log.exception("loading the model failed; the sidecar stays NOT_SERVING")
            return
        for name in ("", SERVICE_NAME):
            health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("sidecar serving model %s on port %d", slot.get().model_version, port)

    if background_load:
        threading.Thread(target=load, name="model-load", daemon=True).start()
    else:
        load()
    server.health_servicer = health_servicer  # type: ignore[attr-defined]
    return server, port, slot


def run_sidecar(settings: Settings, grace_seconds: float = 5.0) -> None:
    """Serve until SIGTERM/SIGINT, then stop taking work and drain in-flight requests."""
    use_one_blas_thread()
    server, port, _ = create_server(settings)
    print(f"shoprank sidecar listening on {settings.listen.rsplit(':', 1)[0]}:{port}", flush=True)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: draining", signum)
        server.health_servicer.enter_graceful_shutdown()  # type: ignore[attr-defined]
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stopping.wait()
    server.stop(grace_seconds).wait()
