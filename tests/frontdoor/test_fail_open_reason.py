"""What a shopper-facing response says about a failed-open rerank, from the client's typed failure."""

from __future__ import annotations

import grpc
import pytest

from frontdoor.search import public_reason
from sidecar.client import RerankFailure


@pytest.mark.parametrize(
    ("failure", "shown"),
    [
        (None, None),
        (
            RerankFailure(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded at 10.0.0.7:50051"),
            "DEADLINE_EXCEEDED: the reranker did not answer within its deadline",
        ),
        (
            RerankFailure(grpc.StatusCode.UNAVAILABLE, "ipv4:10.0.0.7"),
            "UNAVAILABLE: the reranker is unreachable or still loading",
        ),
        (
            RerankFailure(grpc.StatusCode.RESOURCE_EXHAUSTED, "sidecar overloaded, backing off"),
            "RESOURCE_EXHAUSTED: the reranker is overloaded",
        ),
        (RerankFailure(grpc.StatusCode.INTERNAL, "stack trace at /srv/sidecar"), "INTERNAL: the reranker failed"),
        (RerankFailure(None, "reranking switched off for this request"), "reranking switched off for this request"),
    ],
)
def test_a_public_reason_names_the_status_never_the_sidecars_details(failure: RerankFailure | None, shown: str) -> None:
    assert public_reason(failure) == shown


def test_a_failure_reads_as_code_and_detail_in_logs() -> None:
    assert str(RerankFailure(grpc.StatusCode.UNAVAILABLE, "connection refused")) == "UNAVAILABLE: connection refused"
    assert str(RerankFailure(None, "no sidecar configured")) == "no sidecar configured"
