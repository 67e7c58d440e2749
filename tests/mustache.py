"""The subset of OpenSearch's mustache that the shop-box template uses, to render it in tests:
`{{name}}` (JSON-escaped, dotted names), `{{#name}}...{{/name}}` sections on objects/values
(no iteration), `{{^name}}...{{/name}}` inverted sections and `{{#toJson}}name{{/toJson}}`."""

from __future__ import annotations

import json
import re
from typing import Any

_TAG = re.compile(r"\{\{([#^/]?)\s*([\w.]+)\s*\}\}")


def _lookup(params: dict[str, Any], name: str) -> Any:
    value: Any = params
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def render(template: str, params: dict[str, Any]) -> str:
    """Render the template with params."""
    out: list[str] = []
    position = 0
    while True:
        match = _TAG.search(template, position)
        if match is None:
            out.append(template[position:])
            return "".join(out)
        out.append(template[position : match.start()])
        kind, name = match.groups()
        if kind == "":
            value = _lookup(params, name)
            out.append("" if value is None else json.dumps(value)[1:-1] if isinstance(value, str) else str(value))
            position = match.end()
            continue
        close = re.compile(r"\{\{/\s*" + re.escape(name) + r"\s*\}\}")
        end = close.search(template, match.end())
        if end is None:
            raise ValueError(f"unclosed section {name}")
        inner = template[match.end() : end.start()]
        if name == "toJson" and kind == "#":
            out.append(json.dumps(_lookup(params, inner.strip())))
        else:
            value = _lookup(params, name)
            truthy = value not in (None, False, "", 0, [], {})
            if (kind == "#") == truthy:
                out.append(render(inner, params))
        position = end.end()
