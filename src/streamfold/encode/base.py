"""What every encoder shares: the event dispatch, the parts and calls being
written, and the decisions that are the same for every target (which choice a
single-choice target carries, which calls are the caller's, how a stream ends).

An encoder is a pure object, the mirror of ``StreamParser``: feed it events,
in the order the parser gives them, and it returns the bytes they complete::

    encoder = AnthropicEncoder()
    for chunk in upstream:
        for event in parser.feed(chunk):
            send(encoder.encode(event))
    for event in parser.close():
        send(encoder.encode(event))
    send(encoder.close())

Bytes depend only on the events: the same events give the same bytes, however
the source stream was cut. State (ids, indexes, open blocks, sequence numbers)
lives in the encoder.

How a stream ends: a ``response.finished`` event makes ``close()`` write the
target's terminal frames (finish reason, usage, terminal marker). An ``error``
event for a provider or protocol error writes the target's in-band error at
once and nothing after it. An ``error`` event for a cut (``incomplete_stream``,
``timeout``) writes nothing: the encoded stream simply stops, without its
terminal marker, and reads as cut. So a failed or cut stream never comes out
looking complete.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import msgspec

from ..dialects.anthropic import SERVER_TOOL_KINDS
from ..errors import ErrorInfo, UsageError
from ..events import (
    ErrorOccurred,
    Event,
    LogprobsDelta,
    ReasoningDelta,
    ReasoningDone,
    RefusalDelta,
    RefusalDone,
    ResponseFinished,
    ResponseStarted,
    TextDelta,
    TextDone,
    ToolCallArgumentsDelta,
    ToolCallDone,
    ToolCallStarted,
    Usage,
    UsageUpdated,
)
from ..fold import REASONING, REFUSAL, TEXT

__all__ = [
    "CUT_ERRORS",
    "REASONING",
    "REFUSAL",
    "TEXT",
    "Call",
    "Encoder",
    "Part",
    "error_code",
    "finish_value",
    "json",
    "sse",
]

#: Encodes any JSON value to compact bytes (one reused encoder).
json = msgspec.json.Encoder().encode

#: The ``ErrorInfo.type`` of failures that mean the stream was cut, not refused:
#: the encoded stream stops without its terminal marker.
CUT_ERRORS = frozenset({"incomplete_stream", "timeout"})
_DELTA_KIND = {TextDelta: TEXT, ReasoningDelta: REASONING, RefusalDelta: REFUSAL}
_DONE_KIND = {TextDone: TEXT, ReasoningDone: REASONING, RefusalDone: REFUSAL}


def sse(data: bytes, event: bytes | None = None, end: bytes = b"\n\n") -> bytes:
    """One server-sent event of ``data`` (compact JSON never holds a line break)."""
    if event is None:
        return b"data: " + data + end
    return b"event: " + event + b"\ndata: " + data + end


class Part:
    """A run of text, reasoning or refusal being written.

    Attributes:
        choice: its choice.
        kind: ``"text"``, ``"reasoning"`` or ``"refusal"``.
        pieces: the deltas written so far.
        slot: what the target keeps for it (a block index, an item, an id).
    """

    __slots__ = ("choice", "kind", "pieces", "slot")

    def __init__(self, choice: int, kind: str) -> None:
        self.choice = choice
        self.kind = kind
        self.pieces: list[str] = []
        self.slot: Any = None


class Call:
    """A tool call being written.

    Attributes:
        choice: its choice.
        position: its place among the calls the target carries for that choice
            (0, 1, ...: server-run calls left out).
        id, name, kind: as the events say, ``id`` and ``name`` set once known.
        pieces: the argument deltas written so far.
        slot: what the target keeps for it.
    """

    __slots__ = ("choice", "id", "kind", "name", "pieces", "position", "slot")

    def __init__(
        self, choice: int, position: int, id: str | None, name: str | None, kind: str
    ) -> None:
        self.choice = choice
        self.position = position
        self.id = id
        self.name = name
        self.kind = kind
        self.pieces: list[str] = []
        self.slot: Any = None


def _rest(pieces: list[str], final: str) -> str | None:
    """What ``final`` adds to the pieces already written: ``""`` when nothing,
    ``None`` when it differs from them (the deltas cannot take it back)."""
    sent = "".join(pieces) if len(pieces) != 1 else pieces[0]
    if final == sent:
        return ""
    if final.startswith(sent):
        return final[len(sent) :]
    return None


class Encoder:
    """The base of every encoder: events in, bytes out.

    Subclasses write the target's frames in the hooks (``_start``,
    ``_part_delta``, ``_part_done``, ``_call_start``, ``_call_delta``,
    ``_call_done``, ``_finish``, ``_interrupt``); the base decides what reaches them.

    Attributes:
        dialect: the target's dialect id.
        media_type: the response's content type.
        headers: further response headers the target needs (lower-case names).
        keepalive: bytes that every reader of the target skips, to write
            between frames when the stream is silent (an SSE comment); ``None``
            where the framing has no such thing.
        multi_choice: the target carries every choice (else only the first seen).
    """

    dialect: ClassVar[str] = ""
    media_type: str = "text/event-stream"
    headers: ClassVar[Mapping[str, str]] = MappingProxyType({})
    keepalive: bytes | None = b": keep-alive\n\n"
    multi_choice: ClassVar[bool] = False

    def __init__(self) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self.created: int | None = None
        self.usage: Usage | None = None
        #: The finish of each choice carried, by choice.
        self.finishes: dict[int, ResponseFinished] = {}
        self.closed = False
        self.ended = False  # an error or a cut ended the stream: nothing more is written
        self.started = False
        self._begun = False  # response.started arrived
        self._choice: int | None = None  # the one choice a single-choice target carries
        self._parts: dict[tuple[int, str], Part] = {}
        self._calls: dict[tuple[int, int], Call | None] = {}  # None: a call left out
        self._positions: dict[int, int] = {}
        self._dispatch = {
            TextDelta: self._text_delta,
            ReasoningDelta: self._text_delta,
            RefusalDelta: self._text_delta,
            TextDone: self._text_done,
            ReasoningDone: self._text_done,
            RefusalDone: self._text_done,
            ToolCallStarted: self._tool_started,
            ToolCallArgumentsDelta: self._tool_delta,
            ToolCallDone: self._tool_done,
            LogprobsDelta: self._logprobs_event,
            UsageUpdated: self._usage_event,
            ResponseStarted: self._started_event,
            ResponseFinished: self._finished_event,
            ErrorOccurred: self._error_event,
        }

    # -- the interface ---------------------------------------------------------------

    def encode(self, event: Event) -> bytes:
        """The bytes ``event`` completes (often none yet, or several frames).

        Raises:
            UsageError: ``encode`` after ``close``.
        """
        if self.closed:
            raise UsageError("encode() after close(): this encoder has finished")
        if self.ended:
            return b""
        handler = self._dispatch.get(type(event))
        return handler(event) if handler is not None else b""  # type: ignore[operator]

    def encode_all(self, events: Iterable[Event]) -> bytes:
        """The bytes of several events, joined (``parser.feed`` returns a list).

        Raises:
            UsageError: after ``close``.
        """
        encode = self.encode
        return b"".join([encode(event) for event in events])

    def close(self) -> bytes:
        """The end of the events: the terminal frames of a finished stream, or
        nothing for a stream that failed or was cut (it already ended, or ends
        here without its terminal marker). Calling it again returns ``b""``."""
        if self.closed:
            return b""
        self.closed = True
        if self.ended or not self.finishes:
            return b""
        return self._start_once() + self._finish()

    # -- hooks for the targets ---------------------------------------------------------

    def _start(self) -> bytes:
        """The frames that open the response (written before anything else)."""
        return b""

    def _part_delta(self, part: Part, delta: str) -> bytes:
        """A piece of a part (its first piece when ``part.slot`` is still ``None``)."""
        raise NotImplementedError

    def _part_done(self, part: Part, event: TextDone | ReasoningDone | RefusalDone) -> bytes:
        """A part is over (its missing tail, if any, was written as a delta)."""
        return b""

    def _call_start(self, call: Call) -> bytes:
        """A call the target carries began."""
        raise NotImplementedError

    def _call_delta(self, call: Call, delta: str) -> bytes:
        """A piece of a call's arguments."""
        raise NotImplementedError

    def _call_done(self, call: Call, event: ToolCallDone) -> bytes:
        """A call is over (its missing tail, if any, was written as a delta)."""
        return b""

    def _logprobs(self, event: LogprobsDelta) -> bytes:
        return b""

    def _finished(self, event: ResponseFinished) -> bytes:
        """A carried choice finished (its frames may wait for ``_finish``)."""
        return b""

    def _finish(self) -> bytes:
        """The terminal frames of a finished stream."""
        raise NotImplementedError

    def _interrupt(self, error: ErrorInfo, cut: bool) -> bytes:
        """The stream failed (``cut`` false: write the target's in-band error) or
        was cut (write nothing that ends it): the last frames. Targets also write
        the usage so far here where they have a place for it short of the end."""
        raise NotImplementedError

    # -- helpers -----------------------------------------------------------------------

    def _start_once(self) -> bytes:
        if self.started:
            return b""
        self.started = True
        return self._start()

    def _carries(self, choice: int) -> bool:
        if self.multi_choice:
            return True
        if self._choice is None:
            self._choice = choice
        return choice == self._choice

    # -- dispatch ----------------------------------------------------------------------

    def _started_event(self, event: ResponseStarted) -> bytes:
        self.id, self.model, self.created = event.id, event.model, event.created
        self._begun = True
        return b""

    def _usage_event(self, event: UsageUpdated) -> bytes:
        self.usage = event.usage
        return b""

    def _text_delta(self, event: TextDelta | ReasoningDelta | RefusalDelta) -> bytes:
        choice = event.choice
        kind = _DELTA_KIND[type(event)]
        part = self._parts.get((choice, kind))
        if part is None:
            if not self._carries(choice):
                return b""
            part = self._parts[(choice, kind)] = Part(choice, kind)
            part.pieces.append(event.delta)
            return self._start_once() + self._part_delta(part, event.delta)
        part.pieces.append(event.delta)
        return self._part_delta(part, event.delta)

    def _text_done(self, event: TextDone | ReasoningDone | RefusalDone) -> bytes:
        choice = event.choice
        kind = _DONE_KIND[type(event)]
        part = self._parts.pop((choice, kind), None)
        if not event.complete:
            return b""  # cut with the stream (or abandoned): left open, as the source left it
        if part is None:
            # A part without deltas (a redacted or signed-only thinking block).
            if not self._carries(choice):
                return b""
            part = Part(choice, kind)
            out = self._start_once()
            if event.text:  # its text came whole: written as one delta
                part.pieces.append(event.text)
                out += self._part_delta(part, event.text)
            return out + self._part_done(part, event)
        rest = _rest(part.pieces, event.text)
        out = b""
        if rest:
            part.pieces.append(rest)
            out = self._part_delta(part, rest)
        return out + self._part_done(part, event)

    def _tool_started(self, event: ToolCallStarted) -> bytes:
        choice = event.choice
        key = (choice, event.index)
        if event.kind in SERVER_TOOL_KINDS or not self._carries(choice):
            # A call the provider runs itself: its results are not events, and
            # a target without that notion would hand it to the caller to run.
            self._calls[key] = None
            return b""
        position = self._positions.get(choice, 0)
        self._positions[choice] = position + 1
        call = self._calls[key] = Call(choice, position, event.id, event.name, event.kind)
        return self._start_once() + self._call_start(call)

    def _tool_delta(self, event: ToolCallArgumentsDelta) -> bytes:
        call = self._calls.get((event.choice, event.index))
        if call is None:
            return b""
        call.pieces.append(event.delta)
        return self._call_delta(call, event.delta)

    def _tool_done(self, event: ToolCallDone) -> bytes:
        call = self._calls.pop((event.choice, event.index), None)
        if call is None or not event.complete:
            return b""
        if call.id is None:
            call.id = event.id
        if call.name is None:
            call.name = event.name
        rest = _rest(call.pieces, event.arguments)
        out = b""
        if rest:
            call.pieces.append(rest)
            out = self._call_delta(call, rest)
        return out + self._call_done(call, event)

    def _logprobs_event(self, event: LogprobsDelta) -> bytes:
        if not self._carries(event.choice):
            return b""
        return self._logprobs(event)

    def _finished_event(self, event: ResponseFinished) -> bytes:
        if not self._carries(event.choice):
            return b""
        self.finishes[event.choice] = event
        return self._finished(event)

    def _error_event(self, event: ErrorOccurred) -> bytes:
        self.ended = True
        # A response that began is opened first (its start may carry the usage).
        out = self._start_once() if self._begun or self.usage is not None else b""
        return out + self._interrupt(event.error, event.error.type in CUT_ERRORS)


def finish_value(event: ResponseFinished, native: Mapping[str, str]) -> str | None:
    """The target's finish value for ``event``: the target's own value for the
    unified reason, else the provider's raw value as it came (a reason the
    target has no word for, which its readers take as ``other``)."""
    unified = event.finish_reason
    if unified is None:
        return None
    return native.get(unified) or event.raw_finish_reason or unified


def error_code(error: ErrorInfo) -> str:
    """The code to put in a target's error object: the provider's code, else
    streamfold's kind of failure (``provider_error``, ``protocol_error``)."""
    return error.code or error.type
