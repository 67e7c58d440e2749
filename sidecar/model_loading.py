"""Loading the serving model from settings: device choice with CPU fallback, warm-up, batcher, cache.

`load_service` is what the server calls at start and on every hot reload: it raises on
anything that should not serve (see sidecar.cross_encoder), so a refused reload leaves the old
model answering.
"""

from __future__ import annotations

import logging
from pathlib import Path

from shoprank.bi_encoder import BiEncoder
from shoprank.model_meta import CASCADE_SCORER, ModelNotBuiltError, Precision, model_dir
from shoprank.onnx_session import CudaUnavailableError, intra_op_threads, resolve_device
from shoprank.settings import Settings
from sidecar import metrics
from sidecar.batched_scorer import BatchedScorer
from sidecar.batching import BatchingConfig, DynamicBatcher
from sidecar.cascade import CascadeScorer, FirstStageOrder
from sidecar.cross_encoder import CrossEncoder
from sidecar.ltr_model import LtrNotUsableError, load_ltr, ltr_dir
from sidecar.ltr_stage import LtrStage
from sidecar.rerank_service import PairScorer, RerankService
from sidecar.score_cache import ScoreCache

log = logging.getLogger(__name__)


def served_precision(settings: Settings) -> Precision | None:
    """The configured cross-encoder precision; None lets the device choose (fp16 on CUDA, int8 on CPU)."""
    chosen = settings.cross_encoder_precision
    return None if chosen == "auto" else chosen


def open_cross_encoder(settings: Settings, directory: Path | None = None) -> CrossEncoder:
    """The cross-encoder on the configured device: CUDA fp16 when asked or available, else CPU int8
    (unless `cross_encoder_precision` names one).

    With --device auto a CUDA start that fails (libraries missing, no GPU visible) falls back to
    the CPU with a warning; with --device cuda it is an error.
    """
    device = resolve_device(settings.device)
    precision = served_precision(settings)

    def build(on: str) -> CrossEncoder:
        return CrossEncoder(
            settings.models_dir(),
            device=on,
            precision=precision,
            max_length=settings.max_pair_tokens,
            threads=intra_op_threads(on, settings.inference_threads),
            token_budget=settings.batch_token_budget,
            max_batch=settings.batch_max_pairs,
            directory=directory,
            spinning=settings.inference_spinning,
            product_token_cache=settings.product_token_cache_entries,
        )

    if device == "cuda":
        try:
            return build("cuda")
        except CudaUnavailableError as error:
            if settings.device == "cuda":
                raise
            log.warning("CUDA unavailable, serving on the CPU: %s", error)
    return build("cpu")


def open_ltr(settings: Settings, cross_encoder_version: str, embedder: BiEncoder | None) -> LtrStage | None:
    """The LTR stage when the setting is on and a model for this cross-encoder exists; else None, logged.

    A missing or mismatched model never stops the sidecar: the blend ranks, the log and the
    `shoprank_sidecar_ltr_info` metric say why, and responses carry no `ltr_version`.
    """
    if not settings.ltr:
        metrics.set_ltr_state("", "off")
        return None
    try:
        model = load_ltr(ltr_dir(settings.models_dir()), cross_encoder_version)
    except LtrNotUsableError as error:
        log.warning("the LTR stage is skipped, the blend ranks: %s", error)
        metrics.set_ltr_state("", "skipped")
        return None
    log.info("LTR stage %s ranks after cross-encoder %s", model.version, cross_encoder_version)
    metrics.set_ltr_state(model.version, "on")
    return LtrStage(model, embedder)


def load_service(settings: Settings) -> RerankService:
    """Load, check and warm the cross-encoder, and put the batcher and cache in front of it.

    The bi-encoder (for diversity embeddings the engine did not send) is optional.
    """
    encoder = open_cross_encoder(settings)
    tokens_per_s = encoder.warm_up()
    embedder = None
    try:
        # One thread: it embeds a page's worth of short texts beside the cross-encoder's pool, at the
        # precision the indexed vectors were made with.
        embedder = BiEncoder.from_settings(settings, threads=1)
    except ModelNotBuiltError:
        log.warning("no bi-encoder built: MMR/DPP fall back to attribute redundancy for candidates without embeddings")
    except Exception:  # optional: a broken bi-encoder must not take reranking down with it
        log.exception("the bi-encoder does not load; MMR/DPP fall back to attribute redundancy")
    cascade_model = settings.cascade_top_k > 0 and settings.cascade_scorer == "model"
    cheap = _open_cascade_scorer(settings) if cascade_model else None
    cheap_rate = cheap.warm_up() if cheap is not None else 0.0
    cache = ScoreCache(settings.score_cache_entries) if settings.score_cache_entries else None
    # Last, once nothing else can fail: the batchers start the inference threads.
    scorer: PairScorer = BatchedScorer(encoder, _batcher(settings, encoder, tokens_per_s), cache)
    if settings.cascade_top_k and cheap is None:
        scorer = CascadeScorer(scorer, FirstStageOrder(), settings.cascade_top_k)
    if cheap is not None:
        # The cache keys carry each model's version, so one cache holds both models' scores apart.
        scorer = CascadeScorer(
            scorer, BatchedScorer(cheap, _batcher(settings, cheap, cheap_rate), cache), settings.cascade_top_k
        )
    log.info(
        "cross-encoder %s ready on %s (max %d tokens a pair, ~%.0f tokens/s at warm-up)",
        encoder.version,
        encoder.device,
        encoder.max_length,
        tokens_per_s,
    )
    metrics.set_serving_model(encoder.version, encoder.device, encoder.precision)
    if settings.cascade_top_k:
        log.info("cascade %s: the full model over the cheap scorer's top %d", scorer.version, settings.cascade_top_k)
    ltr = open_ltr(settings, encoder.version, embedder)
    return RerankService(scorer, embedder, ltr)


def _batcher(settings: Settings, encoder: CrossEncoder, tokens_per_s: float) -> DynamicBatcher:
    """The dynamic batcher (and its inference thread) in front of one model."""
    return DynamicBatcher(
        encoder,
        BatchingConfig(
            token_budget=settings.batch_token_budget,
            max_pairs=settings.batch_max_pairs,
            queue_max_pairs=settings.queue_max_pairs,
            wait_ms=settings.batch_wait_ms,
            call_overhead_tokens=encoder.call_overhead_tokens,
        ),
        tokens_per_s,
        name=encoder.meta.version,
    )


def _open_cascade_scorer(settings: Settings) -> CrossEncoder:
    """The cascade's cheap scorer, on the device and precision the full model uses."""
    directory = model_dir(settings.models_dir(), CASCADE_SCORER)
    try:
        return open_cross_encoder(settings, directory)
    except ModelNotBuiltError as error:
        raise ModelNotBuiltError(
            f"cascade_top_k is {settings.cascade_top_k} but the cascade scorer does not load ({error}); "
            "build it with `shoprank models build --only cascade` or set SHOPRANK_CASCADE_TOP_K=0"
        ) from error
