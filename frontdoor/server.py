"""Running the front door's HTTP app under uvicorn: in the foreground (`shoprank serve`) or in a
background thread on a port the OS picks (tests, the load benchmark)."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from shoprank.errors import NotSetUpError


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (0: a free port), for uvicorn to serve on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise NotSetUpError(
            f"cannot serve HTTP on {host}:{port} ({error.strerror}); pick another --http-listen"
        ) from error
    # Listening now: connections made before uvicorn takes over wait in the backlog, not refused.
    sock.listen(2048)
    return sock


class ForegroundServer(uvicorn.Server):
    """uvicorn serving in the main thread until SIGINT/SIGTERM, then returning normally.

    uvicorn re-raises the signal after its graceful shutdown, which ends the process before the
    caller's cleanup runs (`shoprank serve` left its sidecar child running): here it does not.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Handle SIGINT/SIGTERM as uvicorn does (graceful exit), without re-raising them afterwards."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


def serve_in_foreground(app: FastAPI, sock: socket.socket) -> None:
    """Serve app on a bound socket until SIGINT/SIGTERM (in-flight requests finish)."""
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=10)
    ForegroundServer(config).run(sockets=[sock])


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
    sock = bind_socket(host, port)
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
