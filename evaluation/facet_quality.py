"""Which products should a search's facets count? Measured on judged queries.

For every judged query with exact (E) products in the catalogue, each candidate scope of the
facet counts is built on the embedded engine, its facets are shaped as the front door shows
them (engines.facet_counts, frontdoor.facets: the top values per facet), and the share of the
shown facet mass that falls on the leaf categories / brands of the query's exact products is
recorded. A facet that describes the results puts its mass there; one that counts every product
mentioning one of the words ("kitchen" for "kitchen towels") spreads it over beds and clocks.

The scopes (SCOPES) are built on the hybrid first stage, the front door's default; SERVED is the
one engines.facet_counts defines and both engines serve.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from engines.base import Filters, RetrievalQuery
from engines.facet_counts import count_facets, facet_row
from engines.lance import LanceEngine
from evaluation.bootstrap import Interval, bootstrap_ci, paired_difference
from frontdoor.facets import VALUES_SHOWN, shape_facets
from relevance.judgments import Judgments
from shoprank.schema import Product

# Each candidate scope of the facet counts, and what it counts (hybrid first stage).
SCOPES: dict[str, str] = {
    "any_word+knn": "products matching any query word, plus the kNN window (the embedded engine until 2026-12)",
    "shop_box+knn": "shop-box matches (minimum_should_match) plus the kNN window (OpenSearch until 2026-12)",
    "shop_box": "shop-box matches",
    "shop_box&knn": "shop-box matches inside the kNN window",
    "shop_box&knn|window": "shop-box matches inside the kNN window, else the ranked window (served since 2026-12)",
    "shop_box&window": "shop-box matches inside the ranked window",
    "shop_box&window|window": "shop-box matches inside the ranked window, else the ranked window",
    "window": "the ranked window",
}
SERVED = "shop_box&knn|window"
EXACT_GAIN = 1.0
ATTRIBUTES = ("category", "brand")
# Products looked up per engine.get call (an IN list of ids).
LOOKUP_CHUNK = 500


class QueryEncoder(Protocol):
    """What the measurement needs from the bi-encoder."""

    def encode_one(self, text: str) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True)
class QueryFacets:
    """One query's figures under one scope."""

    query: str
    scope: str
    counted: int
    share: dict[str, float]  # attribute -> shown facet mass on exact products' values
    top_is_exact: dict[str, bool]  # attribute -> the first shown value is an exact product's


@dataclass(frozen=True)
class FacetQualityReport:
    """Per-scope means with bootstrap intervals, and every query's figures."""

    queries: int
    window: int
    shown: int
    per_query: list[QueryFacets]

    def _values(self, scope: str, attribute: str) -> list[float]:
        return [q.share[attribute] for q in self.per_query if q.scope == scope and attribute in q.share]

    def share(self, scope: str, attribute: str) -> Interval:
        """Mean share of shown facet mass on the exact products' values."""
        return bootstrap_ci(self._values(scope, attribute))

    def top_rate(self, scope: str, attribute: str) -> float:
        """Share of queries whose first shown value is an exact product's."""
        tops = [q.top_is_exact[attribute] for q in self.per_query if q.scope == scope and attribute in q.share]
        return float(np.mean(tops)) if tops else float("nan")

    def counted(self, scope: str) -> float:
        """Mean number of products the facets counted."""
        return float(np.mean([q.counted for q in self.per_query if q.scope == scope]))

    def best(self) -> str:
        """The scope with the highest mean share over both attributes."""
        return max(SCOPES, key=lambda s: sum(self.share(s, a).mean for a in ATTRIBUTES))

    def difference(self, scope: str, baseline: str, attribute: str) -> Interval:
        """Paired bootstrap difference of the share, scope minus baseline."""
        return paired_difference(self._values(scope, attribute), self._values(baseline, attribute))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        best = self.best()
        return {
            "queries": self.queries,
            "window": self.window,
            "shown": self.shown,
            "best": best,
            "scopes": {
                scope: {
                    "products_counted": self.counted(scope),
                    **{f"{a}_share": self.share(scope, a).as_dict() for a in ATTRIBUTES},
                    **{f"{a}_top_is_exact": self.top_rate(scope, a) for a in ATTRIBUTES},
                    **(
                        {}
                        if scope == best
                        else {f"{best}_minus_this_{a}": self.difference(best, scope, a).as_dict() for a in ATTRIBUTES}
                    ),
                }
                for scope in SCOPES
            },
            "per_query": [q.__dict__ for q in self.per_query],
        }


def _products(engine: LanceEngine, ids: Sequence[str]) -> dict[str, Product]:
    found: dict[str, Product] = {}
    for start in range(0, len(ids), LOOKUP_CHUNK):
        found.update((p.id, p) for p in engine.get(ids[start : start + LOOKUP_CHUNK]))
    return found


def scope_ids(engine: LanceEngine, text: str, vector: npt.NDArray[np.float32], window: int) -> dict[str, list[str]]:
    """The ids each scope counts: those in the ranked window first, in its order, then the rest."""
    query = RetrievalQuery(text, vector, "hybrid", window, Filters())
    ranked = [h.product.id for h in engine.retrieve(query).hits]
    knn = {h.product.id for h in engine.retrieve(RetrievalQuery(text, vector, "knn", window, Filters())).hits}
    any_word = set(engine.text_matches(query, minimum_should_match=None))
    shop_box = set(engine.text_matches(query))
    in_window = set(ranked)
    members = {
        "any_word+knn": any_word | knn,
        "shop_box+knn": shop_box | knn,
        "shop_box": shop_box,
        "shop_box&knn": shop_box & knn,
        "shop_box&knn|window": (shop_box & knn) or in_window,
        "shop_box&window": shop_box & in_window,
        "shop_box&window|window": (shop_box & in_window) or in_window,
        "window": in_window,
    }
    return {name: [*(i for i in ranked if i in ids), *sorted(ids - in_window)] for name, ids in members.items()}


def _exact_values(products: Mapping[str, Product], exact: Sequence[str]) -> dict[str, set[str]]:
    values: dict[str, set[str]] = {"category": set(), "brand": set()}
    for pid in exact:
        product = products.get(pid)
        if product is None:
            continue
        if product.category:
            values["category"].add(product.category[-1])
        if product.brand:
            values["brand"].add(product.brand)
    return values


def query_facets(
    query: str,
    scope: str,
    products: Sequence[Product],
    window: Sequence[Product],
    exact: Mapping[str, set[str]],
    shown: int,
) -> QueryFacets:
    """One scope's figures for one query: shown facet mass on the exact products' values."""
    shaped = shape_facets(count_facets(facet_row(p) for p in products), Filters(), window, shown=shown)
    share: dict[str, float] = {}
    top: dict[str, bool] = {}
    for attribute in ATTRIBUTES:
        if not exact[attribute]:
            continue  # no exact product has a value of this attribute: nothing to describe
        buckets = shaped[attribute]
        total = sum(b["count"] for b in buckets)
        on_exact = sum(b["count"] for b in buckets if b["value"] in exact[attribute])
        share[attribute] = on_exact / total if total else 0.0
        top[attribute] = bool(buckets) and buckets[0]["value"] in exact[attribute]
    return QueryFacets(query, scope, len(products), share, top)


def measure_facets(
    engine: LanceEngine, encoder: QueryEncoder, judgments: Judgments, window: int = 100, shown: int = VALUES_SHOWN
) -> FacetQualityReport:
    """Every scope's facet figures over the judged queries that have exact products in the catalogue."""
    per_query: list[QueryFacets] = []
    measured = 0
    for query, gains in judgments.gains.items():
        exact_ids = [pid for pid, gain in gains.items() if gain >= EXACT_GAIN]
        scopes = scope_ids(engine, query, encoder.encode_one(query), window)
        wanted = list(dict.fromkeys([*exact_ids, *(i for ids in scopes.values() for i in ids)]))
        products = _products(engine, wanted)
        exact = _exact_values(products, exact_ids)
        if not any(exact.values()):
            continue
        measured += 1
        window_products = [products[i] for i in scopes["window"] if i in products]
        for scope, ids in scopes.items():
            counted = [products[i] for i in ids if i in products]
            per_query.append(query_facets(query, scope, counted, window_products, exact, shown))
    return FacetQualityReport(measured, window, shown, per_query)


def format_report(report: FacetQualityReport) -> str:
    """The table `shoprank eval-facets` prints."""
    best = report.best()
    lines = [
        f"facet scopes over {report.queries} judged queries (hybrid window {report.window}, top {report.shown} "
        "values shown): share of the shown facet mass on the exact products' leaf categories / brands",
        f"{'scope':<22} {'products':>8}  {'category share [95% CI]':<24} {'brand share [95% CI]':<24} "
        f"{'top cat E':>9} {'top brand E':>11}",
    ]
    for scope in SCOPES:
        cat, brand = report.share(scope, "category"), report.share(scope, "brand")
        lines.append(
            f"{scope:<22} {report.counted(scope):>8.0f}  "
            f"{cat.mean:.3f} [{cat.low:.3f}, {cat.high:.3f}]    "
            f"{brand.mean:.3f} [{brand.low:.3f}, {brand.high:.3f}]    "
            f"{report.top_rate(scope, 'category'):>9.2f} {report.top_rate(scope, 'brand'):>11.2f}"
        )
    lines.append(f"best: {best}")
    for scope in SCOPES:
        if scope != best:
            cat, brand = report.difference(best, scope, "category"), report.difference(best, scope, "brand")
            lines.append(
                f"  {best} - {scope}: category {cat.mean:+.3f} [{cat.low:+.3f}, {cat.high:+.3f}], "
                f"brand {brand.mean:+.3f} [{brand.low:+.3f}, {brand.high:+.3f}]"
            )
    return "\n".join(lines)
