"""`shoprank bench index --with-opensearch`: the same catalogues indexed into OpenSearch beside LanceDB.

The cluster is the one at --opensearch-url, or a local node the run starts (and so can read the
RSS of); each run works under a throw-away alias whose indices and assets are removed after it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoprank.settings import REPO_ROOT, Settings


@dataclass(frozen=True)
class BenchCluster:
    """Where the benchmark's OpenSearch listens; the node's pid when the run started it (for its RSS)."""

    url: str
    pid: int | None = None


@contextmanager
def opensearch_for_bench(settings: Settings, work: Path) -> Iterator[BenchCluster]:
    """The cluster at settings.opensearch_url, or a local node in `work`, stopped afterwards."""
    if settings.opensearch_url:
        yield BenchCluster(settings.opensearch_url)
        return
    from engines.opensearch_node import LocalNode, free_port, resolve

    with LocalNode(resolve(REPO_ROOT / "opensearch" / "node"), work / "opensearch-node", http_port=free_port()) as node:
        node.start()
        yield BenchCluster(node.url, node.process.pid if node.process else None)


def node_memory_mib(pid: int | None) -> dict[str, float | None]:
    """Current and peak RSS of the node's process (None for a cluster the run did not start)."""
    out: dict[str, float | None] = {"rss_mib": None, "peak_rss_mib": None}
    if pid is None:
        return out
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out["rss_mib" if line.startswith("VmRSS") else "peak_rss_mib"] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return out


def opensearch_lines(results: dict[str, Any]) -> list[str]:
    """The report's OpenSearch rows (none when the run had no cluster)."""
    if "opensearch" not in results:
        return []
    where = "a local node started for the run" if results["opensearch"]["local_node"] else results["opensearch"]["url"]
    lines = [
        "",
        f"OpenSearch beside LanceDB ({where}; same encoder and batches, bulk chunk sizes compared):",
        f"{'catalogue':<18}{'chunk docs':>11}{'docs/s':>9}{'vs lancedb':>11}{'client peak MiB':>16}"
        f"{'node RSS MiB':>13}{'node peak MiB':>14}",
    ]
    for row in results["catalogues"]:
        lance = row["end_to_end"]["docs_per_s"]
        for run in row.get("opensearch", []):
            node = run["node"]
            lines.append(
                f"{row['name']:<18}{run['chunk_docs']:>11}{run['docs_per_s']:>9.1f}{run['docs_per_s'] / lance:>11.2f}"
                f"{run['peak_rss_mib']:>16.0f}{_mib(node['rss_mib']):>13}{_mib(node['peak_rss_mib']):>14}"
            )
    return lines


def _mib(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def end_to_end_opensearch(job: dict[str, Any], encoder: Any, peak_rss_mib: Callable[[], float]) -> dict[str, Any]:
    """`Indexer.full` of the job's catalogue into a fresh alias on the job's cluster, removed afterwards."""
    import uuid

    from engines.opensearch import OpenSearchEngine
    from engines.opensearch_setup import apply_setup, remove_setup
    from indexer.dead_letter import DeadLetter
    from indexer.pipeline import Indexer

    settings = Settings(
        engine="opensearch",
        opensearch_url=job["opensearch_url"],
        index_name=f"shoprank-bench-{uuid.uuid4().hex[:8]}",
        opensearch_bulk_chunk_docs=job["chunk_docs"],
    )
    engine = OpenSearchEngine.from_settings(settings)
    apply_setup(engine.client, settings.opensearch_dir, settings.index_name, settings.hybrid_weight_knn)
    try:
        indexer = Indexer(engine, encoder, DeadLetter(None), batch_size=job["batch_size"])
        started = time.perf_counter()
        report = indexer.full(Path(job["catalogue"]))
        seconds = time.perf_counter() - started
    finally:
        remove_setup(engine.client, settings.index_name)
    return {
        "docs": report.indexed,
        "rejected": report.rejected,
        "chunk_docs": job["chunk_docs"],
        "seconds": round(seconds, 3),
        "docs_per_s": round(report.indexed / seconds, 2),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "stage_seconds": report.stage_seconds,
    }
