"""`shoprank bench <name>`: benchmarks, one module each under benchmarks/ (benchmarks/<name>.py).

Each benchmark module has `add_arguments(parser)` and `run(args, settings) -> int`, prints its
figures beside a baseline measured in the same run, with the hardware, and can save JSON.
Benchmarks are registered here by name and imported only when one runs: the runtime image
ships no benchmarks/ (nor their dev-only dependencies), and no other command should pay for them.
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType
from typing import Any

from shoprank.cli.common import add_command
from shoprank.errors import NotSetUpError
from shoprank.settings import Settings, add_settings_flags

# name -> one-line help; the code lives in benchmarks/<name>.py (dashes as underscores).
BENCHMARKS = {
    "cascade": "NDCG@10 retained vs CPU per search: full cross-encoder, cheap scorer, cheap-then-full per K",
    "diversify": "latency of the diversity step per method for a rerank window, beside the relevance-only sort",
    "pair-length": "NDCG@10 and CPU per search against the pair token budget and the product text's details",
    "precision": "NDCG@10 and CPU per search of the cross-encoder at fp32, dynamic int8 and calibrated static int8",
    "index": "indexing docs/s end to end beside raw bi-encoder embedding, peak RSS, on ESCI and a generated catalogue",
    "frontdoor": "loopback load test of the front door: p50/p99 and req/s per concurrency, first stage vs reranked",
    "pipeline": "OpenSearch _search p50/p99, req/s without and with the plugin (window 100, 30) beside the front door",
    "rerank": "sidecar over gRPC vs a PyTorch fp32 baseline on ESCI windows: p50/p95/p99, pairs/s, NDCG@10",
}


def register(subparsers: Any) -> None:
    """Add the `bench` command and one subcommand per benchmark, whose own flags are parsed when it runs."""
    parser = add_command(subparsers, "bench", "run a benchmark (figures beside a baseline, with hardware)")
    benchmarks = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name, help_text in BENCHMARKS.items():
        # No -h here: `shoprank bench NAME --help` reaches the benchmark's own parser, which lists its flags.
        sub = benchmarks.add_parser(name, help=help_text, description=help_text, allow_abbrev=False, add_help=False)
        add_settings_flags(sub)
        sub.set_defaults(run=run, takes_extra_args=True)


def _benchmark_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(f"benchmarks.{name.replace('-', '_')}")  # pair-length: pair_length.py
    except ModuleNotFoundError as exc:
        raise NotSetUpError(
            f"benchmark {name!r} needs {exc.name!r}, which is not installed here: run benchmarks from a source "
            "checkout with the dev extra (`make setup`), not from the runtime image"
        ) from exc


def benchmark_parser(name: str) -> tuple[ModuleType, argparse.ArgumentParser]:
    """The benchmark's module and its full parser (its own flags and every settings flag)."""
    module = _benchmark_module(name)
    parser = argparse.ArgumentParser(prog=f"shoprank bench {name}", description=BENCHMARKS[name], allow_abbrev=False)
    module.add_arguments(parser)
    add_settings_flags(parser)
    return module, parser


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Import the chosen benchmark, parse its own flags and run it."""
    module, parser = benchmark_parser(args.benchmark)
    parser.parse_args(args.extra_args, namespace=args)
    return int(module.run(args, settings))
