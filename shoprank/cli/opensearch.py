"""`shoprank opensearch setup`: install the index template, hybrid search pipelines and the
shop-box search template on an OpenSearch cluster."""

from __future__ import annotations

import argparse
from typing import Any

from shoprank.cli.common import add_command, print_json
from shoprank.settings import Settings


def register(subparsers: Any) -> None:
    """Add the `opensearch` command group."""
    parser = subparsers.add_parser(
        "opensearch", help="OpenSearch cluster tasks", description="OpenSearch cluster tasks", allow_abbrev=False
    )
    actions = parser.add_subparsers(dest="opensearch_command", required=True, metavar="ACTION")
    setup = add_command(
        actions, "setup", "install the index template, hybrid search pipelines and search template (idempotent)"
    )
    setup.add_argument("--json", action="store_true", help="print what was installed as JSON")
    setup.set_defaults(run=run_setup)


def run_setup(args: argparse.Namespace, settings: Settings) -> int:
    """Apply the assets in settings.opensearch_dir to settings.opensearch_url."""
    from opensearchpy.exceptions import SerializationError, TransportError

    from engines.opensearch_client import client_from_settings, engine_error
    from engines.opensearch_setup import apply_setup

    client = client_from_settings(settings)
    try:
        report = apply_setup(client, settings.opensearch_dir, settings.index_name, settings.hybrid_weight_knn)
    except (TransportError, SerializationError) as exc:  # refused, unreachable, or not OpenSearch's JSON
        raise engine_error(exc, settings.opensearch_url) from exc
    if args.json:
        print_json(report.as_dict())
    else:
        print(
            f"installed on {settings.opensearch_url}: index template {report.index_template} "
            f"({', '.join(report.index_patterns)}), search pipelines "
            f"{', '.join(report.search_pipelines.values())}, search template {report.search_template}; "
            f"hybrid queries use {report.search_pipelines[settings.opensearch_hybrid_technique]}"
        )
    return 0
