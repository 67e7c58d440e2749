"""The session reader reads the UBI events log backwards, bounded, and maps UBI actions onto interactions."""

from __future__ import annotations

import json
from pathlib import Path

from frontdoor.session_events import FileSessionEvents, interaction_of
from shoprank.ubi_log import EVENTS, UbiLog


def event(session: str, pid: str, action: str, second: int) -> dict[str, object]:
    return {
        "action_name": action,
        "timestamp": f"2026-12-04T10:00:{second:02d}.000Z",
        "session_id": session,
        "event_attributes": {"object": {"object_id": pid}, "position": {"ordinal": 0}},
    }


def test_most_recent_first_across_segments_skipping_impressions_other_sessions_and_a_torn_line(tmp_path: Path) -> None:
    log = UbiLog(tmp_path, EVENTS, segment_bytes=600)  # a few events per segment: the reader crosses segments
    for second in range(20):
        log.append([event("s1", f"p{second}", "click" if second % 3 else "impression", second)])
        log.append([event("s2", f"q{second}", "purchase", second)])
    with log.segments()[-1].open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(event("s1", "torn", "click", 59))[:40])  # a crash mid-write
    assert len(log.segments()) > 3
    recent = FileSessionEvents(tmp_path, limit=4).recent("s1")
    assert [i.product_id for i in recent] == ["p19", "p17", "p16", "p14"]
    assert {i.action for i in recent} == {"click"}
    assert FileSessionEvents(tmp_path).recent("nobody") == []
    assert FileSessionEvents(tmp_path).recent("") == []


def test_the_scan_is_bounded_by_bytes(tmp_path: Path) -> None:
    log = UbiLog(tmp_path, EVENTS)
    log.append([event("s1", f"p{i}", "click", i % 60) for i in range(200)])
    one = len(json.dumps(event("s1", "p100", "click", 40))) + 1
    found = FileSessionEvents(tmp_path, max_bytes=10 * one).recent("s1")
    assert 8 <= len(found) <= 10  # only the tail it was allowed to read


def test_ubi_actions_map_onto_interactions_and_unreadable_records_are_left_out() -> None:
    click = interaction_of(event("s", "p1", "add_to_cart", 1))
    assert click is not None
    assert click.action == "add_to_cart"
    assert click.timestamp_ms == 1_796_378_401_000
    assert interaction_of(event("s", "p1", "impression", 1)) is None
    assert interaction_of({**event("s", "p1", "click", 1), "timestamp": "yesterday"}) is None
    assert interaction_of({**event("s", "p1", "click", 1), "timestamp": "2026-12-04T10:00:00"}) is None
