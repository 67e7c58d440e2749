"""`shoprank train`: fine-tune the cross-encoder on graded judgments (needs the `train` extra)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from shoprank.cli.common import add_command, print_json
from shoprank.errors import UserInputError
from shoprank.settings import REPO_ROOT, Settings

log = logging.getLogger(__name__)

ESCI_DIR = REPO_ROOT.parent / "shared" / "data" / "esci"


def _default(path: Path) -> Path | None:
    return path if path.is_file() else None


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    from training.config import TrainConfig

    group = parser.add_argument_group("recipe (defaults: the released model's)")
    for name, field in TrainConfig.model_fields.items():
        flag = "--" + name.replace("_", "-")
        help_text = f"{field.description or name} (default: {field.default})"
        if field.annotation is bool:
            group.add_argument(
                flag, dest=f"config_{name}", action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        else:
            group.add_argument(flag, dest=f"config_{name}", metavar=name.upper(), default=None, help=help_text)


def register(subparsers: Any) -> None:
    """Add the `train` command."""
    parser = add_command(
        subparsers,
        "train",
        "fine-tune the cross-encoder on graded judgments, export ONNX, optionally release",
        ("general", "models"),
    )
    parser.add_argument(
        "--judgments",
        type=Path,
        default=_default(ESCI_DIR / "judgments.csv"),
        help="ESCI-format judgments CSV (default: ../shared/data/esci/judgments.csv)",
    )
    parser.add_argument(
        "--catalogue",
        type=Path,
        default=_default(ESCI_DIR / "products.ndjson"),
        help="catalogue of the judged products (default: ../shared/data/esci/products.ndjson)",
    )
    parser.add_argument("--output", type=Path, help="run directory (default: <data-dir>/training/<holdout>)")
    parser.add_argument(
        "--release", action="store_true", help="copy the trained weights + model card to models/cross-encoder/"
    )
    parser.add_argument(
        "--gate-judgments",
        type=Path,
        help="labelled judgments the candidate must not lose NDCG@10 on against the current release before "
        "--release replaces it (the queries neither model was trained on; required when --judgments are not "
        "the labelled ESCI file, e.g. click judgments from `shoprank judgments-from-clicks`)",
    )
    parser.add_argument(
        "--gate-margin", type=float, default=0.0, help="NDCG@10 the candidate may lose at the gate (default 0)"
    )
    parser.add_argument(
        "--force-release", action="store_true", help="release even when the gate fails or is not given (logged)"
    )
    parser.add_argument("--dev-record", type=Path, help="training.json of the recipe's --holdout dev run, for the card")
    parser.add_argument(
        "--card-only",
        action="store_true",
        help="re-render models/cross-encoder/MODEL_CARD.md (with --dev-record / --eval-report) without training",
    )
    parser.add_argument("--eval-report", type=Path, help="`shoprank eval --json` output to put in the model card")
    parser.add_argument("--card-notes", type=Path, help="Markdown to put in the model card (how the recipe was chosen)")
    parser.add_argument("--json", action="store_true", help="print the training record as JSON")
    _add_config_flags(parser)
    parser.set_defaults(run=run)


def _config(args: argparse.Namespace) -> Any:
    from training.config import TrainConfig

    overrides = {
        k.removeprefix("config_"): v for k, v in vars(args).items() if k.startswith("config_") and v is not None
    }
    return TrainConfig(**overrides)


def _json(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _gate_judgments(args: argparse.Namespace) -> Path | None:
    """The labelled judgments a release must pass on; None when releasing needs no gate."""
    if not args.release:
        return None
    gate: Path | None = args.gate_judgments
    labelled = _default(ESCI_DIR / "judgments.csv")
    trains_on_labels = labelled is not None and args.judgments.resolve() == labelled.resolve()
    if gate is None and not trains_on_labels and not args.force_release:
        raise UserInputError(
            f"--release of a model trained on {args.judgments} needs --gate-judgments LABELS.csv (e.g. "
            "../shared/data/esci/judgments.csv): it must not lose NDCG@10 against the current release first"
        )
    return gate


def _run_gate(settings: Settings, labels: Path, candidate: Path, args: argparse.Namespace) -> Any:
    """Compare the candidate with the release as `shoprank models build` serves it."""
    from evaluation.release_gate import release_gate
    from shoprank.model_meta import CROSS_ENCODER, model_dir
    from training.built_models import ensure_models

    current = model_dir(ensure_models(settings), CROSS_ENCODER)
    report = release_gate(settings, labels, candidate, current, args.gate_margin, args.catalogue)
    log.warning("%s", report.format())
    return report


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Train (or re-render the release card) and print what was made."""
    from training.release import RELEASE_DIR, release, write_card

    dev_record, eval_report = _json(args.dev_record), _json(args.eval_report)
    notes = args.card_notes.read_text() if args.card_notes else ""
    if args.card_only:
        print(f"model card: {write_card(RELEASE_DIR, dev_record, eval_report, notes)}")
        return 0
    if args.judgments is None or args.catalogue is None:
        raise UserInputError("say what to train on: --judgments PATH --catalogue PATH")
    from training.pipeline import built_model_dir, run_training

    # Progress of a half-hour job is worth seeing without -v.
    logging.getLogger("training").setLevel(logging.INFO)

    gate = _gate_judgments(args)
    config = _config(args)
    output = args.output or settings.data_dir / "training" / config.holdout
    result = run_training(settings, config, args.judgments, args.catalogue, output)
    if args.release and gate is not None:
        report = _run_gate(settings, gate, built_model_dir(result), args)
        if not report.passed and not args.force_release:
            print(report.format())
            print(f"kept the current release; the candidate is in {result.weights} (--force-release to ship it)")
            return 1
    if args.release:
        release(result.weights, RELEASE_DIR, dev_record)
        if eval_report or notes:
            write_card(RELEASE_DIR, dev_record, eval_report, notes)
    if args.json:
        print_json(result.record)
        return 0
    record = result.record
    print(
        f"trained {record['version']} on {len(record['trained_queries'])} queries in {record['train_seconds']:.0f} s "
        f"({record['pairs_seen']} pairs); dev {record['dev'] or '-'}"
    )
    print(f"weights: {result.weights}\nONNX: {built_model_dir(result)}")
    print(f"measure it: shoprank eval --judgments {args.judgments} --cross-encoder {built_model_dir(result)}")
    if args.release:
        print(f"released to {RELEASE_DIR}; serve it: shoprank models build --only cross-encoder")
    return 0
