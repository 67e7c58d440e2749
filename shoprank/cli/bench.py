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
