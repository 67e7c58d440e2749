"""Cached product-side tokens give exactly the pairs the tokenizer's own pair encoding gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer

from shoprank.model_meta import CROSS_ENCODER, TOKENIZER_FILE
from sidecar.cross_encoder import CrossEncoder
from sidecar.product_tokens import ProductTokenCache

TEXTS = [
    "Cotton Kitchen Towels, Set of 6 [SEP] brand: Utopia [SEP] color: Grey",
    "Crème brûlée torch – ÉLITE (stainless) [SEP] category: Kitchen > Tools",
    "LEGO Star Wars Millennium Falcon building kit, 1351 pieces " * 40,  # far past the budget
    "x" * 3000 + " tail words",  # one word longer than the prefix cut
    "",
    "usb-c 65w gan charger; foldable plug; 3 ports",
]


def _reference(models: Path, max_length: int, query: str, texts: list[str]) -> list[tuple[list[int], list[int]]]:
    tokenizer = Tokenizer.from_file(str(models / CROSS_ENCODER / TOKENIZER_FILE))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length, strategy="only_second")
    return [(e.ids, e.type_ids) for e in tokenizer.encode_batch([(query, t) for t in texts])]


@pytest.mark.parametrize("max_length", [32, 128])
@pytest.mark.parametrize("query", ["kitchen towels", "Crème BRÛLÉE torch without gas"])
def test_cached_pairs_equal_the_tokenizers_pairs(tiny_models: Path, max_length: int, query: str) -> None:
    encoder = CrossEncoder(tiny_models, max_length=max_length, threads=1)
    expected = _reference(tiny_models, max_length, query, TEXTS)
    for _ in range(2):  # the second pass reads every product from the cache
        pairs = encoder.tokenize_texts(query, TEXTS)
        assert list(zip(pairs.ids, pairs.type_ids, strict=True)) == expected
    assert encoder.product_tokens.hits >= len(TEXTS)


def test_a_long_query_still_gives_way_longest_first(tiny_models: Path) -> None:
    encoder = CrossEncoder(tiny_models, max_length=32, threads=1)
    query = "very long pasted query " * 20
    pairs = encoder.tokenize_texts(query, TEXTS[:2])
    assert all(len(ids) == 32 for ids in pairs.ids)
    assert all(1 in types for types in pairs.type_ids)  # the product kept some room


def test_an_edited_product_misses_and_the_cache_is_bounded() -> None:
    cache = ProductTokenCache(max_entries=2, limit=3)
    calls: list[list[str]] = []

    def encode(texts: list[str]) -> list[list[int]]:
        calls.append(texts)
        return [[len(t), 1, 2, 3, 4] for t in texts]

    assert [ids.tolist() for ids in cache.ids(["ab", "abc"], encode)] == [[2, 1, 2], [3, 1, 2]]
    cache.ids(["ab", "abcd"], encode)  # "abcd": the edited product's new text
    assert calls == [["ab", "abc"], ["abcd"]]
    assert len(cache) == 2
    cache.ids(["abc"], encode)  # evicted as least recently used
    assert calls[-1] == ["abc"]
