"""The released LTR model (`shoprank train-ltr`): the recipe fixed out of fold, trained on every query.

Hyperparameters come from the same fold-internal choice the out-of-fold protocol makes (an
inner k-fold, here over all judged queries, since no query is held out of a release); the
model and its card go to `<models dir>/ltr/`, where the sidecar loads them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from evaluation.ltr_oof import OutOfFold, Variant
from evaluation.ltr_windows import WindowSet
from sidecar.ltr_model import LtrCard, write_ltr
from training.ltr import fit


def train_release(windows: WindowSet, variant: Variant, directory: Path) -> LtrCard:
    """Choose parameters by inner k-fold over all queries, fit on all of them, save model + card."""
    oof = OutOfFold(windows)
    params = oof.choose(oof.queries, variant, 10**6)
    booster = fit(oof._data(oof.queries, variant, 10**6), variant.features, params, oof.seed)
    text = booster.model_to_string()
    ce_version = windows.info["cross_encoders"][variant.cross_encoder] if variant.cross_encoder else ""
    name = variant.name.removeprefix("ltr_").replace("_", "-")
    card = LtrCard(
        version=f"ltr-{name}-{hashlib.sha256(text.encode()).hexdigest()[:12]}",
        features=variant.features,
        cross_encoder_version=ce_version,
        trained_queries=len(oof.queries),
        params=params.as_dict(),
        notes=f"LightGBM lambdarank over {len(oof.queries)} judged queries (both modes' windows); "
        f"windows {Path(str(windows.info.get('cache', ''))).name}",
    )
    write_ltr(directory, booster, card)
    return card
