"""What every engine promises, asserted on each implementation with the same tests.

Write side: a full reindex is a new version that search cannot see until it is committed and
the alias swaps to it; rollback; keep-N pruning; a build killed mid-way never goes live and is
cleaned by the next run; a wrong vector dimension is refused before anything is written;
incremental upsert/delete by id; the indexer dead-letters bad rows and indexes the rest.
Read side (engines that rank): BM25, kNN and hybrid with filters and facets, stored vectors for
the sidecar, and the same order for the same query (pages are slices of one window).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from benchmarks.hashed_encoder import HashedEncoder
from engines.base import BOOST_POOL, CategoryBoost, Engine, EngineError, Filters, NoLiveIndexError, RetrievalQuery
from indexer.dead_letter import DeadLetter
from indexer.pipeline import Indexer
from shoprank.arrays import FloatArray
from shoprank.schema import VECTOR_DIM, Product
from tests.engine_contract.harness import EngineHarness

# (id, title, brand, color, category path, price, group): products of a group share part of their vector.
CATALOGUE = [
    ("shoe-red-acme", "Acme red trail running shoe", "Acme", "Red", ["Shoes", "Running"], 60.0, 0),
    ("shoe-blue-zed", "Zed blue trail running shoe", "Zed", "Blue", ["Shoes", "Running"], 40.0, 0),
    ("boot-black-acme", "Acme black hiking boot", "Acme", "Black", ["Shoes", "Hiking"], 120.0, 0),
    ("mug-red-zed", "Zed red coffee mug", "Zed", "Red", ["Kitchen", "Mugs"], 8.0, 1),
    ("towel-white-acme", "Acme white kitchen towel", "Acme", "White", ["Kitchen", "Towels"], 12.0, 1),
    ("lamp-black-zed", "Zed black desk lamp", "Zed", "Black", ["Home", "Lighting"], 30.0, 2),
]
GROUP_AXIS = 100  # the group's shared direction starts here, far from the per-product axes


def products(prefix: str = "") -> list[Product]:
    """The contract catalogue (ids prefixed to tell versions apart)."""
    return [
        Product(id=f"{prefix}{pid}", title=title, brand=brand, color=color, category=category, price=price)
        for pid, title, brand, color, category, price, _ in CATALOGUE
    ]


def vectors(count: int | None = None) -> FloatArray:
    """Unit vectors: product i on its own axis, plus half a unit on its group's axis."""
    rows = CATALOGUE if count is None else CATALOGUE[:count]
    out = np.zeros((len(rows), VECTOR_DIM), dtype=np.float32)
    for i, row in enumerate(rows):
        out[i, i] = 1.0
        out[i, GROUP_AXIS + row[6]] = 0.5
    normalised: FloatArray = out / np.linalg.norm(out, axis=1, keepdims=True)
    return normalised


def query_vector(product_index: int) -> FloatArray:
    """A query vector nearest to one product of the catalogue."""
    vector: FloatArray = vectors()[product_index]
    return vector


def build(engine: Engine, items: list[Product]) -> str:
    """A committed full reindex of `items`; returns its version."""
    builder = engine.begin_version(VECTOR_DIM)
    assert builder.write(items, vectors(len(items))) == []
    return builder.commit()


def live_ids(engine: Engine, prefix: str = "") -> set[str]:
    """Which of the catalogue's ids (with `prefix`) the live version holds."""
    return {p.id for p in engine.get([f"{prefix}{row[0]}" for row in CATALOGUE])}


# ---- write side: every implementation ---------------------------------------------------------


def test_nothing_indexed_says_what_to_do(harness: EngineHarness) -> None:
    engine = harness.open()
    assert engine.live_version() is None
    with pytest.raises(NoLiveIndexError):
        engine.count()


def test_a_full_reindex_is_invisible_until_commit_then_swaps(harness: EngineHarness) -> None:
    engine = harness.open()
    first = build(engine, products("old-"))
    builder = engine.begin_version(VECTOR_DIM)
    builder.write(products("new-")[:3], vectors(3))

    assert engine.live_version() == first
    assert live_ids(engine, "new-") == set()
    assert engine.count() == len(CATALOGUE)

    second = builder.commit()
    assert second != first
    assert engine.live_version() == second
    assert engine.versions() == [second, first]
    assert live_ids(engine, "new-") == {f"new-{row[0]}" for row in CATALOGUE[:3]}
    assert live_ids(engine, "old-") == set()
    assert engine.count() == 3


def test_rollback_makes_the_previous_version_live_and_stops_at_the_oldest(harness: EngineHarness) -> None:
    engine = harness.open()
    first = build(engine, products("v1-"))
    build(engine, products("v2-"))

    assert engine.rollback() == first
    assert engine.live_version() == first
    assert len(live_ids(engine, "v1-")) == len(CATALOGUE)
    assert live_ids(engine, "v2-") == set()
    with pytest.raises(EngineError, match="nothing to roll back to"):
        engine.rollback()
    assert engine.live_version() == first


def test_keep_n_prunes_the_oldest_versions(harness: EngineHarness) -> None:
    engine = harness.open(keep_versions=2)
    made = [build(engine, products(f"g{g}-")) for g in range(3)]
    assert engine.versions() == [made[2], made[1]]
    assert harness.physical_versions(engine) == sorted(made[1:])


def test_a_killed_build_never_goes_live_and_the_next_run_cleans_it(harness: EngineHarness) -> None:
    engine = harness.open()
    live = build(engine, products("live-"))
    killed = engine.begin_version(VECTOR_DIM)
    killed.write(products("half-")[:2], vectors(2))
    harness.kill(killed)

    assert engine.live_version() == live
    assert live_ids(engine, "half-") == set()
    rerun = build(engine, products("rerun-"))
    assert killed.version not in harness.physical_versions(engine)
    assert engine.versions() == [rerun, live]


def test_a_wrong_vector_dimension_is_refused_before_anything_is_written(harness: EngineHarness) -> None:
    engine = harness.open()
    live = build(engine, products())
    before = harness.physical_versions(engine)
    with pytest.raises(EngineError, match="128 dimensions"):
        engine.begin_version(128)
    assert harness.physical_versions(engine) == before
    assert engine.live_version() == live


def test_upsert_and_delete_by_id_change_the_live_version(harness: EngineHarness) -> None:
    engine = harness.open()
    build(engine, products())
    renamed = products()[0].model_copy(update={"title": "Acme red trail running shoe, wide fit"})
    added = Product(id="sock-grey-zed", title="Zed grey wool sock", brand="Zed", category=["Clothing", "Socks"])

    assert engine.upsert([renamed, added], vectors(2)) == []
    assert engine.delete(["mug-red-zed"]) == 1

    stored = {p.id: p for p in engine.get(["shoe-red-acme", "sock-grey-zed", "mug-red-zed"])}
    assert set(stored) == {"shoe-red-acme", "sock-grey-zed"}
    assert stored["shoe-red-acme"].title.endswith("wide fit")
    assert engine.count() == len(CATALOGUE) + 1 - 1


def test_the_indexer_dead_letters_bad_rows_and_indexes_the_rest(harness: EngineHarness, tmp_path: Path) -> None:
    engine = harness.open()
    good = [{"id": row[0], "title": row[1], "brand": row[2], "category": row[4]} for row in CATALOGUE]
    bad = [
        '{"id": "", "title": "empty id"}',
        '{"id": "no-title"}',
        "{not json",
        '{"id": "p", "title": "x", "price": -1}',
    ]
    catalogue = tmp_path / "catalogue.jsonl"
    catalogue.write_text("\n".join([*(json.dumps(row) for row in good), *bad]) + "\n", encoding="utf-8")
    letters = tmp_path / "dead.jsonl"

    with DeadLetter(letters) as dead_letter:
        report = Indexer(engine, HashedEncoder(), dead_letter, max_reject_ratio=1.0).full(catalogue)

    assert (report.indexed, report.rejected) == (len(good), len(bad))
    rejected = [json.loads(line) for line in letters.read_text().splitlines()]
    assert len(rejected) == len(bad)
    assert all(entry["reason"] for entry in rejected)
    assert live_ids(engine) == {row[0] for row in CATALOGUE}


def test_each_version_records_the_bi_encoder_its_vectors_came_from(harness: EngineHarness) -> None:
    engine = harness.open()
    assert engine.bi_encoder_version() is None
    first = engine.begin_version(VECTOR_DIM, "minilm-aaaa")
    assert first.write(products(), vectors()) == []
    first.commit()
    assert engine.bi_encoder_version() == "minilm-aaaa"
    engine.upsert(products("more-")[:1], vectors(1))
    assert engine.bi_encoder_version() == "minilm-aaaa"  # incremental changes keep the version's model
    second = engine.begin_version(VECTOR_DIM, "minilm-bbbb")
    assert second.write(products(), vectors()) == []
    second.commit()
    assert engine.bi_encoder_version() == "minilm-bbbb"
    engine.rollback()
    assert engine.bi_encoder_version() == "minilm-aaaa"


class _OtherModel(HashedEncoder):
    version = "hashed-words-other"


def test_the_indexer_records_its_model_and_refuses_an_incremental_run_with_another(
    harness: EngineHarness, tmp_path: Path
) -> None:
    engine = harness.open()
    catalogue = tmp_path / "catalogue.jsonl"
    catalogue.write_text("".join(json.dumps(p.model_dump(exclude_none=True)) + "\n" for p in products()))
    Indexer(engine, HashedEncoder(), DeadLetter(None)).full(catalogue)
    assert engine.bi_encoder_version() == HashedEncoder.version
    with pytest.raises(EngineError, match=r"built with bi-encoder 'hashed-words-384'.*full `shoprank index"):
        Indexer(engine, _OtherModel(), DeadLetter(None)).incremental(catalogue)
    Indexer(engine, HashedEncoder(), DeadLetter(None)).incremental(catalogue)  # the same model may change it


# ---- read side: engines that rank --------------------------------------------------------------


@pytest.fixture
def ranked(scoring_harness: EngineHarness) -> Engine:
    """A ranking engine holding the contract catalogue."""
    engine = scoring_harness.open()
    build(engine, products())
    return engine


def ids(engine: Engine, query: RetrievalQuery) -> list[str]:
    return [hit.product.id for hit in engine.retrieve(query).hits]


def test_bm25_ranks_the_product_matching_every_term_first(ranked: Engine) -> None:
    order = ids(ranked, RetrievalQuery("red trail shoe", None, mode="bm25", size=10))
    assert order[0] == "shoe-red-acme"
    assert order.index("shoe-blue-zed") < (order.index("mug-red-zed") if "mug-red-zed" in order else len(order))


def test_knn_ranks_the_nearest_vectors_first(ranked: Engine) -> None:
    order = ids(ranked, RetrievalQuery("", query_vector(2), mode="knn", size=3))
    assert order[0] == "boot-black-acme"
    assert set(order) == {"boot-black-acme", "shoe-red-acme", "shoe-blue-zed"}  # its group


def test_hybrid_puts_the_product_strong_in_both_first(ranked: Engine) -> None:
    order = ids(ranked, RetrievalQuery("trail running shoe", query_vector(1), mode="hybrid", size=10))
    assert order[0] == "shoe-blue-zed"
    assert "shoe-red-acme" in order[:3]


@pytest.mark.parametrize("mode", ["bm25", "knn", "hybrid"])
def test_filters_restrict_every_mode(ranked: Engine, mode: str) -> None:
    text, vector = "acme red shoe boot towel", query_vector(0)
    by_brand = ranked.retrieve(RetrievalQuery(text, vector, mode=mode, size=10, filters=Filters(brands=("Acme",))))  # type: ignore[arg-type]
    assert by_brand.hits
    assert {hit.product.brand for hit in by_brand.hits} == {"Acme"}
    cheap = ranked.retrieve(RetrievalQuery(text, vector, mode=mode, size=10, filters=Filters(price_max=50.0)))  # type: ignore[arg-type]
    assert all(hit.product.price is not None and hit.product.price <= 50.0 for hit in cheap.hits)
    kitchen = Filters(categories=("Kitchen",), colors=("White",))
    only = ranked.retrieve(RetrievalQuery(text, vector, mode=mode, size=10, filters=kitchen))  # type: ignore[arg-type]
    assert [hit.product.id for hit in only.hits] in ([], ["towel-white-acme"])


def test_facets_count_the_filtered_matches_and_leave_the_hits_alone(ranked: Engine) -> None:
    query = RetrievalQuery("", query_vector(0), mode="knn", size=3)
    plain = ranked.retrieve(query)
    faceted = ranked.retrieve(RetrievalQuery("", query_vector(0), mode="knn", size=3, with_facets=True))
    assert [h.product.id for h in faceted.hits] == [h.product.id for h in plain.hits]
    brands = {bucket.value: bucket.count for bucket in faceted.facets["brand"]}
    assert brands == {"Acme": 2, "Zed": 1}
    categories = {bucket.value: bucket.count for bucket in faceted.facets["category"]}
    assert categories == {"Running": 2, "Hiking": 1}


def test_stored_vectors_come_back_for_the_sidecar(ranked: Engine) -> None:
    hits = ranked.retrieve(RetrievalQuery("", query_vector(3), mode="knn", size=1, with_vectors=True)).hits
    assert hits[0].product.id == "mug-red-zed"
    assert hits[0].vector is not None
    np.testing.assert_allclose(hits[0].vector, vectors()[3], atol=1e-6)


@pytest.mark.parametrize("mode", ["bm25", "knn", "hybrid"])
def test_the_same_query_gives_the_same_order(ranked: Engine, mode: str) -> None:
    query = RetrievalQuery("acme shoe", query_vector(5), mode=mode, size=10)  # type: ignore[arg-type]
    first = [(h.product.id, h.score) for h in ranked.retrieve(query).hits]
    assert first
    assert all([(h.product.id, h.score) for h in ranked.retrieve(query).hits] == first for _ in range(3))


@pytest.mark.parametrize("mode", ["bm25", "knn", "hybrid"])
def test_a_category_boost_lifts_its_products_from_below_the_window_inside_the_engine(ranked: Engine, mode: str) -> None:
    size = 1 if mode == "bm25" else 2  # "red" matches two products; kNN ranks the three shoes first
    plain = RetrievalQuery("red", query_vector(0), mode=mode, size=size)  # type: ignore[arg-type]
    shown = {hit.product.category[0] for hit in ranked.retrieve(plain).hits}
    pool = [h.product for h in ranked.retrieve(replace(plain, size=size * BOOST_POOL)).hits]
    # The best product of a top-level category the window does not show (all of it below the cut).
    below = next(p for p in pool if p.category[0] not in shown)
    lift = (CategoryBoost(below.category[0], 5.0),)  # x6 on every product whose path holds that category
    boosted = [h.product.id for h in ranked.retrieve(replace(plain, boosts=lift)).hits]
    # From below the cut into the window: first in a single list; in hybrid the boost acts inside
    # each list before fusion, so a product the text list lacks can tie with the text list's best.
    assert boosted[0] == below.id if mode != "hybrid" else below.id in boosted
    nothing = (CategoryBoost(below.category[0], 0.0),)
    same = ranked.retrieve(replace(plain, boosts=nothing)).hits
    assert [h.score for h in same] == pytest.approx([h.score for h in ranked.retrieve(plain).hits])


def test_a_boost_never_changes_what_the_facets_count(ranked: Engine) -> None:
    query = RetrievalQuery("red", query_vector(0), mode="hybrid", size=2, with_facets=True)
    plain = ranked.retrieve(query).facets
    boosted = ranked.retrieve(replace(query, boosts=(CategoryBoost("Kitchen", 5.0),))).facets
    assert {k: sorted((b.value, b.count) for b in v) for k, v in boosted.items()} == {
        k: sorted((b.value, b.count) for b in v) for k, v in plain.items()
    }
