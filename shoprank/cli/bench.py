"""`shoprank bench <name>`: benchmarks, one module each under benchmarks/ (benchmarks/<name>.py).

Each benchmark module has `add_arguments(parser)` and `run(args, settings) -> int`, prints its
figures beside a baseline measured in the same run, with the hardware, and can save JSON.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from shoprank.cli.common import add_command
from shoprank.settings import Settings

# name -> one-line help; the code lives in benchmarks/<name>.py.
BENCHMARKS = {
    "diversify": "latency of the diversity step per method for a rerank window, beside the relevance-only sort",
    "index": "indexing docs/s end to end beside raw bi-encoder embedding, peak RSS, on ESCI and a generated catalogue",
    "frontdoor": "loopback load test of the front door: p50/p99 and req/s per concurrency, first stage vs reranked",
    "rerank": "sidecar over gRPC vs a PyTorch fp32 baseline on ESCI windows: p50/p95/p99, pairs/s, NDCG@10",
}


def register(subparsers: Any) -> None:
    """Add the `bench` command and one subcommand per benchmark."""
    parser = add_command(subparsers, "bench", "run a benchmark (figures beside a baseline, with hardware)")
    benchmarks = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name, help_text in BENCHMARKS.items():
        module = importlib.import_module(f"benchmarks.{name}")
        sub = add_command(benchmarks, name, help_text)
        module.add_arguments(sub)
        sub.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the chosen benchmark."""
    module = importlib.import_module(f"benchmarks.{args.benchmark}")
    return int(module.run(args, settings))
