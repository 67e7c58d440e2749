"""The indexing run: stream rows → validate → embed in batches → write → swap.

Memory stays flat in catalogue size: rows are read, embedded and written one batch at a
time. Nothing becomes visible to search until the whole new version is written (full
mode); a run that fails or is killed leaves the live version untouched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from engines.base import EngineError, IndexWriter, WriteFailure
from indexer.dead_letter import DeadLetter
from indexer.readers import CatalogueFormat, RawRow, read_catalogue
from indexer.validate import FieldMapping, Rejection, validate_row
from shoprank.schema import Product
from shoprank.template import bi_encoder_text

log = logging.getLogger(__name__)

DELETE_MARKERS = ("_op", "op")


class Encoder(Protocol):
    """What the pipeline needs of a bi-encoder."""

    dim: int

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


class RejectThresholdError(EngineError):
    """Too many rows were refused by the engine; the new version was not made live."""


@dataclass
class IndexReport:
    """What an indexing run did; `shoprank index --json` prints it."""

    mode: Literal["full", "incremental"]
    engine: str
    source: str
    version: str | None = None
    indexed: int = 0
    rejected: int = 0
    duplicates: int = 0
    deleted: int = 0
    seconds: float = 0.0
    docs_per_s: float = 0.0
    dead_letter: str | None = None
    reject_reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class _Pending:
    """Validated rows of one batch, last occurrence of an id wins."""

    products: dict[str, Product] = field(default_factory=dict)
    origin: dict[str, RawRow] = field(default_factory=dict)
    deletes: dict[str, RawRow] = field(default_factory=dict)


def _is_delete(row: RawRow) -> bool:
    if row.action == "delete":
        return True
    data = row.data or {}
    return any(str(data.get(marker, "")).lower() == "delete" for marker in DELETE_MARKERS)


def _count_records(path: Path, fmt: CatalogueFormat | None) -> int | None:
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    lines = 0
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            lines += chunk.count(b"\n")
    if fmt == "bulk" or (fmt is None and path.suffix.lower() == ".ndjson"):
        return lines // 2
    return lines


class Indexer:
    """Runs full and incremental indexing of one catalogue into one engine."""

    def __init__(
        self,
        engine: IndexWriter,
        encoder: Encoder,
        dead_letter: DeadLetter,
        mapping: FieldMapping | None = None,
        batch_size: int = 256,
        max_reject_ratio: float = 0.05,
        progress: bool = False,
    ) -> None:
        self.engine = engine
        self.encoder = encoder
        self.dead_letter = dead_letter
        self.mapping = mapping or FieldMapping()
        self.batch_size = batch_size
        self.max_reject_ratio = max_reject_ratio
        self.progress = progress

    def _reject(self, report: IndexReport, rejection: Rejection, source: str) -> None:
        report.rejected += 1
        kind = rejection.reason.split(":", 1)[0]
        report.reject_reasons[kind] = report.reject_reasons.get(kind, 0) + 1
        self.dead_letter.write(rejection, source)

    def _batches(self, rows: Iterable[RawRow], report: IndexReport, source: str) -> Iterator[_Pending]:
        pending = _Pending()
        seen: set[str] = set()
        for row in rows:
            if _is_delete(row):
                doc_id = (row.data or {}).get("id")
                if isinstance(doc_id, str) and doc_id:
                    pending.deletes[doc_id] = row
                    pending.products.pop(doc_id, None)
                else:
                    self._reject(report, Rejection(row.line, "delete without an id", row.raw), source)
                continue
            result = validate_row(row, self.mapping)
            if isinstance(result, Rejection):
                self._reject(report, result, source)
                continue
            if result.id in seen:
                report.duplicates += 1
            seen.add(result.id)
            pending.products.pop(result.id, None)  # re-insert so the last occurrence keeps its place
            pending.products[result.id] = result
            pending.origin[result.id] = row
            pending.deletes.pop(result.id, None)
            if len(pending.products) >= self.batch_size:
                yield pending
                pending = _Pending()
        if pending.products or pending.deletes:
            yield pending

    def _embed(self, products: Sequence[Product]) -> npt.NDArray[np.float32]:
        vectors = self.encoder.encode([bi_encoder_text(p) for p in products])
        if vectors.shape[1:] != (self.encoder.dim,):
            raise EngineError(f"encoder returned vectors of shape {vectors.shape}, expected (n, {self.encoder.dim})")
        return vectors

    def _write(self, report: IndexReport, stored: set[str], batch: _Pending, source: str, write: Any) -> None:
        """Embed and write a batch; ids the engine refused are dead-lettered and not counted as stored."""
        products = list(batch.products.values())
        if not products:
            return
        failures: list[WriteFailure] = write(products, self._embed(products))
        stored.update(p.id for p in products)
        for failure in failures:
            stored.discard(failure.id)
            row = batch.origin.get(failure.id)
            self._reject(
                report,
                Rejection(row.line if row else 0, f"engine: {failure.reason}", row.raw if row else "", failure.id),
                source,
            )

    def _progress(self, source: Path, fmt: CatalogueFormat | None) -> tqdm[Any]:
        total = _count_records(source, fmt) if self.progress else None
        return tqdm(total=total, unit="doc", disable=not self.progress, dynamic_ncols=True, smoothing=0.1)

    def full(self, source: Path, fmt: CatalogueFormat | None = None) -> IndexReport:
        """Rebuild the whole index from `source` as a new version and make it live."""
        report = IndexReport(
            mode="full",
            engine=self.engine.name,
            source=str(source),
            dead_letter=str(self.dead_letter.path) if self.dead_letter.path else None,
        )
        started = time.perf_counter()
        rows = read_catalogue(source, fmt)
        builder = self.engine.begin_version(self.encoder.dim)
        stored: set[str] = set()
        try:
            with self._progress(source, fmt) as bar:
                for batch in self._batches(rows, report, str(source)):
                    # A full rebuild simply leaves deleted ids out (and drops one written earlier in the run).
                    dropped = [i for i in batch.deletes if i in stored]
                    if dropped:
                        builder.write_deletes(dropped)
                        stored.difference_update(dropped)
                    report.deleted += len(batch.deletes)
                    self._write(report, stored, batch, str(source), builder.write)
                    bar.update(len(batch.products) + len(batch.deletes))
            report.indexed = len(stored)
            self._check_rejects(report)
            if report.indexed <= 0:
                raise EngineError(
                    f"no valid products in {source}; the live index is unchanged "
                    f"(see the dead-letter file for why rows were rejected)"
                )
            report.version = builder.commit()
        except BaseException:
            builder.abort()
            raise
        return self._finish(report, started)

    def incremental(self, source: Path, fmt: CatalogueFormat | None = None) -> IndexReport:
        """Apply a changes file (upserts and deletes by id) to the live version."""
        report = IndexReport(
            mode="incremental",
            engine=self.engine.name,
            source=str(source),
            dead_letter=str(self.dead_letter.path) if self.dead_letter.path else None,
        )
        started = time.perf_counter()
        report.version = self.engine.live_version()
        stored: set[str] = set()
        with self._progress(source, fmt) as bar:
            for batch in self._batches(read_catalogue(source, fmt), report, str(source)):
                self._write(report, stored, batch, str(source), self.engine.upsert)
                if batch.deletes:
                    report.deleted += self.engine.delete(list(batch.deletes))
                    stored.difference_update(batch.deletes)
                bar.update(len(batch.products) + len(batch.deletes))
        report.indexed = len(stored)
        return self._finish(report, started)

    def _check_rejects(self, report: IndexReport) -> None:
        engine_rejects = report.reject_reasons.get("engine", 0)
        attempted = report.indexed + engine_rejects
        if attempted and engine_rejects / attempted > self.max_reject_ratio:
            raise RejectThresholdError(
                f"the engine refused {engine_rejects} of {attempted} products (> {self.max_reject_ratio:.0%}); "
                "the new version was not made live. See the dead-letter file for the reasons."
            )

    def _finish(self, report: IndexReport, started: float) -> IndexReport:
        report.seconds = round(time.perf_counter() - started, 3)
        report.docs_per_s = round(report.indexed / report.seconds, 1) if report.seconds > 0 else 0.0
        log.info(
            "indexed %d, rejected %d, duplicates %d, deleted %d in %.1fs",
            report.indexed,
            report.rejected,
            report.duplicates,
            report.deleted,
            report.seconds,
        )
        return report
