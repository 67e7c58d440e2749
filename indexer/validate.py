"""Row validation: a raw catalogue row becomes a `Product` or a rejection with a readable reason."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from indexer.readers import RawRow
from shoprank.schema import Product


class FieldMapping(BaseModel):
    """Product field -> source column, for catalogues whose columns are named differently.

    Unmapped fields are read from the column of the same name; ESCI's `asin` is the id by default.
    """

    fields: dict[str, str] = {}

    @classmethod
    def load(cls, path: Path | None) -> FieldMapping:
        """Read a JSON mapping file ({"title": "product_name", ...}); None means identity."""
        if path is None:
            return cls()
        data = json.loads(path.read_text())
        unknown = sorted(set(data) - set(Product.model_fields))
        if unknown:
            raise ValueError(
                f"mapping {path} names unknown product fields {unknown}; known: {sorted(Product.model_fields)}"
            )
        return cls(fields=data)

    def apply(self, row: dict[str, Any]) -> dict[str, Any]:
        """Rename source columns to product fields."""
        out = dict(row)
        for target, source in self.fields.items():
            out[target] = row.get(source)
        if out.get("id") in (None, "") and "asin" in row and "id" not in self.fields:
            out["id"] = row["asin"]
        return out


@dataclass
class Rejection:
    """A row that could not be indexed, and why."""

    line: int
    reason: str
    raw: str
    id: str | None = None


def _reason(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "row"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def validate_row(row: RawRow, mapping: FieldMapping) -> Product | Rejection:
    """Validate one raw row into a Product, or say why it was rejected."""
    if row.error is not None or row.data is None:
        return Rejection(row.line, row.error or "empty row", row.raw)
    data = mapping.apply(row.data)
    try:
        return Product.model_validate(data)
    except ValidationError as exc:
        raw_id = data.get("id")
        return Rejection(row.line, _reason(exc), row.raw, raw_id if isinstance(raw_id, str) else None)
