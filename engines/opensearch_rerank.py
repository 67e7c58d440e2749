"""The `shoprank` search pipeline of the shoprank OpenSearch plugin (opensearch/plugin): its
`shoprank_embed` processor fills knn clauses from the query text (the sidecar's Embed) and its
`shoprank_rerank` processors send OpenSearch's own hits to the sidecar, so a shop's existing
`_search` requests come back reranked and diversified. Installed by
`shoprank opensearch setup --rerank-pipeline [NAME] [--default-pipeline]`.

The pipeline also fuses hybrid queries (the configured technique's phase processor): a search
runs one pipeline, so the rerank pipeline must do the hybrid pipeline's work as well.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opensearchpy import OpenSearch

from engines.base import EngineError
from engines.opensearch_assets import _read_json, pipeline_body
from shoprank.settings import HybridTechnique, Settings
from shoprank.ubi_log import QUERIES

RERANK_PIPELINE_FILE = "search-pipelines/shoprank-rerank.json"
DEFAULT_RERANK_PIPELINE = "shoprank"
PROCESSOR = "shoprank_rerank"
EMBED_PROCESSOR = "shoprank_embed"
# The index setting that makes a pipeline the default of every search on the index.
DEFAULT_PIPELINE_SETTING = "index.search.default_pipeline"


@dataclass(frozen=True)
class RerankPipeline:
    """What the rerank pipeline is named and points at."""

    name: str
    targets: tuple[str, ...]
    deadline_ms: int
    window: int
    as_default: bool = False
    embed_deadline_ms: int = 200
    ubi_application: str | None = None  # None: the plugin writes no UBI query records

    @classmethod
    def from_settings(
        cls, settings: Settings, name: str, as_default: bool, targets: str | None = None
    ) -> RerankPipeline:
        """`targets` (comma-separated host:port, default settings.sidecar), the settings' deadline and window."""
        listed = tuple(t.strip() for t in (targets or settings.sidecar).split(",") if t.strip())
        if not listed:
            raise EngineError("no sidecar address: pass --rerank-targets HOST:PORT[,HOST:PORT]")
        bad = [t for t in listed if not re.fullmatch(r"[^\s/:]+:[0-9]{1,5}", t)]
        if bad:
            raise EngineError(f"rerank targets {bad} are not host:port, e.g. 10.0.0.5:50051")
        return cls(
            name,
            listed,
            settings.sidecar_deadline_ms,
            settings.rerank_window,
            as_default,
            settings.embed_deadline_ms,
            settings.ubi_application if settings.ubi_capture else None,
        )


def rerank_pipeline_body(
    assets: Path, pipeline: RerankPipeline, technique: HybridTechnique, knn_weight: float
) -> dict[str, Any]:
    """The pipeline body: the asset with the window, targets, deadline and the hybrid fusion filled in."""
    body = copy.deepcopy(_read_json(assets / RERANK_PIPELINE_FILE))
    try:
        (request,) = [p[PROCESSOR] for p in body["request_processors"] if PROCESSOR in p]
        (response,) = [p[PROCESSOR] for p in body["response_processors"] if PROCESSOR in p]
        (embed,) = [p[EMBED_PROCESSOR] for p in body["request_processors"] if EMBED_PROCESSOR in p]
    except (KeyError, ValueError) as exc:
        raise EngineError(
            f"{assets / RERANK_PIPELINE_FILE}: needs one {PROCESSOR} request and response processor "
            f"and one {EMBED_PROCESSOR} request processor"
        ) from exc
    request["window"] = pipeline.window
    embed["targets"] = list(pipeline.targets)
    embed["deadline_ms"] = pipeline.embed_deadline_ms
    if pipeline.ubi_application is not None:
        # The plugin writes each served page's UBI query record to the node's ubi_queries index.
        response["ubi"] = {"index": QUERIES, "application": pipeline.ubi_application}
    response["targets"] = list(pipeline.targets)
    response["deadline_ms"] = pipeline.deadline_ms
    body["phase_results_processors"] = pipeline_body(assets, technique, knn_weight).get("phase_results_processors", [])
    return body


def install_rerank_pipeline(
    client: OpenSearch,
    assets: Path,
    alias: str,
    pipeline: RerankPipeline,
    technique: HybridTechnique,
    knn_weight: float,
) -> None:
    """PUT the pipeline; as the default, also set it on the alias's live indices (the index template
    carries it for the indices a reindex creates: see with_default_pipeline)."""
    body = rerank_pipeline_body(assets, pipeline, technique, knn_weight)
    client.search_pipeline.put(id=pipeline.name, body=body)
    if pipeline.as_default and client.indices.exists_alias(name=alias):
        client.indices.put_settings(index=alias, body={DEFAULT_PIPELINE_SETTING: pipeline.name})


def with_default_pipeline(template: dict[str, Any], name: str) -> dict[str, Any]:
    """The index template with `name` as its indices' default search pipeline."""
    out = copy.deepcopy(template)
    settings = out.setdefault("template", {}).setdefault("settings", {})
    settings.setdefault("index", {}).setdefault("search", {})["default_pipeline"] = name
    return out
