"""The CLI tells a user error from a bug: one line and exit 2, or the traceback (exit 1)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from shoprank.cli import main
from shoprank.errors import MissingFileError, NotSetUpError, UserError, UserInputError
from shoprank.settings import Settings


def test_a_user_error_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(tmp_path), "index"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "shoprank index: say what to index: --catalogue PATH (full) or --incremental --changes PATH"


def test_a_missing_file_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.jsonl"
    assert main(["--data-dir", str(tmp_path), "eval-pool", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert str(missing) in err


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(_args: argparse.Namespace, _settings: Settings) -> int:
        raise KeyError("a bug")

    import shoprank.cli.eval_pool as command

    monkeypatch.setattr(command, "run", broken)
    with pytest.raises(KeyError, match="a bug"):
        main(["--data-dir", str(tmp_path), "eval-pool", "x.json"])


def test_the_user_errors_keep_the_builtin_they_replace() -> None:
    assert issubclass(UserInputError, ValueError)
    assert issubclass(NotSetUpError, RuntimeError)
    assert issubclass(MissingFileError, FileNotFoundError)
    assert all(issubclass(cls, UserError) for cls in (UserInputError, NotSetUpError, MissingFileError))
