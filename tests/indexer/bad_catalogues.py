"""Catalogues with one bad row of every kind, in each input format, and what indexing must make of them.

Each writer returns an `Expected`: the ids that must be searchable (with the stored title: the
last valid occurrence wins), the exact dead-letter lines with their reason kind, and the count
of duplicate ids.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A description of just over 1 MB; clean_text leaves it as it is (single spaces, no entities).
BIG_DESCRIPTION = ("soft cotton weave, machine washable " * 28_000).strip()
assert len(BIG_DESCRIPTION) > 1_000_000


@dataclass
class Expected:
    titles: dict[str, str] = field(default_factory=dict)  # id -> stored title
    rejected: dict[int, str] = field(default_factory=dict)  # line -> reason kind
    duplicates: int = 0


def good(pid: Any, title: Any, **extra: Any) -> dict[str, Any]:
    """A valid product row in the ESCI layout."""
    return {"id": pid, "title": title, "brand": "Acme", "category": ["Home", "Kitchen"], "price": 9.5, **extra}


def _json_rows(expected: Expected) -> list[tuple[bytes, str | None, str | None]]:
    """(line bytes, accepted id or None, reject kind or None) for the JSON formats, in order."""
    rows: list[tuple[bytes, str | None, str | None]] = []

    def ok(row: dict[str, Any]) -> None:
        rows.append((json.dumps(row).encode(), str(row["id"]), None))

    def bad(raw: bytes | dict[str, Any], kind: str) -> None:
        rows.append((json.dumps(raw).encode() if isinstance(raw, dict) else raw, None, kind))

    ok(good("g1", "Cotton Kitchen Towels"))
    bad(b'{"id": "broken", "title": "Half a line', "malformed JSON")
    bad(b"[1, 2, 3]", "malformed JSON")
    bad({"title": "No id at all"}, "id")
    bad(good("", "Empty id"), "id")
    bad(good("   ", "Blank id"), "id")
    ok(good("dup", "First version"))
    bad(good("g2", ""), "title")
    bad(good("g3", "   "), "title")
    ok(good("big", "Towel with a huge description", description=BIG_DESCRIPTION))
    bad(good("nan", "NaN price", price=math.nan), "price")
    bad(good("inf", "Infinite price", price=math.inf), "price")
    bad(good("neg", "Negative price", price=-3.0), "price")
    bad(good("t-num", 12345), "title")
    bad(good("p-str", "Price as words", price="cheap"), "price")
    bad(good("p-bool", "Price as boolean", price=True), "price")
    bad(good("c-obj", "Category object", category={"a": 1}), "category")
    bad(good("rc-frac", "Fractional count", rating_count=2.5), "rating_count")
    bad(good(["l"], "List id"), "id")
    bad(good("b-bool", "Boolean id", id=True), "id")
    bad(b'{"id": "utf", "title": "Caf\xe9 \xff towels"}', "invalid UTF-8")
    ok(good(4242, "Numeric id towel"))
    ok(good("dup", "Second version wins"))
    expected.duplicates = 1
    return rows


def write_jsonl(path: Path) -> Expected:
    """JSONL: one object per line, with a blank line that is skipped but counted."""
    expected = Expected()
    lines: list[bytes] = []
    for raw, pid, kind in _json_rows(expected):
        lines.append(raw)
        _expect(expected, len(lines), raw, pid, kind)
        if len(lines) == 3:
            lines.append(b"   ")  # blank lines are skipped; line numbers still count them
    path.write_bytes(b"\n".join(lines) + b"\n")
    return expected


def write_bulk(path: Path) -> Expected:
    """OpenSearch bulk NDJSON, with broken pairing in the middle that must not shift later rows."""
    expected = Expected()
    lines: list[bytes] = []
    for raw, pid, kind in _json_rows(expected):
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = None
        doc_id = doc.get("id") if isinstance(doc, dict) else None
        action = {"index": {"_index": "x"} | ({"_id": doc_id} if doc_id is not None else {})}
        lines.append(json.dumps(action).encode())
        lines.append(raw)
        _expect(expected, len(lines), raw, pid, kind)
    # Pairing faults: a broken action line (takes its document with it), a document with no
    # action line, an action with no document, a delete of an id indexed earlier.
    lines.append(b'{"index": {"_id": "lost"')
    lines.append(json.dumps(good("lost", "Document of a broken action")).encode())
    expected.rejected[len(lines) - 1] = "malformed JSON"
    lines.append(json.dumps(good("orphan", "Document without an action")).encode())
    expected.rejected[len(lines)] = "bulk"
    lines.append(json.dumps({"index": {"_id": "nodoc"}}).encode())
    expected.rejected[len(lines)] = "bulk"
    lines.append(json.dumps({"delete": {"_id": "g1"}}).encode())
    del expected.titles["g1"]
    lines.append(json.dumps({"index": {"_id": "after"}}).encode())
    lines.append(json.dumps(good("ignored-body-id", "Pairing resumed after the faults")).encode())
    expected.titles["after"] = "Pairing resumed after the faults"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return expected


def _expect(expected: Expected, line: int, raw: bytes, pid: str | None, kind: str | None) -> None:
    if kind is not None:
        expected.rejected[line] = kind
    elif pid is not None:
        expected.titles[pid] = json.loads(raw)["title"]


CSV_HEADER = b"id,title,description,brand,category,price,rating,rating_count,is_book\n"


def write_csv(path: Path) -> Expected:
    """CSV with quoting, multi-line cells, a stray and an unterminated quote, and bad cells."""
    expected = Expected()
    lines: list[bytes] = [CSV_HEADER]

    def add(record: bytes, title: str | None = None, pid: str | None = None, kind: str | None = None) -> None:
        line = 1 + sum(chunk.count(b"\n") for chunk in lines)  # physical line where the record starts
        lines.append(record)
        if kind is not None:
            expected.rejected[line] = kind
        elif pid is not None and title is not None:
            expected.titles[pid] = title

    add(b"g1,Cotton Kitchen Towels,,Acme,Home > Kitchen,9.5,4.5,10,false\n", "Cotton Kitchen Towels", "g1")
    add(
        b'g2,"Towels, 6 pack ""Deluxe""","Line one\nline two, with a comma\n\nline four",Acme,Home,12,,,\n',
        'Towels, 6 pack "Deluxe"',
        "g2",
    )
    add(b'g3,12" Monitor stand,,Acme,Office,30,,,\n', '12" Monitor stand', "g3")  # stray quote: literal
    add(b"too,few,cells\n", kind="csv")
    add(b'broken,"Unterminated quote title,,Acme,Home,5,,,\n', kind="csv")
    add(b"g4,Resumed after the broken quote,,Acme,Home,5,,,\n", "Resumed after the broken quote", "g4")
    add(b",No id,,Acme,Home,5,,,\n", kind="id")
    add(b"dup,First version,,Acme,Home,5,,,\n", "First version", "dup")
    add(b"empty-title,,,Acme,Home,5,,,\n", kind="title")
    add(b'big,Huge description,"' + BIG_DESCRIPTION.encode() + b'",Acme,Home,5,,,\n', "Huge description", "big")
    add(b"nan,NaN price,,Acme,Home,NaN,,,\n", kind="price")
    add(b"neg,Negative price,,Acme,Home,-1,,,\n", kind="price")
    add(b"words,Price in words,,Acme,Home,cheap,,,\n", kind="price")
    add(b"count,Count in words,,Acme,Home,5,,many,\n", kind="rating_count")
    add(b"flag,Odd flag,,Acme,Home,5,,,maybe\n", kind="is_book")
    add(b"utf,Caf\xe9 \xff towels,,Acme,Home,5,,,\n", kind="invalid UTF-8")
    add(b"00042,Numeric-looking id,,Acme,Home,5,,,\n", "Numeric-looking id", "00042")
    add(b"dup,Second version wins,,Acme,Home,5,,,\n", "Second version wins", "dup")
    expected.duplicates = 1
    path.write_bytes(b"".join(lines))
    return expected


def write_parquet(path: Path) -> Expected:
    """Parquet: nulls, NaN and negative prices, a fractional count, a title cell that is not UTF-8."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: list[tuple[Any, bytes, float | None, float | None, str | None]] = [
        ("g1", b"Cotton Kitchen Towels", 9.5, 3.0, None),
        (None, b"No id", 1.0, None, "id"),
        ("", b"Empty id", 1.0, None, "id"),
        ("dup", b"First version", 1.0, None, None),
        ("empty-title", b"", 1.0, None, "title"),
        ("nan", b"NaN price", math.nan, None, "price"),
        ("neg", b"Negative price", -2.0, None, "price"),
        ("frac", b"Fractional count", 1.0, 2.5, "rating_count"),
        ("utf", b"Caf\xe9 \xff towels", 1.0, None, "invalid UTF-8"),
        ("big", b"Huge description", 1.0, None, None),
        ("dup", b"Second version wins", 1.0, None, None),
    ]
    titles = [r[1] for r in rows]
    offsets = [0]
    for title in titles:
        offsets.append(offsets[-1] + len(title))
    # Built from raw buffers: pyarrow would refuse the non-UTF-8 cell from Python strings.
    title_array = pa.Array.from_buffers(
        pa.string(), len(titles), [None, pa.array(offsets, pa.int32()).buffers()[1], pa.py_buffer(b"".join(titles))]
    )
    table = pa.table(
        {
            "id": pa.array([r[0] for r in rows], pa.string()),
            "title": title_array,
            "description": [BIG_DESCRIPTION if r[0] == "big" else "" for r in rows],
            "category": [["Home", "Kitchen"]] * len(rows),
            "price": pa.array([r[2] for r in rows], pa.float64()),
            "rating_count": pa.array([r[3] for r in rows], pa.float64()),
        }
    )
    pq.write_table(table, path, row_group_size=4)
    expected = Expected(duplicates=1)
    for number, (pid, title, _, _, kind) in enumerate(rows, start=1):
        if kind is not None:
            expected.rejected[number] = kind
        elif pid is not None:
            expected.titles[pid] = title.decode()
    return expected


WRITERS = {"jsonl": write_jsonl, "bulk": write_bulk, "csv": write_csv, "parquet": write_parquet}
SUFFIXES = {"jsonl": ".jsonl", "bulk": ".ndjson", "csv": ".csv", "parquet": ".parquet"}
