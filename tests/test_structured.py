"""streamfold.structured: typed partial values of streamed JSON, for every kind of type.

One shape of answer (an order: numbers, unicode strings, an enum, a literal,
optional and union fields, nested objects, arrays of objects, a map, a tagged
union) written as a msgspec Struct, a dataclass, a TypedDict, a pydantic model
and a JSON Schema. Random instances are serialised, cut at random points and
fed: every partial value must be a prefix view of the final value, the final
value must be what the library itself decodes from the whole text, and a
document with one wrong value must fail with the path of that value.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import itertools
import json
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal, TypedDict

if sys.version_info >= (3, 11):
    from typing import NotRequired
else:  # pragma: no cover
    from typing_extensions import NotRequired

import msgspec
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamfold.errors import StreamfoldError, UsageError
from streamfold.structured import (
    MAX_WHOLE_DEPTH,
    UNSET,
    OutputType,
    OutputValidationError,
    OutputValueDone,
    StructuredParser,
    UnsupportedSchemaError,
)

# -- the shape, five ways ----------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Tag(msgspec.Struct, tag_field="type", tag="tag"):
    label: str


class Num(msgspec.Struct, tag_field="type", tag="num"):
    value: int


class Point(msgspec.Struct):
    x: float
    y: float


class Item(msgspec.Struct):
    name: str
    qty: int
    price: float
    where: Point | None
    notes: list[str]


class Order(msgspec.Struct):
    id: int
    title: str
    done: bool
    kind: Literal["a", "b"]
    color: Color
    score: float | None
    items: list[Item]
    meta: dict[str, int]
    marks: list[Tag | Num]
    note: str | None = None


@dataclasses.dataclass
class PointD:
    x: float
    y: float


@dataclasses.dataclass
class ItemD:
    name: str
    qty: int
    price: float
    where: PointD | None
    notes: list[str]


@dataclasses.dataclass
class OrderD:
    id: int
    title: str
    done: bool
    kind: Literal["a", "b"]
    color: Color
    score: float | None
    items: list[ItemD]
    meta: dict[str, int]
    marks: list[Tag | Num]
    note: str | None = None


class PointT(TypedDict):
    x: float
    y: float


class ItemT(TypedDict):
    name: str
    qty: int
    price: float
    where: PointT | None
    notes: list[str]


class OrderT(TypedDict):
    id: int
    title: str
    done: bool
    kind: Literal["a", "b"]
    color: Color
    score: float | None
    items: list[ItemT]
    meta: dict[str, int]
    marks: list[Tag | Num]
    note: NotRequired[str | None]


class TagP(pydantic.BaseModel):
    type: Literal["tag"]
    label: str


class NumP(pydantic.BaseModel):
    type: Literal["num"]
    value: int


class PointP(pydantic.BaseModel):
    x: float
    y: float


class ItemP(pydantic.BaseModel):
    name: str
    qty: int
    price: float
    where: PointP | None
    notes: list[str]


class OrderP(pydantic.BaseModel):
    id: int
    title: str
    done: bool
    kind: Literal["a", "b"]
    color: Color
    score: float | None
    items: list[ItemP]
    meta: dict[str, int]
    marks: list[Annotated[TagP | NumP, pydantic.Field(discriminator="type")]]
    note: str | None = None


_NUMBER: dict[str, Any] = {"type": "number"}
ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "$defs": {
        "point": {
            "type": "object",
            "properties": {"x": _NUMBER, "y": _NUMBER},
            "required": ["x", "y"],
            "additionalProperties": False,
        },
        "item": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "qty": {"type": "integer"},
                "price": _NUMBER,
                "where": {"anyOf": [{"$ref": "#/$defs/point"}, {"type": "null"}]},
                "notes": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["name", "qty", "price", "where", "notes"],
            "additionalProperties": False,
        },
    },
    "properties": {
        "id": {"type": "integer"},
        "title": {"type": "string"},
        "done": {"type": "boolean"},
        "kind": {"type": "string", "enum": ["a", "b"]},
        "color": {"enum": ["red", "green", "blue"]},
        "score": {"type": ["number", "null"]},
        "items": {"type": "array", "items": {"$ref": "#/$defs/item"}},
        "meta": {"type": "object", "additionalProperties": {"type": "integer"}},
        "marks": {
            "type": "array",
            "items": {
                "oneOf": [
                    {
                        "type": "object",
                        "properties": {"type": {"const": "tag"}, "label": {"type": "string"}},
                        "required": ["type", "label"],
                    },
                    {
                        "type": "object",
                        "properties": {"type": {"const": "num"}, "value": {"type": "integer"}},
                        "required": ["type", "value"],
                    },
                ]
            },
        },
        "note": {"type": ["string", "null"]},
    },
    "required": ["id", "title", "done", "kind", "color", "score", "items", "meta", "marks"],
    "additionalProperties": False,
}


@dataclasses.dataclass(frozen=True)
class Kind:
    """One way of writing the shape: the type, and what the library itself decodes."""

    name: str
    output_type: Any
    reference: Callable[[str], Any]


KINDS = [
    Kind("struct", Order, lambda text: msgspec.json.decode(text, type=Order)),
    Kind("dataclass", OrderD, lambda text: msgspec.json.decode(text, type=OrderD)),
    Kind("typeddict", OrderT, lambda text: msgspec.json.decode(text, type=OrderT)),
    Kind("pydantic", OrderP, OrderP.model_validate_json),
    Kind("json-schema", ORDER_SCHEMA, json.loads),
    Kind("pydantic-json-schema", OrderP.model_json_schema(), json.loads),
]
KIND_PARAMS = [pytest.param(kind, id=kind.name) for kind in KINDS]


def _reference_rejects(kind: Kind, text: str) -> bool:
    try:
        kind.reference(text)
    except (msgspec.ValidationError, pydantic.ValidationError):
        return True
    return kind.name.endswith("json-schema")  # json.loads does not validate: the schema does


# -- documents ---------------------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8"), max_size=12)
_float = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(10**6), 10**6))
_point = st.fixed_dictionaries({"x": _float, "y": _float})
_item = st.fixed_dictionaries(
    {
        "name": _text,
        "qty": st.integers(-(2**40), 2**40),
        "price": _float,
        "where": st.none() | _point,
        "notes": st.lists(_text, max_size=3),
    }
)
_mark = st.one_of(
    st.fixed_dictionaries({"type": st.just("tag"), "label": _text}),
    st.fixed_dictionaries({"type": st.just("num"), "value": st.integers(-100, 100)}),
)
_order = st.fixed_dictionaries(
    {
        "id": st.integers(0, 2**53),
        "title": _text,
        "done": st.booleans(),
        "kind": st.sampled_from(["a", "b"]),
        "color": st.sampled_from(["red", "green", "blue"]),
        "score": st.none() | _float,
        "items": st.lists(_item, max_size=4),
        "meta": st.dictionaries(_text, st.integers(-5, 5), max_size=3),
        "marks": st.lists(_mark, max_size=3),
    },
    optional={"note": st.none() | _text},
)


@st.composite
def _serialised(draw: st.DrawFn, document: Any) -> str:
    """``document`` as JSON the way a model may write it: compact or indented, escaped or not."""
    ascii_only = draw(st.booleans())
    indent = draw(st.sampled_from([None, 2]))
    return json.dumps(document, ensure_ascii=ascii_only, indent=indent)


def split_at(text: str, cuts: list[int]) -> list[str]:
    points = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    return [text[a:b] for a, b in itertools.pairwise(points)]


def fields_of(value: Any) -> list[str] | None:
    """The attribute names of an instance of an attribute type, else None."""
    if isinstance(value, msgspec.Struct):
        return list(value.__struct_fields__)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [f.name for f in dataclasses.fields(value)]
    if isinstance(value, pydantic.BaseModel):
        return list(type(value).model_fields)
    return None


def prefix_of(partial: Any, final: Any) -> bool:
    """Whether ``partial`` is a view of ``final`` with only the end missing: every field
    either UNSET or a prefix view of the final field, lists a prefix of the final list
    whose last item may be partial, strings a prefix of the final string."""
    if partial is UNSET:
        return True
    names = fields_of(final)
    if names is not None:
        return type(partial) is type(final) and all(
            prefix_of(getattr(partial, n), getattr(final, n)) for n in names
        )
    if isinstance(final, dict):
        return (
            type(partial) is dict
            and partial.keys() <= final.keys()
            and all(prefix_of(v, final[k]) for k, v in partial.items())
        )
    if isinstance(final, list):
        return (
            type(partial) is list
            and len(partial) <= len(final)
            and all(same(p, f) for p, f in zip(partial[:-1], final, strict=False))
            and (not partial or prefix_of(partial[-1], final[len(partial) - 1]))
        )
    if isinstance(final, str):
        return type(partial) is str and final.startswith(partial)
    return same(partial, final)


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types (1 is not 1.0) and, for pydantic, the same fields set."""
    if isinstance(a, pydantic.BaseModel) and isinstance(b, pydantic.BaseModel):
        return a == b and a.model_dump(exclude_unset=True) == b.model_dump(exclude_unset=True)
    return a == b and repr(a) == repr(b)


def value_at(value: Any, path: tuple[str | int, ...]) -> Any:
    for key in path:
        if isinstance(value, dict):
            value = value[key]
        elif isinstance(value, list):
            value = value[int(key)]
        else:
            value = getattr(value, str(key))
    return value


def feed_all(parser: StructuredParser, pieces: list[str]) -> Iterator[list[OutputValueDone]]:
    for piece in pieces:
        yield parser.feed(piece)


_settings = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- properties --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KIND_PARAMS)
@_settings
@given(data=st.data(), cuts=st.lists(st.integers(min_value=0), max_size=40))
def test_partial_values_are_prefix_views_and_the_final_value_is_the_libraries(
    kind: Kind, data: st.DataObject, cuts: list[int]
) -> None:
    document = data.draw(_order)
    text = data.draw(_serialised(document))
    expected = kind.reference(text)
    parser = StructuredParser(kind.output_type)
    updates: list[OutputValueDone] = []
    for done in feed_all(parser, split_at(text, cuts)):
        updates.extend(done)
        assert prefix_of(parser.partial, expected), (parser.partial, expected)
    final = parser.close(complete=True)
    assert same(final, expected)
    assert parser.partial is final
    # Every update carries the validated value that ends up at its path; the last is the whole.
    assert updates[-1].path == ()
    for update in updates:
        assert same(update.value, value_at(final, update.path)), update.path


def _leaf_paths(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every value's path, except the tags of the tagged union (which pick the member)."""
    if path:
        yield path
    if isinstance(value, dict):
        for key, item in value.items():
            if key != "type" or "marks" not in path:
                yield from _leaf_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaf_paths(item, (*path, index))


def _wrong(value: Any) -> Any:
    """A value of the wrong JSON kind for where ``value`` is (no library coerces it)."""
    if isinstance(value, str):
        return 5
    if isinstance(value, bool):
        return "maybe"
    if value is None:  # where null is allowed, so are numbers or strings
        return []
    return "x"


def _replace(document: Any, path: tuple[str | int, ...], value: Any) -> Any:
    if not path:
        return value
    copy = dict(document) if isinstance(document, dict) else list(document)
    copy[path[0]] = _replace(document[path[0]], path[1:], value)  # type: ignore[index]
    return copy


@pytest.mark.parametrize("kind", KIND_PARAMS)
@_settings
@given(data=st.data(), cuts=st.lists(st.integers(min_value=0), max_size=20))
def test_a_wrong_value_fails_with_its_path(
    kind: Kind, data: st.DataObject, cuts: list[int]
) -> None:
    document = data.draw(_order)
    paths = [p for p in _leaf_paths(document) if not (p[0] == "meta" and len(p) == 1)]
    path = data.draw(st.sampled_from(paths))
    wrong = _replace(document, path, _wrong(value_at(document, path)))
    text = data.draw(_serialised(wrong))
    assert _reference_rejects(kind, text)
    parser = StructuredParser(kind.output_type)
    with pytest.raises(OutputValidationError) as caught:
        for piece in split_at(text, cuts):
            parser.feed(piece)
        parser.close(complete=True)
    error = caught.value
    assert (error.kind, error.path) == ("value", path), error
    assert error.text == text[: len(error.text)] and error.text
    assert prefix_of(error.partial_value, kind.reference(json.dumps(document)))
    # The parser stays failed, with the same error.
    with pytest.raises(OutputValidationError) as again:
        parser.close(complete=True)
    assert again.value is error


@pytest.mark.parametrize("kind", KIND_PARAMS)
@_settings
@given(data=st.data())
def test_a_truncated_answer_is_never_complete(kind: Kind, data: st.DataObject) -> None:
    document = data.draw(_order)
    text = data.draw(_serialised(document))
    cut = data.draw(st.integers(0, len(text)))
    parser = StructuredParser(kind.output_type)
    parser.feed(text[:cut])
    # The stream says it was cut: even a whole JSON value is not taken as complete.
    with pytest.raises(OutputValidationError) as caught:
        parser.close(complete=False)
    assert caught.value.kind == "incomplete"
    assert prefix_of(caught.value.partial_value, kind.reference(text))
    # The stream ended well but the JSON text stops early.
    if cut < len(text.rstrip()):
        parser = StructuredParser(kind.output_type)
        parser.feed(text[:cut])
        with pytest.raises(OutputValidationError) as early:
            parser.close(complete=True)
        assert early.value.kind == "incomplete"


# -- what a partial value holds ----------------------------------------------------------------


def partials(output_type: Any, pieces: list[str]) -> list[Any]:
    """The partial value after each piece, copied (it is one live object)."""
    parser = StructuredParser(output_type)
    out = []
    for piece in pieces:
        parser.feed(piece)
        out.append(repr(parser.partial))
    return out


class Weather(msgspec.Struct):
    city: str
    temperature: float | None
    units: Literal["c", "f"]


class WeatherP(pydantic.BaseModel):
    city: str
    temperature: float | None
    units: Literal["c", "f"]


@dataclasses.dataclass(frozen=True)
class WeatherD:
    city: str
    temperature: float | None
    units: Literal["c", "f"]


class WeatherT(TypedDict):
    city: str
    temperature: float | None
    units: Literal["c", "f"]


WEATHER_PIECES = ['{"city": "San Fr', 'ancisco", "temperature": nu', 'll, "units": "', "f", '"}']


@pytest.mark.parametrize(
    ("output_type", "expected"),
    [
        pytest.param(
            Weather,
            [
                "Weather(city='San Fr', temperature=UNSET, units=UNSET)",
                "Weather(city='San Francisco', temperature=UNSET, units=UNSET)",
                "Weather(city='San Francisco', temperature=None, units=UNSET)",
                "Weather(city='San Francisco', temperature=None, units=UNSET)",
                "Weather(city='San Francisco', temperature=None, units='f')",
            ],
            id="struct",
        ),
        pytest.param(
            WeatherD,
            [
                "WeatherD(city='San Fr', temperature=UNSET, units=UNSET)",
                "WeatherD(city='San Francisco', temperature=UNSET, units=UNSET)",
                "WeatherD(city='San Francisco', temperature=None, units=UNSET)",
                "WeatherD(city='San Francisco', temperature=None, units=UNSET)",
                "WeatherD(city='San Francisco', temperature=None, units='f')",
            ],
            id="frozen-dataclass",
        ),
        pytest.param(
            WeatherP,
            [
                "WeatherP(city='San Fr', temperature=UNSET, units=UNSET)",
                "WeatherP(city='San Francisco', temperature=UNSET, units=UNSET)",
                "WeatherP(city='San Francisco', temperature=None, units=UNSET)",
                "WeatherP(city='San Francisco', temperature=None, units=UNSET)",
                "WeatherP(city='San Francisco', temperature=None, units='f')",
            ],
            id="pydantic",
        ),
        pytest.param(
            WeatherT,
            [
                "{'city': 'San Fr'}",
                "{'city': 'San Francisco'}",
                "{'city': 'San Francisco', 'temperature': None}",
                "{'city': 'San Francisco', 'temperature': None}",
                "{'city': 'San Francisco', 'temperature': None, 'units': 'f'}",
            ],
            id="typeddict",
        ),
    ],
)
def test_unset_is_not_received_none_is_null_and_only_free_strings_grow(
    output_type: Any, expected: list[str]
) -> None:
    # city (any string) grows; units (a literal) appears only complete and validated.
    assert partials(output_type, WEATHER_PIECES) == expected


def test_a_pydantic_partial_says_which_fields_were_received() -> None:
    parser = StructuredParser(WeatherP)
    parser.feed('{"city": "Paris", "temperature": null')
    partial = parser.partial
    assert isinstance(partial, WeatherP)
    assert partial.model_fields_set == {"city", "temperature"}
    assert partial.model_dump(exclude_unset=True) == {"city": "Paris", "temperature": None}


def test_before_any_value_the_partial_is_unset() -> None:
    parser = StructuredParser(Weather)
    assert parser.partial is UNSET
    parser.feed("  ")
    assert parser.partial is UNSET
    parser.feed("{")
    assert parser.partial == Weather(city=UNSET, temperature=UNSET, units=UNSET)  # type: ignore[arg-type]


RANGE_CALLS: list[tuple[int, int]] = []


class Range(msgspec.Struct):
    low: int
    high: int

    def __post_init__(self) -> None:
        RANGE_CALLS.append((self.low, self.high))
        if self.low > self.high:
            raise ValueError("low is above high")


class Ranges(msgspec.Struct):
    ranges: list[Range]


def test_post_init_runs_once_on_the_final_object_never_on_partial_values() -> None:
    expected = Ranges([Range(5, 7), Range(1, 2)])
    RANGE_CALLS.clear()
    parser = StructuredParser(Ranges)
    parser.feed('{"ranges": [{"low": 5')  # a partial Range with high UNSET: no __post_init__
    assert type(parser.partial.ranges[0]) is Range
    high: object = parser.partial.ranges[0].high
    assert high is UNSET
    parser.feed(', "high": 7}, {"low": 1, "high": 2}]}')
    assert parser.close(complete=True) == expected
    assert RANGE_CALLS == [(5, 7), (1, 2)]
    parser = StructuredParser(Ranges)
    with pytest.raises(OutputValidationError) as caught:
        parser.feed('{"ranges": [{"low": 3, "high": 2}')
    assert (caught.value.path, caught.value.reason) == (("ranges", 0), "low is above high")


def test_pydantic_validators_run_once_per_value() -> None:
    calls: list[str] = []

    class Part(pydantic.BaseModel):
        name: str

        @pydantic.field_validator("name")
        @classmethod
        def shout(cls, value: str) -> str:
            calls.append(f"field {value}")
            return value.upper()

        @pydantic.model_validator(mode="after")
        def check(self) -> Part:
            calls.append(f"model {self.name}")
            return self

    class Machine(pydantic.BaseModel):
        parts: list[Part]

        @pydantic.field_validator("parts")
        @classmethod
        def count(cls, value: list[Part]) -> list[Part]:
            calls.append(f"parts {len(value)}")
            return value

    parser = StructuredParser(Machine)
    for piece in ['{"parts": [{"na', 'me": "a"}, {"name"', ': "b"}]', "}"]:
        parser.feed(piece)
        parser.partial  # noqa: B018  (reading it never validates again)
    assert parser.close(complete=True) == Machine.model_validate_json(
        '{"parts": [{"name": "a"}, {"name": "b"}]}'
    )
    assert calls[:5] == ["field a", "model A", "field b", "model B", "parts 2"]
    assert len(calls) == 10  # the five above, then the five of the reference


def test_a_validator_that_reads_other_fields_runs_with_its_model() -> None:
    class Span(pydantic.BaseModel):
        start: int
        end: int

        @pydantic.field_validator("end")
        @classmethod
        def after_start(cls, value: int, info: pydantic.ValidationInfo) -> int:
            if value < info.data["start"]:
                raise ValueError("end before start")
            return value

    parser = StructuredParser(Span)
    parser.feed('{"start": 3, "end": 5')
    # ``end`` waits for its model: its validator needs ``start`` (info.data).
    assert parser.partial.end is UNSET
    parser.feed("}")
    assert parser.close(complete=True) == Span(start=3, end=5)
    parser = StructuredParser(Span)
    with pytest.raises(OutputValidationError) as caught:
        parser.feed('{"start": 3, "end": 1}')
    assert caught.value.path == ("end",)
    assert "end before start" in caught.value.reason


class Circle(msgspec.Struct, tag="circle"):
    radius: float


class Square(msgspec.Struct, tag="square"):
    side: float


class Drawing(msgspec.Struct):
    shapes: list[Circle | Square]


def test_a_union_member_is_shown_once_its_tag_arrives() -> None:
    pieces = [
        '{"shapes": [{"side": 2',
        ', "type": "squ',
        'are"}, {"type": "circle", "radius": 1}]}',
    ]
    assert partials(Drawing, pieces) == [
        "Drawing(shapes=[])",  # which member is not known yet
        "Drawing(shapes=[])",
        "Drawing(shapes=[Square(side=2.0), Circle(radius=1.0)])",
    ]
    parser = StructuredParser(Drawing)
    parser.feed('{"shapes": [{"type": "circle", "radius": 1')
    assert repr(parser.partial) == "Drawing(shapes=[Circle(radius=UNSET)])"


class Renamed(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    first_name: str
    tags: Annotated[list[str], msgspec.Meta(max_length=2)] = []


class Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(strict=True, extra="forbid")
    when: datetime.date
    n: int


class Untagged(pydantic.BaseModel):
    either: list[int] | list[str] | None = None  # two array members: validated whole


@pytest.mark.parametrize(
    ("output_type", "pieces", "expected"),
    [
        pytest.param(
            Renamed,
            ['{"firstName": "A', 'da", "tags": ["x"', "]}"],
            [
                "Renamed(first_name='A', tags=UNSET)",
                "Renamed(first_name='Ada', tags=UNSET)",
                "Renamed(first_name='Ada', tags=['x'])",
            ],
            id="msgspec-rename-and-constrained-list-whole",
        ),
        pytest.param(
            Strict,
            ['{"when": "2024-05-0', '1", "n": 3', "}"],
            [
                "Strict(when=UNSET, n=UNSET)",
                "Strict(when=datetime.date(2024, 5, 1), n=UNSET)",
                "Strict(when=datetime.date(2024, 5, 1), n=3)",
            ],
            id="pydantic-strict-dates-from-json-text",
        ),
        pytest.param(
            list[WeatherP],
            ['[{"city": "Oslo", "temperature": -3', ', "units": "c"}, {"ci'],
            [
                "[WeatherP(city='Oslo', temperature=UNSET, units=UNSET)]",
                "[WeatherP(city='Oslo', temperature=-3.0, units='c'), "
                "WeatherP(city=UNSET, temperature=UNSET, units=UNSET)]",
            ],
            id="list-of-pydantic-models",
        ),
        pytest.param(
            Untagged,
            ['{"either": [1, 2', "]}"],
            ["Untagged(either=UNSET)", "Untagged(either=[1, 2])"],
            id="ambiguous-union-validated-whole",
        ),
        pytest.param(
            {"type": "object", "properties": {"a": {"type": "integer"}}},
            ['{"a": 1, "b": {"c": "x', '"}}'],
            ["{'a': 1}", "{'a': 1, 'b': {'c': 'x'}}"],  # an extra value shows once complete
            id="schema-additional-properties-shown",
        ),
    ],
)
def test_partial_values_of_particular_types(
    output_type: Any, pieces: list[str], expected: list[str]
) -> None:
    assert partials(output_type, pieces) == expected


@pytest.mark.parametrize(
    ("output_type", "text", "path", "reason"),
    [
        pytest.param(
            Renamed,
            '{"firstName": "a", "x": 1}',
            (),
            "Object contains unknown field `x`",
            id="msgspec-forbid-unknown",
        ),
        pytest.param(
            Renamed,
            '{"firstName": "a", "tags": ["1", "2", "3"]}',
            ("tags",),
            "Expected `array` of length <= 2",
            id="msgspec-constrained-list",
        ),
        pytest.param(
            Strict,
            '{"when": "2024-05-01", "n": 3, "x": 1}',
            ("x",),
            "Extra inputs are not permitted",
            id="pydantic-extra-forbid",
        ),
        pytest.param(
            Strict,
            '{"when": "2024-05-01", "n": 3.0}',
            ("n",),
            "Input should be a valid integer",
            id="pydantic-strict-int",
        ),
    ],
)
def test_errors_at_the_end_of_an_object(
    output_type: Any, text: str, path: tuple[Any, ...], reason: str
) -> None:
    parser = StructuredParser(output_type)
    with pytest.raises(OutputValidationError) as caught:
        parser.feed(text)
    assert (caught.value.path, caught.value.reason) == (path, reason)


def test_json_updates_carry_the_string_fragments() -> None:
    parser = StructuredParser(Weather)
    parser.feed('{"city": "Sa')
    assert parser.feed("n Fr") == []
    assert [(u.path, u.fragment) for u in parser.json_updates] == [(("city",), "n Fr")]  # type: ignore[union-attr]


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output_type", "text", "kind", "path", "reason"),
    [
        pytest.param(
            Weather,
            '{"city": 5}',
            "value",
            ("city",),
            "Expected `str`, got `int`",
            id="struct-type",
        ),
        pytest.param(
            Weather,
            '{"city": "x", "units": "k"}',
            "value",
            ("units",),
            "Invalid enum value 'k'",
            id="struct-literal",
        ),
        pytest.param(
            Weather,
            '{"city": "x", "units": "c"}',
            "value",
            (),
            "Object missing required field `temperature`",
            id="struct-missing",
        ),
        pytest.param(
            WeatherT,
            '{"city": "x", "units": "c"}',
            "value",
            (),
            "Object missing required field `temperature`",
            id="typeddict-missing",
        ),
        pytest.param(
            WeatherP,
            '{"city": "x", "units": "c"}',
            "value",
            ("temperature",),
            "Field required",
            id="pydantic-missing",
        ),
        pytest.param(
            WeatherP,
            '{"city": 1}',
            "value",
            ("city",),
            "Input should be a valid string",
            id="pydantic-type",
        ),
        pytest.param(
            Weather,
            '{"city": "x",}',
            "json",
            (),
            "trailing comma before '}'",
            id="json-trailing-comma",
        ),
        pytest.param(
            Weather,
            '{"city": NaN}',
            "json",
            (),
            "NaN and Infinity are not valid JSON, got 'N'",
            id="json-nan",
        ),
        pytest.param(
            Weather,
            '{"city": "x"',
            "incomplete",
            (),
            "unexpected end of input, expected ',' or '}' after an object member",
            id="json-ended-early",
        ),
        pytest.param(
            Weather, "", "incomplete", (), "no JSON value before the end of input", id="empty"
        ),
        pytest.param(
            Weather, "[1]", "value", (), "Expected `object`, got `array`", id="wrong-top-kind"
        ),
        pytest.param(
            ORDER_SCHEMA,
            '{"id": 1, "zz": 2}',
            "value",
            ("zz",),
            "unexpected property 'zz'",
            id="schema-extra",
        ),
        pytest.param(
            {"type": "array", "maxItems": 1},
            "[1, 2]",
            "value",
            (),
            "expected at most 1 items, got 2",
            id="schema-max-items",
        ),
        pytest.param(
            {"type": "string", "pattern": "^a"},
            '"ba"',
            "value",
            (),
            "'ba' does not match the pattern '^a'",
            id="schema-pattern",
        ),
    ],
)
def test_errors_are_typed_with_path_and_reason(
    output_type: Any, text: str, kind: str, path: tuple[Any, ...], reason: str
) -> None:
    parser = StructuredParser(output_type)
    with pytest.raises(OutputValidationError) as caught:
        parser.feed(text)
        parser.close(complete=True)
    error = caught.value
    assert (error.kind, error.path, error.reason) == (kind, path, reason)
    assert isinstance(error, StreamfoldError) and isinstance(error, ValueError)
    assert error.text == text


def test_feeding_after_close_is_a_usage_error() -> None:
    parser = StructuredParser(WeatherT)
    parser.feed('{"city": "x", "temperature": 1, "units": "c"}')
    assert parser.close(complete=True) == {"city": "x", "temperature": 1.0, "units": "c"}
    assert parser.close(complete=True) == {"city": "x", "temperature": 1.0, "units": "c"}
    with pytest.raises(UsageError):
        parser.feed(" ")


def test_too_deep_json_is_a_json_error_never_a_recursion_error() -> None:
    parser = StructuredParser(list[Any], max_depth=50)
    with pytest.raises(OutputValidationError) as caught:
        parser.feed("[" * 10_000)
    assert caught.value.kind == "json"


@pytest.mark.parametrize("depth", [MAX_WHOLE_DEPTH + 1, 255])
def test_validating_a_deep_subtree_whole_is_a_value_error_never_a_recursion_error(
    depth: int,
) -> None:
    # Two array alternatives: the value is validated whole, recursively, at its
    # end; past the bound it is refused the same way whatever the caller's stack.
    schema = {"anyOf": [{"type": "array", "items": {"$ref": "#"}}, {"type": "array"}]}
    parser = StructuredParser(schema)
    with pytest.raises(OutputValidationError) as caught:
        parser.feed("[" * depth + "]" * depth)
        parser.close(complete=True)
    assert caught.value.kind == "value"
    assert "too deep to validate whole" in caught.value.reason


def test_a_subtree_at_the_depth_bound_validates() -> None:
    schema = {"anyOf": [{"type": "array", "items": {"$ref": "#"}}, {"type": "array"}]}
    parser = StructuredParser(schema)
    parser.feed("[" * MAX_WHOLE_DEPTH + "]" * MAX_WHOLE_DEPTH)
    value = parser.close(complete=True)
    for _ in range(MAX_WHOLE_DEPTH - 1):
        value = value[0]
    assert value == []


def test_the_error_pickles_with_what_it_carries() -> None:
    parser = StructuredParser(Weather)
    with pytest.raises(OutputValidationError) as caught:
        parser.feed('{"city": 5}')
    error = pickle.loads(pickle.dumps(caught.value))
    assert (error.kind, error.path, error.reason, error.text, str(error)) == (
        "value",
        ("city",),
        "Expected `str`, got `int`",
        '{"city": 5}',
        "Expected `str`, got `int` (at $.city)",
    )
    assert error.partial_value == Weather(city=UNSET, temperature=UNSET, units=UNSET)  # type: ignore[arg-type]


def test_a_bare_number_completes_at_close() -> None:
    parser = StructuredParser(int)
    assert parser.feed("12") == []
    assert parser.partial is UNSET  # 12 may still become 123
    assert parser.close(complete=True) == 12
    assert parser.updates == [OutputValueDone((), 12)]


@pytest.mark.parametrize("union", [int | None, float | None, int | float, str | None, bool | None])
@pytest.mark.parametrize("value", ["5", "-0", "2.5", "1e3", "true", "null", '"x"', "[1]", "{}"])
def test_a_union_of_scalars_validates_as_the_library_does(union: Any, value: str) -> None:
    # Its fast check keeps a value of exactly one of its kinds; every other value
    # (an int for a float, a bool for an int, the wrong kind) is msgspec's to judge.
    text = f'{{"field": {value}}}'
    invalid = object()
    try:
        expected: Any = msgspec.json.decode(text, type=dict[str, union])["field"]
    except msgspec.ValidationError:
        expected = invalid
    parser = StructuredParser(dict[str, union])
    try:
        parser.feed(text)
        got = parser.close(complete=True)["field"]
    except OutputValidationError as exc:
        assert expected is invalid, exc
        assert exc.kind == "value" and exc.path == ("field",)
    else:
        assert got == expected and type(got) is type(expected)


def test_a_lone_surrogate_is_validated_like_the_library_does() -> None:
    text = '{"city": "\\ud83d", "temperature": 1, "units": "c"}'
    for output_type in (Weather, WeatherP):
        parser = StructuredParser(output_type)
        parser.feed(text)
        assert parser.close(complete=True).city == "\ud83d"


# -- types and schemas -------------------------------------------------------------------------


class Unsupported:
    pass


@pytest.mark.parametrize(
    ("output_type", "message"),
    [
        pytest.param(Unsupported, "msgspec cannot validate", id="unknown-class"),
        pytest.param(
            {"type": "object", "patternProperties": {}},
            "unsupported keywords ['patternProperties']",
            id="pattern-properties",
        ),
        pytest.param(
            {"allOf": [{"type": "string"}, {"minLength": 1}]},
            "allOf with more than one schema",
            id="all-of",
        ),
        pytest.param({"type": "date"}, "unknown type 'date'", id="unknown-type"),
        pytest.param({"$ref": "http://example.com/x"}, "only local $ref", id="remote-ref"),
        pytest.param({"$ref": "#/$defs/missing"}, "points nowhere", id="dangling-ref"),
        pytest.param(
            {"type": "array", "uniqueItems": True},
            "unsupported keywords ['uniqueItems']",
            id="unique-items",
        ),
        pytest.param({"not": {}}, "without a type", id="not"),
        pytest.param({"type": "string", "pattern": "("}, "does not compile", id="bad-pattern"),
    ],
)
def test_unsupported_types_and_schemas_are_usage_errors(output_type: Any, message: str) -> None:
    with pytest.raises(
        UnsupportedSchemaError, match=message.replace("[", r"\[").replace("$", r"\$")
    ) as caught:
        StructuredParser(output_type)
    assert isinstance(caught.value, UsageError)


@pytest.mark.parametrize(
    ("schema", "text", "valid"),
    [
        pytest.param({"type": "integer"}, "1.0", True, id="integer-as-float"),
        pytest.param({"type": "integer"}, "true", False, id="boolean-is-not-integer"),
        pytest.param(
            {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
            "1",
            False,
            id="exclusive-maximum",
        ),
        pytest.param({"type": "number", "multipleOf": 0.1}, "0.3", True, id="multiple-of"),
        pytest.param({"const": 1}, "true", False, id="const-true-is-not-1"),
        pytest.param({"enum": [[1], {"a": None}]}, '{"a": null}', True, id="enum-of-containers"),
        pytest.param({"type": "STRING", "nullable": True}, "null", True, id="gemini-openapi-style"),
        pytest.param(
            {"type": "string", "format": "date-time"},
            '"whenever"',
            True,
            id="format-is-an-annotation",
        ),
        pytest.param(
            {"oneOf": [{"type": "integer"}, {"type": "number"}]},
            "1",
            False,
            id="one-of-overlapping",
        ),
        pytest.param(
            {"oneOf": [{"type": "integer"}, {"type": "string"}]}, "1", True, id="one-of-disjoint"
        ),
        pytest.param({"anyOf": [{"type": "integer"}, {"type": "number"}]}, "1", True, id="any-of"),
        pytest.param({"allOf": [{"type": "string"}]}, '"x"', True, id="all-of-one"),
        pytest.param(False, "1", False, id="false-schema"),
        pytest.param(
            {"type": "object", "properties": {"a": {"type": "integer"}}},
            '{"a": 1, "b": [2]}',
            True,
            id="additional-allowed",
        ),
        pytest.param(
            {"type": "array", "items": {"type": "string", "minLength": 2}},
            '["ab", "c"]',
            False,
            id="item-min-length",
        ),
    ],
)
def test_json_schema_keywords(schema: Any, text: str, valid: bool) -> None:
    parser = StructuredParser(schema)
    if valid:
        parser.feed(text)
        assert parser.close(complete=True) == json.loads(text)
    else:
        with pytest.raises(OutputValidationError):
            parser.feed(text)
            parser.close(complete=True)


def test_a_recursive_schema_is_followed() -> None:
    tree = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#"}},
        },
        "required": ["name"],
    }
    text = '{"name": "a", "children": [{"name": "b", "children": [{"name": "c"}]}]}'
    parser = StructuredParser(tree)
    parser.feed(text[:-4])
    assert parser.partial == {"name": "a", "children": [{"name": "b", "children": [{"name": "c"}]}]}
    parser.feed(text[-4:])
    assert parser.close(complete=True) == json.loads(text)


def test_an_output_type_is_compiled_once_and_reused() -> None:
    compiled = OutputType(ORDER_SCHEMA)
    for _ in range(2):
        parser = StructuredParser(compiled)
        parser.feed(
            '{"id": 1, "title": "t", "done": false, "kind": "a", "color": "red", "score": null,'
        )
        parser.feed(' "items": [], "meta": {}, "marks": []}')
        assert parser.close(complete=True)["id"] == 1


def test_pydantic_is_imported_only_for_pydantic_types() -> None:
    code = (
        "import sys, msgspec, streamfold.structured as s\n"
        "class T(msgspec.Struct):\n    a: int\n"
        "p = s.StructuredParser(T); p.feed('{\"a\": 1}'); p.close(complete=True)\n"
        "q = s.StructuredParser({'type': 'object'}); q.feed('{}'); q.close(complete=True)\n"
        "print([m for m in ('pydantic', 'pydantic_core', 'httpx', 'asyncio') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert done.stdout.strip() == b"[]"
