"""`shoprank bench rerank`: the sidecar over gRPC against a PyTorch baseline, on the same ESCI inputs.

Inputs: the first --queries judged ESCI queries (sorted), each with its judged products padded
with other catalogue products to --candidates (100), shuffled. One run measures:

- sidecar: `shoprank sidecar` as a child process (the built model on --device; CPU: int8), called
  over gRPC by 1 and by 8 concurrent clients, every query once per level. The score cache is OFF,
  so every pair is computed: no cache hit flatters the comparison. Requests carry a long
  deadline so nothing is shed: this measures capacity. Latency is client-side, gRPC included.
- baseline: PyTorch fp32 BertForSequenceClassification with the same weights (parity-checked
  against the served fp32 ONNX), same tokenizer and max length, one batch per request padded
  to its longest pair, torch using every core. With 8 clients, 8 threads share one model and
  its forward passes run one at a time (running them at once only oversubscribes the cores).
  It runs after the sidecar has stopped, so the two never share the CPU.
- today's configuration: when the settings serve something else (the calibrated static int8 that
  `auto` picks on a CPU once it is built, or a cascade), the sidecar runs a second time as it was
  configured before them (dynamic int8, every candidate through the full model), so one run
  prints today's configuration beside the new default and beside the baseline.
- quality: NDCG@10 (ESCI gains E=1, S=0.1, C=0.01, I=0) of each query's judged products, ranked
  by the served model (int8 on CPU) and by the fp32 baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from benchmarks.esci_lists import RerankList, mean_ndcg, rerank_lists
from benchmarks.hardware import hardware
from benchmarks.torch_baseline import TorchCrossEncoder
from shoprank.errors import NotSetUpError, UserInputError
from shoprank.model_meta import CROSS_ENCODER, load_metadata, model_dir
from shoprank.onnx_session import available_cores
from shoprank.schema import Product
from shoprank.settings import REPO_ROOT, Settings
from shoprank.v1 import rerank_pb2 as pb
from shoprank.v1 import rerank_pb2_grpc as pb_grpc
from sidecar.client import RerankOptions, build_request
from sidecar.process import SidecarProcess

ESCI = REPO_ROOT.parent / "shared" / "data" / "esci"
REQUEST_DEADLINE_S = 600.0
# The sidecar's configuration before calibrated static int8 and the cascade, printed beside the new default.
TODAY: dict[str, Any] = {"cross_encoder_precision": "int8", "cascade_top_k": 0}
TARGETS = {"p50_ratio_max": 1 / 3, "pairs_per_s_ratio_min": 3.0, "ndcg_delta_max": 0.005}


@dataclass(frozen=True)
class Level:
    """Latency and throughput of one side at one concurrency."""

    concurrency: int
    requests: int
    pairs: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    pairs_per_s: float
    cpu_s: float  # CPU time of the scoring process over the level: robust to a busy machine
    cpu_s_per_100_pairs: float = float("nan")


def run_level(call: Callable[[int], None], count: int, concurrency: int, cpu_clock: Callable[[], float]) -> Level:
    """Each of `count` items once, from `concurrency` closed-loop client threads."""
    latencies = [0.0] * count
    next_item = iter(range(count))
    lock = threading.Lock()
    failures: list[BaseException] = []

    def client() -> None:
        while True:
            with lock:
                item = next(next_item, None)
            if item is None or failures:
                return
            started = time.perf_counter()
            try:
                call(item)
            except BaseException as error:  # a failed call invalidates the level: report it
                failures.append(error)
                return
            latencies[item] = (time.perf_counter() - started) * 1e3

    started, cpu_started = time.perf_counter(), cpu_clock()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds, cpu_s = time.perf_counter() - started, cpu_clock() - cpu_started
    if failures:
        raise RuntimeError(f"a benchmark request failed: {failures[0]}") from failures[0]
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
    return Level(concurrency, count, 0, seconds, float(p50), float(p95), float(p99), 0.0, cpu_s)


def with_pairs(level: Level, pairs: int) -> Level:
    """The level with its pair count, pairs/s and CPU seconds per 100 pairs filled in."""
    filled = {"pairs": pairs, "pairs_per_s": pairs / level.seconds, "cpu_s_per_100_pairs": level.cpu_s * 100 / pairs}
    return Level(**{**asdict(level), **filled})


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class _WindowHit:
    """A product of a benchmark list as the client's request builder takes it (a RerankInput)."""

    id: str
    first_stage_score: float
    product: Product
    embedding: None = None


def to_request(item: RerankList) -> pb.RerankRequest:
    """The wire request of one list; top_k=0 returns every candidate's score (NDCG needs them).

    Diversity "none": this bench measures scoring against a scoring-only baseline. The default
    diversity (DPP) would make the sidecar embed the 100 vector-less candidates with its
    bi-encoder (~1.3 s on 2 cores), which the front door avoids by sending the stored vectors;
    the diversity step has its own bench (`shoprank bench diversify`)."""
    n = len(item.products)
    hits = [_WindowHit(p.id, float(n - rank), p) for rank, p in enumerate(item.products)]
    return build_request(item.query, hits, top_k=0, options=RerankOptions(diversity="none"))


def start_sidecar_process(settings: Settings) -> SidecarProcess:
    """`shoprank sidecar` as a child process on a free port, score cache off, once SERVING."""
    configured = settings.model_copy(update={"metrics_listen": "", "score_cache_entries": 0})
    sidecar = SidecarProcess(configured, listen="127.0.0.1:0")
    if not sidecar.wait_serving(300):
        sidecar.stop(60)
        raise NotSetUpError("the sidecar did not become ready in 5 minutes; is the model built? (`shoprank sidecar`)")
    return sidecar


def bench_sidecar(
    settings: Settings, lists: list[RerankList], levels: list[int]
) -> tuple[dict[int, Level], list[dict[str, float]], dict[str, Any]]:
    """Latency/throughput per concurrency, the first level's scores per list, and what the sidecar reported."""
    requests = [to_request(item) for item in lists]
    sidecar = start_sidecar_process(settings)
    try:
        channel = grpc.insecure_channel(
            sidecar.address, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        )
        stub = pb_grpc.RerankerStub(channel)
        for message in requests[:3]:  # warm-up
            stub.Rerank(message, timeout=REQUEST_DEADLINE_S)
        replies: list[pb.RerankResponse | None] = [None] * len(requests)

        def call(item: int) -> None:
            replies[item] = stub.Rerank(requests[item], timeout=REQUEST_DEADLINE_S)

        results: dict[int, Level] = {}
        first_scores: list[dict[str, float]] = []
        served: dict[str, Any] = {}
        for concurrency in levels:
            level = run_level(call, len(requests), concurrency, lambda: process_cpu_seconds(sidecar.process.pid))
            done = [r for r in replies if r is not None]
            results[concurrency] = with_pairs(level, sum(len(m.candidates) for m in requests))
            if not first_scores:
                first_scores = [{r.id: r.relevance_score for r in reply.results} for reply in done]
                served = {
                    "model_version": done[0].model_version,
                    "cache_hits": sum(r.cache_hits for r in done),
                    "tokens": sum(r.timings.tokens for r in done),
                    "padded_tokens": sum(r.timings.padded_tokens for r in done),
                }
            served[f"mean_batches_per_request_c{concurrency}"] = float(np.mean([r.timings.batches for r in done]))
            served[f"mean_pairs_per_batch_call_c{concurrency}"] = float(
                np.mean([r.timings.batch_pairs / max(1, r.timings.batches) for r in done])
            )
            served[f"mean_queue_ms_c{concurrency}"] = float(np.mean([r.timings.queue_ms for r in done]))
        channel.close()
    finally:
        sidecar.stop()
    return results, first_scores, served


def bench_baseline(
    settings: Settings, lists: list[RerankList], levels: list[int]
) -> tuple[dict[int, Level], list[dict[str, float]], dict[str, Any]]:
    """The PyTorch fp32 baseline at each concurrency (forward passes one at a time, all cores each)."""
    import torch

    device = "cuda" if settings.device != "cpu" and torch.cuda.is_available() else "cpu"
    threads = settings.inference_threads or available_cores()
    model = TorchCrossEncoder(
        model_dir(settings.models_dir(), CROSS_ENCODER), settings.max_pair_tokens, threads, device
    )
    forward = threading.Lock()
    scores: list[dict[str, float]] = [{} for _ in lists]
    padded = [0] * len(lists)

    def call(item: int) -> None:
        products = lists[item].products
        ids, mask, types = model.batch(lists[item].query, products)
        with forward:
            logits = model.score_batch(ids, mask, types)
        scores[item] = {p.id: float(s) for p, s in zip(products, logits, strict=True)}
        padded[item] = int(ids.size)

    for item in range(min(3, len(lists))):  # warm-up
        call(item)
    results: dict[int, Level] = {}
    first_scores: list[dict[str, float]] = []
    for concurrency in levels:
        level = run_level(call, len(lists), concurrency, time.process_time)
        results[concurrency] = with_pairs(level, sum(len(item.products) for item in lists))
        if not first_scores:
            first_scores = [dict(s) for s in scores]
    facts = {
        "torch": torch.__version__,
        "device": device,
        "threads": threads,
        "attention": model.model.config._attn_implementation,
        "parity_with_served_fp32_onnx": model.parity,
        "padded_tokens": sum(padded),
        "how": "fp32 BertForSequenceClassification, one batch per request padded to its longest pair; "
        "with N clients, N threads share one model and forward passes run one at a time on all cores",
    }
    return results, first_scores, facts


def todays_configuration(settings: Settings) -> Settings | None:
    """The sidecar as configured before calibrated int8 and the cascade (dynamic int8 on the CPU, every
    candidate through the full model), or None when `settings` already serve exactly that (or CUDA)."""
    from shoprank.onnx_session import resolve_device
    from sidecar.cross_encoder import default_precision

    if resolve_device(settings.device) == "cuda":
        return None
    files = load_metadata(model_dir(settings.models_dir(), CROSS_ENCODER)).files
    chosen = settings.cross_encoder_precision
    precision = default_precision("cpu", files) if chosen == "auto" else chosen
    if precision == TODAY["cross_encoder_precision"] and settings.cascade_top_k == TODAY["cascade_top_k"]:
        return None
    return settings.model_copy(update=TODAY)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `shoprank bench rerank`."""
    parser.add_argument("--queries", type=int, default=100, help="judged ESCI queries (all 100 by default)")
    parser.add_argument("--candidates", type=int, default=100, help="candidates per query (the rerank window)")
    parser.add_argument("--concurrency", default="1,8", help="comma-separated client counts")
    parser.add_argument("--esci", type=Path, default=ESCI, help="ESCI directory (products.ndjson, judgments.csv)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the padding products and the order")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON report here")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run both sides on the same inputs and report them side by side."""
    levels = [int(c) for c in str(args.concurrency).split(",")]
    lists = rerank_lists(args.esci, args.queries, args.candidates, args.seed)
    if not lists:
        raise UserInputError(f"no judged queries found under {args.esci}")
    machine = hardware()
    sidecar, sidecar_scores, served = bench_sidecar(settings, lists, levels)
    today = todays_configuration(settings)
    today_run = bench_sidecar(today, lists, levels) if today is not None else None
    baseline, baseline_scores, baseline_facts = bench_baseline(settings, lists, levels)
    machine["load_average_1m_end"] = hardware()["load_average_1m"]
    report = build_report(args, settings, lists, machine, sidecar, baseline, served, baseline_facts)
    if today_run is not None:
        today_levels, today_scores, today_served = today_run
        report["sidecar_today"] = {str(c): asdict(level) for c, level in today_levels.items()} | {
            "served": today_served,
            "ndcg@10": mean_ndcg(today_scores, lists),
            "configuration": TODAY,
        }
        first = min(today_levels)
        report["ratios"][f"p50_today_over_baseline_c{first}"] = today_levels[first].p50_ms / baseline[first].p50_ms
    report["ndcg@10"] = {
        "served": mean_ndcg(sidecar_scores, lists),
        "pytorch_fp32": mean_ndcg(baseline_scores, lists),
    }
    report["ndcg@10"]["delta"] = report["ndcg@10"]["served"] - report["ndcg@10"]["pytorch_fp32"]
    report["targets"]["ndcg_within"] = abs(report["ndcg@10"]["delta"]) <= TARGETS["ndcg_delta_max"]
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


def build_report(
    args: argparse.Namespace,
    settings: Settings,
    lists: list[RerankList],
    machine: dict[str, Any],
    sidecar: dict[int, Level],
    baseline: dict[int, Level],
    served: dict[str, Any],
    baseline_facts: dict[str, Any],
) -> dict[str, Any]:
    """The JSON report: inputs, hardware, both sides per concurrency, ratios and targets."""
    first, last = min(sidecar), max(sidecar)
    p50_ratio = sidecar[first].p50_ms / baseline[first].p50_ms
    throughput_ratio = sidecar[last].pairs_per_s / baseline[last].pairs_per_s
    return {
        "benchmark": "rerank",
        "inputs": {
            "queries": len(lists),
            "candidates": args.candidates,
            "max_pair_tokens": settings.max_pair_tokens,
            "judged_pairs": sum(len(item.gains) for item in lists),
            "score_cache": "off (every pair computed)",
            "seed": args.seed,
        },
        "hardware": {**machine, "torch": baseline_facts["torch"]},
        "sidecar": {str(c): asdict(level) for c, level in sidecar.items()} | {"served": served},
        "baseline": {str(c): asdict(level) for c, level in baseline.items()} | {"facts": baseline_facts},
        "ratios": {
            f"p50_sidecar_over_baseline_c{first}": p50_ratio,
            f"pairs_per_s_sidecar_over_baseline_c{last}": throughput_ratio,
            f"cpu_per_pair_baseline_over_sidecar_c{first}": (
                baseline[first].cpu_s_per_100_pairs / sidecar[first].cpu_s_per_100_pairs
            ),
        },
        "targets": {
            "p50_at_most_a_third": p50_ratio <= TARGETS["p50_ratio_max"],
            "pairs_per_s_at_least_3x": throughput_ratio >= TARGETS["pairs_per_s_ratio_min"],
        },
    }


def print_table(report: dict[str, Any]) -> None:
    """The report as a human-readable table."""
    inputs, machine = report["inputs"], report["hardware"]
    served, facts = report["sidecar"]["served"], report["baseline"]["facts"]
    print(
        f"rerank: {inputs['queries']} ESCI queries x {inputs['candidates']} candidates, "
        f"max {inputs['max_pair_tokens']} tokens a pair, score cache {inputs['score_cache']}"
    )
    print(
        f"hardware: {machine['cpu']}, {machine['cores']} cores, onnxruntime {machine['onnxruntime']}, "
        f"torch {machine['torch']}, load average {machine['load_average_1m']} -> {machine['load_average_1m_end']}"
    )
    print(f"sidecar: {served['model_version']} over gRPC; baseline: {facts['how']}")
    if "sidecar_today" in report:
        today = report["sidecar_today"]
        print(f"sidecar_today: {today['served']['model_version']} ({today['configuration']}), the configuration before")
    print(f"{'side':13} {'clients':>7} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'pairs/s':>9} {'CPU s/100':>9}")
    for side in ("sidecar", "sidecar_today", "baseline"):
        for key, level in report.get(side, {}).items():
            if key.isdigit():
                print(
                    f"{side:13} {level['concurrency']:7d} {level['p50_ms']:9.1f} {level['p95_ms']:9.1f} "
                    f"{level['p99_ms']:9.1f} {level['pairs_per_s']:9.1f} {level['cpu_s_per_100_pairs']:9.2f}"
                )
    padding = served["padded_tokens"] / max(1, served["tokens"])
    print(
        f"tokens: sidecar computed {served['padded_tokens']} padded for {served['tokens']} real ({padding:.3f}x); "
        f"baseline {facts['padded_tokens']}"
    )
    for name, value in report["ratios"].items():
        print(f"{name}: {value:.3f}")
    ndcg = report["ndcg@10"]
    print(
        f"NDCG@10 on judged lists: served {ndcg['served']:.4f}, PyTorch fp32 {ndcg['pytorch_fp32']:.4f} "
        f"(delta {ndcg['delta']:+.4f})"
        + (f"; today's configuration {report['sidecar_today']['ndcg@10']:.4f}" if "sidecar_today" in report else "")
    )
    print("targets: " + ", ".join(f"{name} {'met' if met else 'MISSED'}" for name, met in report["targets"].items()))
