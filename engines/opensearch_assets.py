"""The OpenSearch assets under opensearch/ (JSON and one mustache template) and the names
`shoprank opensearch setup` installs them under.

Everything is named after the alias (settings.index_name), so two shops (or two test runs)
on one cluster never share a template, pipeline or search template:

- index template `<alias>` for the physical indices `<alias>-*`
- search pipelines `<alias>-hybrid-min-max` and `<alias>-hybrid-rrf`
- stored search template `<alias>-shop-box`
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from engines.base import PRICE_BUCKETS, EngineError, price_bucket_label
from engines.bm25_fields import MINIMUM_SHOULD_MATCH, boosted_field_list
from engines.fusion import RRF_RANK_CONSTANT
from shoprank.settings import HybridTechnique

INDEX_TEMPLATE_FILE = "index-template.json"
PIPELINE_FILES: dict[HybridTechnique, str] = {
    "min_max": "search-pipelines/hybrid-min-max.json",
    "rrf": "search-pipelines/hybrid-rrf.json",
}
SEARCH_TEMPLATE_FILE = "search-templates/shop-box.mustache"


def template_name(alias: str) -> str:
    """Name of the index template that shapes the alias's physical indices."""
    return alias


def pipeline_name(alias: str, technique: HybridTechnique) -> str:
    """Name of the hybrid search pipeline of one fusion technique."""
    return f"{alias}-hybrid-{technique.replace('_', '-')}"


def search_template_id(alias: str) -> str:
    """Id of the stored shop-box search template."""
    return f"{alias}-shop-box"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise EngineError(f"{path} is missing: point --opensearch-dir at the repository's opensearch/ folder") from exc
    if not isinstance(data, dict):
        raise EngineError(f"{path} must hold a JSON object")
    return data


def index_template_body(assets: Path, alias: str) -> dict[str, Any]:
    """The index template, its pattern bound to this alias's physical indices."""
    body = _read_json(assets / INDEX_TEMPLATE_FILE)
    body["index_patterns"] = [f"{alias}-*"]
    return body


def template_vector_dim(template: dict[str, Any]) -> int | None:
    """The `vector` field's dimension in an index template (as stored or as read back), if any."""
    mappings = (template.get("template") or {}).get("mappings") or {}
    vector = (mappings.get("properties") or {}).get("vector") or {}
    dim = vector.get("dimension")
    return int(dim) if dim is not None else None


def template_index_settings(template: dict[str, Any]) -> dict[str, Any]:
    """The template's `index.*` settings as one flat dict, whether written nested or dotted."""
    settings = (template.get("template") or {}).get("settings") or {}
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if key == "index" and isinstance(value, dict):
            flat.update(value)
        elif key.startswith("index."):
            flat[key.removeprefix("index.")] = value
        elif key != "analysis":
            flat[key] = value
    return flat


def pipeline_body(assets: Path, technique: HybridTechnique, knn_weight: float) -> dict[str, Any]:
    """One hybrid search pipeline; min-max weights come from settings.hybrid_weight_knn."""
    body = copy.deepcopy(_read_json(assets / PIPELINE_FILES[technique]))
    for processor in body.get("phase_results_processors", []):
        normalization = processor.get("normalization-processor")
        if normalization is not None:
            normalization["combination"]["parameters"]["weights"] = [round(1.0 - knn_weight, 6), round(knn_weight, 6)]
    return body


def search_template_source(assets: Path) -> str:
    """The shop-box mustache source, checked against the shared field boosts and facet buckets."""
    path = assets / SEARCH_TEMPLATE_FILE
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise EngineError(f"{path} is missing: point --opensearch-dir at the repository's opensearch/ folder") from exc
    check_search_template(source, path)
    return source


def search_template_body(assets: Path) -> dict[str, Any]:
    """The stored-script body that installs the shop-box search template."""
    return {"script": {"lang": "mustache", "source": search_template_source(assets)}}


def check_search_template(source: str, path: Path | str = SEARCH_TEMPLATE_FILE) -> None:
    """Refuse a shop-box template whose fields, boosts or price buckets drifted from the code's."""
    fields = [json.loads(match) for match in re.findall(r'"fields":\s*(\[[^\]]*\])', source)]
    expected = boosted_field_list()
    if not fields or any(f != expected for f in fields):
        raise EngineError(f"{path}: multi_match fields {fields} differ from engines/bm25_fields.py {expected}")
    if f'"minimum_should_match": "{MINIMUM_SHOULD_MATCH}"' not in source:
        raise EngineError(f"{path}: minimum_should_match differs from engines/bm25_fields.py {MINIMUM_SHOULD_MATCH!r}")
    for low, high in PRICE_BUCKETS:
        if f'"key": "{price_bucket_label(low, high)}"' not in source:
            raise EngineError(f"{path}: price bucket {price_bucket_label(low, high)} of engines/base.py is missing")


def check_rrf_pipeline(body: dict[str, Any]) -> None:
    """Refuse an RRF pipeline whose rank constant drifted from engines/fusion.py (the embedded engine's)."""
    for processor in body.get("phase_results_processors", []):
        ranker = processor.get("score-ranker-processor")
        if ranker is not None and ranker["combination"].get("rank_constant", 60) != RRF_RANK_CONSTANT:
            raise EngineError(f"RRF rank_constant differs from engines/fusion.py ({RRF_RANK_CONSTANT})")
