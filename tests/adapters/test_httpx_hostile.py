"""Hostile servers over real sockets, sync and async, with httpx and httpx2:
no deadline outlived by a slow or stalled body, and no secret shown.

The servers here stall for far longer than any deadline (and are stopped when
the test ends): a deadline that did not hold would show as a completed body or
the wrong error, not as a slow test. Nothing is timed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

import msgspec
import pytest

import streamfold
from streamfold import samples
from streamfold.adapters.client import NO_KEY, astream, stream
from streamfold.adapters.httpx import (
    AsyncEventStream,
    ContentTypeError,
    EventStream,
    HTTPStatusError,
    StreamTimeoutError,
    Timeouts,
)
from streamfold.events import Event

from .rawserver import END_CHUNKS, RawServer, Script, chunked, response_head

MODES = ["sync", "async"]
KEY = "sk-ant-LEAKCHECK-0123456789abcdef"
FOREVER = 60.0  # a stall no deadline here comes near; the server stops with the test
SSE = {"content-type": "text/event-stream", "transfer-encoding": "chunked"}
BLOCKS = [b + b"\n\n" for b in samples.read("chat-reasoning").split(b"\n\n") if b.strip()]


def run_adapter(
    mode: str, lib: ModuleType, url: str, timeouts: Timeouts, **request: Any
) -> tuple[list[Event], BaseException | None]:
    """Fold the response of a client of ``lib`` with no read timeout: only the
    adapters' deadlines can end a stalled read."""
    events: list[Event] = []
    timeout = lib.Timeout(5.0, read=None)

    def sync() -> None:
        with (
            lib.Client(timeout=timeout) as client,
            client.stream("POST", url, **request) as response,
        ):
            for event in EventStream(response, timeouts=timeouts):
                events.append(event)

    async def run_async() -> None:
        async with (
            lib.AsyncClient(timeout=timeout) as client,
            client.stream("POST", url, **request) as response,
        ):
            async for event in AsyncEventStream(response, timeouts=timeouts):
                events.append(event)

    try:
        sync() if mode == "sync" else asyncio.run(run_async())
    except streamfold.StreamfoldError as exc:
        return events, exc
    return events, None


def trickle(body: bytes, every: float) -> list[tuple[float, bytes]]:
    return [(every, chunk) for chunk in chunked(*(body[i : i + 1] for i in range(len(body))))]


ERROR_JSON = b'{"error": {"message": "Rate limit reached for requests", "code": "rate_limit"}}'

BODIES: list[Any] = [
    pytest.param(
        lambda head: [
            (0, response_head(429, {"content-type": "application/json", "content-length": "400"})),
            (0, ERROR_JSON[:30]),
            (FOREVER, b""),
        ],
        HTTPStatusError,
        "first_event",
        id="stalled-error-body",
    ),
    pytest.param(
        lambda head: [
            (0, response_head(500, {"content-type": "application/json", **SSE})),
            *trickle(ERROR_JSON, 0.2),
        ],
        HTTPStatusError,
        "first_event",
        id="trickled-error-body",
    ),
    pytest.param(
        lambda head: [
            (
                0,
                response_head(
                    200, {"content-type": "application/json", "transfer-encoding": "chunked"}
                ),
            ),
            *trickle(ERROR_JSON, 0.2),
        ],
        ContentTypeError,
        "first_event",
        id="trickled-json-error-object-on-200",
    ),
    pytest.param(
        lambda head: [
            (0, response_head(200, {"content-type": "text/html", "transfer-encoding": "chunked"})),
            (0, chunked(b"<html>")[0]),
            (FOREVER, b""),
        ],
        ContentTypeError,
        "first_event",
        id="stalled-html-page",
    ),
    pytest.param(
        lambda head: [(0, response_head(200, SSE)), *trickle(BLOCKS[0] * 4, 0.2)],
        StreamTimeoutError,
        "first_event",  # bytes keep coming, no event completes
        id="trickled-stream",
    ),
    pytest.param(
        lambda head: [(0, response_head(200, SSE)), (0, b"5\r\ndata:"), (FOREVER, b"")],
        StreamTimeoutError,
        "first_event",
        id="headers-and-a-few-bytes-then-a-stall",
    ),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("script", "error_type", "kind"), BODIES)
def test_no_body_outlives_a_deadline(
    lib: ModuleType, mode: str, script: Script, error_type: type[Exception], kind: str
) -> None:
    timeouts = Timeouts(first_event=0.6, idle=0.3, total=1.2)
    with RawServer(script) as server:
        _, error = run_adapter(mode, lib, server.url, timeouts)
    assert isinstance(error, error_type), error
    timeout = error if isinstance(error, StreamTimeoutError) else error.__cause__
    assert isinstance(timeout, StreamTimeoutError), error
    assert timeout.kind == kind


def _late_first_event(head: bytes) -> list[tuple[float, bytes]]:
    # The first event after 1.5 s, then the rest at once: longer than idle,
    # shorter than first_event.
    return [
        (0, response_head(200, SSE)),
        (1.5, chunked(*BLOCKS)[0]),
        (0, b"".join(chunked(*BLOCKS)[1:]) + END_CHUNKS),
    ]


def _late_head(head: bytes) -> list[tuple[float, bytes]]:
    return [(1.5, response_head(200, SSE)), (0, b"".join(chunked(*BLOCKS)) + END_CHUNKS)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("script", [_late_first_event, _late_head], ids=["late-event", "late-head"])
def test_before_the_first_event_the_client_waits_first_event_not_idle(
    mode: str, script: Script
) -> None:
    # Timeouts(first_event=5, idle=1): a first event (or head) after 1.5 s is in time.
    timeouts = Timeouts(first_event=5, idle=1)
    with RawServer(script) as server:
        options: dict[str, Any] = {"model": "m", "base_url": server.url, "api_key": NO_KEY}
        if mode == "sync":
            result = stream("hi", timeouts=timeouts, **options).final()
        else:
            result = asyncio.run(astream("hi", timeouts=timeouts, **options).final())
    assert result.complete and result.text == streamfold.fold(samples.read("chat-reasoning")).text


@pytest.mark.parametrize("mode", MODES)
def test_the_client_ends_a_stall_after_the_head(mode: str) -> None:
    timeouts = Timeouts(first_event=1, idle=1, total=2)

    def script(head: bytes) -> list[tuple[float, bytes]]:
        return [(0, response_head(200, SSE)), (0, b"3\r\n: x\r\n"), (FOREVER, b"")]

    with RawServer(script) as server:
        options: dict[str, Any] = {"model": "m", "base_url": server.url, "api_key": NO_KEY}
        with pytest.raises(StreamTimeoutError) as caught:
            if mode == "sync":
                stream("hi", timeouts=timeouts, **options).final()
            else:
                asyncio.run(astream("hi", timeouts=timeouts, **options).final())
    assert caught.value.kind == "first_event" and caught.value.timeout == 1


# -- secrets ---------------------------------------------------------------------------------


def _echo_key(status: int) -> Script:
    # A server that echoes the key it was sent: in a header and in the body.
    def script(head: bytes) -> list[tuple[float, bytes]]:
        sent = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"x-api-key:")
        )
        if status != 200:
            body = (
                b'{"type":"error","error":{"type":"authentication_error","message":"bad key '
                + sent
                + b'"}}'
            )
            headers = {
                "content-type": "application/json",
                "x-echo": sent.decode(),
                "content-length": str(len(body)),
            }
            return [(0, response_head(status, headers) + body)]
        event = (
            b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
            b'"message":"key ' + sent + b' is overloaded"}}\n\n'
        )
        return [
            (0, response_head(200, {**SSE, "x-echo": sent.decode()})),
            *[(0, c) for c in chunked(event[:40], event[40:])],
            (0, END_CHUNKS),
        ]

    return script


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("status", [401, 200], ids=["error-body", "in-band-error"])
def test_a_key_echoed_back_is_never_shown(
    mode: str, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    events: list[Event] = []
    with RawServer(_echo_key(status)) as server:
        options: dict[str, Any] = {
            "model": "claude-x",
            "api": "anthropic",
            "base_url": server.url.replace("http://", f"http://user:{KEY}@"),
            "api_key": KEY,
        }
        live: Any = stream("hi", **options) if mode == "sync" else astream("hi", **options)

        async def consume() -> None:
            async for event in live:
                events.append(event)

        with pytest.raises(streamfold.StreamfoldError) as caught:
            if mode == "sync":
                events.extend(live)
            else:
                asyncio.run(consume())
        assert server.header(0, "x-api-key") == KEY  # it was sent, and echoed
    error = caught.value
    metadata = getattr(error, "metadata", None) or getattr(error.partial, "metadata", None)
    assert metadata is not None and metadata.headers["x-echo"] == "REDACTED"
    texts = [
        str(error),
        repr(error),
        repr(vars(error)),
        repr(live),
        repr(metadata),
        msgspec.json.encode(metadata).decode(),
        repr(error.partial),
        *(msgspec.json.encode(event).decode() for event in events),
        # streamfold's own log lines; the HTTP libraries' DEBUG lines print the
        # headers the server sent, and their INFO line a URL's password.
        *(r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))),
    ]
    assert all(KEY not in text for text in texts)
    assert "REDACTED" in str(error)


@pytest.mark.parametrize("mode", MODES)
def test_a_password_in_the_url_is_never_shown(lib: ModuleType, mode: str) -> None:
    with RawServer(_answer) as server:
        url = server.url.replace("http://", f"http://alice:{KEY}@") + "/v1?key=" + KEY
        shown: list[str] = []

        def sync() -> None:
            with lib.Client() as client, client.stream("POST", url) as response:
                live = EventStream(response)
                shown.append(repr(live))
                shown.append(msgspec.json.encode(live.final().metadata).decode())

        async def run_async() -> None:
            async with lib.AsyncClient() as client, client.stream("POST", url) as response:
                live = AsyncEventStream(response)
                shown.append(repr(live))
                shown.append(msgspec.json.encode((await live.final()).metadata).decode())

        sync() if mode == "sync" else asyncio.run(run_async())
    assert shown and all(KEY not in text for text in shown)
    assert "alice:REDACTED@" in shown[0] and "key=REDACTED" in shown[1]


# -- redirects and key headers ----------------------------------------------------------------


def _redirect_to(target: Callable[[], str]) -> Script:
    return lambda head: [(0, response_head(307, {"location": target(), "content-length": "0"}))]


def _answer(head: bytes) -> list[tuple[float, bytes]]:
    return [(0, response_head(200, SSE)), (0, b"".join(chunked(*BLOCKS)) + END_CHUNKS)]


@pytest.mark.parametrize("mode", MODES)
def test_a_response_whose_redirect_carried_the_key_elsewhere_is_refused(
    lib: ModuleType, mode: str
) -> None:
    # httpx and httpx2 strip only Authorization on a change of origin: with
    # follow_redirects=True, x-api-key reached the other server. The adapter
    # says so rather than fold the other origin's answer.
    with (
        RawServer(_answer) as other,
        RawServer(_redirect_to(lambda: other.url + "/v1/messages")) as first,
    ):
        headers = {"x-api-key": KEY}
        with pytest.raises(streamfold.UsageError, match="another origin") as caught:
            if mode == "sync":
                with (
                    lib.Client(follow_redirects=True) as client,
                    client.stream("POST", first.url, headers=headers) as response,
                ):
                    EventStream(response)
            else:

                async def run() -> None:
                    async with (
                        lib.AsyncClient(follow_redirects=True) as client,
                        client.stream("POST", first.url, headers=headers) as response,
                    ):
                        AsyncEventStream(response)

                asyncio.run(run())
        assert other.header(0, "x-api-key") == KEY  # the library's doing, not ours
    assert KEY not in str(caught.value) and "x-api-key" in str(caught.value)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("api", ["anthropic", "gemini", "chat"])
def test_the_client_never_sends_the_key_to_another_origin(
    lib: ModuleType, mode: str, api: str
) -> None:
    with (
        RawServer(_answer) as other,
        RawServer(_redirect_to(lambda: other.url + "/elsewhere")) as first,
    ):
        options: dict[str, Any] = {
            "model": "chat-reasoning",
            "api": api,
            "base_url": first.url,
            "api_key": KEY,
        }

        def sync() -> Any:
            with lib.Client(follow_redirects=True) as client:
                return stream("hi", http_client=client, **options).final()

        async def run_async() -> Any:
            async with lib.AsyncClient(follow_redirects=True) as client:
                return await astream("hi", http_client=client, **options).final()

        # The chat recording folds; the other APIs' dialects may not read it.
        with contextlib.suppress(streamfold.StreamfoldError):
            sync() if mode == "sync" else asyncio.run(run_async())
        assert len(first.requests) == 1 and len(other.requests) == 1
        assert KEY in first.requests[0].decode()
        assert KEY not in other.requests[0].decode()


@pytest.mark.parametrize("mode", MODES)
def test_the_client_keeps_the_key_on_a_same_origin_redirect(lib: ModuleType, mode: str) -> None:
    def script(head: bytes) -> list[tuple[float, bytes]]:
        if head.startswith(b"POST /v1/messages "):
            return [(0, response_head(308, {"location": "/v2/messages", "content-length": "0"}))]
        return _answer(head)

    with RawServer(script) as server:
        options: dict[str, Any] = {
            "model": "m",
            "api": "anthropic",
            "base_url": server.url,
            "api_key": KEY,
        }
        try:
            if mode == "sync":
                with lib.Client(follow_redirects=True) as client:
                    stream("hi", http_client=client, **options).final()
            else:

                async def run() -> None:
                    async with lib.AsyncClient(follow_redirects=True) as client:
                        await astream("hi", http_client=client, **options).final()

                asyncio.run(run())
        except streamfold.StreamfoldError:
            pass  # a chat recording on an Anthropic route: only the requests matter
        assert [r.split(b" ", 2)[1] for r in server.requests] == [b"/v1/messages", b"/v2/messages"]
        assert server.header(1, "x-api-key") == KEY
