"""The Rerank request on the wire ⇄ the sidecar's domain types, both directions.

The client writes a RerankCall with `request_to_wire`; the server reads it back with
`request_from_wire` (validation happens here because field paths such as "candidates[3].id" are a
wire concept: every bad request becomes an InvalidRequestError naming the field) and applies its
defaults in `request_to_domain`. The response's pair is sidecar/wire_response.py.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np
from google.protobuf.message import DecodeError

from shoprank import limits as product_limits
from shoprank.arrays import FloatArray
from shoprank.schema import TEXT_FIELDS
from shoprank.settings import Settings
from shoprank.v1 import rerank_pb2 as pb
from shoprank.vocabulary import InteractionAction
from sidecar.diversify import DiversityParamError, DiversityParams, Facet, Method
from sidecar.domain import Admission, Candidate, CandidateProduct, RerankCall, RerankOptions, RerankQuery
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
    max_embed_texts: int = product_limits.MAX_EMBED_TEXTS
    max_embed_text_bytes: int = product_limits.MAX_EMBED_TEXT_BYTES

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


def _facets(message: pb.DiversityOptions) -> tuple[Facet, ...]:
    """The facets asked for, in request order; an unknown or unspecified one names its index."""
    for index, number in enumerate(message.facets):
        if number not in FACETS:
            raise InvalidRequestError(
                f"options.diversity.facets[{index}]",
                f"unknown facet {number}; use DIVERSITY_FACET_CATEGORY and/or DIVERSITY_FACET_BRAND",
            )
    return tuple(FACETS[number] for number in message.facets)


def _options(message: pb.RerankOptions) -> RerankOptions:
    """The options as sent (None: unset), refusing what no server default could repair."""
    blend_weight = None
    if message.HasField("blend_weight"):
        blend_weight = _unit_interval(message.blend_weight, "options.blend_weight")
    d = message.diversity
    if d.method not in METHODS:
        raise InvalidRequestError("options.diversity.method", f"unknown method {d.method}")
    return RerankOptions(
        blend_weight=blend_weight,
        diversity=METHODS[d.method],
        strength=float(d.strength) if d.HasField("strength") else None,
        max_per_brand=int(d.max_per_brand) if d.HasField("max_per_brand") else None,
        max_per_category=int(d.max_per_category) if d.HasField("max_per_category") else None,
        window=int(d.window) if d.HasField("window") else None,
        page_size=int(d.page_size) if d.HasField("page_size") else None,
        facets=_facets(d),
        attribute_weight=float(d.attribute_weight) if d.HasField("attribute_weight") else None,
        personal_weight=float(message.personal_weight) if message.HasField("personal_weight") else None,
        explain=message.explain,
    )


def _diversity(options: RerankOptions, defaults: DiversityParams) -> DiversityParams:
    """Request options over the server defaults; DiversityParams validates and names the bad field."""
    try:
        return defaults.overridden(
            method=cast(Method | None, options.diversity),
            strength=options.strength,
            window=options.window,
            max_per_brand=options.max_per_brand,
            max_per_category=options.max_per_category,
            page_size=options.page_size,
            facets=cast(tuple[Facet, ...], options.facets) or defaults.facets,
            attribute_weight=options.attribute_weight,
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


def _personal(weight: float | None, defaults: PersonalParams) -> PersonalParams:
    if weight is None:
        return defaults
    try:
        return defaults.with_weight(weight)
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


def request_from_wire(request: pb.RerankRequest, limits: RequestLimits) -> RerankCall:
    """Validate a RerankRequest against the limits and read it as sent (no server defaults applied)."""
    if not request.query.strip():
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
    return RerankCall(
        query=request.query,
        candidates=candidates,
        top_k=request.top_k,
        options=_options(request.options),
        interactions=_interactions(request, limits, dim, int(time.time() * 1000)),
    )


def request_to_domain(
    request: pb.RerankRequest,
    limits: RequestLimits,
    defaults: RequestDefaults,
    deadline: float | None = None,
    cancelled: threading.Event | None = None,
    admission: Admission | None = None,
) -> RerankQuery:
    """Validate a RerankRequest and turn it into a RerankQuery with the server's defaults applied."""
    call = request_from_wire(request, limits)
    options = call.options
    count = len(call.candidates)
    now_ms = int(time.time() * 1000)
    return RerankQuery(
        query=call.query.strip(),
        candidates=call.candidates,
        top_k=min(call.top_k or count, count),  # the proto's contract: more than the candidates means all
        blend_weight=defaults.blend_weight if options.blend_weight is None else options.blend_weight,
        diversity=_diversity(options, defaults.diversity),
        explain=options.explain,
        deadline=deadline,
        cancelled=cancelled,
        admission=admission,
        interactions=call.interactions,
        personal=_personal(options.personal_weight, defaults.personal),
        now_ms=now_ms,
    )


def request_to_wire(call: RerankCall) -> pb.RerankRequest:
    """A RerankCall as the wire request (what the client sends; it fits the call to the limits first)."""
    request = pb.RerankRequest(query=call.query, top_k=call.top_k)
    for candidate in call.candidates:
        p = candidate.product
        message = request.candidates.add(
            id=candidate.id,
            first_stage_score=candidate.first_stage_score,
            product=pb.Product(
                title=p.title,
                brand=p.brand,
                category=list(p.category),
                color=p.color,
                bullet_points=p.bullet_points,
                description=p.description,
            ),
        )
        for name in ("price", "rating", "rating_count"):  # unset is unknown (the LTR stage reads NaN)
            value = getattr(p, name)
            if value is not None:
                setattr(message.product, name, value)
        if candidate.embedding is not None:
            message.embedding.extend(np.asarray(candidate.embedding, dtype=np.float32).tolist())
    options, o = call.options, request.options
    o.explain = options.explain
    if options.blend_weight is not None:
        o.blend_weight = options.blend_weight
    if options.diversity is not None:
        o.diversity.method = METHOD_ENUMS[options.diversity]  # type: ignore[assignment]
    for name in ("strength", "max_per_brand", "max_per_category", "window", "page_size", "attribute_weight"):
        value = getattr(options, name)
        if value is not None:
            setattr(o.diversity, name, value)
    o.diversity.facets.extend(FACET_ENUMS[name] for name in options.facets)  # type: ignore[misc]
    if options.personal_weight is not None:
        o.personal_weight = options.personal_weight
    for interaction in call.interactions:
        sent = request.interactions.add(
            product_id=interaction.product_id,
            action=ACTION_ENUMS[interaction.action],
            timestamp_ms=interaction.timestamp_ms,
        )
        if interaction.embedding is not None:
            sent.embedding.extend(np.asarray(interaction.embedding, dtype=np.float32).tolist())
    return request
