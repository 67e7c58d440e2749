"""Dead-letter file: every rejected row, with its line number and reason, one JSON object per line."""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import IO

from indexer.validate import Rejection


class DeadLetter:
    """The rejected rows of one run, as a JSONL file (written lazily: no rejects, no file).

    A file left at the same path by an earlier run is removed first, so the file always
    matches the run's report.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.count = 0
        self._handle: IO[str] | None = None
        if path is not None:
            path.unlink(missing_ok=True)

    def write(self, rejection: Rejection, source: str) -> None:
        """Record one rejected row; the raw row is kept whole so nothing is lost."""
        self.count += 1
        if self.path is None:
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("w", encoding="utf-8")
        record = {
            "source": source,
            "line": rejection.line,
            "id": rejection.id,
            "reason": rejection.reason,
            "row": rejection.raw,
        }
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    def close(self) -> None:
        """Flush and close the file."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> DeadLetter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
