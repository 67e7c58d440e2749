"""The measured figures in docs/quality.md and docs/benchmarks.md are rendered from docs/results/*.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from shoprank.cli import docs as docs_command
from shoprank.cli import main
from shoprank.results_docs import render_docs, render_table
from shoprank.settings import REPO_ROOT

DOCS = docs_command.DOCS
RESULTS = docs_command.RESULTS


def test_the_checked_in_docs_are_rendered_from_the_result_files() -> None:
    stale = [
        str(path.relative_to(REPO_ROOT))
        for path, text in render_docs(DOCS, RESULTS).items()
        if path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"{stale} differ from docs/results/*.json: run `shoprank docs` (or `make docs`)"


def test_every_result_file_says_when_where_and_how_it_was_measured() -> None:
    for path in sorted(RESULTS.glob("*.json")):
        result = json.loads(path.read_text(encoding="utf-8"))
        if "tables" in result:  # files in the results format (others are shown generically)
            missing = [key for key in ("title", "command", "date", "hardware") if not result.get(key)]
            assert not missing, f"{path.name}: add {missing}"


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, Path]:
    docs = tmp_path / "docs"
    shutil.copytree(RESULTS, docs / "results")
    for path in DOCS:
        shutil.copy(path, docs / path.name)
    return docs, docs / "results"


def test_a_changed_figure_changes_the_doc_and_check_catches_it(
    workspace: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    docs, results = workspace
    monkeypatch.setattr(docs_command, "DOCS", tuple(docs / p.name for p in DOCS))
    monkeypatch.setattr(docs_command, "RESULTS", results)
    assert main(["docs", "--check"]) == 0
    rerank = results / "bench-rerank.json"
    result = json.loads(rerank.read_text(encoding="utf-8"))
    result["tables"][0]["rows"][0][2] = 499
    rerank.write_text(json.dumps(result), encoding="utf-8")
    assert main(["docs", "--check"]) == 1
    assert main(["docs"]) == 0
    assert "| sidecar | 1 | 499 |" in (docs / "benchmarks.md").read_text(encoding="utf-8")
    assert main(["docs", "--check"]) == 0


def test_a_result_file_no_doc_names_is_shown_generically(workspace: tuple[Path, Path]) -> None:
    docs, results = workspace
    (results / "latency-gpu.json").write_text(
        json.dumps({"date": "2026-12-04", "hardware": "H200", "p50_ms": {"int8": 12.5, "fp16": 3.25}}),
        encoding="utf-8",
    )
    rendered = render_docs(tuple(docs / p.name for p in DOCS), results)
    benchmarks = rendered[docs / "benchmarks.md"]
    others = benchmarks.split("<!-- results:other -->")[1]
    assert "### latency-gpu" in others
    assert "Measured 2026-12-04 on H200" in others
    assert "| `p50_ms.fp16` | 3.25 |" in others
    assert "latency-gpu" not in rendered[docs / "quality.md"]


def test_a_doc_naming_a_missing_result_file_is_refused(workspace: tuple[Path, Path]) -> None:
    docs, results = workspace
    (results / "bench-index.json").unlink()
    with pytest.raises(ValueError, match=r"docs/results/bench-index\.json does not exist"):
        render_docs(tuple(docs / p.name for p in DOCS), results)


def test_cells_render_numbers_cis_and_bold_by_their_column() -> None:
    table = {
        "columns": [
            "stage",
            {"name": "NDCG", "decimals": 3},
            {"name": "change", "decimals": 1, "unit": "%", "signed": True},
        ],
        "rows": [
            ["rerank", {"value": 0.73, "ci": [0.65, 0.806], "bold": True}, -1.6],
            ["hybrid", 0.7, 12.0],
            ["none", None, 0],
        ],
    }
    assert render_table(table).splitlines() == [
        "| stage | NDCG | change |",
        "|---|---|---|",
        "| rerank | **0.730 [0.650, 0.806]** | \u22121.6% |",
        "| hybrid | 0.700 | +12.0% |",
        "| none | – | 0% |",
    ]
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        render_table({**table, "rows": [["a", 1]]})
