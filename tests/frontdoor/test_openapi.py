"""/openapi.json says what the API does: 400 (not FastAPI's 422) for bad parameters with the error
body it sends, 503 for an engine that cannot answer, and the demo page at / as HTML."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from frontdoor.api_models import EventsBody, SearchBody
from frontdoor.http import ErrorBody, openapi_text
from frontdoor.params import SearchParams
from shoprank.cli import main
from shoprank.settings import REPO_ROOT

Api = Callable[..., TestClient]


def _document(api: TestClient) -> dict[str, Any]:
    response = api.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_no_operation_documents_a_422_the_api_never_sends(api_for: Api, closed_address: str) -> None:
    api = api_for(closed_address)
    document = _document(api)
    statuses = {
        path: set(operation["responses"]) for path, ops in document["paths"].items() for operation in ops.values()
    }
    assert all("422" not in documented for documented in statuses.values()), statuses
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert statuses["/api/search"] == {"200", "400", "500", "503"}
    # What it documents for 400 is what a bad request gets.
    documented = document["paths"]["/api/search"]["get"]["responses"]["400"]["content"]["application/json"]["schema"]
    assert documented == {"$ref": "#/components/schemas/ErrorBody"}
    bad = api.get("/api/search", params={"q": "mug", "page_size": 10_000})
    assert bad.status_code == 400
    assert ErrorBody.model_validate(bad.json()).error.startswith("page_size")


def test_the_demo_page_is_documented_and_served_as_html(api_for: Api, closed_address: str) -> None:
    api = api_for(closed_address)
    content = _document(api)["paths"]["/"]["get"]["responses"]["200"]["content"]
    assert set(content) == {"text/html"}
    page = api.get("/")
    assert page.headers["content-type"].startswith("text/html")


def test_the_documented_search_parameters_are_the_api_parameters(api_for: Api, closed_address: str) -> None:
    operation = _document(api_for(closed_address))["paths"]["/api/search"]["get"]
    assert {p["name"] for p in operation["parameters"]} == set(SearchParams.model_fields)


def test_the_checked_in_document_is_the_apis_schema() -> None:
    checked_in = (REPO_ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")
    assert checked_in == openapi_text(), "docs/openapi.json is stale: run `shoprank openapi` (or `make openapi`)"


def test_openapi_check_fails_on_a_stale_document_and_passes_on_a_fresh_one(tmp_path: Path) -> None:
    document = tmp_path / "openapi.json"
    document.write_text("{}\n", encoding="utf-8")
    assert main(["openapi", "--check", "--output", str(document)]) == 1
    assert main(["openapi", "--output", str(document)]) == 0
    assert main(["openapi", "--check", "--output", str(document)]) == 0
    assert json.loads(document.read_text(encoding="utf-8"))["paths"]["/api/search"]


def test_every_route_documents_its_answer_body() -> None:
    document = json.loads(openapi_text())
    ok = {path: ops[next(iter(ops))]["responses"]["200"] for path, ops in document["paths"].items()}
    refs = {path: answer["content"].get("application/json", {}).get("schema") for path, answer in ok.items()}
    assert refs["/api/search"] == {"$ref": "#/components/schemas/SearchBody"}
    assert refs["/api/events"] == {"$ref": "#/components/schemas/EventsBody"}
    assert refs["/api/defaults"] == {"$ref": "#/components/schemas/DefaultsBody"}
    assert refs["/healthz"] == {"$ref": "#/components/schemas/HealthBody"}
    search = document["components"]["schemas"]["SearchBody"]
    assert {"results", "facets", "intent", "fail_open_reason", "compare"} <= set(search["properties"])


def test_a_search_answer_is_its_documented_body_with_compare_and_explanations(api_for: Api, tiny_sidecar: str) -> None:
    body = api_for(tiny_sidecar).get(
        "/api/search", params={"q": "shoes", "page_size": 3, "compare": True, "explain": True}
    )
    assert body.status_code == 200
    parsed = SearchBody.model_validate(body.json())
    assert parsed.reranked
    assert parsed.compare is not None
    assert set(parsed.compare) == {"first_stage", "reranked", "diversified"}
    assert all(r.explanation is not None for r in parsed.results)
    assert parsed.results[0].explanation is not None
    assert parsed.results[0].explanation.final_rank == 0
    assert any(v.price_min is not None for v in parsed.facets["price"])


def test_a_body_key_the_models_do_not_declare_is_refused() -> None:
    """A field added to the answer without its model would be documented nowhere: refused, not dropped."""
    good = {"accepted": 1, "rejected": [{"index": 0, "error": "timestamp: missing"}]}
    assert EventsBody.model_validate(good).accepted == 1
    with pytest.raises(ValidationError, match="unexpected"):
        EventsBody.model_validate({**good, "unexpected": True})
