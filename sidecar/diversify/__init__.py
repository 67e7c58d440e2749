"""Diversification of a scored candidate list: a pure function of scores, embeddings and attributes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Method = Literal["none", "mmr", "xquad", "dpp"]
METHODS: tuple[Method, ...] = ("none", "mmr", "xquad", "dpp")


@dataclass(frozen=True)
class DiversityParams:
    """How to diversify one page."""

    method: Method = "none"
    strength: float = 0.3
    max_per_brand: int | None = None
    max_per_category: int | None = None
    window: int = 10


@dataclass(frozen=True)
class DiversityResult:
    """Page order as indices into the candidates, with each pick's diversity term and reason."""

    order: list[int]
    terms: list[float]
    reasons: list[str]
    method: str = "none"


def diversify(
    relevance: npt.NDArray[np.float32],
    k: int,
    params: DiversityParams,
    embeddings: npt.NDArray[np.float32] | None = None,
    brands: Sequence[str] = (),
    categories: Sequence[Sequence[str]] = (),
) -> DiversityResult:
    """Pick k candidates: by relevance alone for method "none"."""
    order = [int(i) for i in np.argsort(-relevance, kind="stable")[:k]]
    return DiversityResult(order=order, terms=[0.0] * len(order), reasons=["relevance"] * len(order))
