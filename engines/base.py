"""What every engine offers: versioned bulk writes behind an alias, incremental changes, and
BM25 / kNN / hybrid retrieval of a rerank window with the fields and vectors the sidecar needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, get_args

from shoprank.arrays import FloatArray
from shoprank.errors import UserError
from shoprank.schema import Product
from shoprank.vocabulary import RETRIEVAL_MODES as RETRIEVAL_MODES
from shoprank.vocabulary import RetrievalMode as RetrievalMode

# Why an engine could not answer, as a class a public answer may name (frontdoor/engine_errors.py
# maps each to an HTTP status; the details stay in the operator's message and the log).
EngineFailure = Literal[
    "unreachable",  # no connection (refused, DNS, TLS)
    "timeout",  # no answer within the request timeout
    "unauthorized",  # 401: wrong or missing credentials
    "forbidden",  # 403: the user may not do this
    "overloaded",  # 429: the cluster rejects work
    "unavailable",  # 502/503: the cluster (or a proxy in front of it) cannot serve now
    "failed",  # 500 and anything else that went wrong inside the engine
    "bad_answer",  # an answer that is not the engine's JSON (an HTML page, garbage, another shape)
    "rejected",  # 4xx: the engine refused the request itself
    "no_index",  # nothing is indexed yet
]
ENGINE_FAILURES: tuple[EngineFailure, ...] = get_args(EngineFailure)


class EngineError(UserError, RuntimeError):
    """The engine cannot do what was asked. The message is for the operator and says what to do
    (it may name the cluster URL, never credentials); `failure` is the class a shopper may see."""

    def __init__(self, message: str, failure: EngineFailure = "failed") -> None:
        super().__init__(message)
        self.failure: EngineFailure = failure


class NoLiveIndexError(EngineError):
    """Nothing has been indexed yet."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "no_index")


@dataclass(frozen=True)
class Filters:
    """Shopper filters: exact brand/category/color values (any-of) and a price range."""

    brands: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    colors: tuple[str, ...] = ()
    price_min: float | None = None
    price_max: float | None = None

    def is_empty(self) -> bool:
        """True when nothing is filtered."""
        return not (self.brands or self.categories or self.colors) and self.price_min is None and self.price_max is None


@dataclass(frozen=True)
class Hit:
    """One first-stage result with everything downstream needs."""

    product: Product
    score: float
    vector: FloatArray | None = None


@dataclass(frozen=True)
class WriteFailure:
    """A product the engine refused to store (e.g. a bulk item error), and why."""

    id: str
    reason: str


# Facets every engine returns, over the products engines.facet_counts defines (the shop-box text
# matches inside the kNN window, else the ranked window): brand, leaf category, color, and price
# in these USD buckets.
FACET_NAMES = ("brand", "category", "color", "price")
PRICE_BUCKETS: tuple[tuple[float, float | None], ...] = (
    (0, 10),
    (10, 25),
    (25, 50),
    (50, 100),
    (100, 250),
    (250, None),
)


def price_bucket_label(low: float, high: float | None) -> str:
    """Facet value of a price bucket, e.g. "10-25" or "250+"."""
    return f"{low:g}+" if high is None else f"{low:g}-{high:g}"


@dataclass(frozen=True)
class FacetBucket:
    value: str
    count: int


@dataclass
class RetrievalResult:
    hits: list[Hit]
    facets: dict[str, list[FacetBucket]] = field(default_factory=dict)


# How much deeper than `size` an engine looks for products a category boost may lift into the
# window: kNN lists (and LanceDB's BM25 list) are cut at a k, OpenSearch's BM25 scores every match.
BOOST_POOL = 3


@dataclass(frozen=True)
class CategoryBoost:
    """Multiply the first-stage score of products with `category` anywhere in their path by 1 + weight
    (query intent's soft boost: weight = intent_boost x P(category | query))."""

    category: str
    weight: float


def boost_factor(path: Sequence[str], boosts: Sequence[CategoryBoost]) -> float:
    """1 + the largest weight among the boosts whose category is in the product's path; 1 for none."""
    weights = [b.weight for b in boosts if b.category in path]
    return 1.0 + max(weights) if weights else 1.0


@dataclass(frozen=True)
class RetrievalQuery:
    """A first-stage query: text for BM25, vector for kNN, both for hybrid; `boosts` lift categories
    inside the engine's scoring (each list of a hybrid before fusion)."""

    text: str
    vector: FloatArray | None
    mode: RetrievalMode = "hybrid"
    size: int = 100
    filters: Filters = field(default_factory=Filters)
    with_vectors: bool = False
    with_facets: bool = False
    boosts: tuple[CategoryBoost, ...] = ()


class SearchEngine(Protocol):
    """Read side of an engine."""

    name: str

    def retrieve(self, query: RetrievalQuery) -> RetrievalResult:
        """Top `size` hits for the query, best first; facets (engines.facet_counts) when asked."""
        ...

    def get(self, ids: Sequence[str]) -> list[Product]:
        """Products by id (missing ids are skipped)."""
        ...

    def count(self) -> int:
        """Products in the live index."""
        ...


class VersionBuilder(Protocol):
    """A new physical index being filled; invisible to search until `commit`."""

    version: str

    def write(self, products: Sequence[Product], vectors: FloatArray) -> list[WriteFailure]:
        """Write a batch (a later write of an id replaces the earlier one); returns the rows the engine refused."""
        ...

    def write_deletes(self, ids: Sequence[str]) -> None:
        """Remove ids written earlier in this run (a later delete in the same catalogue)."""
        ...

    def commit(self) -> str:
        """Finish the version (indices, refresh, replicas), swap the alias to it atomically, prune old ones."""
        ...

    def abort(self) -> None:
        """Drop the unfinished version; the live index is untouched."""
        ...


class IndexWriter(Protocol):
    """Write side of an engine: versioned full rebuilds, rollback and incremental changes."""

    name: str

    def begin_version(self, dim: int, bi_encoder_version: str | None = None) -> VersionBuilder:
        """Start a new version, cleaning versions orphaned by killed runs; refuses a wrong vector dim.

        `bi_encoder_version` (the model that makes the vectors) is recorded with the version.
        """
        ...

    def bi_encoder_version(self) -> str | None:
        """The bi-encoder version the live version's vectors were made with, or None (not recorded, none live).

        Query vectors must come from the same model: the plugin's shoprank_embed reads it (OpenSearch:
        the index mapping's `_meta.shoprank.bi_encoder_version`).
        """
        ...

    def live_version(self) -> str | None:
        """The version search currently reads, or None before the first index."""
        ...

    def versions(self) -> list[str]:
        """Complete versions kept, newest first (the live one first)."""
        ...

    def rollback(self) -> str:
        """Make the previous complete version live again; returns it."""
        ...

    def upsert(self, products: Sequence[Product], vectors: FloatArray) -> list[WriteFailure]:
        """Insert or replace products by id in the live version; returns the rows the engine refused."""
        ...

    def delete(self, ids: Sequence[str]) -> int:
        """Delete products by id from the live version; returns how many ids were asked for."""
        ...


class Engine(SearchEngine, IndexWriter, Protocol):
    """Both sides of an engine: what `engines.factory.open_engine` returns."""
