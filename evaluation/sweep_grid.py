"""The configurations of the relevance–diversity sweep (light: the CLI reads its defaults)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from shoprank.vocabulary import STRENGTH_METHODS
from sidecar.diversify.params import EMBEDDING_METHODS, DiversityParams, Facet, Method

DEFAULT_STRENGTHS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9)
# xQuAD runs once per facet choice: its aspects from categories, brands, or both.
XQUAD_FACETS: tuple[tuple[Facet, ...], ...] = (("category",), ("brand",), ("category", "brand"))
DEFAULT_FACETS = DiversityParams().facets
# (max per brand, max per category): the point set of the hard caps.
Caps = tuple[int | None, int | None]
DEFAULT_CAPS: tuple[Caps, ...] = ((1, None), (2, None), (3, None), (None, 2), (None, 3), (2, 3))


def method_name(params: DiversityParams) -> str:
    """The method as the sweep names its curve: "mmr", "xquad" (category aspects), "xquad[brand]",
    "xquad[category+brand]", "dpp" (embedding cosine), "dpp[attributes 0.75]" (mixed similarity)."""
    if params.method == "xquad" and params.facets != DEFAULT_FACETS:
        return f"xquad[{'+'.join(params.facets)}]"
    if params.method in EMBEDDING_METHODS and params.attribute_weight > 0.0:
        return f"{params.method}[attributes {params.attribute_weight:g}]"
    return params.method


@dataclass(frozen=True)
class SweepConfig:
    """One diversity configuration of the sweep; `family` is the curve it is drawn on."""

    family: str
    params: DiversityParams

    @property
    def label(self) -> str:
        """E.g. "mmr 0.30", "xquad[category+brand] 0.50", "caps brand<=2", "mmr 0.20 + brand<=2"."""
        p = self.params
        caps = [f"brand<={p.max_per_brand}"] * (p.max_per_brand is not None)
        caps += [f"category<={p.max_per_category}"] * (p.max_per_category is not None)
        if p.method == "none":
            return "caps " + " ".join(caps) if caps else "rerank only"
        name = f"{method_name(p)} {p.strength:.2f}" + (f" w{p.window}" if p.method == "dpp" and p.window != 10 else "")
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
            "facets": list(p.facets),
            "attribute_weight": p.attribute_weight,
        }

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> SweepConfig:
        """The configuration as_dict() wrote (reports from before attribute_weight read it as 0).
        Raises KeyError naming a missing field."""
        params = DiversityParams(
            method=entry["method"],
            strength=entry["strength"],
            max_per_brand=entry["max_per_brand"],
            max_per_category=entry["max_per_category"],
            window=entry["window"],
            facets=tuple(entry["facets"]),
            attribute_weight=entry.get("attribute_weight", 0.0),
        )
        return cls(entry.get("family", params.method), params)


RERANK_ONLY = SweepConfig("rerank", DiversityParams(method="none", strength=0.0))


def sweep_grid(
    strengths: Sequence[float] = DEFAULT_STRENGTHS,
    methods: Sequence[Method] = STRENGTH_METHODS,
    caps: Sequence[Caps] = DEFAULT_CAPS,
    combined_strengths: Sequence[float] = (),
    window: int = 10,
    xquad_facets: Sequence[tuple[Facet, ...]] = XQUAD_FACETS,
    attribute_weights: Sequence[float] = (0.0,),
) -> list[SweepConfig]:
    """Each method over the strengths (xQuAD once per facet choice, MMR and DPP once per attribute
    weight), each cap alone, and (for `combined_strengths`) MMR with a brand cap of 2 on the first
    attribute weight: the configurations of the sweep, in report order."""
    grid = []
    for method in methods:
        variants = [
            DiversityParams(method=method, window=window, facets=facets, attribute_weight=weight)
            for facets in (xquad_facets if method == "xquad" else (DEFAULT_FACETS,))
            for weight in (attribute_weights if method in EMBEDDING_METHODS else (0.0,))
        ]
        for variant in variants:
            grid += [SweepConfig(method_name(variant), replace(variant, strength=s)) for s in strengths]
    grid += [
        SweepConfig("caps", DiversityParams(method="none", strength=0.0, max_per_brand=b, max_per_category=c))
        for b, c in caps
    ]
    combined = DiversityParams(method="mmr", max_per_brand=2, window=window, attribute_weight=attribute_weights[0])
    grid += [SweepConfig("mmr+caps", replace(combined, strength=s)) for s in combined_strengths]
    return grid
