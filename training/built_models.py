"""The data dir's built models, exported on demand like `shoprank models build` when missing."""

from __future__ import annotations

import logging
from pathlib import Path

from shoprank.errors import NotSetUpError
from shoprank.model_meta import BI_ENCODER, CROSS_ENCODER, ModelNotBuiltError, load_metadata, model_dir
from shoprank.settings import Settings
from training.ltr_release import install_released_ltr

log = logging.getLogger(__name__)


def is_built(models_dir: Path, kind: str) -> bool:
    """Whether `models_dir` holds a loadable model of `kind` (bi-encoder or cross-encoder)."""
    try:
        load_metadata(model_dir(models_dir, kind))
    except ModelNotBuiltError:
        return False
    return True


def ensure_models(settings: Settings) -> Path:
    """The data dir's models directory, building missing models like `shoprank models build`."""
    models_dir = settings.models_dir()
    missing = [kind for kind in (BI_ENCODER, CROSS_ENCODER) if not is_built(models_dir, kind)]
    if not missing:
        install_released_ltr(models_dir)
        return models_dir
    try:
        # torch lives in the train extra: import the exporter only when something must be built.
        from training.export import build_bi_encoder, build_cross_encoder
        from training.release import released_weights
        from training.static_int8 import SAMPLE_CATALOGUE, SAMPLE_JUDGMENTS, calibration_source
    except ImportError as exc:
        raise NotSetUpError(
            f"no built {', '.join(missing)} under {models_dir}; run `shoprank models build` (needs the train extra)"
        ) from exc
    log.warning("building missing models under %s: %s", models_dir, ", ".join(missing))
    if BI_ENCODER in missing:
        build_bi_encoder(models_dir)
    if CROSS_ENCODER in missing:
        # As `shoprank models build` does: a static int8 calibrated on the shared sample where there is one.
        catalogue, exclude = calibration_source(SAMPLE_CATALOGUE, SAMPLE_JUDGMENTS)
        build_cross_encoder(models_dir, released_weights(), settings.max_pair_tokens, catalogue, exclude)
        install_released_ltr(models_dir, replace=True)  # the LTR release goes with the released cross-encoder
    return models_dir
