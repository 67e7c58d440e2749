"""`shoprank eval-intent`: the intent model's accuracy on judged queries, and its effect on the first stage."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoprank.cli.common import SEARCHING, add_command, print_json
from shoprank.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from engines.base import Hit
    from evaluation.intent_quality import IntentReport, WindowReranker
    from shoprank.bi_encoder import BiEncoder


def register(subparsers: Any) -> None:
    """Add the `eval-intent` command."""
    parser = add_command(
        subparsers,
        "eval-intent",
        "measure the query intent model of the live index: top-1/top-3 accuracy and log-loss against the categories "
        "of each judged query's exact products beside two baselines, and first-stage NDCG@10 with its boost and "
        "filter chosen out of fold (k-fold by query), with bootstrap CIs",
        SEARCHING,
    )
    parser.add_argument("--judgments", type=Path, help="CSV with query, product_id and rating and/or esci_label")
    parser.add_argument(
        "--wands",
        type=Path,
        help="also check the method on WANDS' query.csv (Wayfair's query classes, not the catalogue's taxonomy): "
        "class centroids of a seeded half of its queries, top-1/top-3 on the other half",
    )
    parser.add_argument(
        "--rerank",
        action="store_true",
        help="also measure the served ranking: each intent-boosted (or filtered) window reranked by the released "
        "cross-encoder and blended as the sidecar does, the setting chosen out of fold on the served NDCG@10 "
        "(scores every window's pairs once: minutes on a CPU)",
    )
    parser.add_argument("--json", action="store_true", help="print the report, with every query's figures, as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Measure and print the table (or JSON)."""
    from evaluation.intent_format import format_report
    from evaluation.intent_wands import format_wands, load_wands_queries, measure_wands
    from shoprank.bi_encoder import BiEncoder

    if args.judgments is None and args.wands is None:
        raise ValueError("say what to measure on: --judgments PATH (the catalogue's intent model) and/or --wands PATH")
    encoder = BiEncoder.from_settings(settings, threads=1)
    reports: dict[str, Any] = {}
    lines: list[str] = []
    if args.judgments is not None:
        report = _judged(args.judgments, settings, encoder, rerank=args.rerank)
        reports["judged"] = report.as_dict()
        lines.append(format_report(report))
    if args.wands is not None:
        wands = measure_wands(load_wands_queries(args.wands), encoder)
        reports["wands"] = wands.as_dict()
        lines.append(format_wands(wands))
    if args.json:
        print_json(reports)
    else:
        print("\n".join(lines))
    return 0


def _judged(path: Path, settings: Settings, encoder: BiEncoder, rerank: bool = False) -> IntentReport:
    """The live index's intent model measured on judged queries (and on the served ranking)."""
    from engines.factory import open_engine
    from evaluation.intent_quality import measure_intent
    from intent.store import load_live_model, models_dir
    from relevance.judgments import load_judgments

    judgments = load_judgments(path)
    engine = open_engine(settings)
    model = load_live_model(
        models_dir(settings.data_dir, settings.engine, settings.index_name),
        engine.live_version(),
        depth=settings.intent_depth,
        temperature=settings.intent_temperature,
    )
    reranker, name = _window_reranker(settings, encoder) if rerank else (None, None)
    return measure_intent(engine, encoder, model, judgments, settings.rerank_window, reranker, name)


def _window_reranker(settings: Settings, encoder: BiEncoder) -> tuple[WindowReranker, str]:
    """The released cross-encoder at the served precision, blended as the sidecar does, no diversity;
    each (query, product) pair is scored once however many settings rerank it."""
    from evaluation.memo_scorer import MemoScorer
    from evaluation.stages import candidate_product
    from shoprank.model_meta import CROSS_ENCODER, model_dir
    from shoprank.onnx_session import resolve_device
    from sidecar.cross_encoder import CrossEncoder
    from sidecar.diversify import DiversityParams
    from sidecar.domain import Candidate, RerankQuery
    from sidecar.model_loading import served_precision
    from sidecar.rerank_service import RerankService
    from training.built_models import ensure_models

    models = ensure_models(settings)
    cross_encoder = CrossEncoder(
        models,
        device=resolve_device(settings.device),
        precision=served_precision(settings),
        max_length=settings.max_pair_tokens,
        directory=model_dir(models, CROSS_ENCODER),
    )
    service = RerankService(MemoScorer(cross_encoder), encoder)
    no_diversity = DiversityParams(method="none")

    def rerank(query: str, hits: Sequence[Hit]) -> list[str]:
        candidates = [Candidate(h.product.id, h.score, candidate_product(h.product), h.vector) for h in hits]
        if not candidates:
            return []
        outcome = service.rerank(
            RerankQuery(query, candidates, len(candidates), settings.blend_weight, diversity=no_diversity)
        )
        return [result.id for result in outcome.results]

    return rerank, f"{service.model_version} (blend {settings.blend_weight:g})"
