"""The real OpenSearch the `opensearch`-marked tests talk to: the cluster at OPENSEARCH_URL when
set, else one local node per test session (engines/opensearch_node.py: JDK 17+ and Maven),
else the tests skip with the reason. Each test works under its own alias (`unique_alias`)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from engines.opensearch import OpenSearchEngine
from engines.opensearch_node import LocalNode, NodeUnavailableError, free_port, missing_tools, resolve
from engines.opensearch_setup import apply_setup, remove_setup
from shoprank.settings import REPO_ROOT, Settings

# The session node's bulk queue is tiny so that concurrent bulk requests meet real 429s
# (one write thread, one queued request); the suite's own writes are sequential.
WRITE_POOL = {"thread_pool.write.size": "1", "thread_pool.write.queue_size": "1"}
NODE_HEAP = "768m"


@dataclass(frozen=True)
class LiveCluster:
    """Where the tests' OpenSearch listens and how to authenticate to it."""

    url: str
    user: str = "admin"
    password: str = ""
    verify_certs: bool = False
    local: bool = False
    started_in_s: float = 0.0

    def settings(self, alias: str, **overrides: object) -> Settings:
        """Settings for this cluster under `alias`."""
        return Settings(
            opensearch_url=self.url,
            opensearch_user=self.user,
            opensearch_password=self.password,
            opensearch_verify_certs=self.verify_certs,
            index_name=alias,
            **overrides,  # type: ignore[arg-type]
        )


def unique_alias(prefix: str = "shoprank-test") -> str:
    """An alias no other test uses (its indices are `<alias>-<stamp>-<rand>`)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def live_cluster(home: Path) -> Iterator[LiveCluster]:
    """OPENSEARCH_URL's cluster, or a local node started in `home` and stopped afterwards."""
    url = os.environ.get("OPENSEARCH_URL")
    if url:
        yield LiveCluster(
            url=url,
            user=os.environ.get("OPENSEARCH_USER", "admin"),
            password=os.environ.get("OPENSEARCH_PASSWORD", ""),
            verify_certs=os.environ.get("OPENSEARCH_VERIFY_CERTS", "false") == "true",
        )
        return
    reason = missing_tools()
    if reason:
        pytest.skip(f"no OpenSearch: OPENSEARCH_URL is not set and {reason}")
    try:
        build = resolve(REPO_ROOT / "opensearch" / "node")
    except NodeUnavailableError as exc:
        pytest.skip(f"no OpenSearch: OPENSEARCH_URL is not set and the local node could not be resolved: {exc}")
    started = time.monotonic()
    with LocalNode(build, home, http_port=free_port(), heap=NODE_HEAP, settings=WRITE_POOL) as node:
        node.start()
        yield LiveCluster(url=node.url, local=True, started_in_s=time.monotonic() - started)


@contextmanager
def engine_under_alias(
    cluster: LiveCluster, alias: str | None = None, **settings: object
) -> Iterator[OpenSearchEngine]:
    """An engine for a fresh alias with `shoprank opensearch setup`'s assets installed; every
    index, template, pipeline and script of the alias is deleted afterwards."""
    alias = alias or unique_alias()
    engine = OpenSearchEngine.from_settings(cluster.settings(alias, **settings))
    apply_setup(engine.client, engine_settings_dir(), alias, 0.5)
    try:
        yield engine
    finally:
        remove_alias_assets(engine.client, alias)


def engine_settings_dir() -> Path:
    """The repository's OpenSearch assets."""
    return REPO_ROOT / "opensearch"


def remove_alias_assets(client: OpenSearch, alias: str) -> None:
    """Delete what setup and indexing created for `alias`."""
    remove_setup(client, alias)
