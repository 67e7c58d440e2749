"""Keeping a sidecar at the address the front door calls: `shoprank serve`'s child, supervised.

Rules: never start a sidecar where something already listens (a sidecar still loading, one run
by hand, or a TLS sidecar this front door cannot talk to: starting a second one there is how
plaintext got onto a TLS port); restart a child that died, with back-off; use any sidecar
that comes back on its own. Searches fail open whenever none is SERVING.
"""

from __future__ import annotations

import enum
import logging
import socket
import threading
import time
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shoprank.listen import parse_listen
from shoprank.settings import Settings
from sidecar.process import SidecarProcess
from sidecar.tls import channel_credentials

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 0.5
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0


class Presence(enum.Enum):
    """What answers at the sidecar address."""

    SERVING = "serving"  # gRPC health: SERVING
    LOADING = "loading"  # gRPC health answers, not SERVING yet
    FOREIGN = "foreign"  # something accepts connections but does not answer health (TLS mismatch, not gRPC)
    ABSENT = "absent"  # nothing listens


def accepts_connections(address: str, timeout_s: float = 1.0) -> bool:
    """True when a TCP connection to address is accepted."""
    try:
        target = parse_listen(address, "sidecar")
    except ValueError:  # another gRPC target form (dns:///..., unix:...): not probed, never spawned on
        return False
    try:
        with socket.create_connection((target.host, target.port), timeout=timeout_s):
            return True
    except OSError:
        return False


def foreign_listener_message(address: str) -> str:
    """What to do when something listens at the sidecar address but does not answer as a sidecar."""
    return (
        f"something listens at --sidecar {address} but does not answer gRPC health with this front door's "
        "settings; if it is a TLS sidecar, set SHOPRANK_SIDECAR_TLS_CA (and SHOPRANK_SIDECAR_TLS_CERT and "
        "SHOPRANK_SIDECAR_TLS_KEY for mTLS, SHOPRANK_SIDECAR_TLS_SERVER_NAME when the certificate names "
        "another host); otherwise free the port or point --sidecar elsewhere. No sidecar is started there; "
        "searches are served in first-stage order until it answers"
    )


def health_channel(settings: Settings) -> grpc.Channel:
    """A channel to settings.sidecar with the front door's TLS settings, reconnecting within a second."""
    credentials = channel_credentials(settings.sidecar_tls_ca, settings.sidecar_tls_cert, settings.sidecar_tls_key)
    options: list[tuple[str, int | str]] = [("grpc.max_reconnect_backoff_ms", 1000), ("grpc.enable_retries", 0)]
    if settings.sidecar_tls_server_name:
        options.append(("grpc.ssl_target_name_override", settings.sidecar_tls_server_name))
    if credentials is None:
        return grpc.insecure_channel(settings.sidecar, options=options)
    return grpc.secure_channel(settings.sidecar, credentials, options=options)


class SidecarSupervisor:
    """Starts and restarts a sidecar child at settings.sidecar when, and only when, nothing listens there."""

    def __init__(
        self,
        settings: Settings,
        spawn: Callable[[], SidecarProcess] | None = None,
        spawning: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self.spawning = spawning  # False: only watch and say what answers (serve --no-spawn-sidecar)
        self.address = settings.sidecar
        # Its own channel, with the front door's TLS settings: health answers as searches would.
        self._channel = health_channel(settings)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        child_settings = settings.model_copy(update={"exit_with_parent": True})
        self._spawn = spawn or (lambda: SidecarProcess(child_settings, listen=settings.sidecar))
        self.child: SidecarProcess | None = None
        self._backoff_s = FIRST_BACKOFF_S
        self._next_spawn = 0.0
        self._last_presence: Presence | None = None
        self._child_served = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def presence(self) -> Presence:
        """Ask gRPC health, then (when it does not answer) whether anything accepts connections."""
        try:
            reply = self._health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
        except grpc.RpcError:
            return Presence.FOREIGN if accepts_connections(self.address) else Presence.ABSENT
        if reply.status == health_pb2.HealthCheckResponse.SERVING:
            return Presence.SERVING
        return Presence.LOADING

    def check(self) -> Presence:
        """One supervision step: reap a dead child, start one when nothing listens; returns what answers."""
        with self._lock:
            if self.child is not None and self.child.poll() is not None:
                code = self.child.poll()
                log.warning("the sidecar child (pid %d) exited with code %s; restarting it", self.child.pid, code)
                self.child.stop()  # reaped already; frees its ready file
                self.child = None
                if self._child_served:
                    self._backoff_s = FIRST_BACKOFF_S
                self._next_spawn = self._clock() + self._backoff_s
                self._backoff_s = min(MAX_BACKOFF_S, self._backoff_s * 2)
            presence = self.presence()
            if self.child is not None and presence is Presence.FOREIGN:
                # Our own child holds the port before its health service answers (binding, or a busy
                # machine timing out the check): it is starting, not someone else's listener.
                presence = Presence.LOADING
            if self.child is not None:
                self._child_served = self._child_served or presence is Presence.SERVING
            elif (
                self.spawning
                and presence is Presence.ABSENT
                and self._clock() >= self._next_spawn
                and not self._stop.is_set()
            ):
                self.child = self._spawn()
                self._child_served = False
                log.info("started a sidecar child (pid %d) on %s", self.child.pid, self.address)
            self._note(presence)
            return presence

    def _note(self, presence: Presence) -> None:
        """Log changes of what answers (not every check)."""
        if presence is self._last_presence:
            return
        self._last_presence = presence
        if presence is Presence.FOREIGN:
            log.error("%s", foreign_listener_message(self.address))
        elif presence is Presence.SERVING:
            log.info("the sidecar at %s is SERVING", self.address)
        elif presence is Presence.ABSENT and not self.spawning:
            log.warning("no sidecar answers at %s: searches fail open until one is SERVING", self.address)
        elif presence is Presence.LOADING and self.child is None:
            log.info("a sidecar at %s is starting; searches fail open until it is SERVING", self.address)

    def start(self, wait_s: float) -> Presence:
        """First check (starting a child if nothing listens), wait up to wait_s for SERVING, then supervise."""
        presence = self.check()
        end = time.monotonic() + wait_s
        while presence is not Presence.SERVING and self.child is not None and time.monotonic() < end:
            time.sleep(0.1)
            presence = self.check()
        self._thread = threading.Thread(target=self._watch, name="sidecar-supervisor", daemon=True)
        self._thread.start()
        return presence

    def _watch(self) -> None:
        while not self._stop.wait(CHECK_INTERVAL_S):
            try:
                self.check()
            except Exception:  # supervision must outlive any one failed check
                log.exception("checking the sidecar failed")

    def stop(self, grace_s: float) -> None:
        """Stop supervising, then stop the child (SIGTERM: it drains; SIGKILL after grace_s)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        with self._lock:
            if self.child is not None:
                self.child.stop(grace_s)
                self.child = None
        self._channel.close()
