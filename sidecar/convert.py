"""The one place that converts between wire messages and sidecar domain types.

Validation happens here because field paths ("candidates[3].id") are a wire concept: every
bad request becomes an InvalidRequestError naming the field.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from google.protobuf.message import DecodeError

from shoprank import limits as product_limits
from shoprank.arrays import FloatArray
from shoprank.schema import TEXT_FIELDS
from shoprank.settings import Settings
from shoprank.v1 import rerank_pb2 as pb
from shoprank.vocabulary import InteractionAction
from sidecar.diversify import DiversityParamError, DiversityParams, Facet, Method
from sidecar.domain import Admission, Candidate, CandidateProduct, RerankOutcome, RerankQuery
from sidecar.errors import InvalidRequestError
from sidecar.personalise import Interaction, PersonalParamError, PersonalParams

METHODS: dict[int, Method | None] = {
    pb.DIVERSITY_METHOD_UNSPECIFIED: None,
    pb.DIVERSITY_METHOD_NONE: "none",
    pb.DIVERSITY_METHOD_MMR: "mmr",
    pb.DIVERSITY_METHOD_XQUAD: "xquad",
    pb.DIVERSITY_METHOD_DPP: "dpp",
}
METHOD_ENUMS: dict[str, int] = {name: number for number, name in METHODS.items() if name is not None}
FACETS: dict[int, Facet] = {pb.DIVERSITY_FACET_CATEGORY: "category", pb.DIVERSITY_FACET_BRAND: "brand"}
FACET_ENUMS: dict[str, int] = {name: number for number, name in FACETS.items()}
ACTIONS: dict[int, InteractionAction] = {
    pb.INTERACTION_ACTION_VIEW: "view",
    pb.INTERACTION_ACTION_CLICK: "click",
    pb.INTERACTION_ACTION_ADD_TO_CART: "add_to_cart",
    pb.INTERACTION_ACTION_PURCHASE: "purchase",
}
ACTION_ENUMS: dict[InteractionAction, int] = {name: number for number, name in ACTIONS.items()}


@dataclass(frozen=True)
class RequestLimits:
    """Bounds on one request (defaults: shoprank.limits); each violation is an INVALID_ARGUMENT naming the field.

    The client trims what it sends to the same limits (sidecar.client.build_request).
    """

    max_candidates: int = product_limits.MAX_CANDIDATES
    max_query_bytes: int = product_limits.MAX_QUERY_BYTES
    max_id_bytes: int = product_limits.MAX_ID_BYTES
    max_field_bytes: int = product_limits.MAX_FIELD_BYTES
    max_category_levels: int = product_limits.MAX_CATEGORY_LEVELS
    max_embedding_dim: int = product_limits.MAX_EMBEDDING_DIM
    max_interactions: int = product_limits.MAX_INTERACTIONS
    max_interaction_future_ms: int = product_limits.MAX_INTERACTION_FUTURE_MS
    max_request_bytes: int = product_limits.MAX_REQUEST_BYTES  # checked on the raw bytes by the servicer

    @classmethod
    def from_settings(cls, settings: Settings) -> RequestLimits:
        """The limits with the configurable ones (candidates, bytes per field, request size) from settings."""
        return cls(
            max_candidates=settings.max_candidates,
            max_field_bytes=settings.max_field_bytes,
            max_request_bytes=settings.max_request_bytes,
        )


@dataclass(frozen=True)
class RequestDefaults:
    """Server defaults for options a request leaves unset."""

    blend_weight: float = 0.0
    diversity: DiversityParams = field(default_factory=DiversityParams)
    personal: PersonalParams = field(default_factory=PersonalParams)


def _unit_interval(value: float, field: str) -> float:
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InvalidRequestError(field, f"must be between 0 and 1, got {value}")
    return float(value)


def _product(message: pb.Product, path: str, limits: RequestLimits) -> CandidateProduct:
    for name in TEXT_FIELDS:
        size = len(getattr(message, name).encode("utf-8"))
        if size > limits.max_field_bytes:
            raise InvalidRequestError(f"{path}.{name}", f"is {size} bytes, more than {limits.max_field_bytes}")
    if len(message.category) > limits.max_category_levels:
        raise InvalidRequestError(
            f"{path}.category", f"has {len(message.category)} levels, more than {limits.max_category_levels}"
        )
    for level, name in enumerate(message.category):
        if len(name.encode("utf-8")) > limits.max_field_bytes:
            raise InvalidRequestError(f"{path}.category[{level}]", f"is more than {limits.max_field_bytes} bytes")
    if not message.title.strip():
        raise InvalidRequestError(f"{path}.title", "must not be empty: the cross-encoder scores the title")
    return CandidateProduct(
        title=message.title,
        brand=message.brand,
        category=tuple(message.category),
        color=message.color,
        bullet_points=message.bullet_points,
        description=message.description,
    )


def _facets(message: pb.DiversityOptions, defaults: DiversityParams) -> tuple[Facet, ...]:
    """The facets asked for (the server default when none); an unknown or unspecified one names its index."""
    for index, number in enumerate(message.facets):
        if number not in FACETS:
            raise InvalidRequestError(
                f"options.diversity.facets[{index}]",
                f"unknown facet {number}; use DIVERSITY_FACET_CATEGORY and/or DIVERSITY_FACET_BRAND",
            )
    return tuple(FACETS[number] for number in message.facets) or defaults.facets


def _diversity(message: pb.DiversityOptions, defaults: DiversityParams) -> DiversityParams:
    """Request options over the server defaults; DiversityParams validates and names the bad field."""
    if message.method not in METHODS:
        raise InvalidRequestError("options.diversity.method", f"unknown method {message.method}")
    facets = _facets(message, defaults)
    try:
        return defaults.overridden(
            method=METHODS[message.method],
            strength=float(message.strength) if message.HasField("strength") else None,
            window=int(message.window) if message.HasField("window") else None,
            max_per_brand=int(message.max_per_brand) if message.HasField("max_per_brand") else None,
            max_per_category=int(message.max_per_category) if message.HasField("max_per_category") else None,
            page_size=int(message.page_size) if message.HasField("page_size") else None,
            facets=facets,
            attribute_weight=float(message.attribute_weight) if message.HasField("attribute_weight") else None,
        )
    except DiversityParamError as error:
        raise InvalidRequestError(f"options.diversity.{error.field}", error.problem) from error


def _embedding(values: Sequence[float], path: str, limits: RequestLimits) -> FloatArray:
    if len(values) > limits.max_embedding_dim:
        raise InvalidRequestError(path, f"has more than {limits.max_embedding_dim} values")
    embedding = np.asarray(values, dtype=np.float32)
    if not np.isfinite(embedding).all():
        raise InvalidRequestError(path, "must contain only finite numbers")
    return embedding


def _interactions(
    request: pb.RerankRequest, limits: RequestLimits, dim: int | None, now_ms: int
) -> tuple[Interaction, ...]:
    """The shopper's interactions, validated: a known action, a bounded count, one vector dimension, no far future."""
    count = len(request.interactions)
    if count > limits.max_interactions:
        raise InvalidRequestError(
            "interactions",
            f"has {count} entries, more than the limit of {limits.max_interactions}; send the most recent",
        )
    out = []
    for index, message in enumerate(request.interactions):
        path = f"interactions[{index}]"
        if message.action not in ACTIONS:
            raise InvalidRequestError(
                f"{path}.action",
                f"must be VIEW, CLICK, ADD_TO_CART or PURCHASE (INTERACTION_ACTION_*), got {message.action}",
            )
        if len(message.product_id.encode("utf-8")) > limits.max_id_bytes:
            raise InvalidRequestError(f"{path}.product_id", f"is longer than {limits.max_id_bytes} bytes")
        if not message.product_id.strip() and not len(message.embedding):
            raise InvalidRequestError(path, "needs a product_id or an embedding")
        if message.timestamp_ms <= 0:
            raise InvalidRequestError(f"{path}.timestamp_ms", "is required: when it happened, Unix epoch milliseconds")
        if message.timestamp_ms > now_ms + limits.max_interaction_future_ms:
            raise InvalidRequestError(
                f"{path}.timestamp_ms",
                f"is {(message.timestamp_ms - now_ms) / 1000:.0f} s in the future (at most "
                f"{limits.max_interaction_future_ms / 1000:.0f} s of clock skew); send Unix epoch milliseconds",
            )
        embedding = None
        if len(message.embedding):
            embedding = _embedding(message.embedding, f"{path}.embedding", limits)
            dim = dim or embedding.size
            if embedding.size != dim:
                raise InvalidRequestError(
                    f"{path}.embedding", f"has {embedding.size} values, the request's other vectors have {dim}"
                )
        out.append(Interaction(message.product_id, ACTIONS[message.action], int(message.timestamp_ms), embedding))
    return tuple(out)


def _personal(options: pb.RerankOptions, defaults: PersonalParams) -> PersonalParams:
    if not options.HasField("personal_weight"):
        return defaults
    try:
        return defaults.with_weight(float(options.personal_weight))
    except PersonalParamError as error:
        raise InvalidRequestError("options.personal_weight", error.problem) from error


def check_request_size(data: bytes, limits: RequestLimits) -> None:
    """INVALID_ARGUMENT naming "request" for raw bytes over the request limit."""
    if len(data) > limits.max_request_bytes:
        raise InvalidRequestError(
            "request", f"is {len(data)} bytes, more than the limit of {limits.max_request_bytes}; send fewer candidates"
        )


def parse_request(data: bytes, limits: RequestLimits) -> pb.RerankRequest:
    """Parse the raw request bytes; oversized or undecodable input names the field "request"."""
    check_request_size(data, limits)
    request = pb.RerankRequest()
    try:
        request.ParseFromString(data)
    except DecodeError as error:
        raise InvalidRequestError("request", f"is not a valid shoprank.v1.RerankRequest ({error})") from error
    return request


def request_to_domain(
    request: pb.RerankRequest,
    limits: RequestLimits,
    defaults: RequestDefaults,
    deadline: float | None = None,
    cancelled: threading.Event | None = None,
    admission: Admission | None = None,
) -> RerankQuery:
    """Validate a RerankRequest and turn it into a RerankQuery."""
    query = request.query.strip()
    if not query:
        raise InvalidRequestError("query", "must not be empty")
    if len(request.query.encode("utf-8")) > limits.max_query_bytes:
        raise InvalidRequestError("query", f"is longer than {limits.max_query_bytes} bytes")
    count = len(request.candidates)
    if count == 0:
        raise InvalidRequestError("candidates", "must not be empty")
    if count > limits.max_candidates:
        raise InvalidRequestError("candidates", f"has {count} entries, more than the limit of {limits.max_candidates}")
    if request.top_k > limits.max_candidates:
        raise InvalidRequestError("top_k", f"must be at most {limits.max_candidates} (0 returns every candidate)")
    seen: set[str] = set()
    candidates = []
    dim: int | None = None
    for index, message in enumerate(request.candidates):
        path = f"candidates[{index}]"
        if not message.id.strip():
            raise InvalidRequestError(f"{path}.id", "must not be empty")
        if len(message.id.encode("utf-8")) > limits.max_id_bytes:
            raise InvalidRequestError(f"{path}.id", f"is longer than {limits.max_id_bytes} bytes")
        if message.id in seen:
            raise InvalidRequestError(f"{path}.id", f"duplicate id {message.id!r}")
        seen.add(message.id)
        if not math.isfinite(message.first_stage_score):
            raise InvalidRequestError(f"{path}.first_stage_score", "must be a finite number")
        embedding = None
        if len(message.embedding):
            if len(message.embedding) > limits.max_embedding_dim:
                raise InvalidRequestError(f"{path}.embedding", f"has more than {limits.max_embedding_dim} values")
            dim = dim or len(message.embedding)
            if len(message.embedding) != dim:
                raise InvalidRequestError(
                    f"{path}.embedding", f"has {len(message.embedding)} values, other candidates have {dim}"
                )
            embedding = _embedding(message.embedding, f"{path}.embedding", limits)
        candidates.append(
            Candidate(
                id=message.id,
                first_stage_score=float(message.first_stage_score),
                product=_product(message.product, f"{path}.product", limits),
                embedding=embedding,
            )
        )
    options = request.options
    blend_weight = defaults.blend_weight
    if options.HasField("blend_weight"):
        blend_weight = _unit_interval(options.blend_weight, "options.blend_weight")
    top_k = min(request.top_k or count, count)  # the proto's contract: more than the candidates means all
    now_ms = int(time.time() * 1000)
    return RerankQuery(
        query=query,
        candidates=candidates,
        top_k=top_k,
        blend_weight=blend_weight,
        diversity=_diversity(options.diversity, defaults.diversity),
        explain=options.explain,
        deadline=deadline,
        cancelled=cancelled,
        admission=admission,
        interactions=_interactions(request, limits, dim, now_ms),
        personal=_personal(options, defaults.personal),
        now_ms=now_ms,
    )


def outcome_to_response(outcome: RerankOutcome) -> pb.RerankResponse:
    """A RerankOutcome as the wire response."""
    response = pb.RerankResponse(
        reranked=outcome.reranked,
        model_version=outcome.model_version,
        diversity_method=outcome.diversity_method,
        cache_hits=outcome.cache_hits,
        diversity_notes=list(outcome.diversity_notes),
        personalised=outcome.personalised,
        personal_interactions=outcome.personal_interactions,
    )
    t = outcome.timings
    response.timings.CopyFrom(
        pb.StageTimings(
            tokenize_ms=t.tokenize_ms,
            queue_ms=t.queue_ms,
            inference_ms=t.inference_ms,
            diversify_ms=t.diversify_ms,
            total_ms=t.total_ms,
            batches=t.usage.batches,
            batch_pairs=t.usage.batch_pairs,
            tokens=t.usage.tokens,
            padded_tokens=t.usage.padded_tokens,
            personal_ms=t.personal_ms,
        )
    )
    for result in outcome.results:
        item = response.results.add(id=result.id, score=result.score, relevance_score=result.relevance_score)
        if result.explanation is not None:
            e = result.explanation
            item.explanation.CopyFrom(
                pb.Explanation(
                    relevance=e.relevance,
                    first_stage=e.first_stage,
                    blended=e.blended,
                    diversity_term=e.diversity_term,
                    first_stage_rank=e.first_stage_rank,
                    scored_rank=e.scored_rank,
                    final_rank=e.final_rank,
                    reason=e.reason,
                    personal_term=e.personal_term,
                )
            )
    return response
