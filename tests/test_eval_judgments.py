"""Loading ESCI-format judgments and splitting them by query."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relevance.judgments import JudgmentsError, load_judgments, split_queries


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_labels_and_ratings_become_esci_gains(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "j.csv",
        "query,product_id,rating,esci_label\n"
        "ugg  slippers,A,100.0,E\nugg  slippers,B,10.0,S\nugg slippers,C,1.0,C\nkindle,D,0.0,I\nkindle,E,100,\n",
    )
    judgments = load_judgments(path)
    # Whitespace is normalised like the serving path, so the two spellings are one query.
    assert judgments.queries == ["ugg slippers", "kindle"]
    assert judgments.gains["ugg slippers"] == {"A": 1.0, "B": 0.1, "C": 0.01}
    assert judgments.gains["kindle"] == {"D": 0.0, "E": 1.0}
    assert judgments.pairs() == 5


def test_a_file_with_only_ratings_is_accepted(tmp_path: Path) -> None:
    path = _write(tmp_path / "j.csv", "query,product_id,rating\nq,A,10\nq,B,0\n")
    assert load_judgments(path).gains == {"q": {"A": 0.1, "B": 0.0}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("query,id,rating\nq,A,1\n", "needs the columns"),
        ("query,product_id,esci_label\nq,A,X\n", "not one of E, S, C, I"),
        ("query,product_id,rating\nq,A,55\n", "not one of 100/10/1/0"),
        ("query,product_id,rating\n,A,100\n", "empty query"),
        ("query,product_id,rating\n", "no judgments"),
    ],
)
def test_bad_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(JudgmentsError, match=message):
        load_judgments(_write(tmp_path / "j.csv", text))


def test_the_real_judgments_load(shared_data: Path) -> None:
    judgments = load_judgments(shared_data / "esci" / "judgments.csv")
    assert len(judgments.queries) == 100
    assert judgments.pairs() == 4454


@settings(max_examples=50, deadline=None)
@given(
    queries=st.lists(st.text(min_size=1, max_size=8), min_size=6, max_size=60, unique=True),
    seed=st.integers(0, 10_000),
)
def test_split_is_by_query_disjoint_complete_and_reproducible(queries: list[str], seed: int) -> None:
    dev, test = len(queries) // 5, len(queries) // 4
    split = split_queries(queries, seed, dev=dev, test=test)
    parts = [set(split.train), set(split.dev), set(split.test)]
    assert not parts[0] & parts[1]
    assert not parts[0] & parts[2]
    assert not parts[1] & parts[2]
    assert parts[0] | parts[1] | parts[2] == set(queries)
    assert (len(split.dev), len(split.test)) == (dev, test)
    # Same set of queries in another order (and repeated, as pairs repeat them): same split.
    assert split_queries(list(reversed(queries)) + queries, seed, dev=dev, test=test) == split


def test_split_refuses_to_hold_out_everything() -> None:
    with pytest.raises(ValueError, match="cannot hold out"):
        split_queries(["a", "b", "c"], dev=1, test=2)


def test_the_real_split_sizes(shared_data: Path) -> None:
    judgments = load_judgments(shared_data / "esci" / "judgments.csv")
    split = split_queries(judgments.queries)
    assert (len(split.train), len(split.dev), len(split.test)) == (50, 20, 30)
