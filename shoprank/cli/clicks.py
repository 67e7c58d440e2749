"""`shoprank simulate-traffic`, `shoprank judgments-from-clicks` and `shoprank interleave-report`: the
loop from shoppers' clicks to implicit judgments and online verdicts, and simulated shoppers to
prove it on judged queries."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from shoprank.cli.common import add_command, comma_separated, print_json
from shoprank.settings import REPO_ROOT, Settings
from shoprank.vocabulary import RETRIEVAL_MODES

ESCI_JUDGMENTS = REPO_ROOT.parent / "shared" / "data" / "esci" / "judgments.csv"


def _grades(text: str) -> dict[str, float]:
    """E=0.7,S=0.35,C=0.12,I=0.03 as a mapping (every grade required)."""
    values: dict[str, float] = {}
    for item in text.split(","):
        grade, sep, number = item.partition("=")
        try:
            values[grade.strip().upper()] = float(number)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"{item!r}: write GRADE=PROBABILITY, e.g. E=0.7") from error
        if not sep or not 0.0 <= values[grade.strip().upper()] <= 1.0:
            raise argparse.ArgumentTypeError(f"{item!r}: write GRADE=PROBABILITY with a probability in [0, 1]")
    if set(values) != {"E", "S", "C", "I"}:
        raise argparse.ArgumentTypeError("give all four grades: E=..,S=..,C=..,I=..")
    return values


def register(subparsers: Any) -> None:
    """Add the `simulate-traffic`, `judgments-from-clicks` and `interleave-report` commands."""
    sim = add_command(
        subparsers,
        "simulate-traffic",
        "replay judged queries through a running front door as simulated shoppers",
        ("general", "engine", "retrieval", "frontdoor", "ubi"),
    )
    sim.add_argument("--url", default="", help="front door URL (default: http://<http-listen>)")
    sim.add_argument("--judgments", type=Path, default=ESCI_JUDGMENTS, help="judged queries and their grades")
    sim.add_argument("--sessions-per-query", type=int, default=20, help="sessions of each judged query")
    sim.add_argument("--seed", type=int, default=0, help="seed of the session order and every shopper's draw")
    sim.add_argument("--behaviour", choices=["pbm", "cascade"], default="pbm", help="how shoppers scan a page")
    sim.add_argument("--attractiveness", type=_grades, help="click probability per grade (default E=0.7,S=0.35,...)")
    sim.add_argument("--eta", type=float, default=1.0, help="pbm: examination at rank r is 1/(r+1)^eta")
    sim.add_argument("--stop", type=float, default=0.6, help="cascade: probability of stopping after a click")
    sim.add_argument("--noise", type=float, default=0.05, help="share of draws with a uniform attractiveness")
    sim.add_argument("--purchase", type=float, default=0.5, help="probability a cart is bought")
    sim.add_argument(
        "--modes",
        type=comma_separated(RETRIEVAL_MODES),
        default=["hybrid"],
        help="first stages searched, one drawn per session (several vary the rankings shoppers see)",
    )
    sim.add_argument("--no-rerank", action="store_true", help="search with rerank=false")
    sim.add_argument("--json", action="store_true", help="print the report as JSON")
    sim.set_defaults(run=run_simulate)

    jud = add_command(
        subparsers,
        "judgments-from-clicks",
        "implicit judgments CSV from captured UBI events",
        ("general", "engine", "retrieval", "frontdoor", "ubi"),
    )
    jud.add_argument("--model", choices=["coec", "pbm", "ctr"], default="coec", help="click model")
    jud.add_argument("--output", type=Path, required=True, help="judgments CSV (what eval/train --judgments take)")
    jud.add_argument(
        "--ubi-dir", type=Path, help="embedded UBI tables (default: <data-dir>/ubi, or the UBI indices on OpenSearch)"
    )
    jud.add_argument("--max-rank", type=int, default=20, help="ranks counted (the Workbench's maxRank)")
    jud.add_argument("--srw-json", type=Path, help="also write the Workbench's judgment list JSON here")
    jud.add_argument("--compare", type=Path, help="labelled judgments CSV: print rank correlation with it")
    jud.set_defaults(run=run_judgments)

    rep = add_command(
        subparsers,
        "interleave-report",
        "team-draft interleaving verdict (and the A/B test) from captured UBI records",
        ("general", "engine", "retrieval", "frontdoor", "ubi"),
    )
    rep.add_argument(
        "--ubi-dir", type=Path, help="embedded UBI tables (default: <data-dir>/ubi, or the UBI indices on OpenSearch)"
    )
    rep.add_argument("--ab-attribute", default="mode", help="query attribute splitting A/B sessions (default: mode)")
    rep.add_argument("--alpha", type=float, default=0.05, help="significance level")
    rep.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    rep.set_defaults(run=run_report)


def run_simulate(args: argparse.Namespace, settings: Settings) -> int:
    """Simulate sessions against the front door and print what was posted."""
    import httpx

    from evaluation.simulate_traffic import ShopperModel, simulate
    from relevance.judgments import load_judgments

    shopper = ShopperModel(
        behaviour=args.behaviour,
        eta=args.eta,
        stop=args.stop,
        noise=args.noise,
        purchase=args.purchase,
        **({"attractiveness": args.attractiveness} if args.attractiveness else {}),
    )
    params = {"rerank": str(not args.no_rerank).lower(), "page_size": str(settings.page_size)}
    url = args.url or f"http://{settings.http_listen}"
    with httpx.Client(base_url=url, timeout=60.0) as http:
        report = simulate(
            http, load_judgments(args.judgments).gains, args.sessions_per_query, shopper, args.seed, params, args.modes
        )
    if args.json:
        print_json(report.as_dict())
    else:
        print(
            f"{report.sessions} sessions ({report.searches_failed} searches failed), {report.events_posted} events "
            f"posted ({report.events_rejected} rejected): {dict(report.actions)}"
        )
    return 0


def ubi_records(args: argparse.Namespace, settings: Settings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(queries, events) from --ubi-dir, else from where this engine's front door writes them."""
    from shoprank.ubi_log import EVENTS, QUERIES, UbiLog, ubi_dir

    if args.ubi_dir is None and settings.engine == "opensearch":
        from engines.opensearch_client import client_from_settings
        from frontdoor.ubi_capture import opensearch_records

        client = client_from_settings(settings)
        return opensearch_records(client, QUERIES), opensearch_records(client, EVENTS)
    root = args.ubi_dir or ubi_dir(settings.data_dir)
    if not (root / EVENTS).is_dir() and not (root / QUERIES).is_dir():
        raise FileNotFoundError(f"no UBI records under {root}: serve searches and POST /api/events first")
    return list(UbiLog(root, QUERIES).read()), list(UbiLog(root, EVENTS).read())


def run_judgments(args: argparse.Namespace, settings: Settings) -> int:
    """Fit the click model on the captured events and write its judgments."""
    from relevance.click_logs import interactions
    from relevance.click_models import as_gain, score_events, srw_judgments
    from relevance.judgments import load_judgments, write_gains

    queries, raw_events = ubi_records(args, settings)
    events = interactions(raw_events, queries)
    scores = score_events(args.model, events, args.max_rank)
    rows = [
        {
            "query": query,
            "product_id": product,
            "gain": f"{as_gain(args.model, stats.score):.6f}",
            "score": f"{stats.score:.6f}",
            "clicks": stats.clicks,
            "impressions": stats.impressions,
        }
        for query, products in scores.items()
        for product, stats in products.items()
    ]
    written = write_gains(args.output, rows)
    print(f"{args.model}: {written} judgments of {len(scores)} queries from {len(events)} events -> {args.output}")
    if args.srw_json:
        args.srw_json.write_text(json.dumps(srw_judgments(scores), indent=1), encoding="utf-8")
    if args.compare:
        from evaluation.click_agreement import agreement

        labels = load_judgments(args.compare).gains
        implicit = {q: {p: s.score for p, s in products.items()} for q, products in scores.items()}
        print(agreement(implicit, labels).line(args.model))
    return 0


def _since(impressions: int | None, alpha: float) -> str:
    if impressions is None:
        return f"p < {alpha} not reached"
    return f"p < {alpha} from impression {impressions} on"


def run_report(args: argparse.Namespace, settings: Settings) -> int:
    """Print the interleaving verdict and the A/B comparison of the captured traffic."""
    from evaluation.online_tests import ab_test, clicked_positions, interleaving

    queries, events = ubi_records(args, settings)
    clicks = clicked_positions(events)
    tdi = interleaving(queries, clicks, args.alpha)
    ab = ab_test(queries, clicks, args.ab_attribute, args.alpha)
    if args.json:
        print_json({"interleaving": tdi.as_dict(), "ab": ab.as_dict()})
        return 0
    print(
        f"interleaving {tdi.variant or '(none recorded)'}: {tdi.impressions} impressions, a wins {tdi.wins_a}, "
        f"b wins {tdi.wins_b}, ties {tdi.ties}, no clicks {tdi.no_clicks}; preference for a {tdi.preference_a:+.3f}, "
        f"sign test p = {tdi.p_value:.3g}; {_since(tdi.impressions_to_significance, args.alpha)}"
    )
    arms = ", ".join(f"{arm}: {s}/{n} sessions clicked" for arm, (s, n) in sorted(ab.arms.items()))
    print(
        f"A/B by {ab.attribute}: {arms or '(no sessions)'}; z-test p = {ab.p_value:.3g}; "
        f"{_since(ab.impressions_to_significance, args.alpha)}"
    )
    return 0
