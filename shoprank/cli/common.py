"""Small pieces shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from shoprank.settings import ALL_GROUPS, SettingGroup, add_settings_flags

# The setting groups most commands read (every command takes every flag; --help lists these).
SEARCHING: tuple[SettingGroup, ...] = ("general", "engine", "retrieval", "models", "ranking", "intent")


def add_command(
    subparsers: Any, name: str, help_text: str, groups: Sequence[SettingGroup] = ALL_GROUPS
) -> argparse.ArgumentParser:
    """A subcommand parser that takes every settings flag and lists the `groups` it reads in --help."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help_text, description=help_text, allow_abbrev=False
    )
    add_settings_flags(parser, groups)
    return parser


def add_judged_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """--judgments (required) and --catalogue, as every measurement on judged queries takes them."""
    parser.add_argument(
        "--judgments", type=Path, required=True, help="CSV with query, product_id and rating and/or esci_label"
    )
    parser.add_argument(
        "--catalogue",
        type=Path,
        help="catalogue to retrieve from, indexed once into <data-dir>/eval-cache "
        "(default: the data dir's live index, as built by `shoprank index`)",
    )


def comma_separated(choices: Sequence[str]) -> Callable[[str], list[str]]:
    """An argparse type: a comma-separated list whose every item is one of `choices`."""

    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        unknown = [item for item in items if item not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(unknown)}; choose from {', '.join(choices)}")
        return items

    return parse


def print_json(data: Any) -> None:
    """Machine-readable output on stdout."""
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
