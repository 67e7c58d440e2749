"""The LTR fields on the wire: catalogue numbers in, contributions and the LTR version out."""

from __future__ import annotations

import math

import pytest

from shoprank.schema import Product
from shoprank.v1 import rerank_pb2 as pb
from sidecar.client import RerankOptions, build_request
from sidecar.domain import Explanation, FeatureContribution, RerankOutcome, ScoredCandidate
from sidecar.errors import InvalidRequestError
from sidecar.wire_request import RequestDefaults, RequestLimits, request_to_domain
from sidecar.wire_response import response_to_wire as outcome_to_response


class Hit:
    def __init__(self, product: Product) -> None:
        self.id = product.id
        self.first_stage_score = 1.0
        self.product = product
        self.embedding = None


def test_the_client_sends_price_rating_and_count_and_the_sidecar_reads_them() -> None:
    priced = Product(id="a", title="towel", price=4.5, rating=4.2, rating_count=3000)
    bare = Product(id="b", title="towel")
    request = build_request("towel", [Hit(priced), Hit(bare)], 2, RerankOptions())
    query = request_to_domain(request, RequestLimits(), RequestDefaults())
    first, second = (c.product for c in query.candidates)
    assert first.price == 4.5
    assert first.rating == pytest.approx(4.2)  # float32 on the wire
    assert first.rating_count == 3000
    assert (second.price, second.rating, second.rating_count) == (None, None, None)


def test_a_non_finite_price_names_the_field() -> None:
    request = pb.RerankRequest(query="towel")
    request.candidates.add(id="a", product=pb.Product(title="towel", price=math.nan))
    with pytest.raises(InvalidRequestError, match=r"candidates\[0\]\.product\.price"):
        request_to_domain(request, RequestLimits(), RequestDefaults())


def test_contributions_and_ltr_version_reach_the_response() -> None:
    contribution = FeatureContribution("rating", 4.5, 0.25)
    explanation = Explanation(0.1, 0.2, 0.3, 0.0, 0, 0, 0, "relevance", (contribution,))
    outcome = RerankOutcome([ScoredCandidate("a", 1.0, 0.1, explanation)], True, "ce", ltr_version="ltr-x")
    response = outcome_to_response(outcome)
    assert response.ltr_version == "ltr-x"
    (wire,) = response.results[0].explanation.contributions
    assert (wire.feature, wire.value, wire.contribution) == ("rating", 4.5, 0.25)
