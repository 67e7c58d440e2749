"""`shoprank opensearch setup` end to end through the CLI, against the recording transport."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shoprank.cli import main
from tests.opensearch_spec import SpecValidator
from tests.recording_transport import FakeCluster, RecordingConnection


def test_setup_command_installs_the_assets(
    spec_validator: SpecValidator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import engines.opensearch_client as client_module

    cluster = FakeCluster(spec_validator)
    real = client_module.client_from_settings
    monkeypatch.setattr(
        client_module,
        "client_from_settings",
        lambda settings, **kw: real(settings, connection_class=RecordingConnection, cluster=cluster),
    )
    code = main(["opensearch", "setup", "--opensearch-url", "http://fake:9200", "--index-name", "shop", "--json"])
    assert code == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert report["index_template"] == "shop"
    assert report["index_patterns"] == ["shop-*"]
    assert report["search_pipelines"] == {"min_max": "shop-hybrid-min-max", "rrf": "shop-hybrid-rrf"}
    assert set(cluster.scripts) == {"shop-shop-box"}
    cluster.assert_valid()


def test_setup_without_a_url_says_what_to_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["opensearch", "setup", "--opensearch-url", ""]) == 2
    assert "--opensearch-url" in capsys.readouterr().err
