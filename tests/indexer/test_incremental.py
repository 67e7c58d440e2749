"""`shoprank index --incremental --changes PATH`: upserts and deletes by id into the live version,
seen at once by search, from every changes format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engines.base import RetrievalQuery
from shoprank.bi_encoder import BiEncoder
from shoprank.settings import Settings
from tests.indexer.bad_catalogues import good
from tests.indexer.conftest import CliRun, dead_letters, open_lance, write_jsonl

BASE = [
    good("a", "Cotton Apron"),
    good("b", "Bamboo Cutting Board"),
    good("c", "Cast Iron Skillet"),
    good("d", "Dish Drying Rack"),
]


def bm25_ids(settings: Settings, text: str) -> list[str]:
    engine = open_lance(settings)
    return [h.product.id for h in engine.retrieve(RetrievalQuery(text, None, mode="bm25", size=10)).hits]


def test_jsonl_changes_upsert_and_delete_in_the_live_version(
    shoprank: CliRun, settings: Settings, tmp_path: Path
) -> None:
    code, full, _ = shoprank("index", "--catalogue", str(write_jsonl(tmp_path / "base.jsonl", BASE)))
    assert code == 0
    long_lived = open_lance(settings)  # a reader opened before the change, like a running front door
    assert long_lived.count() == 4
    changes = write_jsonl(
        tmp_path / "changes.jsonl",
        [
            good("b", "Walnut Cutting Board"),  # update
            good("e", "Enamel Dutch Oven"),  # insert
            {"id": "c", "_op": "delete"},
            {"id": "d", "_op": "DELETE", "title": "ignored"},
            {"_op": "delete"},  # no id: rejected
            {"id": "a", "_op": "archive"},  # unknown operation: rejected
            good("f", ""),  # invalid: rejected, the run goes on
        ],
    )

    code, report, _ = shoprank(
        "index", "--incremental", "--changes", str(changes), "--dead-letter", str(tmp_path / "dl.jsonl")
    )

    assert code == 0, report
    assert report["mode"] == "incremental"
    assert report["version"] == full["version"]  # changed in place, no new version
    assert (report["indexed"], report["deleted"], report["rejected"]) == (2, 2, 3)
    assert {(r["line"], r["reason"].split(":")[0]) for r in dead_letters(tmp_path / "dl.jsonl")} == {
        (5, "id"),
        (6, "_op"),
        (7, "title"),
    }
    for engine in (long_lived, open_lance(settings)):
        assert engine.count() == 3
        assert {p.id: p.title for p in engine.get(["a", "b", "c", "d", "e"])} == {
            "a": "Cotton Apron",
            "b": "Walnut Cutting Board",
            "e": "Enamel Dutch Oven",
        }
    assert bm25_ids(settings, "walnut board") == ["b"]
    assert bm25_ids(settings, "dutch oven") == ["e"]
    assert bm25_ids(settings, "skillet") == []
    assert bm25_ids(settings, "rack") == []
    vector = BiEncoder(settings.models_dir()).encode_one("Cast Iron Skillet")
    knn = open_lance(settings).retrieve(RetrievalQuery("", np.asarray(vector), mode="knn", size=10))
    assert {h.product.id for h in knn.hits} == {"a", "b", "e"}


def test_bulk_and_csv_changes(shoprank: CliRun, settings: Settings, tmp_path: Path) -> None:
    assert shoprank("index", "--catalogue", str(write_jsonl(tmp_path / "base.jsonl", BASE))).code == 0
    bulk = tmp_path / "changes.ndjson"
    bulk.write_text(
        "\n".join(
            json.dumps(line)
            for line in [
                {"delete": {"_id": "a"}},
                {"index": {"_id": "g"}},
                {"title": "Glass Mixing Bowls", "brand": "Pyrex"},
                {"delete": {"_id": "nonexistent"}},
            ]
        )
        + "\n"
    )
    code, report, _ = shoprank("index", "--incremental", "--changes", str(bulk))
    assert code == 0, report
    assert (report["indexed"], report["deleted"], report["rejected"]) == (1, 2, 0)

    csv_changes = tmp_path / "changes.csv"
    csv_changes.write_text("_op,id,title,brand\ndelete,b,,\nupsert,h,Herb Keeper,Acme\n,d,Dish Rack Deluxe,Acme\n")
    code, report, _ = shoprank("index", "--incremental", "--changes", str(csv_changes))
    assert code == 0, report
    assert (report["indexed"], report["deleted"], report["rejected"]) == (2, 1, 0)

    engine = open_lance(settings)
    assert sorted(p.id for p in engine.get(["a", "b", "c", "d", "g", "h"])) == ["c", "d", "g", "h"]
    assert engine.get(["d"])[0].title == "Dish Rack Deluxe"
    assert bm25_ids(settings, "pyrex mixing bowls") == ["g"]


def test_incremental_without_a_live_index_says_what_to_do(shoprank: CliRun, settings: Settings, tmp_path: Path) -> None:
    code, _, err = shoprank("index", "--incremental", "--changes", str(write_jsonl(tmp_path / "c.jsonl", BASE)))
    assert code == 2
    assert "run a full `shoprank index --catalogue PATH`" in err
