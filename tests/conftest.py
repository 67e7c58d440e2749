"""Shared fixtures: data paths, model directories, settings pointing at temp dirs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shoprank.settings import REPO_ROOT, Settings
from tests.models import build_tiny_models, real_models_dir
from tests.opensearch_live import LiveCluster, live_cluster

SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

pytest_plugins = ["tests.tiers"]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (ESCI, WANDS); tests that need it skip when it is absent."""
    if not (SHARED_DATA / "esci" / "products.ndjson").is_file():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Models dir with tiny random bi-/cross-encoders: for behaviour, not quality."""
    return build_tiny_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def real_models() -> Path:
    """Models dir with the real MiniLM bi-encoder and cross-encoder (cached across runs)."""
    return real_models_dir()


@pytest.fixture
def settings_for(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Factory: Settings whose data dir is a fresh temp dir with the given models linked in."""

    def make(models: Path, **overrides: object) -> Settings:
        data_dir = tmp_path / "data"
        data_dir.mkdir(exist_ok=True)
        link = data_dir / "models"
        if not link.exists():
            link.symlink_to(models, target_is_directory=True)
        return Settings(data_dir=data_dir, **overrides)  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="session")
def spec_validator():  # type: ignore[no-untyped-def]
    """Validator of OpenSearch requests/responses against ../shared/opensearch-api-spec."""
    from tests.opensearch_spec import SPEC_DIR, SpecValidator

    if not (SPEC_DIR / "spec").is_dir():
        pytest.skip(f"OpenSearch API spec not found at {SPEC_DIR}")
    return SpecValidator()


@pytest.fixture(scope="session")
def opensearch_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    """A real OpenSearch for the session: OPENSEARCH_URL, else one local node (JDK + Maven), else skip."""
    yield from live_cluster(tmp_path_factory.mktemp("opensearch-node"))
