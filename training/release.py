"""The released fine-tuned cross-encoder that ships in the repository (models/cross-encoder/).

The release is compact (fp16 safetensors + config + tokenizer files, under 50 MB) so that
`make up` needs no training: `shoprank models build` finds it here and exports ONNX. Beside
the weights: the training record (training.json) and the model card (MODEL_CARD.md).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shoprank.errors import MissingFileError, NotSetUpError
from shoprank.model_meta import TRAINING_RECORD_FILE
from shoprank.settings import REPO_ROOT
from training.card import render_card

RELEASE_DIR = REPO_ROOT / "models" / "cross-encoder"
CARD_FILE = "MODEL_CARD.md"
MAX_RELEASE_BYTES = 50 * 1024 * 1024


def released_weights() -> Path | None:
    """Directory of the released fine-tuned weights, or None when no release exists yet."""
    return RELEASE_DIR if (RELEASE_DIR / "config.json").is_file() else None


def read_record(weights: Path) -> dict[str, Any]:
    """The training record beside some weights."""
    path = weights / TRAINING_RECORD_FILE
    if not path.is_file():
        raise MissingFileError(f"{weights} has no {TRAINING_RECORD_FILE}; it was not written by `shoprank train`")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def write_card(
    directory: Path,
    dev_record: Mapping[str, Any] | None = None,
    eval_report: Mapping[str, Any] | None = None,
    notes: str = "",
) -> Path:
    """(Re)write MODEL_CARD.md in a weights directory from its training record."""
    card = directory / CARD_FILE
    card.write_text(render_card(read_record(directory), dev_record, eval_report, notes))
    return card


def release(weights: Path, target: Path = RELEASE_DIR, dev_record: Mapping[str, Any] | None = None) -> Path:
    """Copy trained weights (a `shoprank train` weights dir) into the release directory, with a card."""
    read_record(weights)
    size = sum(p.stat().st_size for p in weights.iterdir() if p.is_file())
    if size > MAX_RELEASE_BYTES:
        raise NotSetUpError(
            f"{weights} is {size / 2**20:.1f} MB, over the {MAX_RELEASE_BYTES / 2**20:.0f} MB release limit"
        )
    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(weights, staging)
    write_card(staging, dev_record)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target
