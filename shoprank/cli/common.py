"""Small pieces shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from shoprank.settings import add_settings_flags


def add_command(subparsers: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    """A subcommand parser that also takes every settings flag."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help_text, description=help_text, allow_abbrev=False
    )
    add_settings_flags(parser)
    return parser


def print_json(data: Any) -> None:
    """Machine-readable output on stdout."""
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
