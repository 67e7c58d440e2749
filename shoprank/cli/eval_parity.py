"""`shoprank eval-parity`: the first stages of OpenSearch and LanceDB side by side on judged queries."""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path
from typing import Any

from shoprank.cli.common import add_command, add_judged_eval_arguments, print_json
from shoprank.errors import NotSetUpError, UserInputError
from shoprank.settings import Settings


def register(subparsers: Any) -> None:
    """Add the `eval-parity` command."""
    parser = add_command(
        subparsers,
        "eval-parity",
        "run bm25, knn and hybrid on the OpenSearch index at --opensearch-url and on the embedded LanceDB index "
        "for every judged query: NDCG@10 and recall@window with bootstrap CIs, the paired difference, and the "
        "overlap of the two engines' top-window and top-10 lists (index the same catalogue into both first)",
    )
    add_judged_eval_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--output",
        type=Path,
        help="also write the JSON report here (docs/results/engine-parity.json is the one docs/quality.md shows)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Open both engines, compare them and print the table (or JSON)."""
    from engines.base import NoLiveIndexError
    from engines.factory import open_engine
    from evaluation.engine_parity import compare_engines
    from evaluation.evaluate import hardware
    from indexer.catalogue_cache import catalogue_engine
    from relevance.judgments import load_judgments
    from shoprank.bi_encoder import BiEncoder
    from training.built_models import ensure_models

    if not settings.opensearch_url:
        raise UserInputError(
            "eval-parity needs the OpenSearch cluster: pass --opensearch-url (e.g. the node of `shoprank opensearch "
            "run`) after indexing the catalogue there with `shoprank index --engine opensearch`"
        )
    judgments = load_judgments(args.judgments)
    ensure_models(settings)
    encoder = BiEncoder.from_settings(settings, threads=1)
    lance = catalogue_engine(settings.model_copy(update={"engine": "lancedb"}), encoder, args.catalogue)
    opensearch = open_engine(settings.model_copy(update={"engine": "opensearch"}))
    try:
        counts = {"opensearch": opensearch.count(), "lancedb": lance.count()}
    except NoLiveIndexError as exc:
        raise NotSetUpError(f"{exc}: index the same catalogue with `shoprank index --engine opensearch`") from exc
    report = compare_engines(
        {"opensearch": opensearch, "lancedb": lance}, encoder, judgments, window=settings.rerank_window
    )
    report.info = {
        "command": "shoprank eval-parity --judgments " + str(args.judgments) + " --opensearch-url URL",
        "date": date.today().isoformat(),
        "products": counts,
        "bi_encoder": encoder.version,
        "judgments": str(args.judgments),
        "hardware": hardware(),
    }
    if counts["opensearch"] != counts["lancedb"]:
        report.info["warning"] = "the two indices hold different product counts: compare the same catalogue"
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    if args.json:
        print_json(report.as_dict())
    else:
        print(report.format())
        if "warning" in report.info:
            print(f"warning: {report.info['warning']} ({counts})")
    return 0
