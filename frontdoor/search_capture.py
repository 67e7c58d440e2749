"""The search's UBI capture hook: each served page gets a query id, recorded when capture is on
(frontdoor/ubi_capture.py records it without waiting)."""

from __future__ import annotations

from typing import Protocol

from frontdoor.page import SearchPage, SearchRequest
from frontdoor.ubi_events import new_query_id


class QueryCapture(Protocol):
    """Records a served page (UBI's ubi_queries) without waiting; returns the page's query id."""

    def record(self, request: SearchRequest, page: SearchPage, engine: str) -> str: ...


def query_id(capture: QueryCapture | None, request: SearchRequest, page: SearchPage, engine: str) -> str:
    """The page's query id: recorded with the page when capture is on, else a fresh one."""
    return capture.record(request, page, engine) if capture else new_query_id()
