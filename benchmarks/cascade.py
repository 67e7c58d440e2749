"""`shoprank bench cascade`: NDCG@10 retained vs CPU per search for the cheap-then-full cascade.

On the release's 30 held-out test queries, each a window of --candidates products (judged ones
among catalogue padding, as `bench rerank` sends them), in one run and one process: the full
cross-encoder over every candidate (today's configuration, the baseline), the cheap scorer
alone, and the cascade (`sidecar/cascade.py`, the code the sidecar serves) for each K. Scoring
is in-process, one window at a time, so CPU ms per search compare the variants directly.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks.hardware import hardware
from benchmarks.judged_scoring import Scored, held_out_windows, logits_of, ndcg, score_windows
from benchmarks.rerank import ESCI
from shoprank.errors import NotSetUpError
from shoprank.model_meta import CASCADE_SCORER, CROSS_ENCODER, model_dir
from shoprank.onnx_session import available_cores
from shoprank.settings import Settings
from sidecar.cascade import CascadeScorer
from sidecar.cross_encoder import CrossEncoder
from sidecar.model_loading import served_precision


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `shoprank bench cascade`."""
    parser.add_argument("--candidates", type=int, default=100, help="candidates per query (the rerank window)")
    parser.add_argument("--top-k", default="20,30,50", help="comma-separated K the full model rescores")
    parser.add_argument(
        "--cheap", type=Path, action="append", help="cheap scorer model dir (repeatable; default: the built one)"
    )
    parser.add_argument("--esci", type=Path, default=ESCI, help="ESCI directory (products.ndjson, judgments.csv)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON report here")


def _encoder(settings: Settings, directory: Path) -> CrossEncoder:
    if not (directory / "model.json").is_file():
        raise NotSetUpError(f"no cascade scorer at {directory}; build it with `shoprank models build --only cascade`")
    return CrossEncoder(
        settings.models_dir(),
        precision=served_precision(settings),
        max_length=settings.max_pair_tokens,
        threads=settings.inference_threads or available_cores(),
        directory=directory,
    )


def _row(name: str, scored: Scored, lists: list[Any], full: float) -> dict[str, Any]:
    value = ndcg(scored, lists)
    return {
        "variant": name,
        "ndcg@10": value,
        "ndcg_retained": value / full,
        "cpu_ms_per_search": scored.cpu_ms_per_search(),
        "wall_ms_per_search": scored.wall_s * 1e3 / len(lists),
    }


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Measure the full model, each cheap scorer alone, and each cascade on the same windows."""
    models = settings.models_dir()
    full_dir = model_dir(models, CROSS_ENCODER)
    lists = held_out_windows(args.esci, full_dir, args.candidates)
    ks = [int(k) for k in str(args.top_k).split(",")]
    full = _encoder(settings, full_dir)
    full.score(lists[0].query, lists[0].products)  # warm-up
    baseline = score_windows(logits_of(full), lists)
    full_ndcg = ndcg(baseline, lists)
    rows = [_row(f"full ({full.version})", baseline, lists, full_ndcg)]
    for cheap_dir in args.cheap or [model_dir(models, CASCADE_SCORER)]:
        cheap = _encoder(settings, cheap_dir)
        cheap.score(lists[0].query, lists[0].products)
        rows.append(
            _row(
                f"cheap alone ({cheap.version})",
                score_windows(logits_of(cheap), lists),
                lists,
                full_ndcg,
            )
        )
        for k in ks:
            cascade = CascadeScorer(full, cheap, k)
            scored = score_windows(logits_of(cascade), lists)
            rows.append(_row(f"cascade K={k} ({cheap.version})", scored, lists, full_ndcg))
    report = {
        "benchmark": "cascade",
        "inputs": {
            "queries": len(lists),
            "which": "the release's held-out test queries",
            "candidates": args.candidates,
            "max_pair_tokens": settings.max_pair_tokens,
            "precision": full.precision,
        },
        "hardware": hardware(),
        "rows": rows,
    }
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"cascade: {len(lists)} held-out test queries x {args.candidates} candidates, {full.precision}")
    print(f"hardware: {report['hardware']}")
    print(f"{'variant':64} {'NDCG@10':>8} {'retained':>8} {'CPU ms':>8}")
    for row in rows:
        print(f"{row['variant']:64} {row['ndcg@10']:8.4f} {row['ndcg_retained']:8.3f} {row['cpu_ms_per_search']:8.0f}")
    return 0
