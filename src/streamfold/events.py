"""The typed, ordered events every dialect is folded into.

One union, ``Event``, of frozen msgspec Structs tagged by a ``type`` string, the
same for every dialect. Events that belong to a choice carry its ``choice``
index. Use them with ``match``::

    for event in streamfold.iter_events(source):
        match event:
            case TextDelta(delta=delta):
                print(delta, end="")
            case ToolCallDone(name=name, value=value, parse_error=None):
                run_tool(name, value)

and serialise any of them with ``streamfold.events.to_json``. The order
contract is in ``docs/semantics.md``.

Typed output (``output_type=`` / ``tool_types=``, see ``docs/structured.md``):
the caller's own objects ride on events as attributes outside the event's
fields (``TextDone.output``, ``ToolCallDone.output``, ``OutputUpdated.value``,
and the ``output_error`` exceptions): an event still encodes to JSON whatever
the type (a pydantic model, an exception), and the JSON leaves them out; the
raw text it carries is what they were validated from.

The delta events (``TextDelta``, ``ReasoningDelta``, ``RefusalDelta``,
``ToolCallArgumentsDelta``: one per piece, the bulk of any stream) are not
tracked by the garbage collector (msgspec's ``gc=False``: ~30 ns less per
event to make and free, a tenth of what events add to a fold). What they
hold never refers back to them; an event put inside a value it carries (its
``updates``) would make a cycle that is never collected.
"""

from __future__ import annotations

from typing import Any, TypeVar, Union

import msgspec

from .errors import ErrorInfo, OutputValidationError
from .partial_json import JSONUpdate, Path

__all__ = [
    "JSONError",
    "ErrorInfo",
    "ErrorOccurred",
    "Event",
    "LogprobsDelta",
    "LogprobsDone",
    "OutputUpdated",
    "ReasoningDelta",
    "ReasoningDone",
    "RefusalDelta",
    "RefusalDone",
    "ResponseFinished",
    "ResponseStarted",
    "TextDelta",
    "TextDone",
    "ToolCallArgumentsDelta",
    "ToolCallDone",
    "ToolCallStarted",
    "Unknown",
    "Usage",
    "UsageUpdated",
    "to_json",
]


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    """Token usage, normalised across dialects.

    A count is ``None`` where the provider did not report it, never a fake 0.
    ``raw`` keeps the provider's own usage object.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    raw: Any = None


class JSONError(msgspec.Struct, frozen=True, kw_only=True):
    """Why complete JSON text (tool-call arguments, JSON-mode content) is not valid."""

    message: str
    position: int | None = None


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    @property
    def type(self) -> str:
        """The event's tag, e.g. ``"text.delta"`` (also its ``type`` key in JSON)."""
        return str(self.__struct_config__.tag)


_Attached = TypeVar("_Attached", bound=msgspec.Struct)


def attach(target: _Attached, **values: Any) -> _Attached:
    """Give a Struct declared with ``dict=True`` attributes outside its fields
    (typed output: never encoded, never compared).

    Returns:
        ``target`` itself.
    """
    target.__dict__.update(values)
    return target


class _TypedOutput(msgspec.Struct, frozen=True, kw_only=True, dict=True):
    # The typed output of a part or call, attached by the accumulator (``attach``).

    @property
    def output(self) -> Any:
        """The validated value of the output type (``output_type=`` for answer
        text, ``tool_types=`` for a tool's arguments); ``UNSET`` when there is no
        type for it, or it did not validate (then see ``output_error``)."""
        return self.__dict__.get("output", msgspec.UNSET)

    @property
    def output_error(self) -> OutputValidationError | None:
        """Why the text is not a valid value of its output type (the path, the
        reason, the raw text and the partial value), or ``None``."""
        return self.__dict__.get("output_error")


class ResponseStarted(_Event, frozen=True, kw_only=True, tag="response.started"):
    """The first chunk that names the response arrived."""

    id: str | None = None
    model: str | None = None
    created: int | None = None


class TextDelta(_Event, frozen=True, kw_only=True, tag="text.delta", gc=False):
    """A piece of answer text; ``updates`` holds the incremental JSON updates it
    caused when the parser was asked to parse JSON-mode content."""

    choice: int = 0
    delta: str
    updates: tuple[JSONUpdate, ...] = ()


class TextDone(_Event, _TypedOutput, frozen=True, kw_only=True, tag="text.done", dict=True):
    """A text part is over; ``text`` is the whole part. With JSON-mode content
    parsing on, ``value`` is the parsed text when ``parse_error`` is ``None``.
    With an ``output_type``, ``output`` is the part validated as that type (or
    ``output_error`` says why not); neither is in the JSON."""

    choice: int = 0
    text: str
    complete: bool = True
    value: Any = None
    parse_error: JSONError | None = None


class ReasoningDelta(_Event, frozen=True, kw_only=True, tag="reasoning.delta", gc=False):
    choice: int = 0
    delta: str


class ReasoningDone(_Event, frozen=True, kw_only=True, tag="reasoning.done"):
    """A reasoning part is over, with its signature or encrypted content where the
    dialect has them."""

    choice: int = 0
    text: str
    signature: str | None = None
    encrypted_content: str | None = None
    complete: bool = True


class RefusalDelta(_Event, frozen=True, kw_only=True, tag="refusal.delta", gc=False):
    choice: int = 0
    delta: str


class RefusalDone(_Event, frozen=True, kw_only=True, tag="refusal.done"):
    choice: int = 0
    text: str
    complete: bool = True


class ToolCallStarted(_Event, frozen=True, kw_only=True, tag="tool_call.started"):
    """A tool call began. ``index`` is its position among the choice's tool calls
    (0, 1, ...), whatever numbering the provider used."""

    choice: int = 0
    index: int
    id: str | None = None
    name: str | None = None
    kind: str = "function"


class ToolCallArgumentsDelta(
    _Event, frozen=True, kw_only=True, tag="tool_call.arguments.delta", gc=False
):
    """A piece of a tool call's arguments, raw; ``updates`` holds the incremental
    JSON updates it caused when the parser was asked to parse arguments."""

    choice: int = 0
    index: int
    id: str | None = None
    delta: str
    updates: tuple[JSONUpdate, ...] = ()


class ToolCallDone(
    _Event, _TypedOutput, frozen=True, kw_only=True, tag="tool_call.done", dict=True
):
    """A tool call is over. ``value`` is the parsed arguments when
    ``parse_error`` is ``None``. ``complete`` is ``False`` when the stream was cut
    before the call ended: never execute such a call. With a type for the tool
    (``tool_types=``), ``output`` is the arguments validated as that type (or
    ``output_error`` says why not); neither is in the JSON."""

    choice: int = 0
    index: int
    id: str | None = None
    name: str | None = None
    kind: str = "function"
    arguments: str
    value: Any = None
    parse_error: JSONError | None = None
    complete: bool = True


class OutputUpdated(_Event, frozen=True, kw_only=True, tag="output.updated", dict=True):
    """A value of the typed output completed and was validated: a field, an
    array item, or the whole value (``path`` ``()``); it follows the delta
    that completed it. ``index`` is the tool call's (``tool_types=``), or
    ``None`` for the answer text (``output_type=``). ``value`` (not in the
    JSON) is the validated value, as it is in the partial and final output."""

    choice: int = 0
    index: int | None = None
    path: Path = ()

    @property
    def value(self) -> Any:
        """The validated value at ``path``, of the output type's field or item type."""
        return self.__dict__.get("value", msgspec.UNSET)


class LogprobsDelta(_Event, frozen=True, kw_only=True, tag="logprobs.delta"):
    choice: int = 0
    content: list[Any] | None = None
    refusal: list[Any] | None = None


class LogprobsDone(_Event, frozen=True, kw_only=True, tag="logprobs.done"):
    choice: int = 0
    content: list[Any] | None = None
    refusal: list[Any] | None = None


class UsageUpdated(_Event, frozen=True, kw_only=True, tag="usage"):
    """The stream reported usage (again); the latest report wins."""

    usage: Usage


class ResponseFinished(_Event, frozen=True, kw_only=True, tag="response.finished"):
    choice: int = 0
    finish_reason: str | None = None
    raw_finish_reason: str | None = None


class ErrorOccurred(_Event, frozen=True, kw_only=True, tag="error"):
    """The stream failed; the iterators raise the matching exception right after
    yielding this event."""

    error: ErrorInfo
    raw: Any = None


class Unknown(_Event, frozen=True, kw_only=True, tag="unknown"):
    """Something the dialect does not model, kept raw."""

    event: str | None = None
    raw: Any = None


Event = Union[  # noqa: UP007 - a runtime alias, usable on Python 3.10 with msgspec
    ResponseStarted,
    TextDelta,
    TextDone,
    ReasoningDelta,
    ReasoningDone,
    RefusalDelta,
    RefusalDone,
    ToolCallStarted,
    ToolCallArgumentsDelta,
    ToolCallDone,
    OutputUpdated,
    LogprobsDelta,
    LogprobsDone,
    UsageUpdated,
    ResponseFinished,
    ErrorOccurred,
    Unknown,
]

_encoder = msgspec.json.Encoder()


def to_json(event: Event) -> bytes:
    """Serialise one event to compact JSON (its ``type`` tag included)."""
    return _encoder.encode(event)
