"""`shoprank bench index`: the report puts the baseline beside the result, and the command runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.generated_catalogue import write_generated
from benchmarks.hashed_encoder import HashedEncoder
from benchmarks.index import _memory_growth, report_text
from indexer.readers import read_jsonl
from shoprank.cli import main
from shoprank.schema import VECTOR_DIM
from shoprank.settings import Settings
from tests.indexer.bad_catalogues import good


def row(name: str, docs: int, raw: float, e2e: float, rss: float, encoder: str = "model") -> dict[str, Any]:
    return {
        "name": name,
        "encoder": encoder,
        "raw": {"docs": docs, "docs_per_s": raw, "docs_per_s_before_after": [raw - 1, raw + 1], "peak_rss_mib": 1.0},
        "end_to_end": {
            "docs": docs,
            "docs_per_s": e2e,
            "seconds": docs / e2e,
            "peak_rss_mib": rss,
            "stage_seconds": {"embed": 0.9 * docs / e2e},
        },
        "ratio": e2e / raw,
    }


def test_report_shows_ratio_memory_growth_and_hardware() -> None:
    rows = [row("esci", 6764, 100.0, 90.0, 700.0), row("generated-200", 200, 5000.0, 450.0, 600.0, "hashed")]
    rows.append(row("generated-2000", 2000, 5000.0, 400.0, 660.0, "hashed"))
    results = {
        "model": {"version": "bi-1", "precision": "fp32"},
        "config": {"batch_size": 256, "threads": None},
        "hardware": {
            "cpu": "Test CPU",
            "usable_cores": 2,
            "logical_cores": 2,
            "memory_gib": 8.0,
            "os": "Linux",
            "python": "3.11",
            "load_average": [1.0, 1.0, 1.0],
            "load_average_end": [2.0, 1.0, 1.0],
        },
        "catalogues": rows,
        "memory": _memory_growth(rows),
    }
    assert results["memory"] == {
        "small": "generated-200",
        "large": "generated-2000",
        "peak_rss_growth": 1.1,
        "target": 1.5,
    }
    text = report_text(results)
    assert "Test CPU, 2 of 2 cores" in text
    assert "esci                 model     6764       100.0        90.0   0.90        0.90           700" in text
    assert "generated-2000      hashed     2000      5000.0       400.0   0.08" in text
    assert "peak RSS generated-2000 / generated-200 = 1.10" in text
    # The rows the model did not embed say so, and what the model would have taken.
    assert "encoder hashed: token hashing" in text
    assert "~0 min to embed 2000 products" in text
    assert _memory_growth(rows[:2]) is None
    assert "encoder hashed" not in report_text({**results, "catalogues": rows[:1], "memory": None})


def test_hashed_encoder_makes_unit_vectors_that_follow_shared_words() -> None:
    encoder = HashedEncoder()
    texts = ["Cotton kitchen towels, 6 pack", "cotton KITCHEN towels 12 pack", "Stainless steel saucepan", "", "!!"]
    vectors = encoder.encode(texts)
    assert vectors.shape == (5, VECTOR_DIM)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert np.array_equal(vectors, encoder.encode(texts))  # no per-process hash seed
    assert vectors[0] @ vectors[1] > 0.5 > abs(float(vectors[0] @ vectors[2]))


def test_generated_catalogue_has_distinct_products(tmp_path: Path) -> None:
    sample = [good("a", "Mug"), good("b", "Bowl")]
    rows = list(read_jsonl(write_generated(sample, 5, tmp_path / "g.jsonl")))
    ids = [r.data["id"] for r in rows if r.data]
    titles = [r.data["title"] for r in rows if r.data]
    assert ids == ["a-g0", "b-g1", "a-g2", "b-g3", "a-g4"]
    assert len(set(titles)) == 5


@pytest.mark.slow
@pytest.mark.parametrize("encoder", ["hashed", "model"])
def test_bench_index_command_measures_in_subprocesses(
    encoder: str,
    settings_for: Any,
    tiny_models: Path,
    shared_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings: Settings = settings_for(tiny_models)
    output = tmp_path / "bench.json"
    flags = ["--no-esci", "--generated", "200,600", "--raw-sample", "100", "--output", str(output), "--json"]
    flags += ["--generated-encoder", encoder]
    code = main(["--data-dir", str(settings.data_dir), "bench", "index", *flags])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(output.read_text())
    names = [c["name"] for c in printed["catalogues"]]
    assert names == ["generated-200", "generated-600"]
    for catalogue in printed["catalogues"]:
        assert catalogue["encoder"] == encoder
        assert catalogue["end_to_end"]["docs"] == int(catalogue["name"].split("-")[1])
        assert catalogue["raw"]["docs"] == 100
        assert catalogue["ratio"] > 0
        assert catalogue["end_to_end"]["peak_rss_mib"] > 50
    assert printed["memory"]["large"] == "generated-600"
    assert printed["hardware"]["logical_cores"] >= 1


@pytest.mark.opensearch
def test_bench_index_puts_opensearch_beside_lancedb_per_chunk_size(
    opensearch_cluster: Any,
    settings_for: Any,
    tiny_models: Path,
    shared_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from opensearchpy import OpenSearch

    settings: Settings = settings_for(tiny_models)
    flags = ["--no-esci", "--generated", "300", "--raw-sample", "100", "--with-opensearch"]
    flags += ["--bulk-chunk-docs", "50,500", "--opensearch-url", opensearch_cluster.url]
    assert main(["--data-dir", str(settings.data_dir), "bench", "index", *flags, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    (catalogue,) = printed["catalogues"]
    runs = catalogue["opensearch"]
    assert [run["chunk_docs"] for run in runs] == [50, 500]
    assert all(run["docs"] == 300 and run["rejected"] == 0 and run["docs_per_s"] > 0 for run in runs)
    assert printed["opensearch"] == {"url": opensearch_cluster.url, "local_node": False, "chunks": [50, 500]}
    assert runs[0]["node"] == {"rss_mib": None, "peak_rss_mib": None}  # a cluster the run did not start
    # Each run's throw-away alias is gone afterwards.
    client = OpenSearch(opensearch_cluster.url)
    assert not [name for name in client.indices.get(index="shoprank-bench-*") if name.startswith("shoprank-bench-")]
    text = report_text(printed)
    assert "OpenSearch beside LanceDB (" + opensearch_cluster.url in text
    assert "generated-300" in text.split("OpenSearch beside LanceDB")[1]
