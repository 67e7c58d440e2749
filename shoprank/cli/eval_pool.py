"""`shoprank eval-pool`: pool `shoprank eval --sweep --json` reports of disjoint query sets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from shoprank.cli.common import add_command, print_json
from shoprank.errors import UserInputError
from shoprank.settings import Settings


def register(subparsers: Any) -> None:
    """Add the `eval-pool` command."""
    parser = add_command(
        subparsers,
        "eval-pool",
        "pool the relevance-diversity sweeps of disjoint query sets, each reranked by a model that never saw "
        "them (cross-fitting: --holdout train, --holdout dev and the release), into one trade-off table",
        ("general",),
    )
    parser.add_argument("reports", type=Path, nargs="+", help="`shoprank eval --sweep --json` outputs")
    parser.add_argument("--json", action="store_true", help="print the pooled sweep as JSON")
    parser.add_argument("--plot", type=Path, help="write a PNG of the pooled trade-off curves")
    parser.set_defaults(run=run)


def _load(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserInputError(f"{path}: not a readable `shoprank eval --json` report ({exc})") from exc
    return data


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Pool the reports and print the table (or JSON)."""
    from evaluation.tradeoff_pool import format_pooled, pool_tradeoffs, pooled_as_dict

    pooled = pool_tradeoffs([_load(path) for path in args.reports])
    if args.plot:
        from evaluation.tradeoff_plot import plot_tradeoff

        queries = next(iter(pooled.values())).query_count
        plot_tradeoff(pooled, args.plot, title=f"relevance-diversity trade-off, pooled over {queries} queries")
    if args.json:
        print_json({mode: pooled_as_dict(p) for mode, p in pooled.items()})
    else:
        print("\n\n".join(format_pooled(p) for p in pooled.values()))
    return 0
