"""The alias file of the embedded engine: which physical table is live, which are kept for rollback.

Written atomically (temp file, fsync, rename), so a run killed at any point leaves either the
old or the new alias, never a torn one. A writer lock keeps two indexing runs apart.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from engines.base import EngineError


class AliasState(BaseModel):
    live: str | None = None
    history: list[str] = Field(default_factory=list, description="previous complete versions, newest first")
    generation: int = Field(0, description="bumped by every change readers must see: swap, rollback, upsert, delete")

    def kept(self) -> list[str]:
        """Complete versions, the live one first."""
        return ([self.live] if self.live else []) + self.history


def new_version_name(alias: str) -> str:
    """A sortable, unique physical name: <alias>-<UTC timestamp>-<random>."""
    stamp = datetime.now(UTC).strftime("%Y%m%dt%H%M%S%f")
    return f"{alias}-{stamp}-{secrets.token_hex(2)}"


class AliasFile:
    """Reads and atomically replaces the alias state of one alias."""

    def __init__(self, root: Path, alias: str) -> None:
        self.root = root
        self.alias = alias
        self.path = root / f"{alias}.alias.json"

    def read(self) -> AliasState:
        """Current state; an absent file means nothing indexed yet."""
        try:
            return AliasState.model_validate_json(self.path.read_text())
        except FileNotFoundError:
            return AliasState()

    def mtime_ns(self) -> int:
        """Change stamp readers use to notice a swap made by another process."""
        try:
            return self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def write(self, state: AliasState) -> None:
        """Replace the state atomically and durably, with the next generation (readers reopen on it)."""
        state = state.model_copy(update={"generation": self.read().generation + 1})
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        with tmp.open("w") as handle:
            json.dump(state.model_dump(), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def clean_temp_files(self) -> list[Path]:
        """Remove temp files of alias writes killed before their rename; call under the writer lock."""
        stale = sorted(self.root.glob(f"{self.alias}.alias.tmp*"))
        for path in stale:
            path.unlink(missing_ok=True)
        return stale

    @contextlib.contextmanager
    def writer_lock(self) -> Iterator[None]:
        """Exclusive lock for one indexing run at a time; fails fast if another run holds it."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / f"{self.alias}.lock").open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise EngineError(
                    f"another indexing run is writing '{self.alias}' (lock {handle.name}); wait for it to finish"
                ) from exc
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
