"""Catalogue readers: OpenSearch bulk NDJSON, JSONL, CSV and Parquet, as a stream of raw rows.

A reader never raises on a bad row: undecodable bytes or malformed JSON come out as a
`RawRow` with an `error`, so the pipeline can dead-letter it and go on.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

CatalogueFormat = Literal["bulk", "jsonl", "csv", "parquet"]
FORMATS: tuple[CatalogueFormat, ...] = ("bulk", "jsonl", "csv", "parquet")
Action = Literal["index", "delete"]


@dataclass
class RawRow:
    """One catalogue record before validation."""

    line: int  # 1-based line (row number for CSV/Parquet) where the record is
    data: dict[str, Any] | None
    raw: str  # the record as read, for the dead-letter file
    error: str | None = None
    action: Action = "index"


def detect_format(path: Path) -> CatalogueFormat:
    """Format from the file name, or from the first line for .json/.ndjson files."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".parquet":
        return "parquet"
    if suffix in {".ndjson", ".jsonl", ".json"}:
        with path.open("rb") as handle:
            first = handle.readline()
        try:
            head = json.loads(first)
        except ValueError:
            return "jsonl"
        is_action = (
            isinstance(head, dict) and len(head) == 1 and next(iter(head)) in {"index", "create", "delete", "update"}
        )
        return "bulk" if is_action else "jsonl"
    raise ValueError(f"cannot tell the format of {path}; pass --format ({', '.join(FORMATS)})")


def _decode(raw: bytes, line: int) -> tuple[str | None, str | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, f"invalid UTF-8 at byte {exc.start} of line {line}"


def _json_object(text: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        return None, f"malformed JSON: {exc}"
    if not isinstance(value, dict):
        return None, f"expected a JSON object, got {type(value).__name__}"
    return value, None


def read_jsonl(path: Path) -> Iterator[RawRow]:
    """One product object per line; blank lines are skipped."""
    with path.open("rb") as handle:
        for line, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            text, error = _decode(raw, line)
            if text is None:
                yield RawRow(line, None, raw.decode("utf-8", "replace").rstrip("\n"), error)
                continue
            data, error = _json_object(text)
            yield RawRow(line, data, text.rstrip("\n"), error)


def read_bulk(path: Path) -> Iterator[RawRow]:
    """OpenSearch `_bulk` body: an action line, then the document line for index/create."""
    with path.open("rb") as handle:
        lines = enumerate(handle, start=1)
        for line, raw in lines:
            if not raw.strip():
                continue
            text, error = _decode(raw, line)
            action, error = _json_object(text) if text is not None else (None, error)
            if action is None or len(action) != 1:
                yield RawRow(
                    line,
                    None,
                    raw.decode("utf-8", "replace").rstrip("\n"),
                    error or 'expected a bulk action line like {"index": {"_id": ...}}',
                )
                continue
            verb, meta = next(iter(action.items()))
            meta = meta if isinstance(meta, dict) else {}
            if verb == "delete":
                yield RawRow(line, {"id": meta.get("_id")}, text.rstrip("\n") if text else "", action="delete")
                continue
            if verb not in {"index", "create"}:
                yield RawRow(
                    line,
                    None,
                    raw.decode("utf-8", "replace").rstrip("\n"),
                    f"unsupported bulk action '{verb}' (use index, create or delete)",
                )
                next(lines, None)  # skip its body
                continue
            body = next(lines, None)
            if body is None:
                yield RawRow(line, None, text or "", "bulk action line without a document line")
                return
            body_line, body_raw = body
            body_text, error = _decode(body_raw, body_line)
            if body_text is None:
                yield RawRow(body_line, None, body_raw.decode("utf-8", "replace").rstrip("\n"), error)
                continue
            doc, error = _json_object(body_text)
            if doc is not None and "_id" in meta and not doc.get("id"):
                doc = {**doc, "id": meta["_id"]}
            yield RawRow(body_line, doc, body_text.rstrip("\n"), error)


def read_csv(path: Path) -> Iterator[RawRow]:
    """CSV with a header row; empty cells are absent values."""
    with path.open("rb") as handle:
        header_raw = handle.readline()
        header_text, error = _decode(header_raw, 1)
        if header_text is None:
            raise ValueError(f"{path}: the CSV header is not UTF-8 ({error})")
        header = next(csv.reader([header_text]))
        for line, raw in enumerate(handle, start=2):
            if not raw.strip():
                continue
            text, error = _decode(raw, line)
            if text is None:
                yield RawRow(line, None, raw.decode("utf-8", "replace").rstrip("\r\n"), error)
                continue
            # Quoted cells may hold newlines: keep reading until the record is complete.
            while text.count('"') % 2 == 1:
                more = handle.readline()
                if not more:
                    break
                text += more.decode("utf-8", "replace")
            values = next(csv.reader(io.StringIO(text)), [])
            if len(values) != len(header):
                yield RawRow(line, None, text.rstrip("\r\n"), f"expected {len(header)} columns, got {len(values)}")
                continue
            data = {k: (v if v != "" else None) for k, v in zip(header, values, strict=True)}
            yield RawRow(line, data, text.rstrip("\r\n"))


def read_parquet(path: Path) -> Iterator[RawRow]:
    """Parquet, streamed by record batch."""
    import pyarrow.parquet as pq

    row_number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=2048):
        for data in batch.to_pylist():
            row_number += 1
            yield RawRow(row_number, data, json.dumps(data, default=str))


def read_catalogue(path: Path, fmt: CatalogueFormat | None = None) -> Iterator[RawRow]:
    """Stream raw rows from a catalogue file of any supported format."""
    if not path.is_file():
        raise FileNotFoundError(f"no catalogue file at {path}")
    fmt = fmt or detect_format(path)
    readers = {"bulk": read_bulk, "jsonl": read_jsonl, "csv": read_csv, "parquet": read_parquet}
    return readers[fmt](path)
