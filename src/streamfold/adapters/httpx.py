"""Fold a streamed HTTP response of httpx or httpx2: sync and async twins over
one ``Exchange``.

::

    with httpx2.Client() as client, client.stream("POST", url, json=body) as response:
        stream = EventStream(response)
        for event in stream:
            ...
        result = stream.final()          # an HTTPResult: Result + metadata
        print(result.metadata.request_id, result.metadata.time_to_first_token)

A response of either library works (``StreamedResponse`` is what the adapters
use of it); this module imports neither: the errors to catch are taken from
the library of the response handed in. The decisions (is the body a stream,
the error it is when not, metadata, every deadline, secrets) are the
``Exchange``'s, in ``streamfold.adapters.exchange``; the twins here read the
body and hand it each outcome with the time. They mirror each other line for
line and differ only by ``async``/``await`` and the read primitive.

Deadlines (``Timeouts``) bound every read, error bodies included. A read that
outlives one is interrupted by a watchdog: the async twin's cancels the
pending read (on asyncio one lazily re-armed timer per stream; elsewhere a
cancel scope per read), the sync twin's shuts the connection's socket down
(one thread for all streams), which wakes a blocked read at once. Where there
is no socket to shut (HTTP/2, a mock or custom transport), the sync twin checks
the deadlines whenever a read returns and the HTTP client's read timeout bounds
silence. Leaving the iteration early (``break``, an exception, task
cancellation) or ``close()`` closes the response, and with it the connection.

The errors (``HTTPStatusError``, ``ContentTypeError``, ``StreamTimeoutError``
and the parser's) are the one tree of ``streamfold.errors``; the HTTP
library's transport errors while reading become ``IncompleteStreamError``
(the library's error as ``__cause__``) or ``StreamTimeoutError``.

A stream made on a response the caller sent is never retried nor resumed:
the caller owns the request. A deferred stream (``streamfold.client``'s) is
given what it needs to send it again: the exchange says when (``retry``,
``reconnect``), the twins wait and send.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import itertools
import random
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Protocol

import anyio

from ..dialects.base import Dialect
from ..dialects.registry import Reattach
from ..errors import (
    ContentTypeError,
    HTTPResponseError,
    HTTPStatusError,
    StreamfoldError,
    StreamTimeoutError,
    UsageError,
)
from ..events import Event
from ..result import Attempt, HTTPResult, ResponseMetadata
from ..structured import OutputType
from . import otel
from .exchange import (
    MAX_ERROR_BODY,
    STALLED,
    Exchange,
    Lost,
    Read,
    Reconnect,
    ResponseHead,
    RetryPolicy,
    SentRequest,
    Timeouts,
    request_id_of,
    retry_attempt,
)

__all__ = [
    "MAX_ERROR_BODY",
    "AsyncEventStream",
    "ContentTypeError",
    "EventStream",
    "HTTPResponseError",
    "HTTPResult",
    "HTTPStatusError",
    "Resending",
    "ResponseMetadata",
    "StreamTimeoutError",
    "StreamedResponse",
    "Timeouts",
    "afold_response",
    "fold_response",
    "request_id_of",
]


# -- what the adapters use of a response (httpx.Response and httpx2.Response both) --------


class _Headers(Protocol):
    def multi_items(self) -> list[tuple[str, str]]: ...


class _Request(Protocol):
    @property
    def method(self) -> str: ...
    @property
    def url(self) -> object: ...
    @property
    def headers(self) -> _Headers: ...
    @property
    def extensions(self) -> Mapping[str, Any]: ...


class _Hop(Protocol):
    @property
    def request(self) -> _Request: ...


class StreamedResponse(Protocol):
    """What the adapters use of a streamed response: ``httpx.Response`` and
    ``httpx2.Response`` are both one, as is any object with these members."""

    @property
    def status_code(self) -> int: ...
    @property
    def reason_phrase(self) -> str: ...
    @property
    def http_version(self) -> str: ...
    @property
    def headers(self) -> _Headers: ...
    @property
    def request(self) -> _Request: ...
    @property
    def history(self) -> Sequence[_Hop]: ...
    @property
    def extensions(self) -> Mapping[str, Any]: ...
    @property
    def is_closed(self) -> bool: ...
    def iter_bytes(self) -> Iterator[bytes]: ...
    def aiter_bytes(self) -> AsyncIterator[bytes]: ...
    def close(self) -> None: ...
    async def aclose(self) -> None: ...


def _head_of(response: StreamedResponse) -> ResponseHead:
    sent = [*(hop.request for hop in response.history), response.request]
    timeout = response.request.extensions.get("timeout")
    read = timeout.get("read") if isinstance(timeout, Mapping) else None
    return ResponseHead(
        status_code=response.status_code,
        reason=response.reason_phrase,
        http_version=response.http_version,
        headers=response.headers.multi_items(),
        requests=[SentRequest(r.method, str(r.url), r.headers.multi_items()) for r in sent],
        received_at=time.time(),
        read_timeout=float(read) if isinstance(read, (int, float)) else None,
    )


@dataclass(frozen=True)
class _Errors:
    """The exceptions of one HTTP library, as the read primitives catch them."""

    timeout: tuple[type[BaseException], ...] = ()  # its read timed out
    failure: tuple[type[BaseException], ...] = ()  # the connection or the body broke


_ERRORS: dict[str, _Errors] = {}


def _errors_of(response: object) -> _Errors:
    # The library the response comes from (httpx, httpx2), already imported:
    # its TimeoutException, and its RequestError (transport and decoding
    # errors) and StreamError.
    for cls in type(response).__mro__:
        package = cls.__module__.partition(".")[0]
        errors = _ERRORS.get(package)
        if errors is None:
            module = sys.modules.get(package)
            found = [getattr(module, name, None) for name in _ERROR_NAMES]
            classes = [c for c in found if isinstance(c, type) and issubclass(c, BaseException)]
            if len(classes) != len(found):
                continue
            errors = _ERRORS[package] = _Errors((classes[0],), (classes[1], classes[2]))
        return errors
    return _Errors()


_ERROR_NAMES: Final = ("TimeoutException", "RequestError", "StreamError")


# -- watchdogs: interrupt a read that outlives the deadline ----------------------------------


class _Watchdog:
    """Armed before every read at the exchange's deadline; a timer checks it
    then and, if the deadline has truly passed while the read is pending,
    interrupts the read (``fired``). Re-armed lazily: a read only compares
    numbers, and a timer is set only when the deadline comes nearer (the idle
    deadline moves with every event); one that fires early sets itself again.
    Deadlines are ``time.monotonic()`` readings."""

    __slots__ = ("armed_at", "deadline", "fired", "reading")

    def __init__(self) -> None:
        self.armed_at = float("inf")
        self.deadline = float("inf")
        self.reading = False
        self.fired = False

    def arm(self, deadline: float | None) -> None:
        """Before a read: the deadline it must not outlive."""
        self.deadline = float("inf") if deadline is None else deadline
        self.reading = True
        if self.deadline < self.armed_at:
            self.armed_at = self.deadline
            self._schedule(self.deadline)

    def due(self) -> None:
        """The timer set for ``armed_at`` went off."""
        self.armed_at = float("inf")
        if not self.reading or self.deadline == float("inf"):
            return  # the next read arms it again
        if time.monotonic() < self.deadline:
            self.armed_at = self.deadline
            self._schedule(self.deadline)
            return
        self.fired = True
        self._interrupt()

    def _schedule(self, when: float) -> None:
        raise NotImplementedError

    def _interrupt(self) -> None:
        raise NotImplementedError


class _SocketWatchdog(_Watchdog):
    """The sync twin's: shuts the connection's socket down, which wakes the
    thread blocked reading it at once (closing the response from another
    thread would not: a blocked read outlives ``close()``, and the descriptor
    could be reused meanwhile). The read then fails, and is taken for the
    deadline."""

    __slots__ = ("socket",)

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.socket: socket.socket | None = sock

    @classmethod
    def start(cls, response: StreamedResponse, exchange: Exchange) -> _SocketWatchdog | None:
        """A watchdog for ``response``, or ``None`` when it has no deadline or no
        socket of its own to shut (HTTP/2 shares one between streams)."""
        if not exchange.timed or response.http_version not in ("HTTP/1.1", "HTTP/1.0"):
            return None
        stream = response.extensions.get("network_stream")
        get_extra_info = getattr(stream, "get_extra_info", None)
        sock = get_extra_info("socket") if callable(get_extra_info) else None
        return cls(sock) if isinstance(sock, socket.socket) else None

    def _schedule(self, when: float) -> None:
        _TIMERS.schedule(when, self)

    def _interrupt(self) -> None:
        sock = self.socket
        if sock is not None:
            # The plain socket's shutdown, also under TLS: it leaves the SSL
            # object to the reading thread. Already closed: the read has ended.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def stop(self) -> None:
        self.reading = False
        self.socket = None


class _Timers:
    """One daemon thread that runs the sync watchdogs' timers, earliest first."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._heap: list[tuple[float, int, _Watchdog]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, when: float, watchdog: _Watchdog) -> None:
        with self._ready:
            heapq.heappush(self._heap, (when, next(self._order), watchdog))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="streamfold-watchdog", daemon=True
                )
                self._thread.start()
            if self._heap[0][2] is watchdog:
                self._ready.notify()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._ready.wait(wait)
                watchdog = heapq.heappop(self._heap)[2]
            watchdog.due()


_TIMERS: Final = _Timers()


class _TaskWatchdog(_Watchdog):
    """The async twin's on asyncio: cancels the task awaiting the read;
    ``claim()`` then tells that cancellation from one that came from outside."""

    __slots__ = ("handle", "loop", "task")

    def __init__(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
        super().__init__()
        self.loop = loop
        self.task = task
        self.handle: asyncio.TimerHandle | None = None

    @classmethod
    def start(cls, exchange: Exchange) -> _TaskWatchdog | None:
        """A watchdog for the current asyncio task, or ``None`` when there is no
        deadline or no asyncio task (trio: a cancel scope per read instead)."""
        if not exchange.timed:
            return None
        try:
            task = asyncio.current_task()
        except RuntimeError:
            return None
        return cls(task.get_loop(), task) if task is not None else None

    def _schedule(self, when: float) -> None:
        if self.handle is not None:
            self.handle.cancel()
        self.handle = self.loop.call_at(self.loop.time() + (when - time.monotonic()), self._due)

    def _due(self) -> None:
        self.handle = None
        self.due()

    def _interrupt(self) -> None:
        self.task.cancel()

    def claim(self) -> bool:
        """After a ``CancelledError``: whether it was this watchdog's alone."""
        fired, self.fired = self.fired, False
        if not fired:
            return False
        uncancel = getattr(self.task, "uncancel", None)  # Python 3.11+
        return not (uncancel is not None and uncancel() > 0)  # else cancelled from outside too

    def stop(self) -> None:
        self.reading = False
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None


# -- the read primitives -------------------------------------------------------------------


class _SyncBody:
    """The next read of a sync body, as the exchange takes it (``Read``)."""

    def __init__(self, response: StreamedResponse, watchdog: _SocketWatchdog | None) -> None:
        self.chunks = response.iter_bytes()
        self.errors = _errors_of(response)
        self.watchdog = watchdog

    def read(self, deadline: float | None) -> Read:
        watchdog = self.watchdog
        if watchdog is not None:
            watchdog.arm(deadline)
        try:
            chunk: Read = next(self.chunks, b"")
        except self.errors.timeout:
            return STALLED
        except self.errors.failure as exc:
            chunk = Lost(exc)
        finally:
            if watchdog is not None:
                watchdog.reading = False
        return STALLED if watchdog is not None and watchdog.fired else chunk

    def close(self) -> None:
        if self.watchdog is not None:
            self.watchdog.stop()
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()


class _AsyncBody:
    """The next read of an async body, as the exchange takes it (``Read``)."""

    def __init__(self, response: StreamedResponse, watchdog: _TaskWatchdog | None) -> None:
        self.chunks = response.aiter_bytes()
        self.errors = _errors_of(response)
        self.watchdog = watchdog

    async def read(self, deadline: float | None) -> Read:
        watchdog = self.watchdog
        if watchdog is not None:
            watchdog.arm(deadline)
        try:
            if watchdog is None and deadline is not None:
                chunk: Read = await self._scoped(deadline)
            else:
                chunk = await self.chunks.__anext__()
        except StopAsyncIteration:
            chunk = b""
        except asyncio.CancelledError:
            if watchdog is None or not watchdog.claim():
                raise
            return STALLED
        except self.errors.timeout:
            return STALLED
        except self.errors.failure as exc:
            chunk = Lost(exc)
        finally:
            if watchdog is not None:
                watchdog.reading = False
        return chunk

    async def _scoped(self, deadline: float) -> Read:
        # No asyncio task to cancel (trio): this read under a cancel scope.
        with anyio.move_on_after(deadline - time.monotonic()):
            return await self.chunks.__anext__()
        return STALLED

    async def aclose(self) -> None:
        if self.watchdog is not None:
            self.watchdog.stop()
        aclose = getattr(self.chunks, "aclose", None)
        if aclose is not None:
            await aclose()


# The waits before a retry or a re-attachment, looked up when waited: a
# test's fake clock replaces them, so no test sleeps.
_sleep: Callable[[float], None] = time.sleep
_asleep: Callable[[float], Awaitable[None]] = anyio.sleep


def _ns(started_at: float | None) -> int:
    # A time.monotonic() reading as wall-clock nanoseconds (a span's start).
    now = time.time_ns()
    return now if started_at is None else now - int((time.monotonic() - started_at) * 1e9)


# -- the twins' shared state ---------------------------------------------------------------


@dataclass(frozen=True)
class Resending:
    """What a deferred stream needs to send its request again (the client's).

    Attributes:
        policy: when to send it again and how often to re-attach.
        resume: re-attach a stream cut after its first events.
        reattach: the API's own re-attach request, if it has one.
    """

    policy: RetryPolicy
    resume: bool = False
    reattach: Reattach | None = None


class _StreamState:
    """What both twins hold: the options, the response once sent, the exchange."""

    def _setup(
        self,
        dialect: str | type[Dialect],
        strict: bool,
        parse_arguments: bool,
        parse_content: bool,
        timeouts: Timeouts | None,
        resending: Resending | None = None,
        telemetry: otel.Telemetry | None = None,
        output_type: Any = None,
        tool_types: Mapping[str, Any] | None = None,
    ) -> None:
        self._options = (dialect, strict, parse_arguments, parse_content, timeouts)
        # Compiled once (an unsupported type fails here), for every attempt's parser.
        self._types = (
            None if output_type is None else OutputType(output_type),
            {name: OutputType(tp) for name, tp in (tool_types or {}).items()},
        )
        self._resending = resending
        self._attempts: tuple[Attempt, ...] = ()  # those that failed and were retried
        self._first_sent: float | None = None  # the first attempt's: the total deadline's start
        self._response: StreamedResponse | None = None
        self._exchange: Exchange | None = None
        self._iterated = False
        self._closed = False
        self._telemetry = otel.GLOBAL if telemetry is None else telemetry
        self._recording: otel._Recording | None = None
        self._error: BaseException | None = None  # what ended the stream, if it raised
        self._described: otel.GenAIRequest | None = None  # a deferred stream's request

    def _record_start(
        self, request: otel.GenAIRequest | Callable[[], otel.GenAIRequest], started_ns: int
    ) -> None:
        # The stream's span and metrics, from its first request (when configured).
        self._recording = self._telemetry.start(request, started_ns)

    def _begin_recording(self) -> None:
        # A deferred stream: recorded from its first request on.
        described = self._described
        if described is not None and self._recording is None:
            self._record_start(described, time.time_ns())

    def _adapter_request(self, response: StreamedResponse) -> otel.GenAIRequest:
        # A response the caller sent: what its request says.
        request = response.request
        try:
            content = getattr(request, "content", None)
        except Exception:  # the library's RequestNotRead: a streamed body is read once
            content = None
        dialect = self._options[0]
        api = dialect if isinstance(dialect, str) and dialect != "auto" else None
        if api is None and not isinstance(dialect, str):
            api = dialect.name or None
        body = content if isinstance(content, bytes) else None
        return otel.request_of(str(request.url), body, api)

    def _record_end(self) -> None:
        # Once, as the stream closes: what it ended with.
        recording, self._recording = self._recording, None
        if recording is None:
            return
        exchange = self._exchange
        if exchange is None:
            recording.end(
                dialect=None,
                metadata=None,
                unified=None,
                response_id=None,
                response_model=None,
                first_token=None,
                error=self._error,
            )
            return
        started = exchange.started_event
        cancelled = self._error is None and not exchange.ended
        recording.end(
            dialect=exchange.parser.dialect_name,
            metadata=exchange.metadata(),
            unified=exchange.parser.acc.unified(),
            response_id=started.id if started is not None else None,
            response_model=started.model if started is not None else None,
            first_token=exchange.first_token_at,
            error=self._error or exchange.failure,
            cancelled=cancelled,
        )

    def _attach(self, response: StreamedResponse, started_at: float | None) -> None:
        dialect, strict, parse_arguments, parse_content, timeouts = self._options
        resending = self._resending
        exchange = Exchange(
            _head_of(response),
            dialect,
            strict=strict,
            parse_arguments=parse_arguments,
            parse_content=parse_content,
            output_type=self._types[0],
            tool_types=self._types[1],
            timeouts=timeouts,
            started=started_at,
            now=time.monotonic(),
            first_sent=self._first_sent,
            retry=resending.policy if resending is not None else None,
            attempts=self._attempts,
            resume=resending is not None and resending.resume,
            reattach=resending.reattach if resending is not None else None,
        )
        self._response, self._exchange = response, exchange

    def _retry_after(self, error: StreamfoldError) -> float | None:
        # An attempt that failed before any response: the wait before the
        # next one, recorded, when the policy sends the request again (and
        # the wait ends before the total deadline).
        policy = self._resending.policy if self._resending is not None else None
        timeouts = self._options[4]
        total = timeouts.total if timeouts is not None else None
        budget = None
        if total is not None and self._first_sent is not None:
            budget = self._first_sent + total - time.monotonic()
        attempt = retry_attempt(policy, error, self._attempts, random.random(), budget=budget)
        if attempt is None or attempt.delay is None:
            return None
        self._attempts = (*self._attempts, attempt)
        return attempt.delay

    def _sent(self) -> tuple[Exchange, StreamedResponse]:
        if self._exchange is None or self._response is None:
            raise UsageError("the request has not been sent yet: open() the stream first")
        if self._closed:
            raise UsageError("this stream is closed")
        return self._exchange, self._response

    def _start_iterating(self) -> None:
        if self._iterated:
            raise UsageError("a stream can be iterated only once; use final() for the result")
        self._iterated = True

    @property
    def response(self) -> StreamedResponse:
        """The HTTP response.

        Raises:
            UsageError: a deferred stream whose request is not sent yet (enter
                the stream's ``with`` block, or ``open()`` it, first).
        """
        if self._response is None:
            raise UsageError("the request has not been sent yet: open() the stream first")
        return self._response

    @property
    def snapshot(self) -> HTTPResult:
        """The result folded so far, with the metadata as it stands.

        Raises:
            UsageError: a deferred stream whose request is not sent yet.
        """
        return self._require().snapshot()

    @property
    def metadata(self) -> ResponseMetadata:
        """The exchange's metadata as it stands.

        Raises:
            UsageError: a deferred stream whose request is not sent yet.
        """
        return self._require().metadata()

    def partial_arguments(self, index: int, choice: int = 0) -> Any:
        """The arguments of tool call ``index`` parsed as far as they have
        arrived, as ``StreamParser.partial_arguments`` gives them.

        Returns:
            The partial value, ``partial_json.MISSING`` before any value started,
            or ``None`` when no such call exists.

        Raises:
            UsageError: a deferred stream whose request is not sent yet.
            PartialJSONError: the arguments so far are not a prefix of valid JSON.
        """
        return self._require().parser.partial_arguments(index, choice)

    def partial_output(self, choice: int = 0) -> Any:
        """``StreamParser.partial_output``: the answer as the ``output_type`` so far.

        Raises:
            UsageError: a deferred stream whose request is not sent yet.
        """
        return self._require().parser.partial_output(choice)

    def partial_tool_output(self, index: int, choice: int = 0) -> Any:
        """``StreamParser.partial_tool_output``: tool call ``index``'s arguments as
        its tool's type (``tool_types``) so far.

        Raises:
            UsageError: a deferred stream whose request is not sent yet.
        """
        return self._require().parser.partial_tool_output(index, choice)

    def _require(self) -> Exchange:
        if self._exchange is None:
            raise UsageError("the request has not been sent yet: open() the stream first")
        return self._exchange

    def _final(self, checked: bool) -> HTTPResult:
        exchange = self._require()
        exchange.abandon(time.monotonic())  # left early: the stream ends here, incomplete
        return exchange.final(checked)

    def __repr__(self) -> str:
        exchange, response = self._exchange, self._response
        if exchange is None or response is None:
            return f"<{type(self).__name__} not connected>"
        state = "closed" if response.is_closed else "open"
        events = exchange.parser.events_seen
        return f"<{type(self).__name__} {exchange.describe()} {state}, {events} events>"


# -- the sync twin -------------------------------------------------------------------------


class EventStream(_StreamState):
    """The events, snapshot and final result of a streamed response (httpx or httpx2).

    Iterate it once for the events; ``final()`` consumes what is left. Use it as a
    context manager, or ``close()`` it, to release the connection early.

    Args:
        response: a response opened with streaming (``client.stream(...)`` or
            ``client.send(request, stream=True)``).
        dialect: a dialect id or class, or ``"auto"``.
        strict: raise on malformed events (else skip them with a warning).
        parse_arguments: parse tool-call arguments incrementally (the updates on
            ``tool_call.arguments.delta`` events).
        parse_content: parse answer text as JSON incrementally (JSON mode,
            structured output): updates on ``text.delta``, the value on ``text.done``.
        output_type: the answer's type (JSON mode, structured output), and
        tool_types: a type per tool name: the stream follows them as
            ``StreamParser`` does (``output.updated`` events,
            ``partial_output()``, ``partial_tool_output()``, ``result.output``).
        timeouts: deadlines for the first event, idle gaps and the total time.
        started_at: the ``time.monotonic()`` reading when the request was sent;
            timings and deadlines count from there (else from now).

    Raises:
        UsageError: an unknown dialect, or the response came through a redirect
            that carried an API key header to another origin.
        UnsupportedSchemaError: an output type ``streamfold.structured`` does not support.
    """

    def __init__(
        self,
        response: StreamedResponse,
        dialect: str | type[Dialect] = "auto",
        *,
        strict: bool = True,
        parse_arguments: bool = False,
        parse_content: bool = False,
        timeouts: Timeouts | None = None,
        started_at: float | None = None,
        telemetry: otel.Telemetry | None = None,
        output_type: Any = None,
        tool_types: Mapping[str, Any] | None = None,
    ) -> None:
        self._setup(
            dialect,
            strict,
            parse_arguments,
            parse_content,
            timeouts,
            telemetry=telemetry,
            output_type=output_type,
            tool_types=tool_types,
        )
        self._record_start(functools.partial(self._adapter_request, response), _ns(started_at))
        self._connect: Callable[[], tuple[StreamedResponse, float]] | None = None
        self._reconnect: Callable[[Reconnect], tuple[StreamedResponse, float]] | None = None
        self._on_close: Callable[[], None] | None = None
        self._body: _SyncBody | None = None
        self._attach(response, started_at)

    @classmethod
    def deferred(
        cls,
        connect: Callable[[], tuple[StreamedResponse, float]],
        dialect: str | type[Dialect] = "auto",
        *,
        strict: bool = True,
        parse_arguments: bool = False,
        parse_content: bool = False,
        timeouts: Timeouts | None = None,
        on_close: Callable[[], None] | None = None,
        resending: Resending | None = None,
        reconnect: Callable[[Reconnect], tuple[StreamedResponse, float]] | None = None,
        telemetry: otel.Telemetry | None = None,
        request: otel.GenAIRequest | None = None,
        output_type: Any = None,
        tool_types: Mapping[str, Any] | None = None,
    ) -> EventStream:
        """A stream whose request is sent on first use: ``connect()`` returns the
        response and the ``time.monotonic()`` reading when the request was sent;
        ``on_close`` runs once when the stream closes. With ``resending``,
        ``connect()`` is called again for each retry, and ``reconnect(plan)``
        sends each re-attach request. ``request`` describes it for telemetry."""
        self = cls.__new__(cls)
        self._setup(
            dialect,
            strict,
            parse_arguments,
            parse_content,
            timeouts,
            resending,
            telemetry,
            output_type=output_type,
            tool_types=tool_types,
        )
        self._described = request
        self._connect = connect
        self._reconnect = reconnect
        self._on_close = on_close
        self._body = None
        return self

    def open(self) -> EventStream:
        """Send the request of a deferred stream (nothing to do otherwise).

        Raises:
            StreamTimeoutError: connecting or waiting for the headers took too long.
            IncompleteStreamError: the connection failed (the HTTP library's
                error is its ``__cause__``).
            UsageError: the stream was closed.
        """
        if self._exchange is None:
            if self._closed or self._connect is None:
                raise UsageError("this stream is closed")
            self._begin_recording()
            try:
                self._attach(*self._send())
            except BaseException as exc:
                self._error = exc
                self.close()
                raise
        return self

    def _send(self) -> tuple[StreamedResponse, float]:
        # connect(), again after a failure before any response when the
        # policy says so.
        assert self._connect is not None  # pragma: no cover - open() checked it
        if self._first_sent is None:
            self._first_sent = time.monotonic()
        while True:
            try:
                return self._connect()
            except StreamfoldError as exc:
                delay = self._retry_after(exc)
                if delay is None:
                    raise
            if delay:
                _sleep(delay)

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

    def _begin(self) -> tuple[Exchange, _SyncBody]:
        self.open()
        exchange, response = self._sent()
        self._body = _SyncBody(response, _SocketWatchdog.start(response, exchange))
        return exchange, self._body

    def _events(self) -> Iterator[Event]:
        exchange, body = self._begin()
        try:
            while not self._closed:  # close() inside the loop ends it
                while not exchange.ended and exchange.reconnect is None and not self._closed:
                    read = body.read(exchange.deadline)
                    yield from exchange.receive(read, time.monotonic())
                if self._closed:
                    break
                if exchange.retry is not None:
                    exchange, body = self._again(exchange)
                elif exchange.reconnect is not None:
                    yield from self._reattach(exchange)
                    body = self._body or body
                else:
                    break
            exchange.raise_failure()
        except StreamfoldError as exc:
            self._error = exc
            raise
        finally:
            self.close()

    def _again(self, exchange: Exchange) -> tuple[Exchange, _SyncBody]:
        # A failure before any event that is sent again, in a new exchange.
        self._attempts = exchange.attempts
        delay = exchange.retry.delay if exchange.retry is not None else None
        self._release()
        if delay:
            _sleep(delay)
        self._attach(*self._send())
        return self._begin()

    def _reattach(self, exchange: Exchange) -> Iterator[Event]:
        # A cut stream: the re-attach requests the exchange plans, until one
        # answers or it gives up (then its last events end the stream).
        self._release()
        while (plan := exchange.reconnect) is not None and self._reconnect is not None:
            if plan.delay:
                _sleep(plan.delay)
            try:
                response, sent_at = self._reconnect(plan)
            except StreamfoldError as exc:
                yield from exchange.reattach_failed(exc, time.monotonic())
                continue
            self._response = response
            exchange.reattached(_head_of(response), sent_at=sent_at, now=time.monotonic())
            self._body = _SyncBody(response, _SocketWatchdog.start(response, exchange))
            return
        if exchange.reconnect is not None:  # pragma: no cover - a plan needs reconnect
            yield from exchange.reattach_failed(UsageError("no way to re-attach"), time.monotonic())

    def _release(self) -> None:
        # The body and response of the current connection, closed.
        if self._body is not None:
            self._body.close()
            self._body = None
        if self._response is not None and not self._response.is_closed:
            self._response.close()

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
        self._record_end()
        self._release()
        if not self._closed:
            self._closed = True
            if self._on_close is not None:
                self._on_close()


# -- the async twin ------------------------------------------------------------------------


class AsyncEventStream(_StreamState):
    """The async twin of ``EventStream``: ``async for``, ``await final()``,
    ``async with`` and ``await aclose()``; the same arguments and errors.

    Leaving ``async for`` early closes the connection when the abandoned
    generator is finalised (at once under ``async with``, else on the next loop
    iterations); a cancelled task closes it on the way out.
    """

    def __init__(
        self,
        response: StreamedResponse,
        dialect: str | type[Dialect] = "auto",
        *,
        strict: bool = True,
        parse_arguments: bool = False,
        parse_content: bool = False,
        timeouts: Timeouts | None = None,
        started_at: float | None = None,
        telemetry: otel.Telemetry | None = None,
        output_type: Any = None,
        tool_types: Mapping[str, Any] | None = None,
    ) -> None:
        self._setup(
            dialect,
            strict,
            parse_arguments,
            parse_content,
            timeouts,
            telemetry=telemetry,
            output_type=output_type,
            tool_types=tool_types,
        )
        self._record_start(functools.partial(self._adapter_request, response), _ns(started_at))
        self._connect: Callable[[], Awaitable[tuple[StreamedResponse, float]]] | None = None
        self._reconnect: Callable[[Reconnect], Awaitable[tuple[StreamedResponse, float]]] | None = (
            None
        )
        self._on_close: Callable[[], Awaitable[None]] | None = None
        self._body: _AsyncBody | None = None
        self._attach(response, started_at)

    @classmethod
    def deferred(
        cls,
        connect: Callable[[], Awaitable[tuple[StreamedResponse, float]]],
        dialect: str | type[Dialect] = "auto",
        *,
        strict: bool = True,
        parse_arguments: bool = False,
        parse_content: bool = False,
        timeouts: Timeouts | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
        resending: Resending | None = None,
        reconnect: Callable[[Reconnect], Awaitable[tuple[StreamedResponse, float]]] | None = None,
        telemetry: otel.Telemetry | None = None,
        request: otel.GenAIRequest | None = None,
        output_type: Any = None,
        tool_types: Mapping[str, Any] | None = None,
    ) -> AsyncEventStream:
        """The async twin of ``EventStream.deferred``."""
        self = cls.__new__(cls)
        self._setup(
            dialect,
            strict,
            parse_arguments,
            parse_content,
            timeouts,
            resending,
            telemetry,
            output_type=output_type,
            tool_types=tool_types,
        )
        self._described = request
        self._connect = connect
        self._reconnect = reconnect
        self._on_close = on_close
        self._body = None
        return self

    async def open(self) -> AsyncEventStream:
        """The async twin of ``EventStream.open`` (same errors)."""
        if self._exchange is None:
            if self._closed or self._connect is None:
                raise UsageError("this stream is closed")
            self._begin_recording()
            try:
                self._attach(*await self._send())
            except BaseException as exc:
                self._error = exc
                await self.aclose()
                raise
        return self

    async def _send(self) -> tuple[StreamedResponse, float]:
        # The async twin of EventStream._send.
        assert self._connect is not None  # pragma: no cover - open() checked it
        if self._first_sent is None:
            self._first_sent = time.monotonic()
        while True:
            try:
                return await self._connect()
            except StreamfoldError as exc:
                delay = self._retry_after(exc)
                if delay is None:
                    raise
            if delay:
                await _asleep(delay)

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

    async def _begin(self) -> tuple[Exchange, _AsyncBody]:
        await self.open()
        exchange, response = self._sent()
        self._body = _AsyncBody(response, _TaskWatchdog.start(exchange))
        return exchange, self._body

    async def _events(self) -> AsyncIterator[Event]:
        exchange, body = await self._begin()
        try:
            while not self._closed:  # aclose() inside the loop ends it
                while not exchange.ended and exchange.reconnect is None and not self._closed:
                    read = await body.read(exchange.deadline)
                    for event in exchange.receive(read, time.monotonic()):
                        yield event
                if self._closed:
                    break
                if exchange.retry is not None:
                    exchange, body = await self._again(exchange)
                elif exchange.reconnect is not None:
                    async for event in self._reattach(exchange):
                        yield event
                    body = self._body or body
                else:
                    break
            exchange.raise_failure()
        except StreamfoldError as exc:
            self._error = exc
            raise
        finally:
            await self.aclose()

    async def _again(self, exchange: Exchange) -> tuple[Exchange, _AsyncBody]:
        # The async twin of EventStream._again.
        self._attempts = exchange.attempts
        delay = exchange.retry.delay if exchange.retry is not None else None
        await self._release()
        if delay:
            await _asleep(delay)
        self._attach(*await self._send())
        return await self._begin()

    async def _reattach(self, exchange: Exchange) -> AsyncIterator[Event]:
        # The async twin of EventStream._reattach.
        await self._release()
        while (plan := exchange.reconnect) is not None and self._reconnect is not None:
            if plan.delay:
                await _asleep(plan.delay)
            try:
                response, sent_at = await self._reconnect(plan)
            except StreamfoldError as exc:
                for event in exchange.reattach_failed(exc, time.monotonic()):
                    yield event
                continue
            self._response = response
            exchange.reattached(_head_of(response), sent_at=sent_at, now=time.monotonic())
            self._body = _AsyncBody(response, _TaskWatchdog.start(exchange))
            return
        if exchange.reconnect is not None:  # pragma: no cover - a plan needs reconnect
            for event in exchange.reattach_failed(UsageError("no way to re-attach"), 0.0):
                yield event

    async def _release(self) -> None:
        # The async twin of EventStream._release.
        with anyio.CancelScope(shield=True):
            if self._body is not None:
                await self._body.aclose()
                self._body = None
            if self._response is not None and not self._response.is_closed:
                await self._response.aclose()

    async def final(self, checked: bool = False) -> HTTPResult:
        """The async twin of ``EventStream.final`` (same errors)."""
        if not self._iterated:
            async for _ in self:
                pass
        return self._final(checked)

    async def aclose(self) -> None:
        """Close the response and release the connection (idempotent; shielded
        from cancellation, so a cancelled task still releases it)."""
        with anyio.CancelScope(shield=True):
            self._record_end()
            await self._release()
            if not self._closed:
                self._closed = True
                if self._on_close is not None:
                    await self._on_close()


# -- one-call folds ------------------------------------------------------------------------


def fold_response(
    response: StreamedResponse,
    dialect: str | type[Dialect] = "auto",
    *,
    strict: bool = True,
    checked: bool = False,
    timeouts: Timeouts | None = None,
    started_at: float | None = None,
    output_type: Any = None,
    tool_types: Mapping[str, Any] | None = None,
) -> HTTPResult:
    """Fold a whole streamed response: ``EventStream(response, ...).final()``.

    Raises:
        The errors of ``EventStream.final``.
    """
    stream = EventStream(
        response,
        dialect,
        strict=strict,
        timeouts=timeouts,
        started_at=started_at,
        output_type=output_type,
        tool_types=tool_types,
    )
    return stream.final(checked=checked)


async def afold_response(
    response: StreamedResponse,
    dialect: str | type[Dialect] = "auto",
    *,
    strict: bool = True,
    checked: bool = False,
    timeouts: Timeouts | None = None,
    started_at: float | None = None,
    output_type: Any = None,
    tool_types: Mapping[str, Any] | None = None,
) -> HTTPResult:
    """The async twin of ``fold_response`` (same errors)."""
    stream = AsyncEventStream(
        response,
        dialect,
        strict=strict,
        timeouts=timeouts,
        started_at=started_at,
        output_type=output_type,
        tool_types=tool_types,
    )
    return await stream.final(checked=checked)
