"""Row validation: a raw catalogue row becomes a `Product`, a `Deletion`, or a `Rejection` with a reason.

Rejection reasons read "<kind>: <detail>", where the kind is a product field ("price: ...")
or what was wrong with the record ("malformed JSON: ...", "csv: ..."); reports count by kind.
A row is a deletion when it came from a bulk `delete` action, or when its `_op` column is
"delete" (JSONL, CSV, Parquet); `_op` "upsert"/"index" or empty is an ordinary product.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from indexer.readers import RawRow
from shoprank.errors import UserInputError
from shoprank.schema import Product, parse_product_id

# Column that marks a change row in JSONL/CSV/Parquet changes files.
OP_FIELD = "_op"
DELETE_OPS = frozenset({"delete"})
UPSERT_OPS = frozenset({"", "upsert", "index"})


class FieldMapping(BaseModel):
    """Product field -> source column, for catalogues whose columns are named differently.

    Unmapped fields are read from the column of the same name; ESCI's `asin` is the id when
    there is no `id`. A source may be a dotted path into nested JSON objects ("details.brand").
    """

    fields: dict[str, str] = {}

    @classmethod
    def load(cls, path: Path | None) -> FieldMapping:
        """Read a JSON mapping file ({"title": "product_name", ...}); None means identity."""
        if path is None:
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserInputError(f"cannot read the field mapping {path}: {exc}") from exc
        if not isinstance(data, dict) or not all(isinstance(v, str) and v for v in data.values()):
            raise UserInputError(
                f'mapping {path} must be a JSON object of product field -> column, e.g. {{"title": "name"}}'
            )
        known = set(Product.model_fields) | {OP_FIELD}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserInputError(f"mapping {path} names unknown product fields {unknown}; known: {sorted(known)}")
        return cls(fields=data)

    def apply(self, row: dict[str, Any]) -> dict[str, Any]:
        """Rename source columns to product fields."""
        if not self.fields:
            out = row
        else:
            out = dict(row)
            for target, source in self.fields.items():
                out[target] = _lookup(row, source)
        if out.get("id") in (None, "") and "asin" in row and "id" not in self.fields:
            out = {**out, "id": row["asin"]}
        return out


def _lookup(row: dict[str, Any], source: str) -> Any:
    if source in row or "." not in source:
        return row.get(source)
    value: Any = row
    for part in source.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


@dataclass
class Rejection:
    """A row that could not be indexed, and why."""

    line: int
    reason: str
    raw: str
    id: str | None = None

    @property
    def kind(self) -> str:
        """What was wrong, for counting: the field name or the record problem."""
        return self.reason.split(":", 1)[0]


@dataclass
class Deletion:
    """A change row that removes a product by id."""

    line: int
    id: str


# pydantic's words for an empty required text ("at least 1 item after validation") say less than ours.
EMPTY_ERRORS = frozenset({"string_too_short", "too_short"})


def _reason(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "row"
        message = item["msg"].removeprefix("Value error, ")
        value = item.get("input")
        if item["type"] in EMPTY_ERRORS and (value is None or (isinstance(value, str) and not value.strip())):
            message = "must not be empty"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def _id_or_none(value: Any) -> str | None:
    try:
        return parse_product_id(value) or None
    except ValueError:
        return None


def validate_row(row: RawRow, mapping: FieldMapping) -> Product | Deletion | Rejection:
    """Validate one raw row into a Product or a Deletion, or say why it was rejected."""
    if row.error is not None or row.data is None:
        return Rejection(row.line, row.error or "empty row", row.raw_text())
    if row.action == "delete":
        # A bulk delete action: the id is the action's _id, never re-mapped.
        doc_id = _id_or_none(row.data.get("id"))
        if doc_id is None:
            return Rejection(row.line, "id: a bulk delete action needs an _id", row.raw_text())
        return Deletion(row.line, doc_id)
    data = mapping.apply(row.data)
    op = data.get(OP_FIELD)
    op = op.strip().lower() if isinstance(op, str) else op
    if op is not None and op not in UPSERT_OPS:
        if op not in DELETE_OPS:
            return Rejection(
                row.line, f"{OP_FIELD}: unknown operation {op!r}; use 'upsert' or 'delete'", row.raw_text()
            )
        doc_id = _id_or_none(data.get("id"))
        if doc_id is None:
            return Rejection(row.line, "id: a delete row needs the id of the product to delete", row.raw_text())
        return Deletion(row.line, doc_id)
    try:
        return Product.model_validate(data)
    except ValidationError as exc:
        return Rejection(row.line, _reason(exc), row.raw_text(), _id_or_none(data.get("id")))
