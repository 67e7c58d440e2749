"""Measured figures live in docs/results/*.json; this renders them into the docs' tables.

A result file is one measurement: what was run (`command`), when (`date`), on what (`hardware`),
and its `tables` (columns and rows of numbers, strings or {"value", "ci", "bold"} cells). A doc
shows a file's tables between `<!-- results:NAME -->` and `<!-- /results:NAME -->` (NAME: the
file's stem); `shoprank docs` rewrites those blocks and `--check` fails when one is stale. A
result file no doc names is still shown, in docs/benchmarks.md's "Other results" block: as its
tables when it has them, else as a generic key/value table of its figures (so a benchmark's own
`--json` output can be dropped in as it is).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OTHERS = "other"  # the block that shows result files no doc names
MINUS = "\u2212"
GENERIC_ROWS = 80  # a generic rendering shows at most this many figures


@dataclass(frozen=True)
class Column:
    """A table column: its heading and how its numbers are written."""

    name: str
    decimals: int | None = None  # None: numbers as written in the file
    unit: str = ""  # appended to each number, e.g. "%"
    signed: bool = False  # "+1.2" / "−1.2" (a change against a baseline)


def _column(spec: str | Mapping[str, Any]) -> Column:
    if isinstance(spec, str):
        return Column(spec)
    return Column(str(spec["name"]), spec.get("decimals"), str(spec.get("unit", "")), bool(spec.get("signed", False)))


def _number(value: float, column: Column) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    # An integer in the file is a count: never written with decimals.
    exact = isinstance(value, int) or column.decimals is None
    text = str(value) if exact else f"{value:.{column.decimals}f}"
    if column.signed and value > 0:
        text = "+" + text
    return text.replace("-", MINUS) + column.unit


def render_cell(cell: Any, column: Column) -> str:
    """One table cell as markdown."""
    if cell is None:
        return "–"
    if isinstance(cell, Mapping):
        text = render_cell(cell.get("value"), column)
        if "ci" in cell:
            low, high = cell["ci"]
            text += f" [{render_cell(low, column)}, {render_cell(high, column)}]"
        return f"**{text}**" if cell.get("bold") else text
    if isinstance(cell, int | float):
        return _number(cell, column)
    return str(cell).replace("|", "\\|")


def render_table(table: Mapping[str, Any]) -> str:
    """One table of a result file as a markdown table."""
    columns = [_column(spec) for spec in table["columns"]]
    lines = ["| " + " | ".join(c.name for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in table["rows"]:
        if len(row) != len(columns):
            raise ValueError(f"table {table.get('name', '')!r}: a row has {len(row)} cells for {len(columns)} columns")
        lines.append("| " + " | ".join(render_cell(cell, c) for cell, c in zip(row, columns, strict=True)) + " |")
    return "\n".join(lines)


def provenance(result: Mapping[str, Any], path: Path) -> str:
    """The line above a result's tables: when, on what, by which command, from which file."""
    parts = []
    if result.get("date"):
        parts.append(f"measured {result['date']}")
    if result.get("hardware"):
        parts.append(f"on {result['hardware']}")
    if result.get("command"):
        parts.append(f"by `{result['command']}`")
    said = " ".join(parts) or "figures"
    return f"<sub>{said[0].upper() + said[1:]} ([{path.name}](results/{path.name})).</sub>"


def render_result(result: Mapping[str, Any], path: Path) -> str:
    """A result file's tables with their provenance, or a generic table of its figures."""
    tables = result.get("tables")
    if isinstance(tables, list) and tables:
        body = "\n\n".join(
            (f"*{t['name']}*\n\n" if t.get("name") and len(tables) > 1 else "") + render_table(t) for t in tables
        )
    else:
        body = _generic(result)
    return provenance(result, path) + "\n\n" + body


def _leaves(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        return [leaf for key, item in value.items() for leaf in _leaves(item, f"{prefix}.{key}" if prefix else key)]
    if isinstance(value, list) and not all(isinstance(item, int | float | str) for item in value):
        return [leaf for i, item in enumerate(value) for leaf in _leaves(item, f"{prefix}[{i}]")]
    return [(prefix, value)]


def _generic(result: Mapping[str, Any]) -> str:
    """Any JSON as a figure/value table (provenance keys left out: they head it)."""
    leaves = [(k, v) for k, v in _leaves(result) if k not in ("date", "hardware", "command", "title")]
    shown = [
        f"| `{key}` | {render_cell(json.dumps(value) if isinstance(value, list) else value, Column(key))} |"
        for key, value in leaves[:GENERIC_ROWS]
    ]
    more = [f"\n\n({len(leaves) - GENERIC_ROWS} more figures in the file)"] if len(leaves) > GENERIC_ROWS else []
    return "\n".join(["| figure | value |", "|---|---|", *shown]) + "".join(more)


BLOCK = re.compile(r"(<!-- results:(?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /results:(?P=name) -->)", re.DOTALL)


def load_results(directory: Path) -> dict[str, tuple[Path, Any]]:
    """Every result file by name (its stem); a file that is not JSON names itself in the error."""
    results: dict[str, tuple[Path, Any]] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            results[path.stem] = (path, json.loads(path.read_text(encoding="utf-8")))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not JSON ({error.msg} at line {error.lineno}); fix or remove it") from error
    return results


def render_doc(text: str, results: Mapping[str, tuple[Path, Any]], unnamed: Sequence[str] = ()) -> str:
    """The doc with each results block rewritten; the OTHERS block gets the `unnamed` results."""

    def block(match: re.Match[str]) -> str:
        name = match["name"]
        if name == OTHERS:
            body = "\n\n".join(
                f"### {_title(results[n][1], n)}\n\n{render_result(results[n][1], results[n][0])}" for n in unnamed
            )
            body = body or "None: every result file is shown above."
        elif name in results:
            path, result = results[name]
            body = render_result(result, path)
        else:
            raise ValueError(f"a doc shows results:{name}, but docs/results/{name}.json does not exist")
        return f"{match.group(1)}{body}\n{match.group(4)}"

    return BLOCK.sub(block, text)


def _title(result: Any, name: str) -> str:
    return str(result.get("title", name)) if isinstance(result, Mapping) else name


def named_blocks(text: str) -> set[str]:
    """The result names a doc shows."""
    return {m["name"] for m in BLOCK.finditer(text)} - {OTHERS}


def render_docs(docs: Sequence[Path], results_dir: Path) -> dict[Path, str]:
    """Each doc's rendered text (results no doc names go to the doc with an OTHERS block)."""
    results = load_results(results_dir)
    texts = {path: path.read_text(encoding="utf-8") for path in docs}
    named = set().union(*(named_blocks(text) for text in texts.values()))
    unnamed = sorted(set(results) - named)
    return {path: render_doc(text, results, unnamed) for path, text in texts.items()}
