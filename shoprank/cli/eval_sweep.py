"""The relevance–diversity trade-off options of `shoprank eval` (--sweep, --sweep-plot)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from shoprank.cli.common import comma_separated
from shoprank.errors import UserInputError
from shoprank.settings import Settings
from shoprank.vocabulary import STRENGTH_METHODS

if TYPE_CHECKING:
    from evaluation.evaluate import EvalReport
    from evaluation.sweep_grid import SweepConfig


def _strengths(text: str) -> list[float]:
    try:
        values = [float(item) for item in text.split(",") if item.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"strengths must be numbers, e.g. 0,0.1,0.3; got {text!r}") from exc
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"strengths must be between 0 and 1; got {text!r}")
    return values


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the sweep's options to the `eval` parser."""
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="relevance-diversity trade-off: every method over --sweep-strengths, brand/category caps and MMR with "
        "a brand cap, applied to the rerank stage's scored windows (reranked once per query); adds a table and "
        "a `tradeoff` section to --json",
    )
    parser.add_argument(
        "--sweep-strengths",
        type=_strengths,
        help="comma-separated strengths of the sweep (default: DEFAULT_STRENGTHS of evaluation/sweep_grid.py, "
        "0 to 0.7)",
    )
    parser.add_argument(
        "--sweep-methods",
        type=comma_separated(STRENGTH_METHODS),
        default=list(STRENGTH_METHODS),
        help=f"methods of the sweep (default {','.join(STRENGTH_METHODS)})",
    )
    parser.add_argument("--sweep-plot", type=Path, help="write a PNG of the trade-off curves (implies --sweep)")


def sweep_configs(args: argparse.Namespace, settings: Settings) -> list[SweepConfig]:
    """The configurations to sweep (none unless --sweep or --sweep-plot)."""
    if not (args.sweep or args.sweep_plot):
        return []
    if "rerank" not in args.stages:
        raise UserInputError("the trade-off sweep diversifies the rerank stage's windows: include rerank in --stages")
    from evaluation.sweep_grid import DEFAULT_STRENGTHS, sweep_grid

    strengths: list[float] = args.sweep_strengths or list(DEFAULT_STRENGTHS)
    return sweep_grid(
        strengths,
        args.sweep_methods,
        combined_strengths=[s for s in strengths if s > 0.0],
        window=settings.diversity_window,
        # The server's similarity first (the diversified stage's), then embedding cosine alone for contrast.
        attribute_weights=tuple(dict.fromkeys((settings.diversity_attribute_weight, 0.0))),
    )


def write_sweep_plot(args: argparse.Namespace, report: EvalReport) -> None:
    """Write the trade-off PNG when asked (the report of `evaluate`, with its sweep)."""
    if not args.sweep_plot:
        return
    from evaluation.tradeoff_plot import plot_tradeoff

    plot_tradeoff(report.tradeoff, args.sweep_plot, title=f"relevance-diversity trade-off: {args.judgments.name}")
