"""The HTTP JSON search API for a shop front-end, and the demo page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse

from engines.base import Filters, NoLiveIndexError
from frontdoor.search import SearchRequest, SearchService
from sidecar.client import RerankOptions

STATIC = Path(__file__).parent / "static"
MAX_QUERY_CHARS = 512
MAX_PAGE_SIZE = 100
MAX_PAGE = 50


def create_app(service: SearchService) -> FastAPI:
    """The FastAPI app serving /api/search, /healthz and the demo page."""
    app = FastAPI(title="shoprank", docs_url="/api/docs", redoc_url=None)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}" for e in error.errors()]
        return JSONResponse(status_code=400, content={"error": "; ".join(problems)})

    @app.exception_handler(NoLiveIndexError)
    async def not_indexed(_request: Request, error: NoLiveIndexError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"error": str(error)})

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/search")
    def search(
        q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description="the shopper's query")],
        page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
        page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 10,
        brand: Annotated[list[str] | None, Query()] = None,
        category: Annotated[list[str] | None, Query()] = None,
        color: Annotated[list[str] | None, Query()] = None,
        price_min: Annotated[float | None, Query(ge=0)] = None,
        price_max: Annotated[float | None, Query(ge=0)] = None,
        mode: Literal["bm25", "knn", "hybrid"] = "hybrid",
        rerank: bool = True,
        diversity: Literal["none", "mmr", "xquad", "dpp"] | None = None,
        strength: Annotated[float | None, Query(ge=0, le=1)] = None,
        explain: bool = False,
    ) -> dict[str, Any]:
        if not q.strip():
            raise RequestValidationError([{"loc": ("query", "q"), "msg": "must not be blank", "type": "value_error"}])
        filters = Filters(
            brands=tuple(brand or ()),
            categories=tuple(category or ()),
            colors=tuple(color or ()),
            price_min=price_min,
            price_max=price_max,
        )
        request = SearchRequest(
            query=q,
            page=page,
            page_size=page_size,
            filters=filters,
            mode=mode,
            rerank=rerank,
            options=RerankOptions(diversity=diversity, strength=strength, explain=explain),
            facets=True,
        )
        return service.search(request).as_dict()

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app
