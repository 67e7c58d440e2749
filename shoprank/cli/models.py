"""`shoprank models build`: export the ONNX bi-encoder and cross-encoder (needs the `train` extra)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from shoprank.cli.common import add_command, print_json
from shoprank.errors import UserInputError
from shoprank.settings import Settings

# The shared ESCI sample of a source checkout (training.static_int8 names the same files; that module
# imports onnx, which `shoprank models --help` must not need).
_CATALOGUE = "../shared/data/esci/products.ndjson"


def register(subparsers: Any) -> None:
    """Add the `models` command."""
    parser = add_command(subparsers, "models", "build the ONNX models shoprank serves", ("general", "models"))
    sub = parser.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    build = add_command(
        sub, "build", "export bi-encoder and cross-encoder to ONNX with a PyTorch parity check", ("general", "models")
    )
    build.add_argument(
        "--only",
        choices=["bi-encoder", "cross-encoder", "cascade"],
        help="build one model only (cascade: the cascade's cheap scorer, from the released weights)",
    )
    build.add_argument(
        "--cascade-layers", type=int, default=2, help="encoder layers the cascade's cheap scorer keeps (of 6)"
    )
    build.add_argument(
        "--calibration-catalogue",
        type=Path,
        help="catalogue whose pseudo queries calibrate the static int8 cross-encoder (default: the shared ESCI "
        f"sample, {_CATALOGUE} from the repo root, when present; without one no static int8 is built)",
    )
    build.add_argument(
        "--calibration-exclude",
        type=Path,
        help="judgments whose queries the calibration set must not contain, the queries figures are measured on "
        "(default: the shared ESCI sample's)",
    )
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
    from training.cascade_export import build_cascade_scorer
    from training.export import build_bi_encoder, build_cross_encoder
    from training.release import released_weights
    from training.static_int8 import SAMPLE_CATALOGUE, SAMPLE_JUDGMENTS, calibration_source

    built = {}
    models_dir = settings.models_dir()
    if args.only == "cascade":
        weights = args.cross_encoder_weights or released_weights()
        if weights is None:
            raise UserInputError("the cascade scorer is cut from fine-tuned weights: pass --cross-encoder-weights")
        built["cascade"] = build_cascade_scorer(
            models_dir, weights, args.cascade_layers, settings.max_pair_tokens
        ).model_dump()
    if args.only in (None, "bi-encoder"):
        built["bi-encoder"] = build_bi_encoder(models_dir).model_dump()
    if args.only in (None, "cross-encoder"):
        weights = args.cross_encoder_weights or released_weights()
        if args.calibration_catalogue is not None and not args.calibration_catalogue.is_file():
            raise UserInputError(f"--calibration-catalogue {args.calibration_catalogue} is not a file")
        catalogue, exclude = calibration_source(
            args.calibration_catalogue or SAMPLE_CATALOGUE, args.calibration_exclude or SAMPLE_JUDGMENTS
        )
        built["cross-encoder"] = build_cross_encoder(
            models_dir, weights, settings.max_pair_tokens, catalogue, exclude
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
