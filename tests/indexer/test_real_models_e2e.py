"""With the real MiniLM bi-encoder: a slice of the ESCI bulk file with bad rows appended is indexed,
kNN finds products by meaning, and an incremental upsert is found at once."""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from engines.base import RetrievalQuery
from shoprank.bi_encoder import BiEncoder
from shoprank.settings import Settings
from tests.indexer.bad_catalogues import good
from tests.indexer.conftest import CliRun, open_lance, write_jsonl

pytestmark = pytest.mark.e2e
SLICE = 200  # products from the start of the ESCI sample


@pytest.fixture
def settings(settings_for: Callable[..., Settings], real_models: Path) -> Settings:
    """Settings on a fresh data dir with the real models."""
    return settings_for(real_models)


def knn_ids(settings: Settings, query: str, k: int = 3) -> list[str]:
    vector = BiEncoder.from_settings(settings).encode_one(query)
    result = open_lance(settings).retrieve(RetrievalQuery("", np.asarray(vector), mode="knn", size=k))
    return [h.product.id for h in result.hits]


def test_esci_slice_with_bad_rows_then_an_incremental_upsert(
    shoprank: CliRun, settings: Settings, shared_data: Path, tmp_path: Path
) -> None:
    with (shared_data / "esci" / "products.ndjson").open("rb") as source:
        head = list(islice(source, 2 * SLICE))
    catalogue = tmp_path / "esci-slice.ndjson"
    catalogue.write_bytes(
        b"".join(head)
        + b'{"index": {"_id": "bad-json"}}\n{"title": "Truncated\n'
        + b'{"index": {"_id": "bad-price"}}\n'
        + json.dumps({"title": "Priced at minus one", "price": -1}).encode()
        + b"\n"
    )
    kindle = json.loads(head[0])["index"]["_id"]

    code, report, err = shoprank("index", "--catalogue", str(catalogue), "--dead-letter", str(tmp_path / "dl.jsonl"))

    assert code == 0, err
    assert (report["indexed"], report["rejected"]) == (SLICE, 2)
    assert kindle in knn_ids(settings, "waterproof e-reader for reading books")

    changes = write_jsonl(
        tmp_path / "changes.jsonl",
        [good("zebra-1", "Zebra Print Fleece Throw Blanket", category=["Home", "Bedding", "Throws"])],
    )
    code, report, err = shoprank("index", "--incremental", "--changes", str(changes))
    assert code == 0, err
    assert knn_ids(settings, "striped animal pattern blanket for the sofa", k=1) == ["zebra-1"]
