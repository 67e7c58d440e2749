"""`shoprank index`: full reindex into a new version, incremental changes, or rollback."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from shoprank.cli.common import add_command, print_json
from shoprank.settings import Settings


def register(subparsers: Any) -> None:
    """Add the `index` command."""
    parser = add_command(
        subparsers, "index", "index a catalogue (new version + atomic swap), apply changes, or roll back"
    )
    parser.add_argument("--catalogue", type=Path, help="catalogue file: OpenSearch bulk NDJSON, JSONL, CSV or Parquet")
    parser.add_argument("--format", choices=["bulk", "jsonl", "csv", "parquet"], help="default: from the file")
    parser.add_argument("--mapping", type=Path, help='JSON field mapping {"title": "product_name", ...}')
    parser.add_argument(
        "--dead-letter", type=Path, help="JSONL file for rejected rows (default: <data-dir>/dead-letter.jsonl)"
    )
    parser.add_argument("--incremental", action="store_true", help="upsert/delete into the live version")
    parser.add_argument("--changes", type=Path, help="changes file for --incremental (same formats)")
    parser.add_argument("--rollback", action="store_true", help="make the previous version live again")
    parser.add_argument("--batch-size", type=int, default=256, help="products embedded and written per batch")
    parser.add_argument(
        "--max-reject-ratio",
        type=float,
        default=0.05,
        help="abort before the swap when the engine refuses more than this share of rows",
    )
    parser.add_argument("--json", action="store_true", help="print the run summary as JSON (no progress bar)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the indexing job the flags ask for."""
    from engines.factory import open_engine

    engine = open_engine(settings)
    if args.rollback:
        version = engine.rollback()
        summary = {"mode": "rollback", "engine": engine.name, "version": version}
        print_json(summary) if args.json else print(f"rolled back: {settings.index_name} -> {version}")
        return 0

    from indexer.dead_letter import DeadLetter
    from indexer.pipeline import Indexer
    from indexer.validate import FieldMapping
    from shoprank.bi_encoder import BiEncoder
    from shoprank.onnx_session import resolve_device

    source = args.changes if args.incremental else args.catalogue
    if source is None:
        raise ValueError("say what to index: --catalogue PATH (full) or --incremental --changes PATH")
    dead_letter_path = args.dead_letter or settings.data_dir / "dead-letter.jsonl"
    encoder = BiEncoder(settings.models_dir(), device=resolve_device(settings.device))
    with DeadLetter(dead_letter_path) as dead_letter:
        indexer = Indexer(
            engine,
            encoder,
            dead_letter,
            FieldMapping.load(args.mapping),
            batch_size=args.batch_size,
            max_reject_ratio=args.max_reject_ratio,
            progress=not args.json and sys.stderr.isatty(),
        )
        report = indexer.incremental(source, args.format) if args.incremental else indexer.full(source, args.format)
    if args.json:
        print_json(report.as_dict())
    else:
        print(
            f"{report.mode} index of {source}: {report.indexed} indexed, {report.rejected} rejected, "
            f"{report.duplicates} duplicate ids (last wins), {report.deleted} deleted; "
            f"live version {report.version} ({report.docs_per_s} docs/s)"
        )
        if report.rejected:
            print(f"rejected rows and reasons: {report.dead_letter}")
    return 0
