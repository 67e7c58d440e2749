"""`shoprank eval`: every search stage over judged queries, NDCG/MRR/recall/diversity with CIs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from shoprank.cli.common import SEARCHING, add_command, add_judged_eval_arguments, comma_separated, print_json
from shoprank.cli.eval_sweep import add_sweep_arguments, sweep_configs, write_sweep_plot
from shoprank.settings import Settings

STAGES = ("bm25", "knn", "hybrid", "rerank_zero_shot", "rerank", "rerank_fp32", "diversified")


def register(subparsers: Any) -> None:
    """Add the `eval` command."""
    parser = add_command(
        subparsers,
        "eval",
        "measure every stage (bm25, knn, hybrid, rerank_zero_shot, rerank, diversified) on judged queries",
        SEARCHING,
    )
    add_judged_eval_arguments(parser)
    parser.add_argument(
        "--queries",
        choices=["unseen", "all"],
        default="unseen",
        help="unseen (default): every judged query the cross-encoder was not trained on (its training record "
        "lists them), so a foreign file is evaluated whole; all: every query",
    )
    parser.add_argument("--modes", type=comma_separated(("judged", "end_to_end")), default=["judged", "end_to_end"])
    parser.add_argument(
        "--stages",
        type=comma_separated(STAGES),
        default=list(STAGES),
        help=f"comma-separated subset of {','.join(STAGES)}",
    )
    parser.add_argument("--cross-encoder", type=Path, help="evaluate this built cross-encoder dir as `rerank`")
    parser.add_argument("--max-queries", type=int, help="evaluate only the first N selected queries (smoke runs)")
    parser.add_argument(
        "--depth", type=int, default=1000, help="judged mode: first-stage retrieval depth that orders judged lists"
    )
    parser.add_argument(
        "--e2e-fp32", action="store_true", help="also run the fp32 cross-encoder end to end (judged mode always does)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--plot", type=Path, help="write a PNG of NDCG@10 per stage and mode")
    parser.add_argument(
        "--split",
        choices=["train", "dev", "test"],
        help="only the queries of this part of the seeded by-query split (the split training uses)",
    )
    add_sweep_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Evaluate and print the report (table or JSON)."""
    from evaluation.evaluate import EvalConfig, evaluate

    config = EvalConfig(
        judgments=args.judgments,
        catalogue=args.catalogue,
        modes=args.modes,
        stages=args.stages,
        queries=args.queries,
        max_queries=args.max_queries,
        cross_encoder_dir=args.cross_encoder,
        depth=args.depth,
        end_to_end_fp32=args.e2e_fp32,
        split=args.split,
        sweep=sweep_configs(args, settings),
    )
    report = evaluate(settings, config)
    if args.plot:
        from evaluation.plot import plot_report

        plot_report(report.modes, args.plot, title=f"shoprank eval: {args.judgments.name}")
    write_sweep_plot(args, report)
    if args.json:
        print_json(report.as_dict())
    else:
        print(report.format())
        for plot in (args.plot, args.sweep_plot):
            if plot:
                print(f"plot: {plot}")
    return 0
