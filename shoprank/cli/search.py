"""`shoprank search`: one search from the command line, through the same front door as HTTP."""

from __future__ import annotations

import argparse
from typing import Any

from shoprank.cli.common import SEARCHING, add_command, print_json
from shoprank.settings import Settings
from shoprank.vocabulary import DIVERSITY_METHODS, RETRIEVAL_MODES


def register(subparsers: Any) -> None:
    """Add the `search` command."""
    parser = add_command(
        subparsers,
        "search",
        "search the catalogue: hybrid first stage, sidecar rerank, page",
        (*SEARCHING, "request_limits", "sidecar_client", "frontdoor"),
    )
    parser.add_argument("query", help="what a shopper typed")
    parser.add_argument("--k", type=int, default=None, help="results to show (default: --page-size)")
    parser.add_argument("--mode", choices=RETRIEVAL_MODES, default="hybrid", help="first-stage retrieval")
    parser.add_argument("--no-rerank", action="store_true", help="first-stage order only")
    parser.add_argument("--diversity", choices=DIVERSITY_METHODS, help="diversity method (default: sidecar's)")
    parser.add_argument("--strength", type=float, help="diversity strength in [0, 1]")
    parser.add_argument("--explain", action="store_true", help="ask the sidecar why each result is where it is")
    parser.add_argument("--json", action="store_true", help="JSON output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Search once and print the page."""
    from frontdoor.search import SearchRequest
    from frontdoor.wiring import build_search_service
    from sidecar.client import RerankOptions

    k = args.k or settings.page_size
    service = build_search_service(settings)
    page = service.search(
        SearchRequest(
            query=args.query,
            page_size=k,
            mode=args.mode,
            rerank=not args.no_rerank,
            options=RerankOptions(diversity=args.diversity, strength=args.strength, explain=args.explain),
        )
    )
    if args.json:
        print_json(page.as_dict())
        return 0
    state = f"reranked by {page.model_version}" if page.reranked else f"first-stage order ({page.fail_open_reason})"
    print(
        f"{page.query!r}: {len(page.results)} of {page.window} candidates, {state}, "
        f"{page.timings.get('total_ms', 0):.0f} ms"
    )
    if page.intent.enabled:
        shown = ", ".join(f"{c['category']} {c['p']:.2f}" for c in page.intent.as_dict()["categories"])
        applied = f"filter {page.intent.filtered!r}, " if page.intent.filtered else ""
        print(f"intent: {shown or page.intent.note} ({applied}boost {page.intent.boost:g})")
    for rank, item in enumerate(page.results, start=1):
        p = item.product
        price = f"${p.price:.2f}" if p.price is not None else "-"
        print(
            f"{rank:>3}. {p.id}  {item.score:7.3f}  (was #{item.first_stage_rank + 1:<3}) {p.title[:80]} "
            f"| {p.brand or '-'} | {price}"
        )
    return 0
