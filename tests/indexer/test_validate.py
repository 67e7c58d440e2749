"""Row validation: products, deletions and rejections with a reason that names what was wrong."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from indexer.readers import RawRow
from indexer.validate import Deletion, FieldMapping, Rejection, validate_row
from shoprank.schema import Product


def check(data: dict[str, Any] | None, mapping: FieldMapping | None = None, **row: Any) -> object:
    return validate_row(RawRow(row.pop("line", 3), data, row.pop("raw", ""), **row), mapping or FieldMapping())


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        ({"id": "a", "title": "x", "price": True}, "price"),
        ({"id": "a", "title": "x", "rating_count": False}, "rating_count"),
        ({"id": "a", "title": "x", "price": math.nan}, "price"),
        ({"id": "a", "title": "x", "price": "-0.5"}, "price"),
        ({"id": "a", "title": "x", "rating": math.inf}, "rating"),
        ({"id": 1.5, "title": "x"}, "id"),
        ({"id": None, "title": "x"}, "id"),
        ({"id": "a", "title": ["x"]}, "title"),
        ({"id": "a", "title": "x", "is_book": "perhaps"}, "is_book"),
        ({"id": "a", "title": "x", "_op": "archive"}, "_op"),
        ({"_op": "delete"}, "id"),
    ],
)
def test_rejections_name_the_field(data: dict[str, Any], kind: str) -> None:
    result = check(data, raw="")
    assert isinstance(result, Rejection)
    assert result.kind == kind
    assert result.line == 3
    assert json.loads(result.raw) == json.loads(json.dumps(data))  # the row is kept for the dead letter


def test_flat_file_values_and_ids() -> None:
    result = check({"id": 12, "title": "Mug", "is_book": "", "price": "3.50", "rating_count": "7"})
    assert isinstance(result, Product)
    assert (result.id, result.is_book, result.price, result.rating_count) == ("12", False, 3.5, 7)
    assert isinstance(check({"asin": "B01", "title": "From asin"}), Product)


def test_deletions_from_marker_and_bulk_action() -> None:
    assert check({"id": 7, "_op": " Delete "}) == Deletion(3, "7")
    assert check({"id": "x"}, action="delete") == Deletion(3, "x")
    refused = check({"id": None}, action="delete")
    assert isinstance(refused, Rejection)
    assert refused.kind == "id"
    assert isinstance(check({"id": "a", "title": "x", "_op": "upsert"}), Product)


def test_reader_errors_pass_through_with_their_kind() -> None:
    result = check(None, error="malformed JSON: Expecting value", raw="{oops")
    assert isinstance(result, Rejection)
    assert (result.kind, result.raw) == ("malformed JSON", "{oops")


def test_mapping_renames_nests_and_applies_to_delete_markers(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"id": "sku", "title": "info.name", "_op": "change"}))
    mapping = FieldMapping.load(path)
    product = check({"sku": "s1", "info": {"name": "Nested name"}}, mapping)
    assert isinstance(product, Product)
    assert (product.id, product.title) == ("s1", "Nested name")
    assert check({"sku": "s2", "change": "delete"}, mapping) == Deletion(3, "s2")
    missing = check({"sku": "s3", "info": "not an object"}, mapping)
    assert isinstance(missing, Rejection)
    assert missing.kind == "title"
    assert missing.id == "s3"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read the field mapping"):
        FieldMapping.load(path)


@pytest.mark.parametrize("data", [{"id": "a", "title": ""}, {"id": "a", "title": "  \n "}, {"id": " ", "title": "x"}])
def test_an_empty_required_field_says_so(data: dict[str, Any]) -> None:
    result = check(data)
    assert isinstance(result, Rejection)
    assert result.reason == f"{result.kind}: must not be empty"
