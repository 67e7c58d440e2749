"""A reindex killed with SIGKILL mid-write leaves the alias on the old complete version, search keeps
answering from it, and the next run cleans the orphaned partial table and completes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engines.base import RetrievalQuery
from shoprank.settings import REPO_ROOT, Settings
from tests.indexer.bad_catalogues import good
from tests.indexer.conftest import CliRun, open_lance, write_jsonl

WAIT_FOR_PARTIAL_S = 180.0


def partial_tables(root: Path, live: str) -> list[Path]:
    """Tables other than the live one that already hold written data files."""
    return [
        path
        for path in root.glob("products-*.lance")
        if path.name != f"{live}.lance" and any((path / "data").glob("*.lance"))
    ]


def test_sigkill_mid_reindex_keeps_the_old_version_live_and_the_next_run_cleans_up(
    shoprank: CliRun, settings: Settings, tmp_path: Path
) -> None:
    old = [good(f"old{i}", f"Old catalogue towel {i}") for i in range(20)]
    code, first, _ = shoprank("index", "--catalogue", str(write_jsonl(tmp_path / "old.jsonl", old)))
    assert code == 0
    live = first["version"]
    root = settings.data_dir / "lancedb"
    big = write_jsonl(tmp_path / "big.jsonl", [good(f"new{i}", f"New catalogue mug {i}") for i in range(30_000)])

    command = [sys.executable, "-m", "shoprank", "--data-dir", str(settings.data_dir), "index"]
    command += ["--catalogue", str(big), "--batch-size", "32", "--json"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + WAIT_FOR_PARTIAL_S
        while not partial_tables(root, live):
            assert process.poll() is None, f"the reindex ended before it could be killed: {process.communicate()}"
            assert time.monotonic() < deadline, "the reindex wrote nothing in time"
            time.sleep(0.02)
        # Search answers from the live version while the new one is being written...
        hits = open_lance(settings).retrieve(RetrievalQuery("towel", None, mode="bm25", size=50)).hits
        assert {h.product.id for h in hits} == {p["id"] for p in old}
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)

    # ... and after the kill: same alias, same answers, the partial table left behind.
    assert json.loads((root / "products.alias.json").read_text())["live"] == live
    engine = open_lance(settings)
    assert engine.live_version() == live
    assert engine.count() == len(old)
    hits = engine.retrieve(RetrievalQuery("towel", None, mode="bm25", size=50)).hits
    assert {h.product.id for h in hits} == {p["id"] for p in old}
    orphans = partial_tables(root, live)
    assert len(orphans) == 1

    new = [good(f"next{i}", f"Next catalogue bowl {i}") for i in range(10)]
    code, report, err = shoprank("index", "--catalogue", str(write_jsonl(tmp_path / "next.jsonl", new)))

    assert code == 0, err
    assert report["indexed"] == len(new)
    assert not orphans[0].exists()
    on_disk = sorted(p.name for p in root.glob("products-*.lance"))
    assert on_disk == sorted(f"{version}.lance" for version in [live, report["version"]])
    assert open_lance(settings).count() == len(new)
