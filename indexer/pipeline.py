"""The indexing run: stream rows → validate → embed in batches → write → swap.

Three stages overlap: a read-ahead thread parses and validates the next batch, the calling
thread embeds (onnxruntime runs without the GIL), a write-behind thread writes the previous
batch. Memory stays flat in catalogue size: a few batches are in flight, plus the set of ids
seen (for duplicates). Nothing becomes visible to search until the whole new version is
written (full mode); a run that fails, is refused or is killed leaves the live version as it was.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from engines.base import EngineError, IndexWriter, NoLiveIndexError, WriteFailure
from indexer.dead_letter import DeadLetter
from indexer.readers import CatalogueFormat, RawRow, read_catalogue
from indexer.stages import WriteBehind, read_ahead
from indexer.validate import Deletion, FieldMapping, Rejection, validate_row
from intent.model import CategorySums
from intent.store import model_path, prune_models, save_sums
from shoprank.schema import VECTOR_DIM, Product, fit_to_limits
from shoprank.template import bi_encoder_text

log = logging.getLogger(__name__)

# Ids of products cut to the limits that a report lists (the count covers them all).
TRUNCATED_IDS_KEPT = 20


class Encoder(Protocol):
    """What the pipeline needs of a bi-encoder."""

    dim: int

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


class DimensionMismatchError(EngineError):
    """The bi-encoder's vectors do not fit the index; refused before anything is written."""


class BiEncoderMismatchError(EngineError):
    """An incremental run's bi-encoder is not the one the live version was built with."""


class IndexAbortedError(EngineError):
    """The run was refused before the swap; the live version is unchanged. Carries the report."""

    def __init__(self, message: str, report: IndexReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class IndexReport:
    """What an indexing run did; `shoprank index --json` prints it."""

    mode: Literal["full", "incremental"]
    engine: str
    source: str
    version: str | None = None  # the live version after the run
    indexed: int = 0
    rejected: int = 0
    duplicates: int = 0
    deleted: int = 0
    seconds: float = 0.0
    docs_per_s: float = 0.0
    dead_letter: str | None = None
    reject_reasons: dict[str, int] = field(default_factory=dict)
    # Products stored with text fields or category cut to the reranker's limits (shoprank.limits),
    # by field, and the first ids so cut: they are indexed, not rejected.
    truncated: int = 0
    truncated_fields: dict[str, int] = field(default_factory=dict)
    truncated_ids: list[str] = field(default_factory=list)
    aborted: str | None = None  # why the new version was not made live
    intent_model: str | None = None  # the intent model a full run built for its version (intent/store.py)
    # Where the calling thread's time went: embedding, waiting on the read-ahead (parse and
    # validate) and on the write-behind (engine writes), and finishing the version.
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class _Batch:
    """Validated rows of one batch (the last occurrence of an id wins) and their embedding texts."""

    products: dict[str, Product] = field(default_factory=dict)
    origin: dict[str, RawRow] = field(default_factory=dict)
    deletes: dict[str, int] = field(default_factory=dict)  # id -> line
    texts: list[str] = field(default_factory=list)
    rows: int = 0

    def product_list(self) -> list[Product]:
        return list(self.products.values())


class _StageClock:
    """Adds the time since the previous lap to a named stage."""

    def __init__(self, totals: dict[str, float]) -> None:
        self.totals = totals
        self.last = time.perf_counter()

    def lap(self, stage: str | None = None) -> None:
        now = time.perf_counter()
        if stage is not None:
            self.totals[stage] = round(self.totals.get(stage, 0.0) + now - self.last, 3)
        self.last = now


def _count_records(path: Path, fmt: CatalogueFormat | None) -> int | None:
    """Records in the file, for the progress bar (lines; halved for bulk bodies)."""
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


def progress_wanted(json_output: bool) -> bool:
    """A progress bar only for a person at a terminal: not with --json, not in CI, not piped."""
    import sys

    return not json_output and not os.environ.get("CI") and sys.stderr.isatty()


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
        intent_dir: Path | None = None,
    ) -> None:
        """intent_dir: where a full run writes the intent model of the version it makes live, pruning
        those of versions the engine no longer keeps (None: no intent model)."""
        self.engine = engine
        self.intent_dir = intent_dir
        self.encoder = encoder
        # Recorded with each version (engines.base.IndexWriter.bi_encoder_version); test and benchmark
        # encoders carry no version.
        version = getattr(encoder, "version", None)
        self.encoder_version = version if isinstance(version, str) else None
        self.dead_letter = dead_letter
        self.mapping = mapping or FieldMapping()
        self.batch_size = batch_size
        self.max_reject_ratio = max_reject_ratio
        self.progress = progress
        self._lock = threading.Lock()  # the read-ahead and write-behind threads both reject rows

    # ---- checks ---------------------------------------------------------------------------

    def check_encoder(self) -> None:
        """Refuse a bi-encoder whose vectors do not fit the index, before anything is read or written."""
        if self.encoder.dim != VECTOR_DIM:
            raise DimensionMismatchError(
                f"the bi-encoder makes {self.encoder.dim}-d vectors but the index holds {VECTOR_DIM}-d ones; "
                "nothing was written. Build the right model with `shoprank models build`"
            )
        probe = self.encoder.encode(["dimension check"])
        if probe.shape != (1, VECTOR_DIM):
            raise DimensionMismatchError(
                f"the bi-encoder returned vectors of shape {probe.shape[1:]} although its model.json says "
                f"{self.encoder.dim}; nothing was written. Rebuild it with `shoprank models build`"
            )

    # ---- rows → batches (read-ahead thread) -----------------------------------------------

    def _reject(self, report: IndexReport, rejection: Rejection) -> None:
        with self._lock:
            report.rejected += 1
            report.reject_reasons[rejection.kind] = report.reject_reasons.get(rejection.kind, 0) + 1
            self.dead_letter.write(rejection, report.source)

    def _fit(self, report: IndexReport, product: Product) -> Product:
        """The product cut to the reranker's limits, counted in the report when anything was cut."""
        fitted, notes = fit_to_limits(product)
        if notes:
            with self._lock:
                report.truncated += 1
                for note in notes:
                    name = note.split(":", 1)[0]
                    report.truncated_fields[name] = report.truncated_fields.get(name, 0) + 1
                if len(report.truncated_ids) < TRUNCATED_IDS_KEPT:
                    report.truncated_ids.append(product.id)
            log.debug("product %r stored cut to the reranker's limits: %s", product.id, "; ".join(notes))
        return fitted

    def _batches(self, rows: Iterable[RawRow], report: IndexReport) -> Iterator[_Batch]:
        batch = _Batch()
        live: set[str] = set()  # ids with a valid row so far (and not deleted since): duplicates
        for row in rows:
            batch.rows += 1
            result = validate_row(row, self.mapping)
            if isinstance(result, Rejection):
                self._reject(report, result)
                continue
            if isinstance(result, Product):
                result = self._fit(report, result)
            if isinstance(result, Deletion):
                batch.deletes[result.id] = result.line
                batch.products.pop(result.id, None)
                batch.origin.pop(result.id, None)
                live.discard(result.id)
                continue
            if result.id in live:
                report.duplicates += 1
            live.add(result.id)
            batch.products.pop(result.id, None)  # re-insert: the last occurrence keeps its place
            batch.products[result.id] = result
            batch.origin[result.id] = row
            batch.deletes.pop(result.id, None)
            if len(batch.products) >= self.batch_size:
                yield self._with_texts(batch)
                batch = _Batch()
        if batch.rows:
            yield self._with_texts(batch)

    @staticmethod
    def _with_texts(batch: _Batch) -> _Batch:
        batch.texts = [bi_encoder_text(p) for p in batch.products.values()]
        return batch

    # ---- embedding (calling thread) and writing (write-behind thread) ---------------------

    def _embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, VECTOR_DIM), dtype=np.float32)
        vectors = self.encoder.encode(texts)
        if vectors.shape != (len(texts), VECTOR_DIM):
            raise DimensionMismatchError(
                f"encoder returned vectors of shape {vectors.shape}, expected (n, {VECTOR_DIM})"
            )
        return vectors

    def _record_failures(
        self, report: IndexReport, stored: set[str], batch: _Batch, failures: list[WriteFailure]
    ) -> None:
        """Ids the engine refused are dead-lettered and not counted as stored."""
        for failure in failures:
            stored.discard(failure.id)
            row = batch.origin.get(failure.id)
            rejection = Rejection(
                row.line if row else 0, f"engine: {failure.reason}", row.raw_text() if row else "", failure.id
            )
            self._reject(report, rejection)

    def _run(
        self,
        rows: Iterator[RawRow],
        total: Callable[[], int | None],
        report: IndexReport,
        write: Callable[[_Batch, npt.NDArray[np.float32]], None],
    ) -> None:
        """Read ahead, embed here, write behind; returns when every batch is written."""
        writer = WriteBehind(depth=2, name="index-writer")
        clock = _StageClock(report.stage_seconds)
        try:
            with (
                self._progress(total) as bar,
                contextlib.closing(read_ahead(self._batches(rows, report), name="index-reader")) as batches,
            ):
                clock.lap()
                for batch in batches:
                    clock.lap("wait_read")
                    vectors = self._embed(batch.texts)
                    clock.lap("embed")
                    writer.submit(functools.partial(write, batch, vectors))
                    clock.lap("wait_write")
                    bar.update(batch.rows)
                writer.close()
                clock.lap("wait_write")
        except BaseException:
            writer.cancel()
            raise

    def _progress(self, total: Callable[[], int | None]) -> tqdm[Any]:
        return tqdm(
            total=total() if self.progress else None,
            unit="doc",
            disable=not self.progress,
            dynamic_ncols=True,
            smoothing=0.1,
            mininterval=0.5,
        )

    # ---- modes ----------------------------------------------------------------------------

    def _new_report(self, mode: Literal["full", "incremental"], source: Path) -> IndexReport:
        return IndexReport(
            mode=mode,
            engine=self.engine.name,
            source=str(source),
            dead_letter=str(self.dead_letter.path) if self.dead_letter.path else None,
        )

    def full(self, source: Path, fmt: CatalogueFormat | None = None) -> IndexReport:
        """Rebuild the whole index from `source` as a new version and make it live.

        Raises IndexAbortedError (live version unchanged) when no row is valid or the engine
        refuses more than `max_reject_ratio` of them.
        """
        self.check_encoder()
        report = self._new_report("full", source)
        started = time.perf_counter()
        rows = read_catalogue(source, fmt)  # a missing file or unknown format fails before a version exists
        builder = self.engine.begin_version(self.encoder.dim, self.encoder_version)
        stored: set[str] = set()
        # The intent model learns from the vectors embedded here: no second pass over the index.
        # A product a later row of the same file replaces or deletes stays counted (rare in a full file).
        category_sums = CategorySums(self.encoder.dim) if self.intent_dir is not None else None

        def write(batch: _Batch, vectors: npt.NDArray[np.float32]) -> None:
            # A full rebuild leaves deleted ids out, dropping one written earlier in the run.
            dropped = [i for i in batch.deletes if i in stored]
            if dropped:
                builder.write_deletes(dropped)
                stored.difference_update(dropped)
            report.deleted += len(batch.deletes)
            products = batch.product_list()
            if products:
                failures = builder.write(products, vectors)
                stored.update(batch.products)
                self._record_failures(report, stored, batch, failures)
                if category_sums is not None:
                    refused = {f.id for f in failures}
                    kept = [i for i, p in enumerate(products) if p.id not in refused]
                    category_sums.add([products[i] for i in kept], vectors[kept])

        try:
            self._run(rows, lambda: _count_records(source, fmt), report, write)
            report.indexed = len(stored)
            stored.clear()  # not needed any more: leave the memory to the engine's index builds
            self._refuse_if_unfit(report, source)
            commit_started = time.perf_counter()
            report.version = builder.commit()
            report.stage_seconds["commit"] = round(time.perf_counter() - commit_started, 3)
        except BaseException:
            builder.abort()
            raise
        if category_sums is not None and self.intent_dir is not None and report.version is not None:
            path = model_path(self.intent_dir, report.version)
            save_sums(path, report.version, category_sums)
            prune_models(self.intent_dir, set(self.engine.versions()))
            report.intent_model = str(path)
        return self._finish(report, started)

    def incremental(self, source: Path, fmt: CatalogueFormat | None = None) -> IndexReport:
        """Apply a changes file (upserts and deletes by id) to the live version."""
        report = self._new_report("incremental", source)
        report.version = self.engine.live_version()
        if report.version is None:
            raise NoLiveIndexError("there is no live index to change yet; run a full `shoprank index --catalogue PATH`")
        self.check_encoder()
        live_model = self.engine.bi_encoder_version()
        if live_model is not None and self.encoder_version is not None and live_model != self.encoder_version:
            raise BiEncoderMismatchError(
                f"the live index {report.version} was built with bi-encoder {live_model!r}, this run embeds with "
                f"{self.encoder_version!r}: mixed vectors would not be comparable; run a full `shoprank index "
                "--catalogue PATH` with this model instead"
            )
        started = time.perf_counter()
        stored: set[str] = set()

        def write(batch: _Batch, vectors: npt.NDArray[np.float32]) -> None:
            products = batch.product_list()
            if products:
                failures = self.engine.upsert(products, vectors)
                stored.update(batch.products)
                self._record_failures(report, stored, batch, failures)
            if batch.deletes:
                report.deleted += self.engine.delete(list(batch.deletes))
                stored.difference_update(batch.deletes)

        rows = read_catalogue(source, fmt)
        self._run(rows, lambda: _count_records(source, fmt), report, write)
        report.indexed = len(stored)
        return self._finish(report, started)

    def _refuse_if_unfit(self, report: IndexReport, source: Path) -> None:
        """Keep the live version when the new one would be empty or the engine refused too much."""
        engine_rejects = report.reject_reasons.get("engine", 0)
        attempted = report.indexed + engine_rejects
        if report.indexed <= 0:
            report.aborted = (
                f"no valid products in {source} ({report.rejected} rows rejected); the live index is unchanged. "
                "See the dead-letter file for why rows were rejected"
            )
        elif engine_rejects / attempted > self.max_reject_ratio:
            report.aborted = (
                f"the engine refused {engine_rejects} of {attempted} products (> {self.max_reject_ratio:.0%}); "
                "the new version was not made live. See the dead-letter file for the reasons"
            )
        if report.aborted:
            report.version = self.engine.live_version()
            raise IndexAbortedError(report.aborted, report)

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
