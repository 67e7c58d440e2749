"""`shoprank serve`: the HTTP search front door, with a supervised sidecar child when none listens."""

from __future__ import annotations

import argparse
import logging
import signal
from types import FrameType
from typing import Any

from shoprank.cli.common import add_command
from shoprank.settings import Settings

log = logging.getLogger(__name__)

# How long `serve` waits for its own sidecar child to become SERVING before taking searches
# (they fail open meanwhile).
CHILD_START_WAIT_S = 120.0


def register(subparsers: Any) -> None:
    """Add the `serve` command."""
    parser = add_command(subparsers, "serve", "serve the HTTP search API and demo page (starts a sidecar if needed)")
    parser.add_argument(
        "--no-spawn-sidecar",
        action="store_true",
        help="do not start a sidecar child process when none answers at --sidecar",
    )
    parser.set_defaults(run=run)


class _TerminatedError(Exception):
    """SIGTERM before the HTTP server took over signals (while the sidecar child starts)."""


def _stop_now(_signum: int, _frame: FrameType | None) -> None:
    raise _TerminatedError


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT; then stop the sidecar child (if any) and exit 0."""
    from frontdoor.http import create_app
    from frontdoor.server import bind_socket, serve_in_foreground
    from frontdoor.wiring import build_search_service
    from shoprank.listen import parse_listen
    from sidecar.client import RerankClient
    from sidecar.supervisor import Presence, SidecarSupervisor

    listen = parse_listen(settings.http_listen, "http_listen")
    client = RerankClient.from_settings(settings)
    service = build_search_service(settings, client)
    products = service.engine.count()  # fails here, with what to do, when nothing is indexed
    sock = bind_socket(listen.host, listen.port)  # fails here when the port is taken, before any child starts
    bound = listen.with_port(sock.getsockname()[1])
    supervisor: SidecarSupervisor | None = None  # watches (and, unless told not to, starts) the sidecar
    previous = signal.signal(signal.SIGTERM, _stop_now)
    try:
        supervisor = SidecarSupervisor(settings, spawning=not args.no_spawn_sidecar)
        if supervisor.start(CHILD_START_WAIT_S) is not Presence.SERVING:
            log.warning("the sidecar at %s is not serving yet: searches fail open until it is", settings.sidecar)
        print(
            f"shoprank front door on http://{bound}/ ({products} products, {service.engine.name}, "
            f"sidecar {settings.sidecar})",
            flush=True,
        )
        signal.signal(signal.SIGTERM, previous)
        serve_in_foreground(create_app(service), sock)
    except _TerminatedError:
        log.info("SIGTERM while starting: stopping")
    finally:
        # A second SIGTERM must not cut the cleanup short (the child would be orphaned).
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sock.close()
        client.close()
        if supervisor is not None:
            supervisor.stop(settings.drain_seconds + 5)  # the child drains for up to drain_seconds
        signal.signal(signal.SIGTERM, previous)
    return 0
