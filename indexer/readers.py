"""Catalogue readers: OpenSearch bulk NDJSON, JSONL, CSV and Parquet, as a stream of raw rows.

A reader never raises on a bad row: undecodable bytes, malformed JSON, a CSV record with the
wrong number of cells, a Parquet cell that is not UTF-8 all come out as a `RawRow` with an
`error`, so the pipeline can dead-letter it and go on. Only a file that cannot be read at
all (missing, a CSV without a usable header, not Parquet) raises. `RawRow.line` is the
1-based physical line where the record starts (text formats) or the row number (Parquet).
"""

from __future__ import annotations

import csv
import io
import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from shoprank.errors import MissingFileError, UserInputError

CatalogueFormat = Literal["bulk", "jsonl", "csv", "parquet"]
FORMATS: tuple[CatalogueFormat, ...] = ("bulk", "jsonl", "csv", "parquet")
Action = Literal["index", "delete"]
BULK_VERBS = frozenset({"index", "create", "delete", "update"})
# A CSV record (all its lines) longer than this is an unterminated quote, not a product.
MAX_CSV_RECORD_CHARS = 16 << 20
PARQUET_BATCH_ROWS = 2048


@dataclass
class RawRow:
    """One catalogue record before validation."""

    line: int
    data: dict[str, Any] | None
    raw: str  # the record as read, for the dead-letter file ("" = serialise `data` when needed)
    error: str | None = None
    action: Action = "index"

    def raw_text(self) -> str:
        """The record as text for the dead-letter file."""
        if self.raw or self.data is None:
            return self.raw
        return json.dumps(self.data, ensure_ascii=False, default=str)


def detect_format(path: Path) -> CatalogueFormat:
    """Format from the file name, or from the first line for .json/.ndjson/.jsonl files."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".parquet":
        return "parquet"
    if suffix in {".ndjson", ".jsonl", ".json"}:
        for line in _physical_lines(path):
            return "bulk" if _as_action(_json_object(line.text)[0]) is not None else "jsonl"
        return "jsonl"
    raise UserInputError(f"cannot tell the format of {path}; pass --format ({', '.join(FORMATS)})")


@dataclass
class _Line:
    number: int
    text: str  # undecodable bytes shown as U+FFFD
    error: str | None  # why the line is not UTF-8


def _decode(raw: bytes, number: int) -> tuple[str | None, str | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, f"invalid UTF-8: byte {exc.start + 1} of line {number} is not UTF-8"


def _physical_lines(path: Path) -> Iterator[_Line]:
    """Non-blank lines with their 1-based numbers; a UTF-8 byte-order mark on line 1 is dropped."""
    for number, raw in _raw_lines(path):
        text, error = _decode(raw, number)
        if text is not None and not text.strip():
            continue
        shown = text if text is not None else raw.decode("utf-8", "replace")
        yield _Line(number, shown.rstrip("\r\n"), error)


def _raw_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            yield number, raw.removeprefix(b"\xef\xbb\xbf") if number == 1 else raw


def _json_object(text: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return None, f"malformed JSON: {exc}"
    if not isinstance(value, dict):
        return None, f"malformed JSON: expected an object, got {type(value).__name__}"
    return value, None


def _as_action(value: dict[str, Any] | None) -> tuple[str, dict[str, Any]] | None:
    """(verb, metadata) when `value` is a bulk action line like {"index": {"_id": "x"}}."""
    if value is None or len(value) != 1:
        return None
    verb, meta = next(iter(value.items()))
    if verb not in BULK_VERBS or not isinstance(meta, dict):
        return None
    return verb, meta


def read_jsonl(path: Path) -> Iterator[RawRow]:
    """One product object per line; blank lines are skipped."""
    for line in _physical_lines(path):
        if line.error is not None:
            yield RawRow(line.number, None, line.text, line.error)
            continue
        data, error = _json_object(line.text)
        yield RawRow(line.number, data, line.text, error)


@dataclass
class _BulkLine:
    line: _Line
    value: dict[str, Any] | None
    error: str | None

    @property
    def action(self) -> tuple[str, dict[str, Any]] | None:
        return _as_action(self.value)


def _bulk_lines(path: Path) -> Iterator[_BulkLine]:
    for line in _physical_lines(path):
        if line.error is not None:
            yield _BulkLine(line, None, line.error)
        else:
            yield _BulkLine(line, *_json_object(line.text))


def read_bulk(path: Path) -> Iterator[RawRow]:
    """OpenSearch `_bulk` body: an action line, then the document line for index/create.

    The reader keeps actions and documents paired across bad lines: a document line with no
    action before it is one rejected row; an action line with no document after it is one
    rejected row; a broken action line takes the document line after it with it (one row).
    The action's `_id` is the product id, as in OpenSearch.
    """
    lines = _bulk_lines(path)
    pushed_back: deque[_BulkLine] = deque()

    def following() -> _BulkLine | None:
        return pushed_back.popleft() if pushed_back else next(lines, None)

    while (head := following()) is not None:
        number, text = head.line.number, head.line.text
        action = head.action
        if action is None:
            if head.value is not None:
                yield RawRow(number, None, text, "bulk: a document line without an action line before it")
                continue
            # A broken action line: the document line after it belongs to it, unless it is an action.
            body = following()
            if body is not None and body.action is not None:
                pushed_back.append(body)
                body = None
            reason = f"{head.error} (a bulk action line"
            reason += f"; its document on line {body.line.number} was skipped)" if body is not None else ")"
            yield RawRow(number, None, text, reason)
            continue
        verb, meta = action
        if verb == "delete":
            yield RawRow(number, {"id": meta.get("_id")}, text, action="delete")
            continue
        body = following()
        if body is None or body.action is not None:
            if body is not None:
                pushed_back.append(body)
            yield RawRow(number, None, text, f"bulk: an '{verb}' action line without a document line after it")
            continue
        body_text = body.line.text
        if verb == "update":
            yield RawRow(number, None, text, "bulk: unsupported action 'update' (use index, create or delete)")
            continue
        if body.value is None:
            yield RawRow(body.line.number, None, body_text, body.error)
            continue
        doc = body.value
        if meta.get("_id") is not None:
            doc = {**doc, "id": meta["_id"]}
        yield RawRow(body.line.number, doc, body_text)


def _ends_in_quotes(text: str, in_quotes: bool) -> bool:
    """Whether a CSV record is still inside a quoted cell after the line `text` (csv module rules).

    A quote opens a quoted cell only at the start of a cell; inside one, a doubled quote is a
    literal quote and a single quote closes it. Jumps from quote to quote, so it is cheap.
    """
    i, field_start = 0, not in_quotes  # a line outside quotes starts a record
    while (j := text.find('"', i)) >= 0:
        if in_quotes:
            if text.startswith('"', j + 1):
                i = j + 2
                continue
            in_quotes = False
        elif (j == i and field_start) or (j > i and text[j - 1] == ","):
            in_quotes = True
        field_start, i = False, j + 1
    return in_quotes


def _csv_lines(path: Path) -> Iterator[_Line]:
    for number, raw in _raw_lines(path):
        text, error = _decode(raw, number)
        yield _Line(number, text if text is not None else raw.decode("utf-8", "replace"), error)


def _parse_csv_record(text: str, strict: bool) -> tuple[list[str], str | None]:
    try:
        return next(csv.reader(io.StringIO(text, newline=""), strict=strict), []), None
    except csv.Error as exc:
        return [], f"csv: unreadable record: {exc}"


def read_csv(path: Path) -> Iterator[RawRow]:
    """CSV with a header row; empty cells are absent values; quoted cells may span lines.

    A record that spans lines must be well formed (strict quoting) and have the header's cell
    count; otherwise it is taken to be an unterminated quote: only its first line is rejected
    and reading resumes on the next line, so one stray quote never swallows the catalogue.
    """
    csv.field_size_limit(max(csv.field_size_limit(), MAX_CSV_RECORD_CHARS))
    lines = _csv_lines(path)
    first = next(lines, None)
    if first is None or first.error is not None or not first.text.strip():
        raise UserInputError(f"{path}: the CSV needs a UTF-8 header row naming the columns (id, title, ...)")
    header = [name.strip() for name in next(csv.reader([first.text]))]
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated or "" in header:
        raise UserInputError(f"{path}: the CSV header has empty or repeated column names {duplicated}; fix the header")
    pending: deque[_Line] = deque()
    while (record := _next_csv_record(pending, lines)) is not None:
        head = record[0]
        text = "".join(line.text for line in record)
        bad = next((line.error for line in record if line.error is not None), None)
        if bad is not None:
            yield RawRow(head.number, None, text.rstrip("\r\n"), bad)
            continue
        if not text.strip():
            continue
        values, error = _parse_csv_record(text, strict=len(record) > 1)
        if error is None and len(values) != len(header):
            error = f"csv: expected {len(header)} cells, got {len(values)}"
        if error is not None and len(record) > 1:
            # Probably an unterminated quote: reject the first line alone, re-read the others.
            pending.extendleft(reversed(record[1:]))
            error = f"{error} (an unterminated quote? only line {head.number} was skipped)"
            text = head.text
        if error is not None:
            yield RawRow(head.number, None, text.rstrip("\r\n"), error)
            continue
        data = {k: (v if v != "" else None) for k, v in zip(header, values, strict=True)}
        yield RawRow(head.number, data, text.rstrip("\r\n"))


def _next_csv_record(pending: deque[_Line], lines: Iterator[_Line]) -> list[_Line] | None:
    """The physical lines of the next record (a quoted cell may hold newlines)."""
    record: list[_Line] = []
    in_quotes, size = False, 0
    while (line := pending.popleft() if pending else next(lines, None)) is not None:
        record.append(line)
        size += len(line.text)
        in_quotes = _ends_in_quotes(line.text, in_quotes)
        if not in_quotes or size > MAX_CSV_RECORD_CHARS:
            break
    return record or None


def _decoded(value: Any) -> Any:
    """Parquet binary cells as text; raises UnicodeDecodeError when they are not UTF-8."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, list):
        return [_decoded(v) for v in value]
    return value


def read_parquet(path: Path) -> Iterator[RawRow]:
    """Parquet, streamed by record batch; a row with a cell that is not UTF-8 is a bad row."""
    import pyarrow.parquet as pq

    row_number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=PARQUET_BATCH_ROWS):
        try:
            rows: list[dict[str, Any] | None] = batch.to_pylist()
        except UnicodeDecodeError:
            rows = [None] * batch.num_rows  # convert row by row below, to find the bad ones
        for index, data in enumerate(rows):
            row_number += 1
            if data is None:
                data, error = _parquet_row(batch, index)
                if data is None:
                    yield RawRow(row_number, None, f"(row {row_number} of {path.name})", error)
                    continue
            try:
                decoded = {k: _decoded(v) for k, v in data.items()}
            except UnicodeDecodeError as exc:
                yield RawRow(
                    row_number, None, json.dumps(data, default=repr), f"invalid UTF-8: a cell is not UTF-8 ({exc})"
                )
                continue
            yield RawRow(row_number, decoded, "")


def _parquet_row(batch: Any, index: int) -> tuple[dict[str, Any] | None, str | None]:
    row: dict[str, Any] = {}
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        try:
            row[name] = column[index].as_py()
        except UnicodeDecodeError as exc:
            return None, f"invalid UTF-8: column '{name}' is not UTF-8 ({exc})"
    return row, None


def read_catalogue(path: Path, fmt: CatalogueFormat | None = None) -> Iterator[RawRow]:
    """Stream raw rows from a catalogue file of any supported format."""
    if not path.is_file():
        raise MissingFileError(f"no catalogue file at {path}")
    fmt = fmt or detect_format(path)
    readers = {"bulk": read_bulk, "jsonl": read_jsonl, "csv": read_csv, "parquet": read_parquet}
    return readers[fmt](path)
