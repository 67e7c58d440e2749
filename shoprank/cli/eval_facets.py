"""`shoprank eval-facets`: which products a search's facets should count, measured on judged queries."""

from __future__ import annotations

import argparse
from typing import Any

from shoprank.cli.common import SEARCHING, add_command, add_judged_eval_arguments, print_json
from shoprank.errors import UserInputError
from shoprank.settings import Settings


def register(subparsers: Any) -> None:
    """Add the `eval-facets` command."""
    parser = add_command(
        subparsers,
        "eval-facets",
        "measure how well each candidate facet scope describes the results: the share of the shown facet "
        "mass on the leaf categories and brands of each judged query's exact products (embedded engine)",
        SEARCHING,
    )
    add_judged_eval_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the report, with every query's figures, as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Measure every facet scope and print the table (or JSON)."""
    from engines.lance import LanceEngine
    from evaluation.facet_quality import format_report, measure_facets
    from indexer.catalogue_cache import catalogue_engine
    from relevance.judgments import load_judgments
    from shoprank.bi_encoder import BiEncoder
    from training.built_models import ensure_models

    if settings.engine != "lancedb" and args.catalogue is None:
        raise UserInputError("eval-facets measures on the embedded engine: use --engine lancedb or pass --catalogue")
    judgments = load_judgments(args.judgments)
    ensure_models(settings)
    encoder = BiEncoder.from_settings(settings, threads=1)
    engine = catalogue_engine(settings, encoder, args.catalogue)
    if not isinstance(engine, LanceEngine):
        raise UserInputError("eval-facets measures on the embedded engine (lancedb)")
    report = measure_facets(engine, encoder, judgments, window=settings.rerank_window)
    if args.json:
        print_json(report.as_dict())
    else:
        print(format_report(report))
    return 0
