"""`shoprank serve`: the HTTP search front door, with a sidecar child process when none is running."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from typing import Any

from shoprank.cli.common import add_command
from shoprank.settings import Settings

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


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until interrupted; the spawned sidecar (if any) is stopped on exit."""
    import uvicorn

    from frontdoor.http import create_app
    from frontdoor.wiring import build_search_service
    from sidecar.client import RerankClient

    client = RerankClient.from_settings(settings)
    child: subprocess.Popen[bytes] | None = None
    if not args.no_spawn_sidecar and not client.wait_until_serving(timeout_s=1.0):
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shoprank",
                "--data-dir",
                str(settings.data_dir),
                "sidecar",
                "--listen",
                settings.sidecar,
                "--device",
                settings.device,
            ],
        )
        if not client.wait_until_serving(timeout_s=120.0):
            log.warning("the sidecar at %s is not serving yet: searches fail open until it is", settings.sidecar)
    host, _, port = settings.http_listen.rpartition(":")
    print(f"shoprank front door on http://{host}:{port}/ (sidecar {settings.sidecar})", flush=True)
    try:
        uvicorn.run(create_app(build_search_service(settings, client)), host=host, port=int(port), log_level="warning")
    finally:
        if child is not None:
            child.terminate()
            child.wait(timeout=10)
    return 0
