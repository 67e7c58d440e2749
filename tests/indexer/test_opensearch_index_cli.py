"""`shoprank --engine opensearch index`: a full reindex, `--incremental --changes PATH` and `--rollback`
through the CLI into the real OpenSearch engine code, against the recording transport (every
request and response validated against the pinned spec)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from engines.opensearch import OpenSearchEngine
from engines.opensearch_setup import apply_setup
from shoprank.cli import main
from shoprank.settings import REPO_ROOT, Settings
from tests.indexer.bad_catalogues import good
from tests.indexer.conftest import dead_letters, write_jsonl
from tests.opensearch_spec import SpecValidator
from tests.recording_transport import FakeCluster, RecordingConnection


class Run(NamedTuple):
    code: int
    report: dict[str, Any]
    err: str


@pytest.fixture
def cluster(spec_validator: SpecValidator, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCluster]:
    """A set-up fake cluster that every engine the CLI opens from settings talks to."""
    fake = FakeCluster(spec_validator)
    apply_setup(fake.client(), REPO_ROOT / "opensearch", "products", 0.5)
    from_settings = OpenSearchEngine.from_settings

    def to_fake(settings: Settings, **overrides: Any) -> OpenSearchEngine:
        return from_settings(settings, connection_class=RecordingConnection, cluster=fake)

    monkeypatch.setattr(OpenSearchEngine, "from_settings", to_fake)
    yield fake
    fake.assert_valid()


@pytest.fixture
def shoprank(cluster: FakeCluster, settings: Settings, capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*args: str) -> Run:
        flags = ["--data-dir", str(settings.data_dir), "--engine", "opensearch", "--opensearch-url", "http://fake:9200"]
        code = main([*flags, *args, "--json"])
        out, err = capsys.readouterr()
        return Run(code, json.loads(out) if out.strip() else {}, err)

    return run


def titles(cluster: FakeCluster, index: str) -> dict[str, str]:
    return {doc_id: doc["title"] for doc_id, doc in cluster.indices[index].docs.items()}


def test_full_incremental_and_rollback_through_the_cli(shoprank: Any, cluster: FakeCluster, tmp_path: Path) -> None:
    first_catalogue = write_jsonl(tmp_path / "first.jsonl", [good("a", "Cotton Apron"), good("b", "Bamboo Board")])
    first = shoprank("index", "--catalogue", str(first_catalogue))
    assert first.code == 0, first.err
    assert (first.report["engine"], first.report["indexed"]) == ("opensearch", 2)

    catalogue = write_jsonl(
        tmp_path / "second.jsonl",
        [good("a", "Cotton Apron"), good("b", "Bamboo Board"), good("c", "Cast Iron Skillet"), good("x", "")],
    )
    second = shoprank("index", "--catalogue", str(catalogue), "--dead-letter", str(tmp_path / "full-dl.jsonl"))
    assert second.code == 0, second.err
    assert (second.report["indexed"], second.report["rejected"]) == (3, 1)
    v1, v2 = first.report["version"], second.report["version"]
    assert cluster.alias_targets("products") == [v2]
    assert [(r["line"], r["id"]) for r in dead_letters(tmp_path / "full-dl.jsonl")] == [(4, "x")]

    changes = write_jsonl(
        tmp_path / "changes.jsonl",
        [
            good("b", "Walnut Board"),  # update
            good("d", "Dish Rack"),  # insert
            {"id": "c", "_op": "delete"},
            {"id": "e", "title": "Priced in words", "price": "ten"},  # rejected, the run goes on
        ],
    )
    dead_letter = tmp_path / "changes-dl.jsonl"
    changed = shoprank("index", "--incremental", "--changes", str(changes), "--dead-letter", str(dead_letter))
    assert changed.code == 0, changed.err
    report = changed.report
    assert (report["mode"], report["version"]) == ("incremental", v2)  # in place, through the alias
    assert (report["indexed"], report["deleted"], report["rejected"]) == (2, 1, 1)
    assert [(r["line"], r["reason"].split(":")[0]) for r in dead_letters(dead_letter)] == [(4, "price")]
    assert titles(cluster, v2) == {"a": "Cotton Apron", "b": "Walnut Board", "d": "Dish Rack"}
    bulk_targets = {
        line.get("index", line.get("delete", {})).get("_index") for line in cluster.calls("POST", "/_bulk")[-1].body
    }
    assert bulk_targets <= {"products", None}  # incremental writes name the alias, never a physical index

    rolled = shoprank("index", "--rollback")
    assert rolled.code == 0, rolled.err
    assert rolled.report == {"mode": "rollback", "engine": "opensearch", "version": v1}
    assert cluster.alias_targets("products") == [v1]
    assert v2 not in cluster.indices  # the rolled-back version is dropped
    assert titles(cluster, v1) == {"a": "Cotton Apron", "b": "Bamboo Board"}

    nothing_left = shoprank("index", "--rollback")
    assert nothing_left.code != 0
    assert "nothing to roll back" in nothing_left.err
    assert cluster.alias_targets("products") == [v1]
