"""One HTTP exchange, sans IO: every decision between the response's head and
the end of its body, the deadlines included.

::

    exchange = Exchange(head, timeouts=Timeouts(idle=30), started=sent_at, now=clock())
    while not exchange.ended:
        read = body.read(exchange.deadline)          # bytes, b"" at the end, STALLED or Lost
        for event in exchange.receive(read, clock()):
            ...
    exchange.raise_failure()

The adapters (``streamfold.adapters.httpx``) do the IO: they read the head off
a response (``ResponseHead``), read the body, and hand every outcome to the
exchange with the time. The exchange reads no clock and imports no HTTP
library: it is given ``now`` on every call, so each deadline is decided here
and tested with a fake clock.

What it decides:

- whether the body is a stream: a non-2xx status, a content type that is not an
  event stream (the media type of a framing of ``adapters.framings``:
  ``text/event-stream``, ``application/x-ndjson``,
  ``application/vnd.amazon.eventstream``), or an
  ``application/json`` body that is not a JSON array is
  read (at most ``MAX_ERROR_BODY`` bytes, under the same deadlines) into an
  ``HTTPStatusError`` or ``ContentTypeError``, with the provider's envelope
  read by its dialect's functions (through the registry);
- the metadata (``ResponseMetadata``): status line, headers and URL with
  credentials redacted, request id (the registry's headers for each API), rate
  limits, timings and counts;
- the deadlines: ``deadline`` is when the next one passes; a read that did not
  return in time (``STALLED``) or bytes that arrive after it end the stream
  with ``StreamTimeoutError``;
- secrets: the API key and other credentials of the request are replaced by
  ``REDACTED`` in the bytes as they arrive, so no error, event, body or
  metadata shows them.
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final

import msgspec

from ..dialects.base import Dialect, provider_error
from ..dialects.registry import API, APIS
from ..errors import (
    ContentTypeError,
    HTTPResponseError,
    HTTPStatusError,
    ProtocolError,
    StreamfoldError,
    TruncatedResponseError,
    UsageError,
    timeout_error,
)
from ..events import Event, ReasoningDelta, RefusalDelta, TextDelta, ToolCallArgumentsDelta
from ..framing import Framing, FramingSniff
from ..parser import StreamParser
from ..result import HTTPResult, ResponseMetadata, Result
from .framings import FRAMINGS
from .redact import (
    KEY_HEADERS,
    SecretFilter,
    key_may_follow,
    redact_headers,
    redact_text,
    redact_url,
    secrets_of,
)

__all__ = [
    "MAX_ERROR_BODY",
    "NO_TIMEOUTS",
    "STALLED",
    "Exchange",
    "Lost",
    "Phase",
    "Read",
    "ResponseHead",
    "SentRequest",
    "Timeouts",
    "request_id_of",
]

#: The largest error body read to build an ``HTTPResponseError``, in bytes.
MAX_ERROR_BODY: Final = 64 * 1024

_TOKEN_EVENTS: Final = (TextDelta, ReasoningDelta, RefusalDelta, ToolCallArgumentsDelta)
# The content types of a 2xx body that is a stream: each framing's (SSE, Ollama's
# NDJSON, Bedrock's AWS event-stream), but JSON's, which is sniffed (below).
_STREAM_MEDIA_TYPES: Final = frozenset(
    framing.media_type for framing in FRAMINGS.values() if framing.media_type != "application/json"
)
_decode = msgspec.json.Decoder().decode


# -- what the adapters hand in -----------------------------------------------------------


@dataclass(frozen=True)
class Timeouts:
    """The deadlines a streamed response needs, in seconds; ``None`` disables one.

    Attributes:
        connect: establishing the connection (the HTTP client's connect timeout).
        first_event: from sending the request to the first server-sent event.
        idle: the longest gap between two server-sent events.
        total: the whole exchange, from sending the request to the end of the stream.
    """

    connect: float | None = 5.0
    first_event: float | None = 600.0
    idle: float | None = 600.0
    total: float | None = None

    def header_read(self) -> float | None:
        """The read timeout while waiting for the response's head: the first
        of ``first_event`` and ``total`` (no event can come before the head)."""
        return _smallest(self.first_event, self.total)

    def body_read(self) -> float | None:
        """The read timeout for the body: the longest a read may block while a
        deadline may still be ahead, so that the HTTP client never gives up
        before a deadline that applies (``first_event`` before the first event,
        ``idle`` after it, ``total`` throughout); the adapters end each
        deadline exactly themselves."""
        if self.first_event is None or self.idle is None:
            return self.total
        return _smallest(max(self.first_event, self.idle), self.total)


def _smallest(*values: float | None) -> float | None:
    present = [value for value in values if value is not None]
    return min(present) if present else None


NO_TIMEOUTS: Final = Timeouts(connect=None, first_event=None, idle=None, total=None)


@dataclass(frozen=True)
class SentRequest:
    """One request as it went out: its method, URL and headers (credentials
    included, never shown: ``repr`` leaves them out)."""

    method: str
    url: str = field(repr=False)
    headers: Sequence[tuple[str, str]] = field(repr=False)


@dataclass(frozen=True)
class ResponseHead:
    """What the adapter reads off a response before its body, as plain data.

    Attributes:
        status_code: the HTTP status.
        reason: the status phrase.
        http_version: ``"HTTP/1.1"``, ``"HTTP/2"``.
        headers: the response headers in order, repeated ones repeated.
        requests: every request sent for this response, first to last (more
            than one after redirects).
        received_at: the wall-clock time (``time.time()``) the head was read,
            for a ``retry-after`` given as an HTTP date.
        read_timeout: the HTTP client's own read timeout, when it has one: a
            stall it cut before any deadline is reported with this limit.
    """

    status_code: int
    reason: str
    http_version: str
    headers: Sequence[tuple[str, str]]
    requests: Sequence[SentRequest]
    received_at: float = 0.0
    read_timeout: float | None = None


class _Stalled:
    __slots__ = ()

    def __repr__(self) -> str:
        return "STALLED"


#: A read that did not return in time: a deadline's watchdog interrupted it, or
#: the HTTP client's own read timeout ran out.
STALLED: Final = _Stalled()


@dataclass(frozen=True)
class Lost:
    """A read failed: the connection broke (``cause`` is the HTTP library's error)."""

    cause: BaseException


#: The outcome of one read: the next bytes, ``b""`` at the end of the body,
#: ``STALLED`` or ``Lost``.
Read = bytes | _Stalled | Lost


class Phase(Enum):
    """Where the exchange stands; ``_NEXT`` lists the moves."""

    SNIFFING = "sniffing"  # a 2xx JSON body: an array is a stream, anything else is not
    STREAMING = "streaming"
    ERROR_BODY = "error_body"  # reading a body that is not a stream, to report it
    ENDED = "ended"


_NEXT: Final = {
    Phase.SNIFFING: frozenset({Phase.STREAMING, Phase.ERROR_BODY, Phase.ENDED}),
    Phase.STREAMING: frozenset({Phase.ENDED}),
    Phase.ERROR_BODY: frozenset({Phase.ENDED}),
    Phase.ENDED: frozenset(),
}


# -- request ids and the registry's error-body readers -------------------------------------


def _rows(dialect: str | None) -> list[API]:
    # The row of the dialect in use first, then every row in registry order.
    known = [row for row in APIS if row.id == dialect]
    return known + [row for row in APIS if row.id != dialect]


def request_id_of(headers: Mapping[str, str], dialect: str | None = None) -> str | None:
    """The provider's request id among ``headers`` (lower-case names), or ``None``.

    The headers of the registry row of ``dialect`` are tried first, then every
    row's in registry order.
    """
    for row in _rows(dialect):
        for name in row.request_id_headers:
            value = headers.get(name)
            if value:
                return value
    return None


def _first_answer(rows: Iterable[API], reader: str, raw: Any) -> Any:
    for row in rows:
        read = getattr(row, reader)
        if read is not None:
            value = read(raw)
            if value is not None:
                return value
    return None


def _dialect_id(dialect: str | type[Dialect]) -> str | None:
    if isinstance(dialect, str):
        row = next((row for row in APIS if dialect in (row.id, row.name)), None)
        return row.id if row is not None else None
    return dialect.name or None


# -- the exchange ----------------------------------------------------------------------------


class Exchange:
    """The parser plus what an HTTP exchange adds: is the body a stream, the
    error it is when not, the metadata, the deadlines and secrets. No IO and
    no clock: the adapters hand it each read's outcome and the time.

    Args:
        head: the response's head.
        dialect: a dialect id or class, or ``"auto"``.
        strict: raise on malformed events (else skip them with a warning).
        parse_arguments: parse tool-call arguments incrementally.
        parse_content: parse answer text as JSON incrementally (JSON mode).
        timeouts: the deadlines (none when ``None``).
        started: when the request was sent (timings and deadlines count from
            there), or ``None`` for ``now``.
        now: the time, on the clock every later ``now`` is read from.

    Raises:
        UsageError: an unknown dialect, or a redirect carried an API key to
            another origin (the response is not folded: see ``docs/http.md``).
    """

    def __init__(
        self,
        head: ResponseHead,
        dialect: str | type[Dialect] = "auto",
        *,
        strict: bool = True,
        parse_arguments: bool = False,
        parse_content: bool = False,
        timeouts: Timeouts | None = None,
        started: float | None = None,
        now: float,
    ) -> None:
        _refuse_a_key_sent_elsewhere(head.requests)
        self.parser = StreamParser(
            dialect, strict=strict, parse_arguments=parse_arguments, parse_content=parse_content
        )
        self.timeouts = t = timeouts or NO_TIMEOUTS
        self._timed = t.first_event is not None or t.idle is not None or t.total is not None
        self._due_seen = -1  # the events seen when _due_value was computed
        self._due_value: tuple[float, str] | None = None
        self.started = now if started is None else started
        self.headers_at = None if started is None else now
        self.first_byte_at: float | None = None
        self.first_event_at: float | None = None
        self.first_token_at: float | None = None
        self.last_event_at = now
        self.ended_at: float | None = None
        self.bytes = 0
        self.chunks = 0
        self.error: StreamfoldError | None = None  # what ended the exchange, beside the parser's
        self._given_dialect = None if dialect == "auto" else _dialect_id(dialect)
        secrets: set[str] = set()
        for request in head.requests:
            secrets |= secrets_of(request.url)
            for name, value in request.headers:
                secrets |= secrets_of(headers={name: value})
        self._secrets = frozenset(secrets)
        self._filter = SecretFilter(secrets) if secrets else None
        self._base = self._base_metadata(head)
        self._method = head.requests[-1].method if head.requests else "?"
        self._received_at = head.received_at
        self._read_timeout = head.read_timeout
        self._framing = FramingSniff(self.parser.max_event_size)  # while sniffing
        self._body: list[bytes] = []  # a body that is not a stream, up to MAX_ERROR_BODY
        self._body_size = 0
        media = (self._base["content_type"] or "").split(";", 1)[0].strip().lower()
        self.status_ok = 200 <= head.status_code < 300
        if not self.status_ok:
            self.phase = Phase.ERROR_BODY
        elif not media or media in _STREAM_MEDIA_TYPES:
            self.phase = Phase.STREAMING
        elif media == "application/json" or media.endswith("+json"):
            self.phase = Phase.SNIFFING
        else:
            self.phase = Phase.ERROR_BODY

    # -- reads ---------------------------------------------------------------------------

    #: The exchange is over: the body need not be read any further.
    ended: bool = False

    @property
    def deadline(self) -> float | None:
        """When the next deadline passes (on the clock of ``now``), or ``None``."""
        due = self._due() if self._timed else None
        return None if due is None else due[0]

    def receive(self, read: Read, now: float) -> list[Event]:
        """Take the outcome of one read of the body.

        A deadline that passed before ``now`` wins over bytes that came late
        (and over the end of the body).

        Returns:
            The events it completed (an ``error`` event last when it ended the
            stream; ``raise_failure()`` then raises the error).
        """
        if self.phase is Phase.ENDED:
            return []
        due = self._due() if self._timed else None
        if read.__class__ is bytes:
            if due is not None and now >= due[0]:
                return self._expire(due, now)
            if not read:
                return self._finish(now)
            if self.first_byte_at is None:
                self.first_byte_at = now
            self.bytes += len(read)
            self.chunks += 1
            if self._filter is not None:
                read = self._filter.feed(read)
            if self.phase is Phase.STREAMING:
                return self._parse(read, now)
            if self.phase is Phase.SNIFFING:
                return self._sniff(read, now)
            return self._collect(read, now)
        if read is STALLED:
            return self._expire(due, now)
        return self._lose(read.cause, now)  # type: ignore[union-attr]

    def abandon(self, now: float) -> None:
        """The caller stopped reading (closed the stream or left early): the
        body ends here, and the stream is incomplete unless it had ended."""
        if self.phase is not Phase.ENDED:
            self._finish(now)

    def raise_failure(self) -> None:
        """Raise the error that ended the exchange, if any.

        Raises:
            HTTPStatusError, ContentTypeError: the body was not a stream.
            ProviderError, ProtocolError, IncompleteStreamError, StreamTimeoutError:
                the stream failed (``partial`` is the ``HTTPResult`` so far).
        """
        error = self.failure
        if error is not None:
            raise error

    # -- results -------------------------------------------------------------------------

    @property
    def failure(self) -> StreamfoldError | None:
        """The error that ended the exchange, its ``partial`` carrying the metadata."""
        error = self.error or self.parser.error
        if (
            error is not None
            and not isinstance(error, HTTPResponseError)
            and not isinstance(error.partial, HTTPResult)
        ):
            error.partial = self.snapshot()
        return error

    def metadata(self) -> ResponseMetadata:
        """The exchange's metadata as it stands."""
        started = self.started

        def since(moment: float | None) -> float | None:
            return None if moment is None else moment - started

        base = self._base
        return ResponseMetadata(
            **base,
            request_id=request_id_of(base["headers"], self._dialect()),
            time_to_headers=since(self.headers_at),
            time_to_first_byte=since(self.first_byte_at),
            time_to_first_event=since(self.first_event_at),
            time_to_first_token=since(self.first_token_at),
            total_time=since(self.ended_at),
            bytes_received=self.bytes,
            chunks_received=self.chunks,
            events_received=self.parser.events_seen,
        )

    def snapshot(self) -> HTTPResult:
        """The result folded so far, with the metadata."""
        return _with_metadata(self.parser.snapshot, self.metadata())

    def final(self, checked: bool = False) -> HTTPResult:
        """The final result, once the exchange has ended.

        Raises:
            UsageError: the exchange has not ended.
            The errors of ``raise_failure``; ``TruncatedResponseError`` when
            ``checked`` and the response was cut by a limit or a filter.
        """
        if self.phase is not Phase.ENDED:
            raise UsageError("final() before the exchange ended: read the whole body first")
        self.raise_failure()
        try:
            result = self.parser.final(checked=checked)
        except TruncatedResponseError as exc:
            exc.partial = self.snapshot()
            raise
        return _with_metadata(result, self.metadata())

    @property
    def timed(self) -> bool:
        """Whether any deadline is set (else ``deadline`` is always ``None``)."""
        return self._timed

    def describe(self) -> str:
        """For a ``repr``: the method, the URL (redacted) and the status."""
        return f"{self._method} {self._base['url']} [{self._base['status_code']}]"

    # -- the moves -----------------------------------------------------------------------

    def _to(self, phase: Phase) -> None:
        if phase not in _NEXT[self.phase]:  # pragma: no cover - a bug, not server data
            raise ProtocolError(f"the exchange cannot go from {self.phase.value} to {phase.value}")
        self.phase = phase

    def _sniff(self, data: bytes, now: float) -> list[Event]:
        # A 2xx JSON body is a stream only when it is an array (Gemini without
        # ?alt=sse): the framing layer's one sniff tells, holding what it must.
        try:
            framing = self._framing.feed(data)
        except ProtocolError as error:
            return self._fail_stream(error, now)
        if framing is None:
            return []
        head = self._framing.head
        if framing is Framing.JSON_ARRAY:
            self._to(Phase.STREAMING)
            return self._parse(head, now)
        self._to(Phase.ERROR_BODY)
        return self._collect(head, now)

    def _parse(self, data: bytes, now: float) -> list[Event]:
        parser = self.parser
        seen = parser.events_seen
        events = parser.feed(data)
        if parser.events_seen != seen:
            self.last_event_at = now
            if self.first_event_at is None:
                self.first_event_at = now
        if self.first_token_at is None and events:
            for event in events:
                if isinstance(event, _TOKEN_EVENTS):
                    self.first_token_at = now
                    break
        if parser.error is not None:
            self._end(now)
        return events

    def _collect(self, data: bytes, now: float) -> list[Event]:
        self._body.append(data)
        self._body_size += len(data)
        if self._body_size >= MAX_ERROR_BODY:
            self._fail_http(now)  # enough to report it
        return []

    def _finish(self, now: float) -> list[Event]:
        if self.phase is Phase.ERROR_BODY:
            return self._fail_http(now)
        events: list[Event] = []
        tail = self._filter.flush() if self._filter is not None else b""
        if tail and self.phase is Phase.STREAMING:
            events = self.parser.feed(tail)
        events += self.parser.close()
        self._end(now)
        return events

    def _lose(self, cause: BaseException, now: float) -> list[Event]:
        if self.phase is Phase.ERROR_BODY:
            return self._fail_http(now, cause)  # what arrived is enough to report it
        events = self._finish(now)
        error = self.parser.error
        if error is not None and error.__cause__ is None:
            error.__cause__ = cause
        return events

    def _expire(self, due: tuple[float, str] | None, now: float) -> list[Event]:
        if due is not None and now >= due[0]:
            kind, limit = due[1], getattr(self.timeouts, due[1])
        else:  # the HTTP client's own read timeout ran out before any deadline
            kind = "first_event" if self.parser.events_seen == 0 else "idle"
            limit = self._read_timeout
        error = timeout_error(kind, limit, position=self.parser.events_seen)
        if self.phase is Phase.ERROR_BODY:
            return self._fail_http(now, error)
        return self._fail_stream(error, now)

    def _fail_stream(self, error: StreamfoldError, now: float) -> list[Event]:
        events = self.parser.fail(error)
        if self.parser.error is error:
            self.error = error
        self._end(now)
        return events

    def _fail_http(self, now: float, cause: BaseException | None = None) -> list[Event]:
        self._end(now)
        error = self._http_error(b"".join(self._body)[:MAX_ERROR_BODY], cause)
        error.__cause__ = cause
        self.error = error
        return []

    def _end(self, now: float) -> None:
        if self.ended_at is None:
            self.ended_at = now
        if self.phase is not Phase.ENDED:
            self._to(Phase.ENDED)
            self.ended = True

    # -- deadlines -----------------------------------------------------------------------

    def _due(self) -> tuple[float, str] | None:
        # The next deadline changes only with the events seen (the idle one
        # moves with the last event): computed once per event, not per read.
        seen = self.parser.events_seen
        if seen == self._due_seen:
            return self._due_value
        timeouts = self.timeouts
        best: tuple[float, str] | None = None
        if timeouts.total is not None:
            best = (self.started + timeouts.total, "total")
        if seen == 0:
            if timeouts.first_event is not None:
                candidate = (self.started + timeouts.first_event, "first_event")
                best = candidate if best is None or candidate[0] < best[0] else best
        elif timeouts.idle is not None:
            candidate = (self.last_event_at + timeouts.idle, "idle")
            best = candidate if best is None or candidate[0] < best[0] else best
        self._due_seen, self._due_value = seen, best
        return best

    # -- metadata and errors -------------------------------------------------------------

    def _dialect(self) -> str | None:
        return self.parser.dialect_name or self._given_dialect

    def _base_metadata(self, head: ResponseHead) -> dict[str, Any]:
        joined: dict[str, str] = {}
        for name, value in head.headers:
            name = name.lower()
            joined[name] = f"{joined[name]}, {value}" if name in joined else value
        headers = {
            name: redact_text(value, self._secrets)
            for name, value in redact_headers(joined).items()
        }
        url = head.requests[-1].url if head.requests else ""
        return {
            "status_code": head.status_code,
            "reason": head.reason,
            "http_version": head.http_version,
            "url": redact_text(redact_url(url), self._secrets),
            "headers": headers,
            "rate_limits": {
                name: value
                for name, value in headers.items()
                if "ratelimit" in name or "rate-limit" in name or name.startswith("retry-after")
            },
            "content_type": headers.get("content-type"),
        }

    def _http_error(self, body: bytes, cause: BaseException | None) -> HTTPResponseError:
        metadata = self.metadata()
        rows = _rows(self._dialect())
        raw = _decode_body(body)
        raw = _first_answer(rows, "unwrap_error", raw) or raw
        code = error_type = provider_message = None
        if isinstance(raw, dict) and ("error" in raw or "message" in raw):
            parsed = provider_error(raw)
            error_type = parsed.error_type
            code = _first_answer(rows, "error_code", raw) or parsed.code
            provider_message = parsed.message
        request_id = metadata.request_id or _first_answer(rows, "error_request_id", raw)
        if request_id != metadata.request_id:
            metadata = msgspec.structs.replace(metadata, request_id=request_id)
        headers = metadata.headers
        retry_after = _retry_after(headers, self._received_at)
        if retry_after is None:
            retry_after = _first_answer(rows, "retry_delay", raw)
        text = body.decode("utf-8", "replace")
        status = metadata.status_code
        head = f"HTTP {status} {metadata.reason}".rstrip()
        wrong_type = self.status_ok
        if wrong_type:
            head += f" with content type {metadata.content_type or '(none)'}, not an event stream"
        detail = provider_message or " ".join(text.split())[:200] or "(empty body)"
        message = f"{head}: {code}: {detail}" if code else f"{head}: {detail}"
        if request_id:
            message += f" (request id {request_id})"
        if retry_after is not None:
            message += f"; retry after {retry_after:g} s"
        if cause is not None:
            message += f"; body cut short: {cause}"
        details: dict[str, Any] = {
            "metadata": metadata,
            "body": text,
            "raw": raw,
            "code": code,
            "error_type": error_type,
            "provider_message": provider_message,
            "retryable": _retryable(status, headers),
            "retry_after": retry_after,
        }
        if wrong_type:
            return ContentTypeError(message, content_type=metadata.content_type, **details)
        return HTTPStatusError(message, **details)


# -- helpers -------------------------------------------------------------------------------


def _refuse_a_key_sent_elsewhere(requests: Sequence[SentRequest]) -> None:
    # A redirect that carried an API key to another origin: the key has left
    # for a party the caller did not name. Folding the answer would hide that.
    if not requests:
        return
    first = requests[0].url
    for request in requests[1:]:
        carried = sorted(KEY_HEADERS & {name.lower() for name, _ in request.headers})
        if carried and not key_may_follow(first, request.url):
            raise UsageError(
                f"a redirect sent the {', '.join(carried)} header from "
                f"{redact_url(first)} to another origin, {redact_url(request.url)}: "
                "the API key went there. streamfold does not fold this response; send "
                "with follow_redirects=False, or through streamfold.client, which drops "
                "key headers on a change of origin (and rotate the key if that origin "
                "is not yours)"
            )


def _with_metadata(result: Result, metadata: ResponseMetadata) -> HTTPResult:
    values = {name: getattr(result, name) for name in Result.__struct_fields__}
    return HTTPResult(**values, metadata=metadata)


def _decode_body(body: bytes) -> Any:
    try:
        return _decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None


def _retry_after(headers: Mapping[str, str], received_at: float) -> float | None:
    # retry-after-ms is OpenAI's finer-grained header (its SDK honours it first).
    milliseconds = _seconds(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000.0
    value = headers.get("retry-after")
    seconds = _seconds(value)
    if seconds is not None or not value:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    try:
        return max(when.timestamp() - received_at, 0.0)
    except (OverflowError, OSError, ValueError):
        return None


def _seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(seconds, 0.0) if seconds == seconds and seconds != float("inf") else None


def _retryable(status: int, headers: Mapping[str, str]) -> bool:
    should = str(headers.get("x-should-retry", "")).strip().lower()
    if should in ("true", "false"):
        return should == "true"
    return status in (408, 409, 429) or status >= 500
