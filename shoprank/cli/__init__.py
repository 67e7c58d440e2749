"""The `shoprank` command line: one subcommand module per job."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from shoprank.cli import (
    bench,
    clicks,
    docs,
    eval_facets,
    eval_intent,
    eval_parity,
    eval_personal,
    eval_pool,
    evaluate,
    index,
    intent,
    ltr,
    models,
    openapi,
    opensearch,
    search,
    serve,
    sidecar,
    train,
)
from shoprank.errors import UserError
from shoprank.log_format import log_handler
from shoprank.settings import add_settings_flags, settings_from_args

COMMANDS = (
    models,
    index,
    sidecar,
    search,
    serve,
    opensearch,
    bench,
    evaluate,
    eval_pool,
    eval_facets,
    eval_intent,
    eval_parity,
    ltr,
    eval_personal,
    intent,
    train,
    clicks,
    openapi,
    docs,
)


def build_parser() -> argparse.ArgumentParser:
    """The full CLI parser; every subcommand also accepts every settings flag."""
    parser = argparse.ArgumentParser(
        prog="shoprank",
        allow_abbrev=False,
        description="Shop search: index a catalogue, rerank and diversify with a cross-encoder sidecar.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    add_settings_flags(parser)  # the full list; each command's --help lists the groups it reads
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def _logging(verbosity: int, log_format: str = "text") -> None:
    level = logging.WARNING - 10 * min(verbosity, 2)
    handler = log_handler(log_format, sys.stderr)
    if verbosity < 2:
        # onnxruntime's quantiser logs a lot at INFO through the root logger itself (logging.info):
        # drop those records, not the level of the root logger every other logger inherits.
        handler.addFilter(lambda record: record.name != "root" or record.levelno >= logging.WARNING)
    logging.basicConfig(level=level, handlers=[handler])
    for noisy in ("onnx_model", "fusion_base"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING) if verbosity < 2 else level)
    os.environ.setdefault("LANCE_LOG", "error")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `shoprank` console script."""
    parser = build_parser()
    # Only a command that parses the rest itself (a benchmark, whose module is imported when it runs) takes extras.
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "takes_extra_args", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra_args = extra
    try:
        settings = settings_from_args(args)
    except UserError as error:
        print(f"shoprank {args.command}: {error}", file=sys.stderr)
        return 2
    _logging(args.verbose, settings.log_format)
    if "setting_opensearch_password" in vars(args):
        logging.getLogger("shoprank").warning(
            "--opensearch-password shows the password to every user of this machine (`ps`): "
            "use --opensearch-password-file or SHOPRANK_OPENSEARCH_PASSWORD"
        )
    try:
        return int(args.run(args, settings) or 0)
    except KeyboardInterrupt:
        return 130
    except UserError as error:
        # Errors a user can act on say what to do: one line, no stack trace (-vv shows one).
        if args.verbose >= 2:
            raise
        print(f"shoprank {args.command}: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        # A file or port the machine refused (missing, unreadable, in use) is the user's to fix too;
        # any other error is a bug and keeps its traceback (exit 1).
        if args.verbose >= 2 or error.strerror is None:
            raise
        where = f": {error.filename}" if error.filename else ""
        print(f"shoprank {args.command}: {error.strerror}{where}", file=sys.stderr)
        return 2
