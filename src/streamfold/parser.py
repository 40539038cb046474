"""The sans-IO stream parser: bytes in, typed events out, the result at any time.

``StreamParser`` ties the SSE decoder (or the JSON framings some gateways use),
a dialect and the accumulator together. It does no IO: feed it the bytes you
received, in pieces of any size, and it returns the events they complete::

    parser = StreamParser()
    for chunk in chunks:
        for event in parser.feed(chunk):
            ...
    parser.close()
    result = parser.final()

It takes decoded events too, one per ``feed``: dicts, or the objects an SDK
yields (``for chunk in client.chat.completions.create(..., stream=True):
parser.feed(chunk)``); ``streamfold.decoded`` says what is kept of each.

A failure never raises from ``feed`` or ``close``: it ends the stream with an
``error`` event, is kept in ``parser.error``, and ``final()`` raises it. The
iterators in ``streamfold.adapters`` raise it right after yielding that event.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any, Final

from . import dialects
from .decoded import DecodedEvent, DecodedEvents
from .dialects.base import Dialect, decode_json, provider_error
from .errors import (
    IncompleteStreamError,
    ProtocolError,
    ProviderError,
    StreamfoldError,
    TruncatedResponseError,
    UsageError,
    shorten,
)
from .events import Event
from .eventstream import EventStreamDecoder
from .fold import Accumulator
from .framing import Framing, FramingSniff, JSONArrayDecoder, JSONSequenceDecoder
from .result import Result
from .sse import DEFAULT_MAX_EVENT_SIZE, ServerSentEvent, SSEDecoder

__all__ = ["Phase", "StreamParser"]

_Framings = SSEDecoder | JSONArrayDecoder | JSONSequenceDecoder | EventStreamDecoder | DecodedEvents
_DECODERS: dict[Framing, type[_Framings]] = {
    Framing.SSE: SSEDecoder,
    Framing.JSON_ARRAY: JSONArrayDecoder,
    Framing.JSON_SEQUENCE: JSONSequenceDecoder,
    Framing.EVENT_STREAM: EventStreamDecoder,
}
# What one event of each framing is called in messages.
_UNITS: dict[type, str] = {
    SSEDecoder: "server-sent event",
    JSONArrayDecoder: "JSON array element",
    JSONSequenceDecoder: "JSON value",
    EventStreamDecoder: "event-stream message",
    DecodedEvents: "decoded event",
}


class Phase(Enum):
    """Where the stream stands (``StreamParser.phase``); the transitions are
    ``_TRANSITIONS``, the one table that moves the parser."""

    #: No byte has told the framing yet.
    STARTING = "starting"
    #: Events are being folded.
    STREAMING = "streaming"
    #: The response is complete (its terminal marker, or the end of input with
    #: every choice finished); events after it are ignored with a warning.
    FINISHED = "finished"
    #: The stream failed (``parser.error``); bytes after it are dropped.
    FAILED = "failed"


class _State(Enum):
    """The parser's one state: the stream's phase, and whether the input is closed."""

    STARTING = (Phase.STARTING, False)
    STREAMING = (Phase.STREAMING, False)
    FINISHED = (Phase.FINISHED, False)
    FAILED = (Phase.FAILED, False)
    CLOSED_FINISHED = (Phase.FINISHED, True)
    CLOSED_FAILED = (Phase.FAILED, True)

    # Members are singletons: hashed by identity, not by name in Python code.
    __hash__ = object.__hash__

    @property
    def phase(self) -> Phase:
        return self.value[0]

    @property
    def closed(self) -> bool:
        return self.value[1]


class _Trigger(Enum):
    """What moves the state: the stream's doing (the framing and the dialect),
    or the caller's (a method call)."""

    FRAMING = "the framing is told"  # the stream: its first meaningful bytes, or its end
    END = "the end of the response"  # the stream: its terminal point
    FAILURE = "a failure"  # the stream (or the caller's fail()): an error ends it
    FEED = "feed()"  # the caller
    CLOSE = "close()"  # the caller: the input is over (after the end of input is folded)
    FINAL = "final()"  # the caller: the final result is asked for

    __hash__ = object.__hash__


_S, _T = _State, _Trigger
# The states of a finished stream (a set test: `phase` is two Python-level property
# reads, paid by every snapshot).
_FINISHED_STATES: Final = frozenset({_S.FINISHED, _S.CLOSED_FINISHED})
#: The parser's phases and their transitions, state -> trigger -> next state. A
#: trigger that leads to the same state is accepted and changes nothing (a
#: failure after the end, a second ``close()``); one not listed is illegal: a
#: ``UsageError`` when the caller fired it, a ``ProtocolError`` when the stream did.
_TRANSITIONS: Final[dict[_State, dict[_Trigger, _State]]] = {
    _S.STARTING: {_T.FRAMING: _S.STREAMING, _T.FAILURE: _S.FAILED, _T.FEED: _S.STARTING},
    _S.STREAMING: {_T.END: _S.FINISHED, _T.FAILURE: _S.FAILED, _T.FEED: _S.STREAMING},
    _S.FINISHED: {
        _T.FAILURE: _S.FINISHED,
        _T.FEED: _S.FINISHED,
        _T.CLOSE: _S.CLOSED_FINISHED,
    },
    _S.FAILED: {
        _T.FAILURE: _S.FAILED,
        _T.FEED: _S.FAILED,
        _T.CLOSE: _S.CLOSED_FAILED,
        _T.FINAL: _S.FAILED,
    },
    _S.CLOSED_FINISHED: {
        _T.FAILURE: _S.CLOSED_FINISHED,
        _T.CLOSE: _S.CLOSED_FINISHED,
        _T.FINAL: _S.CLOSED_FINISHED,
    },
    _S.CLOSED_FAILED: {
        _T.FAILURE: _S.CLOSED_FAILED,
        _T.CLOSE: _S.CLOSED_FAILED,
        _T.FINAL: _S.CLOSED_FAILED,
    },
}
_CALLER: Final = frozenset({_T.FEED, _T.CLOSE, _T.FINAL})
_FEED: Final = _T.FEED
#: What a caller is told for an illegal call.
_MISUSE: Final = {
    _T.FEED: "feed() after close(): this parser has finished",
    _T.FINAL: "final() before close(): feed the whole stream, then close()",
    _T.CLOSE: "close() before the end of input was folded",
}


class _Discard:
    """The framing after a failure, or after a framing fault past the end: every
    byte is dropped."""

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        return []

    def close(self) -> list[ServerSentEvent]:
        return []


_DISCARD: Final = _Discard()
_Decoder = _Framings | _Discard


class StreamParser:
    """Fold one streamed response, fed as bytes or as decoded events.

    Args:
        dialect: a dialect id (``"openai-chat"``, ``"openai-responses"``,
            ``"anthropic"``, ``"gemini"``), a ``Dialect`` class, or ``"auto"``
            to detect it from the first event.
        strict: raise on malformed events (``ProtocolError``); when ``False``
            they are skipped and reported in ``Result.warnings``.
        events: build event objects; ``False`` folds only (``feed`` returns ``[]``).
        parse_arguments: parse tool-call arguments incrementally and attach the
            JSON updates to ``tool_call.arguments.delta`` events.
        parse_content: parse answer text as JSON (JSON mode, structured output):
            updates on ``text.delta``, the parsed value on ``text.done``.
        max_event_size: the largest event accepted, in bytes (for SSE, what
            counts is in the ``streamfold.sse`` docstring; also the most white
            space a body may start with).
        output_type: the answer's type (JSON mode, structured output): a
            msgspec Struct, dataclass, TypedDict, pydantic model or JSON Schema
            (``streamfold.structured``). The answer is followed as that type:
            ``output.updated`` events, ``partial_output()``, and the validated
            value on ``text.done`` and in the result (``Result.output``).
        tool_types: the same for tool-call arguments, a type per tool name:
            ``partial_tool_output()``, ``ToolCallDone.output``, ``ToolCall.output``.

    Raises:
        UsageError: an unknown dialect id, or a ``max_event_size`` that is not
            a positive int.
        UnsupportedSchemaError: an output type or schema that
            ``streamfold.structured`` does not support.
    """

    def __init__(
        self,
        dialect: str | type[Dialect] = "auto",
        *,
        strict: bool = True,
        events: bool = True,
        parse_arguments: bool = False,
        parse_content: bool = False,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        output_type: Any = None,
        tool_types: Mapping[str, Any] | None = None,
    ) -> None:
        self._dialect_class = None if dialect == "auto" else dialects.get(dialect)
        if (
            isinstance(max_event_size, bool)
            or not isinstance(max_event_size, int)
            or max_event_size <= 0
        ):
            raise UsageError(
                f"max_event_size takes a positive number of bytes (an int), not {max_event_size!r}"
            )
        self.strict = strict
        self.max_event_size = max_event_size
        self.acc = Accumulator(
            emit=events,
            parse_arguments=parse_arguments,
            parse_content=parse_content,
            output_type=output_type,
            tool_types=tool_types,
        )
        self.dialect: Dialect | None = None
        self.error: StreamfoldError | None = None
        self._state = _State.STARTING
        self._moves = _TRANSITIONS[_State.STARTING]  # the state's row of the table
        self._sniff = FramingSniff(max_event_size)
        self._framing: _Decoder | None = None
        self.events_seen = 0
        self._fed_bytes = False  # bytes came before the framing was told
        # The id of the last event dispatched (a resumed stream's cursor: an
        # id field of an event cut short is not the stream's yet, as WHATWG's
        # EventSource sets its last event ID only on dispatch); the
        # reconnection time of the connections before a reconnect, and the id
        # whose replay the seam skips.
        self._last_id: str | None = None
        self._carried_retry: int | None = None
        self._replayed_id: str | None = None
        # The last snapshot, and what it was taken at (see snapshot).
        self._snapshot: Result | None = None
        self._snapshot_at: tuple[Any, ...] = ()
        self._warnings: tuple[str, ...] = ()

    @property
    def phase(self) -> Phase:
        """Where the stream stands: starting, streaming, finished or failed."""
        return self._state.phase

    @property
    def closed(self) -> bool:
        """Whether the input is over (``close()`` or ``fail()`` was called)."""
        return self._state.closed

    # -- feeding ---------------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview | DecodedEvent) -> list[Event]:
        """Fold the next bytes of the stream, or its next decoded event (a dict,
        an SDK's chunk or event object). A stream is fed one or the other.

        Returns:
            The events these bytes (or this event) completed, in order.

        Raises:
            UsageError: ``feed`` after ``close``; ``data`` is a ``str``, or
                neither bytes nor a decoded event; bytes and decoded events mixed.
        """
        if not isinstance(data, bytes):
            if not isinstance(data, (bytearray, memoryview)):
                return self._feed_decoded(data)
            data = bytes(data)
        if _FEED not in self._moves:
            self._fire(_FEED)  # raises: feed() after close()
        try:
            framing = self._framing
            if framing is None:
                self._fed_bytes = True
                told = self._sniff.feed(data)
                if told is None:
                    return []
                framing = self._start(told)
                data = self._sniff.head
            self._handle(framing.feed(data))
        except ProtocolError as exc:
            self._broken(exc)
        return self.acc.drain()

    def _feed_decoded(self, item: object) -> list[Event]:
        if isinstance(item, str):
            raise UsageError(
                "feed() takes bytes, bytearray or memoryview, or decoded events, not str: "
                "encode text first (text.encode())"
            )
        if _FEED not in self._moves:
            self._fire(_FEED)  # raises: feed() after close()
        framing = self._framing
        if framing is not None and not isinstance(framing, DecodedEvents):
            if framing is not _DISCARD or self._fed_bytes:
                raise UsageError("this stream was fed bytes: feed the rest as bytes too")
            return []  # failed: every later input is dropped
        if framing is None:
            self._fire(_T.FRAMING)
            framing = self._framing = DecodedEvents(self.max_event_size)
        try:
            self._handle(framing.event(item))
        except ProtocolError as exc:
            self._broken(exc)
        return self.acc.drain()

    def close(self) -> list[Event]:
        """End of input. A stream that ended without its finish reason or terminal
        marker fails with ``IncompleteStreamError``.

        Returns:
            The last events: parts ending (marked incomplete on failure),
            ``response.finished``, or ``error``.
        """
        if self._state.closed:
            return []
        try:
            framing = self._framing
            if framing is None:
                framing = self._start(self._sniff.close())
                self._handle(framing.feed(self._sniff.head))
            self._handle(framing.close())
        except ProtocolError as exc:
            self._broken(exc)
        if self._state is _State.STREAMING:
            self._end_of_input()
        self._fire(_T.CLOSE)
        return self.acc.drain()

    # -- results ---------------------------------------------------------------------

    @property
    def snapshot(self) -> Result:
        """The result folded so far. Built on demand: it costs nothing per chunk,
        and what changed since the last snapshot (the parts it leaves alone are
        shared with it; see docs/semantics.md, "Snapshots").
        """
        warnings = self.acc.warnings
        at = (self._state, self.events_seen, len(warnings))
        if self._snapshot is not None and at == self._snapshot_at:
            return self._snapshot
        # Let go of the last one first: the texts it shares may then grow in place.
        self._snapshot = None
        if len(self._warnings) != len(warnings):
            self._warnings = tuple(warnings)
        dialect = self.dialect
        result = self._snapshot = Result(
            dialect=dialect.name if dialect else "",
            response=dialect.response() if dialect else {},
            unified=self.acc.unified(),
            complete=self._state in _FINISHED_STATES,
            warnings=self._warnings,
        )
        self._snapshot_at = at
        return result

    def final(self, checked: bool = False) -> Result:
        """The final result, once the stream is closed.

        Args:
            checked: also fail when the response was cut by a token limit or a
                content filter.

        Raises:
            UsageError: the parser is not closed yet.
            ProviderError: the stream carried a provider error.
            IncompleteStreamError: the stream ended early.
            ProtocolError: the stream was malformed (strict mode).
            TruncatedResponseError: ``checked`` and finish reason length or content_filter.
        """
        self._fire(_T.FINAL)
        if self.error is not None:
            raise self.error
        result = self.snapshot
        if checked and result.finish_reason in ("length", "content_filter"):
            reason = result.finish_reason
            raise TruncatedResponseError(
                f"the response was {'filtered' if reason == 'content_filter' else 'cut short'} "
                f"(finish reason {result.unified.raw_finish_reason!r})",
                reason=reason,
                partial=result,
            )
        return result

    def partial_arguments(self, index: int, choice: int = 0) -> Any:
        """The arguments of tool call ``index`` (its event index) parsed as far as
        they have arrived: the partial-JSON snapshot (strings as far as received,
        numbers and literals once complete; see ``streamfold.partial_json``).
        Built on demand; with ``parse_arguments`` the incremental parser's state
        is used, else a parser made on the first call is fed what arrived since
        the last one (``ToolCallView.partial_arguments``).

        Returns:
            The partial value, ``partial_json.MISSING`` before any value started,
            or ``None`` when no such call exists.

        Raises:
            PartialJSONError: the arguments so far are not a prefix of valid JSON.
        """
        call = self.acc.call_at(choice, index)
        return None if call is None else call.partial_arguments()

    def partial_output(self, choice: int = 0) -> Any:
        """The answer of ``choice`` as the ``output_type`` so far: its last text
        part's partial value (``StructuredParser.partial``: every field in it
        validated, a field not received yet ``UNSET``), the validated output
        once that part ended well. Built on demand, at the cost of the string
        being received only.

        Returns:
            The partial value; ``UNSET`` without an ``output_type`` or before
            any value started.
        """
        return self.acc.partial_output(choice)

    def partial_tool_output(self, index: int, choice: int = 0) -> Any:
        """The arguments of tool call ``index`` (its event index) as its tool's
        type (``tool_types``) so far, as ``partial_output`` does for the answer.

        Returns:
            The partial value; ``UNSET`` when its tool has no type or before any
            value started; ``None`` when no such call exists.
        """
        return self.acc.partial_tool_output(choice, index)

    def reconnect(self) -> None:
        """The bytes fed next come from a new connection that continues this
        stream (a resumed stream): the framing decoder starts afresh (an event
        the old connection cut short is dropped), an event that repeats the
        last event id is skipped, and the dialect skips what it has folded
        already (``Dialect.resumed``: the Responses API's sequence numbers).

        Raises:
            UsageError: the stream has ended (finished, failed or closed).
        """
        if self.closed or self.phase not in (Phase.STARTING, Phase.STREAMING):
            raise UsageError("reconnect() after the end of the stream")
        self._carried_retry = self.reconnection_time
        self._replayed_id = self._last_id or None
        framing = self._framing
        if framing is None:
            self._sniff = FramingSniff(self.max_event_size)
        elif not isinstance(framing, _Discard):
            self._open(type(framing))
        if self.dialect is not None:
            self.dialect.resumed()

    @property
    def last_event_id(self) -> str | None:
        """The event id of the last server-sent event dispatched (the ``id``
        field, which carries over to the events after it), over every
        connection of a resumed stream; ``None`` before any. An event cut
        short does not count, its ``id`` field read or not."""
        return self._last_id

    @property
    def reconnection_time(self) -> int | None:
        """The reconnection time, in milliseconds, the last ``retry`` field of
        the stream set (over every connection), or ``None``."""
        current = getattr(self._framing, "reconnection_time", None)
        return self._carried_retry if current is None else current

    @property
    def dialect_name(self) -> str | None:
        """The dialect in use, once known."""
        return self.dialect.name if self.dialect else None

    def fail(self, error: StreamfoldError) -> list[Event]:
        """End the stream with an error found outside the bytes (an adapter's
        timeout, a lost connection), unless it already ended: open parts end
        incomplete, the ``error`` event follows, and the parser is closed.

        Returns:
            The last events.
        """
        self._fail(error)
        self._fire(_T.CLOSE)
        return self.acc.drain()

    # -- the state ---------------------------------------------------------------------

    def _fire(self, trigger: _Trigger) -> bool:
        """Move the state by ``trigger`` (``_TRANSITIONS``).

        Returns:
            Whether the state changed.

        Raises:
            UsageError: the caller's call is not allowed in this state.
            ProtocolError: the stream's trigger is not allowed in this state.
        """
        state = self._state
        new = _TRANSITIONS[state].get(trigger)
        if new is None:
            if trigger in _CALLER:
                raise UsageError(_MISUSE[trigger])
            raise ProtocolError(
                f"{trigger.value} while the stream is {state.phase.value}",
                position=self.events_seen,
            )
        self._state = new
        self._moves = _TRANSITIONS[new]
        return new is not state

    # -- internals -------------------------------------------------------------------

    def _start(self, framing: Framing) -> _Decoder:
        # Most bodies are SSE; Gemini without ?alt=sse streams one JSON array,
        # Ollama newline-delimited JSON objects (an error or a non-streamed
        # answer is one of them), Amazon Bedrock AWS event-stream messages.
        self._fire(_T.FRAMING)
        return self._open(_DECODERS[framing])

    def _open(self, kind: type[_Framings]) -> _Framings:
        # NDJSON lines come unchecked: the typed decode of Dialect.fast checks
        # each line it folds (it accepts one JSON value only), and _handle has
        # the framing verify the others. Saves a parse per line.
        if kind is JSONSequenceDecoder:
            decoder: _Framings = JSONSequenceDecoder(self.max_event_size, validate=False)
        else:
            decoder = kind(self.max_event_size)
        self._framing = decoder
        return decoder

    def _handle(self, events: list[ServerSentEvent]) -> None:
        if events:
            self._last_id = events[-1].id  # once per read, not per event
        i, count = 0, len(events)
        while i < count:
            dialect = self.dialect
            if (
                dialect is not None
                and self._state is _State.STREAMING
                and self._replayed_id is None
            ):
                # The hot events, as long as the dialect's typed path folds
                # them: one call for the run (see Dialect.fast_run); the phase
                # checks below are for the others.
                start = i
                i = dialect.fast_run(events, i)
                self.events_seen += i - start
                if i == count:
                    break
            framing = self._framing
            if isinstance(framing, JSONSequenceDecoder) and framing.verify(events, i):
                count = len(events)  # events[i:] are the scanner's: not one JSON value
                continue
            event = events[i]
            i += 1
            state = self._state
            if state is not _State.STREAMING:
                if state is _State.FINISHED:
                    if event.raw == b"[DONE]":
                        continue  # OpenRouter ends even Responses streams with [DONE]
                    self.acc.warn(
                        f"server-sent event #{event.index} after the end of the stream ignored: "
                        f"{shorten(event.data, 60)!r}"
                    )
                    continue
                return
            self.events_seen += 1
            if self._replayed_id is not None:  # the seam of a resumed stream
                if event.id == self._replayed_id:
                    continue  # the server sent the last event before the cut again
                self._replayed_id = None
            dialect = self.dialect
            try:
                if dialect is None:
                    dialect = self._detect(event)
                    if dialect is None:
                        continue
                if dialect.handle(event):
                    self._end()
            except ProtocolError as exc:
                if not event.terminated and _cut_short(event):
                    self._fail(self._cut(event, exc))
                    return
                if self.strict:
                    self._fail(exc)
                    return
                self.acc.warn(f"skipped: {exc}")
            except ProviderError as exc:
                self._fail(exc)
                return

    def _detect(self, event: ServerSentEvent) -> Dialect | None:
        cls = self._dialect_class
        if cls is None:
            if event.raw == b"[DONE]":
                return None
            payload = decode_json(event)
            cls = dialects.detect(event, payload)
            if cls is None and isinstance(payload, dict) and "error" in payload:
                # An error envelope before any event told the dialect (an error
                # body on HTTP 200, or a stream refused at once): every
                # provider's envelope has this shape.
                raise provider_error(payload, event.index)
            if cls is None:
                raise ProtocolError(
                    f"server-sent event #{event.index} matches no known dialect: "
                    f"{shorten(event.data)!r}",
                    excerpt=shorten(event.data),
                    position=event.index,
                )
        self.dialect = cls(self.acc)
        return self.dialect

    def _broken(self, error: ProtocolError) -> None:
        # The framing broke (bytes outside a JSON array, an event too large).
        # After the end the response is whole: the rest is ignored with one
        # warning, as events after the end are, whether the fault came in the
        # read that ended the stream (raised by close()) or in a later one.
        if self._state is _State.FINISHED:
            self._framing = _DISCARD
            self.acc.warn(f"bytes after the end of the stream ignored: {error}")
        else:
            self._fail(error)

    def _cut(self, event: ServerSentEvent, cause: ProtocolError) -> IncompleteStreamError:
        # The input ended inside this event: the connection dropped, whatever
        # the strictness (the event's bytes are lost, not malformed).
        what = _UNITS.get(type(self._framing), "server-sent event")
        error = IncompleteStreamError(
            f"the stream ended inside {what} #{event.index}, cut short: {shorten(event.raw)!r}",
            position=event.index,
        )
        error.__cause__ = cause
        return error

    def _end(self) -> None:
        # The dialect reached the stream's terminal point: the response is complete.
        self._fire(_T.END)
        self.acc.terminate()

    def _end_of_input(self) -> None:
        # The input ended before any terminal point: the dialect says whether
        # the stream is complete all the same (every choice has its finish reason).
        dialect = self.dialect
        try:
            complete = dialect.close() if dialect is not None else False
        except ProviderError as exc:
            self._fail(exc)
            return
        if complete:
            self._end()
            return
        if dialect is None:
            reason = (
                "the stream ended before any event"
                if self.events_seen == 0
                else ("the stream ended before its dialect could be told")
            )
        else:
            reason = "the stream ended without a finish reason or terminal marker"
        self._fail(IncompleteStreamError(reason, position=self.events_seen))

    def _fail(self, error: StreamfoldError) -> None:
        # The stream fails here, unless it already ended (then nothing changes).
        if not self._fire(_T.FAILURE):
            return
        self._framing = _DISCARD
        self.error = error
        self.acc.fail(error.info, getattr(error, "raw", None))
        error.partial = self.snapshot


def _cut_short(event: ServerSentEvent) -> bool:
    # An event the input ended inside (an SSE event without its closing blank
    # line, an unfinished JSON array element) that the dialect rejected: cut
    # short when its JSON does not parse; otherwise it is malformed, whole.
    try:
        decode_json(event)
    except ProtocolError:
        return True
    return False
