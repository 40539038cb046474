"""What every dialect shares: the interface the parser drives, JSON decoding with
precise errors, the typed accessors every wire value goes through, and the
mapping of provider error payloads.

Untrusted JSON is read through the accessors below, never used raw: a value is
type-checked before it is hashed (a dict key, a set member), indexed, compared
with a table, extended or recursed into. The ``*_or_none`` accessors are for
optional fields, where the wire models are tolerant (a value of the wrong type
counts as absent); ``required_index`` is for a field the dialect cannot do
without, where a wrong type is a ``ProtocolError`` naming the event and the
field.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import datetime
from operator import attrgetter
from typing import Any, ClassVar, Final

import msgspec

from ..errors import ProtocolError, ProviderError, shorten
from ..fold import Accumulator, PartView, ToolCallView
from ..partial_json import MISSING, PartialJSONError
from ..sse import ServerSentEvent

__all__ = [
    "TYPED_REJECTED",
    "UNKEPT",
    "Dialect",
    "KeptTop",
    "NativePart",
    "arguments_text",
    "call_value",
    "decode_json",
    "index_or_none",
    "int_or_none",
    "json_text",
    "object_or_none",
    "objects",
    "protocol_error",
    "provider_error",
    "required_index",
    "rfc3339_seconds",
    "str_or_none",
    "tag_or_none",
    "typed_decoder",
    "unset_getter",
]

_decode = msgspec.json.Decoder().decode

#: What a typed fast path's decoder raises when a payload is not of its shape:
#: the payload then takes the dialect's dict path, which folds it the same (or
#: raises the precise error).
TYPED_REJECTED: Final = (
    msgspec.ValidationError,
    msgspec.DecodeError,
    UnicodeDecodeError,
    RecursionError,
)

# Error codes and types that providers document as transient.
_RETRYABLE = frozenset(
    {
        "server_error",
        "api_error",
        "overloaded_error",
        "rate_limit_error",
        "rate_limit_exceeded",
        "insufficient_system_resource",
        "service_unavailable",
        "timeout",
        "internal_error",
        "unavailable",
        "resource_exhausted",
        "overloaded",
        "500",
        "502",
        "503",
        "504",
        "529",
        "429",
    }
)


#: A typed path's kept epoch before it keeps anything (the accumulator's
#: epoch is never negative): no sink is valid.
UNKEPT: Final = -1


def unset_getter(names: tuple[str, ...]) -> tuple[Callable[[Any], Any] | None, Any]:
    """The fields ``names`` of a typed Struct read in one call (a typed path's
    test that fields not seen yet are still absent), and what the call returns
    when every one is ``UNSET``: ``(None, UNSET)`` for no names."""
    if not names:
        return None, msgspec.UNSET
    return attrgetter(*names), msgspec.UNSET if len(names) == 1 else (msgspec.UNSET,) * len(names)


def call_value(call: ToolCallView | None) -> Any:
    """A streaming call's arguments parsed so far (a snapshot's tool input), without
    joining them first; ``MISSING`` when there is no call, no value yet, or the
    arguments are invalid (the dialect's own fallback then decides)."""
    if call is None:
        return MISSING
    try:
        return call.partial_arguments()
    except PartialJSONError:
        return MISSING


@functools.cache
def typed_decoder(kind: Any) -> Callable[[bytes], Any]:
    """The decode method of the one msgspec decoder of ``kind`` (a dialect's
    typed fast path), built when the first dialect that needs it is: building
    it resolves the Structs' annotations, which ``import streamfold`` then
    does not pay for."""
    return msgspec.json.Decoder(kind).decode


def decode_json(event: ServerSentEvent) -> Any:
    """Decode the JSON payload of ``event``.

    Raises:
        ProtocolError: the data is not JSON; the message names the event number
            and shows the bytes, shortened.
    """
    try:
        return _decode(event.raw)
    except msgspec.DecodeError as exc:
        reason = str(exc)
    except RecursionError:
        reason = _TOO_DEEP
    except UnicodeDecodeError:
        # Invalid UTF-8 becomes U+FFFD, as the SSE spec decodes it.
        try:
            return _decode(event.data)
        except msgspec.DecodeError as exc:
            reason = str(exc)
        except RecursionError:
            reason = _TOO_DEEP
    if reason != _TOO_DEEP and nested_too_deeply(event.raw):
        reason = _TOO_DEEP
    raise ProtocolError(
        f"server-sent event #{event.index} is not valid JSON ({reason}): {shorten(event.raw)!r}",
        excerpt=shorten(event.raw),
        position=event.index,
    )


#: How deep JSON may nest and still be told malformed by what msgspec finds
#: first. msgspec stops at the interpreter's recursion limit less the frames
#: already on the stack, which differ with the caller: past this depth a
#: document that fails to decode fails as "nested too deeply" whatever the
#: stack, so the error is the same however the stream was read.
MAX_ERROR_DEPTH: Final = 256
_TOO_DEEP: Final = "nested too deeply"
_JSON_NESTING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"?|[\[{]|[\]}]')


def nested_too_deeply(raw: bytes) -> bool:
    """Whether the JSON text ``raw`` opens more than ``MAX_ERROR_DEPTH``
    arrays or objects at once (strings skipped). Read on the error path only:
    one pass over the bytes."""
    depth = 0
    for match in _JSON_NESTING.finditer(raw):
        token = match.group()
        first = token[0]
        if first == 34:  # a string
            continue
        if first in (91, 123):
            depth += 1
            if depth > MAX_ERROR_DEPTH:
                return True
        else:
            depth -= 1
    return False


def json_text(value: Any) -> str:
    """The one JSON writer for tool-call arguments built from values:
    ``json.dumps`` with its default separators, non-ASCII kept as is."""
    import json  # here, not at import: the core imports fast

    return json.dumps(value, ensure_ascii=False)


def arguments_text(value: Any, event: ServerSentEvent, field: str) -> str:
    """Tool-call arguments that the provider sent as a JSON value (Gemini's
    ``args``; some chat servers), as the JSON text the events carry.

    Raises:
        ProtocolError: the value is nested too deeply to be written (it was
            decoded with less of the stack in use); the message names the
            event and the field.
    """
    try:
        return json_text(value)
    except RecursionError:
        raise protocol_error(event, f"{field} is nested too deeply") from None


def str_or_none(value: Any) -> str | None:
    """An id or name as a string: numbers are accepted (Zhipu sends numeric ids),
    empty strings and non-scalars become ``None``."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def int_or_none(value: Any) -> int | None:
    """A token count or timestamp: an int, or ``None`` for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


_RFC3339: Final = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|z|[+-]\d{2}:\d{2})$"
)


def rfc3339_seconds(value: Any) -> int | None:
    """An RFC 3339 time (Google's ``createTime``, the Interactions API's
    ``created``) as Unix seconds, or ``None`` for anything else. Vertex sends up
    to nanoseconds, which ``datetime.fromisoformat`` on Python 3.10 does not
    read: the fraction is dropped."""
    if not isinstance(value, str):
        return None
    match = _RFC3339.match(value)
    if match is None:
        return None
    zone = match.group(2)
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        return int(datetime.fromisoformat(match.group(1) + zone).timestamp())
    except ValueError:
        return None


def index_or_none(value: Any) -> int | None:
    """A position (a block, choice, item, part or array index): an int, never a bool."""
    return value if type(value) is int else None


def tag_or_none(value: Any) -> str | None:
    """A type tag (an event, item, part or block ``type``): a non-empty string, else ``None``."""
    return value if type(value) is str and value else None


def object_or_none(value: Any) -> dict[str, Any] | None:
    """A JSON object, or ``None`` for anything else."""
    return value if type(value) is dict else None


def objects(value: Any) -> list[dict[str, Any]]:
    """The object items of a JSON array, in order (other items skipped); ``[]``
    when ``value`` is not an array."""
    if type(value) is not list:
        return []
    return [item for item in value if type(item) is dict]


def required_index(payload: dict[str, Any], key: str, event: ServerSentEvent) -> int:
    """The index ``payload[key]`` that the dialect cannot do without.

    Raises:
        ProtocolError: it is absent or not an integer; the message names the
            event number and the field.
    """
    value = payload.get(key)
    if type(value) is int:
        return value
    if key not in payload:
        raise protocol_error(event, f"{key!r} is missing")
    raise protocol_error(event, f"{key!r} is {_json_kind(value)}, not an index")


def protocol_error(event: ServerSentEvent, what: str) -> ProtocolError:
    """A ``ProtocolError`` for ``event``: its number, what is wrong, its bytes shortened."""
    excerpt = shorten(event.raw)
    return ProtocolError(
        f"server-sent event #{event.index}: {what}: {excerpt!r}",
        excerpt=excerpt,
        position=event.index,
    )


def _json_kind(value: Any) -> str:
    # What a decoded JSON value is, named without printing it (a value may be
    # huge, or nested too deeply for repr()).
    if value is None:
        return "null"
    return _JSON_KINDS.get(type(value), "a value")


_JSON_KINDS: dict[type, str] = {
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "an object",
}


def provider_error(payload: Any, position: int | None = None) -> ProviderError:
    """Build a ``ProviderError`` from a provider's error object.

    Accepts the common envelopes: ``{"error": {...}}``, the error object itself
    (``message``, ``code``, ``type``, ``status``), or a bare string.
    """
    error = payload.get("error", payload) if isinstance(payload, dict) else payload
    if isinstance(error, dict):
        message = error.get("message")
        code = str_or_none(error.get("code"))
        kind = str_or_none(error.get("type")) or str_or_none(error.get("status"))
    else:
        message, code, kind = error, None, None
    text = message if isinstance(message, str) and message else "the provider reported an error"
    keys = {k.lower() for k in (code, kind) if k}
    return ProviderError(
        text,
        code=code or kind,
        error_type=kind,
        raw=payload,
        retryable=bool(keys & _RETRYABLE),
        position=position,
    )


class KeptTop:
    """A native response's top level kept between snapshots: every key but ``key``
    (the parts, built on each call) is copied from the last build until ``stale``
    is set again. A dialect whose typed path reaches its parts alone sets it on
    every event its dict path folds, the one path that changes the top level;
    the kept copy never holds the parts, whose texts may then grow in place."""

    __slots__ = ("_kept", "_key", "stale")

    def __init__(self, key: str) -> None:
        self._key = key
        self._kept: dict[str, Any] = {}
        self.stale = True

    def response(self, parts: Any, build: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        """The response with ``parts`` under the key: the kept top level copied
        (its key order included), or ``build(parts)`` when stale."""
        if not self.stale:
            out = self._kept.copy()
            out[self._key] = parts
            return out
        out = build(parts)
        kept = out.copy()
        kept[self._key] = None
        self._kept, self.stale = kept, False
        return out


class NativePart:
    """A part of a dialect's native response (a content block, a content part)
    over the accumulator's parts that hold its streamed text: one, unless
    another part interrupted it. Its text is joined from them, and its native
    dict (``_native``, the subclass's) is built again only when an event
    reached it since the last build: the event bumps ``revision``, or (a
    typed path's cheaper equivalent) lets go of ``built``.
    """

    __slots__ = ("built", "built_at", "done", "parts", "revision")

    def __init__(self) -> None:
        self.parts: list[PartView] = []
        self.done = False
        self.revision = 0
        self.built: dict[str, Any] | None = None
        self.built_at = -1

    def add(self, part: PartView) -> None:
        """The accumulator's part a piece of this part went to."""
        if not self.parts or self.parts[-1] is not part:
            self.parts.append(part)

    def text(self) -> str:
        """The text (or reasoning) so far."""
        parts = self.parts
        if len(parts) == 1:
            return parts[0].text
        return "".join([part.text for part in parts])

    def native(self) -> dict[str, Any]:
        """The part as the non-streaming response holds it: built again only
        when it changed."""
        if self.built is not None and self.built_at == self.revision:
            return self.built
        self.built = None  # let go of the old text first: it may then grow in place
        built = self.built = self._native()
        self.built_at = self.revision
        return built

    def _native(self) -> dict[str, Any]:  # pragma: no cover - every subclass has one
        raise NotImplementedError


class Dialect:
    """One wire format. The parser drives it:

    - ``handle(event)`` for every server-sent event; it calls the accumulator's
      methods, returns ``True`` when the event is the stream's terminal point
      (its terminal marker: nothing after it belongs to the response), and
      raises ``ProviderError`` for an in-band error or ``ProtocolError`` for
      malformed input;
    - ``close()`` when the input ended before any terminal point: it ends what
      is still open and says whether the stream is complete all the same;
    - ``response()`` builds the native non-streaming response at any moment.

    The parser owns the stream's phase (``parser.Phase``): a dialect says
    where the stream ends, and is not called after that.
    """

    name: ClassVar[str] = ""

    def __init__(self, acc: Accumulator) -> None:
        self.acc = acc

    @classmethod
    def detect(cls, event: ServerSentEvent, payload: Any) -> bool:
        """Whether the first event with data (decoded as ``payload``) is of this dialect."""
        raise NotImplementedError

    def handle(self, event: ServerSentEvent) -> bool:
        """Fold one server-sent event.

        Returns:
            ``True`` when it is the stream's terminal point.

        Raises:
            ProviderError: the event carries a provider error.
            ProtocolError: the event is malformed.
        """
        raise NotImplementedError

    def fast(self, event: ServerSentEvent) -> bool:
        """Fold ``event`` when it is of the hot kind the dialect folds without
        building a dict (its typed path): ``True`` when folded. ``False``, with
        no side effect, leaves it to ``handle``. The parser calls it (through
        ``fast_run``) on the events after each one ``handle`` took, with no
        phase checks of its own: so it never folds the terminal point, and never
        raises (an event it cannot fold is ``handle``'s, which raises the
        precise error). ``handle`` folds every event, trying this first.
        ``True`` only after a typed msgspec decode of the whole ``event.raw``:
        NDJSON lines reach it unchecked, and the parser verifies only the ones
        it turns down (``JSONSequenceDecoder.verify``). None by default."""
        return False

    def fast_run(self, events: list[ServerSentEvent], i: int) -> int:
        """``fast`` on ``events[i]``, ``events[i + 1]``... while it folds them.

        The parser calls this, one call per run of hot events. A dialect may
        fold the common event in line here, its state in locals (a call and
        the attribute loads per event saved), as long as it folds exactly as
        ``fast`` does. Chat, Responses, Anthropic, Gemini and the AI SDK UI
        stream do, their ``fast`` being this on one event (one typed path,
        not two to keep in agreement).

        Returns:
            The index of the first event not folded (``len(events)`` if none).
        """
        fast = self.fast
        count = len(events)
        while i < count and fast(events[i]):
            i += 1
        return i

    def close(self) -> bool:
        """End of input before any terminal point: ``True`` when the stream is
        complete without one (every choice has its finish reason). A dialect
        whose streams always end with a terminal marker is never complete here.

        Raises:
            ProviderError: the stream's end itself means a provider failure.
        """
        return False

    def response(self) -> dict[str, Any]:
        """The response so far, in the dialect's own non-streaming shape."""
        raise NotImplementedError

    def resumed(self) -> None:
        """The events that follow come from a new connection that continues the
        stream (``StreamParser.reconnect``): a dialect whose events carry their
        position skips those it has folded already. Nothing to do by default."""
