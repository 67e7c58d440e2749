"""`shoprank eval-personal`: does the session's personal term rank what a shopper prefers higher, at what cost?

Simulated shoppers (evaluation/shoppers.py) ask each judged query after histories of each length;
each query's judged products, in the hybrid first stage's order, go through the sidecar's
`RerankService` (the served cross-encoder, blend and diversity defaults) once without and once
with the shopper's interactions (vectors: the engine's stored ones). Reported per history length,
with bootstrap CIs over (query, shopper) units: NDCG@10 on personal relevance with and without
the personal term, their paired difference, and the plain ESCI NDCG@10 (which at history 0 must
not move: a new shopper is ranked as before). Latency: the personal step's own time per request
(p50/p95) and the whole rerank call with the cross-encoder's scores cached, with and without
history, measured in the same run.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from engines.base import RetrievalQuery
from evaluation.bootstrap import bootstrap_ci, paired_difference
from evaluation.evaluate import EvalConfig, QuerySelection, hardware, select_queries
from evaluation.memo_scorer import MemoScorer
from evaluation.shoppers import ShopperConfig, Simulator, personal_gains
from evaluation.stages import candidate_product
from evaluation.workspace import trained_queries
from indexer.catalogue_cache import catalogue_engine
from indexer.readers import read_catalogue
from indexer.validate import FieldMapping, validate_row
from relevance.judgments import load_judgments
from relevance.metrics import ndcg_at_k
from shoprank.bi_encoder import BiEncoder
from shoprank.errors import UserInputError
from shoprank.model_meta import CROSS_ENCODER, model_dir
from shoprank.onnx_session import resolve_device
from shoprank.schema import Product
from shoprank.settings import Settings
from shoprank.template import query_text
from sidecar.cross_encoder import CrossEncoder
from sidecar.domain import Candidate, RerankQuery
from sidecar.model_loading import served_precision
from sidecar.personalise import Interaction, PersonalParams
from sidecar.rerank_service import RerankService
from sidecar.server import defaults_from
from sidecar.wire_request import RequestDefaults
from training.built_models import ensure_models

K = 10
DEPTH = 1000  # first-stage depth that orders the judged products (as `shoprank eval`'s judged mode)
LATENCY_HISTORY = 10  # the history length whose requests the latency figures time
# Each timed request runs this often, alternating with its no-history twin, and its fastest run counts: the
# request's own cost, not the load other processes put on a shared machine at that moment (timeit's rule).
LATENCY_REPEATS = 5


@dataclass(frozen=True)
class PersonalEvalConfig:
    """What to measure on, the shoppers, and the personal weights (caps of beta) to compare."""

    judgments: Path
    catalogue: Path
    shoppers: ShopperConfig = field(default_factory=ShopperConfig)
    weights: tuple[float, ...] = ()  # empty: the served default (settings.personal_weight)
    queries: QuerySelection = "unseen"
    max_queries: int | None = None


def _catalogue(path: Path) -> list[Product]:
    mapping = FieldMapping()
    return [p for p in (validate_row(row, mapping) for row in read_catalogue(path)) if isinstance(p, Product)]


def _stats(values: Sequence[float]) -> dict[str, float]:
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return {"p50": float("nan"), "p95": float("nan"), "n": 0}
    return {"p50": float(np.percentile(data, 50)), "p95": float(np.percentile(data, 95)), "n": int(data.size)}


def _ranked(
    service: RerankService,
    defaults: RequestDefaults,
    text: str,
    candidates: Sequence[Candidate],
    history: Sequence[Interaction],
    params: PersonalParams,
    now_ms: int,
) -> tuple[list[str], float, float]:
    """The served ranking of the candidates for this history; the call's wall time and the personal step's (ms)."""
    query = RerankQuery(
        query=text,
        candidates=candidates,
        top_k=len(candidates),
        blend_weight=defaults.blend_weight,
        diversity=defaults.diversity,
        interactions=history,
        personal=params,
        now_ms=now_ms,
    )
    started = time.perf_counter()
    outcome = service.rerank(query)
    return [r.id for r in outcome.results], (time.perf_counter() - started) * 1e3, outcome.timings.personal_ms


def _timed(
    service: RerankService,
    defaults: RequestDefaults,
    text: str,
    candidates: Sequence[Candidate],
    history: Sequence[Interaction],
    params: PersonalParams,
    now_ms: int,
) -> tuple[float, float, float]:
    """The fastest of LATENCY_REPEATS alternated calls with and without the history (scores cached), and of
    the personal step alone: the same request, at the same moments of a shared machine, for both."""
    with_, without, step = [], [], []
    for _ in range(LATENCY_REPEATS):
        _, ms, step_ms = _ranked(service, defaults, text, candidates, history, params, now_ms)
        with_.append(ms)
        step.append(step_ms)
        without.append(_ranked(service, defaults, text, candidates, (), params, now_ms)[1])
    return min(with_), min(without), min(step)


def evaluate_personal(settings: Settings, config: PersonalEvalConfig) -> dict[str, Any]:
    """Run the simulation and return the report (JSON-ready)."""
    started = time.perf_counter()
    models_dir = ensure_models(settings)
    device = resolve_device(settings.device)
    encoder = BiEncoder(models_dir, device=device)
    engine = catalogue_engine(settings, encoder, config.catalogue)
    vectors_of = getattr(engine, "vectors", None)
    if not callable(vectors_of):
        raise UserInputError("eval-personal needs an engine that returns stored vectors (LanceDB or OpenSearch)")
    directory = model_dir(models_dir, CROSS_ENCODER)
    cross = CrossEncoder(
        models_dir,
        device=device,
        precision=served_precision(settings),
        max_length=settings.max_pair_tokens,
        directory=directory,
    )
    service = RerankService(MemoScorer(cross), encoder)
    judgments, notes = select_queries(
        load_judgments(config.judgments),
        EvalConfig(judgments=config.judgments, queries=config.queries, max_queries=config.max_queries),
        trained_queries(directory),
    )
    catalogue = _catalogue(config.catalogue)
    products = {p.id: p for p in catalogue}
    defaults = defaults_from(settings)
    base_params = defaults.personal
    weights = config.weights or (base_params.weight,)
    now_ms = 1_800_000_000_000  # a fixed clock: the same seed gives the same histories and decay
    simulator = Simulator(catalogue, config.shoppers, now_ms)
    lengths = config.shoppers.histories
    # per weight, per history length: lists over (query, shopper) units
    personal_ndcg: dict[float, dict[int, list[float]]] = {w: {n: [] for n in lengths} for w in weights}
    esci_ndcg: dict[float, dict[int, list[float]]] = {w: {n: [] for n in lengths} for w in weights}
    base_personal: dict[int, list[float]] = {n: [] for n in lengths}
    base_esci: dict[int, list[float]] = {n: [] for n in lengths}
    identical_at_zero = True
    personal_ms: list[float] = []
    rerank_ms: dict[str, list[float]] = {f"history {LATENCY_HISTORY}": [], "history 0": []}
    for q_index, query in enumerate(judgments.queries):
        gains = judgments.gains[query]
        text = query_text(query)
        hits = engine.retrieve(
            RetrievalQuery(text=text, vector=encoder.encode_one(text), mode="hybrid", size=DEPTH, with_vectors=True)
        ).hits
        rank = {h.product.id: i for i, h in enumerate(hits)}
        judged = sorted((pid for pid in gains if pid in products), key=lambda pid: (rank.get(pid, len(rank)), pid))
        stored = vectors_of(judged)
        score = {h.product.id: h.score for h in hits}
        candidates = [
            Candidate(pid, score.get(pid, 0.0), candidate_product(products[pid]), stored.get(pid)) for pid in judged
        ]

        plain, _, _ = _ranked(
            service, defaults, text, candidates, (), replace(base_params, weight=0.0), now_ms
        )  # also warms the memo
        for s_index in range(config.shoppers.shoppers):
            rng = random.Random(f"{config.shoppers.seed}:{q_index}:{s_index}")
            preference = simulator.preference(rng, [products[pid] for pid in judged])
            drawn = simulator.history(rng, preference, max(lengths), set(gains))
            mine = personal_gains(gains, products, preference, config.shoppers.strength)
            for n in lengths:
                history = sorted(drawn[:n], key=lambda i: -i.timestamp_ms)
                history_vectors = vectors_of(sorted({i.product_id for i in history}))
                history = [replace(i, embedding=history_vectors.get(i.product_id)) for i in history]
                base_personal[n].append(ndcg_at_k(plain, mine, K))
                base_esci[n].append(ndcg_at_k(plain, gains, K))
                for w in weights:
                    order, _, _ = _ranked(
                        service, defaults, text, candidates, history, replace(base_params, weight=w), now_ms
                    )
                    personal_ndcg[w][n].append(ndcg_at_k(order, mine, K))
                    esci_ndcg[w][n].append(ndcg_at_k(order, gains, K))
                    if n == 0 and order != plain:
                        identical_at_zero = False
                if n == LATENCY_HISTORY:
                    params = replace(base_params, weight=weights[0])
                    with_, without, step = _timed(service, defaults, text, candidates, history, params, now_ms)
                    rerank_ms[f"history {n}"].append(with_)
                    rerank_ms["history 0"].append(without)
                    personal_ms.append(step)
    by_weight = {}
    for w in weights:
        rows = {}
        for n in lengths:
            rows[str(n)] = {
                "personal_ndcg_without": bootstrap_ci(base_personal[n]).as_dict(),
                "personal_ndcg_with": bootstrap_ci(personal_ndcg[w][n]).as_dict(),
                "difference": paired_difference(personal_ndcg[w][n], base_personal[n]).as_dict(),
                "esci_ndcg_without": bootstrap_ci(base_esci[n]).as_dict(),
                "esci_ndcg_with": bootstrap_ci(esci_ndcg[w][n]).as_dict(),
            }
        by_weight[f"{w:g}"] = rows
    return {
        "info": {
            "judgments": str(config.judgments),
            "catalogue": str(config.catalogue),
            "queries": len(judgments.queries),
            "units_per_length": len(judgments.queries) * config.shoppers.shoppers,
            "shoppers": asdict(config.shoppers),
            "personal": asdict(base_params),
            "blend_weight": defaults.blend_weight,
            "diversity": {"method": defaults.diversity.method, "strength": defaults.diversity.strength},
            "models": {"cross_encoder": cross.version, "bi_encoder": encoder.version},
            "hardware": hardware(),
            "notes": notes,
            "seconds": round(time.perf_counter() - started, 1),
        },
        "by_weight": by_weight,
        "zero_history_rankings_identical": identical_at_zero,
        "latency_ms": {
            "personal_step": _stats(personal_ms),
            "rerank_scores_cached": {name: _stats(values) for name, values in rerank_ms.items()},
        },
    }


def format_personal(report: Mapping[str, Any]) -> str:
    """The report as the table `shoprank eval-personal` prints."""
    info = report["info"]
    s = info["shoppers"]
    lines = [
        f"eval-personal: {info['queries']} queries x {s['shoppers']} shoppers (seed {s['seed']}, attributes "
        f"{','.join(s['attributes'])}, strength {s['strength']}, noise {s['noise']}); {info['hardware']}",
        f"personal: ramp {info['personal']['ramp']}, half-life {info['personal']['half_life_s']:g} s, "
        f"centres {info['personal']['centres']}; blend {info['blend_weight']}, diversity {info['diversity']['method']}",
        "",
        f"{'weight':>6} {'history':>7}  {'personal NDCG@10 without':>26}  {'with':>22}  {'difference':>24}  "
        f"{'ESCI NDCG@10 with':>22}",
    ]

    def ci(d: Mapping[str, float]) -> str:
        return f"{d['mean']:.4f} [{d['low']:.4f}, {d['high']:.4f}]"

    for weight, rows in report["by_weight"].items():
        for n, row in rows.items():
            lines.append(
                f"{weight:>6} {n:>7}  {ci(row['personal_ndcg_without']):>26}  {ci(row['personal_ndcg_with']):>22}  "
                f"{ci(row['difference']):>24}  {ci(row['esci_ndcg_with']):>22}"
            )
    first = next(iter(report["by_weight"].values()))
    zero = first.get("0")
    if zero is not None:
        lines.append(
            f"\nplain ESCI NDCG@10 at history 0: {zero['esci_ndcg_without']['mean']:.4f} without, "
            f"{zero['esci_ndcg_with']['mean']:.4f} with personalisation on "
            f"(rankings identical: {report['zero_history_rankings_identical']})"
        )
    latency = report["latency_ms"]
    step = latency["personal_step"]
    cached = latency["rerank_scores_cached"]
    lines.append(
        f"latency (ms, p50 / p95): personal step at history {LATENCY_HISTORY}: {step['p50']:.3f} / {step['p95']:.3f}; "
        + "; ".join(f"rerank, scores cached, {name}: {v['p50']:.3f} / {v['p95']:.3f}" for name, v in cached.items())
    )
    return "\n".join(lines)
