"""Typed partial values of streamed JSON: the caller's type, validated in linear time.

A structured answer (JSON mode, a response schema, a tool call's arguments) is
JSON text streamed in small pieces. :class:`StructuredParser` parses it with
:class:`~streamfold.partial_json.PartialJSONParser` and keeps the value received
so far as the caller's own type, validating each completed subtree once::

    parser = StructuredParser(Weather)       # a msgspec Struct, dataclass, TypedDict,
    for piece in pieces:                     # pydantic model or JSON Schema dict
        for update in parser.feed(piece):    # OutputValueDone: a field or item completed
            ...
        parser.partial                       # the value now, as a Weather
    weather = parser.close(complete=True)    # the validated Weather, or OutputValidationError

Types (see ``docs/structured.md`` for the details):
    - ``msgspec.Struct``, dataclasses, ``TypedDict`` and the types they are made
      of (``list``, ``tuple[T, ...]``, ``dict[str, T]``, unions, ``Literal``,
      enums, ``Annotated`` constraints...): msgspec's semantics, the final value
      equal to ``msgspec.json.decode(text, type=T)``.
    - pydantic (v2) models, and types that contain one: pydantic's semantics
      (aliases, defaults, validators, ``extra``), the final value equal to
      ``Model.model_validate_json(text)``. pydantic is imported only then.
    - A JSON Schema (a ``dict``): the subset structured-output APIs accept
      (``type``, ``properties``, ``required``, ``additionalProperties``,
      ``items``, ``enum``, ``const``, ``anyOf``, ``oneOf``, ``$defs``/``$ref``,
      the usual string, number and array bounds); the final value is the JSON
      value itself. Anything else raises :class:`UnsupportedSchemaError`.

The partial value (``partial``), at every moment:
    - Objects of attribute types (Struct, dataclass, pydantic model) are
      instances of the caller's class whose fields not received yet are
      :data:`UNSET` (``msgspec.UNSET``), never ``None`` (which is what ``null``
      gives). Their ``__post_init__`` does not run on partial values (it runs
      once, on the final object); a pydantic partial has ``model_fields_set``
      equal to the fields received.
    - Objects of dict types (``TypedDict``, ``dict[str, T]``, JSON Schema) are
      dicts holding the keys received so far.
    - Arrays are lists holding the items received so far.
    - A field or item appears as soon as its value has started if it is an
      object or array (holding what it has so far), and once it is complete
      and validated otherwise. A string whose type accepts any string (``str``,
      ``str | None``, ``Any``) appears growing, as received so far.
    - Every value in it has been validated; a completed object inside it is
      the final, validated object, shared with the final value.
    - It is one live object, updated in place by each ``feed()``: keep a copy
      if you need the value of a past moment.

Updates: ``feed()`` returns (and ``updates`` keeps) one :class:`OutputValueDone`
per value completed and validated by that piece: an object member, an array
item or the whole value (path ``()``), in document order; not per byte.

Cost: each piece costs what it adds. A scalar is validated when it completes;
an object or array is built from its already validated children when it
closes, and never walked again (msgspec Structs, dataclasses and TypedDicts are
constructed from their fields; a pydantic model is validated by its own schema
with its children's schemas replaced by ``any``). A subtree the parser cannot
follow (a union it cannot decide on, a ``before`` validator, ``Annotated``
constraints on a container) is validated whole, once, when it completes.
``partial`` costs nothing but joining the string being received, when it grew
since the last read (reading it after every piece of a megabyte-long string is
quadratic: the ``JSONStringDelta`` fragments of ``json_updates`` are not).

Errors: every failure is an :class:`OutputValidationError` (a
``StreamfoldError`` and a ``ValueError``), raised by the ``feed()`` or
``close()`` that detects it, with ``kind`` (``"json"``, ``"value"`` or
``"incomplete"``), ``path``, ``reason``, ``text`` (everything fed) and
``partial_value``. After it the parser is failed: ``feed()`` and ``close()``
raise it again. ``close(complete=False)`` (the stream was cut: length limit,
broken connection) always raises one of kind ``"incomplete"``: a truncated
answer is never validated as complete::

    StreamfoldError
    ├── OutputValidationError     the answer is not a valid value of the type (also ValueError)
    └── UsageError
        └── UnsupportedSchemaError  the type or schema is outside what this module supports
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, Final, Literal, TypeAlias

import msgspec

from .errors import OutputValidationError as OutputValidationError
from .errors import UnsupportedSchemaError as UnsupportedSchemaError
from .errors import UsageError
from .partial_json import (
    JSONStringDelta,
    JSONUpdate,
    JSONValueDone,
    JSONValueStarted,
    PartialJSONError,
    PartialJSONParser,
    Path,
)

__all__ = [
    "MAX_WHOLE_DEPTH",
    "UNSET",
    "OutputType",
    "OutputValidationError",
    "OutputValueDone",
    "StructuredParser",
    "UnsupportedSchemaError",
]

UNSET: Final = msgspec.UNSET
"""A field of a partial value not received yet (``msgspec.UNSET``)."""


class OutputValueDone(msgspec.Struct, frozen=True, tag="output.done", tag_field="type"):
    """The value at ``path`` is complete and validated (``()``: the whole value).

    Attributes:
        path: Object keys and array indexes from the top-level value down.
        value: The validated value, as it is in the partial and final values.
    """

    path: Path
    value: Any


class _Invalid(Exception):
    """A value does not validate: ``reason`` at ``path`` (relative to the value checked,
    unless ``absolute``)."""

    def __init__(self, reason: str, path: Path = (), *, absolute: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path
        self.absolute = absolute


# -- plans: what each position of the type expects ------------------------------------------

Validate: TypeAlias = Callable[[Any], Any]


class _Plan:
    """What a position of the output type expects.

    ``validate`` checks a complete JSON value (any kind) and returns the typed
    value, raising ``_Invalid``. Container plans also say how to follow the
    value as it streams.
    """

    __slots__ = ("grows", "literals", "validate")

    def __init__(
        self, validate: Validate, *, grows: bool = False, literals: frozenset[Any] | None = None
    ) -> None:
        self.validate = validate
        # A string being received may be shown as it grows (the type accepts any string).
        self.grows = grows
        # The only values accepted (Literal, enum, const), for discriminating unions.
        self.literals = literals


#: The deepest container validated whole (the validators recurse: a bound well
#: inside Python's recursion limit, whatever the caller's stack, so that the
#: same document always gives the same answer).
MAX_WHOLE_DEPTH: Final = 64


def _check_depth(value: Any) -> None:
    """Raise ``_Invalid`` when ``value`` nests containers deeper than ``MAX_WHOLE_DEPTH``
    (looked at iteratively, once, where a subtree is validated whole)."""
    if type(value) is not dict and type(value) is not list:
        return
    pending = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_WHOLE_DEPTH:
            raise _Invalid(f"nested more than {MAX_WHOLE_DEPTH} deep: too deep to validate whole")
        children = node.values() if type(node) is dict else node
        pending.extend((child, depth + 1) for child in children if type(child) in (dict, list))


class _Leaf(_Plan):
    """A value validated whole when complete (scalars, and subtrees not followed)."""

    __slots__ = ("shown",)

    def __init__(
        self,
        validate: Validate,
        *,
        grows: bool = False,
        literals: frozenset[Any] | None = None,
        shown: bool = True,
    ) -> None:
        super().__init__(validate, grows=grows, literals=literals)
        self.shown = shown


class _Field:
    """An object member: the attribute it fills, its plan, and whether partial values show it."""

    __slots__ = ("attribute", "plan", "shown")

    def __init__(self, attribute: str, plan: _Plan, shown: bool = True) -> None:
        self.attribute = attribute
        self.plan = plan
        self.shown = shown


class _Extra(enum.Enum):
    """What an object does with a key it does not declare."""

    DROP = "drop"  # skipped (msgspec without forbid_unknown_fields, TypedDict)
    KEEP = "keep"  # kept for the build, not shown (pydantic decides; msgspec forbids)
    SHOW = "show"  # kept and shown (JSON Schema additional properties)
    FORBID = "forbid"  # an error as soon as it completes (JSON Schema)


class _ObjectPlan(_Plan):
    """An object with declared fields; filled in after creation (types may recurse)."""

    __slots__ = ("build", "extra", "extra_plan", "fields", "new_view", "required", "set_view")

    def __init__(self, validate: Validate) -> None:
        super().__init__(validate)
        self.fields: dict[str, _Field] = {}
        self.required: frozenset[str] = frozenset()  # JSON keys that must be present
        self.extra = _Extra.DROP
        self.extra_plan: _Plan = _SKIP
        # The partial instance, and how a field is set on it (None: the view is the dict
        # of children itself).
        self.new_view: Callable[[], Any] | None = None
        self.set_view: Callable[[Any, str, Any], None] | None = None
        # The final value from the dict of validated children (JSON key -> value).
        self.build: Callable[[dict[str, Any]], Any] = dict


class _ArrayPlan(_Plan):
    __slots__ = ("finish", "item")

    def __init__(
        self, validate: Validate, item: _Plan, finish: Callable[[list[Any]], Any] | None = None
    ) -> None:
        super().__init__(validate)
        self.item = item
        self.finish = finish  # None: the list of validated items is the value


class _MapPlan(_Plan):
    __slots__ = ("finish", "value")

    def __init__(
        self,
        validate: Validate,
        value: _Plan,
        finish: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        super().__init__(validate)
        self.value = value
        self.finish = finish


class _TaggedPlan(_Plan):
    """A union of objects told apart by the value of one key."""

    __slots__ = ("choices", "tag")

    def __init__(self, validate: Validate, tag: str, choices: dict[Any, _ObjectPlan]) -> None:
        super().__init__(validate)
        self.tag = tag
        self.choices = choices


class _UnionPlan(_Plan):
    """A union followed by the kind of JSON value: at most one object and one array plan;
    anything else (strings, numbers, literals, null) is validated by ``validate``."""

    __slots__ = ("array", "object")

    def __init__(
        self, validate: Validate, object: _Plan | None, array: _Plan | None, grows: bool
    ) -> None:
        super().__init__(validate, grows=grows)
        self.object = object
        self.array = array


def _identity(value: Any) -> Any:
    return value


_ANY: Final = _Leaf(_identity, grows=True)
# Skipped: kept raw, never shown (keys an object ignores, values awaiting their union member).
_SKIP: Final = _Leaf(_identity, shown=False)

_HASHABLE_SCALARS: Final = (str, int, float, bool, type(None))


def _literals(values: Iterable[Any]) -> frozenset[Any] | None:
    """The values as a set for telling union members apart, or None when they cannot be
    (unhashable, or booleans, which would be equal to 0 and 1)."""
    values = list(values)
    if not all(isinstance(v, _HASHABLE_SCALARS) and type(v) is not bool for v in values):
        return None
    return frozenset(values)


def _is_object_like(plan: _Plan) -> bool:
    return isinstance(plan, (_ObjectPlan, _MapPlan, _TaggedPlan))


def _discriminate(members: list[_ObjectPlan]) -> tuple[str, dict[Any, _ObjectPlan]] | None:
    """A key whose literal values tell ``members`` apart, and the member for each value."""
    if not members:
        return None
    for key in members[0].fields:
        choices: dict[Any, _ObjectPlan] = {}
        for member in members:
            field = member.fields.get(key)
            values = field.plan.literals if field is not None else None
            if not values or any(v in choices for v in values):
                break
            choices.update(dict.fromkeys(values, member))
        else:
            return key, choices
    return None


def _union(validate: Validate, members: list[_Plan]) -> _Plan:
    """Follow a union by JSON kind when each container kind has at most one plan."""
    if any(m is _ANY for m in members):
        return _Leaf(validate, grows=True)
    objects = [m for m in members if _is_object_like(m)]
    arrays = [m for m in members if isinstance(m, _ArrayPlan)]
    grows = any(m.grows for m in members)
    object_plan: _Plan | None = None
    if len(objects) == 1:
        object_plan = objects[0]
    elif objects:
        if not all(isinstance(m, _ObjectPlan) for m in objects):
            return _Leaf(validate, grows=grows)
        found = _discriminate(typing.cast("list[_ObjectPlan]", objects))
        if found is None:
            return _Leaf(validate, grows=grows)
        object_plan = _TaggedPlan(validate, found[0], found[1])
    if len(arrays) > 1:
        return _Leaf(validate, grows=grows)
    array_plan = arrays[0] if arrays else None
    if object_plan is None and array_plan is None:
        literals: set[Any] = set()
        for member in members:
            if member.literals is None:
                return _Leaf(validate, grows=grows)
            literals |= member.literals
        return _Leaf(validate, grows=grows, literals=frozenset(literals))
    return _UnionPlan(validate, object_plan, array_plan, grows)


# -- msgspec types, dataclasses, TypedDicts --------------------------------------------------

_MSGSPEC_PATH: Final = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")
_CONSTRAINTS: Final = (
    "gt",
    "ge",
    "lt",
    "le",
    "multiple_of",
    "pattern",
    "min_length",
    "max_length",
    "tz",
)


def _msgspec_invalid(error: msgspec.ValidationError) -> _Invalid:
    """msgspec's message, its ``- at `$.a[0]``` suffix turned into a path."""
    message = str(error)
    reason, separator, where = message.rpartition(" - at `")
    if not separator:
        return _Invalid(message)
    path: list[str | int] = []
    for match in _MSGSPEC_PATH.finditer(where.rstrip("`").removeprefix("$")):
        key, index = match.group(1), match.group(2)
        path.append(key if key is not None else int(index) if index is not None else "...")
    return _Invalid(reason, tuple(path))


def _converter(tp: Any) -> Validate:
    """Validate a complete JSON value as ``msgspec.json.decode`` would for type ``tp``."""
    convert = msgspec.convert

    def validate(value: Any) -> Any:
        try:
            return convert(value, tp, str_keys=True)
        except msgspec.ValidationError as exc:
            raise _msgspec_invalid(exc) from None
        except RecursionError:
            raise _Invalid("nested too deeply to validate") from None

    return validate


def _exact(kind: type, tp: Any) -> Validate:
    """A scalar: the common case checked inline, anything else (errors) by msgspec."""
    slow = _converter(tp)

    def validate(value: Any) -> Any:
        return value if type(value) is kind else slow(value)

    return validate


def _exact_any(kinds: frozenset[type], slow: Validate) -> Validate:
    """A union of scalars: a value of exactly one of its kinds is valid as it is
    (msgspec returns it unchanged), anything else goes to msgspec."""

    def validate(value: Any) -> Any:
        return value if type(value) in kinds else slow(value)

    return validate


#: Scalar types msgspec returns unchanged when the value is exactly of that type.
_EXACT_KINDS: Final = frozenset({str, int, bool, float, type(None)})


def _float(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        return value
    if kind is int:
        return float(value)
    return _FLOAT_SLOW(value)


def _none(value: Any) -> Any:
    return None if value is None else _NONE_SLOW(value)


_FLOAT_SLOW: Final = _converter(float)
_NONE_SLOW: Final = _converter(type(None))
_SCALARS: Final[dict[Any, _Plan]] = {
    str: _Leaf(_exact(str, str), grows=True),
    int: _Leaf(_exact(int, int)),
    bool: _Leaf(_exact(bool, bool)),
    float: _Leaf(_float),
    type(None): _Leaf(_none, literals=frozenset([None])),
    None: _Leaf(_none, literals=frozenset([None])),
}


class _PythonCompiler:
    """Plans for the types msgspec validates: Structs, dataclasses, TypedDicts and the rest."""

    def __init__(self) -> None:
        self.memo: dict[Any, _Plan] = {}

    def plan(self, tp: Any) -> _Plan:
        try:
            found = self.memo.get(tp)
        except TypeError:  # an unhashable annotation: no memo
            return self._plan(tp)
        if found is None:
            found = self.memo[tp] = self._plan(tp)
        return found

    def _plan(self, tp: Any) -> _Plan:
        scalar = _SCALARS.get(tp) if isinstance(tp, type) or tp is None else None
        if scalar is not None:
            return scalar
        if tp is Any or tp is object:
            return _ANY
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.Annotated:
            constrained = any(
                isinstance(meta, msgspec.Meta)
                and any(getattr(meta, name) is not None for name in _CONSTRAINTS)
                for meta in args[1:]
            )
            return _Leaf(_converter(tp)) if constrained else self.plan(args[0])
        if origin is typing.Union or origin is types.UnionType:
            validate = _converter(tp)
            kinds = frozenset(type(None) if a is None else a for a in args)
            if kinds <= _EXACT_KINDS:  # scalars only (`int | None`): a value of one kept as it is
                validate = _exact_any(kinds, validate)
            return _union(validate, [self.plan(a) for a in args])
        if origin is Literal:
            return _Leaf(_converter(tp), literals=_literals(args))
        if tp is list or origin is list:
            return _ArrayPlan(_converter(tp), self.plan(args[0]) if args else _ANY)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return _ArrayPlan(_converter(tp), self.plan(args[0]), tuple)
        if (tp is dict or origin is dict) and (not args or args[0] in (str, Any)):
            return _MapPlan(_converter(tp), self.plan(args[1]) if args else _ANY)
        cls = origin if isinstance(origin, type) else tp
        if isinstance(cls, type):
            if issubclass(cls, msgspec.Struct) and not cls.__struct_config__.array_like:
                return self._struct(tp, cls)
            if dataclasses.is_dataclass(cls) and origin is None:
                return self._dataclass(cls)
            if typing.is_typeddict(cls) and origin is None:
                return self._typed_dict(cls)
            if issubclass(cls, enum.Enum):
                return _Leaf(_converter(tp), literals=_literals([m.value for m in cls]))
        return _Leaf(_converter(tp))

    def _struct(self, tp: Any, cls: type[msgspec.Struct]) -> _Plan:
        plan = _ObjectPlan(_converter(tp))
        self.memo[tp] = plan  # before the fields: a Struct may contain itself
        config = cls.__struct_config__
        info = msgspec.structs.fields(tp)
        for field in info:
            plan.fields[field.encode_name] = _Field(field.name, self.plan(field.type))
        tag_field, tag = config.tag_field, config.tag
        if tag_field is not None:
            # The tag is not a field, but tells the members of a union apart.
            tag_plan = _Leaf(_identity, literals=frozenset([tag]))
            plan.fields[tag_field] = _Field(tag_field, tag_plan, shown=False)
        if config.forbid_unknown_fields:
            plan.extra = _Extra.KEEP
        names = {f.encode_name: f.name for f in info}
        required = [f.encode_name for f in info if f.required]
        forbid = config.forbid_unknown_fields
        template = _struct_template(cls, [f.name for f in info])
        plan.new_view = template.__copy__
        plan.set_view = msgspec.structs.force_setattr
        # The children are the arguments themselves when every key is a field's
        # own name and every required one is there (a 7-field Struct: 1.8 to 0.7 µs).
        plain = (
            frozenset(names)
            if tag_field is None and all(k == v for k, v in names.items())
            else None
        )
        required_keys = frozenset(required)

        def build(children: dict[str, Any]) -> Any:
            keys = children.keys()
            if plain is not None and keys <= plain and required_keys <= keys:
                try:
                    return cls(**children)
                except (TypeError, ValueError) as exc:  # as below
                    raise _Invalid(str(exc)) from None
            arguments: dict[str, Any] = {}
            for key, value in children.items():
                name = names.get(key)
                if name is not None:
                    arguments[name] = value
                elif key == tag_field:
                    if value != tag or type(value) is not type(tag):
                        raise _Invalid(f"Invalid value {value!r}", (key,))
                elif forbid:
                    raise _Invalid(f"Object contains unknown field `{key}`")
            for key in required:
                if names[key] not in arguments:
                    raise _Invalid(f"Object missing required field `{key}`")
            try:
                return cls(**arguments)
            except (TypeError, ValueError) as exc:  # from __post_init__, as msgspec reports it
                raise _Invalid(str(exc)) from None

        plan.build = build
        return plan

    def _dataclass(self, cls: type) -> _Plan:
        plan = _ObjectPlan(_converter(cls))
        self.memo[cls] = plan
        hints = typing.get_type_hints(cls, include_extras=True)
        fields = [f for f in dataclasses.fields(cls) if f.init]
        for field in fields:
            plan.fields[field.name] = _Field(field.name, self.plan(hints[field.name]))
        required = [
            f.name
            for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        names = [f.name for f in dataclasses.fields(cls)]
        setattr_ = object.__setattr__
        new = object.__new__

        def new_view() -> Any:
            view: Any = new(cls)
            for name in names:
                setattr_(view, name, UNSET)
            return view

        def build(children: dict[str, Any]) -> Any:
            for name in required:
                if name not in children:
                    raise _Invalid(f"Object missing required field `{name}`")
            known = plan.fields
            arguments = {k: v for k, v in children.items() if k in known}
            try:
                return cls(**arguments)
            except (TypeError, ValueError) as exc:
                raise _Invalid(str(exc)) from None

        plan.new_view = new_view
        plan.set_view = setattr_
        plan.build = build
        return plan

    def _typed_dict(self, cls: type) -> _Plan:
        plan = _ObjectPlan(_converter(cls))
        self.memo[cls] = plan
        hints = typing.get_type_hints(cls, include_extras=True)
        required_keys: frozenset[str] = cls.__required_keys__  # type: ignore[attr-defined]
        required = []
        for name, hint in hints.items():
            # With postponed annotations the class cannot see Required / NotRequired:
            # the resolved hints say it (as msgspec reads them).
            mark = typing.get_origin(hint)
            while mark in _REQUIRED_MARKS:
                hint = typing.get_args(hint)[0]
                if mark is getattr(typing, "Required", None):
                    required.append(name)
                mark = typing.get_origin(hint)
            if name in required_keys and typing.get_origin(hints[name]) not in _REQUIRED_MARKS:
                required.append(name)
            plan.fields[name] = _Field(name, self.plan(hint))

        def build(children: dict[str, Any]) -> Any:
            for name in required:
                if name not in children:
                    raise _Invalid(f"Object missing required field `{name}`")
            return children

        plan.build = build
        return plan


_REQUIRED_MARKS: Final = tuple(
    mark
    for mark in (getattr(typing, "Required", None), getattr(typing, "NotRequired", None))
    if mark is not None
)


def _struct_template(cls: type[msgspec.Struct], names: list[str]) -> Any:
    """An instance of ``cls`` with every field UNSET, made without running ``__post_init__``
    (which may reject partial values): partial values are copies of it."""
    if not hasattr(cls, "__post_init__"):
        return cls(**dict.fromkeys(names, UNSET))
    quiet = type(
        cls.__name__,
        (cls,),
        {"__post_init__": lambda self: None, "__module__": cls.__module__},
    )
    template = quiet(**dict.fromkeys(names, UNSET))
    template.__class__ = cls  # the same layout: only __post_init__ differed
    return template


# -- pydantic --------------------------------------------------------------------------------

# Keys of a pydantic-core schema that never hold schemas.
_NOT_SCHEMAS: Final = frozenset(
    {
        "cls",
        "config",
        "default",
        "default_factory",
        "expected",
        "function",
        "metadata",
        "ref",
        "schema_ref",
        "serialization",
        "computed_fields",
        "post_init",
        "discriminator",
    }
)
_STR_TRANSFORMS: Final = (
    "str_strip_whitespace",
    "str_to_lower",
    "str_to_upper",
    "str_min_length",
    "str_max_length",
)


def _is_pydantic(tp: Any) -> bool:
    """Whether ``tp`` is, or contains, a pydantic model or dataclass (never imports pydantic)."""
    main = sys.modules.get("pydantic.main")
    if main is None:
        return False
    base = main.BaseModel
    seen: set[int] = set()
    todo = [tp]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, type) and (
            issubclass(item, base) or hasattr(item, "__pydantic_validator__")
        ):
            return True
        todo.extend(typing.get_args(item))
    return False


class _PydanticCompiler:
    """Plans from a pydantic-core schema.

    The schema is first flattened: every schema with a ``ref`` moves into
    ``defs``, replaced by a ``definition-ref``, so that any subschema can get
    its own validator with just the definitions it uses. A model's plan builds
    the model with a validator of its own schema in which each field's
    followed part is ``any``: its validators and defaults run once, on
    children already validated.
    """

    def __init__(self, schema: Any) -> None:
        import pydantic_core

        self.core = pydantic_core
        self.defs: dict[str, Any] = {}
        self.plans: dict[str, _Plan] = {}
        self.root_schema = self._flatten(schema)

    # Schemas.

    def _flatten(self, node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("type") == "definitions":
                for definition in node["definitions"]:
                    self._flatten(definition)
                return self._flatten(node["schema"])
            copy = {k: v if k in _NOT_SCHEMAS else self._flatten(v) for k, v in node.items()}
            ref = node.get("ref")
            if isinstance(ref, str):
                self.defs[ref] = copy
                return {"type": "definition-ref", "schema_ref": ref}
            return copy
        if isinstance(node, list):
            return [self._flatten(v) for v in node]
        if isinstance(node, tuple):
            return tuple(self._flatten(v) for v in node)
        return node

    def _refs(self, node: Any, found: set[str]) -> None:
        """Add the definitions ``node`` uses, directly or not, to ``found``."""
        todo = [node]
        while todo:
            item = todo.pop()
            if isinstance(item, dict):
                if item.get("type") == "definition-ref":
                    ref = item["schema_ref"]
                    if ref not in found:
                        found.add(ref)
                        todo.append(self.defs[ref])
                    continue
                todo.extend(v for k, v in item.items() if k not in _NOT_SCHEMAS)
            elif isinstance(item, (list, tuple)):
                todo.extend(item)

    def validator(self, schema: Any, config: Any) -> Any:
        refs: set[str] = set()
        self._refs(schema, refs)
        if refs:
            schema = {
                "type": "definitions",
                "schema": schema,
                "definitions": [self.defs[r] for r in sorted(refs)],
            }
        return self.core.SchemaValidator(schema, config)

    def resolve(self, schema: Any) -> Any:
        while schema.get("type") == "definition-ref":
            schema = self.defs[schema["schema_ref"]]
        return schema

    # Validation functions.

    def _invalid(self, error: Any) -> _Invalid:
        first = error.errors(include_url=False)[0]
        return _Invalid(str(first["msg"]), tuple(first["loc"]))

    def json_validate(self, schema: Any, config: Any) -> Validate:
        """Validate a complete JSON value in JSON mode (pydantic's own JSON semantics)."""
        validator = self.validator(schema, config)
        encode = msgspec.json.encode
        error_type = self.core.ValidationError

        def validate(value: Any) -> Any:
            try:
                try:
                    data = encode(value)
                except UnicodeEncodeError:  # a lone surrogate: no UTF-8 for it
                    return validator.validate_python(value)
                return validator.validate_json(data)
            except error_type as exc:
                raise self._invalid(exc) from None

        return validate

    def python_validate(self, schema: Any, config: Any) -> Callable[[Any], Any]:
        """Validate validated children (a dict or list) with a shallow schema."""
        validator = self.validator(schema, config)
        error_type = self.core.ValidationError

        def validate(value: Any) -> Any:
            try:
                return validator.validate_python(value)
            except error_type as exc:
                raise self._invalid(exc) from None

        return validate

    # Plans.

    def plan(self, schema: Any, config: Any) -> _Plan:
        if schema["type"] == "definition-ref":
            ref = schema["schema_ref"]
            found = self.plans.get(ref)
            if found is None:
                found = self._plan(self.defs[ref], config, ref)
            return found
        return self._plan(schema, config, None)

    def _plan(self, schema: Any, config: Any, ref: str | None) -> _Plan:
        core = schema
        while core["type"] == "function-after":
            core = core["schema"]
        kind = core["type"]
        wrapped = core is not schema
        if kind == "model":
            return self._model(schema, core, ref)
        if kind == "typed-dict":
            return self._typed_dict(schema, core, config, ref)
        validate = self.json_validate(schema, config)
        if ref is not None:
            # Not a model: a recursion through it is validated whole.
            self.plans[ref] = _Leaf(validate)
        if kind == "list" and not wrapped:
            item = self.plan(core["items_schema"], config) if "items_schema" in core else _ANY
            bounded = any(k in core for k in ("min_length", "max_length", "strict"))
            finish = self._shallow_items(core, "items_schema", config) if bounded else None
            plan: _Plan = _ArrayPlan(validate, item, finish)
        elif kind == "dict" and not wrapped and self._str_keys(core.get("keys_schema")):
            value = self.plan(core["values_schema"], config) if "values_schema" in core else _ANY
            bounded = any(k in core for k in ("min_length", "max_length", "strict"))
            finish = self._shallow_items(core, "values_schema", config) if bounded else None
            plan = _MapPlan(validate, value, finish)
        elif kind == "nullable" and not wrapped:
            none = _Leaf(validate, literals=frozenset([None]))
            plan = _union(validate, [none, self.plan(core["schema"], config)])
        elif kind == "union" and not wrapped:
            members = [c[0] if isinstance(c, tuple) else c for c in core["choices"]]
            plan = _union(validate, [self.plan(m, config) for m in members])
        elif kind == "tagged-union" and not wrapped and isinstance(core["discriminator"], str):
            plan = self._tagged_union(validate, core, config)
        else:
            plan = self._leaf(schema, core, config, validate)
        if ref is not None:
            self.plans[ref] = plan
        return plan

    def _leaf(self, schema: Any, core: Any, config: Any, validate: Validate) -> _Plan:
        kind = core["type"]
        config = config or {}
        plain = core is schema and not (set(core) - {"type", "metadata", "ref", "serialization"})
        grows = plain and (
            kind == "any" or (kind == "str" and not any(config.get(k) for k in _STR_TRANSFORMS))
        )
        literals: frozenset[Any] | None = None
        if kind == "literal" and core is schema:
            expected = core["expected"]
            literals = _literals([v.value if isinstance(v, enum.Enum) else v for v in expected])
        return _Leaf(validate, grows=grows, literals=literals)

    def _str_keys(self, keys: Any) -> bool:
        if keys is None:
            return True
        keys = self.resolve(keys)
        return keys["type"] == "any" or (keys["type"] == "str" and len(keys) == 1)

    def _shallow_items(self, core: Any, key: str, config: Any) -> Callable[[Any], Any]:
        """Bounds of a list or dict checked on items already validated."""
        return self.python_validate({**core, key: {"type": "any"}}, config)

    def _tagged_union(self, validate: Validate, core: Any, config: Any) -> _Plan:
        choices: dict[Any, _ObjectPlan] = {}
        for tag, choice in core["choices"].items():
            plan = self.plan(choice, config)
            if not isinstance(plan, _ObjectPlan):
                return _Leaf(validate)
            value = tag.value if isinstance(tag, enum.Enum) else tag
            if isinstance(value, _HASHABLE_SCALARS):
                choices[value] = plan
        return _TaggedPlan(validate, core["discriminator"], choices)

    def _has_info_functions(self, schema: Any) -> bool:
        """Whether ``schema`` (not counting other models) calls validators that take a
        ``ValidationInfo``: they may read the model's other fields, so only the model
        can run them."""
        todo = [schema]
        while todo:
            item = todo.pop()
            if isinstance(item, dict):
                kind = item.get("type")
                if kind in ("definition-ref", "model"):
                    continue
                function = item.get("function")
                if isinstance(function, dict) and function.get("type") == "with-info":
                    return True
                todo.extend(v for k, v in item.items() if k not in _NOT_SCHEMAS)
            elif isinstance(item, (list, tuple)):
                todo.extend(item)
        return False

    def _keys(self, name: str, field: Any, config: Any) -> list[str] | None:
        """The JSON keys that fill a field, or None when pydantic looks elsewhere (paths)."""
        alias = field.get("validation_alias")
        by_alias = config.get("validate_by_alias", True)
        by_name = config.get("validate_by_name", config.get("populate_by_name", False))
        if alias is None:
            return [name]
        keys: list[str] = []
        if isinstance(alias, str):
            keys.append(alias)
        else:
            for choice in alias:
                if len(choice) != 1 or not isinstance(choice[0], str):
                    return None
                keys.append(choice[0])
        if not by_alias:
            keys = []
        if by_name or not keys:
            keys.append(name)
        return keys

    def _model(self, schema: Any, core: Any, ref: str | None) -> _Plan:
        config = core.get("config") or {}
        validate = self.json_validate(schema, config)
        fields_schema = core["schema"]
        followable = (
            not core.get("root_model")
            and not core.get("custom_init")
            and config.get("revalidate_instances", "never") == "never"
            and fields_schema["type"] == "model-fields"
        )
        if not followable:
            leaf = _Leaf(validate)
            if ref is not None:
                self.plans[ref] = leaf
            return leaf
        plan = _ObjectPlan(validate)
        if ref is not None:
            self.plans[ref] = plan  # before the fields: models may recurse
        shallow_fields: dict[str, Any] = {}
        for name, field in fields_schema["fields"].items():
            keys = self._keys(name, field, config)
            if keys is None:
                leaf = _Leaf(validate)
                if ref is not None:
                    self.plans[ref] = leaf
                return leaf
            # Defaults stay with the model; what is inside is followed (or validated whole).
            chain = [field]
            inner = field["schema"]
            while inner["type"] == "default":
                chain.append(inner)
                inner = inner["schema"]
            if self._has_info_functions(inner):
                entry = _Field(name, _SKIP, shown=False)  # raw: the model validates it
            else:
                entry = _Field(name, self.plan(inner, config))
                replaced: Any = {"type": "any"}
                for link in reversed(chain):
                    replaced = {**link, "schema": replaced}
                field = replaced
            for key in keys:
                plan.fields[key] = entry
            shallow_fields[name] = field
        plan.extra = _Extra.KEEP
        plan.extra_plan = _SKIP
        plan.build = self._model_build(schema, core, shallow_fields, config)
        plan.new_view = _pydantic_view(core["cls"], list(fields_schema["fields"]), config)
        plan.set_view = _pydantic_set
        return plan

    def _model_build(
        self, schema: Any, core: Any, shallow_fields: dict[str, Any], config: Any
    ) -> Callable[[dict[str, Any]], Any]:
        """Build the model from validated children as pydantic-core's model validator
        does: fields (defaults, aliases, extra), the instance, ``model_post_init``, then
        the model's ``after`` validators.

        Not with a ``model`` schema: pydantic-core would use the class's own validator
        (the complete schema) in place of the one given.
        """
        fields = self.python_validate({**core["schema"], "fields": shallow_fields}, config)
        after = None
        if schema is not core:
            wrappers = self._rewrap(schema, core, {"type": "any"})
            wrappers.pop("ref", None)
            after = self.python_validate(wrappers, config)
        cls = core["cls"]
        post_init = core.get("post_init")
        setattr_ = object.__setattr__

        def build(children: dict[str, Any]) -> Any:
            values, extra, fields_set = fields(children)
            model = cls.__new__(cls)
            setattr_(model, "__dict__", values)
            setattr_(model, "__pydantic_fields_set__", fields_set)
            setattr_(model, "__pydantic_extra__", extra)
            setattr_(model, "__pydantic_private__", None)
            if post_init:
                try:
                    getattr(model, post_init)(None)
                except (ValueError, AssertionError) as exc:
                    raise _Invalid(str(exc)) from None
            return model if after is None else after(model)

        return build

    def _typed_dict(self, schema: Any, core: Any, config: Any, ref: str | None) -> _Plan:
        config = core.get("config") or config or {}
        validate = self.json_validate(schema, config)
        plan = _ObjectPlan(validate)
        if ref is not None:
            self.plans[ref] = plan
        shallow_fields: dict[str, Any] = {}
        for name, field in core["fields"].items():
            keys = self._keys(name, field, config)
            if keys is None or self._has_info_functions(field["schema"]):
                leaf = _Leaf(validate)
                if ref is not None:
                    self.plans[ref] = leaf
                return leaf
            chain = [field]
            inner = field["schema"]
            while inner["type"] == "default":
                chain.append(inner)
                inner = inner["schema"]
            entry = _Field(name, self.plan(inner, config))
            replaced: Any = {"type": "any"}
            for link in reversed(chain):
                replaced = {**link, "schema": replaced}
            for key in keys:
                plan.fields[key] = entry
            shallow_fields[name] = replaced
        plan.extra = _Extra.KEEP
        plan.extra_plan = _SKIP
        shallow = self._rewrap(schema, core, {**core, "fields": shallow_fields})
        shallow.pop("ref", None)
        plan.build = self.python_validate(shallow, config)
        plan.new_view = None  # a dict, shown as its validated children
        return plan

    def _rewrap(self, schema: Any, core: Any, replacement: Any) -> Any:
        """``schema`` with its ``function-after`` wrappers kept and ``core`` replaced."""
        if schema is core:
            return replacement
        return {**schema, "schema": self._rewrap(schema["schema"], core, replacement)}


def _pydantic_view(cls: Any, names: list[str], config: Any) -> Callable[[], Any]:
    """An instance of model ``cls`` with every field UNSET and none in ``model_fields_set``."""
    setattr_ = object.__setattr__
    extra = config.get("extra_fields_behavior") == "allow"
    private = bool(getattr(cls, "__private_attributes__", None))
    unset = dict.fromkeys(names, UNSET)

    def new_view() -> Any:
        if private:
            return cls.model_construct(_fields_set=set(), **unset)
        view = cls.__new__(cls)
        setattr_(view, "__dict__", dict(unset))
        setattr_(view, "__pydantic_fields_set__", set())
        setattr_(view, "__pydantic_extra__", {} if extra else None)
        setattr_(view, "__pydantic_private__", None)
        return view

    return new_view


def _pydantic_set(view: Any, name: str, value: Any) -> None:
    view.__dict__[name] = value
    view.__pydantic_fields_set__.add(name)


# -- JSON Schema -----------------------------------------------------------------------------

# Keywords that only describe: accepted and ignored ("format" is an annotation in
# JSON Schema 2020-12; "propertyOrdering" is Gemini's; "discriminator" is OpenAPI's
# hint beside a oneOf, which pydantic writes: the oneOf alone decides).
_ANNOTATIONS: Final = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "$schema",
        "$id",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
        "format",
        "propertyOrdering",
        "discriminator",
        "strict",
    }
)
_KEYWORDS: Final = {
    "object": frozenset({"properties", "required", "additionalProperties"}),
    "array": frozenset({"items", "minItems", "maxItems"}),
    "string": frozenset({"minLength", "maxLength", "pattern"}),
    "number": frozenset(
        {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
    ),
    "integer": frozenset(
        {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
    ),
    "boolean": frozenset(),
    "null": frozenset(),
}
_GENERAL: Final = frozenset(
    {"type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "$defs", "definitions", "nullable"}
)


def _json_type(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return "string"
    if kind is bool:
        return "boolean"
    if kind is int:
        return "integer"
    if kind is float:
        return "integer" if value.is_integer() else "number"
    if value is None:
        return "null"
    if kind is list:
        return "array"
    return "object"


def _json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: ``true`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return (type(a) in (int, float) and type(b) in (int, float) and a == b) or (
        type(a) is type(b) and not isinstance(a, (int, float)) and a == b
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _SchemaCompiler:
    """Plans from a JSON Schema (the structured-output subset)."""

    def __init__(self, root: dict[str, Any] | bool) -> None:
        self.root = root
        self.refs: dict[str, _Plan] = {}

    def fail(self, where: str, message: str) -> UnsupportedSchemaError:
        return UnsupportedSchemaError(f"unsupported JSON Schema at {where or '#'}: {message}")

    def resolve(self, ref: str, where: str) -> Any:
        if not ref.startswith("#"):
            raise self.fail(where, f"only local $ref are supported, got {ref!r}")
        node: Any = self.root
        for part in ref[1:].split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise self.fail(where, f"$ref {ref!r} points nowhere")
            node = node[part]
        return node

    def plan(self, node: Any, where: str = "#", into: _ObjectPlan | None = None) -> _Plan:
        if node is True or node == {}:
            return _ANY
        if node is False:
            return _Leaf(_never)
        if not isinstance(node, dict):
            raise self.fail(where, f"a schema is an object or a boolean, got {_short(node)}")
        keys = set(node) - _ANNOTATIONS
        if "$ref" in node:
            if keys - {"$ref", "$defs", "definitions"}:
                raise self.fail(where, "$ref beside other constraints")
            ref = node["$ref"]
            if not isinstance(ref, str):
                raise self.fail(where, "$ref must be a string")
            found = self.refs.get(ref)
            if found is None:
                target = self.resolve(ref, where)
                if isinstance(target, dict) and str(target.get("type")).lower() == "object":
                    # An object plan exists before its properties: they may refer back to it.
                    shell = _ObjectPlan(_never)
                    self.refs[ref] = shell
                    found = self.plan(target, ref, into=shell)
                else:
                    deferred = _Deferred()
                    self.refs[ref] = deferred
                    found = deferred.target = self.plan(target, ref)
                self.refs[ref] = found
            return found
        for keyword in ("anyOf", "oneOf", "allOf"):
            if keyword in node:
                return self._combined(node, keyword, keys, where)
        types_ = node.get("type")
        if types_ is None:
            if keys & {"enum", "const"}:
                types_ = []
            elif keys - {"$defs", "definitions", "nullable"}:
                raise self.fail(where, f"keywords {sorted(keys)} without a type")
            else:
                return _ANY
        names = [types_] if isinstance(types_, str) else types_
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise self.fail(where, "type must be a string or a list of strings")
        names = [n.lower() for n in names]  # Gemini's OpenAPI-style "STRING", "OBJECT"
        if node.get("nullable") is True and names and "null" not in names:
            names.append("null")
        for name in names:
            if name not in _KEYWORDS:
                raise self.fail(where, f"unknown type {name!r}")
        allowed = set(_GENERAL).union(*(_KEYWORDS[n] for n in names))
        unknown = keys - allowed
        if unknown:
            raise self.fail(where, f"unsupported keywords {sorted(unknown)}")
        if "enum" in node or "const" in node:
            return self._enum(node, names, where)
        plans = [self._typed(node, name, where, into) for name in names]
        if len(plans) == 1:
            return plans[0]
        return _union(_alternatives(plans, exactly_one=False, where=names), plans)

    def _combined(self, node: Any, keyword: str, keys: set[str], where: str) -> _Plan:
        if keys - {keyword, "$defs", "definitions"}:
            raise self.fail(where, f"{keyword} beside other constraints")
        options = node[keyword]
        if not isinstance(options, list) or not options:
            raise self.fail(where, f"{keyword} must be a non-empty list")
        if keyword == "allOf":
            if len(options) != 1:
                raise self.fail(where, "allOf with more than one schema")
            return self.plan(options[0], f"{where}/allOf/0")
        plans = [self.plan(o, f"{where}/{keyword}/{i}") for i, o in enumerate(options)]
        validate = _alternatives(plans, exactly_one=keyword == "oneOf", where=None)
        if keyword == "oneOf" and not self._exclusive(options, plans):
            return _Leaf(validate, grows=any(p.grows for p in plans))
        return _union(validate, plans)

    def _exclusive(self, options: list[Any], plans: list[_Plan]) -> bool:
        """Whether no value can match two of the alternatives of a ``oneOf`` (then it is
        followed like an ``anyOf``): their JSON kinds are disjoint, except objects that a
        required property with a constant value tells apart."""
        seen: set[str] = set()
        objects: list[_ObjectPlan] = []
        for option, plan in zip(options, plans, strict=True):
            kinds = self.kinds(option, ())
            if kinds is None:
                return False
            if "object" in kinds:
                resolved = _resolved(plan)
                if not isinstance(resolved, _ObjectPlan):
                    return False
                objects.append(resolved)
                kinds = kinds - {"object"}
            if kinds & seen:
                return False
            seen |= kinds
        if len(objects) < 2:
            return True
        found = _discriminate(objects)
        return found is not None and all(found[0] in o.required for o in objects)

    def kinds(self, node: Any, seen: tuple[str, ...]) -> set[str] | None:
        """The JSON kinds a (checked) schema accepts, ``"integer"`` counted as
        ``"number"``; None when it may accept any."""
        if node is True or node == {}:
            return None
        if node is False:
            return set()
        if "$ref" in node:
            ref = node["$ref"]
            return None if ref in seen else self.kinds(self.resolve(ref, ""), (*seen, ref))
        for keyword in ("anyOf", "oneOf"):
            if keyword in node:
                found: set[str] = set()
                for option in node[keyword]:
                    kinds = self.kinds(option, seen)
                    if kinds is None:
                        return None
                    found |= kinds
                return found
        if "allOf" in node:
            return self.kinds(node["allOf"][0], seen)
        if "const" in node or "enum" in node:
            values = [node["const"]] if "const" in node else node["enum"]
            return {_json_type(v).replace("integer", "number") for v in values}
        names = node.get("type")
        if names is None:
            return None
        names = [names] if isinstance(names, str) else names
        found = {n.lower().replace("integer", "number") for n in names}
        if node.get("nullable") is True:
            found.add("null")
        return found

    def _enum(self, node: Any, names: list[str], where: str) -> _Plan:
        values = [node["const"]] if "const" in node else node["enum"]
        if not isinstance(values, list) or not values:
            raise self.fail(where, "enum must be a non-empty list")
        checks = [self._typed(node, name, where).validate for name in names] if names else []

        def validate(value: Any) -> Any:
            if checks:
                _first_valid(checks, value)
            if not any(_json_equal(value, v) for v in values):
                if len(values) == 1:
                    raise _Invalid(f"expected {_short(values[0])}, got {_short(value)}")
                raise _Invalid(f"{_short(value)} is not one of {_short(values)}")
            return value

        return _Leaf(validate, literals=_literals(values))

    def _typed(self, node: Any, name: str, where: str, into: _ObjectPlan | None = None) -> _Plan:
        if name == "object":
            return self._object(node, where, into)
        if name == "array":
            return self._array(node, where)
        if name == "string":
            return _Leaf(
                _string_check(node, where, self), grows=len(set(node) & _KEYWORDS["string"]) == 0
            )
        if name in ("number", "integer"):
            return _Leaf(_number_check(node, name, where, self))
        if name == "boolean":
            return _Leaf(_type_check("boolean"))
        return _Leaf(_type_check("null"), literals=frozenset([None]))

    def _object(self, node: Any, where: str, into: _ObjectPlan | None) -> _Plan:
        properties = node.get("properties", {})
        required = node.get("required", [])
        additional = node.get("additionalProperties", True)
        if not isinstance(properties, dict):
            raise self.fail(where, "properties must be an object")
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise self.fail(where, "required must be a list of strings")
        plan = into if into is not None else _ObjectPlan(_never)
        plan.required = frozenset(required)
        for key, sub in properties.items():
            plan.fields[key] = _Field(key, self.plan(sub, f"{where}/properties/{key}"))
        if additional is False:
            plan.extra = _Extra.FORBID
        else:
            plan.extra = _Extra.SHOW
            plan.extra_plan = self.plan(additional, f"{where}/additionalProperties")
        fields = plan.fields
        extra_plan = plan.extra_plan
        forbid = additional is False

        def build(children: dict[str, Any]) -> Any:
            for key in required:
                if key not in children:
                    raise _Invalid(f"missing required property {key!r}")
            return children

        def validate(value: Any) -> Any:
            if type(value) is not dict:
                raise _Invalid(f"expected object, got {_json_type(value)}")
            for key, item in value.items():
                field = fields.get(key)
                if field is None and forbid:
                    raise _Invalid(f"unexpected property {key!r}", (key,))
                try:
                    (field.plan if field is not None else extra_plan).validate(item)
                except _Invalid as exc:
                    raise _Invalid(exc.reason, (key, *exc.path)) from None
            return build(value)

        plan.validate = validate
        plan.build = build
        return plan

    def _array(self, node: Any, where: str) -> _Plan:
        item = self.plan(node.get("items", True), f"{where}/items")
        low, high = node.get("minItems"), node.get("maxItems")
        for bound in (low, high):
            if bound is not None and type(bound) is not int:
                raise self.fail(where, "minItems and maxItems must be integers")

        def finish(items: list[Any]) -> Any:
            if low is not None and len(items) < low:
                raise _Invalid(f"expected at least {low} items, got {len(items)}")
            if high is not None and len(items) > high:
                raise _Invalid(f"expected at most {high} items, got {len(items)}")
            return items

        def validate(value: Any) -> Any:
            if type(value) is not list:
                raise _Invalid(f"expected array, got {_json_type(value)}")
            check = item.validate
            for index, entry in enumerate(value):
                try:
                    check(entry)
                except _Invalid as exc:
                    raise _Invalid(exc.reason, (index, *exc.path)) from None
            return finish(value)

        return _ArrayPlan(validate, item, finish if low is not None or high is not None else None)


class _Deferred(_Plan):
    """A ``$ref`` being compiled (a recursive schema): forwards to the plan once known."""

    __slots__ = ("target",)

    def __init__(self) -> None:
        super().__init__(self._validate)
        self.target: _Plan | None = None

    def _validate(self, value: Any) -> Any:
        assert self.target is not None  # set before any value is seen
        return self.target.validate(value)


def _resolved(plan: _Plan) -> _Plan:
    while isinstance(plan, _Deferred) and plan.target is not None:
        plan = plan.target
    return plan


def _never(value: Any) -> Any:
    raise _Invalid("no value is allowed here")


def _type_check(name: str) -> Validate:
    def validate(value: Any) -> Any:
        if _json_type(value) != name:
            raise _Invalid(f"expected {name}, got {_json_type(value)}")
        return value

    return validate


def _string_check(node: Any, where: str, compiler: _SchemaCompiler) -> Validate:
    low, high, pattern = node.get("minLength"), node.get("maxLength"), node.get("pattern")
    regex = None
    if pattern is not None:
        try:
            regex = re.compile(pattern)
        except (re.error, TypeError) as exc:
            raise compiler.fail(where, f"pattern {pattern!r} does not compile: {exc}") from None

    def validate(value: Any) -> Any:
        if type(value) is not str:
            raise _Invalid(f"expected string, got {_json_type(value)}")
        if low is not None and len(value) < low:
            raise _Invalid(f"expected at least {low} characters, got {len(value)}")
        if high is not None and len(value) > high:
            raise _Invalid(f"expected at most {high} characters, got {len(value)}")
        if regex is not None and regex.search(value) is None:
            raise _Invalid(f"{_short(value)} does not match the pattern {pattern!r}")
        return value

    return validate


def _number_check(node: Any, name: str, where: str, compiler: _SchemaCompiler) -> Validate:
    bounds = {k: node[k] for k in _KEYWORDS["number"] if k in node}
    for key, bound in bounds.items():
        if type(bound) not in (int, float):
            raise compiler.fail(where, f"{key} must be a number")
    minimum, maximum = bounds.get("minimum"), bounds.get("maximum")
    above, below = bounds.get("exclusiveMinimum"), bounds.get("exclusiveMaximum")
    step = bounds.get("multipleOf")
    integer = name == "integer"

    def validate(value: Any) -> Any:
        kind = _json_type(value)
        if kind != "integer" and (integer or kind != "number"):
            raise _Invalid(f"expected {name}, got {kind}")
        if minimum is not None and value < minimum:
            raise _Invalid(f"{value!r} is less than the minimum {minimum!r}")
        if maximum is not None and value > maximum:
            raise _Invalid(f"{value!r} is more than the maximum {maximum!r}")
        if above is not None and value <= above:
            raise _Invalid(f"{value!r} is not more than {above!r}")
        if below is not None and value >= below:
            raise _Invalid(f"{value!r} is not less than {below!r}")
        if step is not None and step > 0:
            quotient = value / step
            if not (math.isfinite(quotient) and abs(quotient - round(quotient)) < 1e-9):
                raise _Invalid(f"{value!r} is not a multiple of {step!r}")
        return value

    return validate


def _first_valid(checks: list[Validate], value: Any) -> Any:
    """The first check ``value`` passes; else the error of the first check."""
    first: _Invalid | None = None
    for check in checks:
        try:
            return check(value)
        except _Invalid as exc:
            first = first or exc
    assert first is not None
    raise first


def _alternatives(plans: list[_Plan], *, exactly_one: bool, where: list[str] | None) -> Validate:
    """anyOf (the first alternative that validates) or oneOf (exactly one)."""
    checks = [p.validate for p in plans]

    def validate(value: Any) -> Any:
        if not exactly_one:
            try:
                return _first_valid(checks, value)
            except _Invalid as exc:
                if where is not None:  # a list of types: say which
                    raise _Invalid(
                        f"expected {' or '.join(where)}, got {_json_type(value)}"
                    ) from None
                raise _Invalid(
                    f"matches none of the alternatives ({exc.reason})", exc.path
                ) from None
        passed = 0
        first: _Invalid | None = None
        for check in checks:
            try:
                check(value)
                passed += 1
            except _Invalid as exc:
                first = first or exc
        if passed == 1:
            return value
        if passed == 0:
            assert first is not None
            raise _Invalid(f"matches none of the oneOf alternatives ({first.reason})", first.path)
        raise _Invalid("matches more than one of the oneOf alternatives")

    return validate


# -- the compiled type -----------------------------------------------------------------------


class OutputType:
    """An output type compiled once: pass it to as many :class:`StructuredParser` as needed.

    Args:
        output_type: A ``msgspec.Struct``, dataclass, ``TypedDict`` or any type
            msgspec validates; a pydantic model or a type containing one; or a
            JSON Schema (a ``dict``).

    Raises:
        UnsupportedSchemaError: msgspec or pydantic cannot validate the type, or
            the schema uses what this module does not support.
    """

    __slots__ = ("plan", "source")

    def __init__(self, output_type: Any) -> None:
        self.source = output_type
        self.plan = _compile(output_type)

    def __repr__(self) -> str:
        return f"OutputType({self.source!r})"


def _compile(output_type: Any) -> _Plan:
    if isinstance(output_type, OutputType):
        return output_type.plan
    if isinstance(output_type, (dict, bool)):
        return _SchemaCompiler(output_type).plan(output_type)
    try:
        hash(output_type)
    except TypeError:  # an unhashable annotation: compiled, not cached
        return _compile_type.__wrapped__(output_type)
    return _compile_type(output_type)


@functools.lru_cache(maxsize=256)
def _compile_type(output_type: Any) -> _Plan:
    if _is_pydantic(output_type):
        import pydantic

        try:
            if isinstance(output_type, type) and issubclass(output_type, pydantic.BaseModel):
                schema = output_type.__pydantic_core_schema__
            else:
                schema = pydantic.TypeAdapter(output_type).core_schema
        except pydantic.PydanticUserError as exc:
            raise UnsupportedSchemaError(
                f"pydantic cannot validate {output_type!r}: {exc}"
            ) from None
        compiler = _PydanticCompiler(schema)
        return compiler.plan(compiler.root_schema, None)
    import msgspec.inspect

    try:
        custom = _custom_types(msgspec.inspect.type_info(output_type))
        if custom:
            # Without a dec_hook msgspec cannot build these from JSON.
            raise TypeError(f"no JSON decoding for {', '.join(sorted(custom))}")
        return _PythonCompiler().plan(output_type)
    except (TypeError, ValueError, NameError) as exc:
        raise UnsupportedSchemaError(f"msgspec cannot validate {output_type!r}: {exc}") from None


def _custom_types(info: Any) -> set[str]:
    """The names of the custom classes in a ``msgspec.inspect`` type tree."""
    import msgspec.inspect

    found: set[str] = set()
    seen: set[int] = set()
    todo = [info]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, msgspec.inspect.CustomType):
            found.add(node.cls.__qualname__)
        elif isinstance(node, (msgspec.inspect.Type, msgspec.inspect.Field)):
            todo.extend(getattr(node, name) for name in node.__struct_fields__)
        elif isinstance(node, (tuple, list)):
            todo.extend(node)
    return found


# -- following the stream --------------------------------------------------------------------


class _ObjectFrame:
    """An open object of an object plan: its validated children and its partial view."""

    __slots__ = ("children", "depth", "fields", "path", "plan", "view")

    def __init__(self, plan: _ObjectPlan, path: Path) -> None:
        self.plan = plan
        self.path = path
        self.depth = len(path)
        self.fields = plan.fields
        self.children: dict[str, Any] = {}
        self.view = self.children if plan.new_view is None else plan.new_view()

    def child_plan(self, key: Any) -> _Plan:
        field = self.fields.get(key)
        return field.plan if field is not None else self.plan.extra_plan

    def show(self, key: Any, value: Any) -> None:
        """Put a value not yet complete (a container's view, a growing string) in the view."""
        field = self.fields.get(key)
        set_view = self.plan.set_view
        if set_view is None:
            if field is not None or self.plan.extra is _Extra.SHOW:
                self.children[key] = value
        elif field is not None and field.shown:
            set_view(self.view, field.attribute, value)

    def add(self, key: Any, value: Any) -> bool:
        """A validated child; returns whether it is a field the partial value shows."""
        field = self.fields.get(key)
        if field is None:
            extra = self.plan.extra
            if extra is _Extra.DROP:
                return False
            if extra is _Extra.FORBID:
                raise _Invalid(f"unexpected property {key!r}")
            self.children[key] = value
            return extra is _Extra.SHOW
        self.children[key] = value
        if not field.shown:
            return False
        set_view = self.plan.set_view
        if set_view is not None:
            set_view(self.view, field.attribute, value)
        return True

    def take(self, key: Any, value: Any) -> Any:
        """A scalar member completed: validate it as its field and add it; returns
        the validated value, or ``_HIDDEN`` when partial values do not show it
        (``child_plan``, ``validate`` and ``add`` in one look-up: once per value)."""
        field = self.fields.get(key)
        if field is None:
            value = _resolved(self.plan.extra_plan).validate(value)
            return value if self.add(key, value) else _HIDDEN
        plan = field.plan
        if type(plan) is _Deferred:
            plan = _resolved(plan)
        value = plan.validate(value)
        self.children[key] = value
        if not field.shown:
            return _HIDDEN
        set_view = self.plan.set_view
        if set_view is not None:
            set_view(self.view, field.attribute, value)
        return value

    def finish(self) -> Any:
        return self.plan.build(self.children)


class _ArrayFrame:
    __slots__ = ("depth", "item", "open", "path", "plan", "view")

    def __init__(self, plan: _ArrayPlan, path: Path) -> None:
        self.plan = plan
        self.path = path
        self.depth = len(path)
        self.item = plan.item
        self.view: list[Any] = []
        self.open = False  # the last item of the view is a value not yet complete

    def child_plan(self, key: Any) -> _Plan:
        return self.item

    def show(self, key: Any, value: Any) -> None:
        if self.open:
            self.view[-1] = value
        else:
            self.view.append(value)
            self.open = True

    def add(self, key: Any, value: Any) -> bool:
        if self.open:
            self.view[-1] = value
            self.open = False
        else:
            self.view.append(value)
        return True

    def take(self, key: Any, value: Any) -> Any:
        plan = self.item
        if type(plan) is _Deferred:
            plan = _resolved(plan)
        value = plan.validate(value)
        if self.open:
            self.view[-1] = value
            self.open = False
        else:
            self.view.append(value)
        return value

    def finish(self) -> Any:
        finish = self.plan.finish
        return self.view if finish is None else finish(self.view)


class _MapFrame:
    __slots__ = ("depth", "path", "plan", "value", "view")

    def __init__(self, plan: _MapPlan, path: Path) -> None:
        self.plan = plan
        self.path = path
        self.depth = len(path)
        self.value = plan.value
        self.view: dict[str, Any] = {}

    def child_plan(self, key: Any) -> _Plan:
        return self.value

    def show(self, key: Any, value: Any) -> None:
        self.view[key] = value

    def add(self, key: Any, value: Any) -> bool:
        self.view[key] = value
        return True

    def take(self, key: Any, value: Any) -> Any:
        plan = self.value
        if type(plan) is _Deferred:
            plan = _resolved(plan)
        self.view[key] = value = plan.validate(value)
        return value

    def finish(self) -> Any:
        finish = self.plan.finish
        return self.view if finish is None else finish(self.view)


class _PendingFrame:
    """An object of a tagged union whose tag has not arrived: children kept raw."""

    __slots__ = ("children", "depth", "path", "plan", "view")

    def __init__(self, plan: _TaggedPlan, path: Path) -> None:
        self.plan = plan
        self.path = path
        self.depth = len(path)
        self.children: dict[str, Any] = {}
        self.view: Any = UNSET

    def child_plan(self, key: Any) -> _Plan:
        return _SKIP

    def show(self, key: Any, value: Any) -> None:
        pass

    def add(self, key: Any, value: Any) -> bool:
        self.children[key] = value
        return False

    def take(self, key: Any, value: Any) -> Any:
        self.children[key] = value  # kept raw until the member is known
        return _HIDDEN

    def finish(self) -> Any:
        return self.plan.validate(self.children)


_Frame: TypeAlias = _ObjectFrame | _ArrayFrame | _MapFrame | _PendingFrame
_HIDDEN: Final = object()  # what take() returns for a value partial values do not show
_BLOCK: Final = 1024  # text pieces joined into one block (memory: many tiny strings cost much)


def _for_kind(plan: _Plan, kind: str) -> _Plan:
    """The plan for a value of JSON ``kind`` (``"object"``, ``"array"``, else a scalar)."""
    if type(plan) is _Deferred:
        plan = _resolved(plan)
    if type(plan) is _UnionPlan:
        chosen = plan.object if kind == "object" else plan.array if kind == "array" else None
        # No member of that kind: the union validates the value whole (and says why not).
        return chosen if chosen is not None else plan
    return plan


class StructuredParser:
    """Follow one streamed JSON document as a value of ``output_type``, in linear time.

    Sans-IO: it is fed ``str`` pieces (decoding bytes is the caller's business).
    See the module docstring for what the partial value holds, the updates and
    the errors.

    Args:
        output_type: An :class:`OutputType`, or anything it accepts (a type or
            a JSON Schema dict), compiled once per type and cached.
        max_depth: Most containers the JSON may open at once.
        max_size: Most characters that may be fed in total.
        text: Where the text fed is kept already (a function that returns it
            all, called only when an error is raised): the parser then keeps no
            copy of it. The accumulator passes its part's or call's text.

    Raises:
        UnsupportedSchemaError: The type or schema is not supported.
    """

    __slots__ = (
        "_closed",
        "_error",
        "_frames",
        "_growing",
        "_growing_frame",
        "_growing_key",
        "_json",
        "_json_updates",
        "_out",
        "_pieces",
        "_plan",
        "_result",
        "_root_view",
        "_skip",
        "_skip_plan",
        "_stale",
        "_text",
        "_text_blocks",
    )

    def __init__(
        self,
        output_type: Any,
        *,
        max_depth: int = 256,
        max_size: int = 64 * 1024 * 1024,
        text: Callable[[], str] | None = None,
    ) -> None:
        self._plan = _compile(output_type)
        self._json = PartialJSONParser(max_depth=max_depth, max_size=max_size)
        self._frames: list[_Frame] = []
        self._root_view: Any = UNSET
        self._result: Any = UNSET
        # Inside a subtree validated whole: len(path) + 1 of its root (0: not skipping).
        self._skip = 0
        self._skip_plan: _Plan = _SKIP
        # The string being received, shown growing: its fragments and where it goes.
        self._growing: list[str] | None = None
        self._growing_frame: _Frame | None = None
        self._growing_key: Any = None
        self._stale = False  # the growing string has fragments not shown yet
        self._out: list[OutputValueDone] = []
        self._json_updates: list[JSONUpdate] = []
        self._pieces: list[str] = []
        self._text_blocks = 0
        self._text = text
        self._error: OutputValidationError | None = None
        self._closed = False

    # -- the public surface ----------------------------------------------------------------

    @property
    def partial(self) -> Any:
        """The value so far, as the output type (see the module docstring), or
        :data:`UNSET` before any value has started. Costs the length of the
        string being received, if one is shown growing."""
        if self._result is not UNSET:
            return self._result
        growing = self._growing
        if growing is not None and self._stale:
            self._stale = False
            if len(growing) > 1:
                growing[:] = ["".join(growing)]
            text = growing[0] if growing else ""
            frame = self._growing_frame
            if frame is None:
                self._root_view = text
            else:
                frame.show(self._growing_key, text)
        return self._root_view

    @property
    def updates(self) -> list[OutputValueDone]:
        """What the last ``feed()`` (or ``close()``) completed, in document order."""
        return self._out

    @property
    def json_updates(self) -> list[JSONUpdate]:
        """The partial-JSON parser's updates for the last piece fed."""
        return self._json_updates

    @property
    def json(self) -> PartialJSONParser:
        """The partial-JSON parser it feeds (its ``snapshot()`` is the untyped value
        so far). After a ``"value"`` error it may go on being fed alone, to follow
        the JSON text without the type; never feed it while this parser is fed."""
        return self._json

    @property
    def complete(self) -> bool:
        """Whether the whole value has been received and validated (``close()`` still
        says whether the stream ended properly)."""
        return self._result is not UNSET

    def feed(self, text: str) -> list[OutputValueDone]:
        """Parse the next piece of the JSON text.

        Args:
            text: The characters that follow everything fed so far.

        Returns:
            One update per value the piece completed and validated (also kept
            in ``updates``).

        Raises:
            OutputValidationError: The text is not JSON, or a value completed
                by this piece does not validate; raised again by every later
                call.
            UsageError: ``close()`` was called already.
        """
        if self._error is not None:
            raise self._error
        if self._closed:
            raise UsageError("feed() after close()")
        if self._text is None:
            pieces = self._pieces
            pieces.append(text)
            if len(pieces) - self._text_blocks >= _BLOCK:
                self._join_text()
        out: list[OutputValueDone] = []
        self._out = out
        try:
            self._json_updates = updates = self._json.feed(text)
        except PartialJSONError as exc:
            self._json_updates = []
            raise self._fail("json", exc.reason, self._open_path(), exc.position) from exc
        if not updates:
            return out
        first = updates[0]
        if len(updates) == 1 and type(first) is JSONStringDelta:
            # The common piece: more of a string (the partial JSON parser's fast path too).
            growing = self._growing
            if growing is not None:
                growing.append(first.fragment)
                self._stale = True
            return out
        try:
            self._apply(updates)
        except _Invalid as exc:
            raise self._fail("value", exc.reason, exc.path, self._json.position) from None
        except RecursionError:  # validating a deep subtree whole (recursive JSON Schema)
            reason = "nested too deeply to validate"
            raise self._fail("value", reason, self._open_path(), self._json.position) from None
        return out

    def close(self, complete: bool) -> Any:
        """End the text and return the validated value.

        Args:
            complete: Whether the text ended properly (the stream finished
                normally). ``False`` (cut by a length limit or a broken
                stream) always raises.

        Returns:
            The value, of the output type.

        Raises:
            OutputValidationError: ``"incomplete"`` when ``complete`` is false
                or the JSON text stopped early; ``"json"`` or ``"value"`` when
                the text is invalid (the same error ``feed()`` raised, if it did).
        """
        if self._error is not None:
            raise self._error
        if self._closed:
            return self._result
        self._out = []
        self._json_updates = []
        if not complete:
            reason = "the answer was cut off before it ended"
            raise self._fail("incomplete", reason, self._open_path(), self._json.position)
        try:
            value = self._json.close()
        except PartialJSONError as exc:
            raise self._fail("incomplete", exc.reason, self._open_path(), exc.position) from exc
        if self._result is UNSET:  # a bare number completes only at the end
            try:
                _check_depth(value)
                self._result = self._root_view = _resolved(self._plan).validate(value)
            except _Invalid as exc:
                raise self._fail("value", exc.reason, exc.path, self._json.position) from None
            except RecursionError:
                reason = "nested too deeply to validate"
                raise self._fail("value", reason, (), self._json.position) from None
            self._out.append(OutputValueDone((), self._result))
        self._closed = True
        return self._result

    # -- internals ---------------------------------------------------------------------------

    def _join_text(self) -> None:
        """Join the last ``_BLOCK`` pieces of text into one block (a list of many tiny
        strings costs ~10x their text in memory)."""
        pieces = self._pieces
        tail = "".join(pieces[self._text_blocks :])
        del pieces[self._text_blocks :]
        pieces.append(tail)
        self._text_blocks += 1

    def _open_path(self) -> Path:
        frames = self._frames
        return frames[-1].path if frames else ()

    def _fail(
        self,
        kind: Literal["json", "value", "incomplete"],
        reason: str,
        path: Path,
        position: int | None,
    ) -> OutputValidationError:
        error = OutputValidationError(
            kind,
            reason,
            path=path,
            text="".join(self._pieces) if self._text is None else self._text(),
            partial_value=self.partial,
            position=position,
        )
        self._error = error
        return error

    def _apply(self, updates: Iterable[JSONUpdate]) -> None:
        frames = self._frames
        out = self._out
        path: Path = ()
        try:
            for update in updates:
                if type(update) is JSONStringDelta:
                    growing = self._growing
                    if growing is not None:
                        growing.append(update.fragment)
                        self._stale = True
                    continue
                path = update.path
                if type(update) is JSONValueStarted:
                    if not self._skip:
                        self._start(path, update.kind)
                    continue
                assert type(update) is JSONValueDone
                value = update.value
                if self._skip:
                    if len(path) != self._skip - 1:
                        continue
                    self._skip = 0  # the end of the subtree validated whole
                    _check_depth(value)
                    value = self._skip_plan.validate(value)
                elif frames and len(path) == frames[-1].depth:
                    value = frames.pop().finish()  # the open container closed
                elif frames:
                    # A scalar (a container that completes has a frame, or is
                    # skipped): validated and added by its parent in one call.
                    self._growing = None
                    frame = frames[-1]
                    key = path[-1]
                    value = frame.take(key, value)
                    if value is not _HIDDEN:
                        out.append(OutputValueDone(path, value))
                    if type(frame) is _PendingFrame and key == frame.plan.tag:
                        self._decide(frame)
                    continue
                else:
                    self._growing = None
                    value = _resolved(self._plan).validate(value)
                # Complete and validated: into its parent, or the result.
                if not frames:
                    self._result = self._root_view = value
                    out.append(OutputValueDone(path, value))
                    continue
                frame = frames[-1]
                key = path[-1]
                if frame.add(key, value):
                    out.append(OutputValueDone(path, value))
                if type(frame) is _PendingFrame and key == frame.plan.tag:
                    self._decide(frame)
        except _Invalid as exc:
            if exc.absolute:
                raise
            raise _Invalid(exc.reason, (*path, *exc.path)) from None

    def _start(self, path: Path, kind: str) -> None:
        frames = self._frames
        parent = frames[-1] if frames else None
        plan = self._plan if parent is None else parent.child_plan(path[-1])
        if kind == "string":
            # _for_kind() for a string: a union is its own plan, so only resolve.
            if type(plan) is _Deferred:
                plan = _resolved(plan)
            if plan.grows:
                self._growing = []
                self._stale = True  # shown as "" until its first fragment
                self._growing_frame = parent
                self._growing_key = path[-1] if path else None
            return
        plan = _for_kind(plan, kind)
        frame: _Frame
        plan_type = type(plan)
        if kind == "object" and plan_type is _ObjectPlan:
            frame = _ObjectFrame(typing.cast("_ObjectPlan", plan), path)
        elif kind == "array" and plan_type is _ArrayPlan:
            frame = _ArrayFrame(typing.cast("_ArrayPlan", plan), path)
        elif kind == "object" and plan_type is _MapPlan:
            frame = _MapFrame(typing.cast("_MapPlan", plan), path)
        elif kind == "object" and plan_type is _TaggedPlan:
            frame = _PendingFrame(typing.cast("_TaggedPlan", plan), path)
        else:  # validated whole when it completes (which also reports a wrong kind)
            self._skip = len(path) + 1
            self._skip_plan = plan
            return
        frames.append(frame)
        view = frame.view
        if view is not UNSET:
            if parent is None:
                self._root_view = view
            else:
                parent.show(path[-1], view)

    def _decide(self, pending: _PendingFrame) -> None:
        """The tag of a union's object arrived: follow it as its member from here on."""
        tag = pending.children[pending.plan.tag]
        if not isinstance(tag, _HASHABLE_SCALARS) or type(tag) is bool:  # True would be 1
            return
        member = pending.plan.choices.get(tag)
        if member is None:  # validated whole at its end, with the library's own error
            return
        frame = _ObjectFrame(member, pending.path)
        frames = self._frames
        frames[-1] = frame
        parent = frames[-2] if len(frames) > 1 else None
        if parent is None:
            self._root_view = frame.view
        else:
            parent.show(frame.path[-1], frame.view)
        for key, raw in pending.children.items():
            path = (*frame.path, key)
            try:
                value = _resolved(frame.child_plan(key)).validate(raw)
                shown = frame.add(key, value)
            except _Invalid as exc:
                raise _Invalid(exc.reason, (*path, *exc.path), absolute=True) from None
            if shown:
                self._out.append(OutputValueDone(path, value))
