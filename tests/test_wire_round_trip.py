"""The sidecar contract's two wire modules lose nothing, either way.

- Hypothesis: domain → proto → domain is the identity for the request (RerankCall, as the client
  sends it and the server reads it) and for the response (RerankOutcome).
- Completeness: every field of every message in shoprank/v1 survives proto → domain → proto with
  every field set (walking the descriptors, so a field added to the proto and not converted fails,
  named, as does a message no converter reaches).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.descriptor_pb2 import FieldDescriptorProto
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import given, settings
from hypothesis import strategies as st

import shoprank.v1
from shoprank import limits
from shoprank.v1 import rerank_pb2 as pb
from shoprank.vocabulary import DIVERSITY_FACETS, DIVERSITY_METHODS
from sidecar.domain import (
    BatchUsage,
    Candidate,
    CandidateProduct,
    Explanation,
    RerankCall,
    RerankOptions,
    RerankOutcome,
    ScoredCandidate,
    Timings,
)
from sidecar.wire_embed import (
    embed_outcome_to_response,
    embed_query_to_wire,
    embed_request_to_domain,
    embed_response_from_wire,
)
from sidecar.wire_request import RequestLimits, request_from_wire, request_to_wire
from sidecar.wire_response import response_from_wire, response_to_wire

UINT32 = st.integers(min_value=0, max_value=2**32 - 1)
FLOAT32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
UNIT32 = st.floats(min_value=0.0, max_value=1.0, width=32)
TEXT = st.text(max_size=40)
NONBLANK = st.text(min_size=1, max_size=40).filter(lambda text: bool(text.strip()))


def _float32(values: list[float]) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.asarray(values, dtype=np.float32)


@st.composite
def calls(draw: st.DrawFn) -> RerankCall:
    """A request the server accepts off the wire (within RequestLimits())."""
    ids = draw(st.lists(NONBLANK, min_size=1, max_size=8, unique=True))
    dim = draw(st.integers(min_value=1, max_value=8))
    candidates = [
        Candidate(
            id=product_id,
            first_stage_score=draw(FLOAT32),
            product=CandidateProduct(
                title=draw(NONBLANK),
                brand=draw(TEXT),
                category=tuple(draw(st.lists(TEXT, max_size=limits.MAX_CATEGORY_LEVELS))),
                color=draw(TEXT),
                bullet_points=draw(TEXT),
                description=draw(TEXT),
            ),
            embedding=draw(st.none() | st.lists(FLOAT32, min_size=dim, max_size=dim).map(_float32)),
        )
        for product_id in ids
    ]
    facets = tuple(draw(st.permutations(DIVERSITY_FACETS))[: draw(st.integers(0, len(DIVERSITY_FACETS)))])
    options = RerankOptions(
        blend_weight=draw(st.none() | UNIT32),
        diversity=draw(st.none() | st.sampled_from(DIVERSITY_METHODS)),
        strength=draw(st.none() | UNIT32),
        max_per_brand=draw(st.none() | UINT32),
        max_per_category=draw(st.none() | UINT32),
        window=draw(st.none() | UINT32),
        page_size=draw(st.none() | UINT32),
        facets=facets,
        attribute_weight=draw(st.none() | UNIT32),
        explain=draw(st.booleans()),
    )
    top_k = draw(st.integers(min_value=0, max_value=limits.MAX_CANDIDATES))
    return RerankCall(query=draw(NONBLANK), candidates=candidates, top_k=top_k, options=options)


@st.composite
def outcomes(draw: st.DrawFn) -> RerankOutcome:
    """Any response a server may write."""
    explanation = st.builds(
        Explanation,
        relevance=FLOAT32,
        first_stage=FLOAT32,
        blended=FLOAT32,
        diversity_term=FLOAT32,
        first_stage_rank=UINT32,
        scored_rank=UINT32,
        final_rank=UINT32,
        reason=TEXT,
    )
    result = st.builds(
        ScoredCandidate, id=TEXT, score=FLOAT32, relevance_score=FLOAT32, explanation=st.none() | explanation
    )
    usage = st.builds(BatchUsage, batches=UINT32, batch_pairs=UINT32, tokens=UINT32, padded_tokens=UINT32)
    timings = st.builds(
        Timings,
        tokenize_ms=FLOAT32,
        queue_ms=FLOAT32,
        inference_ms=FLOAT32,
        diversify_ms=FLOAT32,
        total_ms=FLOAT32,
        usage=usage,
    )
    return RerankOutcome(
        results=draw(st.lists(result, max_size=6)),
        reranked=draw(st.booleans()),
        model_version=draw(TEXT),
        timings=draw(timings),
        diversity_method=draw(TEXT),
        cache_hits=draw(UINT32),
        diversity_notes=tuple(draw(st.lists(TEXT, max_size=3))),
    )


def _comparable(call: RerankCall) -> RerankCall:
    """The call with embeddings as tuples (arrays do not compare with ==)."""
    return replace(
        call,
        candidates=[
            replace(c, embedding=None if c.embedding is None else tuple(c.embedding.tolist()))  # type: ignore[arg-type]
            for c in call.candidates
        ],
    )


# Few examples, kept small: this is the unit tier (`make test-fast`); each example is a whole request.
@settings(max_examples=60, deadline=None)
@given(calls())
def test_a_request_reads_back_as_it_was_sent(call: RerankCall) -> None:
    read = request_from_wire(pb.RerankRequest.FromString(request_to_wire(call).SerializeToString()), RequestLimits())
    assert _comparable(read) == _comparable(call)


@settings(max_examples=100, deadline=None)
@given(outcomes())
def test_a_response_reads_back_as_it_was_written(outcome: RerankOutcome) -> None:
    read = response_from_wire(pb.RerankResponse.FromString(response_to_wire(outcome).SerializeToString()))
    assert read == outcome


# -- completeness: every proto field is read and written ---------------------------------------

# A value the converters accept for a field whose generic value (below) they refuse; a helper adding
# a field with a narrower domain adds its full name here.
# Fields whose generic value would be invalid: one vector of one value has dimension 1.
FILL: dict[str, Any] = {"shoprank.v1.EmbedResponse.dimension": 1}


def _is_map(f: Any) -> bool:
    return f.message_type is not None and f.message_type.GetOptions().map_entry


def _one_of_each_oneof(f: FieldDescriptor) -> bool:
    """Set only the first member of a real oneof (setting the others would clear it); proto3
    `optional` fields sit in a synthetic oneof of their own ("_" + name) and are always set."""
    group = f.containing_oneof
    return group is None or group.name == "_" + f.name or group.fields[0].name == f.name


def _filled(descriptor: Descriptor) -> Message:
    """A message of this type with every field set to a non-default value (repeated: one element,
    maps: one entry, oneofs: the first member)."""
    message = GetMessageClass(descriptor)()
    for f in descriptor.fields:
        if not _one_of_each_oneof(f):
            continue
        if _is_map(f):
            entry: Any = f.message_type
            key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
            key = FILL.get(f.full_name + ".key", _generic_value(key_field))
            if value_field.message_type is not None:
                getattr(message, f.name)[key].CopyFrom(_filled(value_field.message_type))
            else:
                getattr(message, f.name)[key] = FILL.get(f.full_name, _generic_value(value_field))
            continue
        if f.message_type is not None:
            sub = _filled(f.message_type)
            if f.is_repeated:
                getattr(message, f.name).add().CopyFrom(sub)
            else:
                getattr(message, f.name).CopyFrom(sub)
            continue
        value = FILL.get(f.full_name, _generic_value(f))
        if f.is_repeated:
            getattr(message, f.name).append(value)
        else:
            setattr(message, f.name, value)
    return message


def _generic_value(f: FieldDescriptor) -> Any:
    if f.enum_type is not None:
        return max(v.number for v in f.enum_type.values)  # never the zero "unspecified" value
    if f.type == FieldDescriptor.TYPE_STRING:
        return "x"
    if f.type == FieldDescriptor.TYPE_BYTES:
        return b"x"
    if f.type == FieldDescriptor.TYPE_BOOL:
        return True
    if f.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return 0.5
    return 1


def _lost(sent: Message, back: Message, into: list[str]) -> list[str]:
    """Full names of the fields set in `sent` that `back` does not carry equal."""
    for f in sent.DESCRIPTOR.fields:
        mine, theirs = getattr(sent, f.name), getattr(back, f.name)
        if _is_map(f):
            if set(mine) != set(theirs):
                into.append(f.full_name)
            for key in set(mine) & set(theirs):
                if isinstance(mine[key], Message):
                    _lost(mine[key], theirs[key], into)
                elif mine[key] != theirs[key]:
                    into.append(f.full_name)
        elif f.type == FieldDescriptor.TYPE_MESSAGE:
            if f.is_repeated:
                if len(mine) != len(theirs):
                    into.append(f.full_name)
                for a, b in zip(mine, theirs, strict=False):
                    _lost(a, b, into)
            elif not back.HasField(f.name):
                into.append(f.full_name)
            else:
                _lost(mine, theirs, into)
        elif (list(mine) if f.is_repeated else mine) != (list(theirs) if f.is_repeated else theirs):
            into.append(f.full_name)
    return into


def _reachable(descriptor: Descriptor, into: set[str]) -> set[str]:
    into.add(descriptor.full_name)
    for f in descriptor.fields:
        if f.message_type is not None and f.message_type.full_name not in into:
            _reachable(f.message_type, into)
    return into


# Each top-level wire message and its round trip through the domain (proto → domain → proto).
ROUND_TRIPS: dict[str, Callable[[Any], Message]] = {
    "shoprank.v1.RerankRequest": lambda m: request_to_wire(request_from_wire(m, RequestLimits())),
    "shoprank.v1.RerankResponse": lambda m: response_to_wire(response_from_wire(m)),
    "shoprank.v1.EmbedRequest": lambda m: embed_query_to_wire(embed_request_to_domain(m, RequestLimits(), None)),
    "shoprank.v1.EmbedResponse": lambda m: embed_outcome_to_response(embed_response_from_wire(m)),
}


def _all_messages() -> dict[str, Descriptor]:
    """Every message declared in the generated shoprank/v1 modules, nested ones included."""
    found: dict[str, Descriptor] = {}

    def add(descriptor: Descriptor) -> None:
        found[descriptor.full_name] = descriptor
        for nested in descriptor.nested_types:
            add(nested)

    for module in pkgutil.iter_modules(shoprank.v1.__path__):
        if module.name.endswith("_pb2"):
            generated = importlib.import_module(f"shoprank.v1.{module.name}")
            for descriptor in generated.DESCRIPTOR.message_types_by_name.values():
                add(descriptor)
    return found


def test_every_proto_field_is_read_and_written_by_the_wire_modules() -> None:
    messages = _all_messages()
    lost: list[str] = []
    covered: set[str] = set()
    for name, round_trip in ROUND_TRIPS.items():
        sent = _filled(messages[name])
        lost += _lost(sent, round_trip(sent), [])
        covered |= _reachable(messages[name], set())
    unreached = sorted(set(messages) - covered)
    problems = []
    if lost:
        problems.append(
            f"proto fields the wire modules drop ({len(set(lost))}): {', '.join(sorted(set(lost)))}; read and write "
            "them in sidecar/wire_request.py or sidecar/wire_response.py (and the domain type)"
        )
    if unreached:
        problems.append(
            f"messages no round trip covers: {', '.join(unreached)}; add their converters and an entry in ROUND_TRIPS"
        )
    assert not problems, "\n".join(problems)


def test_the_completeness_check_names_a_dropped_field() -> None:
    """The check can fail: a converter that forgets one field is caught by name."""
    sent = _filled(pb.RerankResponse.DESCRIPTOR)

    def forgetful(message: Message) -> Message:
        assert isinstance(message, pb.RerankResponse)
        back = response_to_wire(response_from_wire(message))
        back.results[0].explanation.ClearField("reason")
        return back

    assert _lost(sent, forgetful(sent), []) == ["shoprank.v1.Explanation.reason"]


def test_the_completeness_check_walks_maps_oneofs_and_nested_messages() -> None:
    """A message shaped like the fields other helpers are adding (a map of contributions, a oneof)."""
    one, many = FieldDescriptorProto.LABEL_OPTIONAL, FieldDescriptorProto.LABEL_REPEATED
    text, real = FieldDescriptorProto.TYPE_STRING, FieldDescriptorProto.TYPE_FLOAT
    file = descriptor_pb2.FileDescriptorProto(
        name="shoprank_test_shapes.proto", package="shoprank.test", syntax="proto3"
    )
    inner = file.message_type.add(name="Inner")
    inner.field.add(name="weight", number=1, type=real, label=one)
    outer = file.message_type.add(name="Outer")
    entry = outer.nested_type.add(name="ContributionsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=text, label=one)
    entry.field.add(name="value", number=2, type=real, label=one)
    outer.field.add(
        name="contributions",
        number=1,
        type=FieldDescriptorProto.TYPE_MESSAGE,
        label=many,
        type_name=".shoprank.test.Outer.ContributionsEntry",
    )
    outer.oneof_decl.add(name="who")
    for number, name in ((2, "user_id"), (3, "session_id")):
        outer.field.add(
            name=name,
            number=number,
            type=FieldDescriptorProto.TYPE_STRING,
            label=FieldDescriptorProto.LABEL_OPTIONAL,
            oneof_index=0,
        )
    outer.field.add(
        name="interactions",
        number=4,
        type=FieldDescriptorProto.TYPE_MESSAGE,
        label=FieldDescriptorProto.LABEL_REPEATED,
        type_name=".shoprank.test.Inner",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    sent = _filled(pool.FindMessageTypeByName("shoprank.test.Outer"))
    assert dict(sent.contributions) == {"x": 0.5}  # type: ignore[attr-defined]
    assert sent.WhichOneof("who") == "user_id"
    assert _lost(sent, sent, []) == []
    dropped = type(sent)()
    dropped.CopyFrom(sent)
    dropped.ClearField("contributions")
    dropped.interactions[0].ClearField("weight")  # type: ignore[attr-defined]
    assert _lost(sent, dropped, []) == ["shoprank.test.Outer.contributions", "shoprank.test.Inner.weight"]
