"""How the replay server reads a recorded body and writes a route's body: one
class per framing (server-sent events, a streamed JSON array, newline-delimited
JSON, the AWS event-stream), pure functions of bytes.

A framing does two things:

- ``units(data)``: cut a recorded body into ``Unit``\\ s, each an event (its
  payload, e.g. one JSON document, and its name where the framing has one) or
  the bytes between events (an SSE comment, a JSON array's closing bracket).
  Joined, the units' ``raw`` bytes are the body again, byte for byte.
- an instance writes a body in its framing: ``event(payload, name, index)``
  for each event (an injected error and an event of a recording of another
  framing included), ``malformed(name, index)`` for a cut-off event, and
  ``end(count)`` after the last one.

When a recording's framing is the route's, the server sends its units'
``raw`` bytes as they are; otherwise it writes each event's payload in the
route's framing. A new framing is a
subclass registered in ``FRAMINGS`` under the name its registry rows give
(``API.framing``, or what ``API.route`` returns); ``docs/http.md`` says how.
"""

from __future__ import annotations

import re
from typing import ClassVar, Final, NamedTuple

import msgspec

from ..errors import StreamfoldError, UsageError
from ..eventstream import EventStreamDecoder, encode_message
from ..framing import JSONArrayDecoder, JSONSequenceDecoder, ndjson

__all__ = [
    "FRAMINGS",
    "BodyFraming",
    "EventStreamFraming",
    "JSONArrayFraming",
    "NDJSONFraming",
    "SSEFraming",
    "Unit",
    "framing_for_media_type",
    "get_framing",
    "split_events",
]

_LINE_END: Final = re.compile(rb"\r\n|\r|\n")
_BOM: Final = b"\xef\xbb\xbf"


class Unit(NamedTuple):
    """A piece of a recorded body.

    Attributes:
        raw: its bytes, exactly as recorded.
        data: the event's payload (an SSE event's data lines joined with LF, a
            JSON array's element), or ``None`` for bytes between events.
        name: the event's name where the framing has one (SSE's ``event:``).
    """

    raw: bytes
    data: bytes | None
    name: bytes | None = None


class BodyFraming:
    """The base of every framing: reads recorded bodies, writes a route's body.

    Attributes:
        name: the framing's name, as registry rows give it (``"sse"``).
        media_type: the content type of a body in this framing.
        extension: the file extension of a recording in this framing (``".sse"``).
    """

    name: ClassVar[str] = ""
    media_type: ClassVar[str] = "application/octet-stream"
    extension: ClassVar[str] = ".body"

    @classmethod
    def units(cls, data: bytes) -> list[Unit]:
        """``data`` cut into units (their ``raw`` bytes joined are ``data``)."""
        raise NotImplementedError

    @classmethod
    def writer(cls, recorded: bytes = b"", *, crlf: bool = False) -> BodyFraming:
        """A writer for a body served in this framing; ``recorded`` is the
        recording's body (a writer may follow its style, as SSE's line ends)
        and ``crlf`` asks for CRLF line ends where the framing has lines."""
        return cls()

    def event(self, data: bytes, name: bytes | None, index: int) -> bytes:
        """One event carrying ``data``; ``index`` counts the events written before it."""
        raise NotImplementedError

    def malformed(self, name: bytes | None, index: int) -> bytes:
        """An event whose payload is cut off mid-way (the ``malformed-after`` fault)."""
        return self.event(
            b'{"malformed": true, "note": "this event is cut off in the mid', name, index
        )

    def end(self, count: int) -> bytes:
        """What closes a body of ``count`` events written by ``event``."""
        return b""

    def with_crlf(self, raw: bytes) -> bytes:
        """Recorded bytes with their line ends made CRLF (``split=crlf``), where
        the framing has lines."""
        return raw


# -- server-sent events ----------------------------------------------------------------------


def split_events(data: bytes) -> list[bytes]:
    """Cut an SSE body into blocks, each ending with its blank line (the last
    may lack one). Joined, the blocks are the body again, byte for byte."""
    blocks: list[bytes] = []
    start = previous_end = 0
    for match in _LINE_END.finditer(data):
        if match.start() == previous_end:  # an empty line: the block ends here
            blocks.append(data[start : match.end()])
            start = match.end()
        previous_end = match.end()
    if start < len(data):
        blocks.append(data[start:])
    return blocks


def _block_unit(block: bytes) -> Unit:
    data: list[bytes] = []
    name: bytes | None = None
    for line in _LINE_END.split(block.removeprefix(_BOM)):
        if line == b"data":
            data.append(b"")
        elif line.startswith(b"data:"):
            data.append(line[5:].removeprefix(b" "))
        elif line.startswith(b"event:") and name is None:
            name = line[6:].strip()
    return Unit(block, b"\n".join(data) if data else None, name)


class SSEFraming(BodyFraming):
    """Server-sent events: a unit per block; a block without a data field
    (a comment, a lone ``event:``) is no event. Written with the recording's
    line ends (LF, or CRLF when it used CRLF or ``crlf`` is asked)."""

    name = "sse"
    media_type = "text/event-stream"
    extension = ".sse"

    def __init__(self, line_end: bytes = b"\n") -> None:
        self.line_end = line_end

    @classmethod
    def units(cls, data: bytes) -> list[Unit]:
        return [_block_unit(block) for block in split_events(data)]

    @classmethod
    def writer(cls, recorded: bytes = b"", *, crlf: bool = False) -> SSEFraming:
        return cls(b"\r\n" if crlf or b"\r\n" in recorded[:4096] else b"\n")

    def event(self, data: bytes, name: bytes | None, index: int) -> bytes:
        end = self.line_end
        head = b"event: " + name + end if name else b""
        lines = b"".join(b"data: " + line + end for line in data.split(b"\n"))
        return head + lines + end

    def with_crlf(self, raw: bytes) -> bytes:
        return _LINE_END.sub(b"\r\n", raw)


# -- a streamed JSON array --------------------------------------------------------------------


class JSONArrayFraming(BodyFraming):
    """One JSON array streamed element by element (Gemini's
    ``streamGenerateContent`` without ``alt=sse``): a unit per element, with
    the bracket or comma before it; the closing bracket is a unit of its own.
    Written as Google does: ``[`` before the first element, ``,\\r\\n``
    between elements, ``]`` at the end."""

    name = "json-array"
    media_type = "application/json"
    extension = ".json"

    @classmethod
    def units(cls, data: bytes) -> list[Unit]:
        decoder = JSONArrayDecoder(max(len(data), 1))
        try:
            elements = [*decoder.feed(data), *decoder.close()]
        except StreamfoldError:
            return [Unit(data, None)] if data else []
        return _slices(data, [element.raw for element in elements])

    def event(self, data: bytes, name: bytes | None, index: int) -> bytes:
        return (b"[" if index == 0 else b",\r\n") + data

    def malformed(self, name: bytes | None, index: int) -> bytes:
        return self.event(b'{"malformed": true, "note": "cut', name, index)

    def end(self, count: int) -> bytes:
        return b"]" if count else b"[]"


# -- newline-delimited JSON ---------------------------------------------------------------------


class NDJSONFraming(BodyFraming):
    """Newline-delimited JSON (Ollama's native API): a unit per object, with
    the white space after it; written one object per line."""

    name = "ndjson"
    media_type = "application/x-ndjson"
    extension = ".ndjson"

    @classmethod
    def units(cls, data: bytes) -> list[Unit]:
        decoder = JSONSequenceDecoder(max(len(data), 1))
        try:
            values = [*decoder.feed(data), *decoder.close()]
        except StreamfoldError:
            return [Unit(data, None)] if data else []
        return _slices(data, [value.raw for value in values])

    def event(self, data: bytes, name: bytes | None, index: int) -> bytes:
        return ndjson((data,))

    def malformed(self, name: bytes | None, index: int) -> bytes:
        # Closed, so the lines after it stay lines, but not JSON.
        return b'{"malformed": true, "note": this line is not JSON}\n'


# -- the AWS event-stream -------------------------------------------------------------------------

_decode: Final = msgspec.json.Decoder().decode
_encode: Final = msgspec.json.Encoder().encode


class EventStreamFraming(BodyFraming):
    """The binary AWS event-stream (Amazon Bedrock): a unit per message, its
    data the payload, its name the ``:event-type`` (or ``:exception-type``).

    A recording of another framing keeps each event-stream member wrapped, as
    boto3 yields it: ``{"messageStart": {...}}``. Such an event (one without
    a name) is written as the message the wire carries: the key its
    ``:event-type``, the value its payload; a member whose name ends in
    ``Exception`` (AWS's name for a modelled exception) as an ``exception``
    message. A ``malformed`` message is one whose CRC does not match."""

    name = "aws-event-stream"
    media_type = "application/vnd.amazon.eventstream"
    extension = ".eventstream"

    @classmethod
    def units(cls, data: bytes) -> list[Unit]:
        decoder = EventStreamDecoder(max(len(data), 1))
        try:
            messages = [*decoder.feed(data), *decoder.close()]
        except StreamfoldError:
            return [Unit(data, None)] if data else []
        units: list[Unit] = []
        position = 0
        for message in messages:
            if not message.terminated:
                break  # a message cut by the end of the recording: its bytes follow
            # Each message is a slice of the body, one after another.
            end = position + int.from_bytes(data[position : position + 4], "big")
            name = message.event.encode() if message.event_set else None
            units.append(Unit(data[position:end], message.raw, name))
            position = end
        if position < len(data):
            units.append(Unit(data[position:], None))
        return units

    def event(self, data: bytes, name: bytes | None, index: int) -> bytes:
        member, payload = _member(data, name)
        if member.endswith("Exception"):
            headers = {":exception-type": member, ":message-type": "exception"}
        else:
            headers = {":event-type": member, ":message-type": "event"}
        return encode_message({**headers, ":content-type": "application/json"}, payload)

    def malformed(self, name: bytes | None, index: int) -> bytes:
        message = bytearray(self.event(b'{"malformed": true}', name or b"malformed", index))
        message[-1] ^= 0xFF  # the message CRC no longer matches
        return bytes(message)


def _member(data: bytes, name: bytes | None) -> tuple[str, bytes]:
    # A named event is its payload; an unnamed one is a wrapped member.
    if name:
        return name.decode("utf-8", "replace"), data
    try:
        value = _decode(data)
    except msgspec.DecodeError:
        value = None
    if type(value) is dict and len(value) == 1:
        ((member, inner),) = value.items()
        return str(member), _encode(inner)
    return "message", data


def _slices(data: bytes, pieces: list[bytes]) -> list[Unit]:
    # Units for values that are slices of the body, in order: each with the
    # bytes before it, the bytes after the last a unit of their own.
    units: list[Unit] = []
    position = 0
    for piece in pieces:
        at = data.find(piece, position)
        end = at + len(piece)
        units.append(Unit(data[position:end], piece))
        position = end
    if position < len(data):
        units.append(Unit(data[position:], None))
    return units


#: Every framing the replay server reads and writes, by name.
FRAMINGS: dict[str, type[BodyFraming]] = {
    cls.name: cls for cls in (SSEFraming, JSONArrayFraming, NDJSONFraming, EventStreamFraming)
}


def get_framing(name: str) -> type[BodyFraming]:
    """The framing named ``name``.

    Raises:
        UsageError: no framing has that name.
    """
    framing = FRAMINGS.get(name)
    if framing is None:
        raise UsageError(f"unknown framing {name!r} (known: {', '.join(FRAMINGS)})")
    return framing


def framing_for_media_type(content_type: str | None) -> type[BodyFraming] | None:
    """The framing whose media type ``content_type`` names (parameters
    ignored), or ``None``."""
    media = (content_type or "").partition(";")[0].strip().lower()
    for framing in FRAMINGS.values():
        if framing.media_type == media:
            return framing
    return None
