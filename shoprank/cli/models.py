"""`shoprank models build`: export the ONNX bi-encoder and cross-encoder (needs the `train` extra)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from shoprank.cli.common import add_command, print_json
from shoprank.settings import Settings


def register(subparsers: Any) -> None:
    """Add the `models` command."""
    parser = add_command(subparsers, "models", "build the ONNX models shoprank serves", ("general", "models"))
    sub = parser.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    build = add_command(
        sub, "build", "export bi-encoder and cross-encoder to ONNX with a PyTorch parity check", ("general", "models")
    )
    build.add_argument("--only", choices=["bi-encoder", "cross-encoder"], help="build one model only")
    build.add_argument(
        "--cross-encoder-weights",
        type=Path,
        help="fine-tuned cross-encoder weights (a Hugging Face model dir); "
        "default: the released model if present, else zero-shot from the base weights",
    )
    build.add_argument("--json", action="store_true", help="print the built models' metadata as JSON")
    build.set_defaults(run=run_build)


def run_build(args: argparse.Namespace, settings: Settings) -> int:
    """Build the models into <data-dir>/models."""
    from sidecar.ltr_model import read_card
    from training.export import build_bi_encoder, build_cross_encoder
    from training.release import released_weights

    built = {}
    models_dir = settings.models_dir()
    if args.only in (None, "bi-encoder"):
        built["bi-encoder"] = build_bi_encoder(models_dir).model_dump()
    if args.only in (None, "cross-encoder"):
        weights = args.cross_encoder_weights or released_weights()
        built["cross-encoder"] = build_cross_encoder(
            models_dir, weights, max_length=settings.max_pair_tokens
        ).model_dump()
        from training.ltr_release import install_released_ltr

        # The released LTR model was trained on the released cross-encoder's scores: it goes with it.
        installed = install_released_ltr(models_dir, replace=True) if weights == released_weights() else None
        if installed is not None:
            built["ltr"] = {"version": read_card(installed).version, "parity": "-"}
    if args.json:
        print_json(built)
    else:
        for kind, meta in built.items():
            print(f"{kind}: {meta['version']} -> {models_dir / kind} (parity {meta['parity']})")
    return 0
