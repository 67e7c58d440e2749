"""The released LTR model that ships in the repository (models/ltr/: LightGBM's model.txt + card.json).

`shoprank train-ltr --output models/ltr` makes it; `shoprank models build` (and every command
that builds missing models) installs it into <data dir>/models/ltr beside the cross-encoder it
was trained with. The sidecar uses it only with SHOPRANK_LTR on and only for that cross-encoder.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from shoprank.settings import REPO_ROOT
from sidecar.ltr_model import CARD_FILE, MODEL_FILE, ltr_dir

log = logging.getLogger(__name__)

LTR_RELEASE_DIR = REPO_ROOT / "models" / "ltr"


def install_released_ltr(models_dir: Path, release: Path = LTR_RELEASE_DIR, replace: bool = False) -> Path | None:
    """Copy the released LTR model into the models dir (unless one is there and not `replace`).

    Returns the installed directory, or None when the repository has no LTR release.
    """
    if not (release / MODEL_FILE).is_file() or not (release / CARD_FILE).is_file():
        return None
    target = ltr_dir(models_dir)
    if (target / CARD_FILE).is_file() and not replace:
        return target
    target.mkdir(parents=True, exist_ok=True)
    (target / CARD_FILE).unlink(missing_ok=True)  # the card goes last: a directory with a card is complete
    shutil.copyfile(release / MODEL_FILE, target / MODEL_FILE)
    shutil.copyfile(release / CARD_FILE, target / CARD_FILE)
    log.info("installed the released LTR model into %s", target)
    return target
