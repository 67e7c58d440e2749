"""`shoprank eval-intent`: the intent model's accuracy on judged queries, and its effect on the first stage."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from shoprank.cli.common import add_command, print_json
from shoprank.settings import Settings


def register(subparsers: Any) -> None:
    """Add the `eval-intent` command."""
    parser = add_command(
        subparsers,
        "eval-intent",
        "measure the query intent model of the live index: top-1/top-3 accuracy and log-loss against the categories "
        "of each judged query's exact products beside two baselines, and first-stage NDCG@10 with its boost and "
        "filter chosen out of fold (k-fold by query), with bootstrap CIs",
    )
    parser.add_argument(
        "--judgments", type=Path, required=True, help="CSV with query, product_id and rating and/or esci_label"
    )
    parser.add_argument("--json", action="store_true", help="print the report, with every query's figures, as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Measure and print the table (or JSON)."""
    from engines.factory import open_engine
    from evaluation.intent_quality import format_report, measure_intent
    from intent.store import load_model, model_path
    from relevance.judgments import load_judgments
    from shoprank.bi_encoder import BiEncoder

    judgments = load_judgments(args.judgments)
    engine = open_engine(settings)
    model = load_model(
        model_path(settings.data_dir, settings.index_name),
        engine.live_version(),
        depth=settings.intent_depth,
        temperature=settings.intent_temperature,
    )
    encoder = BiEncoder.from_settings(settings, threads=1)
    report = measure_intent(engine, encoder, model, judgments, window=settings.rerank_window)
    if args.json:
        print_json(report.as_dict())
    else:
        print(format_report(report))
    return 0
