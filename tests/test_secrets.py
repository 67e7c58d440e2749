"""OpenSearch secrets: never in a URL (any command), a file instead of a flag, warnings where
they would travel or show."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engines.opensearch_client import client_from_settings
from shoprank.cli import build_parser, main
from shoprank.settings import REPO_ROOT, Settings, settings_from_args


@pytest.mark.e2e  # a subprocess
def test_the_sidecar_refuses_an_opensearch_url_with_credentials_and_never_prints_them(tmp_path: Path) -> None:
    env = {**os.environ, "SHOPRANK_OPENSEARCH_URL": "https://admin:hunter2@search.example:9200"}
    command = [sys.executable, "-m", "shoprank", "-v", "--data-dir", str(tmp_path), "sidecar"]
    command += ["--listen", "127.0.0.1:0", "--metrics-listen", ""]
    try:
        done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as error:  # it started serving (and logged its settings)
        pytest.fail(f"the sidecar started with credentials in the URL: {error.stderr!r}")
    assert done.returncode == 2
    assert "not in --opensearch-url" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout


def test_every_command_refuses_credentials_in_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["search", "towels"], ["index", "--rollback"], ["opensearch", "setup"]):
        assert main(["--opensearch-url", "https://u:hunter2@h:9200", *command]) == 2
        err = capsys.readouterr().err
        assert "not in --opensearch-url" in err
        assert "hunter2" not in err


def test_the_password_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    settings = Settings(opensearch_password_file=secret)
    assert settings.opensearch_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    with pytest.raises(ValueError, match="once"):
        Settings(opensearch_password_file=secret, opensearch_password="other")
    args = build_parser().parse_args(["--opensearch-password-file", str(tmp_path / "missing"), "search", "x"])
    with pytest.raises(ValueError, match=r"--opensearch-password-file .*missing: No such file"):
        settings_from_args(args)


def test_a_password_flag_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        main(["--data-dir", str(tmp_path), "--opensearch-password", "hunter2", "search", "towels"])
    warnings = [r.getMessage() for r in caplog.records if "--opensearch-password-file" in r.getMessage()]
    assert warnings
    assert "ps" in warnings[0]
    assert not any("hunter2" in r.getMessage() for r in caplog.records)


def test_basic_auth_over_plain_http_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="engines.opensearch_client"):
        client_from_settings(Settings(opensearch_url="http://search.example:9200", opensearch_password="x"))
        assert any("plain http://" in r.getMessage() for r in caplog.records)
        caplog.clear()
        client_from_settings(Settings(opensearch_url="https://search.example:9200", opensearch_password="x"))
        client_from_settings(Settings(opensearch_url="http://search.example:9200"))  # no password: nothing to leak
    assert not any("plain http://" in r.getMessage() for r in caplog.records)
