"""`shoprank eval-facets`'s measurement on the test stack: the scopes it compares and the share it reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from engines.lance import LanceEngine
from evaluation.facet_quality import SCOPES, SERVED, measure_facets, query_facets
from relevance.judgments import Judgments
from shoprank.bi_encoder import BiEncoder
from shoprank.schema import Product
from tests.frontdoor.conftest import catalogue_rows


def test_the_share_is_the_shown_mass_on_the_exact_products_values() -> None:
    products = [
        Product(id="1", title="t", brand="A", category=["X", "Mugs"]),
        Product(id="2", title="t", brand="B", category=["X", "Mugs"]),
        Product(id="3", title="t", brand="B", category=["X", "Lamps"]),
        Product(id="4", title="t", brand="", category=[]),
    ]
    figures = query_facets("q", "window", products, products, {"category": {"Mugs"}, "brand": {"B"}}, shown=20)
    assert figures.share == {"category": pytest.approx(2 / 3), "brand": pytest.approx(2 / 3)}
    assert figures.top_is_exact == {"category": True, "brand": True}
    # Only the shown values count: with one value shown per facet, Mugs (2) and B (2) are all there is.
    assert query_facets("q", "w", products, products, {"category": {"Mugs"}, "brand": {"A"}}, shown=1).share == {
        "category": 1.0,
        "brand": 0.0,
    }


def test_the_served_scope_describes_red_mugs_and_any_word_does_not(stack_dir: Path) -> None:
    red_mugs = [r["id"] for r in catalogue_rows() if r["id"].startswith("mug-") and r["color"] == "Red"]
    judgments = Judgments({"red mug": dict.fromkeys(red_mugs, 1.0)})
    report = measure_facets(LanceEngine(stack_dir / "lancedb"), BiEncoder(stack_dir / "models"), judgments, window=72)
    assert report.queries == 1
    assert {q.scope for q in report.per_query} == set(SCOPES)
    assert report.share(SERVED, "category").mean == 1.0
    assert report.share("any_word+knn", "category").mean < 0.5
    assert report.best() in {SERVED, "shop_box&knn", "shop_box", "shop_box&window", "shop_box&window|window"}
    assert report.as_dict()["scopes"][SERVED]["products_counted"] == len(red_mugs)
