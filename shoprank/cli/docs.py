"""`shoprank docs`: render the measured figures (docs/results/*.json) into docs/quality.md and
docs/benchmarks.md, or check that they are current."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from shoprank.cli.common import add_command
from shoprank.settings import REPO_ROOT, Settings

DOCS = (REPO_ROOT / "docs" / "quality.md", REPO_ROOT / "docs" / "benchmarks.md")
RESULTS = REPO_ROOT / "docs" / "results"


def register(subparsers: Any) -> None:
    """Add the `docs` command."""
    parser = add_command(
        subparsers,
        "docs",
        "render docs/results/*.json into the tables of docs/quality.md and docs/benchmarks.md",
        ("general",),
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a doc is stale")
    parser.set_defaults(run=run)


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def run(args: argparse.Namespace, _settings: Settings) -> int:
    """Rewrite the results blocks, or say which doc is stale."""
    from shoprank.errors import UserInputError
    from shoprank.results_docs import render_docs

    try:
        rendered = render_docs(DOCS, RESULTS)
    except ValueError as error:
        raise UserInputError(str(error)) from error
    stale = [path for path, text in rendered.items() if path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"{_shown(path)} differs from docs/results: run `shoprank docs`", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(rendered[path], encoding="utf-8")
        print(f"wrote {_shown(path)}")
    return 0
