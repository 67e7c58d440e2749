"""Validate OpenSearch requests and responses against the pinned OpenSearch API specification.

The spec (../shared/opensearch-api-spec, OpenAPI 3.1 = JSON Schema 2020-12, `$ref`s across
files) is open: objects accept unknown keys. A strict overlay closes them where a misspelled
key must fail — the query DSL, mappings, index settings and analysis, search pipelines, bulk
action lines, alias actions and every request body's top level — by adding
`unevaluatedProperties: false` at each place a schema is *used* (never on an `allOf` member,
where it would hide its siblings' properties, and never on free-form objects). Responses are
validated against the open schemas. A few tightenings the spec leaves as plain strings (k-NN
engine and space type) are added with a reason; known upstream defects are mended in SPEC_FIXES.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from shoprank.settings import REPO_ROOT

SPEC_DIR = REPO_ROOT.parent / "shared" / "opensearch-api-spec"
BASE_URI = "https://opensearch-spec.invalid/"

# Schema files whose objects are closed by the overlay (request bodies are closed at their top level too).
STRICT_FILES = frozenset(
    {
        "schemas/_common.query_dsl.yaml",
        "schemas/_common.mapping.yaml",
        "schemas/_common.analysis.yaml",
        "schemas/indices._common.yaml",
        "schemas/indices.put_index_template.yaml",
        "schemas/indices.update_aliases.yaml",
        "schemas/search_pipeline._common.yaml",
        "schemas/_core.bulk.yaml",
    }
)
# Query parameters every operation takes (the spec's _global_parameters.yaml).
GLOBAL_PARAMS = frozenset({"pretty", "human", "error_trace", "source", "filter_path"})
# Values the spec leaves as free strings but the k-NN plugin enumerates (knn_vector mapping docs).
TIGHTENINGS: dict[tuple[str, str], dict[str, Any]] = {
    ("schemas/_common.mapping.yaml", "KnnVectorMethod"): {
        "properties": {
            "engine": {"enum": ["faiss", "lucene", "nmslib"]},
            "space_type": {"enum": ["l2", "cosinesimil", "innerproduct", "l1", "linf", "hamming"]},
            "name": {"enum": ["hnsw", "ivf"]},
        }
    },
}

# Upstream defects, mended with the reason; each is proven wrong by a request the real node accepts.
# FunctionScoreContainer: its "one function kind" member says maxProperties 1 inside an allOf, which
# bounds the whole object, so the documented {"filter": ..., "weight": ...} function fails; the node
# accepts it (tests/engine_contract: category boosts on opensearch-live).
SPEC_FIXES: dict[tuple[str, str], tuple[int, str]] = {
    ("schemas/_common.query_dsl.yaml", "FunctionScoreContainer"): (1, "maxProperties"),
}


@dataclass(frozen=True)
class Operation:
    """One operation of the spec: where it lives and what it takes."""

    file: str
    template: str
    method: str
    spec: dict[str, Any]

    @property
    def group(self) -> str:
        """The operation group, e.g. `indices.put_index_template`."""
        return str(self.spec.get("x-operation-group", ""))


def _load(spec_dir: Path) -> dict[str, Any]:
    docs = {}
    for path in sorted((spec_dir / "spec").rglob("*.yaml")):
        with path.open() as handle:
            docs[path.relative_to(spec_dir / "spec").as_posix()] = yaml.load(handle, Loader=yaml.CSafeLoader)
    return docs


class _Shapes:
    """What an object schema allows, through `$ref`s: declared keys, free-form, or not an object."""

    def __init__(self, docs: dict[str, Any]) -> None:
        self.docs = docs
        self.memo: dict[tuple[str, str], str] = {}

    def resolve(self, ref: str, current: str) -> tuple[Any, str, str]:
        file_part, _, pointer = ref.partition("#")
        rel = current
        if file_part:
            rel = (Path(current).parent / file_part).as_posix()
            rel = _normalise(rel)
        node: Any = self.docs[rel]
        for token in [t for t in pointer.split("/") if t]:
            node = node[token.replace("~1", "/").replace("~0", "~")]
        return node, rel, pointer

    def shape(self, node: Any, current: str, depth: int = 0) -> str:
        if node is True or node == {}:
            return "free"
        if not isinstance(node, dict) or depth > 40:
            return "none"
        parts: list[str] = []
        if "$ref" in node:
            target, rel, pointer = self.resolve(node["$ref"], current)
            key = (rel, pointer)
            if key not in self.memo:
                self.memo[key] = "declared"  # cycles: a recursive schema declares its keys somewhere
                self.memo[key] = self.shape(target, rel, depth + 1)
            parts.append(self.memo[key])
        types = node.get("type")
        type_list = types if isinstance(types, list) else [types] if types else []
        extra = node.get("additionalProperties")
        if extra is True or extra == {}:
            return "free"
        if node.get("properties") or node.get("patternProperties") or isinstance(extra, dict) or extra is False:
            parts.append("declared")
        elif "object" in type_list and not any(k in node for k in ("$ref", "allOf", "anyOf", "oneOf")):
            parts.append("free")
        elif type_list and "object" not in type_list:
            return "none"
        parts.extend(self.shape(m, current, depth + 1) for m in node.get("allOf", []))
        alternatives = [self.shape(m, current, depth + 1) for m in node.get("anyOf", []) + node.get("oneOf", [])]
        if "free" in alternatives:
            return "free"
        if "declared" in parts or "declared" in alternatives:
            return "declared"
        return "free" if "free" in parts else "none"


def _normalise(rel: str) -> str:
    out: list[str] = []
    for part in rel.split("/"):
        if part == "..":
            out.pop()
        elif part and part != ".":
            out.append(part)
    return "/".join(out)


# Not `if` / `not` / `propertyNames`: closing those would change what they test, not what they allow.
_SINGLE = ("items", "additionalProperties", "then", "else")
_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")
_LISTS = ("anyOf", "oneOf", "prefixItems")


def _close(node: Any, rel: str, shapes: _Shapes, strict: bool, here: bool) -> None:
    """Add `unevaluatedProperties: false` at every use site of a declared object schema."""
    if not isinstance(node, dict):
        return
    if (
        strict
        and here
        and not any(k in node for k in ("additionalProperties", "unevaluatedProperties"))
        and shapes.shape(node, rel) == "declared"
    ):
        node["unevaluatedProperties"] = False
    for key in _MAPS:
        for child in (node.get(key) or {}).values():
            _close(child, rel, shapes, strict, True)
    for key in _SINGLE:
        if isinstance(node.get(key), dict):
            _close(node[key], rel, shapes, strict, True)
    for key in _LISTS:
        for child in node.get(key) or []:
            _close(child, rel, shapes, strict, True)
    for child in node.get("allOf") or []:
        _close(child, rel, shapes, strict, False)


def _enum_of(node: Any, rel: str, prop: str, shapes: _Shapes, depth: int = 0) -> list[Any]:
    """Values a branch allows for its discriminator property (through `$ref` and `allOf`)."""
    if not isinstance(node, dict) or depth > 20:
        return []
    if "$ref" in node:
        target, target_rel, _ = shapes.resolve(node["$ref"], rel)
        return _enum_of(target, target_rel, prop, shapes, depth + 1)
    declared = (node.get("properties") or {}).get(prop) or {}
    values = list(declared.get("enum") or ([declared["const"]] if "const" in declared else []))
    for member in node.get("allOf") or []:
        values += _enum_of(member, rel, prop, shapes, depth + 1)
    return values


def _discriminate(schema: dict[str, Any], rel: str, shapes: _Shapes) -> None:
    """Replace a discriminated `oneOf` by `if type == v then branch`: the same schema, but one
    branch is evaluated instead of dozens (nested mappings would otherwise take seconds)."""
    prop = schema["discriminator"]["propertyName"]
    default = schema["discriminator"].get("x-default")
    by_value: dict[Any, list[Any]] = {}
    for branch in schema["oneOf"]:
        values = _enum_of(branch, rel, prop, shapes)
        if not values:
            return
        for value in values:
            by_value.setdefault(value, []).append(branch)

    def then(branches: list[Any]) -> Any:
        return copy.deepcopy(branches[0] if len(branches) == 1 else {"oneOf": branches})

    clauses: list[dict[str, Any]] = [
        {"if": {"properties": {prop: {"const": value}}, "required": [prop]}, "then": then(branches)}
        for value, branches in by_value.items()
    ]
    if default in by_value:
        clauses.append({"if": {"not": {"required": [prop]}}, "then": then(by_value[default])})
    else:
        schema["required"] = sorted({*schema.get("required", []), prop})
    del schema["oneOf"]
    schema["allOf"] = [*schema.get("allOf", []), *clauses]
    schema["properties"] = {**schema.get("properties", {}), prop: {"enum": list(by_value)}}


def _discriminated(docs: dict[str, Any]) -> dict[str, Any]:
    """The spec with discriminated `oneOf`s as `if`/`then` chains (same meaning, far faster)."""
    shapes = _Shapes(docs)
    out = copy.deepcopy(docs)
    for rel, doc in out.items():
        for schema in ((doc.get("components") or {}).get("schemas") or {}).values():
            if isinstance(schema, dict) and "discriminator" in schema and "oneOf" in schema:
                _discriminate(schema, rel, shapes)
    return out


def _overlay(docs: dict[str, Any]) -> dict[str, Any]:
    """The strict overlay (docs: the raw spec, for shapes; the result is built on a discriminated copy)."""
    shapes = _Shapes(docs)
    strict_docs = _discriminated(docs)
    for (rel, name), (member, keyword) in SPEC_FIXES.items():
        del strict_docs[rel]["components"]["schemas"][name]["allOf"][member][keyword]
    for (rel, name), extra in TIGHTENINGS.items():
        schema = strict_docs[rel]["components"]["schemas"][name]
        for prop, constraint in extra["properties"].items():
            schema["properties"][prop] = {**schema["properties"][prop], **constraint}
    for rel, doc in strict_docs.items():
        components = doc.get("components") or {}
        strict = rel in STRICT_FILES
        for schema in (components.get("schemas") or {}).values():
            _close(schema, rel, shapes, strict, False)
        if rel.startswith("namespaces/"):
            for body in (components.get("requestBodies") or {}).values():
                for media in (body.get("content") or {}).values():
                    if "schema" in media:
                        _close(media["schema"], rel, shapes, True, True)
    return strict_docs


def _registry(docs: dict[str, Any]) -> Registry:
    resources = [
        (BASE_URI + rel, Resource.from_contents(doc, default_specification=DRAFT202012)) for rel, doc in docs.items()
    ]
    return Registry().with_resources(resources)


def _pointer(*tokens: str) -> str:
    return "/".join(t.replace("~", "~0").replace("/", "~1") for t in tokens)


class SpecValidator:
    """Finds the operation of a request and validates its parameters and bodies."""

    def __init__(self, spec_dir: Path = SPEC_DIR) -> None:
        raw = _load(spec_dir)
        self.docs = raw
        self.strict = _registry(_overlay(raw))
        self.open = _registry(_discriminated(raw))
        self.operations: list[tuple[re.Pattern[str], int, Operation]] = []
        for rel, doc in raw.items():
            if not rel.startswith("namespaces/"):
                continue
            for template, item in (doc.get("paths") or {}).items():
                regex = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
                literals = sum(1 for seg in template.split("/") if seg and not seg.startswith("{"))
                for method, spec in item.items():
                    if method in ("get", "put", "post", "delete", "head"):
                        self.operations.append((regex, literals, Operation(rel, template, method.upper(), spec)))

    def operation(self, method: str, path: str) -> Operation:
        """The operation a concrete request path calls (the most literal template wins)."""
        path = path.split("?", 1)[0]
        found = [(lit, op) for regex, lit, op in self.operations if op.method == method and regex.match(path)]
        if not found:
            raise LookupError(f"no operation in the spec for {method} {path}")
        return max(found, key=lambda item: item[0])[1]

    def by_template(self, method: str, template: str) -> Operation | None:
        """The operation of a path template as the spec writes it."""
        for _, _, op in self.operations:
            if op.method == method and op.template == template:
                return op
        return None

    @cache  # noqa: B019 - one validator per schema location for the life of the (session) validator
    def _validator(self, uri: str, strict: bool) -> Draft202012Validator:
        schema: dict[str, Any] = {"$ref": uri}
        if strict:
            schema["unevaluatedProperties"] = self._shape_of(uri) != "declared"
        return Draft202012Validator(schema, registry=self.strict if strict else self.open)

    def _shape_of(self, uri: str) -> str:
        rel, _, pointer = uri.removeprefix(BASE_URI).partition("#")
        return _Shapes(self.docs).shape({"$ref": "#" + pointer}, rel)

    def schema_errors(self, uri: str, instance: Any, strict: bool = True) -> list[str]:
        """Errors of an instance against the schema at uri (BASE_URI + file#pointer)."""
        validator = self._validator(uri, strict)
        return [_describe(e) for e in sorted(validator.iter_errors(instance), key=lambda e: list(e.path))]

    def _media_uri(self, op: Operation, ref_or_inline: dict[str, Any], section: str) -> tuple[str, str] | None:
        if "$ref" not in ref_or_inline:
            return None  # the spec always refers to its bodies; an inline one would be unchecked
        name = ref_or_inline["$ref"].rsplit("/", 1)[-1]
        content = self.docs[op.file]["components"][section][name].get("content") or {}
        base = ("components", section, name, "content")
        for media in ("application/json", "application/x-ndjson"):
            if media in content and "schema" in content[media]:
                return f"{BASE_URI}{op.file}#/{_pointer(*base, media, 'schema')}", media
        return None

    def request_errors(self, method: str, path: str, params: dict[str, Any] | None, body: Any) -> list[str]:
        """Problems with a request: unknown operation or parameter, or a body the spec rejects."""
        try:
            op = self.operation(method, path)
        except LookupError as exc:
            return [str(exc)]
        errors = self.param_errors(op, params or {})
        if body is None:
            return errors
        request_body = op.spec.get("requestBody")
        if request_body is None:
            return [*errors, f"{op.group} takes no body"]
        located = self._media_uri(op, request_body, "requestBodies")
        if located is None:
            return errors
        uri, media = located
        errors += [f"{op.group} body {e}" for e in self.schema_errors(uri, body)]
        if media == "application/x-ndjson" and op.group == "bulk":
            errors += self.bulk_action_errors(body)
        return errors

    def bulk_action_errors(self, lines: list[Any]) -> list[str]:
        """Action lines of a bulk body, strictly (the body schema itself accepts any object)."""
        uri = f"{BASE_URI}schemas/_core.bulk.yaml#/components/schemas/OperationContainer"
        errors = []
        index = 0
        while index < len(lines):
            action = lines[index]
            errors += [f"bulk action line {index}: {e}" for e in self.schema_errors(uri, action)]
            op_type = next(iter(action), "") if isinstance(action, dict) else ""
            index += 1 if op_type == "delete" else 2
        return errors

    def param_errors(self, op: Operation, params: dict[str, Any]) -> list[str]:
        """Query parameters the operation does not declare, or values its schema refuses."""
        declared: dict[str, dict[str, Any]] = {}
        for ref in op.spec.get("parameters", []):
            name = ref["$ref"].rsplit("/", 1)[-1]
            param = self.docs[op.file]["components"]["parameters"][name]
            if param.get("in") == "query":
                declared[param["name"]] = {**param, "component": name}
        errors = []
        for key, value in params.items():
            if key in GLOBAL_PARAMS:
                continue
            if key not in declared:
                errors.append(f"{op.group}: unknown query parameter {key!r}")
                continue
            uri = f"{BASE_URI}{op.file}#/{_pointer('components', 'parameters', declared[key]['component'], 'schema')}"
            raw = value.decode() if isinstance(value, bytes) else value if isinstance(value, str) else json.dumps(value)
            candidates = [_coerce(raw), raw, raw.split(",")]
            if all(self.schema_errors(uri, candidate, strict=False) for candidate in candidates):
                errors.append(f"{op.group}: query parameter {key}={raw!r} does not fit its schema")
        return errors

    def response_errors(self, method: str, path: str, status: int, body: Any) -> list[str]:
        """Problems with a (canned) response against the operation's response schema."""
        op = self.operation(method, path)
        responses = op.spec.get("responses") or {}
        declared = responses.get(str(status))
        if declared is None:
            if status >= 400:
                uri = f"{BASE_URI}schemas/_common.yaml#/components/schemas/ErrorResponseBase"
                return [f"{op.group} {status} {e}" for e in self.schema_errors(uri, body, strict=False)]
            return [f"{op.group} declares no {status} response"]
        located = self._media_uri(op, declared, "responses")
        if located is None:
            return []
        uri, _ = located
        return [f"{op.group} {status} {e}" for e in self.schema_errors(uri, body, strict=False)]


def _coerce(raw: str) -> Any:
    if raw in ("true", "false"):
        return raw == "true"
    try:
        return json.loads(raw) if re.fullmatch(r"-?\d+(\.\d+)?", raw) else raw
    except ValueError:
        return raw


def _describe(error: Any) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    if error.context:
        # anyOf/oneOf: the deepest reason says what is wrong; the top one only that no branch fitted.
        deepest = max(error.context, key=lambda e: len(list(e.absolute_path)))
        where_deep = "/".join(str(p) for p in deepest.absolute_path) or where
        return f"at {where_deep}: {deepest.message[:300]}"
    return f"at {where}: {error.message[:300]}"


def document_schema(mappings: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema of the documents a mapping accepts (strict mapping: no other fields)."""

    def field_schema(prop: dict[str, Any]) -> dict[str, Any]:
        kind = prop.get("type", "object")
        if kind in ("text", "keyword"):
            one: dict[str, Any] = {"type": "string"}
            return {"anyOf": [one, {"type": "array", "items": one}, {"type": "null"}]}
        if kind in ("double", "float", "half_float", "scaled_float"):
            return {"type": ["number", "null"]}
        if kind in ("integer", "long", "short", "byte"):
            return {"type": ["integer", "null"]}
        if kind == "boolean":
            return {"type": ["boolean", "null"]}
        if kind == "date":  # ISO 8601 text or epoch millis
            return {"type": ["string", "integer", "null"]}
        if kind == "knn_vector":
            dim = prop["dimension"]
            return {"type": "array", "items": {"type": "number"}, "minItems": dim, "maxItems": dim}
        return {"type": "object"}

    properties = {name: field_schema(prop) for name, prop in (mappings.get("properties") or {}).items()}
    return {"type": "object", "properties": properties, "additionalProperties": mappings.get("dynamic") != "strict"}


def iter_story_requests(spec_dir: Path = SPEC_DIR) -> Iterator[tuple[str, str, str, bool, Any]]:
    """(story file, method, path, is_template, payload) of every request body in the spec's test stories."""
    for path in sorted((spec_dir / "tests").rglob("*.yaml")):
        with path.open() as handle:
            story = yaml.load(handle, Loader=yaml.CSafeLoader)
        if not isinstance(story, dict):
            continue
        for section, is_template in (("prologues", False), ("chapters", True), ("epilogues", False)):
            for step in story.get(section) or []:
                payload = (step.get("request") or {}).get("payload")
                if payload is not None and "path" in step:
                    yield (
                        path.relative_to(spec_dir).as_posix(),
                        step.get("method", "GET"),
                        step["path"],
                        is_template,
                        payload,
                    )
