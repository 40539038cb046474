"""The HTTP adapters over real loopback sockets (the replay server), sync and
async, with httpx and with httpx2, fault by fault; and the response checks,
metadata and timeouts over the libraries' mock transports."""

from __future__ import annotations

import asyncio
import gzip
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import httpx
import msgspec
import pytest

import streamfold
from streamfold import (
    IncompleteStreamError,
    ProtocolError,
    ProviderError,
    Result,
    StreamParser,
    UsageError,
    samples,
)
from streamfold.adapters.httpx import (
    AsyncEventStream,
    ContentTypeError,
    EventStream,
    HTTPResult,
    HTTPStatusError,
    StreamTimeoutError,
    Timeouts,
    afold_response,
    fold_response,
)
from streamfold.adapters.server import ReplayServer, split_events
from streamfold.events import Event, TextDelta

CHAT = "/v1/chat/completions"
MODES = [pytest.param("sync", id="sync"), pytest.param("async", id="async")]


# -- running one request, either way ------------------------------------------------------------


@dataclass
class Outcome:
    result: HTTPResult | None
    error: BaseException | None
    events: list[Event]
    response: Any
    elapsed: float


def _fetch_sync(
    lib: ModuleType,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    timeouts: Timeouts | None,
) -> Outcome:
    # The client's own timeouts are the libraries' defaults (5 s): the
    # adapters hold shorter deadlines themselves.
    events: list[Event] = []
    started = time.monotonic()
    with (
        lib.Client() as client,
        client.stream("POST", url, json=body, headers=headers) as response,
    ):
        stream = EventStream(response, timeouts=timeouts, started_at=started)
        try:
            for event in stream:
                events.append(event)
            result = stream.final()
        except streamfold.StreamfoldError as exc:
            return Outcome(None, exc, events, response, time.monotonic() - started)
    return Outcome(result, None, events, response, time.monotonic() - started)


async def _fetch_async(
    lib: ModuleType,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    timeouts: Timeouts | None,
) -> Outcome:
    events: list[Event] = []
    started = time.monotonic()
    async with (
        lib.AsyncClient() as client,
        client.stream("POST", url, json=body, headers=headers) as response,
    ):
        stream = AsyncEventStream(response, timeouts=timeouts, started_at=started)
        try:
            async for event in stream:
                events.append(event)
            result = await stream.final()
        except streamfold.StreamfoldError as exc:
            return Outcome(None, exc, events, response, time.monotonic() - started)
    return Outcome(result, None, events, response, time.monotonic() - started)


def fetch(
    mode: str,
    server: ReplayServer,
    recording: str,
    fault: str = "none",
    *,
    lib: ModuleType = httpx,
    path: str = CHAT,
    pace: str = "fast",
    timeouts: Timeouts | None = None,
) -> Outcome:
    headers = {"x-streamfold-fault": fault, "x-streamfold-pace": pace}
    body = {"model": recording, "stream": True}
    url = server.url + path
    if mode == "sync":
        return _fetch_sync(lib, url, body, headers, timeouts)
    return asyncio.run(_fetch_async(lib, url, body, headers, timeouts))


def folded(name: str) -> Result:
    """The sample folded from its bytes by the core, with no HTTP."""
    return streamfold.fold(samples.read(name))


def folded_prefix(name: str, events: int) -> Result:
    """The sample's first ``events`` events folded by the core, then closed."""
    parser = StreamParser()
    seen = 0
    for block in split_events(samples.read(name)):
        if seen == events:
            break
        parser.feed(block)
        seen += any(line.startswith(b"data") for line in block.splitlines())
    parser.close()
    return parser.snapshot


def same_fold(result: Result, expected: Result) -> None:
    assert result.response == expected.response
    assert result.unified == expected.unified
    assert result.dialect == expected.dialect


# -- the core stays free of IO ----------------------------------------------------------------


def test_the_core_imports_no_http_server_loop_or_renderer() -> None:
    code = (
        "import sys, streamfold, streamfold.cli\n"
        "banned = ('httpx', 'httpcore', 'h11', 'anyio', 'asyncio', 'starlette', 'uvicorn', "
        "'rich')\n"
        "print(','.join(m for m in banned if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""


# -- faults over real sockets, sync and async ---------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["chat-reasoning", "chat-parallel-tools"])
def test_a_clean_stream_folds_as_the_bytes_do(
    lib: ModuleType, replay_server: ReplayServer, mode: str, name: str
) -> None:
    outcome = fetch(mode, replay_server, name, lib=lib)
    assert outcome.error is None and outcome.result is not None
    same_fold(outcome.result, folded(name))
    assert outcome.result.complete
    assert outcome.response.is_closed


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("split", ["utf8", "crlf", "bytes", "3"])
def test_hostile_splits_fold_identically(
    lib: ModuleType, replay_server: ReplayServer, mode: str, split: str
) -> None:
    outcome = fetch(mode, replay_server, "chat-reasoning", f"split={split}", lib=lib)
    assert outcome.result is not None, outcome.error
    same_fold(outcome.result, folded("chat-reasoning"))
    metadata = outcome.result.metadata
    assert metadata is not None
    # The cuts reached the client as separate reads (chunked encoding keeps them).
    assert metadata.chunks_received > metadata.events_received
    deltas = [e.delta for e in outcome.events if isinstance(e, TextDelta)]
    assert "".join(deltas) == folded("chat-reasoning").text
    assert not any("\ufffd" in d for d in deltas)


@pytest.mark.parametrize("mode", MODES)
def test_a_dropped_connection_is_incomplete_with_the_partial(
    lib: ModuleType, replay_server: ReplayServer, mode: str
) -> None:
    outcome = fetch(mode, replay_server, "chat-reasoning", "drop-after=50", lib=lib)
    error = outcome.error
    assert isinstance(error, IncompleteStreamError)
    assert not isinstance(error, StreamTimeoutError)
    assert isinstance(error.__cause__, lib.RemoteProtocolError)
    partial = error.partial
    assert isinstance(partial, HTTPResult) and partial.metadata is not None
    expected = folded_prefix("chat-reasoning", 50)
    assert partial.unified.reasoning == expected.unified.reasoning
    assert partial.unified.text == expected.unified.text != ""
    assert partial.metadata.events_received == 50
    assert outcome.events[-1].type == "error"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("fault", "timeouts", "kind", "events"),
    [
        pytest.param("stall=2, stall-after=3", Timeouts(idle=0.2), "idle", 3, id="idle"),
        pytest.param(
            "stall=2, stall-after=0", Timeouts(first_event=0.2), "first_event", 0, id="first-event"
        ),
        pytest.param(
            "stall=2, stall-after=5", Timeouts(total=0.25, idle=5), "total", 5, id="total"
        ),
    ],
)
def test_a_stall_beyond_a_deadline_times_out_with_the_partial(
    lib: ModuleType,
    replay_server: ReplayServer,
    mode: str,
    fault: str,
    timeouts: Timeouts,
    kind: str,
    events: int,
) -> None:
    outcome = fetch(mode, replay_server, "chat-reasoning", fault, timeouts=timeouts, lib=lib)
    error = outcome.error
    assert isinstance(error, StreamTimeoutError), error
    assert isinstance(error, IncompleteStreamError)  # code retrying cut streams retries these
    assert error.kind == kind
    partial = error.partial
    assert isinstance(partial, HTTPResult) and partial.error == error.info
    expected = folded_prefix("chat-reasoning", events).unified
    # The same fold, ended by the timeout rather than by the end of the bytes.
    assert msgspec.structs.replace(partial.unified, error=None) == msgspec.structs.replace(
        expected, error=None
    )
    assert partial.unified.error is not None and partial.unified.error.type == "timeout"
    assert partial.metadata is not None and partial.metadata.events_received == events
    request_id = partial.metadata.request_id
    assert replay_server.request(request_id).wait(2) == "disconnected"


@pytest.mark.parametrize("mode", MODES)
def test_a_malformed_event_is_a_protocol_error(
    lib: ModuleType, replay_server: ReplayServer, mode: str
) -> None:
    outcome = fetch(mode, replay_server, "chat-reasoning", "malformed-after=4", lib=lib)
    error = outcome.error
    assert isinstance(error, ProtocolError)
    assert error.position == 4
    assert "malformed" in error.excerpt
    assert error.partial is not None
    assert error.partial.unified.reasoning == folded_prefix("chat-reasoning", 4).unified.reasoning


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("fault", "code", "message"),
    [
        pytest.param("error-after=40", "server_error", "The server had an error", id="openai"),
        pytest.param(
            "error-after=40, provider=openrouter",
            "server_error",
            "Provider disconnected unexpectedly",
            id="openrouter",
        ),
    ],
)
def test_an_in_band_error_on_http_200_is_a_provider_error(
    lib: ModuleType, replay_server: ReplayServer, mode: str, fault: str, code: str, message: str
) -> None:
    outcome = fetch(mode, replay_server, "chat-reasoning", fault, lib=lib)
    error = outcome.error
    assert isinstance(error, ProviderError)
    assert error.code == code and message in error.provider_message
    assert error.retryable
    assert outcome.response.status_code == 200
    assert error.partial is not None
    assert error.partial.unified.reasoning == folded_prefix("chat-reasoning", 40).unified.reasoning


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("path", "fault", "status", "code", "message", "retry_after"),
    [
        pytest.param(
            CHAT,
            "status=429",
            429,
            "rate_limit_exceeded",
            "Rate limit reached",
            1.0,
            id="openai-chat-429",
        ),
        pytest.param(
            "/v1/responses",
            "status=500",
            500,
            "server_error",
            "The server had an error",
            None,
            id="openai-responses-500",
        ),
        pytest.param(
            CHAT,
            "status=503, provider=openrouter",
            503,
            "503",
            "No available model provider",
            1.0,
            id="openrouter-503",
        ),
        pytest.param(
            "/v1/messages",
            "status=529",
            529,
            "overloaded_error",
            "Overloaded",
            1.0,
            id="anthropic-529",
        ),
        pytest.param(
            "/v1/messages",
            "status=429, retry-after=30",
            429,
            "rate_limit_error",
            "rate limit",
            30.0,
            id="anthropic-429",
        ),
        pytest.param(
            "/v1beta/models/gemini-thinking:streamGenerateContent?alt=sse",
            "status=429, retry-after=2",
            429,
            "RESOURCE_EXHAUSTED",
            "quota",
            2.0,
            id="gemini-429",
        ),
        pytest.param(
            "/v1beta/models/gemini-thinking:streamGenerateContent?alt=sse",
            "status=500",
            500,
            "INTERNAL",
            "internal error",
            None,
            id="gemini-500",
        ),
    ],
)
def test_an_error_status_is_a_typed_http_error_with_the_parsed_body(
    lib: ModuleType,
    replay_server: ReplayServer,
    mode: str,
    path: str,
    fault: str,
    status: int,
    code: str,
    message: str,
    retry_after: float | None,
) -> None:
    outcome = fetch(mode, replay_server, "chat-reasoning", fault, path=path, lib=lib)
    error = outcome.error
    assert isinstance(error, HTTPStatusError), error
    assert error.status_code == status
    assert error.code == code
    assert error.provider_message is not None and message in error.provider_message
    assert error.retry_after == retry_after
    assert error.retryable
    assert error.raw is not None and "error" in error.raw
    served = replay_server.requests[-1]
    assert error.request_id == served.id
    assert error.partial is None and outcome.events == []
    assert f"HTTP {status}" in str(error) and served.id in str(error)
    assert outcome.response.is_closed


@pytest.mark.parametrize("mode", MODES)
def test_a_json_error_body_on_http_200_is_reported_as_such(
    lib: ModuleType, replay_server: ReplayServer, mode: str
) -> None:
    outcome = fetch(mode, replay_server, "chat-reasoning", "json-body", lib=lib)
    error = outcome.error
    assert isinstance(error, ContentTypeError)
    assert not isinstance(error, ProtocolError)
    assert error.content_type == "application/json"
    assert error.status_code == 200 and error.code == "server_error"
    assert "not an event stream" in str(error)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["gemini-thinking", "chat-reasoning"])
def test_gemini_json_array_framing_streams(
    lib: ModuleType, replay_server: ReplayServer, mode: str, name: str
) -> None:
    # Without alt=sse the server answers application/json with one array; a JSON
    # array is a stream, only a JSON object is refused. A chat recording on the
    # Gemini route is re-encoded as Gemini: the same answer, Gemini's events.
    try:
        expected = folded(name)
    except streamfold.StreamfoldError:
        pytest.skip(f"no registered dialect reads {name}")
    path = f"/v1beta/models/{name}:streamGenerateContent"
    outcome = fetch(mode, replay_server, name, path=path, lib=lib)
    assert outcome.result is not None, outcome.error
    assert outcome.response.headers["content-type"] == "application/json"
    assert outcome.result.dialect == "gemini"
    got, want = outcome.result.unified, expected.unified
    assert (got.text, got.reasoning, got.finish_reason) == (
        want.text,
        want.reasoning,
        want.finish_reason,
    )
    if name == "gemini-thinking":
        assert outcome.result.response == expected.response


# -- cancellation closes the connection ----------------------------------------------------------


PACED = {"x-streamfold-pace": "gap=0.02", "x-streamfold-fault": "none"}


class Boom(Exception):
    pass


def _served(server: ReplayServer, stream: EventStream | AsyncEventStream) -> str:
    return server.request(stream.metadata.request_id).wait(3)


@pytest.mark.parametrize("leave", ["break", "exception", "close"])
def test_sync_leaving_early_closes_the_connection(
    lib: ModuleType, replay_server: ReplayServer, leave: str
) -> None:
    with (
        lib.Client() as client,
        client.stream(
            "POST", replay_server.url + CHAT, json={"model": "chat-reasoning"}, headers=PACED
        ) as response,
    ):
        stream = EventStream(response)
        try:
            for i, _ in enumerate(stream):
                if i == 3:
                    if leave == "break":
                        break
                    if leave == "exception":
                        raise Boom
                    stream.close()
        except Boom:
            pass
        assert response.is_closed
        assert _served(replay_server, stream) == "disconnected"
        with pytest.raises(IncompleteStreamError):
            stream.final()


async def _wait_closed(response: Any) -> bool:
    for _ in range(100):
        if response.is_closed:
            return True
        await asyncio.sleep(0.01)
    return False


@pytest.mark.parametrize("leave", ["break", "exception"])
async def test_async_leaving_early_closes_the_connection(
    lib: ModuleType, replay_server: ReplayServer, leave: str
) -> None:
    async with (
        lib.AsyncClient() as client,
        client.stream(
            "POST", replay_server.url + CHAT, json={"model": "chat-reasoning"}, headers=PACED
        ) as response,
    ):
        stream = AsyncEventStream(response)
        try:
            count = 0
            async for _ in stream:
                count += 1
                if count == 3:
                    if leave == "break":
                        break
                    raise Boom
        except Boom:
            pass
        # The abandoned generator is finalised on the next loop iterations.
        assert await _wait_closed(response)
        assert await asyncio.to_thread(_served, replay_server, stream) == "disconnected"


async def test_async_task_cancellation_closes_the_connection(
    lib: ModuleType, replay_server: ReplayServer
) -> None:
    started = asyncio.Event()
    async with (
        lib.AsyncClient() as client,
        client.stream(
            "POST", replay_server.url + CHAT, json={"model": "chat-reasoning"}, headers=PACED
        ) as response,
    ):
        stream = AsyncEventStream(response)

        async def consume() -> None:
            async for _ in stream:
                started.set()

        task = asyncio.create_task(consume())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert response.is_closed  # at once: the generator's finally ran on the way out
        assert await asyncio.to_thread(_served, replay_server, stream) == "disconnected"


async def test_async_with_closes_at_once(lib: ModuleType, replay_server: ReplayServer) -> None:
    async with (
        lib.AsyncClient() as client,
        client.stream(
            "POST", replay_server.url + CHAT, json={"model": "chat-reasoning"}, headers=PACED
        ) as response,
    ):
        async with AsyncEventStream(response) as stream:
            async for _ in stream:
                break
        assert response.is_closed


# -- metadata ----------------------------------------------------------------------------------


def test_metadata_of_a_complete_stream(replay_server: ReplayServer) -> None:
    outcome = fetch("sync", replay_server, "chat-reasoning", pace="ttft=0.1, gap=0.001")
    assert outcome.result is not None
    meta = outcome.result.metadata
    assert meta is not None
    assert meta.status_code == 200 and meta.reason == "OK" and meta.http_version == "HTTP/1.1"
    assert meta.request_id == replay_server.requests[-1].id
    assert meta.rate_limits["x-ratelimit-remaining-tokens"] == "29000"
    assert meta.content_type is not None and meta.content_type.startswith("text/event-stream")
    assert meta.headers["cache-control"] == "no-cache"
    data = samples.read("chat-reasoning")
    assert meta.bytes_received == len(data)
    assert meta.events_received == data.count(b"\ndata: ") + 1
    times = [
        meta.time_to_headers,
        meta.time_to_first_byte,
        meta.time_to_first_event,
        meta.time_to_first_token,
        meta.total_time,
    ]
    assert all(t is not None for t in times)
    assert times == sorted(times)  # type: ignore[type-var]
    # The server holds the first event 0.1 s: a lower bound, true however loaded
    # the machine (that the head goes out at once is tested without a clock in
    # adapters/test_server.py).
    assert meta.time_to_first_byte is not None and meta.time_to_first_byte >= 0.1


# -- response checks over httpx's mock transport ------------------------------------------------


CHUNKS = samples.read("chat-parallel-tools")


def _mock(
    status: int = 200, content: bytes = CHUNKS, headers: dict[str, str] | None = None
) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content, headers=headers or {})

    return httpx.MockTransport(handler)


def _fold_mock(transport: httpx.MockTransport, url: str = "https://api.example/v1/chat") -> Any:
    with httpx.Client(transport=transport) as client, client.stream("POST", url) as response:
        try:
            return fold_response(response)
        except streamfold.StreamfoldError as exc:
            return exc


async def _afold_mock(transport: httpx.MockTransport) -> Any:
    async with (
        httpx.AsyncClient(transport=transport) as client,
        client.stream("POST", "https://api.example/v1/chat") as response,
    ):
        try:
            return await afold_response(response)
        except streamfold.StreamfoldError as exc:
            return exc


@pytest.mark.parametrize(
    ("header", "value"),
    [
        pytest.param("x-request-id", "req_abc", id="openai"),
        pytest.param("request-id", "req_011CSHoEeqs5C35K2UUqR7Fy", id="anthropic"),
        pytest.param("openai-request-id", "req_alt", id="openai-alt"),
        pytest.param("x-groq-id", "req_01jq", id="groq"),
        pytest.param("apim-request-id", "6e1f", id="azure-apim"),
        pytest.param("x-generation-id", "gen-123", id="openrouter"),
    ],
)
def test_request_id_headers(header: str, value: str) -> None:
    result = _fold_mock(_mock(headers={"content-type": "text/event-stream", header: value}))
    assert result.metadata.request_id == value


def test_anthropic_request_id_from_the_error_body() -> None:
    body = (
        b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},'
        b'"request_id":"req_011CBody"}'
    )
    error = _fold_mock(_mock(529, body, {"content-type": "application/json"}))
    assert isinstance(error, HTTPStatusError)
    assert error.request_id == "req_011CBody" and error.code == "overloaded_error"


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        pytest.param({"retry-after": "7"}, b"{}", 7.0, id="seconds"),
        pytest.param({"retry-after-ms": "1500", "retry-after": "9"}, b"{}", 1.5, id="ms-first"),
        pytest.param(
            {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, b"{}", 0.0, id="http-date-in-the-past"
        ),
        pytest.param(
            {},
            b'{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"q",'
            b'"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo",'
            b'"retryDelay":"37s"}]}}',
            37.0,
            id="gemini-retry-info",
        ),
        pytest.param({}, b"{}", None, id="none"),
    ],
)
def test_retry_after(headers: dict[str, str], body: bytes, expected: float | None) -> None:
    error = _fold_mock(_mock(429, body, {"content-type": "application/json", **headers}))
    assert isinstance(error, HTTPStatusError)
    assert error.retry_after == expected


@pytest.mark.parametrize(
    ("status", "headers", "retryable"),
    [
        pytest.param(400, {}, False, id="400"),
        pytest.param(408, {}, True, id="408"),
        pytest.param(500, {"x-should-retry": "false"}, False, id="should-retry-false"),
        pytest.param(400, {"x-should-retry": "true"}, True, id="should-retry-true"),
        pytest.param(529, {}, True, id="529"),
    ],
)
def test_retryable(status: int, headers: dict[str, str], retryable: bool) -> None:
    error = _fold_mock(_mock(status, b"{}", headers))
    assert isinstance(error, HTTPStatusError) and error.retryable is retryable


def test_a_proxy_error_page_keeps_its_text() -> None:
    error = _fold_mock(
        _mock(502, b"<html><body>Bad gateway</body></html>", {"content-type": "text/html"})
    )
    assert isinstance(error, HTTPStatusError)
    assert error.raw is None and error.code is None and "Bad gateway" in error.body
    assert "Bad gateway" in str(error)


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        pytest.param("text/html", b"<html>login</html>", id="html"),
        pytest.param(
            "application/json",
            b'\xef\xbb\xbf \n{"error": {"message": "quota"}}',
            id="json-object-after-bom-and-space",
        ),
        pytest.param("text/plain", b"data: {}\n\n", id="text-plain"),
    ],
)
def test_a_2xx_body_that_is_not_a_stream(content_type: str, content: bytes) -> None:
    error = _fold_mock(_mock(200, content, {"content-type": content_type}))
    assert isinstance(error, ContentTypeError)
    assert error.content_type == content_type
    assert error.partial is None


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"content-type": "text/event-stream; charset=utf-8"}, id="sse"),
        pytest.param({}, id="no-content-type"),
        pytest.param({"content-type": "text/event-stream", "content-encoding": "gzip"}, id="gzip"),
    ],
)
def test_streams_that_are_accepted(headers: dict[str, str]) -> None:
    content = gzip.compress(CHUNKS) if headers.get("content-encoding") else CHUNKS
    result = _fold_mock(_mock(200, content, headers))
    assert isinstance(result, HTTPResult), result
    same_fold(result, folded("chat-parallel-tools"))


async def test_async_twin_on_the_mock_transport() -> None:
    result = await _afold_mock(_mock(headers={"content-type": "text/event-stream"}))
    same_fold(result, folded("chat-parallel-tools"))
    error = await _afold_mock(_mock(503, b'{"error": {"message": "down"}}'))
    assert isinstance(error, HTTPStatusError) and error.provider_message == "down"


def test_credentials_in_the_url_are_redacted() -> None:
    error = _fold_mock(
        _mock(401, b'{"error": {"message": "bad key"}}'),
        url="https://g.example/v1beta/models/m:streamGenerateContent?alt=sse&key=AIzaSECRET",
    )
    assert isinstance(error, HTTPStatusError)
    assert "AIzaSECRET" not in error.metadata.url and "key=REDACTED" in error.metadata.url
    assert "AIzaSECRET" not in str(error) and "AIzaSECRET" not in repr(error.metadata)


def test_a_stream_is_iterated_once() -> None:
    with (
        httpx.Client(transport=_mock(headers={"content-type": "text/event-stream"})) as client,
        client.stream("POST", "https://api.example/") as response,
    ):
        stream = EventStream(response)
        events: list[Event] = list(stream)
        with pytest.raises(UsageError):
            iter(stream)
        assert stream.final().unified == folded("chat-parallel-tools").unified
        assert stream.snapshot.complete and events[-1].type == "response.finished"
        assert "POST https://api.example/ [200] closed" in repr(stream)


@pytest.mark.parametrize("mode", MODES)
def test_read_timeout_of_httpx_becomes_a_stream_timeout(mode: str) -> None:
    # A transport that raises httpx's own ReadTimeout mid-body.
    def body() -> Any:
        yield CHUNKS[:400]
        raise httpx.ReadTimeout("read timed out")

    async def abody() -> Any:
        yield CHUNKS[:400]
        raise httpx.ReadTimeout("read timed out")

    def handler(request: httpx.Request) -> httpx.Response:
        stream: Any = _SyncBody(body) if mode == "sync" else _AsyncBody(abody)
        return httpx.Response(200, stream=stream, headers={"content-type": "text/event-stream"})

    transport = httpx.MockTransport(handler)
    error = _fold_mock(transport) if mode == "sync" else asyncio.run(_afold_mock(transport))
    assert isinstance(error, StreamTimeoutError) and error.kind == "idle"
    assert isinstance(error.partial, HTTPResult)


class _SyncBody(httpx.SyncByteStream):
    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make

    def __iter__(self) -> Any:
        return self.make()


class _AsyncBody(httpx.AsyncByteStream):
    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make

    def __aiter__(self) -> Any:
        return self.make()
