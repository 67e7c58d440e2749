"""`shoprank bench diversify`: latency of the diversity step per method, beside the relevance-only sort.

Inputs: seeded synthetic candidate lists shaped like a rerank window (default 100 candidates,
384-d unit embeddings in near-duplicate clusters, brands and leaf categories per cluster),
a fresh list per call so no method is timed on a warm, repeated input. Each method runs
sidecar.diversify.diversify() exactly as the sidecar calls it, reasons and all; the
baselines are a bare numpy stable argsort and diversify(method="none"). Besides p50/p95/p99
it prints what each method buys on the same lists (brand and category coverage@k) and what it
keeps (relevance retained: sum of the page's normalised relevance over relevance order's).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_info

from benchmarks.hardware import hardware
from evaluation.diversity_metrics import brand_coverage_at_k, category_coverage_at_k
from shoprank.schema import VECTOR_DIM
from shoprank.settings import Settings
from sidecar.blas_threads import use_one_blas_thread
from sidecar.diversify import DiversityParams, diversify

TARGET_P50_MS = 2.0


@dataclass(frozen=True)
class CandidateList:
    relevance: npt.NDArray[np.float32]
    embeddings: npt.NDArray[np.float32]
    brands: list[str]
    categories: list[list[str]]


@dataclass(frozen=True)
class Row:
    name: str
    p50_ms: float
    p95_ms: float
    p99_ms: float
    brand_coverage: float
    category_coverage: float
    relevance_retained: float


def candidate_lists(count: int, n: int, dim: int, seed: int) -> list[CandidateList]:
    """`count` seeded lists of n candidates in 3-12 clusters of near-duplicates."""
    rng = np.random.default_rng(seed)
    lists = []
    for _ in range(count):
        clusters = int(rng.integers(3, 13))
        weights = rng.dirichlet(np.ones(clusters) * 0.7)
        cluster = rng.choice(clusters, size=n, p=weights)
        centres = rng.normal(size=(clusters, dim))
        vectors = centres[cluster] + 0.4 * rng.normal(size=(n, dim))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        relevance = rng.normal(size=n) + 0.8 * (cluster == np.argmax(weights))
        lists.append(
            CandidateList(
                relevance=relevance.astype(np.float32),
                embeddings=vectors.astype(np.float32),
                brands=[f"Brand {c}" for c in cluster],
                categories=[["Dept", f"Aisle {c // 6}", f"Leaf {c // 2}"] for c in cluster],  # 2 brands a leaf
            )
        )
    return lists


def _sort_only(c: CandidateList, k: int) -> list[int]:
    return [int(i) for i in np.argsort(-c.relevance, kind="stable")[:k]]


def _method(params: DiversityParams) -> Callable[[CandidateList, int], list[int]]:
    def run(c: CandidateList, k: int) -> list[int]:
        return diversify(c.relevance, k, params, c.embeddings, c.brands, c.categories).order

    return run


def _measure(
    name: str, pick: Callable[[CandidateList, int], list[int]], lists: list[CandidateList], k: int, repeats: int
) -> Row:
    for c in lists[: min(20, len(lists))]:  # warm-up: imports, allocator, BLAS threads
        pick(c, k)
    times = np.empty(repeats)
    for r in range(repeats):
        c = lists[r % len(lists)]
        started = time.perf_counter_ns()
        pick(c, k)
        times[r] = (time.perf_counter_ns() - started) / 1e6
    brand, category, retained = [], [], []
    for c in lists:
        order = pick(c, k)
        best = _sort_only(c, k)
        low, high = float(c.relevance.min()), float(c.relevance.max())
        norm = (c.relevance - low) / (high - low)
        brand.append(brand_coverage_at_k([c.brands[i] for i in order], k))
        category.append(category_coverage_at_k([c.categories[i] for i in order], k))
        retained.append(float(norm[order].sum() / norm[best].sum()))
    p50, p95, p99 = np.percentile(times, [50, 95, 99])
    return Row(name, p50, p95, p99, float(np.mean(brand)), float(np.mean(category)), float(np.mean(retained)))


def machine() -> dict[str, Any]:
    """The shared hardware facts, plus what this benchmark depends on: numpy and its BLAS threads."""
    return {
        **hardware(),
        "numpy": np.__version__,
        "blas_threads": [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"],
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `shoprank bench diversify`."""
    parser.add_argument("--candidates", type=int, default=100, help="candidates per list (the rerank window)")
    parser.add_argument("--dim", type=int, default=VECTOR_DIM, help="embedding dimension")
    parser.add_argument("--k", type=int, default=None, help="page size (default: --page-size)")
    parser.add_argument("--repeats", type=int, default=1000, help="timed calls per method")
    parser.add_argument("--lists", type=int, default=100, help="distinct seeded candidate lists cycled through")
    parser.add_argument("--strength", type=float, default=None, help="diversity strength (default: sidecar's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Time every method and print the table beside the baselines."""
    with use_one_blas_thread():  # as the sidecar runs
        return _run(args, settings)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    k = args.k or settings.page_size
    strength = settings.diversity_strength if args.strength is None else args.strength
    lists = candidate_lists(args.lists, args.candidates, args.dim, args.seed)
    window = settings.diversity_window
    contenders: list[tuple[str, Callable[[CandidateList, int], list[int]]]] = [
        ("relevance sort (numpy argsort)", _sort_only),
        ("none (diversify, relevance order)", _method(DiversityParams(method="none"))),
        ("mmr", _method(DiversityParams(method="mmr", strength=strength))),
        ("xquad", _method(DiversityParams(method="xquad", strength=strength, facets=("category",)))),
        ("xquad (brand)", _method(DiversityParams(method="xquad", strength=strength, facets=("brand",)))),
        (
            "xquad (category + brand)",
            _method(DiversityParams(method="xquad", strength=strength, facets=("category", "brand"))),
        ),
        (f"dpp (window {window})", _method(DiversityParams(method="dpp", strength=strength, window=window))),
        (
            f"dpp (window {window}, attributes {settings.diversity_attribute_weight:g})",
            _method(
                DiversityParams(
                    method="dpp",
                    strength=strength,
                    window=window,
                    attribute_weight=settings.diversity_attribute_weight,
                )
            ),
        ),
        ("caps (brand 2, category 3)", _method(DiversityParams(max_per_brand=2, max_per_category=3))),
        ("mmr + caps (brand 2)", _method(DiversityParams(method="mmr", strength=strength, max_per_brand=2))),
    ]
    rows = [_measure(name, pick, lists, k, args.repeats) for name, pick in contenders]
    facts = machine()
    print(
        f"diversity step: {args.candidates} candidates x {args.dim}-d, page k={k}, strength {strength}, "
        f"{args.repeats} calls over {args.lists} seeded lists"
    )
    print(
        f"hardware: {facts['cpu']}, {facts['cores']} cores, numpy {facts['numpy']}, "
        f"BLAS threads {facts['blas_threads']} (as the sidecar runs), load average {facts['load_average_1m']}"
    )
    header = f"{'method':36} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'brand cov':>9} {'cat cov':>8} {'rel kept':>8}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.name:36} {row.p50_ms:8.3f} {row.p95_ms:8.3f} {row.p99_ms:8.3f} "
            f"{row.brand_coverage:9.3f} {row.category_coverage:8.3f} {row.relevance_retained:8.3f}"
        )
    slow = [row.name for row in rows[2:] if row.p50_ms > TARGET_P50_MS]
    print(f"target p50 <= {TARGET_P50_MS} ms per method: {'missed by ' + ', '.join(slow) if slow else 'met'}")
    if args.out is not None:
        report = {
            "benchmark": "diversify",
            "inputs": {
                "candidates": args.candidates,
                "dim": args.dim,
                "k": k,
                "strength": strength,
                "window": window,
                "repeats": args.repeats,
                "lists": args.lists,
                "seed": args.seed,
            },
            "hardware": facts,
            "target_p50_ms": TARGET_P50_MS,
            "rows": [asdict(row) for row in rows],
        }
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0
