"""`shoprank bench pair-length`: NDCG@10 and CPU per search against the pair's token budget and product fields.

The released cross-encoder scores each held-out test query's judged products (it never saw
those queries) with the product text cut to --tokens (32/48/64/96/128) and with the template's
details snippet (bullets, or the description) at --details characters (0: title, brand, colour
and category only; 100: the served template; longer: more of the bullets). One process, one
window at a time, so CPU ms per search compare directly. CPU here is for the judged products
(~47 a query): scale by window / 47 for a full window.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.hardware import hardware
from benchmarks.judged_scoring import Score, held_out_judged, ndcg, score_windows
from benchmarks.rerank import ESCI
from shoprank.arrays import FloatArray
from shoprank.model_meta import CROSS_ENCODER, load_metadata, model_dir
from shoprank.onnx_session import available_cores
from shoprank.settings import Settings
from shoprank.template import MAX_DETAILS_CHARS, ProductText, cross_encoder_text
from sidecar.cross_encoder import CrossEncoder
from sidecar.model_loading import served_precision


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `shoprank bench pair-length`."""
    parser.add_argument("--tokens", default="32,48,64,96,128", help="comma-separated pair token budgets")
    parser.add_argument(
        "--details", default=f"0,{MAX_DETAILS_CHARS},300", help="comma-separated details snippet lengths (characters)"
    )
    parser.add_argument(
        "--full-grid",
        action="store_true",
        help="all (tokens, details) pairs; default: each budget with the served template, each template at 32, 64, 128",
    )
    parser.add_argument("--esci", type=Path, default=ESCI, help="ESCI directory (products.ndjson, judgments.csv)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON report here")


def grid(tokens: list[int], details: list[int], full: bool) -> list[tuple[int, int]]:
    """The (tokens, details) variants to measure, the served template first at each budget."""
    if full:
        return [(t, d) for t in tokens for d in details]
    chosen = [(t, MAX_DETAILS_CHARS) for t in tokens]
    extremes = {min(tokens), max(tokens), 64} & set(tokens)
    chosen += [(t, d) for t in sorted(extremes) for d in details if d != MAX_DETAILS_CHARS]
    return chosen


def _with_details(encoder: CrossEncoder, details_chars: int) -> Score:
    def score(query: str, products: Sequence[ProductText]) -> FloatArray:
        return encoder.score_texts(query, [cross_encoder_text(p, details_chars) for p in products]).logits

    return score


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Score the judged test products once per variant and report NDCG@10 and CPU beside the served one."""
    directory = model_dir(settings.models_dir(), CROSS_ENCODER)
    lists = held_out_judged(args.esci, directory)
    tokens = [int(t) for t in str(args.tokens).split(",")]
    details = [int(d) for d in str(args.details).split(",")]
    encoders: dict[int, CrossEncoder] = {}
    rows: list[dict[str, Any]] = []
    for budget, chars in grid(tokens, details, args.full_grid):
        if budget not in encoders:
            encoders[budget] = CrossEncoder(
                settings.models_dir(),
                precision=served_precision(settings),
                max_length=budget,
                threads=settings.inference_threads or available_cores(),
            )
            encoders[budget].score(lists[0].query, lists[0].products)  # warm-up
        encoder = encoders[budget]
        scored = score_windows(_with_details(encoder, chars), lists)
        rows.append(
            {
                "max_pair_tokens": budget,
                "details_chars": chars,
                "ndcg@10": ndcg(scored, lists),
                "cpu_ms_per_search": scored.cpu_ms_per_search(),
            }
        )
    served = next(
        (r for r in rows if r["max_pair_tokens"] == max(tokens) and r["details_chars"] == MAX_DETAILS_CHARS), rows[0]
    )
    for row in rows:
        row["ndcg_delta_vs_served"] = row["ndcg@10"] - served["ndcg@10"]
        row["cpu_vs_served"] = row["cpu_ms_per_search"] / served["cpu_ms_per_search"]
    report: dict[str, Any] = {
        "benchmark": "pair-length",
        "inputs": {
            "queries": len(lists),
            "which": "the release's held-out test queries, judged products only",
            "pairs": sum(len(i.products) for i in lists),
            "model": load_metadata(directory).version,
            "precision": next(iter(encoders.values())).precision,
        },
        "hardware": hardware(),
        "rows": rows,
    }
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"pair-length: {len(lists)} held-out test queries, {report['inputs']['pairs']} judged pairs")
    print(f"hardware: {report['hardware']}")
    print(f"{'tokens':>6} {'details':>7} {'NDCG@10':>8} {'vs served':>9} {'CPU ms':>7} {'CPU/served':>10}")
    for row in rows:
        print(
            f"{row['max_pair_tokens']:6d} {row['details_chars']:7d} {row['ndcg@10']:8.4f} "
            f"{row['ndcg_delta_vs_served']:+9.4f} {row['cpu_ms_per_search']:7.0f} {row['cpu_vs_served']:10.2f}"
        )
    return 0
