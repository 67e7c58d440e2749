"""Click models on hand-computed events, and the case they exist for: a relevant product shown deep
gets fewer clicks than a weaker one on top, and only the position-aware models rank it first."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from evaluation.click_agreement import agreement, kendall_tau_b, spearman_rho
from relevance.click_logs import interactions
from relevance.click_models import Interaction, as_gain, coec, pbm, rank_ctr, score_events, sessions, srw_judgments
from relevance.judgments import load_judgments, write_gains


def imp(qid: str, query: str, product: str, rank: int) -> Interaction:
    return Interaction(qid, query, product, "impression", rank)


def click(qid: str, query: str, product: str, rank: int) -> Interaction:
    return Interaction(qid, query, product, "click", rank)


HAND = [
    # q1 served twice: A on top, B second; A clicked both times, B once.
    imp("1", "q1", "A", 0), imp("1", "q1", "B", 1), click("1", "q1", "A", 0),
    imp("2", "q1", "A", 0), imp("2", "q1", "B", 1), click("2", "q1", "A", 0), click("2", "q1", "B", 1),
    # q2 served once, C on top, not clicked; D second, clicked.
    imp("3", "q2", "C", 0), imp("3", "q2", "D", 1), click("3", "q2", "D", 1),
    # q2 again with D on top (its best rank), clicked.
    imp("4", "q2", "D", 0), click("4", "q2", "D", 0),
]  # fmt: skip


def test_rank_ctr_is_clicks_over_impressions_per_rank() -> None:
    # rank 0: 4 impressions (A, A, C, D), 3 clicks (A, A, D); rank 1: 3 impressions (B, B, D), 2 clicks (B, D).
    assert rank_ctr(HAND, max_rank=3) == [0.75, pytest.approx(2 / 3), 0.0]


def test_coec_is_clicks_over_expected_clicks_at_the_best_rank() -> None:
    scores = coec(HAND, max_rank=20)
    assert scores["q1"]["A"].score == pytest.approx(round(2 / (0.75 * 2), 3))  # 1.333
    assert scores["q1"]["B"].score == pytest.approx(round(1 / ((2 / 3) * 2), 3))  # 0.75
    assert scores["q2"]["C"].score == 0.0
    # D: 2 clicks, 2 impressions, best rank 0 -> 2 / (0.75 * 2)
    assert scores["q2"]["D"].score == pytest.approx(1.333)
    assert (scores["q2"]["D"].clicks, scores["q2"]["D"].impressions) == (2, 2)


def test_coec_ignores_events_past_max_rank_as_the_workbench_does() -> None:
    deep = [*HAND, imp("5", "q3", "E", 7), click("5", "q3", "E", 7)]
    assert "q3" not in coec(deep, max_rank=5)
    assert coec(deep, max_rank=7)["q3"]["E"].score == 0.0  # rank == maxRank is read but has no CTR
    assert coec(deep, max_rank=8)["q3"]["E"].score == 1.0


def test_srw_shape_has_ratings_as_three_decimal_strings() -> None:
    (q1, _) = srw_judgments(coec(HAND))
    assert q1 == {"query": "q1", "ratings": [{"docId": "A", "rating": "1.333"}, {"docId": "B", "rating": "0.750"}]}


def biased_traffic() -> list[Interaction]:
    """Deterministic PBM-shaped counts: examination 1/(r+1) over 5 ranks.

    Nine filler queries (products of attractiveness 0.3, rotated through the ranks session by
    session, as changing rankings do; 500 sessions each) set the rank CTRs. In query "target", a weak product (0.2)
    is always on top and a strong one (0.8) always at rank 4 (100 sessions): the weak one gets 20 clicks, the
    strong one 16.
    """
    events: list[Interaction] = []
    target = ["weak-top", "p1", "p2", "p3", "strong-deep"]
    appeal = {"weak-top": 0.2, "strong-deep": 0.8}
    for query in [*(f"filler{n}" for n in range(9)), "target"]:
        shown_by_rank: dict[tuple[int, str], int] = {}
        for s in range(100 if query == "target" else 500):
            layout = target if query == "target" else [f"p{(k + s) % 5}" for k in range(5)]
            for rank, product in enumerate(layout):
                events.append(imp(f"{query}-{s}", query, product, rank))
                # the n-th showing of this product at this rank is clicked while n < 100 x appeal x examination
                n = shown_by_rank.get((rank, product), 0)
                shown_by_rank[(rank, product)] = n + 1
                if n < round(100 * appeal.get(product, 0.3) / (rank + 1)):
                    events.append(click(f"{query}-{s}", query, product, rank))
    return events


def test_position_aware_models_rank_the_deep_relevant_product_above_the_clicked_more_top_one() -> None:
    events = biased_traffic()
    target = [e for e in events if e.user_query == "target" and e.action == "click"]
    clicks = {p: sum(e.object_id == p for e in target) for p in ("weak-top", "strong-deep")}
    assert clicks == {"weak-top": 20, "strong-deep": 16}  # the top one is clicked more
    ctr = score_events("ctr", events)["target"]
    assert ctr["weak-top"].score > ctr["strong-deep"].score  # raw CTR falls for the position
    for model in ("coec", "pbm"):
        scores = score_events(model, events)["target"]
        assert scores["strong-deep"].score > 2 * scores["weak-top"].score, model


def test_pbm_recovers_attractiveness_and_examination() -> None:
    judged, gamma = pbm(sessions(biased_traffic()), iterations=300)
    ratio = judged["target"]["strong-deep"].score / judged["target"]["weak-top"].score
    assert ratio == pytest.approx(0.8 / 0.2, rel=0.25)
    # examination is identified up to scale: its shape is 1/(r+1)
    assert [g / gamma[0] for g in gamma] == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5], rel=0.15)


def test_ubi_events_become_interactions_once_each_with_the_query_from_the_record() -> None:
    def event(action: str, ordinal: int, event_id: str, user_query: str | None = None) -> dict[str, object]:
        out: dict[str, object] = {
            "action_name": action,
            "query_id": "qid-1",
            "event_attributes": {"event_id": event_id, "object": {"object_id": "B1"}, "position": {"ordinal": ordinal}},
        }
        if user_query:
            out["user_query"] = user_query
        return out

    events = [
        event("impression", 2, "e1"),
        event("click", 2, "e2"),
        event("click", 2, "e2"),
        event("purchase", 2, "e3"),
    ]
    queries = [{"query_id": "qid-1", "user_query": "  red   mug "}]
    assert interactions(events, queries) == [
        Interaction("qid-1", "red mug", "B1", "impression", 2),
        Interaction("qid-1", "red mug", "B1", "click", 2),
    ]


def test_implicit_judgments_round_trip_through_the_judgments_reader(tmp_path: Path) -> None:
    scores = coec(HAND)
    rows = [
        {"query": q, "product_id": p, "gain": f"{as_gain('coec', s.score):.6f}", "clicks": s.clicks}
        for q, products in scores.items()
        for p, s in products.items()
    ]
    path = tmp_path / "implicit.csv"
    assert write_gains(path, rows) == 4
    gains = load_judgments(path).gains
    assert gains["q1"]["A"] == pytest.approx(1.333 / 2.333, abs=1e-6)
    assert gains["q2"]["C"] == 0.0
    assert gains["q1"]["A"] > gains["q1"]["B"]


def test_rank_correlations_on_hand_cases() -> None:
    assert kendall_tau_b([1, 2, 3], [1, 2, 3]) == 1.0
    assert kendall_tau_b([1, 2, 3], [3, 2, 1]) == -1.0
    # one tie in y: concordant 2, discordant 0, tied-in-y 1 -> 2 / sqrt(3 * 2)
    assert kendall_tau_b([1, 2, 3], [1, 2, 2]) == pytest.approx(2 / math.sqrt(6))
    assert spearman_rho([10, 20, 30, 40], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert math.isnan(spearman_rho([1, 1, 1], [1, 2, 3]))
    labels = {"q": {"a": 1.0, "b": 0.1, "c": 0.0}}
    assert agreement({"q": {"a": 3.0, "b": 2.0, "c": 1.0}}, labels).kendall == 1.0
    assert agreement({"q": {"a": 3.0, "b": 2.0}}, labels).queries == 0  # fewer than 3 in common
