"""`shoprank eval-parity` against the real node: one catalogue in OpenSearch and LanceDB, compared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engines.opensearch import OpenSearchEngine
from tests.opensearch_live import LiveCluster, remove_alias_assets, unique_alias

pytestmark = pytest.mark.opensearch

WORDS = ("kitchen towel", "trail shoe", "electric kettle", "coffee mug", "yoga mat")


def test_eval_parity_compares_the_node_and_lancedb_on_the_same_catalogue(
    opensearch_cluster: LiveCluster,
    tiny_models: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from shoprank.cli import main

    if opensearch_cluster.password:
        pytest.skip("the local-node commands carry no credentials")
    alias = unique_alias()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "models").symlink_to(tiny_models, target_is_directory=True)
    for name, value in {
        "SHOPRANK_OPENSEARCH_URL": opensearch_cluster.url,
        "SHOPRANK_INDEX_NAME": alias,
        "SHOPRANK_DATA_DIR": str(data_dir),
    }.items():
        monkeypatch.setenv(name, value)
    catalogue = tmp_path / "products.jsonl"
    catalogue.write_text(
        "\n".join(
            json.dumps({"id": f"p{i}", "title": f"{WORDS[i % 5]} model {i}", "brand": f"b{i % 3}", "price": i + 1})
            for i in range(30)
        )
    )
    judgments = tmp_path / "judgments.csv"
    judgments.write_text(
        "query,product_id,rating\n"
        + "".join(f"{WORDS[q]},p{i},{100 if i % 5 == q else 0}\n" for q in range(5) for i in range(0, 30, 2))
    )
    try:
        assert main(["opensearch", "setup", "--engine", "opensearch"]) == 0
        assert main(["index", "--engine", "opensearch", "--catalogue", str(catalogue), "--json"]) == 0
        capsys.readouterr()
        args = ["eval-parity", "--judgments", str(judgments), "--catalogue", str(catalogue), "--json"]
        assert main([*args, "--output", str(tmp_path / "parity.json")]) == 0
        report = json.loads(capsys.readouterr().out)
    finally:
        remove_alias_assets(OpenSearchEngine.from_settings(opensearch_cluster.settings(alias)).client, alias)
    assert json.loads((tmp_path / "parity.json").read_text()) == report
    assert report["products"] == {"opensearch": 30, "lancedb": 30}
    assert report["queries"] == 5
    assert "warning" not in report
    knn = report["stages"]["knn"]
    # The same vectors on both engines: a window beyond the catalogue holds every product on each.
    assert knn["overlap@window"] == 1.0
    assert knn["overlap@10"] >= 0.9
    for stage in ("bm25", "hybrid"):
        for engine in ("opensearch", "lancedb"):
            # Each query's exact products carry its words, so both engines find them near the top.
            assert report["stages"][stage]["ndcg@10"][engine]["mean"] > 0.5
