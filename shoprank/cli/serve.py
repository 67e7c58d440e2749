"""`shoprank serve`: the HTTP search front door, with a sidecar child process when none is running."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from typing import Any

from pydantic import SecretStr

from shoprank.cli.common import add_command
from shoprank.settings import Settings, environment_value

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the `serve` command."""
    parser = add_command(subparsers, "serve", "serve the HTTP search API and demo page (starts a sidecar if needed)")
    parser.add_argument(
        "--no-spawn-sidecar",
        action="store_true",
        help="do not start a sidecar child process when none answers at --sidecar",
    )
    parser.set_defaults(run=run)


def child_environment(settings: Settings) -> dict[str, str]:
    """This process's environment plus every (non-secret) setting, so the child sidecar runs as configured."""
    env = dict(os.environ)
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None or isinstance(value, SecretStr):  # unset optional paths stay unset
            continue
        env[f"SHOPRANK_{name.upper()}"] = environment_value(value)
    env["SHOPRANK_LISTEN"] = settings.sidecar
    return env


def spawn_sidecar(settings: Settings) -> subprocess.Popen[bytes]:
    """Start `shoprank sidecar` listening where the front door calls it."""
    return subprocess.Popen([sys.executable, "-m", "shoprank", "sidecar"], env=child_environment(settings))


def stop_process(process: subprocess.Popen[Any], grace_s: float) -> None:
    """SIGTERM a child (the sidecar drains on it), wait up to grace_s, then SIGKILL; no-op when it has exited."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until interrupted; the spawned sidecar (if any) is stopped on exit."""
    import uvicorn

    from frontdoor.http import create_app
    from frontdoor.server import split_listen
    from frontdoor.wiring import build_search_service
    from sidecar.client import RerankClient

    host, port = split_listen(settings.http_listen)
    client = RerankClient.from_settings(settings)
    service = build_search_service(settings, client)
    products = service.engine.count()  # fails here, with what to do, when nothing is indexed
    child: subprocess.Popen[bytes] | None = None
    if not args.no_spawn_sidecar and not client.wait_until_serving(timeout_s=1.0):
        child = spawn_sidecar(settings)
        if not client.wait_until_serving(timeout_s=120.0):
            log.warning("the sidecar at %s is not serving yet: searches fail open until it is", settings.sidecar)
    print(
        f"shoprank front door on http://{settings.http_listen}/ ({products} products, {service.engine.name}, "
        f"sidecar {settings.sidecar})",
        flush=True,
    )
    try:
        uvicorn.run(create_app(service), host=host, port=port, log_level="warning")
    finally:
        client.close()
        if child is not None:
            stop_process(child, 10)
    return 0
