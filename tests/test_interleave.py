"""Team-draft interleaving: the draft, the credit, the sign test, and on simulated shoppers its
false-positive rate (A vs A) and its sensitivity against an A/B test of the same traffic."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from evaluation.online_tests import ab_test, interleaving, sign_test, two_proportion_p
from evaluation.simulate_traffic import ShopperModel
from frontdoor.interleave import Ranker, credit, team_draft


def test_team_draft_takes_turns_without_duplicates_keeping_each_rankers_order() -> None:
    a = ["a1", "a2", "shared", "a3", "a4"]
    b = ["shared", "b1", "b2", "a1", "b3"]
    for seed in range(20):
        drafted = team_draft(a, b, 6, random.Random(seed))
        ids = [pid for pid, _ in drafted]
        assert len(ids) == len(set(ids)) == 6
        teams = "".join(team for _, team in drafted)
        for prefix in range(1, 7):
            assert abs(teams[:prefix].count("a") - teams[:prefix].count("b")) <= 1
        for team, ranking in (("a", a), ("b", b)):
            picked = [pid for pid, t in drafted if t == team]
            assert picked == sorted(picked, key=ranking.index)


def test_team_draft_of_one_seed_is_the_hand_worked_draft() -> None:
    rng = random.Random(0)  # first coin 0.844 -> b picks first; then a, then coin 0.758 -> b, then a
    assert team_draft(["x", "y", "z"], ["y", "x", "w"], 4, rng) == [("y", "b"), ("x", "a"), ("w", "b"), ("z", "a")]


def test_team_draft_of_equal_rankings_is_that_ranking() -> None:
    ranking = list("abcdefgh")
    assert [pid for pid, _ in team_draft(ranking, ranking, 8, random.Random(3))] == ranking


def test_a_short_ranking_lets_the_other_team_fill_the_page() -> None:
    drafted = team_draft(["x"], ["y", "z", "w"], 4, random.Random(1))
    assert sorted(pid for pid, _ in drafted) == ["w", "x", "y", "z"]


def test_credit_by_clicks_per_team() -> None:
    assert credit("abab", [0, 2]) == "a"
    assert credit("abab", [1]) == "b"
    assert credit("abab", [0, 1]) == "tie"
    assert credit("abab", []) == ""
    assert credit("abab", [9]) == ""  # a position past the page is not credited


def test_significance_on_hand_values() -> None:
    assert sign_test(0, 5) == pytest.approx(2 / 32)
    assert sign_test(6, 0) == pytest.approx(2 / 64)
    assert sign_test(3, 3) == 1.0
    assert sign_test(0, 0) == 1.0
    assert two_proportion_p(50, 100, 50, 100) == pytest.approx(1.0)
    assert two_proportion_p(60, 100, 40, 100) == pytest.approx(0.004677, rel=1e-3)  # z = 2.828


def test_rankers_parse_and_refuse_what_they_cannot_run() -> None:
    assert Ranker.parse("hybrid+rerank") == Ranker("hybrid", True)
    assert Ranker.parse("bm25").name == "bm25"
    with pytest.raises(ValueError, match="MODE"):
        Ranker.parse("bm26")


GRADES = "ESCI"


def _queries(rng: random.Random, count: int = 50) -> list[list[str]]:
    """Each query's 20 candidates' grades in ideal order (a few E, more S/C, many I)."""
    return [sorted((rng.choice("ESSCCIIIII") for _ in range(20)), key=GRADES.index) for _ in range(count)]


def _records(
    rankers: Sequence[str], impressions: int, seed: int, interleave: bool
) -> tuple[list[dict[str, object]], dict[str, list[int]]]:
    """Simulated UBI query records and clicks: `good` shows grades in ideal order, `shuffled` in a
    seeded random order per query, `good2` = `good`; interleaved or split A/B by session."""
    rng = random.Random(seed)
    catalogue = _queries(random.Random(99))
    orders = {q: rng.sample(range(20), 20) for q in range(len(catalogue))}
    shopper = ShopperModel()

    def ranking(name: str, q: int) -> list[int]:
        return list(range(20)) if name in ("good", "good2") else orders[q]

    records: list[dict[str, object]] = []
    clicks: dict[str, list[int]] = {}
    for n in range(impressions):
        q = rng.randrange(len(catalogue))
        if interleave:
            drafted = team_draft(ranking(rankers[0], q), ranking(rankers[1], q), 10, rng)
            shown = [pid for pid, _ in drafted]
            attributes = {"experiment": "interleave", "interleave_teams": "".join(t for _, t in drafted)}
        else:
            arm = rankers[n % 2]
            shown = ranking(arm, q)[:10]
            attributes = {"mode": arm}
        records.append({"query_id": str(n), "query_attributes": attributes})
        clicks[str(n)] = shopper.clicks([catalogue[q][pid] for pid in shown], rng)
    return records, clicks


def test_a_vs_a_interleaving_finds_a_difference_at_about_the_nominal_rate() -> None:
    rejected = 0
    runs = 200
    for seed in range(runs):
        records, clicks = _records(("good", "good2"), 200, seed, interleave=True)
        rejected += interleaving(records, clicks).p_value < 0.05
    assert 0.01 * runs <= rejected <= 0.09 * runs  # 5% nominal; the sign test is a little conservative


def test_interleaving_detects_the_better_ranker_in_far_fewer_impressions_than_ab() -> None:
    budget = 4000
    tdi = interleaving(*_records(("good", "shuffled"), budget, 1, interleave=True))
    ab = ab_test(*_records(("good", "shuffled"), budget, 1, interleave=False), attribute="mode")
    assert tdi.preference_a > 0.2
    assert tdi.impressions_to_significance is not None
    assert (
        ab.impressions_to_significance is None or ab.impressions_to_significance > 3 * tdi.impressions_to_significance
    )
    print(f"interleaving: p < 0.05 from {tdi.impressions_to_significance}; A/B: {ab.impressions_to_significance}")
