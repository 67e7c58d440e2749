"""How well implicit judgments from clicks agree with graded labels: per query, Kendall's tau-b and
Spearman's rho between the click model's scores and the label gains over the products both judge,
then the mean over queries (a query with fewer than 3 such products, or one grade only, is skipped)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (ties in either variable corrected); NaN when either is constant."""
    concordant = discordant = ties_x = ties_y = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denominator = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return (concordant - discordant) / denominator if denominator else math.nan


def _ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties given their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson's correlation of the (tie-averaged) ranks; NaN when either is constant."""
    rx, ry = _ranks(x), _ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    return cov / math.sqrt(vx * vy) if vx and vy else math.nan


@dataclass(frozen=True)
class Agreement:
    """Rank agreement of one set of implicit judgments with the labels."""

    queries: int
    pairs: int
    kendall: float
    spearman: float

    def line(self, name: str) -> str:
        """One printed row."""
        return (
            f"{name:<6} queries {self.queries:>4}  pairs {self.pairs:>6}  "
            f"kendall {self.kendall:+.3f}  spearman {self.spearman:+.3f}"
        )


def agreement(
    implicit: Mapping[str, Mapping[str, float]], labels: Mapping[str, Mapping[str, float]], min_products: int = 3
) -> Agreement:
    """Mean per-query rank correlation of implicit scores with label gains."""
    kendalls: list[float] = []
    spearmans: list[float] = []
    pairs = 0
    for query, scores in implicit.items():
        graded = labels.get(query, {})
        common = sorted(set(scores) & set(graded))
        if len(common) < min_products:
            continue
        x = [scores[p] for p in common]
        y = [graded[p] for p in common]
        tau, rho = kendall_tau_b(x, y), spearman_rho(x, y)
        if math.isnan(tau) or math.isnan(rho):
            continue
        kendalls.append(tau)
        spearmans.append(rho)
        pairs += len(common)
    if not kendalls:
        return Agreement(0, 0, math.nan, math.nan)
    return Agreement(len(kendalls), pairs, sum(kendalls) / len(kendalls), sum(spearmans) / len(spearmans))
