"""One harness per engine implementation, so one contract suite runs against each of them.

A harness opens a fresh engine (its own index names), and knows how to play a builder process
that was SIGKILLed mid-build, which each engine detects its own way (a released writer lock on
LanceDB, a builder mark naming a dead process on OpenSearch).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from engines.base import Engine, VersionBuilder
from engines.lance import LanceEngine, LanceVersionBuilder
from engines.opensearch import OpenSearchEngine, OpenSearchVersionBuilder
from engines.opensearch_bulk import BulkPolicy
from engines.opensearch_client import client_from_settings
from engines.opensearch_setup import apply_setup
from engines.opensearch_versions import BuilderMark
from shoprank.settings import REPO_ROOT
from tests.opensearch_live import LiveCluster, unique_alias
from tests.recording_transport import FakeCluster


class EngineHarness(Protocol):
    """A way to open fresh engines of one implementation for the contract suite."""

    name: str
    scores: bool  # False for a fake that stores documents but does not rank them

    def open(self, keep_versions: int = 2) -> Engine:
        """A fresh engine (empty, its own alias) keeping `keep_versions` versions."""
        ...

    def kill(self, builder: VersionBuilder) -> None:
        """Leave `builder` as a SIGKILLed indexing process would: neither committed nor aborted."""
        ...

    def physical_versions(self, engine: Engine) -> list[str]:
        """Every physical index/table of the engine's alias that exists, complete or not."""
        ...


def dead_pid() -> int:
    """The pid of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


class LanceHarness:
    """The embedded engine in a temp directory."""

    name = "lancedb"
    scores = True

    def __init__(self, root: Path) -> None:
        self.root = root
        self._opened = 0

    def open(self, keep_versions: int = 2) -> Engine:
        self._opened += 1
        engine: Engine = LanceEngine(self.root / f"engine{self._opened}", keep_versions=keep_versions)
        return engine

    def kill(self, builder: VersionBuilder) -> None:
        assert isinstance(builder, LanceVersionBuilder)
        builder._lock.close()  # the OS releases a dead process's lock; the half-built table stays

    def physical_versions(self, engine: Engine) -> list[str]:
        assert isinstance(engine, LanceEngine)
        return sorted(engine._tables())


class OpenSearchHarness:
    """The OpenSearch engine over a client: the recording fake, or a real node."""

    def __init__(self, name: str, client_factory: Callable[[], Any], scores: bool) -> None:
        self.name = name
        self.scores = scores
        self._client_factory = client_factory
        self._opened = 0
        self.engines: list[OpenSearchEngine] = []

    def open(self, keep_versions: int = 2) -> Engine:
        self._opened += 1
        client = self._client_factory()
        alias = unique_alias("contract")
        apply_setup(client, REPO_ROOT / "opensearch", alias, 0.5)
        policy = BulkPolicy(chunk_docs=3, max_retries=2, initial_backoff_s=1, max_backoff_s=1)
        engine = OpenSearchEngine(client, alias=alias, keep_versions=keep_versions, bulk_policy=policy)
        self.engines.append(engine)
        return engine

    def kill(self, builder: VersionBuilder) -> None:
        assert isinstance(builder, OpenSearchVersionBuilder)
        mark = BuilderMark.here()
        dead = BuilderMark(mark.host, dead_pid(), mark.heartbeat)
        builder.engine.client.indices.put_mapping(
            index=builder.version, body={"_meta": dead.as_meta(builder.engine.alias)}
        )

    def physical_versions(self, engine: Engine) -> list[str]:
        assert isinstance(engine, OpenSearchEngine)
        found = engine.client.indices.get(index=f"{engine.alias}-*", expand_wildcards="all")
        return sorted(found)


def fake_harness(cluster: FakeCluster) -> OpenSearchHarness:
    """The recording fake: stores, aliases and validates against the API spec; does not score."""
    return OpenSearchHarness("opensearch-fake", cluster.client, scores=False)


def live_harness(cluster: LiveCluster) -> OpenSearchHarness:
    """A real OpenSearch node: every promise, ranking included."""
    return OpenSearchHarness("opensearch-live", lambda: client_from_settings(cluster.settings("contract")), scores=True)
