"""A tiny HTTP server on 127.0.0.1 (port 0) that answers every request the way a broken or hostile
OpenSearch would: an error status, an HTML page, a body that is not JSON or not a search answer,
or no answer at all. It records each request (method, path, whether credentials were sent)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _error(status: int, kind: str, reason: str) -> tuple[int, str, bytes]:
    body = {"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason}}
    return status, "application/json", json.dumps({**body, "status": status}).encode()


# mode -> (status, content type, body); "hang" never answers.
ANSWERS: dict[str, tuple[int, str, bytes]] = {
    "401": _error(401, "security_exception", "missing authentication credentials for REST request"),
    "403": _error(403, "security_exception", "no permissions for [indices:data/read/search]"),
    "429": _error(429, "rejected_execution_exception", "rejected execution of coordinating operation"),
    "500": _error(500, "null_pointer_exception", "something broke"),
    "503": _error(503, "no_shard_available_action_exception", "No shard available"),
    "html-200": (200, "text/html", b"<html><body><form>Please log in</form></body></html>"),
    "html-502": (502, "text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
    "non-json": (200, "application/json", b"{this is not json"),
    "wrong-shape": (200, "application/json", b"[1, 2, 3]"),
}
MODES = (*ANSWERS, "hang")


@dataclass
class Seen:
    method: str
    path: str
    authorized: bool


@dataclass
class MisbehavingCluster:
    """The server's state: how it answers now and what it was asked."""

    mode: str = "500"
    url: str = ""
    requests: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            handler.rfile.read(length)
        self.requests.append(Seen(handler.command, handler.path, "Authorization" in handler.headers))
        if self.mode == "hang":
            self.release.wait(60)  # held until the test ends: the client must give up on its own
            return
        status, content_type, body = ANSWERS[self.mode]
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def _handler(cluster: MisbehavingCluster) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            cluster.answer(self)

        def do_POST(self) -> None:
            cluster.answer(self)

        def do_PUT(self) -> None:
            cluster.answer(self)

        def do_DELETE(self) -> None:
            cluster.answer(self)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def misbehaving_cluster(mode: str = "500") -> Iterator[MisbehavingCluster]:
    """Serve a MisbehavingCluster on a free loopback port for the block; stops it after."""
    cluster = MisbehavingCluster(mode)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(cluster))
    server.daemon_threads = True
    cluster.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="misbehaving-cluster", daemon=True)
    thread.start()
    try:
        yield cluster
    finally:
        cluster.release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)
