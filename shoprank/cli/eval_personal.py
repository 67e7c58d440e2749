"""`shoprank eval-personal`: simulated shoppers with latent preferences; NDCG@10 on personal relevance with and
without the session's personal term per history length, with bootstrap CIs, and the latency it adds."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from shoprank.cli.common import add_command, print_json
from shoprank.settings import Settings

ATTRIBUTES = ("brand", "category", "price")


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(item) for item in text.split(",") if item.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated numbers, e.g. 0.1,0.2") from error
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give one or more numbers >= 0")
    return values


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(item) for item in text.split(",") if item.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated whole numbers, e.g. 0,1,3,10") from error
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give one or more whole numbers >= 0")
    return values


def _attributes(text: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in text.split(",") if item.strip())
    unknown = [item for item in items if item not in ATTRIBUTES]
    if unknown or not items:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(ATTRIBUTES)} (got {text!r})")
    return items


def register(subparsers: Any) -> None:
    """Add the `eval-personal` command."""
    parser = add_command(
        subparsers,
        "eval-personal",
        "simulated shoppers with latent brand/category/price preferences ask the judged queries after histories "
        "of each length; NDCG@10 on personal relevance with and without personalisation, bootstrap CIs, and the "
        "latency the personal term adds",
    )
    parser.add_argument(
        "--judgments", type=Path, required=True, help="CSV with query, product_id and rating and/or esci_label"
    )
    parser.add_argument(
        "--catalogue",
        type=Path,
        required=True,
        help="the catalogue the shoppers' preferences and histories come from "
        "(indexed once into <data-dir>/eval-cache)",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the shoppers (preferences and histories)")
    parser.add_argument("--shoppers", type=int, default=3, help="simulated shoppers per query")
    parser.add_argument("--histories", type=_ints, default=(0, 1, 3, 10), help="history lengths, e.g. 0,1,3,10")
    parser.add_argument(
        "--attributes", type=_attributes, default=ATTRIBUTES, help="preference attributes: brand,category,price"
    )
    parser.add_argument(
        "--strength",
        type=float,
        default=1.0,
        help="personal relevance = ESCI gain x (1 + strength x share of preferred attributes the product has)",
    )
    parser.add_argument("--noise", type=float, default=0.2, help="share of history on random catalogue products")
    parser.add_argument("--history-days", type=float, default=3.0, help="histories spread over this many days")
    parser.add_argument(
        "--weights", type=_floats, default=(), help="caps of beta to compare, e.g. 0.05,0.1,0.2 (default: the setting)"
    )
    parser.add_argument("--queries", choices=["unseen", "all"], default="unseen", help="as `shoprank eval`")
    parser.add_argument("--max-queries", type=int, help="only the first N selected queries (smoke runs)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--output", type=Path, help="also write the report as JSON here")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Simulate, measure and print the table (or JSON)."""
    from evaluation.personal import PersonalEvalConfig, evaluate_personal, format_personal
    from evaluation.shoppers import ShopperConfig

    shoppers = ShopperConfig(
        seed=args.seed,
        shoppers=args.shoppers,
        histories=args.histories,
        attributes=args.attributes,
        strength=args.strength,
        noise=args.noise,
        history_days=args.history_days,
    )
    config = PersonalEvalConfig(
        judgments=args.judgments,
        catalogue=args.catalogue,
        shoppers=shoppers,
        weights=args.weights,
        queries=args.queries,
        max_queries=args.max_queries,
    )
    report = evaluate_personal(settings, config)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print_json(report)
    else:
        print(format_personal(report))
    return 0
