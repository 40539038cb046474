"""Serve events, re-encoded, as an ASGI streaming response (Starlette, FastAPI).

::

    from streamfold.adapters.asgi import EncodedStreamResponse

    @app.post("/api/chat")
    async def chat(request: Request) -> EncodedStreamResponse:
        upstream = streamfold.astream(prompt, model="claude-sonnet-4-5", api="anthropic")
        return EncodedStreamResponse(upstream, "ai-sdk-ui")   # what useChat reads

The response takes the events of any dialect (an ``AsyncEventStream`` from
``streamfold.astream``, ``aiter_events(...)``, any async iterable of events; a
sync iterable is read in a worker thread, one event at a time) and writes them
in the target's format (``streamfold.encode``) with the target's headers:
``content-type``, ``cache-control: no-cache``, ``x-accel-buffering: no`` (so
that nginx does not hold the stream back) and, for the UI message stream,
``x-vercel-ai-ui-message-stream: v1``.

- Keep-alive: after every ``keepalive`` seconds in which nothing was
  written, the target's keep-alive frame (``Encoder.keepalive``: an SSE
  comment, a blank line for Gemini, nothing inside a JSON array) is written,
  so that proxies and clients with idle timeouts do not drop a slow upstream
  (the longest silence a client sees is under twice ``keepalive``).
- Client disconnect: the request's ``receive`` is watched for
  ``http.disconnect`` the whole time; the relay stops at once and the upstream
  is closed (``aclose``; a sync iterator's ``close`` once its pending event
  has arrived), which closes the upstream connection.
- The end: as the encoders end a stream (``streamfold.encode.base``): a
  finished upstream gets the target's terminal frames; an upstream failure is
  the target's in-band error (a provider error, a malformed stream, an
  upstream's HTTP error status raised before any event), and the body ends.
  A cut upstream (a dropped connection, a timeout) stops without the terminal
  marker, and the response is cut too: its ``IncompleteStreamError`` is
  raised, so the server closes the connection without ending the body and
  every client sees a broken stream, as it would from the provider (many,
  the ``openai`` SDK included, take a clean end without ``[DONE]`` for a
  whole answer). Any other exception from the upstream (an ``httpx``
  connection error, a bug) ends the stream with an in-band error that names
  only its class, ends the body, and is then raised for the server to log.

The status is sent before the first event: an upstream failure can only be
in-band.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, cast

import anyio
import anyio.to_thread
from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..encode import Encoder, get
from ..encode.base import CUT_ERRORS
from ..errors import ErrorInfo, IncompleteStreamError, StreamfoldError, UsageError
from ..events import ErrorOccurred, Event

__all__ = ["DEFAULT_KEEPALIVE", "STREAM_HEADERS", "EncodedStreamResponse"]

#: Seconds of silence before a keep-alive frame (as sse-starlette's ping).
DEFAULT_KEEPALIVE = 15.0

#: The headers of every streamed response, whatever the target.
STREAM_HEADERS: Mapping[str, str] = MappingProxyType(
    {"cache-control": "no-cache", "x-accel-buffering": "no"}
)


class EncodedStreamResponse(Response):
    """A streaming response of ``events`` written in ``target``'s format.

    Args:
        events: the events of any dialect: an async iterable (an
            ``AsyncEventStream``), or a sync iterable, read in a worker thread.
        target: the dialect to write (``"ai-sdk-ui"``, ``"openai-chat"``, a
            short name such as ``"chat"``), or an encoder made with options
            (``GeminiEncoder(json_array=True)``).
        keepalive: the seconds without a write after which a keep-alive frame
            is written; ``None`` for none.
        status_code: the HTTP status.
        headers: more headers (they override the target's).
        background: a task to run once the response has been sent.

    Raises:
        UsageError: an unknown target, or a ``keepalive`` that is not a positive number.
    """

    def __init__(
        self,
        events: AsyncIterable[Event] | Iterable[Event],
        target: str | Encoder,
        *,
        keepalive: float | None = DEFAULT_KEEPALIVE,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        if keepalive is not None and not keepalive > 0:
            raise UsageError(f"keepalive must be a positive number of seconds, not {keepalive!r}")
        self.encoder = get(target)() if isinstance(target, str) else target
        self.events = events
        self.keepalive = keepalive
        self.status_code = status_code
        self.media_type = self.encoder.media_type
        self.background = background
        # As StreamingResponse: no body, so no content-length.
        extra = {name.lower(): value for name, value in (headers or {}).items()}
        self.init_headers({**STREAM_HEADERS, **self.encoder.headers, **extra})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the response (the ASGI application's call).

        Raises:
            IncompleteStreamError: the upstream was cut; the body is left
                unended, so the server closes the connection.
            Exception: any other exception of the upstream but streamfold's
                stream errors, once the body has ended with an in-band error.
        """
        events = self.events
        iterator = aiter(events) if isinstance(events, AsyncIterable) else _in_thread(iter(events))
        failure: Exception | None = None
        cut = False
        disconnected = anyio.Event()
        try:
            start = {"type": "http.response.start", "status": self.status_code}
            await send({**start, "headers": self.raw_headers})
            body = _Body(send)
            async with anyio.create_task_group() as group:
                group.start_soon(_watch, receive, group.cancel_scope, disconnected)
                frame = self.encoder.keepalive
                if self.keepalive is not None and frame is not None:
                    group.start_soon(body.keep_alive, self.keepalive, frame)
                try:
                    failure = await self._relay(iterator, body)
                    cut = failure is not None
                except Exception as exc:  # raised once the response has ended (below)
                    failure = exc
                group.cancel_scope.cancel()
            if not (cut or disconnected.is_set()):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            with anyio.CancelScope(shield=True):
                await _close(iterator, events)
        if failure is not None:
            raise failure
        if self.background is not None:
            await self.background()

    async def _relay(self, iterator: AsyncIterator[Event], body: _Body) -> Exception | None:
        """Write the events' bytes; the error of a cut upstream, else ``None``."""
        encoder = self.encoder
        cut: ErrorInfo | None = None
        while True:
            try:
                event = await anext(iterator)
            except StopAsyncIteration:
                break
            except Exception as exc:
                # A stream's failure raised after its error event adds nothing
                # here (the stream has ended); before any event (an HTTP error
                # status, a connect timeout) it is the target's in-band error.
                if isinstance(exc, StreamfoldError) and not isinstance(exc, UsageError):
                    await body.write(_end_with(encoder, exc.info))
                    return exc if exc.info.type in CUT_ERRORS else None
                await body.write(_end_with(encoder, _failed(exc)))
                raise
            if type(event) is ErrorOccurred and event.error.type in CUT_ERRORS:
                cut = event.error
            await body.write(encoder.encode(event))
        await body.write(encoder.close())
        return None if cut is None else IncompleteStreamError(cut.message)


class _Body:
    """The response body's writes. The relay's frames and the keep-alive
    frames share the connection, one send at a time: a keep-alive frame is
    sent only when no frame is, and a frame waits for a keep-alive frame being
    sent (a flag and an event, not a lock per frame: a frame costs its send)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.writes = 0  # frames sent: what the keep-alive watches
        self.sending = False
        self.pinging: anyio.Event | None = None

    async def write(self, data: bytes) -> None:
        if not data:
            return
        while self.pinging is not None:
            await self.pinging.wait()
        self.sending = True
        try:
            await self.send({"type": "http.response.body", "body": data, "more_body": True})
        finally:
            self.sending = False
        self.writes += 1

    async def keep_alive(self, interval: float, frame: bytes) -> None:
        """Write ``frame`` after every ``interval`` seconds in which nothing was written."""
        while True:
            seen = self.writes
            await anyio.sleep(interval)
            if self.writes != seen or self.sending:
                continue
            pinging = self.pinging = anyio.Event()
            try:
                await self.send({"type": "http.response.body", "body": frame, "more_body": True})
            finally:
                self.pinging = None
                pinging.set()


def _failed(exc: Exception) -> ErrorInfo:
    # Named by its class only: an exception's text may hold what the client
    # must not see (a host, a path, a key in a URL).
    return ErrorInfo(type="error", message=f"the upstream failed ({type(exc).__name__})")


def _end_with(encoder: Encoder, error: ErrorInfo) -> bytes:
    """The target's end for a failure (nothing when the stream already ended)."""
    return encoder.encode(ErrorOccurred(error=error)) + encoder.close()


async def _watch(receive: Receive, scope: anyio.CancelScope, disconnected: anyio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            disconnected.set()
            scope.cancel()
            return


async def _close(iterator: AsyncIterator[Event], events: Any) -> None:
    # The iterator first (an async generator's ``finally`` closes what it
    # opened), then the iterable that owns the connection (``AsyncEventStream``).
    for owner in (iterator, events):
        aclose = getattr(owner, "aclose", None)
        if aclose is not None:
            await aclose()


_DONE = object()


async def _in_thread(iterator: Iterator[Event]) -> AsyncIterator[Event]:
    """A sync iterator read in a worker thread, one item per call: a pending
    call cannot be interrupted, so a disconnect closes the iterator once its
    next item has arrived."""
    try:
        while True:
            item = await anyio.to_thread.run_sync(next, iterator, _DONE)
            if item is _DONE:
                return
            yield cast("Event", item)
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(close)
