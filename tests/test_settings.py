"""Settings: defaults, environment variables and CLI flags, in that order of precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoprank.cli import build_parser
from shoprank.settings import Settings, settings_from_args
from sidecar.process import sidecar_environment


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPRANK_RERANK_WINDOW", "40")
    monkeypatch.setenv("SHOPRANK_DATA_DIR", "/tmp/somewhere")
    settings = Settings()
    assert settings.rerank_window == 40
    assert settings.data_dir == Path("/tmp/somewhere")


def test_cli_flag_overrides_environment_before_or_after_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPRANK_SIDECAR", "10.0.0.1:1")
    args = build_parser().parse_args(["--sidecar", "127.0.0.1:2", "search", "towels", "--rerank-window", "7"])
    settings = settings_from_args(args)
    assert settings.sidecar == "127.0.0.1:2"
    assert settings.rerank_window == 7


def test_unset_flags_leave_the_environment_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPRANK_PAGE_SIZE", "25")
    settings = settings_from_args(build_parser().parse_args(["search", "towels"]))
    assert settings.page_size == 25


def test_every_setting_has_a_flag_and_a_description() -> None:
    help_text = build_parser().format_help()
    for name, field in Settings.model_fields.items():
        assert "--" + name.replace("_", "-") in help_text
        assert field.description


def test_secrets_are_not_printed() -> None:
    settings = Settings(opensearch_password="hunter2")
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())


def test_a_spawned_child_reads_back_every_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(diversity_facets="brand,category", rerank_window=7, tls_cert=Path("/tmp/cert.pem"))
    for name, value in sidecar_environment(settings, settings.sidecar).items():
        monkeypatch.setenv(name, value)
    child = Settings()
    assert child.diversity_facets == ("brand", "category")
    skip = {"opensearch_password", "listen"}  # secrets are not passed; the child listens where the parent calls
    assert child.model_dump(exclude=skip) == settings.model_dump(exclude=skip)
