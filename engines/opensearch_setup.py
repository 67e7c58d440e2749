"""Installing the OpenSearch assets on a cluster: index template, hybrid search pipelines and
the shop-box search template (what `shoprank opensearch setup` does). Idempotent: each PUT
replaces what an earlier setup installed; existing indices keep their mappings."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from opensearchpy import OpenSearch

from engines.base import EngineError
from engines.opensearch_assets import (
    PIPELINE_FILES,
    check_rrf_pipeline,
    index_template_body,
    pipeline_body,
    pipeline_name,
    search_template_body,
    search_template_id,
    template_name,
    template_vector_dim,
)
from engines.opensearch_rerank import RerankPipeline, install_rerank_pipeline, with_default_pipeline
from shoprank.schema import VECTOR_DIM
from shoprank.settings import HybridTechnique

log = logging.getLogger(__name__)


@dataclass
class SetupReport:
    """What setup installed, by name."""

    index_template: str
    index_patterns: list[str]
    search_pipelines: dict[str, str] = field(default_factory=dict)
    search_template: str = ""
    rerank_pipeline: str = ""
    default_pipeline: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def setup_bodies(assets: Path, alias: str, knn_weight: float) -> dict[str, dict[str, Any]]:
    """Every body setup sends, by a label; checked before anything is sent."""
    template = index_template_body(assets, alias)
    if template_vector_dim(template) != VECTOR_DIM:
        raise EngineError(
            f"{assets / 'index-template.json'}: vector dimension {template_vector_dim(template)} is not the "
            f"bi-encoder's {VECTOR_DIM} (shoprank/schema.py)"
        )
    bodies = {"index_template": template, "search_template": search_template_body(assets)}
    for technique in PIPELINE_FILES:
        body = pipeline_body(assets, technique, knn_weight)
        check_rrf_pipeline(body)
        bodies[f"pipeline:{technique}"] = body
    return bodies


def apply_setup(
    client: OpenSearch,
    assets: Path,
    alias: str,
    knn_weight: float,
    rerank: RerankPipeline | None = None,
    technique: HybridTechnique = "min_max",
) -> SetupReport:
    """PUT the index template, both hybrid pipelines and the search template; with `rerank`, the
    shoprank plugin's rerank pipeline too (fusing hybrid queries with `technique`), optionally as
    the default pipeline of the alias's indices."""
    bodies = setup_bodies(assets, alias, knn_weight)
    if rerank is not None and rerank.as_default:
        bodies["index_template"] = with_default_pipeline(bodies["index_template"], rerank.name)
    report = SetupReport(
        index_template=template_name(alias), index_patterns=list(bodies["index_template"]["index_patterns"])
    )
    if rerank is not None:
        # Before the template: the template and the live indices name it as their default.
        install_rerank_pipeline(client, assets, alias, rerank, technique, knn_weight)
        report.rerank_pipeline = rerank.name
        report.default_pipeline = rerank.name if rerank.as_default else ""
    client.indices.put_index_template(name=report.index_template, body=bodies["index_template"])
    for technique in PIPELINE_FILES:
        name = pipeline_name(alias, technique)
        client.search_pipeline.put(id=name, body=bodies[f"pipeline:{technique}"])
        report.search_pipelines[technique] = name
    report.search_template = search_template_id(alias)
    client.put_script(id=report.search_template, body=bodies["search_template"])
    log.info("installed %s", report)
    return report


def remove_setup(client: OpenSearch, alias: str) -> None:
    """Delete what setup and indexing created for `alias`: its indices, template, pipelines and
    search template (benchmarks and tests that work under a throw-away alias)."""
    client.indices.delete(index=f"{alias}-*", ignore_unavailable=True, expand_wildcards="all")
    client.indices.delete_index_template(name=template_name(alias), ignore=404)
    for technique in PIPELINE_FILES:
        client.search_pipeline.delete(id=pipeline_name(alias, technique), ignore=404)
    client.delete_script(id=search_template_id(alias), ignore=404)
