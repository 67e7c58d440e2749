"""The intent model on disk: one file of per-category vector sums per index version, written by
`shoprank index` next to the version it builds and pruned with it, so a rollback finds the model
of the version it makes live. A file whose recorded version is not the live one is refused."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from intent.model import DEFAULT_PRIOR_WEIGHT, DEFAULT_TEMPERATURE, CategorySums, IntentDepth, IntentModel
from shoprank.errors import NotSetUpError

INTENT_DIR = "intent"


class IntentModelError(NotSetUpError):
    """No usable intent model; the message says what to run."""


class StaleIntentModelError(IntentModelError):
    """The intent model was built from another index version than the live one."""


def models_dir(data_dir: Path, engine: str, index_name: str) -> Path:
    """Where the intent models of an index's versions live: one folder per engine and index, so an
    OpenSearch index and a LanceDB table of the same name never prune each other's models."""
    return data_dir / INTENT_DIR / engine / index_name


def model_path(directory: Path, version: str) -> Path:
    """The intent model file of one index version."""
    return directory / f"{version}.npz"


def prune_models(directory: Path, kept: set[str]) -> list[Path]:
    """Remove the models of versions the engine no longer keeps; returns what was removed."""
    removed = [path for path in sorted(directory.glob("*.npz")) if path.stem not in kept]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def save_sums(path: Path, index_version: str, sums: CategorySums) -> None:
    """Write the category sums of `index_version` atomically (a reader sees the old or the new file)."""
    paths, totals, counts = sums.arrays()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}")
    with tmp.open("wb") as handle:
        np.savez(
            handle,
            index_version=np.asarray(index_version),
            paths=np.asarray(paths, dtype=np.str_),
            sums=totals,
            counts=counts,
        )
    os.replace(tmp, path)


def load_live_model(
    directory: Path,
    live_version: str | None,
    depth: IntentDepth = "leaf",
    temperature: float = DEFAULT_TEMPERATURE,
    prior_weight: float = DEFAULT_PRIOR_WEIGHT,
) -> IntentModel:
    """The intent model of the live index version."""
    if live_version is None:
        raise IntentModelError("nothing is indexed yet: run a full `shoprank index --catalogue PATH`")
    return load_model(model_path(directory, live_version), live_version, depth, temperature, prior_weight)


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
