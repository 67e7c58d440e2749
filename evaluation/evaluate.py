"""The evaluation use case: judgments in, a report of every stage in both modes out.

Which queries: by default every judged query the evaluated cross-encoder was not trained on
(its training record lists them), so a foreign judgments file is evaluated whole and the
project's own file on its held-out queries; `queries="all"` takes every query.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from evaluation.report import PAGE, ModeReport, format_table, score_stage
from evaluation.scored_windows import record_windows, windows_in
from evaluation.stages import MODES, Mode, Reranker, StageRun, StageRunner
from evaluation.sweep_grid import SweepConfig
from evaluation.tradeoff import TradeoffReport, diversity_targets, format_tradeoff, run_sweep
from evaluation.workspace import trained_queries, zero_shot_models
from indexer.catalogue_cache import catalogue_engine
from relevance.judgments import Judgments, load_judgments, normalise_query, split_queries
from relevance.metrics import has_relevant
from shoprank.bi_encoder import BiEncoder
from shoprank.errors import UserInputError
from shoprank.model_meta import CROSS_ENCODER, model_dir
from shoprank.onnx_session import resolve_device
from shoprank.schema import Product
from shoprank.settings import Settings
from shoprank.template import bi_encoder_text
from sidecar.cascade import CascadeScorer, FirstStageOrder
from sidecar.cross_encoder import CrossEncoder
from sidecar.diversify import DiversityParams
from sidecar.model_loading import open_ltr, served_precision
from sidecar.rerank_service import RerankService
from sidecar.server import defaults_from
from training.built_models import ensure_models

log = logging.getLogger(__name__)

RERANK_STAGES = ("rerank_zero_shot", "rerank", "rerank_fp32", "diversified")
ALL_STAGES = ("bm25", "knn", "hybrid", *RERANK_STAGES)
QuerySelection = Literal["unseen", "all"]
SplitName = Literal["train", "dev", "test"]
# End-to-end NDCG@10 margin the reranker must add over the best first stage.
END_TO_END_MARGIN = 0.03


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate and on what."""

    judgments: Path
    catalogue: Path | None = None
    modes: Sequence[Mode] = MODES
    stages: Sequence[str] = ALL_STAGES
    queries: QuerySelection = "unseen"
    max_queries: int | None = None
    cross_encoder_dir: Path | None = None
    zero_shot_dir: Path | None = None
    depth: int = 1000
    end_to_end_fp32: bool = False
    split: SplitName | None = None  # only the queries of this part of the seeded by-query split
    sweep: Sequence[SweepConfig] = ()  # diversity configurations of the trade-off sweep (none: no sweep)


@dataclass
class EvalReport:
    """Reports per mode and what they were measured with."""

    modes: dict[str, ModeReport]
    info: dict[str, Any] = field(default_factory=dict)
    tradeoff: dict[str, TradeoffReport] = field(default_factory=dict)

    def targets(self) -> dict[str, Any]:
        """The release targets: judged rerank beats knn and zero-shot (CI excludes 0); end-to-end
        rerank >= best first stage + 0.03 NDCG@10."""
        out: dict[str, Any] = {}
        judged = self.modes.get("judged")
        if judged and "rerank" in judged.stages:
            for baseline in ("knn", "rerank_zero_shot"):
                if baseline in judged.stages:
                    diff = judged.difference("rerank", baseline)
                    out[f"judged: rerank > {baseline}"] = diff.low > 0.0
        e2e = self.modes.get("end_to_end")
        best = e2e.best_first_stage() if e2e else None
        if e2e and best and "rerank" in e2e.stages:
            diff = e2e.difference("rerank", best)
            out[f"end_to_end: rerank >= {best} + {END_TO_END_MARGIN}"] = diff.mean >= END_TO_END_MARGIN
        out.update(diversity_targets(self.modes))
        return out

    def as_dict(self) -> dict[str, Any]:
        """The `--json` output."""
        return {
            "modes": {name: report.as_dict() for name, report in self.modes.items()},
            "targets": self.targets(),
            **({"tradeoff": {m: t.as_dict() for m, t in self.tradeoff.items()}} if self.tradeoff else {}),
            **self.info,
        }

    def format(self) -> str:
        """The terminal report."""
        lines = [f"{k}: {v}" for k, v in self.info.items() if isinstance(v, str | int | float)]
        for report in self.modes.values():
            lines += ["", format_table(report)]
        for tradeoff in self.tradeoff.values():
            lines += ["", format_tradeoff(tradeoff)]
        lines.append("")
        lines += [f"target {name}: {'met' if met else 'NOT met'}" for name, met in self.targets().items()]
        return "\n".join(lines)


def hardware() -> str:
    """One line saying what the figures were measured on."""
    return f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs, {platform.system()}".strip()


def select_queries(judgments: Judgments, config: EvalConfig, seen: set[str]) -> tuple[Judgments, list[str]]:
    """The queries to evaluate and notes on what was left out and why."""
    notes = []
    queries = judgments.queries
    if config.queries == "unseen" and seen:
        kept = [q for q in queries if normalise_query(q) not in seen]
        if len(kept) < len(queries):
            notes.append(
                f"{len(queries) - len(kept)} queries the cross-encoder was trained on are left out "
                "(pass --queries all to include them)"
            )
        queries = kept
    informative = [q for q in queries if has_relevant(judgments.gains[q])]
    if len(informative) < len(queries):
        notes.append(f"{len(queries) - len(informative)} queries without any E/S judgment are left out")
    queries = informative[: config.max_queries] if config.max_queries else informative
    if not queries:
        raise UserInputError("no judged queries left to evaluate; see --queries")
    return judgments.subset(queries), notes


def _products(engine: Any, ids: Sequence[str]) -> dict[str, Product]:
    found: dict[str, Product] = {}
    ids = list(ids)
    for start in range(0, len(ids), 1000):
        found.update({p.id: p for p in engine.get(ids[start : start + 1000])})
    return found


def _embeddings(encoder: BiEncoder, products: Mapping[str, Product]) -> dict[str, npt.NDArray[np.float32]]:
    ids = list(products)
    vectors = encoder.encode([bi_encoder_text(products[i]) for i in ids])
    return dict(zip(ids, vectors, strict=True))


def _diversity(settings: Settings) -> tuple[DiversityParams, str | None]:
    """The sidecar's default diversity (the same settings → params mapping the server uses)."""
    default = defaults_from(settings).diversity
    if default.method != "none":
        return default, None
    note = f"the sidecar's default diversity is none; the diversified stage uses mmr at {settings.diversity_strength}"
    return replace(default, method="mmr"), note


def _rerankers(
    settings: Settings, config: EvalConfig, models_dir: Path, device: str, embedder: BiEncoder, mode: Mode
) -> tuple[dict[str, Reranker], list[str]]:
    notes: list[str] = []
    wanted = [s for s in RERANK_STAGES if s in config.stages]
    if mode == "end_to_end" and not config.end_to_end_fp32 and "rerank_fp32" in wanted:
        wanted.remove("rerank_fp32")
    directory = config.cross_encoder_dir or model_dir(models_dir, CROSS_ENCODER)
    out: dict[str, Reranker] = {}
    tokens = settings.max_pair_tokens
    precision = served_precision(settings)
    for stage in wanted:
        if stage == "rerank_zero_shot":
            # At the served precision too: rerank vs zero-shot compares training, not quantisation.
            root = config.zero_shot_dir or zero_shot_models(settings)
            encoder = CrossEncoder(root, device=device, precision=precision, max_length=tokens)
        elif stage == "rerank_fp32":
            encoder = CrossEncoder(models_dir, device=device, precision="fp32", max_length=tokens, directory=directory)
        else:
            encoder = CrossEncoder(
                models_dir, device=device, precision=precision, max_length=tokens, directory=directory
            )
        diversity = DiversityParams(method="none")
        if stage == "diversified":
            diversity, note = _diversity(settings)
            notes += [note] if note else []
        scorer = (
            CascadeScorer(encoder, FirstStageOrder(), settings.cascade_top_k) if settings.cascade_top_k else encoder
        )
        # The served ranking: with --ltr the release's LTR stage ranks after the fine-tuned model, as in the sidecar.
        ltr = open_ltr(settings, encoder.version, embedder) if stage in ("rerank", "diversified") else None
        out[stage] = Reranker(RerankService(scorer, embedder, ltr), diversity, settings.blend_weight)
    if "rerank" in out and not out["rerank"].service.scorer.version.startswith("minilm-l6-ce-zeroshot"):
        return out, notes
    if "rerank" in out:
        notes.append("the rerank stage's model is not fine-tuned (no release built): expect zero-shot quality")
    return out, notes


def evaluate(settings: Settings, config: EvalConfig) -> EvalReport:
    """Run the configured stages in the configured modes and build the report."""
    started = time.perf_counter()
    models_dir = ensure_models(settings)
    device = resolve_device(settings.device)
    encoder = BiEncoder(models_dir, device=device)
    engine = catalogue_engine(settings, encoder, config.catalogue)
    directory = config.cross_encoder_dir or model_dir(models_dir, CROSS_ENCODER)
    judgments = _split(load_judgments(config.judgments), config.split)
    judgments, notes = select_queries(judgments, config, trained_queries(directory))
    products = _products(engine, sorted(judgments.product_ids()))
    missing = judgments.product_ids() - set(products)
    if missing:
        notes.append(f"{len(missing)} judged products are not in the catalogue index and are left out")
        judgments = judgments.without_products(missing)
    vectors: dict[str, npt.NDArray[np.float32]] = {}

    reports: dict[str, ModeReport] = {}
    tradeoffs: dict[str, TradeoffReport] = {}
    versions: dict[str, str] = {"bi_encoder": encoder.version}
    for mode in config.modes:
        rerankers, mode_notes = _rerankers(settings, config, models_dir, device, encoder, mode)
        recorder = record_windows(rerankers) if config.sweep else None
        runner = StageRunner(engine, encoder, rerankers, window=settings.rerank_window, depth=config.depth)
        runs = runner.run(mode, judgments, products)
        if recorder:
            windows = windows_in(recorder.take(), judgments.queries)
            tradeoffs[mode] = run_sweep(mode, windows, judgments.gains, products, config.sweep)
        runs = {name: run for name, run in runs.items() if name in config.stages}
        _add_products(engine, runs, products, vectors, encoder)
        recall_n = settings.rerank_window if mode == "end_to_end" else None
        stages = {
            name: score_stage(
                run, judgments, products, vectors, recall_n if name in ("bm25", "knn", "hybrid") else None
            )
            for name, run in runs.items()
        }
        reports[mode] = ModeReport(mode, judgments.queries, stages, notes + mode_notes)
        versions.update({name: r.service.model_version for name, r in rerankers.items()})
    info = {
        "judgments": str(config.judgments),
        "queries": len(judgments.queries),
        **({"split": config.split} if config.split else {}),
        "engine": getattr(engine, "name", "?"),
        "rerank_window": settings.rerank_window,
        "max_pair_tokens": settings.max_pair_tokens,
        "blend_weight": settings.blend_weight,
        "ltr": ", ".join(f"{n}: {r.service.ltr.version}" for n, r in rerankers.items() if r.service.ltr) or "off",
        "hardware": hardware(),
        "models": versions,
        "seconds": round(time.perf_counter() - started, 1),
    }
    return EvalReport(reports, info, tradeoffs)


def _split(judgments: Judgments, split: SplitName | None) -> Judgments:
    """The judgments of one part of the seeded by-query split (training's split), or all of them."""
    if split is None:
        return judgments
    return judgments.subset(getattr(split_queries(judgments.queries), split))


def _add_products(
    engine: Any,
    runs: Mapping[str, StageRun],
    products: dict[str, Product],
    vectors: dict[str, npt.NDArray[np.float32]],
    encoder: BiEncoder,
) -> None:
    """Fetch and embed the first-page products of the rankings (for the diversity columns)."""
    page_ids = {pid for run in runs.values() for ranking in run.rankings.values() for pid in ranking[:PAGE]}
    products.update(_products(engine, sorted(page_ids - set(products))))
    vectors.update(_embeddings(encoder, {pid: products[pid] for pid in page_ids - set(vectors) if pid in products}))
