"""Diversity through the real gRPC path: an in-process sidecar on port 0 with tiny models."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from shoprank.settings import Settings
from shoprank.v1 import rerank_pb2 as pb
from shoprank.v1 import rerank_pb2_grpc as pb_grpc
from sidecar.cross_encoder import CrossEncoder
from sidecar.diversify import DiversityParams
from sidecar.rerank_service import RerankService
from sidecar.server import create_server, defaults_from, load_service
from sidecar.wire_request import RequestDefaults, RequestLimits, request_to_domain

BRANDS = ["Acme"] * 8 + ["Birch", "Birch", "Cobalt", "Cobalt", "Dune", "Elm"]
LEAVES = ["Mugs"] * 6 + ["Plates", "Plates", "Bowls", "Cups", "Mugs", "Trays", "Jugs", "Pans"]


def candidates(brands: list[str] = BRANDS, embeddings: list[list[float]] | None = None) -> list[pb.Candidate]:
    out = []
    for i, brand in enumerate(brands):
        candidate = pb.Candidate(
            id=f"p{i}",
            first_stage_score=float(len(brands) - i),
            product=pb.Product(
                title=f"{brand} stoneware {LEAVES[i % len(LEAVES)].lower()} model {i}",
                brand=brand,
                category=["Home & Kitchen", "Dining", LEAVES[i % len(LEAVES)]],
            ),
        )
        if embeddings is not None:
            candidate.embedding.extend(embeddings[i])
        out.append(candidate)
    return out


def request(top_k: int = 6, explain: bool = True, **diversity: object) -> pb.RerankRequest:
    message = pb.RerankRequest(query="stoneware mug", top_k=top_k, candidates=candidates())
    message.options.explain = explain
    for name, value in diversity.items():
        setattr(message.options.diversity, name, value)
    return message


Stub = Callable[[Callable[[Settings], RerankService] | None], pb_grpc.RerankerStub]


@pytest.fixture(scope="module")
def servers(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stub]:
    """Start sidecars lazily per loader (with / without a bi-encoder); stop them all at the end."""
    data_dir = tmp_path_factory.mktemp("sidecar-data")
    (data_dir / "models").symlink_to(tiny_models, target_is_directory=True)
    # Blend weight 0: the page is built from the cross-encoder's relevance alone, as asserted below.
    settings = Settings(data_dir=data_dir, listen="127.0.0.1:0", blend_weight=0.0)
    started: dict[object, tuple[grpc.Server, grpc.Channel, pb_grpc.RerankerStub]] = {}

    def stub(loader: Callable[[Settings], RerankService] | None = None) -> pb_grpc.RerankerStub:
        if loader not in started:
            server, port, _ = create_server(settings, loader or load_service, background_load=False)
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            started[loader] = (server, channel, pb_grpc.RerankerStub(channel))
        return started[loader][2]

    yield stub
    for server, channel, _ in started.values():
        channel.close()
        server.stop(0)


def without_bi_encoder(settings: Settings) -> RerankService:
    return RerankService(CrossEncoder(settings.models_dir()), embedder=None)


def brand_of(response: pb.RerankResponse) -> list[str]:
    by_id = {c.id: c.product.brand for c in candidates()}
    return [by_id[r.id] for r in response.results]


@pytest.mark.parametrize("method", [pb.DIVERSITY_METHOD_NONE, pb.DIVERSITY_METHOD_MMR, pb.DIVERSITY_METHOD_DPP])
def test_caps_hold_on_the_returned_page(servers: Stub, method: int) -> None:
    response = servers(None).Rerank(request(top_k=6, method=method, strength=0.3, max_per_brand=2), timeout=30)
    assert len(response.results) == 6
    assert max(Counter(brand_of(response)).values()) <= 2
    assert response.diversity_method.endswith("caps")
    assert list(response.diversity_notes) == []


def test_a_brand_the_query_names_is_not_capped(servers: Stub) -> None:
    message = request(top_k=6, method=pb.DIVERSITY_METHOD_NONE, max_per_brand=1)
    message.query = "ACME stoneware mug"
    response = servers(None).Rerank(message, timeout=30)
    brands = Counter(brand_of(response))
    # 12 candidates may go on the page: the 8 Acme ones and the first of each other brand.
    assert brands["Acme"] >= 2
    assert max(n for brand, n in brands.items() if brand != "Acme") == 1
    # No "caps could not hold": the cap held for every brand it counts.
    assert list(response.diversity_notes) == [
        "the query names 'Acme': its products are not counted as repeating a brand"
    ]


def test_unsatisfiable_caps_still_return_a_full_page_and_say_so(servers: Stub) -> None:
    message = request(top_k=10, method=pb.DIVERSITY_METHOD_MMR, strength=0.3, max_per_brand=1)
    del message.candidates[:]
    message.candidates.extend(candidates(brands=["Acme"] * 12))
    response = servers(None).Rerank(message, timeout=30)
    assert len(response.results) == 10
    assert len({r.id for r in response.results}) == 10
    assert "caps could not hold: 9 of 10 results exceed a cap" in " ".join(response.diversity_notes)
    assert all("cap exceeded" in r.explanation.reason for r in response.results[1:])


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"strength": 1.5}, "options.diversity.strength"),
        ({"strength": -0.5}, "options.diversity.strength"),
        ({"strength": float("nan")}, "options.diversity.strength"),
        ({"window": 0}, "options.diversity.window"),
        ({"max_per_brand": 0}, "options.diversity.max_per_brand"),
        ({"max_per_brand": 1, "page_size": 0}, "options.diversity.page_size"),
        ({"max_per_category": 0}, "options.diversity.max_per_category"),
        ({"attribute_weight": 1.5}, "options.diversity.attribute_weight"),
        ({"attribute_weight": float("nan")}, "options.diversity.attribute_weight"),
    ],
)
def test_invalid_diversity_options_are_invalid_argument_naming_the_field(
    servers: Stub, options: dict[str, object], field: str
) -> None:
    message = request(method=pb.DIVERSITY_METHOD_MMR)
    for name, value in options.items():
        setattr(message.options.diversity, name, value)
    with pytest.raises(grpc.RpcError) as raised:
        servers(None).Rerank(message, timeout=30)
    error: grpc.Call = raised.value  # type: ignore[assignment]
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"{field}: ")


@pytest.mark.parametrize("method", [pb.DIVERSITY_METHOD_MMR, pb.DIVERSITY_METHOD_XQUAD, pb.DIVERSITY_METHOD_DPP])
def test_strength_zero_is_the_relevance_order(servers: Stub, method: int) -> None:
    stub = servers(None)
    plain = stub.Rerank(request(top_k=14, method=pb.DIVERSITY_METHOD_NONE), timeout=30)
    relevance = [r.relevance_score for r in plain.results]
    assert relevance == sorted(relevance, reverse=True)
    zero = stub.Rerank(request(top_k=14, method=method, strength=0.0), timeout=30)
    assert [r.id for r in zero.results] == [r.id for r in plain.results]
    assert zero.diversity_method == "none"
    diversified = stub.Rerank(request(top_k=14, method=method, strength=0.9), timeout=30)
    assert [r.id for r in diversified.results] != [r.id for r in plain.results]


def test_explanations_carry_the_objective_the_page_is_built_from(servers: Stub) -> None:
    strength = 0.5
    response = servers(None).Rerank(request(top_k=8, method=pb.DIVERSITY_METHOD_MMR, strength=strength), timeout=30)
    assert response.diversity_method == "mmr"
    assert list(response.diversity_notes) == []  # the bi-encoder embedded the candidates
    for rank, result in enumerate(response.results):
        e = result.explanation
        assert e.final_rank == rank
        assert e.relevance == pytest.approx(result.relevance_score)
        # blend weight 0: blended is the min-max normalised relevance, as MMR sees it
        assert result.score == pytest.approx((1 - strength) * e.blended - strength * e.diversity_term, abs=1e-5)
        assert "MMR" in e.reason
        moved = e.final_rank - e.scored_rank
        assert e.reason.startswith(
            f"moved down {moved}" if moved > 0 else f"moved up {-moved}" if moved < 0 else f"kept at #{rank + 1}"
        )
    plain = servers(None).Rerank(request(top_k=3, method=pb.DIVERSITY_METHOD_NONE), timeout=30)
    assert [r.score for r in plain.results] == [r.explanation.blended for r in plain.results]
    assert not servers(None).Rerank(request(explain=False), timeout=30).results[0].HasField("explanation")


def test_dpp_window_is_honoured(servers: Stub) -> None:
    stub = servers(None)
    plain = stub.Rerank(request(top_k=8, method=pb.DIVERSITY_METHOD_NONE), timeout=30)
    window_one = stub.Rerank(request(top_k=8, method=pb.DIVERSITY_METHOD_DPP, strength=0.9, window=1), timeout=30)
    # A window of 1 conditions on nothing: relevance order.
    assert [r.id for r in window_one.results] == [r.id for r in plain.results]
    wide = stub.Rerank(request(top_k=8, method=pb.DIVERSITY_METHOD_DPP, strength=0.9, window=8), timeout=30)
    assert [r.id for r in wide.results] != [r.id for r in plain.results]


def test_missing_embeddings_without_a_bi_encoder_fall_back_to_attributes(servers: Stub) -> None:
    response = servers(without_bi_encoder).Rerank(
        request(top_k=6, method=pb.DIVERSITY_METHOD_MMR, strength=0.5), timeout=30
    )
    assert len(response.results) == 6
    notes = " ".join(response.diversity_notes)
    assert "attribute similarity (same brand 0.5 + same category 0.5) for 14 of 14 candidates" in notes
    assert "MMR (attribute similarity)" in response.results[1].explanation.reason
    assert len(set(brand_of(response)[:4])) >= 3


def test_sent_embeddings_are_used_and_missing_or_zero_ones_are_completed(servers: Stub) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(14, 16)).astype(np.float32).tolist()
    vectors[3] = [0.0] * 16
    message = request(top_k=6, method=pb.DIVERSITY_METHOD_DPP, strength=0.5)
    del message.candidates[:]
    message.candidates.extend(candidates(embeddings=vectors))
    del message.candidates[5].embedding[:]
    # 16-d vectors and a 384-d bi-encoder: the missing one cannot be embedded in the same space.
    response = servers(None).Rerank(message, timeout=30)
    assert len(response.results) == 6
    assert "for 2 of 14 candidates without a usable embedding" in " ".join(response.diversity_notes)
    # With no vectors sent at all, the bi-encoder embeds every candidate.
    complete = servers(None).Rerank(request(top_k=6, method=pb.DIVERSITY_METHOD_DPP, strength=0.5), timeout=30)
    assert list(complete.diversity_notes) == []


def test_server_defaults_fill_unset_options(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        diversity_method="dpp",
        diversity_strength=0.7,
        diversity_window=4,
        diversity_facets="brand",
        diversity_attribute_weight=0.4,
    )
    defaults = defaults_from(settings)
    expected = DiversityParams(method="dpp", strength=0.7, window=4, facets=("brand",), attribute_weight=0.4)
    assert defaults.diversity == expected
    message = request(explain=False)
    query = request_to_domain(message, RequestLimits(), defaults)
    assert query.diversity == expected
    message.options.diversity.method = pb.DIVERSITY_METHOD_XQUAD
    message.options.diversity.max_per_category = 2
    message.options.diversity.attribute_weight = 0.0
    query = request_to_domain(message, RequestLimits(), RequestDefaults(diversity=defaults.diversity))
    assert query.diversity == DiversityParams(
        method="xquad", strength=0.7, window=4, max_per_category=2, facets=("brand",), attribute_weight=0.0
    )
