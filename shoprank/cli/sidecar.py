"""`shoprank sidecar`: run the gRPC Reranker."""

from __future__ import annotations

import argparse
from typing import Any

from shoprank.cli.common import add_command
from shoprank.settings import Settings


def register(subparsers: Any) -> None:
    """Add the `sidecar` command."""
    parser = add_command(
        subparsers,
        "sidecar",
        "run the gRPC rerank sidecar (health, reflection, graceful drain)",
        ("general", "models", "ranking", "request_limits", "sidecar_server"),
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until interrupted."""
    from sidecar.server import run_sidecar

    run_sidecar(settings)
    return 0
