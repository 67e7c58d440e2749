"""The sidecar's ready file: where a started `shoprank sidecar` says, as JSON, the address it bound.

A supervisor that asked for port 0 learns the port from it without parsing log lines (which
any host form, IPv6 or a name, would break). Written once the gRPC port is bound, before the
model is loaded: readiness to serve is what gRPC health then reports.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from shoprank.listen import ListenAddress


@dataclass(frozen=True)
class ReadyInfo:
    """What the ready file holds: the bound gRPC address, the metrics port (None: off), the pid."""

    address: ListenAddress
    metrics_port: int | None
    pid: int


def write_ready_file(path: Path, address: ListenAddress, metrics_port: int | None) -> None:
    """Write the file atomically (a reader never sees half of it)."""
    body = {"host": address.host, "port": address.port, "metrics_port": metrics_port, "pid": os.getpid()}
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(body) + "\n", encoding="utf-8")
    partial.replace(path)


def read_ready_file(path: Path) -> ReadyInfo | None:
    """The file's content, or None while it is absent or empty (not written yet)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    if not text.strip():  # created empty by the supervisor, not written yet
        return None
    body = json.loads(text)
    return ReadyInfo(ListenAddress(str(body["host"]), int(body["port"])), body["metrics_port"], int(body["pid"]))
