"""The engines the contract suite runs against: LanceDB, the recording OpenSearch fake (write side
and read plumbing; it does not score), and the session's real OpenSearch node (tests/opensearch_live.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine_contract.harness import EngineHarness, LanceHarness, fake_harness, live_harness
from tests.opensearch_live import LiveCluster, remove_alias_assets
from tests.opensearch_spec import SpecValidator
from tests.recording_transport import FakeCluster

IMPLEMENTATIONS = ["lancedb", "opensearch-fake", pytest.param("opensearch-live", marks=pytest.mark.opensearch)]


@pytest.fixture(params=IMPLEMENTATIONS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EngineHarness]:
    """One harness per engine implementation; a test runs once for each."""
    if request.param == "lancedb":
        yield LanceHarness(tmp_path)
        return
    if request.param == "opensearch-live":
        live: LiveCluster = request.getfixturevalue("opensearch_cluster")
        harness = live_harness(live)
        yield harness
        for engine in harness.engines:
            remove_alias_assets(engine.client, engine.alias)
        return
    validator: SpecValidator = request.getfixturevalue("spec_validator")
    cluster = FakeCluster(validator)
    yield fake_harness(cluster)
    cluster.assert_valid()


@pytest.fixture
def scoring_harness(harness: EngineHarness) -> EngineHarness:
    """A harness whose engine ranks (retrieval semantics are not asserted on a fake that does not score)."""
    if not harness.scores:
        pytest.skip(f"{harness.name} stores documents but does not rank them")
    return harness
