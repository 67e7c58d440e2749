"""Installing the repository's LTR release into a models dir."""

from __future__ import annotations

from pathlib import Path

from sidecar.ltr_model import CARD_FILE, MODEL_FILE, ltr_dir
from training.ltr_release import install_released_ltr


def _release(root: Path, text: str) -> Path:
    root.mkdir(parents=True)
    (root / MODEL_FILE).write_text(f"tree {text}")
    (root / CARD_FILE).write_text(f'{{"version": "{text}"}}')
    return root


def test_the_release_is_copied_once_and_replaced_only_when_asked(tmp_path: Path) -> None:
    models = tmp_path / "models"
    first = _release(tmp_path / "r1", "one")
    assert install_released_ltr(models, first) == ltr_dir(models)
    assert (ltr_dir(models) / MODEL_FILE).read_text() == "tree one"
    second = _release(tmp_path / "r2", "two")
    install_released_ltr(models, second)
    assert (ltr_dir(models) / MODEL_FILE).read_text() == "tree one"  # an installed model is kept
    install_released_ltr(models, second, replace=True)
    assert (ltr_dir(models) / CARD_FILE).read_text() == '{"version": "two"}'


def test_no_release_installs_nothing(tmp_path: Path) -> None:
    assert install_released_ltr(tmp_path / "models", tmp_path / "none") is None
    assert not ltr_dir(tmp_path / "models").exists()
