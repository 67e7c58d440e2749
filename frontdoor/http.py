"""The HTTP JSON search API for a shop front-end, and the demo page.

Every bad request is a 400 whose `error` says what was wrong and what to do; a slow or
missing sidecar is never an error (results come back in first-stage order with
`fail_open: true`); an engine that cannot answer is a 503 with the reason's class
(frontdoor/engine_errors.py), its details in the log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from engines.base import EngineError
from frontdoor.api_models import ErrorBody as ErrorBody  # the search API's error body (tests and clients)
from frontdoor.api_models import EventsBody, EventsErrorBody, HealthBody, SearchBody
from frontdoor.defaults import DefaultsBody
from frontdoor.engine_errors import engine_error_answer
from frontdoor.params import HINTS, SINGLE_VALUED, SearchParams
from frontdoor.search import PageOutOfRangeError, SearchService
from frontdoor.ubi_capture import RateLimitedError, UbiCapture
from frontdoor.ubi_events import MAX_EVENTS_BODY_BYTES, EventError, validate_batch

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"


def _problem(error: dict[str, Any]) -> str:
    """One validation error as a sentence: which parameter, what was wrong, what to do."""
    loc = [str(part) for part in error.get("loc", ())[1:]]
    name = loc[0] if loc else ""
    if error.get("type") == "extra_forbidden":
        allowed = ", ".join(SearchParams.model_fields)
        return f"unknown parameter '{name}': the search API takes {allowed}"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if not name:
        return message
    given = error.get("input")
    shown = f" (got {given!r:.60})" if isinstance(given, str | int | float) and error.get("type") != "missing" else ""
    hint = HINTS.get(name)
    return f"{'.'.join(loc)}: {message}{shown}" + (f"; {hint}" if hint else "")


def _bad_request(message: str) -> JSONResponse:
    return JSONResponse(status_code=400, content={"error": message})


def _single_values(request: Request) -> None:
    """Refuse a single-valued parameter given twice (which one would win is a guess)."""
    repeated = sorted(
        {k for k in request.query_params if k in SINGLE_VALUED and len(request.query_params.getlist(k)) > 1}
    )
    if repeated:
        raise RequestValidationError(
            [{"loc": ("query",), "msg": f"{', '.join(repeated)} given more than once; send each once", "type": "x"}]
        )


SEARCH_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "a bad parameter: `error` names it and says what to send"},
    500: {"model": ErrorBody, "description": "a bug in the front door (the trace is in its log)"},
    503: {"model": ErrorBody, "description": "the search engine cannot answer: `reason` says why, in a word"},
}


EVENT_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {
        "model": EventsBody,
        "description": "`accepted` events were kept; `rejected` lists each bad one's index and reason",
    },
    400: {
        "model": EventsErrorBody,
        "description": "no event was acceptable: `error` names the field and what to send",
    },
    413: {"model": EventsErrorBody, "description": "the body is too large: send fewer events per request"},
    429: {
        "model": EventsErrorBody,
        "description": "over the events rate bound (`ubi_events_per_s`): retry after a second",
    },
    503: {
        "model": EventsErrorBody,
        "description": "capture is off, or its queue is full (retry: events are idempotent)",
    },
}


async def _take_events(request: Request, capture: UbiCapture | None) -> JSONResponse:
    if capture is None:
        return JSONResponse(status_code=503, content={"error": "UBI capture is off here (set SHOPRANK_UBI_CAPTURE)"})
    body = await request.body()
    if len(body) > MAX_EVENTS_BODY_BYTES:
        return JSONResponse(
            status_code=413, content={"error": f"at most {MAX_EVENTS_BODY_BYTES} bytes per request; send fewer events"}
        )
    try:
        good, rejected = validate_batch(json.loads(body))
    except json.JSONDecodeError as error:
        return _bad_request(f"the body is not JSON ({error.msg} at {error.pos}); send a JSON array of UBI events")
    except EventError as error:
        return _bad_request(str(error))
    if not good:
        first = rejected[0] if rejected else {"index": 0, "error": "the array is empty; send at least one event"}
        return JSONResponse(
            status_code=400, content={"error": f"event {first['index']}: {first['error']}", "rejected": rejected}
        )
    try:
        queued = capture.events(good)
    except RateLimitedError as error:
        return JSONResponse(status_code=429, content={"error": str(error)}, headers={"Retry-After": "1"})
    if queued < len(good):
        return JSONResponse(
            status_code=503,
            content={
                "error": f"capture queue full: {len(good) - queued} events not kept; retry them",
                "accepted": queued,
            },
        )
    return JSONResponse(content={"accepted": queued, "rejected": rejected})


def _honest_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """FastAPI documents a 422 for every route with parameters; this API answers 400 instead."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi


def _service(request: Request) -> SearchService:
    """The search service create_app gave this app."""
    service: SearchService = request.app.state.service
    return service


Service = Annotated[SearchService, Depends(_service)]


def create_api() -> FastAPI:
    """The API's routes, handlers and document; it serves once create_app gives it a SearchService."""
    app = FastAPI(title="shoprank", docs_url="/api/docs", redoc_url=None)
    app.openapi = _honest_openapi(app)  # type: ignore[method-assign]

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        return _bad_request("; ".join(_problem(e) for e in error.errors()))

    @app.exception_handler(PageOutOfRangeError)
    async def page_out_of_range(_request: Request, error: PageOutOfRangeError) -> JSONResponse:
        return _bad_request(str(error))

    @app.exception_handler(EngineError)
    async def engine_unavailable(_request: Request, error: EngineError) -> JSONResponse:
        status, body = engine_error_answer(error)
        return JSONResponse(status_code=status, content=body)

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, _error: Exception) -> JSONResponse:
        # A bug, not the shopper's fault: a JSON answer the front-end can show; the trace is in the log.
        return JSONResponse(status_code=500, content={"error": "internal error in the search front door; see its log"})

    @app.get("/healthz")
    def healthz() -> HealthBody:
        """Answers while the front door runs (it does not ask the engine or the sidecar)."""
        return HealthBody(status="ok")

    @app.get("/api/defaults")
    def defaults(service: Service) -> DefaultsBody:
        """What a search gets for every option it leaves out (the demo page starts its controls here)."""
        api = SearchParams.model_fields
        return service.defaults.body(
            api["mode"].default, api["rerank"].default, api["page_size"].default, service.intent_defaults
        )

    @app.get(
        "/api/search",
        dependencies=[Depends(_single_values)],
        responses=SEARCH_ERRORS,
        response_model=SearchBody,
        response_model_exclude_unset=True,  # optional parts (compare, experiment, explanations) only when present
    )
    def search(params: Annotated[SearchParams, Query()], service: Service) -> dict[str, Any]:
        """Search the catalogue: first stage, sidecar rerank (fail-open), diversity, one page, facets."""
        return service.search(params.to_request()).as_dict()

    @app.post("/api/events", responses=EVENT_ERRORS)
    async def events(request: Request, service: Service) -> JSONResponse:
        """Take a JSON array of UBI events; each is validated, bad ones listed by index, good ones kept."""
        capture = service.capture if isinstance(service.capture, UbiCapture) else None
        return await _take_events(request, capture)

    @app.get("/", response_class=HTMLResponse)
    def index() -> FileResponse:
        """The demo page (HTML)."""
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def create_app(service: SearchService) -> FastAPI:
    """The FastAPI app serving /api/search, /api/events, /api/defaults, /healthz and the demo page."""
    app = create_api()
    app.state.service = service
    return app


def openapi_text() -> str:
    """The API's OpenAPI document as docs/openapi.json holds it (`shoprank openapi` writes it)."""
    return json.dumps(create_api().openapi(), indent=2, ensure_ascii=False) + "\n"
