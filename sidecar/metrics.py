"""Prometheus metrics of the sidecar, in one registry served at GET /metrics.

Module-level, as Prometheus clients are meant to be used: every component records into the
same series, and a hot-reloaded model keeps adding to them. Names follow
`shoprank_sidecar_<what>_<unit>`; latency is in seconds.
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # resident memory, CPU seconds, open fds of the process

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "shoprank_sidecar_requests", "Rerank requests answered, by gRPC status", ["status"], registry=REGISTRY
)
REQUEST_SECONDS = Histogram(
    "shoprank_sidecar_request_seconds",
    "Rerank handling time inside the sidecar, by gRPC status",
    ["status"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
TOKENIZE_SECONDS = Histogram(
    "shoprank_sidecar_tokenize_seconds",
    "Tokenizing one request's uncached pairs",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
QUEUE_SECONDS = Histogram(
    "shoprank_sidecar_queue_seconds",
    "Time a request waited for its first inference call",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
INFERENCE_SECONDS = Histogram(
    "shoprank_sidecar_inference_seconds",
    "Wall time of one inference call (batch)",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
BATCH_PAIRS = Histogram(
    "shoprank_sidecar_batch_pairs",
    "Pairs in one inference call",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
    registry=REGISTRY,
)
BATCH_TOKENS = Histogram(
    "shoprank_sidecar_batch_tokens",
    "Tokens in one inference call: real, and padded (pairs x longest pair)",
    ["kind"],
    buckets=(128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536),
    registry=REGISTRY,
)
EMBED_REQUESTS = Counter(
    "shoprank_sidecar_embed_requests", "Embed requests answered, by gRPC status", ["status"], registry=REGISTRY
)
EMBED_SECONDS = Histogram(
    "shoprank_sidecar_embed_seconds",
    "Embed handling time inside the sidecar, by gRPC status",
    ["status"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
EMBED_TEXTS = Counter("shoprank_sidecar_embed_texts", "Texts embedded by the bi-encoder (Embed)", registry=REGISTRY)
QUEUED_PAIRS = Gauge("shoprank_sidecar_queued_pairs", "Pairs waiting for the model", registry=REGISTRY)
SHED = Counter(
    "shoprank_sidecar_shed_requests",
    "Requests refused with RESOURCE_EXHAUSTED before any work, by reason",
    ["reason"],
    registry=REGISTRY,
)
DROPPED_PAIRS = Counter(
    "shoprank_sidecar_dropped_pairs",
    "Queued pairs dropped unscored because their request's deadline passed or it was cancelled",
    registry=REGISTRY,
)
CACHE_HITS = Counter("shoprank_sidecar_score_cache_hits", "Pair scores served from the cache", registry=REGISTRY)
CACHE_MISSES = Counter("shoprank_sidecar_score_cache_misses", "Pair scores the cache did not have", registry=REGISTRY)
CACHE_HIT_RATIO = Gauge(
    "shoprank_sidecar_score_cache_hit_ratio", "Cache hits / lookups since the process started", registry=REGISTRY
)
_cache_lookups = {"hits": 0, "misses": 0}
_cache_lock = threading.Lock()
CACHE_HIT_RATIO.set_function(lambda: _cache_lookups["hits"] / max(1, _cache_lookups["hits"] + _cache_lookups["misses"]))
MODEL_INFO = Gauge(
    "shoprank_sidecar_model_info",
    "The model serving now (value 1), by version, device and precision",
    ["version", "device", "precision"],
    registry=REGISTRY,
)
RELOADS = Counter(
    "shoprank_sidecar_model_reloads",
    "Model reload attempts, by result (loaded/refused)",
    ["result"],
    registry=REGISTRY,
)


def set_serving_model(version: str, device: str, precision: str) -> None:
    """Point the model-info series at the model that now answers."""
    MODEL_INFO.clear()
    MODEL_INFO.labels(version=version, device=device, precision=precision).set(1)


def record_cache_lookups(hits: int, misses: int) -> None:
    """Count one request's score-cache lookups."""
    CACHE_HITS.inc(hits)
    CACHE_MISSES.inc(misses)
    with _cache_lock:
        _cache_lookups["hits"] += hits
        _cache_lookups["misses"] += misses


LTR_INFO = Gauge(
    "shoprank_sidecar_ltr_info",
    "The learning-to-rank stage: 1 with the model's version when it ranks, 0 with the reason when the blend does",
    ["version", "state"],
    registry=REGISTRY,
)


def set_ltr_state(version: str, state: str) -> None:
    """Point the LTR series at what ranks now ("on", or why the stage is skipped)."""
    LTR_INFO.clear()
    LTR_INFO.labels(version=version, state=state).set(1 if state == "on" else 0)
