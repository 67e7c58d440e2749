"""Fitting the learning-to-rank model: LightGBM lambdarank over sidecar/ltr_features.py's features.

Labels are the ESCI grades (I=0, C=1, S=2, E=3) with LightGBM's `label_gain` set to the ESCI
gains the evaluation's NDCG uses (0, 0.01, 0.1, 1), so the objective optimises the metric the
report shows. One group is one rerank window (one query in one mode). Training is seeded,
deterministic and single-threaded (the machines it runs on share their cores).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import lightgbm
import numpy as np
import numpy.typing as npt

from sidecar.ltr_features import FEATURE_INDEX

# ESCI gain -> lambdarank label; LightGBM's label_gain maps the label back to the same gain.
GAIN_LABELS = {0.0: 0, 0.01: 1, 0.1: 2, 1.0: 3}
LABEL_GAIN = (0.0, 0.01, 0.1, 1.0)


@dataclass(frozen=True)
class LtrParams:
    """The hyperparameters that are chosen (fold-internally); the rest are fixed in `lightgbm_params`."""

    num_leaves: int = 15
    min_data_in_leaf: int = 20
    learning_rate: float = 0.05
    rounds: int = 200
    feature_fraction: float = 1.0

    def label(self) -> str:
        """Short form for reports."""
        return (
            f"leaves {self.num_leaves}, min leaf {self.min_data_in_leaf}, lr {self.learning_rate}, "
            f"{self.rounds} rounds, features {self.feature_fraction}"
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


# The grid the nested choice picks from: small trees and few rounds, for ~100 queries.
PARAM_GRID = (
    LtrParams(num_leaves=7, min_data_in_leaf=50, learning_rate=0.05, rounds=100),
    LtrParams(num_leaves=7, min_data_in_leaf=20, learning_rate=0.05, rounds=300, feature_fraction=0.8),
    LtrParams(num_leaves=15, min_data_in_leaf=20, learning_rate=0.05, rounds=200),
    LtrParams(num_leaves=31, min_data_in_leaf=10, learning_rate=0.03, rounds=300, feature_fraction=0.8),
)


@dataclass(frozen=True)
class RankingData:
    """Stacked windows: feature rows (every column of FEATURES), their labels, and rows per window."""

    features: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int64]
    groups: tuple[int, ...]

    @classmethod
    def stack(cls, windows: Sequence[tuple[npt.NDArray[np.float64], Sequence[float]]]) -> RankingData:
        """From (feature matrix, ESCI gains) per window."""
        return cls(
            np.vstack([m for m, _ in windows]),
            np.concatenate([labels_of(g) for _, g in windows]),
            tuple(len(g) for _, g in windows),
        )


def labels_of(gains: Sequence[float]) -> npt.NDArray[np.int64]:
    """Lambdarank labels of ESCI gains (an unjudged product has gain 0: label 0)."""
    try:
        return np.array([GAIN_LABELS[round(float(g), 2)] for g in gains], dtype=np.int64)
    except KeyError as missing:
        raise ValueError(f"gain {missing} is not an ESCI gain (0, 0.01, 0.1, 1)") from None


def lightgbm_params(params: LtrParams, seed: int) -> dict[str, Any]:
    """The full LightGBM parameter set of one fit."""
    return {
        "objective": "lambdarank",
        "label_gain": list(LABEL_GAIN),
        "lambdarank_truncation_level": 20,
        "metric": "ndcg",
        "eval_at": [10],
        "num_leaves": params.num_leaves,
        "min_data_in_leaf": params.min_data_in_leaf,
        "learning_rate": params.learning_rate,
        "feature_fraction": params.feature_fraction,
        "feature_fraction_seed": seed,
        "seed": seed,
        "deterministic": True,
        "num_threads": 1,
        "verbose": -1,
    }


def fit(data: RankingData, features: Sequence[str], params: LtrParams, seed: int = 7) -> lightgbm.Booster:
    """Train a lambdarank booster on the named feature columns."""
    columns = [FEATURE_INDEX[f] for f in features]
    dataset = lightgbm.Dataset(
        data.features[:, columns],
        label=data.labels,
        group=list(data.groups),
        feature_name=list(features),
        free_raw_data=True,
    )
    return lightgbm.train(lightgbm_params(params, seed), dataset, num_boost_round=params.rounds)


def predict(booster: lightgbm.Booster, matrix: npt.NDArray[np.float64], features: Sequence[str]) -> npt.NDArray[Any]:
    """Scores of a full feature matrix's rows under a booster trained on `features`."""
    return np.asarray(booster.predict(matrix[:, [FEATURE_INDEX[f] for f in features]]), dtype=np.float64)


def params_from(data: Mapping[str, Any]) -> LtrParams:
    """LtrParams from their JSON form."""
    return LtrParams(**{k: data[k] for k in LtrParams.__dataclass_fields__ if k in data})
