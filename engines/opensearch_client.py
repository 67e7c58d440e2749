"""An opensearch-py client from settings: URL, basic auth, TLS, timeouts, transport retries.

The password comes from a SecretStr and goes only into the client's auth; nothing here logs it.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from opensearchpy import OpenSearch

from engines.base import EngineError
from shoprank.settings import Settings, credentials_in_url

log = logging.getLogger(__name__)

# Connection errors and 502/503/504 are retried by the transport this many times.
TRANSPORT_RETRIES = 3


def client_from_settings(settings: Settings, **overrides: Any) -> OpenSearch:
    """A client for settings.opensearch_url (overrides: e.g. a test's connection_class)."""
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
        "retry_on_timeout": True,
    }
    if password:
        kwargs["http_auth"] = (settings.opensearch_user, password)
    if settings.opensearch_ca_certs is not None:
        kwargs["ca_certs"] = str(settings.opensearch_ca_certs)
    if parts.scheme == "https" and not settings.opensearch_verify_certs:
        log.warning("TLS certificate verification of %s is off (--no-opensearch-verify-certs)", parts.hostname)
    kwargs.update(overrides)
    return OpenSearch(**kwargs)
