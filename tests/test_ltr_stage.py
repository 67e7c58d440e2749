"""The sidecar's LTR stage: a tiny LightGBM model trained here on a synthetic set where one feature
decides relevance is loaded by the sidecar and reorders a window by it; a missing or mismatched
model, or missing features, never fail a rerank; explain carries the contributions."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from shoprank.model_meta import CROSS_ENCODER, load_metadata
from shoprank.template import ProductText
from shoprank.v1 import rerank_pb2 as pb
from sidecar.diversify import DiversityParams
from sidecar.domain import Candidate, CandidateProduct, PairScores, RerankQuery
from sidecar.ltr_features import FEATURES, window_features
from sidecar.ltr_model import CARD_FILE, LtrCard, LtrNotUsableError, load_ltr, ltr_dir, write_ltr
from sidecar.ltr_stage import LtrStage
from sidecar.model_loading import open_ltr
from sidecar.rerank_service import RerankService
from tests.sidecar_harness import running, settings_with
from training.ltr import LtrParams, RankingData, fit

CE_VERSION = "fixed-ce"
# The model reads these; relevance is decided by rating alone.
MODEL_FEATURES = ("ce_logit", "first_stage_window", "rating", "title_coverage")


class FixedScorer:
    """Cross-encoder stand-in: logits that prefer the first-stage order (so LTR has to overrule them)."""

    version = CE_VERSION

    def score(self, query: str, products: Sequence[ProductText], *args: object, **kwargs: object) -> PairScores:
        return PairScores(np.linspace(1.0, -1.0, len(products)).astype(np.float32))


def window(ratings: Sequence[float | None]) -> list[CandidateProduct]:
    return [CandidateProduct(title=f"towel {i}", rating=r, rating_count=10) for i, r in enumerate(ratings)]


def train_tiny(directory: Path, ce_version: str = CE_VERSION) -> LtrCard:
    """A lambdarank model on 40 synthetic windows where the highest rating is the relevant product."""
    rng = np.random.default_rng(3)
    rows = []
    for _ in range(40):
        ratings = rng.uniform(1.0, 5.0, size=12)
        matrix = window_features("towel", window(list(ratings)), list(rng.normal(size=12)), list(rng.normal(size=12)))
        gains = [1.0 if r == ratings.max() else (0.1 if r > 3.5 else 0.0) for r in ratings]
        rows.append((matrix, gains))
    booster = fit(RankingData.stack(rows), MODEL_FEATURES, LtrParams(num_leaves=4, min_data_in_leaf=5, rounds=30))
    card = LtrCard(version="ltr-tiny", features=MODEL_FEATURES, cross_encoder_version=ce_version)
    write_ltr(directory, booster, card)
    return card


def query(ratings: Sequence[float | None], explain: bool = False) -> RerankQuery:
    products = window(ratings)
    return RerankQuery(
        query="towel",
        candidates=[Candidate(f"p{i}", float(len(products) - i), p) for i, p in enumerate(products)],
        top_k=len(products),
        blend_weight=0.5,
        diversity=DiversityParams(method="none"),
        explain=explain,
    )


@pytest.fixture(scope="module")
def tiny_ltr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("ltr")
    train_tiny(directory)
    return directory


def test_a_loaded_model_reorders_the_window_by_the_feature_that_decides_relevance(tiny_ltr: Path) -> None:
    model = load_ltr(tiny_ltr, CE_VERSION)
    ratings = [2.0, 3.0, 4.9, 1.0, 4.0]
    blended = RerankService(FixedScorer()).rerank(query(ratings))
    ranked = RerankService(FixedScorer(), ltr=LtrStage(model)).rerank(query(ratings))
    assert [r.id for r in blended.results][:2] == ["p0", "p1"]  # the blend follows the logits and first stage
    assert [r.id for r in ranked.results][:2] == ["p2", "p4"]  # the LTR model follows the rating
    assert ranked.ltr_version == "ltr-tiny"
    assert blended.ltr_version == ""
    assert max(r.score for r in ranked.results) == pytest.approx(1.0)  # min-max scaled like the blend


def test_missing_features_never_fail_a_rerank(tiny_ltr: Path) -> None:
    stage = LtrStage(load_ltr(tiny_ltr, CE_VERSION))
    outcome = RerankService(FixedScorer(), ltr=stage).rerank(query([None, None, 4.0]))
    assert len(outcome.results) == 3
    assert outcome.ltr_version == "ltr-tiny"
    assert outcome.results[0].id == "p2"


def test_a_failing_model_falls_back_to_the_blend(tiny_ltr: Path, caplog: pytest.LogCaptureFixture) -> None:
    stage = LtrStage(load_ltr(tiny_ltr, CE_VERSION))

    def broken(matrix: object) -> object:
        raise RuntimeError("model exploded")

    stage.model.score = broken  # type: ignore[method-assign, assignment]
    with caplog.at_level(logging.ERROR):
        outcome = RerankService(FixedScorer(), ltr=stage).rerank(query([2.0, 4.9]))
    assert outcome.ltr_version == ""
    assert [r.id for r in outcome.results] == ["p0", "p1"]
    assert "ranked by the blend" in caplog.text


def test_explain_carries_the_top_contributions(tiny_ltr: Path) -> None:
    stage = LtrStage(load_ltr(tiny_ltr, CE_VERSION))
    outcome = RerankService(FixedScorer(), ltr=stage).rerank(query([2.0, 3.0, 4.9], explain=True))
    top = outcome.results[0]
    assert top.explanation is not None
    contributions = top.explanation.contributions
    assert contributions
    assert contributions[0].feature == "rating"
    assert contributions[0].value == 4.9
    assert contributions[0].contribution > 0
    assert [abs(c.contribution) for c in contributions] == sorted(
        (abs(c.contribution) for c in contributions), reverse=True
    )


def test_a_model_for_another_cross_encoder_or_none_at_all_is_refused(tiny_ltr: Path, tmp_path: Path) -> None:
    with pytest.raises(LtrNotUsableError, match="trained on scores of cross-encoder fixed-ce"):
        load_ltr(tiny_ltr, "another-ce")
    with pytest.raises(LtrNotUsableError, match="shoprank train-ltr"):
        load_ltr(tmp_path / "nothing", CE_VERSION)
    (tmp_path / "bad").mkdir()
    train_tiny(tmp_path / "bad")
    card = json.loads((tmp_path / "bad" / CARD_FILE).read_text())
    (tmp_path / "bad" / CARD_FILE).write_text(json.dumps({**card, "features": [*card["features"][:-1], "nonsense"]}))
    with pytest.raises(LtrNotUsableError, match="nonsense"):
        load_ltr(tmp_path / "bad", CE_VERSION)


def _models_with_ltr(tiny_models: Path, tmp_path: Path, ce_version: str | None) -> Path:
    """A models dir with the tiny cross-encoder and bi-encoder and (when given) an LTR model for ce_version."""
    models = tmp_path / "models"
    models.mkdir()
    for kind in ("cross-encoder", "bi-encoder"):
        (models / kind).symlink_to(tiny_models / kind, target_is_directory=True)
    if ce_version is not None:
        train_tiny(ltr_dir(models), ce_version)
    return models


def test_the_sidecar_skips_a_missing_or_mismatched_model(tiny_models: Path, tmp_path: Path) -> None:
    settings = settings_with(_models_with_ltr(tiny_models, tmp_path, "another-ce"), tmp_path, ltr=True)
    assert open_ltr(settings, load_metadata(tiny_models / CROSS_ENCODER).version, None) is None
    assert open_ltr(settings_with(tiny_models, tmp_path / "x", ltr=False), "v", None) is None


def test_the_served_sidecar_ranks_with_ltr_and_explains_over_grpc(tiny_models: Path, tmp_path: Path) -> None:
    # The served version names the precision too (int8 on the CPU): its logits are what the model read.
    version = f"{load_metadata(tiny_models / CROSS_ENCODER).version}:int8"
    settings = settings_with(_models_with_ltr(tiny_models, tmp_path, version), tmp_path, ltr=True, device="cpu")
    ratings = [2.0, 3.0, 4.9, 1.0]
    request = pb.RerankRequest(query="towel", top_k=4)
    for i, rating in enumerate(ratings):
        request.candidates.add(id=f"p{i}", first_stage_score=float(4 - i), product=pb.Product(title=f"towel {i}"))
        request.candidates[-1].product.rating = rating
    request.options.explain = True
    request.options.diversity.method = pb.DIVERSITY_METHOD_NONE
    with running(settings) as (_, stub):
        response = stub.Rerank(request, timeout=30)
    assert response.ltr_version == "ltr-tiny"
    assert response.results[0].id == "p2"
    assert response.results[0].explanation.contributions[0].feature in FEATURES
    assert any(c.feature == "rating" for c in response.results[0].explanation.contributions)


class RefusingScorer(FixedScorer):
    """Fails the test if the cross-encoder is asked for anything."""

    def score(self, query: str, products: Sequence[ProductText], *args: object, **kwargs: object) -> PairScores:
        raise AssertionError("an LTR model without cross-encoder features must not score pairs")


def test_a_model_without_cross_encoder_features_skips_the_cross_encoder(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    rows = []
    for _ in range(30):
        ratings = rng.uniform(1.0, 5.0, size=8)
        matrix = window_features("towel", window(list(ratings)), list(rng.normal(size=8)))
        rows.append((matrix, [1.0 if r == ratings.max() else 0.0 for r in ratings]))
    features = ("first_stage_window", "rating")
    booster = fit(RankingData.stack(rows), features, LtrParams(num_leaves=4, min_data_in_leaf=5, rounds=30))
    write_ltr(tmp_path, booster, LtrCard(version="ltr-no-ce", features=features, cross_encoder_version=""))
    stage = LtrStage(load_ltr(tmp_path, "any-ce:int8"))
    outcome = RerankService(RefusingScorer(), ltr=stage).rerank(query([2.0, 4.9, 3.0]))
    assert outcome.results[0].id == "p1"
    assert outcome.ltr_version == "ltr-no-ce"


def test_one_model_serves_its_cross_encoder_at_any_precision(tmp_path: Path) -> None:
    train_tiny(tmp_path, ce_version="weights-1:int8")
    assert load_ltr(tmp_path, "weights-1:fp16").version == "ltr-tiny"
    with pytest.raises(LtrNotUsableError):
        load_ltr(tmp_path, "weights-2:int8")


def test_a_hot_reload_picks_up_the_ltr_model_beside_its_cross_encoder(tiny_models: Path, tmp_path: Path) -> None:
    from sidecar.model_loading import load_service
    from sidecar.reload import ModelReloader
    from sidecar.servicer import ModelSlot

    models = _models_with_ltr(tiny_models, tmp_path, None)
    settings = settings_with(models, tmp_path, ltr=True, device="cpu")
    slot = ModelSlot()
    reloader = ModelReloader(settings, slot, load_service)
    assert reloader.reload().loaded
    assert slot.get().ltr is None  # no LTR model yet: the blend ranks
    train_tiny(ltr_dir(models), f"{load_metadata(tiny_models / CROSS_ENCODER).version}:int8")
    assert reloader.reload().loaded
    stage = slot.get().ltr
    assert stage is not None
    assert stage.version == "ltr-tiny"
    slot.get().close()
