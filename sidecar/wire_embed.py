"""The Embed rpc's wire boundary: EmbedRequest bytes ⇄ EmbedQuery, EmbedOutcome ⇄ EmbedResponse.

Size and decoding checks are the Rerank request's (sidecar/wire_request.py); each bad text is
named by its index, as a Rerank candidate is.
"""

from __future__ import annotations

import numpy as np
from google.protobuf.message import DecodeError

from shoprank.v1 import rerank_pb2 as pb
from sidecar.embed_service import EmbedOutcome, EmbedQuery
from sidecar.errors import InvalidRequestError
from sidecar.wire_request import RequestLimits, check_request_size
from sidecar.wire_response import timings_from_wire, timings_to_wire


def parse_embed_request(data: bytes, limits: RequestLimits) -> pb.EmbedRequest:
    """Parse raw Embed request bytes; oversized or undecodable input names the field "request"."""
    check_request_size(data, limits)
    request = pb.EmbedRequest()
    try:
        request.ParseFromString(data)
    except DecodeError as error:
        raise InvalidRequestError("request", f"is not a valid shoprank.v1.EmbedRequest ({error})") from error
    return request


def embed_request_to_domain(request: pb.EmbedRequest, limits: RequestLimits, deadline: float | None) -> EmbedQuery:
    """Validate an EmbedRequest (each bad text named by its index) and turn it into an EmbedQuery."""
    count = len(request.texts)
    if count == 0:
        raise InvalidRequestError("texts", "must not be empty: send at least one text to embed")
    if count > limits.max_embed_texts:
        raise InvalidRequestError(
            "texts", f"has {count} entries, more than the limit of {limits.max_embed_texts}; send several requests"
        )
    for index, text in enumerate(request.texts):
        if not text.strip():
            raise InvalidRequestError(f"texts[{index}]", "must not be blank")
        size = len(text.encode("utf-8"))
        if size > limits.max_embed_text_bytes:
            raise InvalidRequestError(f"texts[{index}]", f"is {size} bytes, more than {limits.max_embed_text_bytes}")
    expected = None
    if request.HasField("expected_model_version"):
        expected = request.expected_model_version.strip()
        if not expected:
            raise InvalidRequestError("expected_model_version", "must not be blank when set (leave it unset for any)")
    return EmbedQuery(texts=tuple(request.texts), expected_model_version=expected, deadline=deadline)


def embed_query_to_wire(query: EmbedQuery) -> pb.EmbedRequest:
    """An EmbedQuery as the wire request (what a caller sends)."""
    request = pb.EmbedRequest(texts=list(query.texts))
    if query.expected_model_version is not None:
        request.expected_model_version = query.expected_model_version
    return request


def embed_outcome_to_response(outcome: EmbedOutcome) -> pb.EmbedResponse:
    """An EmbedOutcome as the wire response."""
    response = pb.EmbedResponse(
        model_version=outcome.model_version,
        dimension=int(outcome.vectors.shape[1]),
        timings=timings_to_wire(outcome.timings),
    )
    for row in outcome.vectors:
        response.vectors.add().values.extend(row.tolist())
    return response


def embed_response_from_wire(response: pb.EmbedResponse) -> EmbedOutcome:
    """The wire response as the EmbedOutcome the server answered."""
    rows = [list(vector.values) for vector in response.vectors]
    vectors = np.asarray(rows, dtype=np.float32).reshape(len(rows), response.dimension)
    return EmbedOutcome(
        vectors=vectors, model_version=response.model_version, timings=timings_from_wire(response.timings)
    )
