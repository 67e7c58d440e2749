"""Parameters of one diversification, validated on construction."""

from __future__ import annotations

import math
from dataclasses import dataclass

from shoprank.errors import UserInputError
from shoprank.vocabulary import DIVERSITY_FACETS, DIVERSITY_METHODS, DiversityFacet, DiversityMethod
from shoprank.vocabulary import EMBEDDING_METHODS as EMBEDDING_METHODS

# The diversity package's short names for the shared vocabulary.
Method = DiversityMethod
METHODS = DIVERSITY_METHODS
Facet = DiversityFacet
FACETS = DIVERSITY_FACETS


class DiversityParamError(UserInputError):
    """A diversity parameter or input is invalid; `field` names it (e.g. "strength")."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def _positive_int(value: int | None, field: str, hint: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DiversityParamError(field, f"must be an integer of at least 1, got {value!r}{hint}")


def _unit_interval(value: float, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DiversityParamError(field, f"must be a number between 0 and 1, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise DiversityParamError(field, f"must be between 0 and 1, got {value}")


def _facets(value: object) -> tuple[Facet, ...]:
    """The facets in FACETS order; a bad value raises naming the field "facets"."""
    if isinstance(value, str) or not isinstance(value, tuple | list):
        raise DiversityParamError("facets", f"must be a list of {' and/or '.join(FACETS)}, got {value!r}")
    unknown = [f for f in value if f not in FACETS]
    if unknown:
        raise DiversityParamError("facets", f"unknown facet {unknown[0]!r}; use {' and/or '.join(FACETS)}")
    if not value:
        raise DiversityParamError("facets", f"must name at least one of {', '.join(FACETS)}")
    if len(set(value)) != len(value):
        raise DiversityParamError("facets", f"names a facet twice: {', '.join(map(str, value))}")
    return tuple(f for f in FACETS if f in value)


@dataclass(frozen=True)
class DiversityParams:
    """How to diversify one page.

    strength: 0 = relevance order exactly, 1 = diversity only (the MMR lambda / xQuAD lambda /
    DPP trade-off). Caps (at most N per brand / per leaf category on the page) combine with any
    method, "none" included. window: DPP conditions each pick on the previous window - 1 picks.
    page_size: caps count per page of this many results (None: the whole list is one page).
    facets: what xQuAD's aspects are, leaf categories, brands or both (other methods ignore it);
    kept in FACETS order, so equal choices compare and hash equal. attribute_weight: how much of
    MMR's and DPP's similarity is the catalogue's structure (same brand, same leaf category)
    rather than embedding cosine, 0 (cosine only) to 1 (attributes only); see similarity.py.
    """

    method: Method = "none"
    strength: float = 0.3
    max_per_brand: int | None = None
    max_per_category: int | None = None
    window: int = 10
    page_size: int | None = None
    facets: tuple[Facet, ...] = ("category",)
    attribute_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise DiversityParamError("method", f"unknown method {self.method!r}; use one of {', '.join(METHODS)}")
        _unit_interval(self.strength, "strength")
        _unit_interval(self.attribute_weight, "attribute_weight")
        _positive_int(self.window, "window", "")
        _positive_int(self.max_per_brand, "max_per_brand", " (leave unset for no cap)")
        _positive_int(self.max_per_category, "max_per_category", " (leave unset for no cap)")
        _positive_int(self.page_size, "page_size", " (leave unset for one page)")
        object.__setattr__(self, "facets", _facets(self.facets))

    def overridden(
        self,
        *,
        method: Method | None = None,
        strength: float | None = None,
        window: int | None = None,
        max_per_brand: int | None = None,
        max_per_category: int | None = None,
        page_size: int | None = None,
        facets: tuple[Facet, ...] = (),
        attribute_weight: float | None = None,
    ) -> DiversityParams:
        """A request's options over these defaults (None or no facets: the default; "none" is a choice)."""
        return DiversityParams(
            method=method if method is not None else self.method,
            strength=strength if strength is not None else self.strength,
            window=window if window is not None else self.window,
            max_per_brand=max_per_brand if max_per_brand is not None else self.max_per_brand,
            max_per_category=max_per_category if max_per_category is not None else self.max_per_category,
            page_size=page_size,
            facets=facets or self.facets,
            attribute_weight=attribute_weight if attribute_weight is not None else self.attribute_weight,
        )

    @property
    def has_caps(self) -> bool:
        """Whether any hard cap applies."""
        return self.max_per_brand is not None or self.max_per_category is not None

    @property
    def needs_embeddings(self) -> bool:
        """Whether the method reads embeddings (strength 0 never does: it is relevance order; nor does
        attribute weight 1: the similarity is brands and categories alone)."""
        return self.method in EMBEDDING_METHODS and self.strength > 0.0 and self.attribute_weight < 1.0
