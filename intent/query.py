"""One query's intent, from its text: the library function behind `shoprank intent`."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from intent.model import IntentDistribution, IntentModel
from shoprank.template import query_text


class QueryEncoder(Protocol):
    """What the intent needs from the bi-encoder (the query vector the search computes anyway)."""

    def encode_one(self, text: str) -> npt.NDArray[np.float32]: ...


def query_intent(query: str, encoder: QueryEncoder, model: IntentModel, top: int = 5) -> IntentDistribution:
    """P(category | query) for the `top` most likely categories of `query`, at the model's depth."""
    text = query_text(query)
    if not text:
        raise ValueError("the query has no words: give the shopper's words")
    return model.predict(encoder.encode_one(text), top=top)
