"""Personalisation through the sidecar's converter and service: zero-history byte identity, the personal
term in the ranking and the explanation, and validation errors that name the field."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from shoprank.limits import MAX_INTERACTIONS
from shoprank.v1 import rerank_pb2 as pb
from sidecar.diversify import DiversityParams
from sidecar.errors import InvalidRequestError
from sidecar.personalise import PersonalParams
from sidecar.rerank_service import RerankService
from sidecar.wire_request import RequestDefaults, RequestLimits, request_to_domain
from sidecar.wire_response import response_to_wire as outcome_to_response
from tests.personal_case import DIM, HashEmbedder, TitleScorer, golden_request

# Responses of golden_request (explain off, on) from the code before personalisation existed (commit
# dfa4dd5, the same case and defaults as below, timings cleared): today's bytes, recorded.
GOLDEN = (Path(__file__).parent / "data" / "zero_history_responses.hex").read_text().split()
DIVERSITY = DiversityParams(method="dpp", strength=0.3, window=4)


def defaults(weight: float = 0.5) -> RequestDefaults:
    """The golden's defaults, with personalisation on at the server unless weight is 0."""
    return RequestDefaults(blend_weight=0.5, diversity=DIVERSITY, personal=PersonalParams(weight=weight, ramp=2))


def answer(request: pb.RerankRequest, server: RequestDefaults | None = None) -> pb.RerankResponse:
    service = RerankService(TitleScorer(), HashEmbedder())
    return outcome_to_response(service.rerank(request_to_domain(request, RequestLimits(), server or defaults())))


def wire(response: pb.RerankResponse) -> bytes:
    response.ClearField("timings")  # wall times differ run to run
    return response.SerializeToString()


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.mark.parametrize("explain", [False, True])
def test_a_request_without_history_answers_todays_bytes(explain: bool) -> None:
    assert wire(answer(golden_request(explain))).hex() == GOLDEN[int(explain)]


def test_history_the_sidecar_cannot_resolve_or_a_zero_weight_also_answers_todays_bytes() -> None:
    unresolvable = golden_request(True)
    unresolvable.interactions.add(
        product_id="not-in-window", action=pb.INTERACTION_ACTION_PURCHASE, timestamp_ms=now_ms()
    )
    assert wire(answer(unresolvable)).hex() == GOLDEN[1]
    switched_off = golden_request(True)
    switched_off.interactions.add(product_id="p3", action=pb.INTERACTION_ACTION_PURCHASE, timestamp_ms=now_ms())
    switched_off.options.personal_weight = 0.0
    assert wire(answer(switched_off)).hex() == GOLDEN[1]


def test_history_adds_the_personal_term_and_says_so() -> None:
    request = golden_request(True)
    request.options.diversity.method = pb.DIVERSITY_METHOD_NONE
    baseline = answer(request)
    liked = baseline.results[-1].id  # the product ranked last without history
    request.interactions.add(product_id=liked, action=pb.INTERACTION_ACTION_PURCHASE, timestamp_ms=now_ms())
    request.interactions.add(product_id=liked, action=pb.INTERACTION_ACTION_CLICK, timestamp_ms=now_ms() - 1000)
    request.options.personal_weight = 5.0  # large enough to lift it to the top
    personal = answer(request)
    assert personal.personalised
    assert personal.personal_interactions == 2
    assert personal.results[0].id == liked
    top = personal.results[0].explanation
    # beta(2) at ramp 2 is the whole weight; its own vector has cosine 1 with a one-product user.
    assert top.personal_term == pytest.approx(5.0, rel=1e-5)
    assert personal.results[0].score == pytest.approx(top.blended + top.personal_term, rel=1e-5)
    assert personal.timings.personal_ms > 0
    assert all(r.explanation.personal_term <= 5.0 + 1e-5 for r in personal.results)


def test_interactions_sent_with_embeddings_need_not_be_in_the_window() -> None:
    request = golden_request(True)
    request.options.diversity.method = pb.DIVERSITY_METHOD_NONE
    target = request.candidates[4]  # has a sent vector
    interaction = request.interactions.add(
        product_id="bought-last-week", action=pb.INTERACTION_ACTION_ADD_TO_CART, timestamp_ms=now_ms()
    )
    interaction.embedding.extend(list(target.embedding))
    request.options.personal_weight = 5.0
    response = answer(request)
    assert response.personalised
    assert response.personal_interactions == 1
    assert response.results[0].id == target.id
    # beta(1) with ramp 2 is half the weight.
    assert response.results[0].explanation.personal_term == pytest.approx(2.5, rel=1e-5)


def _bad(mutate: object) -> str:
    request = golden_request(False)
    assert callable(mutate)
    mutate(request)
    with pytest.raises(InvalidRequestError) as error:
        answer(request)
    return error.value.field


def test_an_unknown_action_names_its_field() -> None:
    def mutate(request: pb.RerankRequest) -> None:
        request.interactions.add(product_id="p1", timestamp_ms=now_ms())  # action left UNSPECIFIED

    assert _bad(mutate) == "interactions[0].action"


def test_too_many_interactions_names_the_list() -> None:
    def mutate(request: pb.RerankRequest) -> None:
        for _ in range(MAX_INTERACTIONS + 1):
            request.interactions.add(product_id="p1", action=pb.INTERACTION_ACTION_VIEW, timestamp_ms=now_ms())

    assert _bad(mutate) == "interactions"


def test_an_embedding_of_another_dimension_than_the_candidates_names_its_field() -> None:
    def mutate(request: pb.RerankRequest) -> None:
        request.interactions.add(product_id="p1", action=pb.INTERACTION_ACTION_VIEW, timestamp_ms=now_ms())
        bad = request.interactions.add(product_id="p2", action=pb.INTERACTION_ACTION_VIEW, timestamp_ms=now_ms())
        bad.embedding.extend([0.1] * (DIM + 1))

    assert _bad(mutate) == "interactions[1].embedding"


def test_an_embedding_of_another_dimension_than_the_bi_encoder_names_its_field() -> None:
    def mutate(request: pb.RerankRequest) -> None:
        for candidate in request.candidates:
            candidate.ClearField("embedding")  # the service's bi-encoder sets the dimension
        bad = request.interactions.add(product_id="p2", action=pb.INTERACTION_ACTION_VIEW, timestamp_ms=now_ms())
        bad.embedding.extend([0.1] * (DIM * 2))

    assert _bad(mutate) == "interactions[0].embedding"


def test_a_timestamp_in_the_future_beyond_the_tolerance_names_its_field() -> None:
    def mutate(request: pb.RerankRequest) -> None:
        request.interactions.add(product_id="p1", action=pb.INTERACTION_ACTION_VIEW, timestamp_ms=now_ms())
        request.interactions.add(product_id="p1", action=pb.INTERACTION_ACTION_VIEW, timestamp_ms=now_ms() + 3_600_000)

    assert _bad(mutate) == "interactions[1].timestamp_ms"


def test_a_small_clock_skew_is_accepted() -> None:
    request = golden_request(False)
    request.interactions.add(product_id="p1", action=pb.INTERACTION_ACTION_VIEW, timestamp_ms=now_ms() + 30_000)
    assert answer(request).personalised


def test_a_missing_timestamp_and_a_negative_weight_name_their_fields() -> None:
    def no_time(request: pb.RerankRequest) -> None:
        request.interactions.add(product_id="p1", action=pb.INTERACTION_ACTION_VIEW)

    def negative(request: pb.RerankRequest) -> None:
        request.options.personal_weight = -1.0

    assert _bad(no_time) == "interactions[0].timestamp_ms"
    assert _bad(negative) == "options.personal_weight"


def test_server_weight_zero_turns_personalisation_off_unless_the_request_asks() -> None:
    request = golden_request(False)
    request.interactions.add(product_id="p1", action=pb.INTERACTION_ACTION_PURCHASE, timestamp_ms=now_ms())
    assert not answer(request, defaults(weight=0.0)).personalised
    request.options.personal_weight = 0.5
    assert answer(request, defaults(weight=0.0)).personalised
    assert np.isfinite([r.score for r in answer(request).results]).all()


def test_the_client_sends_the_most_recent_interactions_within_the_limits() -> None:
    from sidecar.client import DIGEST_ID_PREFIX, RerankOptions, build_request, wire_id
    from sidecar.personalise import Interaction

    limits = RequestLimits(max_interactions=3, max_id_bytes=16)
    future = now_ms() + 3_600_000  # a shopper's clock an hour ahead: clamped, so the request is not refused
    history = [
        Interaction("a-product-id-longer-than-16-bytes", "purchase", future),
        Interaction("p2", "click", now_ms() - 10, embedding=np.ones(DIM, dtype=np.float32)),
        Interaction("p3", "view", now_ms() - 20),
        Interaction("p4", "view", now_ms() - 30),  # beyond the limit: the oldest is left out
    ]
    request = build_request("q", [], 0, RerankOptions(personal_weight=0.7), limits, history)
    sent = list(request.interactions)
    assert [i.product_id for i in sent] == [wire_id(history[0].product_id, limits), "p2", "p3"]
    assert sent[0].product_id.startswith(DIGEST_ID_PREFIX)  # as the candidate's id would be sent
    assert sent[0].timestamp_ms <= now_ms()
    assert sent[0].action == pb.INTERACTION_ACTION_PURCHASE
    assert list(sent[1].embedding) == [1.0] * DIM
    assert request.options.personal_weight == pytest.approx(0.7)
