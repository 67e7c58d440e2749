"""An OpenSearch that misbehaves (401, 403, 429, 500, 503, HTML pages, bodies that are not JSON or not
a search answer, no answer at all) gets a 503 from the front door that names the reason's class and
not the cluster, is asked once (no transport retries on the search path), and gets a one-line error
from the CLI, never a traceback. The cluster is a tiny local HTTP server (tests/misbehaving_cluster.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opensearchpy.exceptions import (
    AuthenticationException,
    AuthorizationException,
    ConnectionError,
    ConnectionTimeout,
    NotFoundError,
    SerializationError,
    TransportError,
)

from engines.base import ENGINE_FAILURES, EngineError, EngineFailure
from engines.opensearch_client import engine_error, failure_of
from frontdoor.engine_errors import ENGINE_FAILURE_ANSWERS, PUBLIC_PREFIX
from shoprank.cli import main
from tests.frontdoor.conftest import catalogue_rows
from tests.misbehaving_cluster import MODES, misbehaving_cluster

PASSWORD = "s3cret-Passw0rd"
EXPECTED: dict[str, EngineFailure] = {
    "401": "unauthorized",
    "403": "forbidden",
    "429": "overloaded",
    "500": "failed",
    "503": "unavailable",
    "html-200": "bad_answer",
    "html-502": "unavailable",
    "non-json": "bad_answer",
    "wrong-shape": "bad_answer",
    "hang": "timeout",
}


def _opensearch(url: str) -> dict[str, object]:
    return {
        "engine": "opensearch",
        "opensearch_url": url,
        "opensearch_password": PASSWORD,
        "opensearch_timeout_s": 0.5,
    }


def test_every_failure_has_one_answer() -> None:
    assert set(ENGINE_FAILURE_ANSWERS) == set(ENGINE_FAILURES)
    assert set(EXPECTED) == set(MODES)


@pytest.mark.parametrize("mode", MODES)
def test_the_front_door_answers_503_with_the_reason_class_and_logs_the_details(
    api_for: Callable[..., TestClient], closed_address: str, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    with misbehaving_cluster(mode) as cluster:
        api = api_for(closed_address, **_opensearch(cluster.url))
        with caplog.at_level(logging.WARNING):
            response = api.get("/api/search", params={"q": "coffee mug"})
    failure = EXPECTED[mode]
    assert response.status_code == ENGINE_FAILURE_ANSWERS[failure][0] == 503, response.text
    assert response.json() == {
        "error": f"{PUBLIC_PREFIX}: {ENGINE_FAILURE_ANSWERS[failure][1]}",
        "reason": failure,
    }
    port = cluster.url.rsplit(":", 1)[1]
    assert "127.0.0.1" not in response.text
    assert port not in response.text
    # Asked once: the search client does not retry timeouts, 5xx or refusals.
    assert len(cluster.requests) == 1, cluster.requests
    assert cluster.requests[0].authorized, "the front door sent its credentials"
    logged = caplog.text
    assert f"search engine error ({failure}" in logged
    assert cluster.url in logged, "the operator's log says which cluster"
    assert PASSWORD not in logged
    assert "Traceback" not in logged


@pytest.mark.parametrize(("mode", "says"), [("401", "HTTP 401"), ("500", "HTTP 500"), ("html-200", "not OpenSearch")])
def test_the_cli_search_prints_one_line_that_says_what_to_check(
    stack_dir: Path, closed_address: str, capsys: pytest.CaptureFixture[str], mode: str, says: str
) -> None:
    with misbehaving_cluster(mode) as cluster:
        rc = main(
            [
                *("--data-dir", str(stack_dir), "--engine", "opensearch", "--opensearch-url", cluster.url),
                *("--sidecar", closed_address, "--opensearch-timeout-s", "0.5"),
                *("search", "coffee mug"),
            ]
        )
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("shoprank search: OpenSearch at http://127.0.0.1:"), err
    assert says in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    if mode == "401":
        assert "--opensearch-user / --opensearch-password" in err


def test_the_cli_index_refused_by_the_cluster_prints_one_line(
    tmp_path: Path, stack_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalogue = tmp_path / "catalogue.jsonl"
    catalogue.write_text("".join(json.dumps(row) + "\n" for row in catalogue_rows()[:3]), encoding="utf-8")
    with misbehaving_cluster("403") as cluster:
        rc = main(
            [
                *("--data-dir", str(stack_dir), "--engine", "opensearch", "--opensearch-url", cluster.url),
                *("index", "--catalogue", str(catalogue)),
            ]
        )
    err = capsys.readouterr().err
    assert rc == 2
    assert "HTTP 403" in err
    assert "permissions" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("error", "failure"),
    [
        (AuthenticationException(401, "security_exception", {}), "unauthorized"),
        (AuthorizationException(403, "security_exception", {}), "forbidden"),
        (TransportError(429, "rejected_execution_exception", {}), "overloaded"),
        (TransportError(500, "null_pointer_exception", {}), "failed"),
        (TransportError(502, "<html>Bad Gateway</html>", None), "unavailable"),
        (TransportError(503, "no_shard_available_action_exception", {}), "unavailable"),
        (TransportError(504, "gateway timeout", None), "timeout"),
        (TransportError(418, "teapot", None), "rejected"),
        (TransportError(507, "insufficient storage", None), "failed"),
        (ConnectionTimeout("TIMEOUT", "read timed out", None), "timeout"),
        (ConnectionError("N/A", "connection refused", None), "unreachable"),
        (SerializationError("Unknown mimetype, unable to deserialize: text/html"), "bad_answer"),
    ],
)
def test_opensearch_errors_are_classified(error: Exception, failure: str) -> None:
    assert failure_of(error) == failure
    converted = engine_error(error, "https://search.example:9200")
    assert isinstance(converted, EngineError)
    assert converted.failure == failure
    assert "https://search.example:9200" in str(converted)
    assert "<html>" not in str(converted), "an HTML page is never quoted"


def test_a_missing_index_stays_a_not_found_for_its_caller() -> None:
    from engines.opensearch import OpenSearchEngine

    def missing(_client: object) -> None:
        raise NotFoundError(404, "index_not_found_exception", {})

    engine = OpenSearchEngine(client=None)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        engine.call(missing)


@pytest.mark.service  # a local HTTP server
@pytest.mark.parametrize(("mode", "says"), [("401", "HTTP 401"), ("html-200", "not OpenSearch JSON")])
def test_the_cli_setup_prints_one_line(capsys: pytest.CaptureFixture[str], mode: str, says: str) -> None:
    with misbehaving_cluster(mode) as cluster:
        rc = main(["--engine", "opensearch", "--opensearch-url", cluster.url, "opensearch", "setup"])
    err = capsys.readouterr().err
    assert rc == 2
    assert says in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
