"""`shoprank serve` as a process, as systemd/Docker/Kubernetes run it: its sidecar child stops with
it on SIGTERM, a killed child is reaped and replaced, and it never starts a sidecar where
something already listens (a TLS sidecar it cannot talk to included)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from shoprank.settings import REPO_ROOT, Settings
from sidecar.client import RerankClient
from sidecar.model_loading import load_service
from sidecar.rerank_service import RerankService
from sidecar.server import start_sidecar
from sidecar.tls import channel_credentials
from tests.frontdoor.conftest import stack_settings
from tests.sidecar_harness import request
from tests.tls_certs import certificates

pytestmark = pytest.mark.e2e

START_TIMEOUT_S = 120.0


def free_address() -> str:
    """A loopback address nothing listens on (the port is released for the child to take)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def children_of(pid: int) -> list[int]:
    """Process ids whose parent is pid (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def state_of(pid: int) -> str | None:
    """The process's state letter (Z: zombie), None once it is gone."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


class Serve:
    """`shoprank serve` on a free HTTP port; `url` is what it printed."""

    def __init__(self, data_dir: Path, sidecar: str, *extra: str, http_listen: str = "") -> None:
        env = {
            **os.environ,
            "SHOPRANK_DATA_DIR": str(data_dir),
            "SHOPRANK_SIDECAR": sidecar,
            "SHOPRANK_METRICS_LISTEN": "",  # the child's metrics endpoint would want the fixed default port
            "SHOPRANK_SEARCH_CACHE_ENTRIES": "0",  # every search asks the sidecar
            "SHOPRANK_DRAIN_SECONDS": "2",
            "PYTHONUNBUFFERED": "1",
        }
        http = http_listen or free_address()
        command = [sys.executable, "-m", "shoprank", "-v", "serve", "--http-listen", http, *extra]
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.logs: list[str] = []
        self._seen_children: set[int] = set()
        threading.Thread(target=lambda: self.logs.extend(self.process.stderr or []), daemon=True).start()
        assert self.process.stdout is not None
        try:
            self.url = self._printed_url(self.process.stdout)
            wait_for(self._answers, 30, "the front door never answered /healthz")
        except BaseException:
            self.stop()
            raise

    def _printed_url(self, stdout: IO[str]) -> str:
        seen: list[str] = []
        while True:  # printed once the sidecar is SERVING (or given up on); the child prints too
            line = stdout.readline()
            assert line, (seen, self.logs[-10:])  # serve exited
            seen.append(line)
            found = re.search(r"front door on (http://\S+)/ ", line)
            if found:
                return found.group(1)

    def _answers(self) -> bool:
        try:
            return httpx.get(self.url + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def search(self) -> dict[str, Any]:
        """One search; the front door answers 200 whether or not it could rerank."""
        reply = httpx.get(self.url + "/api/search", params={"q": "red coffee mug"}, timeout=30)
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body

    def children(self) -> list[int]:
        """Its child processes now (remembered: stop() kills them even once orphaned)."""
        found = children_of(self.process.pid)
        self._seen_children.update(found)
        return found

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL) and kill every child it had: a failed test leaves nothing behind."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        for pid in self._seen_children | set(children_of(self.process.pid)):
            if state_of(pid) not in (None, "Z"):
                os.kill(pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)


@contextmanager
def serving(data_dir: Path, sidecar: str, *extra: str, http_listen: str = "") -> Iterator[Serve]:
    serve = Serve(data_dir, sidecar, *extra, http_listen=http_listen)
    try:
        yield serve
    finally:
        serve.stop()


def wait_for(condition: Any, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < end, what
        time.sleep(0.1)


def test_sigterm_stops_serve_and_its_sidecar_child_and_exits_0(stack_dir: Path) -> None:
    with serving(stack_dir, free_address()) as serve:
        assert serve.search()["reranked"]
        children = serve.children()
        assert len(children) == 1, children
        serve.process.send_signal(signal.SIGTERM)
        assert serve.process.wait(30) == 0, serve.logs[-10:]
        wait_for(lambda: state_of(children[0]) is None, 30, "the sidecar child outlived serve")


def test_a_sidecar_child_stops_itself_when_serve_is_killed_outright(stack_dir: Path) -> None:
    with serving(stack_dir, free_address()) as serve:
        (child,) = serve.children()
        serve.process.kill()
        serve.process.wait(30)
        # Re-parented, it notices and drains (its new parent may leave it a zombie: it has exited).
        wait_for(lambda: state_of(child) in (None, "Z"), 30, "the orphaned sidecar child kept serving")


def test_http_listen_without_a_host_prints_the_loopback_address_and_port_it_bound(stack_dir: Path) -> None:
    with serving(stack_dir, free_address(), "--no-spawn-sidecar", http_listen=":0") as serve:
        assert re.fullmatch(r"http://127\.0\.0\.1:[1-9]\d*", serve.url), serve.url
        assert serve.search()["results"]  # it answers there


def test_a_killed_sidecar_child_is_reaped_and_replaced(stack_dir: Path) -> None:
    with serving(stack_dir, free_address()) as serve:
        assert serve.search()["reranked"]
        (first,) = serve.children()
        os.kill(first, signal.SIGKILL)
        # Reaped: no zombie stays behind (state Z), and a new child is started in its place.
        wait_for(lambda: state_of(first) is None, 30, f"the killed child is left as {state_of(first)}")
        wait_for(lambda: serve.children(), 30, "no new sidecar child was started")
        wait_for(lambda: serve.search()["reranked"], START_TIMEOUT_S, "searches were never reranked again")
        assert any("exited with code -9" in line for line in serve.logs), serve.logs[-10:]


def test_a_sidecar_started_by_hand_is_used_and_none_is_spawned_beside_it(stack_dir: Path) -> None:
    address = free_address()
    with serving(stack_dir, address, "--no-spawn-sidecar") as serve:
        assert not serve.search()["reranked"]  # nothing there yet: fail open
        sidecar = start_sidecar(stack_settings(stack_dir, listen=address), background_load=False)
        try:
            wait_for(lambda: serve.search()["reranked"], 30, "the sidecar that came up was not used")
        finally:
            sidecar.shutdown(0)
        assert serve.children() == []


def test_a_sidecar_slow_to_become_serving_is_waited_for_not_doubled(stack_dir: Path) -> None:
    release = threading.Event()

    def gated(settings: Settings) -> RerankService:
        release.wait(60)
        return load_service(settings)

    address = free_address()
    sidecar = start_sidecar(stack_settings(stack_dir, listen=address), gated, background_load=True)
    try:
        with serving(stack_dir, address) as serve:
            assert not serve.search()["reranked"]  # NOT_SERVING yet: fail open
            time.sleep(1.5)  # a few supervision rounds
            assert serve.children() == []
            release.set()
            wait_for(lambda: serve.search()["reranked"], 30, "the sidecar was not used once SERVING")
            assert serve.children() == []
    finally:
        release.set()
        sidecar.shutdown(0)


def test_a_tls_sidecar_and_a_plaintext_front_door_fail_open_and_nothing_is_spawned(
    stack_dir: Path, tmp_path: Path
) -> None:
    certs = certificates(tmp_path)
    mutual = stack_settings(
        stack_dir,
        listen="127.0.0.1:0",
        tls_cert=certs["server"],
        tls_key=certs["server_key"],
        tls_client_ca=certs["ca"],
    )
    sidecar = start_sidecar(mutual, background_load=False)
    address = f"127.0.0.1:{sidecar.port}"
    try:
        with serving(stack_dir, address) as serve:
            assert serve.children() == []  # no plaintext sidecar on the TLS port
            replies = [serve.search() for _ in range(5)]
            assert not any(reply["reranked"] for reply in replies)  # fails open
            assert any("SHOPRANK_SIDECAR_TLS_CA" in line for line in serve.logs), serve.logs[-10:]
            time.sleep(1.5)  # a few supervision rounds: still nothing spawned
            assert serve.children() == []
        # The TLS sidecar still serves its mTLS clients, every call.
        with_cert = channel_credentials(certs["ca"], certs["client"], certs["client_key"])
        client = RerankClient(address, 10_000, with_cert)
        try:
            hits = [_Hit(i) for i in range(5)]
            assert all(client.rerank("towels", hits, 3).reranked for _ in range(20))
        finally:
            client.close()
    finally:
        sidecar.shutdown(0)


class _Hit:
    def __init__(self, i: int) -> None:
        candidate = request(5).candidates[i]
        self.id = candidate.id
        self.first_stage_score = candidate.first_stage_score
        self.product = candidate.product
        self.embedding = None
