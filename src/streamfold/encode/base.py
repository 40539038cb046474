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

from collections.abc import Callable, Iterable, Mapping
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
    "Frame",
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
_DELTA_KIND: dict[type, str] = {TextDelta: TEXT, ReasoningDelta: REASONING, RefusalDelta: REFUSAL}
_DONE_KIND: dict[type, str] = {TextDone: TEXT, ReasoningDone: REASONING, RefusalDone: REFUSAL}


def sse(data: bytes, event: bytes | None = None, end: bytes = b"\n\n") -> bytes:
    """One server-sent event of ``data`` (compact JSON never holds a line break)."""
    if event is None:
        return b"data: " + data + end
    return b"event: " + event + b"\ndata: " + data + end


#: The bytes of a delta whose frame is fixed, around the delta's JSON string
#: (``json(delta)``), made once when a part or call opens so that each delta
#: after it costs one encoded string and no hook (``Encoder.encode_all``):
#:
#: - ``(prefix, suffix)``: ``prefix + json(delta) + suffix``;
#: - ``(prefix, middle, suffix)``: the same with the event's number
#:   (``Encoder._sequence``, counted up) between ``prefix`` and ``middle``;
#: - ``()``: the target writes nothing for a delta.
#:
#: A target sets a frame in its delta hook, and clears it (``None``) whenever
#: the next delta must be written otherwise (a block or item ends under it).
Frame = tuple[bytes, ...]


#: Deltas kept joined in blocks of this many: a list of many tiny strings costs
#: about ten times their text in memory (the accumulator does the same).
_BLOCK = 4096


class _Written:
    """What a part or a call has written so far, and how it writes the next delta.

    Attributes:
        pieces: the deltas written so far (every ``_BLOCK`` of them joined in
            one block; ``sent()`` joins them all).
        slot: what the target keeps for it (a block index, an item, an id).
        frame: how its next deltas are written (see ``Frame``), or ``None``:
            each goes through the target's delta hook.
    """

    __slots__ = ("_blocks", "frame", "pieces", "slot")

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.slot: Any = None
        self.frame: Frame | None = None
        self._blocks = 0  # pieces[:_blocks] are joined blocks, the rest single deltas

    def sent(self) -> str:
        """The text written so far."""
        pieces = self.pieces
        return pieces[0] if len(pieces) == 1 else "".join(pieces)

    def add(self, delta: str) -> None:
        """Keep a delta written."""
        self.pieces.append(delta)
        self.compact()

    def compact(self) -> None:
        """Join the single deltas into one block once there are ``_BLOCK`` of them."""
        pieces, start = self.pieces, self._blocks
        if len(pieces) - start >= _BLOCK:
            pieces[start:] = ["".join(pieces[start:])]
            self._blocks = start + 1


class Part(_Written):
    """A run of text, reasoning or refusal being written.

    Attributes:
        choice: its choice.
        kind: ``"text"``, ``"reasoning"`` or ``"refusal"``.
    """

    __slots__ = ("choice", "kind")

    def __init__(self, choice: int, kind: str) -> None:
        super().__init__()
        self.choice = choice
        self.kind = kind


class Call(_Written):
    """A tool call being written.

    Attributes:
        choice: its choice.
        position: its place among the calls the target carries for that choice
            (0, 1, ...: server-run calls left out).
        id, name, kind: as the events say, ``id`` and ``name`` set once known.
    """

    __slots__ = ("choice", "id", "kind", "name", "position")

    def __init__(
        self, choice: int, position: int, id: str | None, name: str | None, kind: str
    ) -> None:
        super().__init__()
        self.choice = choice
        self.position = position
        self.id = id
        self.name = name
        self.kind = kind


def _rest(sent: str, final: str) -> str | None:
    """What ``final`` adds to the text already written: ``""`` when nothing,
    ``None`` when it differs from it (the deltas cannot take it back)."""
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
    A delta hook that sets its part's or call's ``frame`` hands the deltas after
    it to the base, which writes them without a hook (see ``Frame``).

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
        self._sequence = 0  # the next event's number, for a target that numbers them
        self._dispatch: dict[type, Callable[[Any], bytes]] = {
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
        # encode_all's loop for one event (a relay encodes one at a time).
        loose: Any = event  # read as its type, checked here, says
        cls = type(event)
        item: Part | Call | None
        if cls is ToolCallArgumentsDelta:
            item = self._calls.get((loose.choice, loose.index))
        else:
            kind = _DELTA_KIND.get(cls)
            item = None if kind is None else self._parts.get((loose.choice, kind))
        if item is not None and item.frame is not None:
            delta: str = loose.delta
            item.add(delta)
            return self._framed(item.frame, delta)
        handler = self._dispatch.get(cls)
        return handler(event) if handler is not None else b""

    def encode_all(self, events: Iterable[Event]) -> bytes:
        """The bytes of several events, joined (``parser.feed`` returns a list).

        Raises:
            UsageError: after ``close``.
        """
        if self.closed:
            raise UsageError("encode() after close(): this encoder has finished")
        if self.ended:
            return b""
        out: list[bytes] = []
        write = out.append
        parts, calls, dispatch = self._parts, self._calls, self._dispatch
        loose: Iterable[Any] = events  # each read as its type, checked here, says
        for event in loose:
            cls = type(event)
            # Most events are deltas of an open part or call, whose bytes are a
            # frame around the delta: written here, with no hook (``_framed``,
            # inlined: a call per delta would cost more than the writing).
            item: Part | Call | None
            if cls is ToolCallArgumentsDelta:
                item = calls.get((event.choice, event.index))
            else:
                kind = _DELTA_KIND.get(cls)
                item = None if kind is None else parts.get((event.choice, kind))
            if item is not None:
                frame = item.frame
                if frame is not None:
                    delta = event.delta
                    item.pieces.append(delta)
                    size = len(frame)
                    if size == 2:
                        write(frame[0])
                        write(json(delta))
                        write(frame[1])
                    elif size:
                        sequence = self._sequence
                        self._sequence = sequence + 1
                        write(frame[0])
                        write(json(sequence))
                        write(frame[1])
                        write(json(delta))
                        write(frame[2])
                    continue
            handler = dispatch.get(cls)
            if handler is not None:
                write(handler(event))
                if self.ended:
                    break  # an error or a cut: nothing more is written
        # The deltas the loop kept, joined in blocks where they are many (see add).
        for part in parts.values():
            part.compact()
        for call in calls.values():
            if call is not None:
                call.compact()
        return b"".join(out)

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

    def _framed(self, frame: Frame, delta: str) -> bytes:
        """A delta written in ``frame`` (as ``encode_all`` writes it inline)."""
        if len(frame) == 2:
            return b"".join((frame[0], json(delta), frame[1]))
        if not frame:
            return b""
        sequence = self._sequence
        self._sequence = sequence + 1
        return b"".join((frame[0], json(sequence), frame[1], json(delta), frame[2]))

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
            part.add(event.delta)
            return self._start_once() + self._part_delta(part, event.delta)
        part.add(event.delta)
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
                part.add(event.text)
                out += self._part_delta(part, event.text)
            return out + self._part_done(part, event)
        rest = _rest(part.sent(), event.text)
        out = b""
        if rest:
            part.add(rest)
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
        call.add(event.delta)
        return self._call_delta(call, event.delta)

    def _tool_done(self, event: ToolCallDone) -> bytes:
        call = self._calls.pop((event.choice, event.index), None)
        if call is None or not event.complete:
            return b""
        if call.id is None:
            call.id = event.id
        if call.name is None:
            call.name = event.name
        rest = _rest(call.sent(), event.arguments)
        out = b""
        if rest:
            call.add(rest)
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
