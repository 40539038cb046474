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

A failure never raises from ``feed`` or ``close``: it ends the stream with an
``error`` event, is kept in ``parser.error``, and ``final()`` raises it. The
iterators in ``streamfold.adapters`` raise it right after yielding that event.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from . import dialects
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
from .partial_json import parse_partial
from .result import Result
from .sse import DEFAULT_MAX_EVENT_SIZE, ServerSentEvent, SSEDecoder

__all__ = ["Phase", "StreamParser"]

_Decoder = SSEDecoder | JSONArrayDecoder | JSONSequenceDecoder | EventStreamDecoder
_DECODERS: dict[Framing, type[_Decoder]] = {
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
}


class Phase(Enum):
    """Where the parser stands. Transitions: STARTING -> STREAMING on the first
    bytes that tell the framing; STREAMING -> FINISHED at the terminal marker
    (or at ``close()`` when the dialect says the stream is complete);
    STARTING or STREAMING -> FAILED on an error. FINISHED and FAILED are final:
    events after the end are ignored with a warning, bytes after a failure are
    dropped, and ``feed()`` after ``close()`` is a ``UsageError``."""

    STARTING = "starting"
    STREAMING = "streaming"
    FINISHED = "finished"
    FAILED = "failed"


class StreamParser:
    """Fold one streamed response, fed as bytes.

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

    Raises:
        UsageError: an unknown dialect id, or a ``max_event_size`` that is not
            a positive int.
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
            emit=events, parse_arguments=parse_arguments, parse_content=parse_content
        )
        self.dialect: Dialect | None = None
        self.phase = Phase.STARTING
        self.error: StreamfoldError | None = None
        self._sniff = FramingSniff(max_event_size)
        self._framing: _Decoder | None = None
        self._framing_broken = False  # after the end: the rest of the bytes is ignored
        self._closed = False
        self.events_seen = 0
        # The id of the last event dispatched (a resumed stream's cursor: an
        # id field of an event cut short is not the stream's yet, as WHATWG's
        # EventSource sets its last event ID only on dispatch); the
        # reconnection time of the connections before a reconnect, and the id
        # whose replay the seam skips.
        self._last_id: str | None = None
        self._carried_retry: int | None = None
        self._replayed_id: str | None = None

    # -- feeding ---------------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Fold the next bytes of the stream.

        Returns:
            The events these bytes completed, in order.

        Raises:
            UsageError: ``feed`` after ``close``, or ``data`` is not bytes,
                bytearray or memoryview.
        """
        if not isinstance(data, bytes):
            data = _as_bytes(data)
        if self._closed:
            raise UsageError("feed() after close(): this parser has finished")
        if self.phase is Phase.FAILED or self._framing_broken:
            return []
        try:
            framing = self._framing
            if framing is None:
                told = self._sniff.feed(data)
                if told is None:
                    return []
                framing = self._start(told)
                data = self._sniff.head
            self._handle(framing.feed(data))
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
        if self._closed:
            return []
        self._closed = True
        if self.phase is not Phase.FAILED and not self._framing_broken:
            try:
                framing = self._framing
                if framing is None:
                    framing = self._start(self._sniff.close())
                    self._handle(framing.feed(self._sniff.head))
                self._handle(framing.close())
            except ProtocolError as exc:
                self._broken(exc)
        if self.phase in (Phase.STARTING, Phase.STREAMING):
            self._end()
        return self.acc.drain()

    # -- results ---------------------------------------------------------------------

    @property
    def snapshot(self) -> Result:
        """The result folded so far. Built on demand: it costs nothing per chunk."""
        dialect = self.dialect
        return Result(
            dialect=dialect.name if dialect else "",
            response=dialect.response() if dialect else {},
            unified=self.acc.unified(),
            complete=self.phase is Phase.FINISHED,
            warnings=tuple(self.acc.warnings),
        )

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
        if not self._closed and self.phase is not Phase.FAILED:
            raise UsageError("final() before close(): feed the whole stream, then close()")
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
        is used, else the arguments so far are parsed once.

        Returns:
            The partial value, ``partial_json.MISSING`` before any value started,
            or ``None`` when no such call exists.

        Raises:
            PartialJSONError: the arguments so far are not a prefix of valid JSON.
        """
        state = self.acc.choices.get(choice)
        call = next((c for c in state.tool_order if c.index == index), None) if state else None
        if call is None:
            return None
        if call.parser is not None:
            return call.parser.snapshot()
        return parse_partial(call.arguments_text())

    def reconnect(self) -> None:
        """The bytes fed next come from a new connection that continues this
        stream (a resumed stream): the framing decoder starts afresh (an event
        the old connection cut short is dropped), an event that repeats the
        last event id is skipped, and the dialect skips what it has folded
        already (``Dialect.resumed``: the Responses API's sequence numbers).

        Raises:
            UsageError: the stream has ended (finished, failed or closed).
        """
        if self._closed or self.phase not in (Phase.STARTING, Phase.STREAMING):
            raise UsageError("reconnect() after the end of the stream")
        self._carried_retry = self.reconnection_time
        self._replayed_id = self._last_id or None
        framing = self._framing
        if framing is None:
            self._sniff = FramingSniff(self.max_event_size)
        else:
            self._framing = type(framing)(self.max_event_size)
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

    # -- internals -------------------------------------------------------------------

    def _start(self, framing: Framing) -> _Decoder:
        # Most bodies are SSE; Gemini without ?alt=sse streams one JSON array,
        # Ollama newline-delimited JSON objects (an error or a non-streamed
        # answer is one of them), Amazon Bedrock AWS event-stream messages.
        self.phase = Phase.STREAMING
        decoder = self._framing = _DECODERS[framing](self.max_event_size)
        return decoder

    def _handle(self, events: list[ServerSentEvent]) -> None:
        if events:
            self._last_id = events[-1].id  # once per read, not per event
        for event in events:
            if self.phase is not Phase.STREAMING:
                if self.phase is Phase.FINISHED:
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
                dialect.handle(event)
                if dialect.terminated:
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
        if self.phase is Phase.FINISHED:
            self._framing_broken = True
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
        dialect = self.dialect
        try:
            complete = dialect.close() if dialect is not None else False
        except ProviderError as exc:
            self._fail(exc)
            return
        if complete:
            self.phase = Phase.FINISHED
            self.acc.terminate()
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

    def fail(self, error: StreamfoldError) -> list[Event]:
        """End the stream with an error found outside the bytes (an adapter's
        timeout, a lost connection), unless it already ended: open parts end
        incomplete, the ``error`` event follows, and the parser is closed.

        Returns:
            The last events.
        """
        if self.phase in (Phase.STARTING, Phase.STREAMING):
            self._fail(error)
        self._closed = True
        return self.acc.drain()

    def _fail(self, error: StreamfoldError) -> None:
        if self.phase is Phase.FAILED:
            return
        self.phase = Phase.FAILED
        self.error = error
        self.acc.fail(error.info, getattr(error, "raw", None))
        error.partial = self.snapshot


def _as_bytes(data: object) -> bytes:
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    hint = ": encode text first (text.encode())" if isinstance(data, str) else ""
    raise UsageError(
        f"feed() takes bytes, bytearray or memoryview, not {type(data).__name__}{hint}"
    )


def _cut_short(event: ServerSentEvent) -> bool:
    # An event the input ended inside (an SSE event without its closing blank
    # line, an unfinished JSON array element) that the dialect rejected: cut
    # short when its JSON does not parse; otherwise it is malformed, whole.
    try:
        decode_json(event)
    except ProtocolError:
        return True
    return False
