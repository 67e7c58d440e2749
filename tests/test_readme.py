"""The README documents every command and links the settings page, which documents every setting."""

from __future__ import annotations

import argparse
import re

from shoprank.cli import build_parser
from shoprank.settings import REPO_ROOT, SETTING_GROUPS, Settings

README = (REPO_ROOT / "README.md").read_text()
SETTINGS_DOC = (REPO_ROOT / "docs" / "settings.md").read_text()


def test_every_setting_is_documented_with_its_environment_variable() -> None:
    missing = [name for name in Settings.model_fields if f"`SHOPRANK_{name.upper()}`" not in SETTINGS_DOC]
    assert not missing, f"add these settings to docs/settings.md's table: {missing}"
    assert "docs/settings.md" in README


def test_every_command_is_documented() -> None:
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    names = list(commands.choices)
    assert "eval-pool" in names
    missing = [name for name in names if f"`shoprank {name}" not in README]
    assert not missing, f"add these commands to README.md's CLI table: {missing}"


def test_no_placeholder_is_left() -> None:
    assert "FIGURES-" not in README
    assert "SETTINGS-TABLE" not in README


def test_the_settings_page_has_one_table_per_group_with_its_settings() -> None:
    sections = re.split(r"^## `(\w+)`: .*$", SETTINGS_DOC, flags=re.MULTILINE)
    tables = dict(zip(sections[1::2], sections[2::2], strict=True))
    assert list(tables) == list(SETTING_GROUPS), "docs/settings.md: one `## `group`: title` section per group"
    misplaced = [
        f"SHOPRANK_{name.upper()} (group {group})"
        for group, (_, names) in SETTING_GROUPS.items()
        for name in names
        if f"`SHOPRANK_{name.upper()}`" not in tables[group]
    ]
    assert not misplaced, f"docs/settings.md: put these rows under their group's heading: {misplaced}"
