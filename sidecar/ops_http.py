"""The sidecar's operations endpoint over HTTP: Prometheus metrics and the model reload admin call.

    GET  /metrics     Prometheus text exposition (sidecar.metrics.REGISTRY)
    POST /-/reload    reload the model from the models directory; 200 when loaded, 409 when refused

It binds settings.metrics_listen (loopback by default): the reload call is an admin action, so
expose that address only to operators.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shoprank.errors import NotSetUpError
from shoprank.listen import parse_listen
from sidecar.metrics import REGISTRY
from sidecar.reload import ReloadResult

log = logging.getLogger(__name__)


class _IPv6HTTPServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class OpsEndpoint:
    """A small threaded HTTP server on its own daemon thread."""

    def __init__(self, listen: str, reload: Callable[[], ReloadResult]) -> None:
        handler = _handler_class(reload)
        try:
            address = parse_listen(listen, "metrics_listen")
            server_class = _IPv6HTTPServer if address.is_ipv6 else ThreadingHTTPServer
            self._server = server_class((address.host, address.port), handler)
        except (OSError, ValueError) as error:
            raise NotSetUpError(
                f"cannot serve metrics on {listen!r} ({error}); pick a free --metrics-listen or set it empty"
            ) from error
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="ops-http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()


def _handler_class(reload: Callable[[], ReloadResult]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] == "/metrics":
                self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
            else:
                self._json(404, {"error": "not found: GET /metrics or POST /-/reload"})

        def do_POST(self) -> None:
            if self.path != "/-/reload":
                self._json(404, {"error": "not found: GET /metrics or POST /-/reload"})
                return
            result = reload()
            self._json(200 if result.loaded else 409, result.as_dict())

        def _json(self, code: int, body: dict[str, Any]) -> None:
            self._send(code, json.dumps(body).encode(), "application/json")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("ops http: %s", format % args)

    return Handler
