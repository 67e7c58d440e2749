"""`shoprank opensearch setup`: install the index template, hybrid search pipelines and the
shop-box search template on an OpenSearch cluster. `shoprank opensearch run`: a local
single-node OpenSearch from Maven Central jars (engines/opensearch_node.py)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from shoprank.cli.common import add_command, print_json
from shoprank.errors import UserInputError
from shoprank.settings import Settings


def register(subparsers: Any) -> None:
    """Add the `opensearch` command group."""
    parser = subparsers.add_parser(
        "opensearch", help="OpenSearch cluster tasks", description="OpenSearch cluster tasks", allow_abbrev=False
    )
    actions = parser.add_subparsers(dest="opensearch_command", required=True, metavar="ACTION")
    setup = add_command(
        actions,
        "setup",
        "install the index template, hybrid search pipelines and search template (idempotent)",
        ("general", "engine", "retrieval"),
    )
    setup.add_argument("--json", action="store_true", help="print what was installed as JSON")
    setup.add_argument(
        "--rerank-pipeline",
        nargs="?",
        const="shoprank",
        metavar="NAME",
        help="also install the shoprank plugin's rerank pipeline (default name: shoprank), pointing at --sidecar "
        "with --sidecar-deadline-ms and --rerank-window; the cluster needs the plugin (make plugin)",
    )
    setup.add_argument(
        "--rerank-targets",
        metavar="HOST:PORT[,HOST:PORT]",
        help="the sidecars the rerank pipeline calls, as OpenSearch's nodes reach them (default: --sidecar)",
    )
    setup.add_argument(
        "--default-pipeline",
        action="store_true",
        help="make the rerank pipeline the default of the alias's indices (index.search.default_pipeline)",
    )
    setup.set_defaults(run=run_setup)
    run = add_command(
        actions,
        "run",
        "run a local single-node OpenSearch (JDK 17+ and Maven; 127.0.0.1 only, no security plugin) until stopped",
        ("general",),
    )
    run.add_argument("--home", type=Path, help="node home (data, logs); default: DATA_DIR/opensearch-node")
    run.add_argument("--http-port", type=int, default=9200, help="HTTP port on 127.0.0.1 (default 9200)")
    run.add_argument("--heap", default="1g", help="JVM heap, e.g. 512m or 1g (default 1g)")
    run.set_defaults(run=run_node)


def run_node(args: argparse.Namespace, settings: Settings) -> int:
    """Resolve the pinned artifacts, start the node, print where it listens, stop it on SIGTERM/Ctrl-C."""
    from engines.opensearch_node import LocalNode, check_heap, resolve

    if not 0 < args.http_port < 65536:
        raise UserInputError(f"--http-port {args.http_port} is not a TCP port (1-65535)")
    check_heap(args.heap)
    home = args.home or settings.data_dir / "opensearch-node"
    build = resolve(settings.opensearch_dir / "node")
    node = LocalNode(build, home, http_port=args.http_port, heap=args.heap)

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        started = time.monotonic()
        node.start()
        print(
            f"listening on {node.url} (OpenSearch single node, healthy after {time.monotonic() - started:.0f}s; "
            f"home {node.home}, log {node.log_path}); stop with Ctrl-C",
            flush=True,
        )
        code = node.wait()
        print(f"the OpenSearch node exited with {code}:\n{node.log_tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopping the OpenSearch node", file=sys.stderr, flush=True)
        return 0
    finally:
        node.stop()
        signal.signal(signal.SIGTERM, previous)


def run_setup(args: argparse.Namespace, settings: Settings) -> int:
    """Apply the assets in settings.opensearch_dir to settings.opensearch_url."""
    from opensearchpy.exceptions import SerializationError, TransportError

    from engines.base import EngineError
    from engines.opensearch_client import client_from_settings, engine_error
    from engines.opensearch_rerank import RerankPipeline
    from engines.opensearch_setup import apply_setup

    if args.default_pipeline and not args.rerank_pipeline:
        raise UserInputError("--default-pipeline needs --rerank-pipeline [NAME]: it makes that pipeline the default")
    rerank = (
        RerankPipeline.from_settings(settings, args.rerank_pipeline, args.default_pipeline, args.rerank_targets)
        if args.rerank_pipeline
        else None
    )
    client = client_from_settings(settings)
    try:
        report = apply_setup(
            client,
            settings.opensearch_dir,
            settings.index_name,
            settings.hybrid_weight_knn,
            rerank=rerank,
            technique=settings.opensearch_hybrid_technique,
        )
        if rerank is not None and rerank.ubi_application is not None:
            from frontdoor.ubi_capture import OpenSearchSink
            from shoprank.ubi_log import EVENTS, QUERIES

            sink = OpenSearchSink(client)  # the plugin writes ubi_queries; events come from the shop's front-end
            for table in (QUERIES, EVENTS):
                sink.ensure(table)
    except (TransportError, SerializationError) as exc:  # refused, unreachable, or not OpenSearch's JSON
        error = engine_error(exc, settings.opensearch_url)
        if rerank is not None and isinstance(exc, TransportError) and "shoprank_rerank" in str(exc.info):
            error = EngineError(
                f"{error}; the cluster lacks the shoprank plugin: `make plugin`, then bin/opensearch-plugin install it",
                error.failure,
            )
        raise error from exc
    if args.json:
        print_json(report.as_dict())
    else:
        print(
            f"installed on {settings.opensearch_url}: index template {report.index_template} "
            f"({', '.join(report.index_patterns)}), search pipelines "
            f"{', '.join(report.search_pipelines.values())}, search template {report.search_template}; "
            f"hybrid queries use {report.search_pipelines[settings.opensearch_hybrid_technique]}"
        )
        if report.rerank_pipeline:
            default = f", the default of {settings.index_name}'s indices" if report.default_pipeline else ""
            targets = ", ".join(rerank.targets) if rerank else ""
            print(f"rerank pipeline {report.rerank_pipeline} (shoprank plugin) -> sidecars {targets}{default}")
    return 0
