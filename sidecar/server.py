"""Building and running the sidecar's gRPC server: Reranker, Embedder, health, reflection, TLS, reload, drain.

`start_sidecar` builds everything in-process (tests use port 0); `run_sidecar` is the process:
it adds the metrics/admin HTTP endpoint and signals (SIGTERM/SIGINT drain, SIGHUP reload).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from shoprank.errors import NotSetUpError
from shoprank.listen import parse_listen
from shoprank.settings import Settings
from sidecar.blas_threads import use_one_blas_thread
from sidecar.diversify import DiversityParams
from sidecar.embed_service import EmbedGate
from sidecar.embed_servicer import EMBED_SERVICE_NAME, EmbedderServicer
from sidecar.model_loading import load_service
from sidecar.ops_http import OpsEndpoint
from sidecar.personalise import PersonalParams
from sidecar.ready_file import write_ready_file
from sidecar.reload import ModelReloader, ReloadResult
from sidecar.rerank_service import RerankService
from sidecar.servicer import SERVICE_NAME, ModelSlot, RerankerServicer
from sidecar.tls import server_credentials
from sidecar.wire_request import RequestDefaults, RequestLimits

__all__ = ["Sidecar", "create_server", "defaults_from", "load_service", "run_sidecar", "start_sidecar"]

log = logging.getLogger(__name__)

HEALTH_SERVICE_NAME = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
# Handler threads mostly wait on the batcher; the margin above them keeps health checks answered
# when every handler is busy (gRPC refuses RPCs beyond maximum_concurrent_rpcs at once).
HANDLER_THREADS = 64
EXTRA_CONCURRENT_RPCS = 16
# gRPC's message cap in multiples of max_request_bytes: a 40 MiB request under the 16 MiB default
# limit still reaches the servicer's own check.
RECEIVE_CAP_FACTOR = 4


def defaults_from(settings: Settings) -> RequestDefaults:
    """Server-side defaults for per-request options."""
    return RequestDefaults(
        blend_weight=settings.blend_weight,
        diversity=DiversityParams(
            method=settings.diversity_method,
            strength=settings.diversity_strength,
            window=settings.diversity_window,
            facets=settings.diversity_facets,
            attribute_weight=settings.diversity_attribute_weight,
        ),
        personal=PersonalParams(
            weight=settings.personal_weight,
            ramp=settings.personal_ramp,
            half_life_s=settings.personal_half_life_s,
            centres=settings.personal_centres,
        ),
    )


@dataclass
class Sidecar:
    """A started sidecar: the gRPC server, its port, the model slot, health and reload."""

    server: grpc.Server
    port: int
    slot: ModelSlot
    health: health.HealthServicer
    reloader: ModelReloader
    servicer: RerankerServicer
    embedder: EmbedderServicer

    def reload(self) -> ReloadResult:
        """Hot-reload the model (refused models leave the old one serving)."""
        return self.reloader.reload()

    def shutdown(self, grace_seconds: float) -> int:
        """Stop taking requests, let in-flight ones finish within the grace period, then free the model.

        Returns how many requests were still running when the grace period ended (cut off).
        Calls that reach the transport while it stops can end CANCELLED or UNAVAILABLE on the
        client without the sidecar ever seeing them; the client helper fails open on both.
        """
        self.health.enter_graceful_shutdown()
        started = time.monotonic()
        in_flight = self.servicer.in_flight
        stopped = self.server.stop(grace_seconds)
        cut_off = self.servicer.drain(grace_seconds) + self.embedder.drain(grace_seconds)
        stopped.wait()
        self.slot.close()
        log.info(
            "drained %d in-flight requests in %.2f s; %d cut off at the %.1f s grace",
            in_flight,
            time.monotonic() - started,
            cut_off,
            grace_seconds,
        )
        return cut_off


def _set_health(servicer: health.HealthServicer, status: health_pb2.HealthCheckResponse.ServingStatus) -> None:
    for name in ("", SERVICE_NAME, EMBED_SERVICE_NAME):
        servicer.set(name, status)


def start_sidecar(
    settings: Settings,
    loader: Callable[[Settings], RerankService] = load_service,
    background_load: bool = True,
) -> Sidecar:
    """Build and start the gRPC server on settings.listen (port 0 picks a free port).

    Health answers NOT_SERVING until the model is loaded and warmed.
    """
    credentials = server_credentials(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
    slot = ModelSlot()
    health_servicer = health.HealthServicer()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=HANDLER_THREADS, thread_name_prefix="rerank"),
        options=[
            # gRPC's own cap sits well above the request limit so oversized requests reach the
            # servicer and get INVALID_ARGUMENT naming "request" (gRPC's refusal beyond its cap is a
            # RESOURCE_EXHAUSTED that reads like overload; the client tells the two apart).
            ("grpc.max_receive_message_length", RECEIVE_CAP_FACTOR * settings.max_request_bytes),
            ("grpc.max_send_message_length", RECEIVE_CAP_FACTOR * settings.max_request_bytes),
            # gRPC Python sets SO_REUSEPORT by default, so a second sidecar (or a plaintext one beside
            # a TLS one) could bind the same address and take a share of its connections.
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=HANDLER_THREADS + EXTRA_CONCURRENT_RPCS,
    )
    servicer = RerankerServicer(slot, RequestLimits.from_settings(settings), defaults_from(settings))
    embedder = EmbedderServicer(slot, servicer.limits, EmbedGate(settings.embed_queue_max_texts))
    server.add_generic_rpc_handlers((servicer.handler(), embedder.handler()))
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, EMBED_SERVICE_NAME, HEALTH_SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    _set_health(health_servicer, health_pb2.HealthCheckResponse.NOT_SERVING)
    address = parse_listen(settings.listen)
    try:
        if credentials is None:
            port = server.add_insecure_port(str(address))
        else:
            port = server.add_secure_port(str(address), credentials)
    except RuntimeError:  # grpcio >= 1.60 raises where older versions returned 0
        port = 0
    if port == 0:
        raise NotSetUpError(
            f"could not bind --listen {address}: the address is in use (another sidecar?) or not this host's; "
            "stop what listens there or pick another --listen"
        )
    server.start()
    reloader = ModelReloader(settings, slot, loader)

    def on_loaded(service: RerankService) -> None:
        _set_health(health_servicer, health_pb2.HealthCheckResponse.SERVING)
        if service.embedder is None:  # Embed answers UNAVAILABLE without a bi-encoder: say so in health too
            health_servicer.set(EMBED_SERVICE_NAME, health_pb2.HealthCheckResponse.NOT_SERVING)

    reloader.on_loaded = on_loaded

    def load() -> None:
        result = reloader.reload()
        if result.loaded:
            log.info("sidecar serving model %s on port %d", result.version, port)
        else:
            log.error("loading the model failed; the sidecar stays NOT_SERVING: %s", result.error)

    if background_load:
        threading.Thread(target=load, name="model-load", daemon=True).start()
    else:
        load()
    return Sidecar(server, port, slot, health_servicer, reloader, servicer, embedder)


def create_server(
    settings: Settings,
    loader: Callable[[Settings], RerankService] = load_service,
    background_load: bool = True,
) -> tuple[grpc.Server, int, ModelSlot]:
    """start_sidecar, returning (server, bound port, model slot)."""
    sidecar = start_sidecar(settings, loader, background_load)
    return sidecar.server, sidecar.port, sidecar.slot


def run_sidecar(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT, then stop taking work and drain in-flight requests.

    SIGHUP (or POST /-/reload on the metrics address) reloads the model.
    """
    use_one_blas_thread()
    log.info("sidecar settings: %s", settings.model_dump_json())  # secrets are SecretStr: printed masked
    sidecar = start_sidecar(settings)
    ops = None
    if settings.metrics_listen:
        try:
            ops = OpsEndpoint(settings.metrics_listen, sidecar.reload)
        except RuntimeError as error:
            # Reranking matters more than its metrics: serve on, say so loudly (SIGHUP still reloads).
            log.error("no metrics/admin endpoint: %s", error)
    bound = parse_listen(settings.listen).with_port(sidecar.port)
    metrics_note = f", metrics on port {ops.port}" if ops is not None else ""
    print(f"shoprank sidecar listening on {bound}{metrics_note}", flush=True)
    if settings.ready_file is not None:
        write_ready_file(settings.ready_file, bound, ops.port if ops is not None else None)
    stopping = threading.Event()

    def on_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: draining in-flight requests for up to %.1f s", signum, settings.drain_seconds)
        stopping.set()

    def on_reload(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=sidecar.reload, name="model-reload", daemon=True).start()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_reload)
    if settings.exit_with_parent:
        _stop_when_orphaned(stopping)
    stopping.wait()
    sidecar.shutdown(settings.drain_seconds)
    if ops is not None:
        ops.close()
    if settings.ready_file is not None:
        settings.ready_file.unlink(missing_ok=True)  # no longer listening there
    log.info("sidecar stopped")


def _stop_when_orphaned(stopping: threading.Event) -> None:
    """Set `stopping` once the parent process is gone (this process is re-parented): a supervisor
    killed with SIGKILL must not leave its child serving with settings nobody holds any more."""
    parent = os.getppid()

    def watch() -> None:
        while not stopping.wait(1.0):
            if os.getppid() != parent:
                log.warning("the process that started this sidecar (pid %d) is gone: stopping", parent)
                stopping.set()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
