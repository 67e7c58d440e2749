"""/openapi.json says what the API does: 400 (not FastAPI's 422) for bad parameters with the error
body it sends, 503 for an engine that cannot answer, and the demo page at / as HTML."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from frontdoor.http import ErrorBody
from frontdoor.params import SearchParams

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
