"""The one place that converts between wire messages and sidecar domain types.

Validation happens here because field paths ("candidates[3].id") are a wire concept: every
bad request becomes an InvalidRequestError naming the field.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import numpy as np
from google.protobuf.message import DecodeError

from shoprank import limits as product_limits
from shoprank.schema import TEXT_FIELDS
from shoprank.settings import Settings
from shoprank.v1 import rerank_pb2 as pb
from sidecar.diversify import DiversityParamError, DiversityParams, Facet, Method
from sidecar.domain import Admission, Candidate, CandidateProduct, RerankOutcome, RerankQuery
from sidecar.errors import InvalidRequestError

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
        price=_number(message, "price", path),
        rating=_number(message, "rating", path),
        rating_count=int(message.rating_count) if message.HasField("rating_count") else None,
    )


def _number(message: pb.Product, name: str, path: str) -> float | None:
    """An optional catalogue number: unset is unknown; NaN or infinite names the field."""
    if not message.HasField(name):  # type: ignore[arg-type]
        return None
    value = float(getattr(message, name))
    if not math.isfinite(value):
        raise InvalidRequestError(f"{path}.{name}", "must be a finite number (or unset)")
    return value


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
            embedding = np.asarray(message.embedding, dtype=np.float32)
            if not np.isfinite(embedding).all():
                raise InvalidRequestError(f"{path}.embedding", "must contain only finite numbers")
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
    )


def outcome_to_response(outcome: RerankOutcome) -> pb.RerankResponse:
    """A RerankOutcome as the wire response."""
    response = pb.RerankResponse(
        reranked=outcome.reranked,
        model_version=outcome.model_version,
        diversity_method=outcome.diversity_method,
        cache_hits=outcome.cache_hits,
        diversity_notes=list(outcome.diversity_notes),
        ltr_version=outcome.ltr_version,
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
                    contributions=[
                        pb.FeatureContribution(feature=c.feature, value=c.value, contribution=c.contribution)
                        for c in e.contributions
                    ],
                )
            )
    return response
