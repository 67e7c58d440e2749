"""An opensearch-py client from settings (URL, basic auth, TLS, timeouts, transport retries), and
what an opensearch-py error means as an EngineError.

The password comes from a SecretStr and goes only into the client's auth; nothing here logs it,
and no message built here carries it (URLs with credentials are refused up front).

Retries: a search is never retried by the transport (a shopper waits for every attempt: a 3 s
timeout retried 3 times held a search 12 s); the fail-fast answer is the front door's 503. Other
requests (index builds, alias swaps, setup) retry a refused connection or a 502/503/504 a few
times, never a timeout (the timed-out request may still be running on the cluster). Bulk 429s
are retried deliberately, per item with backoff, in engines/opensearch_bulk.py.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import ConnectionTimeout, SerializationError, TransportError

from engines.base import EngineError, EngineFailure
from shoprank.settings import Settings, credentials_in_url

log = logging.getLogger(__name__)

# Connection errors and 502/503/504 of requests other than searches are retried this many times.
TRANSPORT_RETRIES = 3
# An HTTP status of an OpenSearch answer -> the failure it is (other 4xx: rejected, other 5xx: failed).
STATUS_FAILURES: dict[int, EngineFailure] = {
    401: "unauthorized",
    403: "forbidden",
    429: "overloaded",
    500: "failed",
    502: "unavailable",
    503: "unavailable",
    504: "timeout",
}
# What to check, per failure, in the operator's message.
HINTS: dict[EngineFailure, str] = {
    "unauthorized": "check --opensearch-user / --opensearch-password",
    "forbidden": "give the OpenSearch user the permissions shoprank needs (search; index, alias, template to write)",
    "overloaded": "the cluster rejects work: retry later, or give it more capacity",
    "unavailable": "check the cluster's health (and any proxy in front of it)",
    "failed": "see the cluster's logs",
    "timeout": "raise --opensearch-timeout-s or check the cluster's load",
    "bad_answer": "check that --opensearch-url points at the cluster itself, not a proxy or login page",
    "rejected": "see the cluster's logs; this may be a shoprank bug",
}
MAX_DETAIL_CHARS = 120
# opensearch-py logs every failed request at WARNING, a timeout with its traceback; the EngineError
# raised for it says the same in one line, so its own log stays at ERROR unless set explicitly.
OPENSEARCH_PY_LOGGER = "opensearch"


# Kept connections to the cluster: one per concurrent request the front door (or an indexer) makes.
POOL_CONNECTIONS = 32


def _client_kwargs(settings: Settings) -> dict[str, Any]:
    url = settings.opensearch_url.strip()
    if not url:
        raise EngineError("no OpenSearch URL: pass --opensearch-url https://HOST:9200 or set SHOPRANK_OPENSEARCH_URL")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EngineError(f"OpenSearch URL {url!r} is not http(s)://HOST[:PORT]")
    problem = credentials_in_url(url)  # Settings refuses these too; copies made without validation reach here
    if problem:
        raise EngineError(problem)
    password = settings.opensearch_password.get_secret_value()
    if password and parts.scheme == "http":
        log.warning("the OpenSearch password goes to %s over plain http://: use https://", parts.hostname)
    kwargs: dict[str, Any] = {
        "hosts": [url],
        "use_ssl": parts.scheme == "https",
        "verify_certs": settings.opensearch_verify_certs,
        "ssl_show_warn": False,
        "timeout": settings.opensearch_timeout_s,
        "max_retries": TRANSPORT_RETRIES,
        "retry_on_timeout": False,
        # The front door's handler threads share one client: urllib3's default of one kept connection
        # per host made concurrent searches open and discard a connection each (bench frontdoor, 4 clients).
        "pool_maxsize": POOL_CONNECTIONS,
    }
    if password:
        kwargs["http_auth"] = (settings.opensearch_user, password)
    if settings.opensearch_ca_certs is not None:
        kwargs["ca_certs"] = str(settings.opensearch_ca_certs)
    if parts.scheme == "https" and not settings.opensearch_verify_certs:
        log.warning("TLS certificate verification of %s is off (--no-opensearch-verify-certs)", parts.hostname)
    return kwargs


def client_from_settings(settings: Settings, **overrides: Any) -> OpenSearch:
    """A client for settings.opensearch_url (overrides: e.g. a test's connection_class)."""
    library_log = logging.getLogger(OPENSEARCH_PY_LOGGER)
    if library_log.level == logging.NOTSET:
        library_log.setLevel(logging.ERROR)
    return OpenSearch(**{**_client_kwargs(settings), **overrides})


def search_client_from_settings(settings: Settings, **overrides: Any) -> OpenSearch:
    """The same client with no transport retries: what searches (and the reads a search makes) use."""
    return client_from_settings(settings, **{"max_retries": 0, "retry_on_timeout": False, **overrides})


def _detail(error: object) -> str:
    """A short, single-line form of what the cluster said (an HTML page is not quoted)."""
    text = re.sub(r"\s+", " ", str(error)).strip()
    if text.startswith("<"):
        return "an HTML page"
    return text[:MAX_DETAIL_CHARS] + ("…" if len(text) > MAX_DETAIL_CHARS else "")


def failure_of(exc: Exception) -> EngineFailure:
    """The failure class of an opensearch-py error."""
    if isinstance(exc, ConnectionTimeout):
        return "timeout"
    if isinstance(exc, OpenSearchConnectionError):
        return "unreachable"
    if isinstance(exc, SerializationError):
        return "bad_answer"
    if isinstance(exc, TransportError) and isinstance(exc.status_code, int):
        status = exc.status_code
        return STATUS_FAILURES.get(status, "failed" if status >= 500 else "rejected")
    return "failed"


def engine_error(exc: Exception, url: str = "") -> EngineError:
    """An opensearch-py error as an EngineError that says what happened and what to check."""
    failure = failure_of(exc)
    where = f"OpenSearch at {url}" if url else "OpenSearch"
    if failure == "unreachable":
        message = (
            f"cannot reach {where} ({exc.__class__.__name__}); "
            "check --opensearch-url, that the cluster is up, and its TLS settings"
        )
    elif failure == "bad_answer":
        message = f"{where} answered with something that is not OpenSearch JSON ({_detail(exc)}); {HINTS[failure]}"
    elif isinstance(exc, TransportError) and isinstance(exc.status_code, int):
        message = f"{where} answered HTTP {exc.status_code} ({_detail(exc.error)}); {HINTS[failure]}"
    elif failure == "timeout":
        message = f"{where} did not answer in time ({exc.__class__.__name__}); {HINTS[failure]}"
    else:
        message = f"{where} failed ({exc.__class__.__name__}: {_detail(exc)}); {HINTS['failed']}"
    return EngineError(message, failure)
