"""`shoprank bench frontdoor`: a bounded loopback load test of the HTTP front door.

Starts a CPU sidecar and `shoprank serve` as child processes on 127.0.0.1 (free ports), over
the index and models already in --data-dir, then, at each concurrency, sends real shop
queries (ESCI judgment queries, then WANDS queries) from closed-loop client threads:
first the first-stage-only path (`rerank=false`, the baseline) and then the full path
(first stage → sidecar rerank → diversify → page), each bounded by a request count and a
time cap. The ranked-window cache is off so every request does the full work. A last phase
kills the sidecar (SIGKILL) part-way through a load and counts status codes and fail-opens:
the front door must answer every request with 200. Before each row the bench waits until the
sidecar has finished the work of callers that gave up at their deadline, so one row's leftovers
do not slow the next.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks.hardware import hardware
from shoprank.errors import MissingFileError, NotSetUpError, UserInputError
from shoprank.settings import REPO_ROOT, Settings
from shoprank.vocabulary import DIVERSITY_METHODS
from sidecar.process import SidecarProcess, child_environment, stop_process

SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@dataclass
class Level:
    """What one path did at one concurrency."""

    path: str
    concurrency: int
    requests: int = 0
    ok: int = 0
    other_status: dict[str, int] = field(default_factory=dict)
    fail_open: int = 0
    seconds: float = 0.0
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    mean_ms: float = math.nan
    throughput_rps: float = 0.0
    server_total_p50_ms: float = math.nan
    sidecar_inference_p50_ms: float = math.nan
    stopped_by_time_cap: bool = False


def load_queries(shared_data: Path) -> list[str]:
    """ESCI judgment queries, then WANDS queries; each once, in file order."""
    queries: list[str] = []
    judgments = shared_data / "esci" / "judgments.csv"
    wands = shared_data / "wands" / "query.csv"
    if judgments.is_file():
        with judgments.open(newline="", encoding="utf-8") as handle:
            queries.extend(row["query"] for row in csv.DictReader(handle))
    if wands.is_file():
        with wands.open(newline="", encoding="utf-8") as handle:
            queries.extend(row["query"] for row in csv.DictReader(handle, delimiter="\t"))
    unique = list(dict.fromkeys(q.strip() for q in queries if q.strip()))
    if not unique:
        raise MissingFileError(f"no queries in {judgments} or {wands}: pass --shared-data DIR")
    return unique


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile, NaN for no values."""
    return float(np.percentile(values, q)) if values else math.nan


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Load:
    """Closed-loop clients: each thread sends its next query as soon as its last one answered."""

    def __init__(self, url: str, queries: list[str], params: dict[str, Any], timeout_s: float) -> None:
        self.url = url
        self.queries = queries
        self.params = params
        self.timeout_s = timeout_s
        self._next = 0
        self._lock = threading.Lock()

    def _take(self, limit: int, stop_at: float) -> int | None:
        with self._lock:
            if self._next >= limit or time.monotonic() >= stop_at:
                return None
            self._next += 1
            return self._next - 1

    def run(
        self,
        path: str,
        concurrency: int,
        requests: int,
        max_seconds: float,
        offset: int = 0,
        after: tuple[int, Callable[[], None]] | None = None,
    ) -> Level:
        """Send up to `requests` searches from `concurrency` threads within max_seconds; `after` = (n, action)
        runs action (in its own thread) once n requests have been answered."""
        level = Level(path=path, concurrency=concurrency)
        latencies: list[float] = []
        server_total: list[float] = []
        inference: list[float] = []
        self._next = 0
        started = time.monotonic()
        stop_at = started + max_seconds

        def client() -> None:
            with httpx.Client(timeout=self.timeout_s) as http:
                while (n := self._take(requests, stop_at)) is not None:
                    query = self.queries[(offset + n) % len(self.queries)]
                    sent = time.perf_counter()
                    try:
                        response = http.get(self.url, params={"q": query, **self.params})
                        status = str(response.status_code)
                        body = response.json() if response.status_code == 200 else {}
                    except httpx.HTTPError as error:
                        status, body = type(error).__name__, {}
                    elapsed = (time.perf_counter() - sent) * 1e3
                    with self._lock:
                        level.requests += 1
                        if after is not None and level.requests == after[0]:
                            threading.Thread(target=after[1], name="load-action").start()
                        if status == "200":
                            level.ok += 1
                            latencies.append(elapsed)
                            level.fail_open += bool(body.get("fail_open"))
                            timings = body.get("timings", {})
                            server_total.append(float(timings.get("total_ms", math.nan)))
                            if "sidecar_inference_ms" in timings:
                                inference.append(float(timings["sidecar_inference_ms"]))
                        else:
                            level.other_status[status] = level.other_status.get(status, 0) + 1

        threads = [threading.Thread(target=client, name=f"load-{i}") for i in range(concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        level.seconds = time.monotonic() - started
        level.stopped_by_time_cap = level.requests < requests
        level.p50_ms, level.p99_ms = percentile(latencies, 50), percentile(latencies, 99)
        level.mean_ms = float(np.mean(latencies)) if latencies else math.nan
        level.throughput_rps = level.ok / level.seconds if level.seconds else 0.0
        level.server_total_p50_ms = percentile(server_total, 50)
        level.sidecar_inference_p50_ms = percentile(inference, 50)
        return level


class Stack:
    """The sidecar and the front door as child processes on loopback."""

    def __init__(self, settings: Settings) -> None:
        self.sidecar_address = f"127.0.0.1:{free_port()}"
        self.http_address = f"127.0.0.1:{free_port()}"
        configured = settings.model_copy(
            update={
                "sidecar": self.sidecar_address,
                "http_listen": self.http_address,
                "device": "cpu",
                "search_cache_entries": 0,  # every request does the whole work
            }
        )
        env = child_environment(configured)
        env.setdefault("LANCE_LOG", "error")
        self.sidecar = SidecarProcess(configured, listen=self.sidecar_address, env={"LANCE_LOG": env["LANCE_LOG"]})
        self.frontdoor = subprocess.Popen(
            [sys.executable, "-m", "shoprank", "serve", "--no-spawn-sidecar"], env=env, stdout=subprocess.DEVNULL
        )
        self.url = f"http://{self.http_address}"

    def wait_ready(self, timeout_s: float) -> None:
        """Until the sidecar is SERVING and the front door answers /healthz."""
        from sidecar.client import RerankClient

        client = RerankClient(self.sidecar_address, 1000)
        try:
            if not client.wait_until_serving(timeout_s):
                raise RuntimeError(f"the sidecar at {self.sidecar_address} did not become SERVING in {timeout_s:.0f} s")
        finally:
            client.close()
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.frontdoor.poll() is not None:
                raise NotSetUpError("the front door exited: is anything indexed in --data-dir? (`shoprank index`)")
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the front door at {self.url} did not answer in {timeout_s:.0f} s")

    def wait_sidecar_idle(self, timeout_s: float = 120.0) -> float:
        """Until the sidecar stops burning CPU on work whose callers gave up (a row's leftovers must not
        slow the next row); returns the seconds waited. Linux only (/proc); elsewhere returns at once."""
        stat = Path(f"/proc/{self.sidecar.pid}/stat")
        started = time.monotonic()
        ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

        def cpu_s() -> float:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime

        while stat.exists() and time.monotonic() - started < timeout_s:
            before = cpu_s()
            time.sleep(0.5)
            if cpu_s() - before < 0.05:  # under 10% of a core
                break
        return time.monotonic() - started

    def kill_sidecar(self) -> None:
        """SIGKILL: no drain, as a crash."""
        self.sidecar.kill()

    def stop(self) -> None:
        """Stop both children (terminate, then kill after 10 s)."""
        stop_process(self.frontdoor, 10)
        self.sidecar.stop(10)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `shoprank bench frontdoor`."""
    parser.add_argument("--concurrency", default="1,2,4,8", help="comma-separated client thread counts")
    parser.add_argument("--requests", type=int, default=48, help="most requests per path and concurrency")
    parser.add_argument("--max-seconds", type=float, default=45.0, help="time cap per path and concurrency")
    parser.add_argument("--diversity", choices=DIVERSITY_METHODS, help="per-request diversity method")
    parser.add_argument("--shared-data", type=Path, default=SHARED_DATA, help="dir with esci/ and wands/ queries")
    parser.add_argument("--no-kill-phase", action="store_true", help="skip killing the sidecar under load at the end")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")


def _print_level(level: Level) -> None:
    other = ",".join(f"{k}:{v}" for k, v in sorted(level.other_status.items())) or "-"
    cap = " (time cap)" if level.stopped_by_time_cap else ""
    print(
        f"{level.path:12} {level.concurrency:>4} {level.requests:>5} {level.ok:>5} {other:>10} {level.fail_open:>9} "
        f"{level.p50_ms:9.1f} {level.p99_ms:9.1f} {level.throughput_rps:8.2f} {level.server_total_p50_ms:10.1f} "
        f"{level.sidecar_inference_p50_ms:10.1f}{cap}",
        flush=True,
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Start the stack, load it at each concurrency, print the table beside the first-stage baseline."""
    levels = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    if not levels or min(levels) < 1 or args.requests < 1 or args.max_seconds <= 0:
        raise UserInputError("--concurrency needs positive integers, --requests and --max-seconds positive values")
    queries = load_queries(args.shared_data)
    params: dict[str, Any] = {"page_size": settings.page_size}
    if args.diversity:
        params["diversity"] = args.diversity
    machine = hardware()
    print(
        f"front door load: {len(queries)} queries (ESCI + WANDS), window {settings.rerank_window}, page "
        f"{settings.page_size}, deadline {settings.sidecar_deadline_ms} ms, engine {settings.engine} at "
        f"{settings.data_dir}, CPU sidecar, cache off; at most {args.requests} requests / {args.max_seconds:.0f} s "
        "per row"
    )
    print(f"hardware: {machine['cpu']}, {machine['cores']} cores, onnxruntime {machine['onnxruntime']}", flush=True)
    stack = Stack(settings)
    rows: list[Level] = []
    kill: dict[str, Any] = {}
    try:
        stack.wait_ready(timeout_s=180.0)
        load = Load(stack.url + "/api/search", queries, params, timeout_s=settings.sidecar_deadline_ms / 1e3 + 30)
        # Warm-up outside the figures: first requests pay lazy imports and session set-up.
        load.run("warm-up", 1, 3, 60.0, offset=len(queries) - 3)
        header = (
            f"{'path':12} {'conc':>4} {'sent':>5} {'200':>5} {'other':>10} {'fail-open':>9} {'p50 ms':>9} "
            f"{'p99 ms':>9} {'req/s':>8} {'srv p50 ms':>10} {'infer p50':>10}"
        )
        print(header)
        print("-" * len(header), flush=True)
        offset = 0
        for concurrency in levels:
            for path, extra in (("first-stage", {"rerank": "false"}), ("reranked", {"rerank": "true"})):
                stack.wait_sidecar_idle()
                load.params = {**params, **extra}
                level = load.run(path, concurrency, args.requests, args.max_seconds, offset)
                rows.append(level)
                _print_level(level)
            offset += args.requests  # fresh queries at each concurrency
        if not args.no_kill_phase:
            stack.wait_sidecar_idle()
            kill = _kill_phase(stack, load, params, max(levels), args, offset)
    finally:
        stack.stop()
    if args.out is not None:
        report = {
            "benchmark": "frontdoor",
            "inputs": {
                "queries": len(queries),
                "window": settings.rerank_window,
                "page_size": settings.page_size,
                "deadline_ms": settings.sidecar_deadline_ms,
                "engine": settings.engine,
                "data_dir": str(settings.data_dir),
                "requests": args.requests,
                "max_seconds": args.max_seconds,
                "diversity": args.diversity,
            },
            "hardware": machine,
            "rows": [asdict(row) for row in rows],
            "kill_phase": kill,
        }
        args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    failures = sum(sum(row.other_status.values()) for row in rows) + int(kill.get("non_200", 0))
    return 1 if failures else 0


def _kill_phase(
    stack: Stack, load: Load, params: dict[str, Any], concurrency: int, args: argparse.Namespace, offset: int
) -> dict[str, Any]:
    """Kill the sidecar a third of the way into a load; every request must still be answered 200."""
    load.params = {**params, "rerank": "true"}
    kill_at = max(1, args.requests // 3)
    level = load.run(
        "sidecar-kill", concurrency, args.requests, args.max_seconds, offset, (kill_at, stack.kill_sidecar)
    )
    _print_level(level)
    non_200 = sum(level.other_status.values())
    print(
        f"sidecar SIGKILLed after {kill_at} answers: {level.ok} of {level.requests} answered 200, "
        f"{level.fail_open} failed open, {non_200} other",
        flush=True,
    )
    return {**asdict(level), "killed_after_requests": kill_at, "non_200": non_200}
