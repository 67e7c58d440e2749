"""`shoprank openapi`: write (or check) docs/openapi.json, the HTTP API's document."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from shoprank.cli.common import add_command
from shoprank.settings import REPO_ROOT, Settings

DOCUMENT = REPO_ROOT / "docs" / "openapi.json"


def register(subparsers: Any) -> None:
    """Add the `openapi` command."""
    parser = add_command(
        subparsers, "openapi", "write the HTTP API's OpenAPI document (docs/openapi.json)", ("general",)
    )
    parser.add_argument("--output", type=Path, default=DOCUMENT, help="where to write it (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when the file differs")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, _settings: Settings) -> int:
    """Write the document, or say whether the checked-in one is current."""
    from frontdoor.http import openapi_text

    text = openapi_text()
    output: Path = args.output
    if args.check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            print(f"{output} differs from the API's schema: run `shoprank openapi`", file=sys.stderr)
            return 1
        return 0
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}")
    return 0
