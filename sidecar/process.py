"""`shoprank sidecar` as a child process: the one way serve, the benchmarks and the tests start one.

The child is configured through its environment (every setting of the parent, secrets left
out: a sidecar never talks to OpenSearch), tells the address it bound in a ready file (port 0
works, any host form), is ready when gRPC health says SERVING, and stops on SIGTERM (it drains)
with SIGKILL after a grace period.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import grpc
from pydantic import SecretStr

from shoprank.errors import NotSetUpError
from shoprank.listen import ListenAddress, parse_listen
from shoprank.settings import REPO_ROOT, SECRET_SETTINGS, Settings, environment_value
from sidecar.ready_file import ReadyInfo, read_ready_file

WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1"}


def child_environment(settings: Settings) -> dict[str, str]:
    """This process's environment plus every (non-secret) setting, so a child runs as configured."""
    env = dict(os.environ)
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None or isinstance(value, SecretStr):  # unset optional paths stay unset
            continue
        env[f"SHOPRANK_{name.upper()}"] = environment_value(value)
    return env


def sidecar_environment(settings: Settings, listen: str) -> dict[str, str]:
    """child_environment for a sidecar on `listen`, without the settings that hold or point at secrets."""
    env = child_environment(settings)
    for name in SECRET_SETTINGS:
        env.pop(f"SHOPRANK_{name.upper()}", None)
    env["SHOPRANK_LISTEN"] = listen
    return env


def stop_process(process: subprocess.Popen[Any], grace_s: float) -> int:
    """SIGTERM a child, wait up to grace_s, then SIGKILL; always reaps it. Returns its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


class SidecarProcess:
    """A `shoprank sidecar` child listening on `listen` (default settings.listen; port 0: a free one).

    `options` go before the subcommand (e.g. "-v"); `env` is added to the child's environment
    last (a test may put a secret there on purpose).
    """

    def __init__(
        self,
        settings: Settings,
        listen: str | None = None,
        options: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        stdout: int | IO[Any] | None = None,
        stderr: int | IO[Any] | None = None,
    ) -> None:
        self.settings = settings
        self.requested = parse_listen(listen if listen is not None else settings.listen)
        # Empty until the child writes it; the child removes it when it exits, stop() in any case.
        handle, name = tempfile.mkstemp(prefix="shoprank-sidecar-", suffix=".json")
        os.close(handle)
        self._ready_file = Path(name)
        child_env = sidecar_environment(settings, str(self.requested))
        child_env["SHOPRANK_READY_FILE"] = str(self._ready_file)
        child_env.update(env or {})
        command = [sys.executable, "-m", "shoprank", *options, "sidecar"]
        self.process: subprocess.Popen[str] = subprocess.Popen(
            command, cwd=REPO_ROOT, env=child_env, stdout=stdout, stderr=stderr, text=True
        )
        self._bound: ListenAddress | None = None
        self.ready: ReadyInfo | None = None  # what the ready file said, once it did

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    def poll(self) -> int | None:
        """The exit code once it has exited (reaping it), else None."""
        return self.process.poll()

    def wait_bound(self, timeout_s: float = 60.0) -> ListenAddress:
        """The address the child bound, once its ready file says; RuntimeError when it exits first."""
        end = time.monotonic() + timeout_s
        while self._bound is None:
            info = read_ready_file(self._ready_file)
            if info is not None:
                self.ready, self._bound = info, info.address
                break
            code = self.process.poll()
            if code is not None:
                raise NotSetUpError(
                    f"the sidecar exited with code {code} before listening on {self.requested}; "
                    "run `shoprank sidecar` to see why"
                )
            if time.monotonic() > end:
                raise NotSetUpError(f"the sidecar did not listen on {self.requested} within {timeout_s:.0f} s")
            time.sleep(0.05)
        return self._bound

    @property
    def address(self) -> str:
        """Where a client on this host reaches it (a wildcard bind is dialled on loopback)."""
        bound = self.wait_bound()
        return str(ListenAddress(WILDCARD_HOSTS.get(bound.host, bound.host), bound.port))

    def wait_serving(
        self, timeout_s: float, credentials: grpc.ChannelCredentials | None = None, server_name: str = ""
    ) -> bool:
        """Until gRPC health says SERVING (True), the child exits or the timeout passes (False)."""
        from sidecar.client import RerankClient

        end = time.monotonic() + timeout_s
        try:
            self.wait_bound(timeout_s)
        except RuntimeError:
            return False
        client = RerankClient(self.address, 1000, credentials, server_name)
        try:
            while self.process.poll() is None:
                if client.wait_until_serving(min(1.0, max(0.0, end - time.monotonic()))):
                    return True
                if time.monotonic() >= end:
                    return False
            return False
        finally:
            client.close()

    def stop(self, grace_s: float = 10.0) -> int:
        """SIGTERM (the sidecar drains), SIGKILL after grace_s; returns the exit code."""
        try:
            return stop_process(self.process, grace_s)
        finally:
            self._ready_file.unlink(missing_ok=True)

    def kill(self) -> int:
        """SIGKILL, as a crash (no drain), and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        return self.stop()

    def __enter__(self) -> SidecarProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
