"""`shoprank bench precision`: the cross-encoder's built precisions side by side on the held-out test queries.

fp32 (the reference), today's dynamic int8 and the calibrated static int8 (`training/static_int8.py`),
each scoring the same windows in this process, one window at a time: NDCG@10 of the judged
products, its difference from fp32, and CPU ms per search. Dynamic int8 scales activations per
batch, so its scores move a little with what is batched together; the windows here are the
judged products of each query alone (--candidates 0) or among padding (--candidates N).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.esci_lists import RerankList
from benchmarks.hardware import hardware
from benchmarks.judged_scoring import held_out_judged, held_out_windows, logits_of, ndcg, score_windows
from benchmarks.rerank import ESCI
from shoprank.model_meta import CROSS_ENCODER, Precision, load_metadata, model_dir
from shoprank.onnx_session import available_cores
from shoprank.settings import Settings
from shoprank.template import cross_encoder_text
from sidecar.cross_encoder import DEFAULT_PRODUCT_TOKEN_CACHE, CrossEncoder

CPU_PRECISIONS: tuple[Precision, ...] = ("fp32", "int8", "int8-static")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `shoprank bench precision`."""
    parser.add_argument(
        "--candidates", type=int, default=0, help="window size with padding (0: each query's judged products only)"
    )
    parser.add_argument("--esci", type=Path, default=ESCI, help="ESCI directory (products.ndjson, judgments.csv)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON report here")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Score the same windows with every built CPU precision and report NDCG and CPU beside fp32."""
    directory = model_dir(settings.models_dir(), CROSS_ENCODER)
    if args.candidates:
        lists = held_out_windows(args.esci, directory, args.candidates)
    else:
        lists = held_out_judged(args.esci, directory)
    built = load_metadata(directory).files
    rows: list[dict[str, Any]] = []
    for precision in (p for p in CPU_PRECISIONS if p in built):
        encoder = CrossEncoder(
            settings.models_dir(),
            precision=precision,
            max_length=settings.max_pair_tokens,
            threads=settings.inference_threads or available_cores(),
        )
        encoder.score(lists[0].query, lists[0].products)  # warm-up
        scored = score_windows(logits_of(encoder), lists)
        rows.append(
            {"precision": precision, "ndcg@10": ndcg(scored, lists), "cpu_ms_per_search": scored.cpu_ms_per_search()}
        )
    reference = next(r for r in rows if r["precision"] == "fp32")
    for row in rows:
        row["ndcg_delta_vs_fp32"] = row["ndcg@10"] - reference["ndcg@10"]
        row["cpu_vs_fp32"] = row["cpu_ms_per_search"] / reference["cpu_ms_per_search"]
    tokenize = tokenize_ms_per_search(settings, lists)
    report: dict[str, Any] = {
        "benchmark": "precision",
        "inputs": {
            "queries": len(lists),
            "which": "the release's held-out test queries",
            "pairs": sum(len(i.products) for i in lists),
            "candidates": args.candidates or "judged products only",
            "max_pair_tokens": settings.max_pair_tokens,
            "model": load_metadata(directory).version,
        },
        "hardware": hardware(),
        "rows": rows,
        "tokenize_ms_per_search": tokenize,
    }
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"precision: {len(lists)} held-out test queries, {report['inputs']['pairs']} pairs, {report['inputs']['model']}"
    )
    print(f"hardware: {report['hardware']}")
    print(f"{'precision':12} {'NDCG@10':>8} {'vs fp32':>8} {'CPU ms':>8} {'CPU/fp32':>8}")
    for row in rows:
        print(
            f"{row['precision']:12} {row['ndcg@10']:8.4f} {row['ndcg_delta_vs_fp32']:+8.4f} "
            f"{row['cpu_ms_per_search']:8.0f} {row['cpu_vs_fp32']:8.2f}"
        )
    print(
        "tokenize ms per search: "
        + ", ".join(f"{name} {value:.1f}" for name, value in tokenize.items())
        + " (product-side token cache)"
    )
    return 0


def tokenize_ms_per_search(settings: Settings, lists: Sequence[RerankList]) -> dict[str, float]:
    """Mean CPU ms to tokenize a window: no product token cache, the cache's first pass, a warm cache."""
    out: dict[str, float] = {}
    for name, entries in (("uncached", 0), ("cold cache", DEFAULT_PRODUCT_TOKEN_CACHE), ("warm cache", -1)):
        if entries >= 0:
            encoder = CrossEncoder(
                settings.models_dir(), max_length=settings.max_pair_tokens, product_token_cache=entries
            )
        texts = [[cross_encoder_text(p) for p in item.products] for item in lists]
        started = time.process_time()
        for item, window in zip(lists, texts, strict=True):
            encoder.tokenize_texts(item.query, window)
        out[name] = (time.process_time() - started) * 1e3 / len(lists)
    return out
