"""The released fine-tuned cross-encoder that ships in the repository (see models/README)."""

from __future__ import annotations

from pathlib import Path

from shoprank.settings import REPO_ROOT

RELEASE_DIR = REPO_ROOT / "models" / "cross-encoder"


def released_weights() -> Path | None:
    """Directory of the released fine-tuned weights, or None when no release exists yet."""
    return RELEASE_DIR if (RELEASE_DIR / "config.json").is_file() else None
