"""The configurations of the relevance–diversity sweep (light: the CLI reads its defaults)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sidecar.diversify.params import DiversityParams, Method

DEFAULT_STRENGTHS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7)
SWEPT_METHODS: tuple[Method, ...] = ("mmr", "xquad", "dpp")
# (max per brand, max per category): the point set of the hard caps.
Caps = tuple[int | None, int | None]
DEFAULT_CAPS: tuple[Caps, ...] = ((1, None), (2, None), (3, None), (None, 2), (None, 3), (2, 3))


@dataclass(frozen=True)
class SweepConfig:
    """One diversity configuration of the sweep; `family` is the curve it is drawn on."""

    family: str
    params: DiversityParams

    @property
    def label(self) -> str:
        """E.g. "mmr 0.30", "caps brand<=2", "mmr 0.20 + brand<=2"."""
        p = self.params
        caps = [f"brand<={p.max_per_brand}"] * (p.max_per_brand is not None)
        caps += [f"category<={p.max_per_category}"] * (p.max_per_category is not None)
        if p.method == "none":
            return "caps " + " ".join(caps) if caps else "rerank only"
        name = f"{p.method} {p.strength:.2f}" + (f" w{p.window}" if p.method == "dpp" and p.window != 10 else "")
        return " + ".join([name, " ".join(caps)]) if caps else name

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: the family and the DiversityParams fields."""
        p = self.params
        return {
            "label": self.label,
            "family": self.family,
            "method": p.method,
            "strength": p.strength,
            "max_per_brand": p.max_per_brand,
            "max_per_category": p.max_per_category,
            "window": p.window,
        }


RERANK_ONLY = SweepConfig("rerank", DiversityParams(method="none", strength=0.0))


def sweep_grid(
    strengths: Sequence[float] = DEFAULT_STRENGTHS,
    methods: Sequence[Method] = SWEPT_METHODS,
    caps: Sequence[Caps] = DEFAULT_CAPS,
    combined_strengths: Sequence[float] = (),
    window: int = 10,
) -> list[SweepConfig]:
    """Each method over the strengths, each cap alone, and (for `combined_strengths`) MMR with a
    brand cap of 2: the configurations of the sweep, in report order."""
    grid = [
        SweepConfig(method, DiversityParams(method=method, strength=s, window=window))
        for method in methods
        for s in strengths
    ]
    grid += [
        SweepConfig("caps", DiversityParams(method="none", strength=0.0, max_per_brand=b, max_per_category=c))
        for b, c in caps
    ]
    grid += [
        SweepConfig("mmr+caps", DiversityParams(method="mmr", strength=s, max_per_brand=2, window=window))
        for s in combined_strengths
    ]
    return grid
