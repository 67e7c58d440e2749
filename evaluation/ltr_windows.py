"""The scored windows the learning-to-rank protocol trains and scores on, built once and cached.

One pass of the shipped stages (evaluation.stages.StageRunner) over every judged query in
both modes records, per query and mode: the first-stage rankings (BM25, kNN, hybrid), the
rerank window as the sidecar receives it (hybrid order, first-stage scores, the products'
fields and numbers, the query-candidate cosines), and the logits of the released and of the
zero-shot cross-encoder with the CPU seconds each took. Every LTR model, fold, window size
and baseline is then computed from the record, so repeated runs cost seconds, not a
cross-encoder pass. The cache key names the judgments, both model versions, the pair length
and the window.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.evaluate import _products
from evaluation.stages import MODES, Mode, Reranker, StageRunner, candidate_product
from evaluation.workspace import zero_shot_models
from indexer.catalogue_cache import cache_root, catalogue_engine
from relevance.judgments import Judgments, load_judgments
from relevance.metrics import has_relevant
from shoprank.bi_encoder import BiEncoder
from shoprank.model_meta import CROSS_ENCODER, model_dir
from shoprank.onnx_session import resolve_device
from shoprank.settings import Settings
from shoprank.template import query_text
from sidecar.cross_encoder import CrossEncoder
from sidecar.domain import CandidateProduct, RerankOutcome, RerankQuery, ScoredCandidate
from sidecar.ltr_features import cosines
from sidecar.model_loading import served_precision
from sidecar.rerank_service import PairScorer, RerankService
from training.built_models import ensure_models

log = logging.getLogger(__name__)

# The two cross-encoders whose logits are recorded: the release and the zero-shot base.
FINE_TUNED = "fine_tuned"
ZERO_SHOT = "zero_shot"
_PRODUCT_FIELDS = ("title", "brand", "category", "color", "bullet_points", "description", "price", "rating")


@dataclass(frozen=True)
class Window:
    """One query's rerank window in one mode, candidates in the order the sidecar receives them."""

    query: str
    ids: tuple[str, ...]
    first_stage: tuple[float, ...]
    cosines: tuple[float, ...]
    logits: dict[str, tuple[float, ...]]  # per cross-encoder (FINE_TUNED, ZERO_SHOT)
    cpu_s: dict[str, float]  # CPU seconds of scoring this window, per cross-encoder


@dataclass
class WindowSet:
    """Every query's windows and first-stage rankings per mode, with what they were built with."""

    windows: dict[str, dict[str, Window]]  # mode -> query -> window
    rankings: dict[str, dict[str, dict[str, list[str]]]]  # mode -> stage -> query -> ids
    products: dict[str, CandidateProduct]
    gains: dict[str, dict[str, float]]  # query -> product -> ESCI gain
    info: dict[str, Any]

    @property
    def queries(self) -> list[str]:
        """The judged queries, in the judgments' order."""
        return list(self.gains)


class _LogitRecorder(RerankService):
    """Scores each window with one cross-encoder and records the logits and their CPU time."""

    def __init__(self, scorer: PairScorer) -> None:
        super().__init__(scorer)
        self.records: dict[str, tuple[RerankQuery, list[float], float]] = {}

    def rerank(self, query: RerankQuery) -> RerankOutcome:
        """Record the window's logits; the ranking returned is not used."""
        cpu = time.process_time()
        scored = self.scorer.score(query.query, [c.product for c in query.candidates])
        self.records[query.query] = (query, [float(x) for x in scored.logits], time.process_time() - cpu)
        results = [ScoredCandidate(c.id, 0.0, 0.0) for c in query.candidates]
        return RerankOutcome(results, True, self.model_version)


def _product_dict(product: CandidateProduct) -> dict[str, Any]:
    data = {name: getattr(product, name) for name in _PRODUCT_FIELDS}
    data["category"] = list(product.category)
    data["rating_count"] = product.rating_count
    return data


def _product_from(data: Mapping[str, Any]) -> CandidateProduct:
    return CandidateProduct(**{**data, "category": tuple(data["category"])})


def _key(settings: Settings, judgments: Path, versions: Mapping[str, str], catalogue: Path | None) -> str:
    stat = judgments.stat()
    source = [str(judgments.resolve()), stat.st_size, stat.st_mtime_ns, dict(versions)]
    built = [settings.max_pair_tokens, settings.rerank_window, settings.index_name, str(settings.data_dir.resolve())]
    text = json.dumps([*source, *built, *([str(catalogue.resolve())] if catalogue else [])])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _informative(judgments: Judgments) -> Judgments:
    return judgments.subset([q for q in judgments.queries if has_relevant(judgments.gains[q])])


def build_windows(
    settings: Settings, judgments_path: Path, refresh: bool = False, catalogue: Path | None = None
) -> WindowSet:
    """The cached windows of every informative judged query (built on the first call: one
    cross-encoder pass per model over both modes)."""
    models_dir = ensure_models(settings)
    device = resolve_device(settings.device)
    encoder = BiEncoder(models_dir, device=device)
    precision = served_precision(settings)
    tokens = settings.max_pair_tokens
    scorers = {
        FINE_TUNED: CrossEncoder(
            models_dir,
            device=device,
            precision=precision,
            max_length=tokens,
            directory=model_dir(models_dir, CROSS_ENCODER),
        ),
        ZERO_SHOT: CrossEncoder(zero_shot_models(settings), device=device, precision=precision, max_length=tokens),
    }
    versions = {name: s.version for name, s in scorers.items()}
    path = cache_root(settings) / f"ltr-windows-{_key(settings, judgments_path, versions, catalogue)}.json"
    if path.is_file() and not refresh:
        return load_windows(path)
    engine = catalogue_engine(settings, encoder, catalogue)
    judgments = _informative(load_judgments(judgments_path))
    products = _products(engine, sorted(judgments.product_ids()))
    judgments = judgments.without_products(judgments.product_ids() - set(products))
    recorders = {name: _LogitRecorder(s) for name, s in scorers.items()}
    runner = StageRunner(engine, encoder, {n: Reranker(r) for n, r in recorders.items()}, window=settings.rerank_window)
    data: dict[str, Any] = {"windows": {}, "rankings": {}, "products": {}}
    started = time.perf_counter()
    for mode in MODES:
        data["windows"][mode], data["rankings"][mode] = _record_mode(mode, runner, judgments, products, recorders)
        log.warning("LTR windows: %s done after %.0f s", mode, time.perf_counter() - started)
    used = {pid for windows in data["windows"].values() for w in windows.values() for pid in w["ids"]}
    window_products = _products(engine, sorted(used - set(products)))
    all_products = {**products, **window_products}
    data["products"] = {pid: _product_dict(candidate_product(all_products[pid])) for pid in sorted(used)}
    data["gains"] = {q: dict(judgments.gains[q]) for q in judgments.queries}
    data["info"] = {
        "judgments": str(judgments_path),
        "cross_encoders": versions,
        "bi_encoder": encoder.version,
        "max_pair_tokens": tokens,
        "rerank_window": settings.rerank_window,
        "seconds": round(time.perf_counter() - started, 1),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)
    return load_windows(path)


def _record_mode(
    mode: Mode,
    runner: StageRunner,
    judgments: Judgments,
    products: Mapping[str, Any],
    recorders: Mapping[str, _LogitRecorder],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the stages of one mode; the windows it sent the rerankers and the first-stage rankings."""
    runs = runner.run(mode, judgments, products)
    first = next(iter(recorders.values()))
    windows = {}
    for query in judgments.queries:
        record = first.records.get(query_text(query))
        if record is None:
            continue
        sent = record[0]
        vector = runner.encoder.encode_one(query_text(query))
        cos = cosines(vector, [c.embedding for c in sent.candidates]) or [math.nan] * len(sent.candidates)
        windows[query] = {
            "ids": [c.id for c in sent.candidates],
            "first_stage": [c.first_stage_score for c in sent.candidates],
            "cosines": cos,
            "logits": {n: r.records[sent.query][1] for n, r in recorders.items()},
            "cpu_s": {n: r.records[sent.query][2] for n, r in recorders.items()},
        }
    rankings = {stage: runs[stage].rankings for stage in ("bm25", "knn", "hybrid")}
    return windows, rankings


def load_windows(path: Path) -> WindowSet:
    """Read a cached window set."""
    data = json.loads(path.read_text())
    windows = {
        mode: {
            q: Window(
                query=q,
                ids=tuple(w["ids"]),
                first_stage=tuple(w["first_stage"]),
                cosines=tuple(math.nan if c is None else c for c in w["cosines"]),
                logits={n: tuple(v) for n, v in w["logits"].items()},
                cpu_s=dict(w["cpu_s"]),
            )
            for q, w in by_query.items()
        }
        for mode, by_query in data["windows"].items()
    }
    products = {pid: _product_from(p) for pid, p in data["products"].items()}
    return WindowSet(windows, data["rankings"], products, data["gains"], data["info"] | {"cache": str(path)})


def cut(window: Window, size: int) -> Window:
    """The first `size` candidates of a window (a smaller rerank window of the same first stage)."""
    return Window(
        window.query,
        window.ids[:size],
        window.first_stage[:size],
        window.cosines[:size],
        {n: v[:size] for n, v in window.logits.items()},
        dict(window.cpu_s),  # the whole window's; the frontier prices a cut at CPU per pair x size
    )


def per_pair_cpu_ms(windows: Sequence[Window], scorer: str) -> float:
    """Mean CPU milliseconds per scored pair of one cross-encoder over the windows."""
    pairs = sum(len(w.ids) for w in windows)
    return 1e3 * sum(w.cpu_s[scorer] for w in windows) / max(pairs, 1)


def as_array(values: Sequence[float]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """A float64 array (NaN kept)."""
    return np.asarray(values, dtype=np.float64)
