"""Events that arrive decoded: plain dicts and SDK model objects, folded as the
JSON text of one event each, through the same dialects as bytes.

A decoded event becomes a ``ServerSentEvent`` whose data is the event's wire
JSON, numbered in order, without a name: the type of an Anthropic or Responses
event is in its JSON (``type``), which the dialects read before the ``event:``
line. One path for every input: a dict is encoded once with msgspec and decoded
by the dialect as bytes are, so every quirk, typed fast path and error of the
dialects holds for dicts unchanged (``bench/bench_sdk.py``: msgspec writes a
dict in a fraction of the time it takes to decode it, its ``encode`` and
``decode`` columns).

What the wire JSON of an object is (``wire_json``):

- a ``Mapping`` (``dict``): itself; ``bytes`` in it (botocore decodes a
  Bedrock member's blobs, ``chunk.bytes``, to bytes) in standard base64, as
  the wire sent them;
- a pydantic v2 model (the openai and anthropic SDKs' events and chunks, and
  any other): its fields as the server named them (``by_alias``), only those
  the server sent (``exclude_unset``: no default is invented), extra fields
  kept (the SDKs keep what they do not model). The SDKs build their models
  without validation, so a value of the wrong type is passed on as it came;
  one exception: where a model types a number as float, the SDK stored ``1``
  as ``1.0``;
- a google-genai model: the same, without the fields the SDK adds
  (``sdk_http_response``, ``automatic_function_calling_history``, ``parsed``),
  bytes in standard base64 as the API sends them (pydantic's JSON writes
  URL-safe base64). google-genai keeps only the fields it models and renames a
  few (Vertex's ``citations``): what it dropped cannot be folded;
- an event of an SDK helper (``anthropic.lib.streaming``'s ``MessageStream``,
  ``openai.lib.streaming``): the raw event it extends, without the snapshots
  the helper added (``message`` on ``message_stop``, ``content_block`` on
  ``content_block_stop``, ``snapshot``); openai's ``ChunkEvent`` is its
  ``chunk``; the helpers' own events (``text``, ``input_json``,
  ``content.delta``...) have no wire counterpart and are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol, TypeAlias

import msgspec

from .errors import ProtocolError, UsageError
from .sse import ServerSentEvent

__all__ = ["DecodedEvent", "DecodedEvents", "WireModel", "wire_json"]

_encode = msgspec.json.Encoder().encode


class WireModel(Protocol):
    """A pydantic v2 model: what the openai, anthropic and google-genai SDKs
    yield (``ChatCompletionChunk``, ``RawMessageStreamEvent``,
    ``GenerateContentResponse``...)."""

    def model_dump(self) -> dict[str, Any]: ...


#: One event that arrived decoded.
DecodedEvent: TypeAlias = Mapping[str, Any] | WireModel

_Writer = Callable[[Any], "bytes | None"]

#: The fields google-genai sets on a response that the server did not send.
_GENAI_SDK_FIELDS: Final = frozenset(
    {"sdk_http_response", "automatic_function_calling_history", "parsed"}
)
#: The packages whose helper streams wrap raw events: a raw event's class lives
#: in ``<package>.types``, a helper's in ``<package>.lib``.
_HELPER_PACKAGES: Final = ("anthropic", "openai")


def wire_json(item: object) -> bytes | None:
    """The JSON text of one decoded event (what is kept of the server's
    bytes is in the module docstring).

    Returns:
        The JSON text, or ``None`` for an SDK helper's own event (no wire
        counterpart: skipped).

    Raises:
        UsageError: ``item`` is no decoded event (a ``str``, an object of no
            known kind), or holds a value JSON has no form for.
        RecursionError, UnicodeEncodeError: the event is nested too deeply,
            or holds a lone surrogate (``DecodedEvents`` makes these a
            ``ProtocolError``, as for bytes).
    """
    cls = type(item)
    writer = _WRITERS.get(cls)
    if writer is None:
        writer = _WRITERS[cls] = _writer_for(cls)
    return writer(item)


def _mapping(item: Mapping[str, Any]) -> bytes:
    try:
        return _encode(item if type(item) is dict else dict(item))
    except (TypeError, msgspec.EncodeError) as exc:
        raise UsageError(f"a decoded event must hold JSON values only: {exc}") from None


_WRITERS: dict[type, _Writer] = {dict: _mapping}


def _writer_for(cls: type) -> _Writer:
    if issubclass(cls, Mapping):
        return _mapping
    if not callable(getattr(cls, "model_dump", None)):
        raise UsageError(
            "a stream takes bytes, bytearray or memoryview, or decoded events (dicts, "
            f"SDK model objects), not {cls.__name__}"
        )
    package, _, rest = cls.__module__.partition(".")
    if package == "google" and rest.startswith("genai"):
        return _genai_writer
    if package in _HELPER_PACKAGES and rest.startswith("lib."):
        return _helper_writer(cls, package)
    return _model_writer(frozenset())


def _model_writer(exclude: frozenset[str]) -> _Writer:
    def write(item: Any) -> bytes:
        serializer = getattr(item, "__pydantic_serializer__", None)
        try:
            if serializer is not None:
                # The pydantic-core serializer writes bytes: what model_dump_json
                # returns before it decodes them into a str.
                data: bytes = serializer.to_json(
                    item, by_alias=True, exclude_unset=True, exclude=exclude, warnings=False
                )
                return data
            return item.model_dump_json(  # type: ignore[no-any-return]
                by_alias=True, exclude_unset=True, exclude=exclude, warnings=False
            ).encode()
        except (TypeError, ValueError) as exc:  # pydantic's serialization errors
            raise UsageError(f"cannot write a {type(item).__name__} as JSON: {exc}") from None

    return write


def _genai_writer(item: Any) -> bytes:
    # google-genai: the Python values, written by msgspec: bytes (thought
    # signatures) in standard base64, as the API sends them.
    value = item.model_dump(
        mode="python",
        by_alias=True,
        exclude_unset=True,
        exclude=_GENAI_SDK_FIELDS,
        warnings=False,
    )
    return _mapping(value)


def _helper_writer(cls: type, package: str) -> _Writer:
    # An SDK helper's event: the raw event class it extends (in <package>.types),
    # less the fields the helper added (its snapshots).
    raw = next(
        (base for base in cls.__mro__[1:] if base.__module__.startswith(package + ".types")),
        None,
    )
    fields: Mapping[str, Any] = getattr(cls, "model_fields", {})
    if raw is not None:
        added = frozenset(fields) - frozenset(getattr(raw, "model_fields", {}))
        return _model_writer(added)
    if "chunk" in fields:
        return _chunk_of  # openai's ChatCompletionStream: ChunkEvent(chunk, snapshot)
    return _skip


def _chunk_of(item: Any) -> bytes | None:
    return wire_json(item.chunk)


def _skip(item: Any) -> None:
    return None


class DecodedEvents:
    """The framing of a stream fed decoded events instead of bytes: each one
    becomes a ``ServerSentEvent`` of its wire JSON, numbered in order. A stream
    is fed bytes or decoded events, not both.

    Args:
        max_event_size: the largest event accepted, in bytes of JSON text.
    """

    def __init__(self, max_event_size: int) -> None:
        self.max_event_size = max_event_size
        self.count = 0

    def event(self, item: object) -> list[ServerSentEvent]:
        """One decoded event.

        Returns:
            Its ``ServerSentEvent``, or nothing for an SDK helper's own event.

        Raises:
            ProtocolError: the event is nested too deeply, holds a lone
                surrogate, or is larger than the limit.
            UsageError: ``item`` is no decoded event (see ``wire_json``).
        """
        index = self.count
        try:
            data = wire_json(item)
        except RecursionError:
            raise self._error(index, "is nested too deeply") from None
        except UnicodeEncodeError:
            raise self._error(index, "holds a lone surrogate, not valid Unicode") from None
        if data is None:
            return []
        if len(data) > self.max_event_size:
            raise self._error(index, f"is larger than the limit of {self.max_event_size} bytes")
        self.count += 1
        return [ServerSentEvent(data, index=index)]

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Bytes after decoded events.

        Raises:
            UsageError: always (a stream is fed bytes or decoded events).
        """
        raise UsageError("this stream was fed decoded events: feed the rest as events too")

    def close(self) -> list[ServerSentEvent]:
        """End of input: nothing is held."""
        return []

    @staticmethod
    def _error(index: int, what: str) -> ProtocolError:
        return ProtocolError(f"decoded event #{index} {what}", excerpt="", position=index)
