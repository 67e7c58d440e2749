"""The README documents every command and links the settings page, which documents every setting."""

from __future__ import annotations

import argparse

from shoprank.cli import build_parser
from shoprank.settings import REPO_ROOT, Settings

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
