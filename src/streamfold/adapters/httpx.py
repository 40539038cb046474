"""Fold a streamed ``httpx.Response``: sync and async twins over one ``StreamParser``.

::

    with httpx.Client() as client, client.stream("POST", url, json=body) as response:
        stream = EventStream(response)
        for event in stream:
            ...
        result = stream.final()          # an HTTPResult: Result + metadata
        print(result.metadata.request_id, result.metadata.time_to_first_token)

Before parsing, the response must be a stream: a non-2xx status raises
``HTTPStatusError`` carrying the provider's parsed error body, and a 2xx body
that is not an event stream (a JSON error object on HTTP 200, an HTML page from
a proxy) raises ``ContentTypeError``. ``application/json`` is streamed only when
the body is a JSON array (Gemini's ``streamGenerateContent`` without ``alt=sse``).

Timeouts (``Timeouts``): ``first_event`` and ``idle`` count server-sent events,
not bytes, so keep-alive comments do not hold a stalled stream open. The async
twin enforces each deadline exactly, cancelling the pending read; the sync twin
checks them whenever bytes arrive and otherwise relies on httpx's read timeout
(``streamfold.client`` sets it to the tightest of them).

Leaving the iteration early (``break``, an exception, task cancellation) or
``close()`` closes the response, and with it the connection.

The errors it raises beside the parser's (``HTTPStatusError``,
``ContentTypeError``, ``StreamTimeoutError``) are in the one tree of
``streamfold.errors``; they are re-exported here.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import anyio
import httpx
import msgspec

from ..dialects.base import Dialect, provider_error
from ..errors import (
    ContentTypeError,
    HTTPResponseError,
    HTTPStatusError,
    StreamfoldError,
    StreamTimeoutError,
    TruncatedResponseError,
    UsageError,
    timeout_error,
)
from ..events import Event, ReasoningDelta, RefusalDelta, TextDelta, ToolCallArgumentsDelta
from ..parser import StreamParser
from ..result import HTTPResult, ResponseMetadata, Result

__all__ = [
    "AsyncEventStream",
    "ContentTypeError",
    "EventStream",
    "HTTPResponseError",
    "HTTPResult",
    "HTTPStatusError",
    "ResponseMetadata",
    "StreamTimeoutError",
    "Timeouts",
    "afold_response",
    "fold_response",
    "request_id_of",
]

#: The largest error body read to build an ``HTTPResponseError``, in bytes.
MAX_ERROR_BODY: Final = 64 * 1024

# Request-id headers, most specific first: OpenAI and most compatible servers
# (x-request-id), Anthropic (request-id), OpenAI's alternate spelling, Groq,
# Azure API Management, Azure, Google front ends, OpenRouter's generation id.
REQUEST_ID_HEADERS: Final = (
    "x-request-id",
    "request-id",
    "openai-request-id",
    "x-groq-id",
    "apim-request-id",
    "x-ms-request-id",
    "x-goog-request-id",
    "x-generation-id",
)

# Query parameters that carry credentials (Gemini accepts ?key=); redacted in metadata.
_SECRET_PARAMS: Final = frozenset({"key", "api_key", "api-key", "apikey", "access_token", "token"})
_TOKEN_EVENTS: Final = (TextDelta, ReasoningDelta, RefusalDelta, ToolCallArgumentsDelta)
_WHITESPACE: Final = b" \t\r\n"
_BOM: Final = b"\xef\xbb\xbf"
_decode = msgspec.json.Decoder().decode


# -- configuration, metadata and results ---------------------------------------------


@dataclass(frozen=True)
class Timeouts:
    """The deadlines a streamed response needs, in seconds; ``None`` disables one.

    Attributes:
        connect: establishing the connection (httpx's connect timeout).
        first_event: from sending the request to the first server-sent event.
        idle: the longest gap between two server-sent events.
        total: the whole exchange, from sending the request to the end of the stream.
    """

    connect: float | None = 5.0
    first_event: float | None = 600.0
    idle: float | None = 600.0
    total: float | None = None

    def tightest_read(self) -> float | None:
        """The longest a single read may block before some deadline could pass."""
        values = [v for v in (self.first_event, self.idle, self.total) if v is not None]
        return min(values) if values else None


NO_TIMEOUTS: Final = Timeouts(connect=None, first_event=None, idle=None, total=None)


_RESULT_FIELDS: Final = Result.__struct_fields__


def _with_metadata(result: Result, metadata: ResponseMetadata) -> HTTPResult:
    values = {name: getattr(result, name) for name in _RESULT_FIELDS}
    return HTTPResult(**values, metadata=metadata)


# -- errors --------------------------------------------------------------------------


# -- reading the response's headers ---------------------------------------------------


def request_id_of(headers: httpx.Headers) -> str | None:
    """The provider's request id among ``headers``, or ``None``."""
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return str(value)
    return None


def _rate_limits(headers: httpx.Headers) -> dict[str, str]:
    return {
        name: value
        for name, value in headers.items()
        if "ratelimit" in name or "rate-limit" in name or name.startswith("retry-after")
    }


def _redacted_url(url: httpx.URL) -> str:
    if not url.query:
        return str(url)
    params = [
        (name, "REDACTED" if name.lower() in _SECRET_PARAMS else value)
        for name, value in url.params.multi_items()
    ]
    return str(url.copy_with(params=params))


def _base_metadata(response: httpx.Response) -> dict[str, Any]:
    headers = response.headers
    return {
        "status_code": response.status_code,
        "reason": response.reason_phrase,
        "http_version": response.http_version,
        "url": _redacted_url(response.request.url),
        "headers": dict(headers.items()),
        "request_id": request_id_of(headers),
        "rate_limits": _rate_limits(headers),
        "content_type": headers.get("content-type"),
    }


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_json_media(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


# -- error bodies ----------------------------------------------------------------------


def _decode_body(body: bytes) -> Any:
    try:
        return _decode(body)
    except msgspec.DecodeError:
        return None


def _gemini_array_envelope(raw: Any) -> Any:
    # Gemini's streamGenerateContent without alt=sse wraps even its error in
    # the stream's array: [{"error": {...}}].
    if type(raw) is list and len(raw) == 1 and isinstance(raw[0], dict):
        return raw[0]
    return raw


def _gemini_status_code(code: str | None, error_type: str | None) -> str | None:
    # Gemini's envelope has the HTTP status as a number in "code" and the
    # meaningful name ("RESOURCE_EXHAUSTED", "UNAVAILABLE") in "status".
    if code is not None and code.isdigit() and error_type:
        return error_type
    return code


def _gemini_retry_delay(raw: Any) -> float | None:
    # Gemini states when to retry in the body, not in a header:
    # error.details[] holds a google.rpc.RetryInfo with retryDelay "37s".
    error = raw.get("error") if isinstance(raw, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    if type(details) is not list:
        return None
    for item in details:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = item.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    return float(delay[:-1])
                except ValueError:
                    return None
    return None


def _anthropic_body_request_id(raw: Any) -> str | None:
    # Anthropic repeats the request id inside its error body ("request_id").
    value = raw.get("request_id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) and value else None


def _retry_after(headers: httpx.Headers, raw: Any) -> float | None:
    # retry-after-ms is OpenAI's finer-grained header (its SDK honours it first).
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(float(milliseconds) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return max(float(value), 0.0)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return max(when.timestamp() - time.time(), 0.0)
    return _gemini_retry_delay(raw)


def _retryable(status: int, headers: httpx.Headers) -> bool:
    should = str(headers.get("x-should-retry", "")).strip().lower()
    if should in ("true", "false"):
        return should == "true"
    return status in (408, 409, 429) or status >= 500


def _response_error(
    response: httpx.Response, body: bytes, metadata: ResponseMetadata, *, wrong_type: bool
) -> HTTPResponseError:
    raw = _gemini_array_envelope(_decode_body(body))
    code = error_type = provider_message = None
    envelope = isinstance(raw, dict) and ("error" in raw or "message" in raw)
    if envelope:
        parsed = provider_error(raw)
        error_type = parsed.error_type
        code = _gemini_status_code(parsed.code, error_type)
        provider_message = parsed.message
    request_id = metadata.request_id or _anthropic_body_request_id(raw)
    if request_id != metadata.request_id:
        metadata = msgspec.structs.replace(metadata, request_id=request_id)
    text = body.decode("utf-8", "replace")
    retry_after = _retry_after(response.headers, raw)
    status = response.status_code
    head = f"HTTP {status} {response.reason_phrase}".rstrip()
    if wrong_type:
        head += f" with content type {metadata.content_type or '(none)'}, not an event stream"
    detail = provider_message or " ".join(text.split())[:200] or "(empty body)"
    message = f"{head}: {code}: {detail}" if code else f"{head}: {detail}"
    if request_id:
        message += f" (request id {request_id})"
    if retry_after is not None:
        message += f"; retry after {retry_after:g} s"
    details: dict[str, Any] = {
        "metadata": metadata,
        "body": text,
        "raw": raw,
        "code": code,
        "error_type": error_type,
        "provider_message": provider_message,
        "retryable": _retryable(status, response.headers),
        "retry_after": retry_after,
    }
    if wrong_type:
        return ContentTypeError(message, content_type=metadata.content_type, **details)
    return HTTPStatusError(message, **details)


# -- the sans-IO fold with clocks ------------------------------------------------------


class _Fold:
    """The parser plus what an HTTP exchange adds: a check that the body is a
    stream, timings, deadlines and the errors that end a stream early. No IO: the
    twins feed it chunks and ask it what to do."""

    def __init__(
        self,
        response: httpx.Response,
        dialect: str | type[Dialect],
        strict: bool,
        parse_arguments: bool,
        timeouts: Timeouts | None,
        started_at: float | None,
    ) -> None:
        now = time.monotonic()
        self.parser = StreamParser(dialect, strict=strict, parse_arguments=parse_arguments)
        self.timeouts = timeouts or NO_TIMEOUTS
        self.started = now if started_at is None else started_at
        self.base = _base_metadata(response)
        self.headers_at = None if started_at is None else now
        self.first_byte_at: float | None = None
        self.first_event_at: float | None = None
        self.first_token_at: float | None = None
        self.last_event_at = now
        self.ended_at: float | None = None
        self.bytes = 0
        self.chunks = 0
        self.error: StreamfoldError | None = None  # the failure that ended the stream
        media = _media_type(self.base["content_type"])
        self.status_ok = response.is_success
        self.stream_type = not media or media == "text/event-stream"
        # A JSON body is streamed only when it is an array; its head is held until
        # the first byte that is not whitespace says which.
        self.json_head: bytes | None = b"" if _is_json_media(media) else None
        self.not_a_stream = not self.status_ok or not (
            self.stream_type or self.json_head is not None
        )
        self.rejected: bytes | None = None  # the head of a JSON body that is not an array

    # -- feeding ---------------------------------------------------------------------

    def feed(self, chunk: bytes) -> list[Event]:
        now = time.monotonic()
        if self.first_byte_at is None:
            self.first_byte_at = now
        self.bytes += len(chunk)
        self.chunks += 1
        if self.json_head is not None:
            head = self.json_head + chunk
            first = head.lstrip(_WHITESPACE)
            first = first[3:].lstrip(_WHITESPACE) if first.startswith(_BOM) else first
            if not first:
                self.json_head = head
                return []
            self.json_head = None
            if first[:1] != b"[":
                self.rejected = head
                return []
            chunk = head
        parser = self.parser
        seen = parser.events_seen
        events = parser.feed(chunk)
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

    def finish(self) -> list[Event]:
        """End of body."""
        events = self.parser.close()
        self._end(time.monotonic())
        return events

    def lost(self, cause: BaseException) -> list[Event]:
        """The connection broke mid-body: the stream is incomplete (unless the
        dialect already had its end)."""
        events = self.finish()
        error = self.parser.error
        if error is not None and error.__cause__ is None:
            error.__cause__ = cause
        return events

    def give_up(self, kind: str) -> list[Event]:
        """A deadline passed: end the stream with the timeout (unless it had
        already ended); ``failure()`` is then the timeout."""
        limit = getattr(self.timeouts, kind, None)
        error = timeout_error(kind, limit, position=self.parser.events_seen)
        events = self.parser.fail(error)
        if self.parser.error is error and self.error is None:
            self.error = error
        self._end(time.monotonic())
        return events

    def _end(self, now: float) -> None:
        if self.ended_at is None:
            self.ended_at = now

    # -- deadlines -------------------------------------------------------------------

    def deadline(self) -> tuple[float, str] | None:
        """The next deadline (a ``time.monotonic()`` value) and its kind, or ``None``."""
        timeouts = self.timeouts
        best: tuple[float, str] | None = None
        if timeouts.total is not None:
            best = (self.started + timeouts.total, "total")
        if self.parser.events_seen == 0:
            if timeouts.first_event is not None:
                candidate = (self.started + timeouts.first_event, "first_event")
                best = candidate if best is None or candidate[0] < best[0] else best
        elif timeouts.idle is not None:
            candidate = (self.last_event_at + timeouts.idle, "idle")
            best = candidate if best is None or candidate[0] < best[0] else best
        return best

    def overdue(self) -> str | None:
        """The kind of a deadline already passed, or ``None``."""
        deadline = self.deadline()
        if deadline is not None and time.monotonic() >= deadline[0]:
            return deadline[1]
        return None

    def stalled_kind(self) -> str:
        """Which deadline a read timeout of httpx stands for."""
        deadline = self.deadline()
        if deadline is not None:
            return deadline[1]
        return "first_event" if self.parser.events_seen == 0 else "idle"

    # -- results ---------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def metadata(self) -> ResponseMetadata:
        started = self.started

        def since(moment: float | None) -> float | None:
            return None if moment is None else moment - started

        return ResponseMetadata(
            **self.base,
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
        return _with_metadata(self.parser.snapshot, self.metadata())

    def failure(self) -> StreamfoldError | None:
        """The error that ended the stream, its ``partial`` carrying the metadata."""
        error = self.error or self.parser.error
        if error is not None and not isinstance(error.partial, HTTPResult):
            error.partial = self.snapshot()
        return error

    def final(self, checked: bool) -> HTTPResult:
        error = self.failure()
        if error is not None:
            raise error
        try:
            result = self.parser.final(checked=checked)
        except TruncatedResponseError as exc:
            exc.partial = self.snapshot()
            raise
        return _with_metadata(result, self.metadata())

    def response_error(self, response: httpx.Response, body: bytes) -> HTTPResponseError:
        self._end(time.monotonic())
        return _response_error(response, body, self.metadata(), wrong_type=self.status_ok)


def _describe_response(response: httpx.Response | None, fold: _Fold | None) -> str:
    if response is None:
        return "not connected"
    request = response.request
    url = _redacted_url(request.url)
    state = "closed" if response.is_closed else "open"
    events = f", {fold.parser.events_seen} events" if fold is not None else ""
    return f"{request.method} {url} [{response.status_code}] {state}{events}"


# -- the twins' shared state -------------------------------------------------------------


class _StreamState:
    """What both twins hold: the options, the response once sent, the fold."""

    def _setup(
        self,
        dialect: str | type[Dialect],
        strict: bool,
        parse_arguments: bool,
        timeouts: Timeouts | None,
    ) -> None:
        self._options = (dialect, strict, parse_arguments, timeouts)
        self._response: httpx.Response | None = None
        self._fold: _Fold | None = None
        self._iterated = False
        self._closed = False

    def _attach(self, response: httpx.Response, started_at: float | None) -> None:
        dialect, strict, parse_arguments, timeouts = self._options
        self._response = response
        self._fold = _Fold(response, dialect, strict, parse_arguments, timeouts, started_at)

    def _start_iterating(self) -> None:
        if self._iterated:
            raise UsageError("a stream can be iterated only once; use final() for the result")
        self._iterated = True

    @property
    def snapshot(self) -> HTTPResult:
        """The result folded so far, with the metadata as it stands.

        Raises:
            UsageError: a deferred stream whose request is not sent yet.
        """
        return _require(self._fold).snapshot()

    @property
    def metadata(self) -> ResponseMetadata:
        """The exchange's metadata as it stands.

        Raises:
            UsageError: a deferred stream whose request is not sent yet.
        """
        return _require(self._fold).metadata()

    def _final(self, checked: bool) -> HTTPResult:
        fold = _require(self._fold)
        if not fold.ended:
            fold.finish()  # left early: the stream ends here, incomplete
        return fold.final(checked)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {_describe_response(self._response, self._fold)}>"


# -- the sync twin ---------------------------------------------------------------------


class EventStream(_StreamState):
    """The events, snapshot and final result of a streamed ``httpx.Response``.

    Iterate it once for the events; ``final()`` consumes what is left. Use it as a
    context manager, or ``close()`` it, to release the connection early.

    Args:
        response: a response opened with streaming (``client.stream(...)`` or
            ``client.send(request, stream=True)``).
        dialect: a dialect id or class, or ``"auto"``.
        strict: raise on malformed events (else skip them with a warning).
        parse_arguments: parse tool-call arguments incrementally.
        timeouts: deadlines for the first event, idle gaps and the total time.
        started_at: the ``time.monotonic()`` reading when the request was sent;
            timings count from there (else from now).
    """

    def __init__(
        self,
        response: httpx.Response,
        dialect: str | type[Dialect] = "auto",
        *,
        strict: bool = True,
        parse_arguments: bool = False,
        timeouts: Timeouts | None = None,
        started_at: float | None = None,
    ) -> None:
        self._setup(dialect, strict, parse_arguments, timeouts)
        self._connect: Callable[[], tuple[httpx.Response, float]] | None = None
        self._on_close: Callable[[], None] | None = None
        self._attach(response, started_at)

    @classmethod
    def deferred(
        cls,
        connect: Callable[[], tuple[httpx.Response, float]],
        dialect: str | type[Dialect] = "auto",
        *,
        strict: bool = True,
        parse_arguments: bool = False,
        timeouts: Timeouts | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> EventStream:
        """A stream whose request is sent on first use: ``connect()`` returns the
        response and the ``time.monotonic()`` reading when the request was sent;
        ``on_close`` runs once when the stream closes."""
        self = cls.__new__(cls)
        self._setup(dialect, strict, parse_arguments, timeouts)
        self._connect = connect
        self._on_close = on_close
        return self

    def open(self) -> EventStream:
        """Send the request of a deferred stream (nothing to do otherwise).

        Raises:
            StreamTimeoutError: connecting or waiting for the headers took too long.
            UsageError: the stream was closed.
        """
        if self._fold is None:
            if self._closed or self._connect is None:
                raise UsageError("this stream is closed")
            try:
                response, started = self._connect()
            except BaseException:
                self.close()
                raise
            self._attach(response, started)
        return self

    @property
    def response(self) -> httpx.Response:
        """The ``httpx.Response`` (sending a deferred stream's request)."""
        return self._opened()[1]

    def _opened(self) -> tuple[_Fold, httpx.Response]:
        self.open()
        if self._fold is None or self._response is None:
            raise UsageError("this stream is closed")
        return self._fold, self._response

    def __enter__(self) -> EventStream:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[Event]:
        self._start_iterating()
        return self._events()

    def _events(self) -> Iterator[Event]:
        fold, response = self._opened()
        chunks: Iterator[bytes] | None = None
        try:
            if fold.not_a_stream:
                raise fold.response_error(response, _read_sync(response.iter_bytes()))
            chunks = response.iter_bytes()
            while not self._closed:  # close() from inside the loop ends it quietly
                try:
                    chunk = next(chunks, None)
                except httpx.TimeoutException:
                    yield from fold.give_up(fold.stalled_kind())
                    break
                except (httpx.TransportError, httpx.StreamError) as exc:
                    yield from fold.lost(exc)
                    break
                # A read returns as soon as bytes arrive, so a deadline that
                # passed meanwhile is found here, before the late bytes count.
                kind = fold.overdue()
                if kind is not None:
                    yield from fold.give_up(kind)
                    break
                if chunk is None:
                    yield from fold.finish()
                    break
                yield from fold.feed(chunk)
                if fold.rejected is not None:
                    raise fold.response_error(response, _read_sync(chunks, fold.rejected))
                if fold.ended:
                    break
            error = fold.failure()
            if error is not None:
                raise error
        finally:
            if chunks is not None and hasattr(chunks, "close"):
                chunks.close()
            self.close()

    def final(self, checked: bool = False) -> HTTPResult:
        """The final result, consuming the events not iterated yet.

        Args:
            checked: also fail when the response was cut by a token limit or filter.

        Raises:
            HTTPStatusError: a non-2xx response.
            ContentTypeError: a 2xx body that is not an event stream.
            ProviderError: the stream carried a provider error.
            IncompleteStreamError: the stream ended early (or was closed before its end).
            StreamTimeoutError: a deadline ran out.
            ProtocolError: a malformed stream in strict mode.
            TruncatedResponseError: ``checked`` and the response was cut short.
        """
        if not self._iterated:
            for _ in self:
                pass
        return self._final(checked)

    def close(self) -> None:
        """Close the response and release the connection (idempotent)."""
        if self._response is not None and not self._response.is_closed:
            self._response.close()
        if not self._closed:
            self._closed = True
            if self._on_close is not None:
                self._on_close()


def _read_sync(chunks: Iterator[bytes], head: bytes = b"") -> bytes:
    pieces, size = [head], len(head)
    try:
        for chunk in chunks:
            pieces.append(chunk)
            size += len(chunk)
            if size >= MAX_ERROR_BODY:
                break
    except (httpx.TransportError, httpx.StreamError):
        pass  # what arrived is enough to report the error
    return b"".join(pieces)[:MAX_ERROR_BODY]


def _require(fold: _Fold | None) -> _Fold:
    if fold is None:
        raise UsageError("the request has not been sent yet: iterate the stream or open() it")
    return fold


# -- the async twin --------------------------------------------------------------------


class AsyncEventStream(_StreamState):
    """The async twin of ``EventStream``: ``async for``, ``await final()``,
    ``async with`` and ``await aclose()``.

    Leaving ``async for`` early closes the connection when the abandoned
    generator is finalised (at once under ``async with``, else on the next loop
    iterations); a cancelled task closes it on the way out.
    """

    def __init__(
        self,
        response: httpx.Response,
        dialect: str | type[Dialect] = "auto",
        *,
        strict: bool = True,
        parse_arguments: bool = False,
        timeouts: Timeouts | None = None,
        started_at: float | None = None,
    ) -> None:
        self._setup(dialect, strict, parse_arguments, timeouts)
        self._connect: Callable[[], Awaitable[tuple[httpx.Response, float]]] | None = None
        self._on_close: Callable[[], Awaitable[None]] | None = None
        self._attach(response, started_at)

    @classmethod
    def deferred(
        cls,
        connect: Callable[[], Awaitable[tuple[httpx.Response, float]]],
        dialect: str | type[Dialect] = "auto",
        *,
        strict: bool = True,
        parse_arguments: bool = False,
        timeouts: Timeouts | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncEventStream:
        """The async twin of ``EventStream.deferred``."""
        self = cls.__new__(cls)
        self._setup(dialect, strict, parse_arguments, timeouts)
        self._connect = connect
        self._on_close = on_close
        return self

    async def open(self) -> AsyncEventStream:
        """Send the request of a deferred stream (nothing to do otherwise).

        Raises:
            StreamTimeoutError: connecting or waiting for the headers took too long.
            UsageError: the stream was closed.
        """
        if self._fold is None:
            if self._closed or self._connect is None:
                raise UsageError("this stream is closed")
            try:
                response, started = await self._connect()
            except BaseException:
                await self.aclose()
                raise
            self._attach(response, started)
        return self

    @property
    def response(self) -> httpx.Response:
        """The ``httpx.Response``.

        Raises:
            UsageError: a deferred stream not opened yet.
        """
        if self._response is None:
            raise UsageError("the request has not been sent yet: await open() first")
        return self._response

    async def __aenter__(self) -> AsyncEventStream:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[Event]:
        self._start_iterating()
        return self._events()

    async def _events(self) -> AsyncIterator[Event]:
        await self.open()
        fold, response = self._fold, self._response
        if fold is None or response is None:
            raise UsageError("this stream is closed")
        chunks: AsyncIterator[bytes] | None = None
        watchdog: _Watchdog | None = None
        try:
            if fold.not_a_stream:
                raise fold.response_error(response, await _read_async(response.aiter_bytes()))
            chunks = response.aiter_bytes()
            timed = fold.deadline() is not None
            watchdog = _Watchdog.start(fold) if timed else None
            while not self._closed:  # aclose() from inside the loop ends it quietly
                chunk: bytes | None = None
                try:
                    if watchdog is not None:
                        watchdog.arm()
                        try:
                            chunk = await chunks.__anext__()
                        finally:
                            watchdog.reading = False
                    elif timed:
                        kind = await _read_with_deadline(fold, chunks)
                        if isinstance(kind, str):
                            for event in fold.give_up(kind):
                                yield event
                            break
                        chunk = kind
                    else:
                        chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    pass
                except asyncio.CancelledError:
                    kind = watchdog.claim() if watchdog is not None else None
                    if kind is None:
                        raise
                    for event in fold.give_up(kind):
                        yield event
                    break
                except httpx.TimeoutException:
                    for event in fold.give_up(fold.stalled_kind()):
                        yield event
                    break
                except (httpx.TransportError, httpx.StreamError) as exc:
                    for event in fold.lost(exc):
                        yield event
                    break
                if chunk is None:
                    for event in fold.finish():
                        yield event
                    break
                for event in fold.feed(chunk):
                    yield event
                if fold.rejected is not None:
                    body = await _read_async(chunks, fold.rejected)
                    raise fold.response_error(response, body)
                if fold.ended:
                    break
            error = fold.failure()
            if error is not None:
                raise error
        finally:
            if watchdog is not None:
                watchdog.stop()
            with anyio.CancelScope(shield=True):
                if chunks is not None and hasattr(chunks, "aclose"):
                    await chunks.aclose()
                await self.aclose()

    async def final(self, checked: bool = False) -> HTTPResult:
        """The async twin of ``EventStream.final`` (same errors)."""
        if not self._iterated:
            async for _ in self:
                pass
        return self._final(checked)

    async def aclose(self) -> None:
        """Close the response and release the connection (idempotent)."""
        if self._response is not None and not self._response.is_closed:
            await self._response.aclose()
        if not self._closed:
            self._closed = True
            if self._on_close is not None:
                await self._on_close()


class _Watchdog:
    """Deadlines for the async twin on asyncio, at almost no cost per read.

    One timer per stream, armed at the nearest deadline and re-armed lazily
    when it fires early (the idle deadline moves with every event), so a read
    costs a comparison rather than a timer of its own. When a deadline has truly
    passed while the task awaits a read, the task is cancelled; ``claim()`` then
    tells that cancellation from one that came from outside. Off asyncio (trio),
    each read gets an anyio cancel scope instead.
    """

    __slots__ = ("armed_at", "fired", "fold", "handle", "loop", "reading", "task")

    def __init__(
        self, fold: _Fold, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]
    ) -> None:
        self.fold = fold
        self.loop = loop
        self.task = task
        self.handle: asyncio.TimerHandle | None = None
        self.armed_at = float("inf")
        self.reading = False
        self.fired: str | None = None

    @classmethod
    def start(cls, fold: _Fold) -> _Watchdog | None:
        """A watchdog for the current asyncio task, or ``None`` off asyncio."""
        try:
            task = asyncio.current_task()
        except RuntimeError:
            return None
        if task is None:
            return None
        return cls(fold, task.get_loop(), task)

    def arm(self) -> None:
        """Before a read: make sure a timer is due no later than the deadline."""
        deadline = self.fold.deadline()
        if deadline is not None:
            when = self.loop.time() + (deadline[0] - time.monotonic())
            if when < self.armed_at:
                if self.handle is not None:
                    self.handle.cancel()
                self.handle = self.loop.call_at(when, self._fire)
                self.armed_at = when
        self.reading = True

    def _fire(self) -> None:
        self.handle = None
        self.armed_at = float("inf")
        deadline = self.fold.deadline()
        if not self.reading or deadline is None:
            return  # the next read arms it again
        remaining = deadline[0] - time.monotonic()
        if remaining > 0:
            self.armed_at = self.loop.time() + remaining
            self.handle = self.loop.call_at(self.armed_at, self._fire)
            return
        self.fired = deadline[1]
        self.task.cancel()

    def claim(self) -> str | None:
        """After a ``CancelledError``: the deadline's kind when the cancellation
        was this watchdog's alone, else ``None`` (re-raise it)."""
        kind, self.fired = self.fired, None
        if kind is None:
            return None
        uncancel = getattr(self.task, "uncancel", None)  # Python 3.11+
        if uncancel is not None and uncancel() > 0:
            return None  # cancelled from outside as well
        return kind

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None


async def _read_with_deadline(fold: _Fold, chunks: AsyncIterator[bytes]) -> bytes | str | None:
    # Off asyncio: the read under an anyio cancel scope. Returns the chunk,
    # None at the end, or the kind of the deadline that passed.
    deadline = fold.deadline()
    if deadline is None:
        return await _next_or_none(chunks)
    remaining = deadline[0] - time.monotonic()
    with anyio.CancelScope(deadline=anyio.current_time() + remaining) as scope:
        return await _next_or_none(chunks)
    if scope.cancelled_caught:
        return deadline[1]
    return None  # pragma: no cover - the scope only exits early by cancellation


async def _next_or_none(chunks: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await chunks.__anext__()
    except StopAsyncIteration:
        return None


async def _read_async(chunks: AsyncIterator[bytes], head: bytes = b"") -> bytes:
    pieces, size = [head], len(head)
    try:
        async for chunk in chunks:
            pieces.append(chunk)
            size += len(chunk)
            if size >= MAX_ERROR_BODY:
                break
    except (httpx.TransportError, httpx.StreamError):
        pass  # what arrived is enough to report the error
    return b"".join(pieces)[:MAX_ERROR_BODY]


# -- one-call folds --------------------------------------------------------------------


def fold_response(
    response: httpx.Response,
    dialect: str | type[Dialect] = "auto",
    *,
    strict: bool = True,
    checked: bool = False,
    timeouts: Timeouts | None = None,
    started_at: float | None = None,
) -> HTTPResult:
    """Fold a whole streamed response: ``EventStream(response, ...).final()``.

    Raises:
        The errors of ``EventStream.final``.
    """
    stream = EventStream(response, dialect, strict=strict, timeouts=timeouts, started_at=started_at)
    return stream.final(checked=checked)


async def afold_response(
    response: httpx.Response,
    dialect: str | type[Dialect] = "auto",
    *,
    strict: bool = True,
    checked: bool = False,
    timeouts: Timeouts | None = None,
    started_at: float | None = None,
) -> HTTPResult:
    """The async twin of ``fold_response``."""
    stream = AsyncEventStream(
        response, dialect, strict=strict, timeouts=timeouts, started_at=started_at
    )
    return await stream.final(checked=checked)
