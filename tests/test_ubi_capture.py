"""UBI capture: the embedded tables' file format, the bounded queue off the request path, both sinks."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from frontdoor.ubi_capture import (
    UBI_MAPPINGS,
    CaptureQueue,
    FileSink,
    OpenSearchSink,
    RateLimitedError,
    TokenBucket,
    UbiCapture,
    opensearch_records,
)
from frontdoor.ubi_events import query_record, validate_event
from shoprank.ubi_log import EVENTS, QUERIES, UbiLog
from tests.opensearch_spec import SpecValidator
from tests.recording_transport import FakeCluster
from tests.test_ubi_records import good_event


def test_records_come_back_in_order_and_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    table = UbiLog(tmp_path, QUERIES)
    table.append([{"n": 1}, {"n": 2}])
    table.append([{"n": 3}])
    (segment,) = table.segments()
    with segment.open("a") as handle:
        handle.write('{"n": 4')  # a crash mid-write
    assert [r["n"] for r in table.read()] == [1, 2, 3]


def test_segments_roll_and_the_oldest_go_beyond_the_size_bound(tmp_path: Path) -> None:
    table = UbiLog(tmp_path, EVENTS, segment_bytes=100, max_bytes=250)
    for n in range(20):
        table.append([{"n": n, "pad": "x" * 40}])
    segments = table.segments()
    assert len(segments) > 1
    assert sum(p.stat().st_size for p in segments) <= 250 + 100
    kept = [r["n"] for r in table.read()]
    assert kept == list(range(20 - len(kept), 20))  # the newest, in order


def test_segments_older_than_the_retention_are_deleted(tmp_path: Path) -> None:
    table = UbiLog(tmp_path, EVENTS, segment_bytes=10, retention_s=3600)
    table.append([{"n": 0}])
    (old,) = table.segments()
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    table.append([{"n": 1}])
    assert [r["n"] for r in table.read()] == [1]


class BlockingSink:
    """A sink that holds the writer until released, recording what it was given."""

    def __init__(self, fail: bool = False) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.fail = fail
        self.written: list[tuple[str, int]] = []

    def write(self, table: str, records: Sequence[Mapping[str, Any]]) -> None:
        self.entered.set()
        self.release.wait(10)
        if self.fail:
            raise OSError("disk full")
        self.written.append((table, len(records)))


def test_a_full_queue_drops_and_counts_without_waiting() -> None:
    sink = BlockingSink()
    capture = CaptureQueue(sink, capacity=3)
    assert capture.offer(QUERIES, {"n": 0})
    assert sink.entered.wait(5)  # the writer holds record 0; the queue is empty again
    results = [capture.offer(QUERIES, {"n": n}) for n in range(1, 6)]
    assert results == [True, True, True, False, False]
    assert capture.stats.dropped == 2
    sink.release.set()
    capture.flush()
    assert capture.stats.written == 4
    assert sum(n for _, n in sink.written) == 4
    capture.close()


def test_a_failing_sink_is_counted_never_raised() -> None:
    sink = BlockingSink(fail=True)
    sink.release.set()
    capture = CaptureQueue(sink, capacity=10)
    capture.offer(QUERIES, {"n": 1})
    capture.flush()
    assert capture.stats.failed == 1
    assert capture.stats.written == 0
    capture.close()


def test_the_file_sink_stores_a_retried_event_once(tmp_path: Path) -> None:
    sink = FileSink(tmp_path, 2**20, 2**30, 86400.0)
    event = validate_event(good_event())
    sink.write(EVENTS, [event])
    sink.write(EVENTS, [validate_event(good_event(query_id=event["query_id"]))])
    assert len(list(UbiLog(tmp_path, EVENTS).read())) == 1


def test_the_opensearch_sink_writes_ubi_indices_the_spec_accepts(spec_validator: SpecValidator) -> None:
    cluster = FakeCluster(spec_validator)
    sink = OpenSearchSink(cluster.client())
    record = query_record("q-1", "rain jacket", ["b", "a"], "c-1", "shoprank", {"engine": "opensearch"})
    sink.write(QUERIES, [record])
    event = validate_event(good_event(query_id="q-1"))
    sink.write(EVENTS, [event])
    sink.write(EVENTS, [event])  # a retry overwrites itself
    cluster.assert_valid()
    assert cluster.indices[QUERIES].docs["q-1"]["query_response_hit_ids"] == ["b", "a"]
    assert list(cluster.indices[EVENTS].docs) == [event["event_attributes"]["event_id"]]
    assert cluster.indices[EVENTS].mappings["properties"]["query_id"] == UBI_MAPPINGS[EVENTS]["properties"]["query_id"]
    # A second sink (another front door) finds the indices there and keeps writing.
    OpenSearchSink(cluster.client()).write(QUERIES, [{**record, "query_id": "q-2"}])
    assert set(cluster.indices[QUERIES].docs) == {"q-1", "q-2"}


def test_the_token_bucket_takes_whole_batches_and_refills_at_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=10, burst=20, clock=lambda: now[0])
    assert bucket.take(15) == 0.0
    assert bucket.take(10) == pytest.approx(0.5)  # 5 left, 5 more come in 0.5 s
    now[0] = 0.5
    assert bucket.take(10) == 0.0
    now[0] = 100.0
    assert bucket.take(21) > 0  # never more than the burst at once
    assert bucket.take(20) == 0.0


def test_events_over_the_rate_bound_are_refused_whole() -> None:
    sink = BlockingSink()
    sink.release.set()
    capture = UbiCapture(CaptureQueue(sink, 100), "test", TokenBucket(rate=1, burst=2, clock=lambda: 0.0))
    event = validate_event(good_event())
    assert capture.events([event, event]) == 2
    with pytest.raises(RateLimitedError, match="retry in"):
        capture.events([event])
    capture.queue.flush()
    assert capture.queue.stats.queued == 2


def test_records_read_back_from_opensearch_oldest_first(spec_validator: SpecValidator) -> None:
    cluster = FakeCluster(spec_validator)
    sink = OpenSearchSink(cluster.client())
    records = [
        {
            **query_record(f"q-{n:02d}", "mug", ["a"], "c", "shoprank", {}),
            "timestamp": f"2026-12-04T10:00:{59 - n:02d}Z",
        }
        for n in range(25)
    ]
    sink.write(QUERIES, records)
    read = opensearch_records(cluster.client(), QUERIES, page_size=10)  # three pages
    assert [r["query_id"] for r in read] == [f"q-{n:02d}" for n in reversed(range(25))]
    assert opensearch_records(cluster.client(), EVENTS) == []  # no such index yet
    assert len(cluster.calls("POST", "/_search/scroll")) >= 2
    cluster.assert_valid()


def test_judgments_from_clicks_reads_the_ubi_indices_on_opensearch(
    spec_validator: SpecValidator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import engines.opensearch_client as client_module
    from relevance.judgments import load_judgments
    from shoprank.cli import main

    cluster = FakeCluster(spec_validator)
    monkeypatch.setattr(client_module, "client_from_settings", lambda settings, **kw: cluster.client())
    sink = OpenSearchSink(cluster.client())
    sink.write(QUERIES, [query_record("q-1", "red mug", ["m1", "m2"], "c", "shoprank", {})])
    position = {"impression": [0, 1], "click": [1]}
    events = [
        validate_event(
            good_event(
                query_id="q-1",
                action_name=action,
                user_query="red mug",
                event_attributes={"object": {"object_id": f"m{rank + 1}"}, "position": {"ordinal": rank}},
            )
        )
        for action, ranks in position.items()
        for rank in ranks
    ]
    sink.write(EVENTS, events)
    out = tmp_path / "implicit.csv"
    args = ["judgments-from-clicks", "--engine", "opensearch", "--opensearch-url", "http://fake:9200"]
    assert main([*args, "--model", "ctr", "--output", str(out)]) == 0
    assert load_judgments(out).gains == {"red mug": {"m1": 0.0, "m2": pytest.approx(0.999999)}}
    cluster.assert_valid()
