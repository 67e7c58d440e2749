"""What a search gets for every option it leaves out, as the front door and its sidecar apply them.

Read from the one Settings object (the rerank window, and the sidecar's blend and diversity
defaults as the sidecar itself derives them), so the demo page can start its controls from what
the API serves (GET /api/defaults).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from engines.base import RetrievalMode
from frontdoor.intent_policy import IntentDefaults
from shoprank.settings import Settings
from sidecar.diversify import DiversityParams, Facet, Method
from sidecar.server import defaults_from


class DefaultsBody(BaseModel):
    """GET /api/defaults: the value of every search option a request may leave out."""

    mode: RetrievalMode = Field(description="first stage")
    rerank: bool = Field(description="rerank with the sidecar")
    page_size: int = Field(description="results per page")
    rerank_window: int = Field(description="first-stage hits ranked per search (every page is cut from them)")
    blend_weight: float = Field(description="weight of the first-stage score in the sidecar's blend")
    diversity: Method = Field(description="diversity method")
    strength: float = Field(description="diversity strength")
    attribute_weight: float = Field(description="MMR/DPP: share of same-brand/category similarity")
    diversity_window: int = Field(description="DPP sliding window")
    diversity_facets: list[Facet] = Field(description="xQuAD aspects")
    intent: bool = Field(description="predict the query's categories and apply them")
    intent_boost: float = Field(description="weight of P(category | query) added to the scaled first-stage score")
    intent_threshold: float = Field(description="hard-filter to the top category at this probability (1: never)")


@dataclass(frozen=True)
class ServedDefaults:
    """The server-side defaults of a search's rerank options."""

    rerank_window: int = 100
    blend_weight: float = 0.5
    diversity: DiversityParams = field(default_factory=DiversityParams)

    @classmethod
    def from_settings(cls, settings: Settings) -> ServedDefaults:
        """The defaults `settings` make the front door and the sidecar apply."""
        sidecar = defaults_from(settings)
        return cls(rerank_window=settings.rerank_window, blend_weight=sidecar.blend_weight, diversity=sidecar.diversity)

    def body(
        self, mode: RetrievalMode, rerank: bool, page_size: int, intent: IntentDefaults | None = None
    ) -> DefaultsBody:
        """The defaults endpoint's answer, with the search API's own parameter defaults and the intent's."""
        intent = intent or IntentDefaults()
        d = self.diversity
        return DefaultsBody(
            mode=mode,
            rerank=rerank,
            page_size=page_size,
            rerank_window=self.rerank_window,
            blend_weight=self.blend_weight,
            diversity=d.method,
            strength=d.strength,
            attribute_weight=d.attribute_weight,
            diversity_window=d.window,
            diversity_facets=list(d.facets),
            intent=intent.enabled,
            intent_boost=intent.boost,
            intent_threshold=intent.threshold,
        )
