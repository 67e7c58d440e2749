"""The learning-to-rank model the sidecar serves: LightGBM's own model file and its card.

`<models dir>/ltr/` holds `model.txt` (LightGBM's text format, read by lightgbm alone: no
training dependency) and `card.json` (the features in the model's column order, its version,
the cross-encoder version its `ce_*` features were computed with, how it was trained). A
model whose card names another cross-encoder than the one serving, or features this sidecar
does not compute, is refused with the reason: its scores would be read off another scale.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shoprank.errors import NotSetUpError
from sidecar.ltr_features import CROSS_ENCODER_FEATURES, FEATURE_INDEX, Float64Array

log = logging.getLogger(__name__)

LTR_DIR = "ltr"
MODEL_FILE = "model.txt"
CARD_FILE = "card.json"


class LtrNotUsableError(NotSetUpError):
    """No LTR model, or one the serving cross-encoder cannot feed; the message says which and what to do."""


@dataclass(frozen=True)
class LtrCard:
    """What an LTR model is and what it must be fed."""

    version: str
    features: tuple[str, ...]
    cross_encoder_version: str  # "" when the model reads no cross-encoder feature
    trained_queries: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    notes: str = ""

    @property
    def uses_cross_encoder(self) -> bool:
        """Whether any feature comes from the cross-encoder."""
        return any(f in CROSS_ENCODER_FEATURES for f in self.features)

    def as_dict(self) -> dict[str, Any]:
        """JSON form of card.json."""
        data = asdict(self)
        data["features"] = list(self.features)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LtrCard:
        """Read card.json's content."""
        return cls(
            version=str(data["version"]),
            features=tuple(str(f) for f in data["features"]),
            cross_encoder_version=str(data.get("cross_encoder_version", "")),
            trained_queries=int(data.get("trained_queries", 0)),
            params=dict(data.get("params", {})),
            notes=str(data.get("notes", "")),
        )


class LtrModel:
    """A loaded LightGBM ranker over a subset of FEATURES (thread-safe: prediction only)."""

    def __init__(self, booster: Any, card: LtrCard) -> None:
        unknown = [f for f in card.features if f not in FEATURE_INDEX]
        if unknown:
            raise LtrNotUsableError(f"the LTR model reads features this sidecar does not compute: {unknown}")
        if booster.num_feature() != len(card.features):
            raise LtrNotUsableError(
                f"the LTR model has {booster.num_feature()} features, its card lists {len(card.features)}"
            )
        self.booster = booster
        self.card = card
        self._columns = [FEATURE_INDEX[f] for f in card.features]

    @property
    def version(self) -> str:
        """The model's version (from its card)."""
        return self.card.version

    def columns(self, matrix: Float64Array) -> Float64Array:
        """The model's columns of a full window_features() matrix."""
        return np.ascontiguousarray(matrix[:, self._columns])

    def score(self, matrix: Float64Array) -> Float64Array:
        """Scores of a full feature matrix's rows (higher ranks first)."""
        return np.asarray(self.booster.predict(self.columns(matrix)), dtype=np.float64)

    def contributions(self, matrix: Float64Array) -> Float64Array:
        """(n, len(features) + 1) additive contributions (SHAP); the last column is the bias."""
        return np.asarray(self.booster.predict(self.columns(matrix), pred_contrib=True), dtype=np.float64)


def base_version(version: str) -> str:
    """A cross-encoder version without its precision ("minilm-l6-ce-5499:int8" -> "minilm-l6-ce-5499"):
    the same weights at int8 (CPU) and fp16 (GPU) rank alike, so one LTR model serves both."""
    return version.split(":", 1)[0]


def write_ltr(directory: Path, booster: Any, card: LtrCard) -> None:
    """Save a model and its card (the card last: a directory with a card is complete)."""
    directory.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(directory / MODEL_FILE))
    (directory / CARD_FILE).write_text(json.dumps(card.as_dict(), indent=2) + "\n")


def read_card(directory: Path) -> LtrCard:
    """The card of the LTR model in a directory (LtrNotUsableError when there is none)."""
    card_path = directory / CARD_FILE
    if not (directory / MODEL_FILE).is_file() or not card_path.is_file():
        raise LtrNotUsableError(
            f"no LTR model in {directory} (needs {MODEL_FILE} and {CARD_FILE}): run `shoprank train-ltr`"
        )
    try:
        return LtrCard.from_dict(json.loads(card_path.read_text()))
    except (ValueError, KeyError, TypeError) as error:
        raise LtrNotUsableError(f"{card_path} is not an LTR card ({error}): rerun `shoprank train-ltr`") from error


def load_ltr(directory: Path, cross_encoder_version: str) -> LtrModel:
    """Load the LTR model in `directory` for a sidecar serving `cross_encoder_version`.

    Raises LtrNotUsableError (missing, unreadable, or trained on another cross-encoder's scores).
    """
    card = read_card(directory)
    if card.uses_cross_encoder and base_version(card.cross_encoder_version) != base_version(cross_encoder_version):
        raise LtrNotUsableError(
            f"the LTR model {card.version} was trained on scores of cross-encoder {card.cross_encoder_version}, "
            f"this sidecar serves {cross_encoder_version}: retrain it with `shoprank train-ltr`"
        )
    import lightgbm  # the runtime reads its model file; imported only when the stage is on

    try:
        booster = lightgbm.Booster(model_file=str(directory / MODEL_FILE))
    except lightgbm.basic.LightGBMError as error:
        raise LtrNotUsableError(
            f"{directory / MODEL_FILE} does not load ({error}): rerun `shoprank train-ltr`"
        ) from error
    return LtrModel(booster, card)


def ltr_dir(models_dir: Path) -> Path:
    """Where the served LTR model lives under a models directory."""
    return models_dir / LTR_DIR
