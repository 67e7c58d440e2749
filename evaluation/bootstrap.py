"""Bootstrap confidence intervals over queries, and paired differences between two stages.

Queries are the unit of resampling (a query's pairs are not independent). Paired differences
resample the same queries for both stages, which is what says whether B beats A.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 7


@dataclass(frozen=True)
class Interval:
    """A mean with a percentile bootstrap interval."""

    mean: float
    low: float
    high: float
    n: int

    def excludes_zero(self) -> bool:
        """True when the whole interval is on one side of zero."""
        return self.low > 0.0 or self.high < 0.0

    def as_dict(self) -> dict[str, float | int]:
        """JSON-ready form."""
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


def bootstrap_ci(
    values: Sequence[float],
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    seed: int = DEFAULT_SEED,
) -> Interval:
    """Mean of per-query values with a percentile bootstrap interval (deterministic for a seed)."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1)")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, data.size, size=(resamples, data.size))
    means = data[picks].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Interval(float(data.mean()), float(low), float(high), int(data.size))


def paired_difference(
    result: Sequence[float],
    baseline: Sequence[float],
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    seed: int = DEFAULT_SEED,
) -> Interval:
    """Interval of mean(result - baseline) over the same queries, resampled together."""
    if len(result) != len(baseline):
        raise ValueError("paired difference needs one value per query for both stages")
    diffs = [r - b for r, b in zip(result, baseline, strict=True)]
    return bootstrap_ci(diffs, resamples, confidence, seed)
