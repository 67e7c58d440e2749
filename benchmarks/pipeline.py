"""`shoprank bench pipeline`: `_search` through OpenSearch without and with the shoprank plugin's
pipeline, beside the Python front door, on the same queries and the same index, with the hardware.

Unless --opensearch-url names a cluster that has the plugin, it starts a local node
(engines/opensearch_node.py) in a temporary home and indexes the first --products products of the
ESCI catalogue with the real bi-encoder of --data-dir (its version recorded in the index). A CPU
sidecar (Embed and Rerank) and the front door run as child processes over that index. At each
concurrency, closed-loop client threads send the ESCI + WANDS queries along each path:

- first-stage: the shop box's hybrid `_search` with a client-side query vector (embedded before the
  clock starts) through the alias's hybrid pipeline: what a shop runs without the plugin (baseline);
- plugin-w100, plugin-w30: the same body with the vector left out (text only) through the pipeline
  `shoprank opensearch setup --rerank-pipeline` installs (shoprank_embed, the fusion, shoprank_rerank)
  at window 100 and 30;
- frontdoor: GET /api/search of the Python front door (hybrid, reranked, window --rerank-window).

Rows are bounded by a request count and a time cap. On a shared machine the figures drift with
the load; the baseline is measured in the same run for that reason.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks.frontdoor import SHARED_DATA, Stack, free_port, load_queries, percentile
from benchmarks.hardware import hardware
from shoprank.errors import UserInputError
from shoprank.settings import REPO_ROOT, Settings

ESCI_CATALOGUE = SHARED_DATA / "esci" / "products.ndjson"
ALIAS = "bench-pipeline"
WINDOWS = (100, 30)
WARM_UP_REQUESTS = 3


@dataclass
class Row:
    """What one path did at one concurrency."""

    path: str
    concurrency: int
    requests: int = 0
    ok: int = 0
    other_status: dict[str, int] = field(default_factory=dict)
    fail_open: int = 0
    fail_open_reasons: dict[str, int] = field(default_factory=dict)  # by kind: "embed:unavailable", "rerank:overloaded"
    seconds: float = 0.0
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    mean_ms: float = math.nan
    throughput_rps: float = 0.0
    stopped_by_time_cap: bool = False


# One request: (http client, query index) -> (status, why it failed open or None)
Send = Callable[[httpx.Client, int], tuple[str, str | None]]


def closed_loop(path: str, send: Send, concurrency: int, requests: int, max_seconds: float, offset: int) -> Row:
    """Up to `requests` requests from `concurrency` threads, each sending its next as soon as its last answered."""
    row = Row(path=path, concurrency=concurrency)
    latencies: list[float] = []
    lock = threading.Lock()
    taken = [0]
    started = time.monotonic()
    stop_at = started + max_seconds

    def client() -> None:
        with httpx.Client(timeout=60.0) as http:
            while True:
                with lock:
                    if taken[0] >= requests or time.monotonic() >= stop_at:
                        return
                    n = taken[0]
                    taken[0] += 1
                sent = time.perf_counter()
                try:
                    status, reason = send(http, offset + n)
                except httpx.HTTPError as error:
                    status, reason = type(error).__name__, None
                elapsed = (time.perf_counter() - sent) * 1e3
                with lock:
                    row.requests += 1
                    if status == "200":
                        row.ok += 1
                        latencies.append(elapsed)
                        if reason is not None:
                            row.fail_open += 1
                            row.fail_open_reasons[reason] = row.fail_open_reasons.get(reason, 0) + 1
                    else:
                        row.other_status[status] = row.other_status.get(status, 0) + 1

    threads = [threading.Thread(target=client, name=f"bench-{i}") for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    row.seconds = time.monotonic() - started
    row.stopped_by_time_cap = row.requests < requests
    row.p50_ms, row.p99_ms = percentile(latencies, 50), percentile(latencies, 99)
    row.mean_ms = float(np.mean(latencies)) if latencies else math.nan
    row.throughput_rps = row.ok / row.seconds if row.seconds else 0.0
    return row


def catalogue_slice(source: Path, products: int, out: Path) -> Path:
    """The first `products` documents of a bulk NDJSON catalogue (action + source line pairs)."""
    with source.open(encoding="utf-8") as handle, out.open("w", encoding="utf-8") as target:
        for number, line in enumerate(handle):
            if number >= 2 * products:
                break
            target.write(line)
    return out


@contextmanager
def cluster(settings: Settings, home: Path, heap: str) -> Iterator[str]:
    """settings.opensearch_url, or a local node (with the plugin) started in `home` and stopped afterwards."""
    if settings.opensearch_url:
        yield settings.opensearch_url
        return
    from engines.opensearch_node import LocalNode, resolve

    build = resolve(REPO_ROOT / "opensearch" / "node")
    with LocalNode(build, home, http_port=free_port(), heap=heap) as node:
        node.start()
        yield node.url


def index_catalogue(settings: Settings, catalogue: Path) -> int:
    """Setup's assets, then a full index of `catalogue` with the configured bi-encoder; the documents indexed."""
    from engines.opensearch import OpenSearchEngine
    from engines.opensearch_setup import apply_setup
    from indexer.dead_letter import DeadLetter
    from indexer.pipeline import Indexer
    from shoprank.bi_encoder import BiEncoder

    engine = OpenSearchEngine.from_settings(settings)
    apply_setup(engine.client, settings.opensearch_dir, settings.index_name, settings.hybrid_weight_knn)
    report = Indexer(engine, BiEncoder.from_settings(settings), DeadLetter(None)).full(catalogue)
    return int(report.indexed)


def put_plugin_pipeline(settings: Settings, url: str, name: str, sidecar: str, window: int) -> None:
    """The pipeline `opensearch setup --rerank-pipeline` installs, at this window, without UBI writes."""
    from engines.opensearch_rerank import RerankPipeline, rerank_pipeline_body

    pipeline = RerankPipeline(
        name, (sidecar,), settings.sidecar_deadline_ms, window, embed_deadline_ms=settings.embed_deadline_ms
    )
    body = rerank_pipeline_body(
        settings.opensearch_dir, pipeline, settings.opensearch_hybrid_technique, settings.hybrid_weight_knn
    )
    httpx.put(f"{url}/_search/pipeline/{name}", json=body, timeout=30.0).raise_for_status()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `shoprank bench pipeline`."""
    parser.add_argument("--concurrency", default="1,4", help="comma-separated client thread counts")
    parser.add_argument("--requests", type=int, default=60, help="most requests per path and concurrency")
    parser.add_argument("--max-seconds", type=float, default=40.0, help="time cap per path and concurrency")
    parser.add_argument("--products", type=int, default=3000, help="ESCI products to index into the local node")
    parser.add_argument("--catalogue", type=Path, default=ESCI_CATALOGUE, help="bulk NDJSON catalogue to index")
    parser.add_argument("--shared-data", type=Path, default=SHARED_DATA, help="dir with esci/ and wands/ queries")
    parser.add_argument("--heap", default="1g", help="JVM heap of the local node")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")


def _kind(reason: object) -> str:
    """The kind of a fail-open reason ("unavailable: sidecar ... cannot be reached" → "unavailable")."""
    return str(reason).split(":", 1)[0] if reason else "unknown"


def _print_row(row: Row) -> None:
    other = ",".join(f"{k}:{v}" for k, v in sorted(row.other_status.items())) or "-"
    cap = " (time cap)" if row.stopped_by_time_cap else ""
    print(
        f"{row.path:12} {row.concurrency:>4} {row.requests:>5} {row.ok:>5} {other:>10} {row.fail_open:>9} "
        f"{row.p50_ms:9.1f} {row.p99_ms:9.1f} {row.throughput_rps:8.2f}{cap} "
        + " ".join(f"{k}={v}" for k, v in sorted(row.fail_open_reasons.items())),
        flush=True,
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Start node, sidecar and front door; load each path at each concurrency; print beside the baseline."""
    levels = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    if not levels or min(levels) < 1 or args.requests < 1 or args.max_seconds <= 0 or args.products < 1:
        raise UserInputError("--concurrency, --requests, --max-seconds and --products need positive values")
    queries = load_queries(args.shared_data)
    machine = hardware()
    print(f"hardware: {machine['cpu']}, {machine['cores']} cores, onnxruntime {machine['onnxruntime']}", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="shoprank-bench-pipeline-") as tmp,
        cluster(settings, Path(tmp) / "node", args.heap) as url,
    ):
        configured = settings.model_copy(update={"engine": "opensearch", "opensearch_url": url, "index_name": ALIAS})
        indexed = index_catalogue(configured, catalogue_slice(args.catalogue, args.products, Path(tmp) / "cat.ndjson"))
        where = "--opensearch-url" if settings.opensearch_url else "a local node"
        report = _measure(configured, url, queries, levels, args, indexed, {**machine, "cluster": where})
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    failures = sum(sum(row["other_status"].values()) for row in report["rows"])
    return 1 if failures else 0


def _measure(
    settings: Settings,
    url: str,
    queries: list[str],
    levels: list[int],
    args: argparse.Namespace,
    indexed: int,
    machine: dict[str, Any],
) -> dict[str, Any]:
    from engines.base import RetrievalQuery
    from engines.opensearch_assets import pipeline_name
    from engines.opensearch_query import search_body
    from shoprank.bi_encoder import BiEncoder

    page = settings.page_size
    encoder = BiEncoder.from_settings(settings)
    vectors = encoder.encode(queries)  # the baseline's client-side vectors, made before the clock starts
    bodies = [
        search_body(RetrievalQuery(text=q, vector=v, mode="hybrid", size=page))
        for q, v in zip(queries, vectors, strict=True)
    ]
    text_only = []
    for body in bodies:
        plain = copy.deepcopy(body)
        plain["query"]["hybrid"]["queries"][1]["knn"]["vector"]["vector"] = [0.0]  # shoprank_embed fills it
        text_only.append(plain)
    hybrid = pipeline_name(settings.index_name, settings.opensearch_hybrid_technique)
    stack = Stack(settings)
    rows: list[Row] = []
    try:
        stack.wait_ready(timeout_s=180.0)
        for window in WINDOWS:
            put_plugin_pipeline(settings, url, f"{ALIAS}-w{window}", stack.sidecar_address, window)
        search_url = f"{url}/{settings.index_name}/_search"

        def first_stage(http: httpx.Client, n: int) -> tuple[str, str | None]:
            answer = http.post(search_url, params={"search_pipeline": hybrid}, json=bodies[n % len(bodies)])
            return str(answer.status_code), None

        def plugin(window: int) -> Send:
            def send(http: httpx.Client, n: int) -> tuple[str, str | None]:
                params = {"search_pipeline": f"{ALIAS}-w{window}"}
                answer = http.post(search_url, params=params, json=text_only[n % len(text_only)])
                if answer.status_code != 200:
                    return str(answer.status_code), None
                ext = answer.json().get("ext", {}).get("shoprank", {})
                embed = ext.get("embed") or {}
                if not embed.get("embedded", False):
                    return "200", "embed:" + _kind(embed.get("fail_open_reason"))
                if not ext.get("reranked"):
                    return "200", "rerank:" + _kind(ext.get("fail_open_reason"))
                return "200", None

            return send

        def frontdoor(http: httpx.Client, n: int) -> tuple[str, str | None]:
            answer = http.get(f"{stack.url}/api/search", params={"q": queries[n % len(queries)], "page_size": page})
            if answer.status_code != 200:
                return str(answer.status_code), None
            body = answer.json()
            return "200", ("rerank:" + _kind(body.get("fail_open_reason"))) if body.get("fail_open") else None

        paths: list[tuple[str, Send]] = [("first-stage", first_stage)]
        paths += [(f"plugin-w{w}", plugin(w)) for w in WINDOWS]
        paths.append(("frontdoor", frontdoor))
        for name, send in paths:  # warm-up outside the figures: lazy set-up, JIT, caches of the node
            closed_loop(name, send, 1, WARM_UP_REQUESTS, 60.0, len(queries) - WARM_UP_REQUESTS)
        header = (
            f"{'path':12} {'conc':>4} {'sent':>5} {'200':>5} {'other':>10} {'fail-open':>9} {'p50 ms':>9} "
            f"{'p99 ms':>9} {'req/s':>8}"
        )
        print(
            f"_search on {url} ({indexed} ESCI products, alias {settings.index_name}), page {page}, sidecar deadline "
            f"{settings.sidecar_deadline_ms} ms, embed deadline {settings.embed_deadline_ms} ms, CPU sidecar, "
            f"front door window {settings.rerank_window}; at most {args.requests} requests / {args.max_seconds:.0f} s "
            "per row"
        )
        print(header)
        print("-" * len(header), flush=True)
        offset = 0
        for concurrency in levels:
            for name, send in paths:
                stack.wait_sidecar_idle()
                row = closed_loop(name, send, concurrency, args.requests, args.max_seconds, offset)
                rows.append(row)
                _print_row(row)
            offset += args.requests  # fresh queries at each concurrency, the same ones on every path
    finally:
        stack.stop()
    return {
        "benchmark": "pipeline",
        "inputs": {
            "queries": len(queries),
            "products": indexed,
            "page_size": page,
            "windows": list(WINDOWS),
            "frontdoor_window": settings.rerank_window,
            "deadline_ms": settings.sidecar_deadline_ms,
            "embed_deadline_ms": settings.embed_deadline_ms,
            "requests": args.requests,
            "max_seconds": args.max_seconds,
            "concurrency": levels,
        },
        "hardware": machine,
        "rows": [asdict(row) for row in rows],
    }
