"""`shoprank bench <name>`: benchmarks that print their figures beside a baseline, with the hardware.

Each benchmark lives in `benchmarks/<name>.py` and offers `add_arguments(parser)` and
`run(args, settings) -> int`; this module only dispatches. Add a benchmark by adding its name.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from shoprank.cli.common import add_command
from shoprank.settings import Settings

BENCHMARKS = ("index",)


def register(subparsers: Any) -> None:
    """Add the `bench` command and one subcommand per benchmark."""
    parser = add_command(subparsers, "bench", "benchmarks: figures beside a baseline, with the hardware")
    benchmarks = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name in BENCHMARKS:
        module = importlib.import_module(f"benchmarks.{name}")
        summary = (module.__doc__ or name).strip().splitlines()[0]
        leaf = add_command(benchmarks, name, summary)
        module.add_arguments(leaf)
        leaf.set_defaults(run=_dispatch(module))


def _dispatch(module: Any) -> Any:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        return int(module.run(args, settings))

    return run
