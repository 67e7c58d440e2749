"""Versions on the embedded engine: each full reindex is a new table behind the alias, `--rollback`
makes the previous one live, keep-N prunes the rest, and leftovers of dead runs are cleaned."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from engines.base import EngineError
from engines.lance import LanceEngine
from shoprank.settings import Settings
from tests.indexer.bad_catalogues import good
from tests.indexer.conftest import CliRun, open_lance, write_jsonl


def reindex(shoprank: CliRun, tmp_path: Path, generation: int) -> str:
    """A full reindex whose single product says which generation it is."""
    rows = [good(f"gen{generation}", f"Catalogue generation {generation}")]
    code, report, err = shoprank("index", "--catalogue", str(write_jsonl(tmp_path / f"g{generation}.jsonl", rows)))
    assert code == 0, err
    return str(report["version"])


def tables(settings: Settings) -> list[str]:
    return sorted(p.name.removesuffix(".lance") for p in (settings.data_dir / "lancedb").glob("products-*.lance"))


def live_ids(settings: Settings) -> list[str]:
    return [p.id for p in open_lance(settings).get([f"gen{i}" for i in range(6)])]


@pytest.fixture
def settings(settings_for: Callable[..., Settings], tiny_models: Path) -> Settings:
    """Keep three versions (the live one and two for rollback)."""
    return settings_for(tiny_models, keep_versions=3)


def test_rollback_and_keep_n_pruning(shoprank: CliRun, settings: Settings, tmp_path: Path) -> None:
    versions = [reindex(shoprank, tmp_path, g) for g in range(4)]

    engine = open_lance(settings)
    assert engine.versions() == versions[::-1][:3]  # live first, the oldest pruned
    assert tables(settings) == sorted(versions[1:])
    assert live_ids(settings) == ["gen3"]

    code, report, _ = shoprank("index", "--rollback")
    assert (code, report["version"]) == (0, versions[2])
    assert live_ids(settings) == ["gen2"]
    assert engine.live_version() == versions[2]  # an open reader follows the alias at once
    assert tables(settings) == sorted(versions[1:3])  # the rolled-back version is dropped

    assert shoprank("index", "--rollback").report["version"] == versions[1]
    assert live_ids(settings) == ["gen1"]
    code, _, err = shoprank("index", "--rollback")
    assert code == 2
    assert "nothing to roll back to" in err
    assert live_ids(settings) == ["gen1"]


def test_leftovers_of_killed_runs_are_cleaned_by_the_next_run(
    shoprank: CliRun, settings: Settings, tmp_path: Path
) -> None:
    live = reindex(shoprank, tmp_path, 0)
    root = settings.data_dir / "lancedb"
    # A table a killed run was filling, one with no manifest at all, and a torn alias temp file.
    partial = LanceEngine(root).db.create_table("products-20000101t000000000000-dead", data=[{"id": "x"}])
    del partial
    (root / "products-20000101t000000000000-bare.lance" / "data").mkdir(parents=True)
    (root / "products.alias.tmp4242").write_text('{"live": "products-torn"')
    assert json.loads((root / "products.alias.json").read_text())["live"] == live

    assert live_ids(settings) == ["gen0"]  # search is not confused by the leftovers
    new = reindex(shoprank, tmp_path, 1)

    assert tables(settings) == sorted([live, new])
    assert not (root / "products.alias.tmp4242").exists()
    assert live_ids(settings) == ["gen1"]


def test_a_wrong_dimension_model_is_refused_before_anything_is_written(
    shoprank: CliRun, settings: Settings, tiny_models: Path, tmp_path: Path
) -> None:
    live = reindex(shoprank, tmp_path, 0)
    before = tables(settings)
    models = settings.data_dir / "models"
    models.unlink()
    shutil.copytree(tiny_models, models)
    meta_path = models / "bi-encoder" / "model.json"
    meta = json.loads(meta_path.read_text())
    catalogue = write_jsonl(tmp_path / "next.jsonl", [good("z", "Zester")])

    meta_path.write_text(json.dumps({**meta, "dim": 256}))
    code, _, err = shoprank("index", "--catalogue", str(catalogue), "--dead-letter", str(tmp_path / "dl.jsonl"))
    assert code == 2
    assert "makes 256-d vectors but the index holds 384-d ones" in err

    code, _, err = shoprank("index", "--incremental", "--changes", str(catalogue))
    assert code == 2
    assert "nothing was written" in err

    assert tables(settings) == before
    assert open_lance(settings).live_version() == live
    assert live_ids(settings) == ["gen0"]
    assert not (tmp_path / "dl.jsonl").exists()


def test_a_model_whose_output_contradicts_its_metadata_is_refused(
    shoprank: CliRun, settings: Settings, tmp_path: Path
) -> None:
    from indexer.dead_letter import DeadLetter
    from indexer.pipeline import DimensionMismatchError, Indexer

    class LyingEncoder:
        dim = 384

        def encode(self, texts: object) -> object:
            import numpy as np

            return np.zeros((1, 256), dtype=np.float32)

    engine = open_lance(settings)
    indexer = Indexer(engine, LyingEncoder(), DeadLetter(None))  # type: ignore[arg-type]
    with pytest.raises(DimensionMismatchError, match="shape"):
        indexer.full(write_jsonl(tmp_path / "c.jsonl", [good("a", "A")]))
    assert tables(settings) == []
    with pytest.raises(EngineError, match="index schema has 384"):
        engine.begin_version(256)
