"""The intent model on disk: the per-category vector sums of one index version, written next to
the index by `shoprank index` and refused when the live index is another version."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from intent.model import DEFAULT_PRIOR_WEIGHT, DEFAULT_TEMPERATURE, CategorySums, IntentDepth, IntentModel

INTENT_DIR = "intent"


class IntentModelError(RuntimeError):
    """No usable intent model; the message says what to run."""


class StaleIntentModelError(IntentModelError):
    """The intent model was built from another index version than the live one."""


def model_path(data_dir: Path, index_name: str) -> Path:
    """Where the intent model of an index lives."""
    return data_dir / INTENT_DIR / f"{index_name}.npz"


def save_sums(path: Path, index_version: str, sums: CategorySums) -> None:
    """Write the category sums of `index_version` atomically (a reader sees the old or the new file)."""
    paths, totals, counts = sums.arrays()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.npz")
    np.savez(
        tmp,
        index_version=np.asarray(index_version),
        paths=np.asarray(paths, dtype=np.str_),
        sums=totals,
        counts=counts,
    )
    os.replace(tmp, path)


def load_model(
    path: Path,
    live_version: str | None,
    depth: IntentDepth = "leaf",
    temperature: float = DEFAULT_TEMPERATURE,
    prior_weight: float = DEFAULT_PRIOR_WEIGHT,
) -> IntentModel:
    """The intent model at `path`, refused when it was built for another index version than `live_version`."""
    if not path.is_file():
        raise IntentModelError(f"no intent model at {path}: run a full `shoprank index --catalogue PATH`")
    with np.load(path) as stored:
        version = str(stored["index_version"])
        if live_version is not None and version != live_version:
            raise StaleIntentModelError(
                f"the intent model at {path} was built for index version {version}, the live one is "
                f"{live_version}: run a full `shoprank index --catalogue PATH` to rebuild it"
            )
        return IntentModel.from_sums(
            version,
            [str(p) for p in stored["paths"]],
            stored["sums"],
            stored["counts"],
            depth=depth,
            temperature=temperature,
            prior_weight=prior_weight,
        )
