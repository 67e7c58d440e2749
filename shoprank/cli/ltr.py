"""`shoprank eval-ltr` (learning to rank out of fold, with the window/cost frontier) and `shoprank train-ltr`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from shoprank.cli.common import add_command, add_judged_eval_arguments, print_json
from shoprank.settings import Settings

VARIANTS = ("ltr_no_ce", "ltr_zero_shot_ce", "ltr_fine_tuned_ce")


def register(subparsers: Any) -> None:
    """Add the `eval-ltr` and `train-ltr` commands."""
    parser = add_command(
        subparsers,
        "eval-ltr",
        "learning to rank out of fold over every judged query: bm25, knn, hybrid, cross-encoder alone and "
        "blended, LTR without and with the cross-encoder, and NDCG@10 against CPU per rerank window",
    )
    add_judged_eval_arguments(parser)
    parser.add_argument("--folds", type=int, default=5, help="outer folds by query (default 5)")
    parser.add_argument(
        "--windows", default="20,30,50,100", help="rerank windows of the frontier, comma-separated ('' = none)"
    )
    parser.add_argument("--refresh", action="store_true", help="rescore the windows instead of reading the cache")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--output", type=Path, help="also write the JSON report here (e.g. docs/results/ltr.json)")
    parser.set_defaults(run=run_eval)

    train = add_command(
        subparsers,
        "train-ltr",
        "train the served LTR model on every judged query (the recipe eval-ltr measured) into <models dir>/ltr",
    )
    add_judged_eval_arguments(train)
    train.add_argument("--variant", choices=VARIANTS, default="ltr_fine_tuned_ce", help="features and their CE")
    train.add_argument("--output", type=Path, help="model directory (default: <data dir>/models/ltr)")
    train.set_defaults(run=run_train)


def _windows(args: argparse.Namespace, settings: Settings) -> Any:
    from evaluation.ltr_windows import build_windows

    return build_windows(settings, args.judgments, refresh=getattr(args, "refresh", False), catalogue=args.catalogue)


def run_eval(args: argparse.Namespace, settings: Settings) -> int:
    """Build (or read) the windows, run the out-of-fold protocol, print the tables."""
    from evaluation.ltr_report import run_report, write_json
    from evaluation.workspace import trained_queries
    from shoprank.model_meta import CROSS_ENCODER, model_dir

    sizes = [int(s) for s in args.windows.split(",") if s.strip()]
    windows = _windows(args, settings)
    trained = trained_queries(model_dir(settings.models_dir(), CROSS_ENCODER))
    report = run_report(
        windows,
        trained,
        settings.blend_weight,
        k=args.folds,
        frontier_windows=sizes,
        query_embed_ms=_embed_ms(settings),
    )
    if args.output:
        write_json(report, args.output)
    if args.json:
        print_json(report.as_dict())
    else:
        print(report.format())
    return 0


def _embed_ms(settings: Settings) -> float:
    """CPU ms the sidecar's bi-encoder takes to embed one query (the LTR knn_cosine feature needs it)."""
    import time

    from shoprank.bi_encoder import BiEncoder

    encoder = BiEncoder.from_settings(settings, threads=1)
    queries = [f"grey cotton kitchen towels {i}" for i in range(20)]
    encoder.encode_one(queries[0])
    started = time.process_time()
    for q in queries:
        encoder.encode_one(q)
    return 1e3 * (time.process_time() - started) / len(queries)


def run_train(args: argparse.Namespace, settings: Settings) -> int:
    """Train the release LTR model and print its card."""
    from evaluation.ltr_release import train_release
    from evaluation.ltr_report import variant_named
    from sidecar.ltr_model import ltr_dir

    windows = _windows(args, settings)
    directory = args.output or ltr_dir(settings.models_dir())
    card = train_release(windows, variant_named(args.variant), directory)
    print_json({"directory": str(directory), **card.as_dict()})
    return 0
