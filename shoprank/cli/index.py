"""`shoprank index`: full reindex into a new version, incremental changes, or rollback."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoprank.cli.common import add_command, print_json
from shoprank.errors import UserInputError
from shoprank.settings import Settings

if TYPE_CHECKING:
    from indexer.pipeline import IndexReport


def register(subparsers: Any) -> None:
    """Add the `index` command."""
    parser = add_command(
        subparsers,
        "index",
        "index a catalogue (new version + atomic swap), apply changes, or roll back",
        ("general", "engine", "index", "models", "intent"),
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

    if args.rollback:
        engine = open_engine(settings)
        version = engine.rollback()
        summary = {"mode": "rollback", "engine": engine.name, "version": version}
        print_json(summary) if args.json else print(f"rolled back: {settings.index_name} -> {version}")
        return 0

    from indexer.dead_letter import DeadLetter
    from indexer.pipeline import IndexAbortedError, Indexer, progress_wanted
    from indexer.validate import FieldMapping
    from intent.store import models_dir
    from shoprank.bi_encoder import BiEncoder

    source = args.changes if args.incremental else args.catalogue
    if source is None:
        raise UserInputError("say what to index: --catalogue PATH (full) or --incremental --changes PATH")
    if args.batch_size < 1:
        raise UserInputError("--batch-size must be at least 1")
    mapping = FieldMapping.load(args.mapping)  # a bad mapping is refused before the engine is touched
    engine = open_engine(settings)
    dead_letter_path = args.dead_letter or settings.data_dir / "dead-letter.jsonl"
    # The pipeline's reader and writer threads share the cores: idle onnxruntime threads must not spin.
    encoder = BiEncoder.from_settings(settings, spin=False)
    with DeadLetter(dead_letter_path) as dead_letter:
        indexer = Indexer(
            engine,
            encoder,
            dead_letter,
            mapping,
            batch_size=args.batch_size,
            max_reject_ratio=args.max_reject_ratio,
            progress=progress_wanted(args.json),
            intent_dir=models_dir(settings.data_dir, settings.engine, settings.index_name),
        )
        try:
            report = indexer.incremental(source, args.format) if args.incremental else indexer.full(source, args.format)
        except IndexAbortedError as aborted:
            _print_report(aborted.report, source, args.json)
            print(f"shoprank index: {aborted}", file=sys.stderr)
            return 1
    _print_report(report, source, args.json)
    return 0


def _print_report(report: IndexReport, source: Path, as_json: bool) -> None:
    if as_json:
        print_json(report.as_dict())
        return
    state = "NOT made live, live version stays" if report.aborted else "live version"
    print(
        f"{report.mode} index of {source}: {report.indexed} indexed, {report.rejected} rejected, "
        f"{report.duplicates} duplicate ids (last wins), {report.deleted} deleted; "
        f"{state} {report.version} ({report.docs_per_s} docs/s)"
    )
    if report.rejected:
        print(f"rejected rows and reasons: {report.dead_letter}")
    if report.truncated:
        fields = ", ".join(f"{name} {count}" for name, count in sorted(report.truncated_fields.items()))
        print(f"{report.truncated} products stored with fields cut to the reranker's limits ({fields})")
