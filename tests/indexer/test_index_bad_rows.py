"""`shoprank index --json` on catalogues with a bad row of every kind, in every input format:
exact counts, each bad row in the dead-letter file with its line and reason, the rest searchable."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from engines.base import RetrievalQuery
from indexer.dead_letter import DeadLetter
from indexer.pipeline import Indexer
from indexer.validate import FieldMapping
from shoprank.bi_encoder import BiEncoder
from shoprank.limits import MAX_FIELD_BYTES
from shoprank.settings import Settings
from shoprank.template import MAX_TITLE_CHARS
from tests.indexer.bad_catalogues import BIG_DESCRIPTION, SUFFIXES, WRITERS, good
from tests.indexer.conftest import CliRun, dead_letters, open_lance, write_jsonl


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_every_bad_row_is_dead_lettered_and_the_rest_indexed(
    fmt: str, shoprank: CliRun, settings: Settings, tmp_path: Path
) -> None:
    catalogue = tmp_path / f"catalogue{SUFFIXES[fmt]}"
    expected = WRITERS[fmt](catalogue)
    dead_letter = tmp_path / "rejected.jsonl"

    code, report, _ = shoprank("index", "--catalogue", str(catalogue), "--dead-letter", str(dead_letter))

    assert code == 0, report
    assert report["indexed"] == len(expected.titles)
    assert report["rejected"] == len(expected.rejected)
    assert report["duplicates"] == expected.duplicates
    assert report["reject_reasons"] == dict(Counter(expected.rejected.values()))
    records = dead_letters(dead_letter)
    assert {r["line"]: r["reason"].split(":", 1)[0] for r in records} == expected.rejected
    assert all(r["source"] == str(catalogue) and r["reason"] and r["row"] for r in records)

    engine = open_lance(settings)
    assert engine.count() == len(expected.titles)
    stored = {p.id: p for p in engine.get(sorted(expected.titles))}
    assert {pid: p.title for pid, p in stored.items()} == expected.titles  # the last occurrence won
    # Cut to the reranker's field limit (noted in the report), so the sidecar takes it in every window.
    assert BIG_DESCRIPTION.startswith(stored["big"].description)
    assert len(stored["big"].description) == MAX_FIELD_BYTES  # ASCII: one byte a character
    assert (report["truncated"], report["truncated_fields"]) == (1, {"description": 1})
    found = engine.retrieve(RetrievalQuery(text="version wins", vector=None, mode="bm25", size=5))
    assert [h.product.id for h in found.hits][:1] == ["dup"]


def test_field_mapping_reads_renamed_and_nested_columns(shoprank: CliRun, settings: Settings, tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [
        {"sku": "m1", "name": "Linen Napkins", "details": {"maker": "Hearth", "cost": 14.0}},
        {"sku": 77, "name": "Salad Bowl", "details": {"maker": "Oak&amp;Co", "cost": "8.25"}},
        {"sku": "m3", "name": "", "details": {"maker": "Hearth", "cost": 1.0}},
        {"sku": "m4", "name": "Priceless", "details": {"maker": "Hearth", "cost": -1}},
    ]
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"id": "sku", "title": "name", "brand": "details.maker", "price": "details.cost"}))
    dead_letter = tmp_path / "rejected.jsonl"

    code, report, _ = shoprank(
        "index",
        "--catalogue",
        str(write_jsonl(tmp_path / "shop.jsonl", rows)),
        "--mapping",
        str(mapping),
        "--dead-letter",
        str(dead_letter),
    )

    assert code == 0, report
    assert (report["indexed"], report["rejected"]) == (2, 2)
    assert {(r["line"], r["id"], r["reason"].split(":")[0]) for r in dead_letters(dead_letter)} == {
        (3, "m3", "title"),
        (4, "m4", "price"),
    }
    products = {p.id: p for p in open_lance(settings).get(["m1", "77"])}
    assert (products["m1"].brand, products["m1"].price) == ("Hearth", 14.0)
    assert (products["77"].title, products["77"].brand, products["77"].price) == ("Salad Bowl", "Oak&Co", 8.25)


def test_mapping_naming_an_unknown_field_is_refused_before_indexing(
    shoprank: CliRun, settings: Settings, tmp_path: Path
) -> None:
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"titel": "name"}))
    code, _, err = shoprank(
        "index", "--catalogue", str(write_jsonl(tmp_path / "c.jsonl", [good("a", "A")])), "--mapping", str(mapping)
    )
    assert code == 2
    assert "unknown product fields ['titel']" in err
    assert not (settings.data_dir / "lancedb").exists()  # refused before the engine was touched
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(ValueError, match="must be a JSON object"):
        FieldMapping.load(tmp_path / "list.json")


def test_all_rejected_catalogue_never_replaces_the_live_index(
    shoprank: CliRun, settings: Settings, tmp_path: Path
) -> None:
    code, first, _ = shoprank("index", "--catalogue", str(write_jsonl(tmp_path / "ok.jsonl", [good("a", "Apron")])))
    assert code == 0
    junk = tmp_path / "junk.jsonl"
    junk.write_bytes(b'{"title": "no id"}\nnot json\n{"id": "x", "title": ""}\n')

    code, report, err = shoprank("index", "--catalogue", str(junk), "--dead-letter", str(tmp_path / "dl.jsonl"))

    assert code == 1
    assert "live index is unchanged" in err
    assert (report["indexed"], report["rejected"]) == (0, 3)
    assert report["aborted"]
    assert report["version"] == first["version"]
    engine = open_lance(settings)
    assert engine.live_version() == first["version"]
    assert [p.id for p in engine.get(["a"])] == ["a"]
    assert engine.versions() == [first["version"]]  # the refused version left nothing behind
    assert len(dead_letters(tmp_path / "dl.jsonl")) == 3


class RecordingEncoder:
    """A bi-encoder that remembers every text it was asked to embed."""

    def __init__(self, models_dir: Path) -> None:
        self.inner = BiEncoder(models_dir)
        self.dim = self.inner.dim
        self.texts: list[str] = []

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.texts.extend(texts)
        return self.inner.encode(texts)


def test_huge_fields_are_stored_cut_to_the_field_limit_and_embedded_cut(settings: Settings, tmp_path: Path) -> None:
    long_title = "Oversized beach towel " * 5000
    catalogue = write_jsonl(
        tmp_path / "huge.jsonl",
        [good("big", "Towel with a huge description", description=BIG_DESCRIPTION), good("long", long_title)],
    )
    encoder = RecordingEncoder(settings.models_dir())
    report = Indexer(open_lance(settings), encoder, DeadLetter(None)).full(catalogue)

    assert (report.indexed, report.rejected, report.truncated) == (2, 0, 2)
    assert report.truncated_fields == {"description": 1, "title": 1}
    embedded = [t for t in encoder.texts if t != "dimension check"]
    assert len(embedded) == 2
    assert all(len(text) <= MAX_TITLE_CHARS + 200 for text in embedded)  # title capped, plus brand and category
    stored = {p.id: p for p in open_lance(settings).get(["big", "long"])}
    assert stored["big"].description == BIG_DESCRIPTION[:MAX_FIELD_BYTES]
    assert stored["long"].title == long_title.strip()[:MAX_FIELD_BYTES]
