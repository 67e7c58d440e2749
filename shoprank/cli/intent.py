"""`shoprank intent "QUERY"`: the query's most likely categories, from the live index's intent model."""

from __future__ import annotations

import argparse
from typing import Any

from shoprank.cli.common import add_command, print_json
from shoprank.settings import Settings


def register(subparsers: Any) -> None:
    """Add the `intent` command."""
    parser = add_command(
        subparsers,
        "intent",
        "P(category | query) over the catalogue's taxonomy (--intent-depth leaf or 2), from the intent model "
        "a full `shoprank index` built for the live index",
        ("general", "engine", "models", "intent"),
    )
    parser.add_argument("query", help="what a shopper typed")
    parser.add_argument("--top", type=int, default=5, help="categories to show")
    parser.add_argument("--json", action="store_true", help="JSON output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Predict and print the query's categories."""
    from engines.factory import open_engine
    from intent.query import query_intent
    from intent.store import load_live_model, models_dir
    from shoprank.bi_encoder import BiEncoder

    if args.top < 1:
        raise ValueError("--top must be at least 1")
    engine = open_engine(settings)
    model = load_live_model(
        models_dir(settings.data_dir, settings.engine, settings.index_name),
        engine.live_version(),
        depth=settings.intent_depth,
        temperature=settings.intent_temperature,
    )
    encoder = BiEncoder.from_settings(settings, threads=1)
    intent = query_intent(args.query, encoder, model, top=args.top)
    if args.json:
        print_json(
            {
                "query": args.query,
                "depth": model.depth,
                "index_version": model.index_version,
                "categories": intent.as_list(),
            }
        )
        return 0
    print(f"{args.query!r} ({model.depth} categories of index {model.index_version}):")
    for rank, (category, p) in enumerate(zip(intent.categories, intent.probabilities, strict=True), start=1):
        print(f"{rank:>3}. {p:6.3f}  {category}")
    return 0
