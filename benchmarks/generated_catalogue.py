"""Catalogues of any size generated from real ESCI products, for throughput and memory runs.

Product k is ESCI product k mod n with an id and a title of its own (a variant number and a
size/pack word), so every row is a distinct product whose text has ESCI's length distribution.
Written as JSONL, streamed: generating 200k rows holds only the ESCI sample in memory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from indexer.readers import read_catalogue
from indexer.validate import FieldMapping, validate_row
from shoprank.errors import UserInputError
from shoprank.schema import Product

VARIANTS = ("Small", "Medium", "Large", "XL", "2-Pack", "4-Pack", "Family Size", "Travel Size")


def load_sample(path: Path) -> list[dict[str, Any]]:
    """The valid products of a catalogue as plain rows."""
    rows = []
    for raw in read_catalogue(path):
        product = validate_row(raw, FieldMapping())
        if isinstance(product, Product):
            rows.append(product.model_dump())
    if not rows:
        raise UserInputError(f"no valid products in {path} to generate a catalogue from")
    return rows


def write_generated(sample: list[dict[str, Any]], size: int, path: Path) -> Path:
    """A JSONL catalogue of `size` distinct products derived from `sample`."""
    with path.open("w", encoding="utf-8") as handle:
        for k in range(size):
            base = sample[k % len(sample)]
            variant = k // len(sample)
            row = {
                **base,
                "id": f"{base['id']}-g{k}",
                "title": f"{base['title']} {VARIANTS[variant % len(VARIANTS)]} (v{variant})",
            }
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path
