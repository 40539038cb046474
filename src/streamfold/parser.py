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
from .fold import Accumulator
from .framing import BodyDecoder, JSONArrayDecoder
from .partial_json import parse_partial
from .result import Result
from .sse import DEFAULT_MAX_EVENT_SIZE, ServerSentEvent, SSEDecoder

__all__ = ["Phase", "StreamParser"]

_WHITESPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"


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
        max_event_size: the largest server-sent event accepted, in bytes.

    Raises:
        UsageError: an unknown dialect id.
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
        self.strict = strict
        self.max_event_size = max_event_size
        self.acc = Accumulator(
            emit=events, parse_arguments=parse_arguments, parse_content=parse_content
        )
        self.dialect: Dialect | None = None
        self.phase = Phase.STARTING
        self.error: StreamfoldError | None = None
        self._framing: SSEDecoder | JSONArrayDecoder | BodyDecoder | None = None
        self._head = b""
        self._closed = False
        self.events_seen = 0

    # -- feeding ---------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Event]:
        """Fold the next bytes of the stream.

        Returns:
            The events these bytes completed, in order.

        Raises:
            UsageError: ``feed`` after ``close``.
        """
        if self._closed:
            raise UsageError("feed() after close(): this parser has finished")
        if self.phase is Phase.FAILED:
            return []
        framing = self._framing
        if framing is None:
            framing = self._choose_framing(data)
            if framing is None:
                return []
            data, self._head = self._head + data, b""
        try:
            self._handle(framing.feed(data))
        except ProtocolError as exc:
            self._fail(exc)
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
        if self.phase in (Phase.STARTING, Phase.STREAMING):
            try:
                if self._framing is None and self._head:
                    self._framing = self._choose_framing(b"", final=True)
                if self._framing is not None:
                    self._handle(self._framing.close())
            except ProtocolError as exc:
                self._fail(exc)
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
                f"the response was cut short (finish reason {result.unified.raw_finish_reason!r})",
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

    @property
    def dialect_name(self) -> str | None:
        """The dialect in use, once known."""
        return self.dialect.name if self.dialect else None

    # -- internals -------------------------------------------------------------------

    def _choose_framing(
        self, data: bytes, final: bool = False
    ) -> SSEDecoder | JSONArrayDecoder | BodyDecoder | None:
        # Most bodies are SSE; Gemini without ?alt=sse streams one JSON array, and
        # an error or a non-streamed answer arrives as one JSON object.
        head = self._head + data
        stripped = head[3:] if head.startswith(_BOM) else head
        stripped = stripped.lstrip(_WHITESPACE)
        if (not stripped or _BOM.startswith(head)) and not final:
            # Nothing told yet, or only part of a byte-order mark.
            self._head = head
            return None
        self.phase = Phase.STREAMING
        first = stripped[:1]
        framing: SSEDecoder | JSONArrayDecoder | BodyDecoder
        if first == b"[":
            framing = JSONArrayDecoder(self.max_event_size)
        elif first == b"{":
            framing = BodyDecoder(self.max_event_size)
        else:
            framing = SSEDecoder(self.max_event_size)
        self._framing = framing
        if final:
            self._head = b""
            self._handle(framing.feed(head))
        return framing

    def _handle(self, events: list[ServerSentEvent]) -> None:
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
