"""Catalogue readers: every record comes out with its line, bad records as errors, never an exception."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.readers import RawRow, detect_format, read_bulk, read_catalogue, read_csv, read_jsonl, read_parquet


def rows_of(reader: object, path: Path) -> list[RawRow]:
    return list(reader(path))  # type: ignore[operator]


def summary(rows: list[RawRow]) -> list[tuple[int, str | None, str | None]]:
    """(line, id or None, error kind or None) per row."""
    return [
        (r.line, None if r.data is None else r.data.get("id"), None if r.error is None else r.error.split(":")[0])
        for r in rows
    ]


def test_jsonl_lines_errors_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes(
        b'\xef\xbb\xbf{"id": "a"}\n\n  \n{"id": "b", "price": NaN}\n{"id": \n[1]\n'
        + b'{"id": "\xff"}\n'
        + b"[" * 100_000
        + b"\n"
    )
    rows = rows_of(read_jsonl, path)
    assert summary(rows) == [
        (1, "a", None),
        (4, "b", None),
        (5, None, "malformed JSON"),
        (6, None, "malformed JSON"),
        (7, None, "invalid UTF-8"),
        (8, None, "malformed JSON"),  # too deep to parse is a bad row, not a crash
    ]
    assert rows[1].data is not None
    assert rows[1].data["price"] != rows[1].data["price"]  # NaN reaches validation, which refuses it
    assert rows[4].raw == '{"id": "\ufffd"}'  # shown with a replacement character, never dropped


def bulk(path: Path, *lines: object) -> Path:
    path.write_bytes(b"\n".join(x if isinstance(x, bytes) else json.dumps(x).encode() for x in lines) + b"\n")
    return path


def test_bulk_pairs_stay_aligned_across_bad_lines(tmp_path: Path) -> None:
    path = bulk(
        tmp_path / "b.ndjson",
        {"index": {"_id": "a"}},
        {"title": "A"},
        {"index": {"_id": "b"}},
        b'{"title": "B", broken',  # 4: a broken document, its action already consumed
        b'{"index": {"_id": "c"',  # 5: a broken action line takes its document (6) with it
        {"title": "C"},
        {"title": "orphan"},  # 7: a document with no action line
        {"create": {"_id": "d"}},  # 8: an action whose document is missing
        {"delete": {"_id": 42}},  # 9
        {"update": {"_id": "e"}},  # 10: unsupported, its body (11) is consumed with it
        {"doc": {"title": "E"}},
        {"index": {"_id": 7}},
        {"id": "ignored", "title": "G"},  # 13: the action's _id is the id
        b'{"index": {"_id": "h"}}',
        b'{"title": "\xffH"}',  # 15: invalid UTF-8 in a document
        {"index": {}},
        {"id": "own-id", "title": "I"},  # 17: no _id: the document's own id
        {"index": {"_id": "last"}},  # 18: at the end, without a document
    )
    rows = rows_of(read_bulk, path)
    assert summary(rows) == [
        (2, "a", None),
        (4, None, "malformed JSON"),
        (5, None, "malformed JSON"),
        (7, None, "bulk"),
        (8, None, "bulk"),
        (9, 42, None),
        (10, None, "bulk"),
        (13, 7, None),
        (15, None, "invalid UTF-8"),
        (17, "own-id", None),
        (18, None, "bulk"),
    ]
    assert "its document on line 6 was skipped" in (rows[2].error or "")
    assert rows[5].action == "delete"


def csv_file(path: Path, body: bytes, header: bytes = b"id,title,description\n") -> Path:
    path.write_bytes(header + body)
    return path


def test_csv_quoting_multiline_cells_and_exact_line_numbers(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path / "c.csv",
        b'a,"Towels, 6 ""Deluxe""","one\r\ntwo\n\nfour"\n'  # lines 2-5
        b'b,12" Monitor,plain\n'  # 6: a quote inside an unquoted cell is literal
        b"\n"  # 7: blank
        b"c,Too,many,cells\n"  # 8
        b'd,"never closed,x\n'  # 9: unterminated quote: only this line is rejected
        b"e,Resumed,y\n"  # 10
        b'f,"Quoted then "junk,z\n'  # 11: a broken single-line cell is read leniently
        b"g,Caf\xe9,w\n"  # 12
        b'h,"Multi\nline",ok\n',  # 13-14
    )
    rows = rows_of(read_csv, path)
    assert summary(rows) == [
        (2, "a", None),
        (6, "b", None),
        (8, None, "csv"),
        (9, None, "csv"),
        (10, "e", None),
        (11, "f", None),
        (12, None, "invalid UTF-8"),
        (13, "h", None),
    ]
    assert rows[0].data == {"id": "a", "title": 'Towels, 6 "Deluxe"', "description": "one\r\ntwo\n\nfour"}
    assert rows[1].data is not None
    assert rows[1].data["title"] == '12" Monitor'
    assert "unterminated quote" in (rows[3].error or "")


def test_csv_empty_cells_are_absent_and_header_problems_are_refused(tmp_path: Path) -> None:
    rows = rows_of(read_csv, csv_file(tmp_path / "e.csv", b"a,,\n", header=b"\xef\xbb\xbfid, title ,price\n"))
    assert [r.data for r in rows] == [{"id": "a", "title": None, "price": None}]
    with pytest.raises(ValueError, match="repeated column names"):
        rows_of(read_csv, csv_file(tmp_path / "d.csv", b"a,b\n", header=b"id,id\n"))
    with pytest.raises(ValueError, match="header row"):
        rows_of(read_csv, csv_file(tmp_path / "n.csv", b"", header=b"\xff\n"))


def test_csv_cell_of_a_megabyte(tmp_path: Path) -> None:
    big = "word, " * 200_000
    rows = rows_of(read_csv, csv_file(tmp_path / "big.csv", f'a,T,"{big}"\nb,U,v\n'.encode()))
    assert [r.line for r in rows] == [2, 3]
    assert rows[0].data is not None
    assert rows[0].data["description"] == big


def test_parquet_rows_with_bad_bytes_fail_alone(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    titles = [b"ok one", b"bad \xff", b"ok two"]
    offsets = pa.array([0, 6, 11, 17], pa.int32()).buffers()[1]
    table = pa.table(
        {
            "id": ["a", "b", "c"],
            "title": pa.Array.from_buffers(pa.string(), 3, [None, offsets, pa.py_buffer(b"".join(titles))]),
            "brand": pa.array([b"Acme", b"\xfe", None], pa.binary()),
        }
    )
    path = tmp_path / "p.parquet"
    pq.write_table(table, path)
    rows = rows_of(read_parquet, path)
    assert summary(rows) == [(1, "a", None), (2, None, "invalid UTF-8"), (3, "c", None)]
    assert rows[0].data == {"id": "a", "title": "ok one", "brand": "Acme"}
    table = table.set_column(1, "title", pa.array(["x", "y", "z"]))
    pq.write_table(table, path)
    assert summary(rows_of(read_parquet, path))[1] == (2, None, "invalid UTF-8")  # the binary brand cell


def test_format_detection(tmp_path: Path) -> None:
    assert detect_format(bulk(tmp_path / "b.json", {"index": {"_id": "a"}}, {"title": "x"})) == "bulk"
    assert detect_format(bulk(tmp_path / "j.ndjson", {"id": "a", "title": "x"})) == "jsonl"
    assert detect_format(tmp_path / "x.CSV") == "csv"
    with pytest.raises(ValueError, match="--format"):
        detect_format(tmp_path / "x.xml")
    with pytest.raises(FileNotFoundError):
        read_catalogue(tmp_path / "missing.jsonl")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=12))
def test_readers_never_raise_on_garbage(tmp_path_factory: pytest.TempPathFactory, lines: list[bytes]) -> None:
    directory = tmp_path_factory.mktemp("fuzz")
    body = b"\n".join(lines) + b"\n"
    (directory / "g.jsonl").write_bytes(body)
    (directory / "g.csv").write_bytes(b"id,title\n" + body)
    physical = body.count(b"\n")
    for reader, name in ((read_jsonl, "g.jsonl"), (read_bulk, "g.jsonl"), (read_csv, "g.csv")):
        rows = rows_of(reader, directory / name)
        assert len(rows) <= physical
        assert all(r.error is not None or r.data is not None for r in rows)
        numbers = [r.line for r in rows]
        assert numbers == sorted(numbers)
