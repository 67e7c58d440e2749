"""Fixtures for the indexer tests: run `shoprank ...` in-process, open the engine it wrote."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from engines.lance import LanceEngine
from shoprank.cli import main
from shoprank.settings import Settings


class CliResult(NamedTuple):
    code: int
    report: dict[str, Any]
    err: str


CliRun = Callable[..., CliResult]


@pytest.fixture
def settings(settings_for: Callable[..., Settings], tiny_models: Path) -> Settings:
    """Settings on a fresh data dir with the tiny models."""
    return settings_for(tiny_models)


@pytest.fixture
def shoprank(capsys: pytest.CaptureFixture[str], settings: Settings) -> CliRun:
    """`shoprank --data-dir D <args> --json` in-process: exit code, parsed JSON report, stderr."""

    def run(*args: str) -> CliResult:
        flags = ["--data-dir", str(settings.data_dir), "--keep-versions", str(settings.keep_versions)]
        code = main([*flags, *args, "--json"])
        out, err = capsys.readouterr()
        return CliResult(code, json.loads(out) if out.strip() else {}, err)

    return run


def open_lance(settings: Settings) -> LanceEngine:
    """A fresh reader on the data dir, like another process would open it."""
    return LanceEngine(settings.data_dir / "lancedb", alias=settings.index_name, keep_versions=settings.keep_versions)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Rows as JSONL."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def dead_letters(path: Path) -> list[dict[str, Any]]:
    """Records of a dead-letter file (none when it was never created)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
