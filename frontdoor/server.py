"""Running the front door's HTTP app under uvicorn: in the foreground (`shoprank serve`) or in a
background thread on a port the OS picks (tests, the load benchmark)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI


def split_listen(address: str) -> tuple[str, int]:
    """'host:port' (or '[v6]:port') as a (host, port) pair uvicorn accepts."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address {address!r} must be HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]") or "127.0.0.1", int(port)


@dataclass
class BackgroundServer:
    """A uvicorn server serving in a thread; `url` is where it answers."""

    server: uvicorn.Server
    thread: threading.Thread
    url: str

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop accepting, finish in-flight requests, join the thread."""
        self.server.should_exit = True
        self.thread.join(timeout_s)


def start_in_background(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> BackgroundServer:
    """Serve app on host:port (0: a free port) in a daemon thread; returns once it accepts connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="frontdoor-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            with contextlib.suppress(OSError):
                sock.close()
            raise RuntimeError(f"the front door did not start on {host}:{bound}")
        time.sleep(0.01)
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    return BackgroundServer(server, thread, f"http://{shown}:{bound}")
