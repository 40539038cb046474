"""The official SDKs' streams as sources: real openai, anthropic and google-genai
clients pointed at the replay server, sync and async, for every API they cover.

Each case folds what the SDK gives (``fold``/``afold`` for the result,
``iter_events``/``aiter_events`` for the events) and must equal what the same
recording and fault give as bytes through plain httpx and ``EventStream``,
and, whole, what ``streamfold fold`` prints for the recording's file.
"""

from __future__ import annotations

import asyncio
import functools
import io
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import msgspec
import openai
import pytest

import streamfold
from streamfold import cli, samples
from streamfold.adapters.httpx import AsyncEventStream, EventStream
from streamfold.adapters.server import ReplayServer
from streamfold.errors import HTTPStatusError

genai = pytest.importorskip("google.genai")
genai_types = pytest.importorskip("google.genai.types")

MESSAGES: Any = [{"role": "user", "content": "hi"}]
TIMEOUT = 1.0  # every client's read timeout: the stall fault (3 s) outlasts it; a GC pass does not


@dataclass(frozen=True)
class API:
    """One API as an SDK streams it, and the same request as plain bytes."""

    name: str
    sample: str  # the recording served
    path: str  # the route, for the plain httpx reference
    sync: Callable[[str, dict[str, str]], Any]  # (base URL, headers) -> what the SDK returns
    asynchronous: Callable[[str, dict[str, str]], Any]


def _openai(url: str, asynchronous: bool = False) -> Any:
    cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    return cls(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=TIMEOUT)


def _anthropic(url: str, asynchronous: bool = False) -> Any:
    cls = anthropic.AsyncAnthropic if asynchronous else anthropic.Anthropic
    return cls(base_url=url, api_key="unused", max_retries=0, timeout=TIMEOUT)


@functools.cache
def _genai(url: str) -> Any:
    # One client per server, kept: a google-genai client closes its HTTP client
    # when it is collected, which the stream it returned does not prevent.
    return _genai_client(url)


#: The client of each async stream, kept while the stream lives.
_STREAM_CLIENTS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


async def _genai_stream(url: str, headers: dict[str, str]) -> Any:
    # An async stream gets a client of its own, made in the event loop that
    # reads it: an async client's pooled connections belong to the loop that
    # opened them, and one client kept across asyncio.run calls can hand a
    # later loop a dead one (its stream then ends before any event). Kept
    # while its stream lives, for the reason above.
    client = _genai_client(url)
    stream = await _gemini(client, headers, asynchronous=True)
    _STREAM_CLIENTS[stream] = client
    return stream


def _genai_client(url: str) -> Any:
    options = genai_types.HttpOptions(
        base_url=url,
        timeout=int(TIMEOUT * 1000),
        retry_options=genai_types.HttpRetryOptions(attempts=1),
    )
    return genai.Client(api_key="unused", http_options=options)


def _chat(client: Any, headers: dict[str, str], raw: bool = False) -> Any:
    create = (
        client.chat.completions.with_streaming_response.create
        if raw
        else client.chat.completions.create
    )
    return create(model="chat-reasoning", messages=MESSAGES, stream=True, extra_headers=headers)


def _responses(client: Any, headers: dict[str, str], raw: bool = False) -> Any:
    create = client.responses.with_streaming_response.create if raw else client.responses.create
    return create(model="responses-parallel-tools", input="hi", stream=True, extra_headers=headers)


def _messages(
    client: Any, headers: dict[str, str], manager: bool = False, raw: bool = False
) -> Any:
    options: Any = {
        "model": "anthropic-thinking",
        "max_tokens": 10,
        "messages": MESSAGES,
        "extra_headers": headers,
    }
    if manager:
        return client.messages.stream(**options)
    if raw:
        return client.messages.with_streaming_response.create(stream=True, **options)
    return client.messages.create(stream=True, **options)


def _gemini(client: Any, headers: dict[str, str], asynchronous: bool) -> Any:
    models = client.aio.models if asynchronous else client.models
    config = genai_types.GenerateContentConfig(
        http_options=genai_types.HttpOptions(headers=headers)
    )
    return models.generate_content_stream(model="gemini-thinking", contents="hi", config=config)


CHAT_PATH = "/v1/chat/completions"
APIS = [
    API(
        "openai-chat",
        "chat-reasoning",
        CHAT_PATH,
        lambda url, h: _chat(_openai(url), h),
        lambda url, h: _chat(_openai(url, True), h),
    ),
    API(
        "openai-chat-raw",
        "chat-reasoning",
        CHAT_PATH,
        lambda url, h: _chat(_openai(url), h, raw=True),
        lambda url, h: _chat(_openai(url, True), h, raw=True),
    ),
    API(
        "openai-responses",
        "responses-parallel-tools",
        "/v1/responses",
        lambda url, h: _responses(_openai(url), h),
        lambda url, h: _responses(_openai(url, True), h),
    ),
    API(
        "openai-responses-raw",
        "responses-parallel-tools",
        "/v1/responses",
        lambda url, h: _responses(_openai(url), h, raw=True),
        lambda url, h: _responses(_openai(url, True), h, raw=True),
    ),
    API(
        "anthropic",
        "anthropic-thinking",
        "/v1/messages",
        lambda url, h: _messages(_anthropic(url), h),
        lambda url, h: _messages(_anthropic(url, True), h),
    ),
    API(
        "anthropic-raw",
        "anthropic-thinking",
        "/v1/messages",
        lambda url, h: _messages(_anthropic(url), h, raw=True),
        lambda url, h: _messages(_anthropic(url, True), h, raw=True),
    ),
    API(
        "anthropic-message-stream",
        "anthropic-thinking",
        "/v1/messages",
        lambda url, h: _messages(_anthropic(url), h, manager=True),
        lambda url, h: _messages(_anthropic(url, True), h, manager=True),
    ),
    API(
        "google-genai",
        "gemini-thinking",
        "/v1beta/models/gemini-thinking:streamGenerateContent?alt=sse",
        lambda url, h: _gemini(_genai(url), h, asynchronous=False),
        _genai_stream,
    ),
]
BY_NAME = {api.name: api for api in APIS}

#: The faults the replay server injects, each with what every path must end in.
FAULTS = [
    pytest.param("none", None, id="complete"),
    pytest.param("split=utf8", None, id="split-utf8"),
    pytest.param("drop-after=2", "IncompleteStreamError", id="drop"),
    pytest.param("stall=3, stall-after=2", "StreamTimeoutError", id="stall"),
    pytest.param("error-after=2", "ProviderError", id="in-band-error"),
]


# -- what a caller sees ----------------------------------------------------------------------


def _error(error: BaseException | None) -> Any:
    if error is None:
        return None
    return type(error).__name__, str(error).split(" (request id")[0]


def _result(result: Any) -> Any:
    if result is None:
        return None
    return {
        "response": msgspec.to_builtins(result.response),
        "unified": msgspec.to_builtins(result.unified),
        "complete": result.complete,
    }


def _fold_outcome(run: Callable[[], Any]) -> dict[str, Any]:
    try:
        result, error = run(), None
    except streamfold.StreamfoldError as exc:
        result, error = exc.partial, exc
    return {"result": _result(result), "error": _error(error)}


def _events_outcome(events: list[Any], error: BaseException | None) -> dict[str, Any]:
    return {"events": [msgspec.to_builtins(e) for e in events], "events_error": _error(error)}


def sdk_outcome(api: API, mode: str, url: str, fault: str) -> dict[str, Any]:
    """The fold and the events of what the SDK returns for the request."""
    headers = {"X-Streamfold-Fault": fault}
    events: list[Any] = []
    if mode == "sync":
        folded = _fold_outcome(lambda: streamfold.fold(api.sync(url, headers)))
        try:
            for event in streamfold.iter_events(api.sync(url, headers)):
                events.append(event)
            error = None
        except streamfold.StreamfoldError as exc:
            error = exc
        return {**folded, **_events_outcome(events, error)}

    async def run() -> dict[str, Any]:
        try:
            folded = {"result": _result(await streamfold.afold(api.asynchronous(url, headers)))}
            folded["error"] = None
        except streamfold.StreamfoldError as exc:
            folded = {"result": _result(exc.partial), "error": _error(exc)}
        error = None
        try:
            async for event in streamfold.aiter_events(api.asynchronous(url, headers)):
                events.append(event)
        except streamfold.StreamfoldError as exc:
            error = exc
        return {**folded, **_events_outcome(events, error)}

    return asyncio.run(run())


def bytes_outcome(api: API, url: str, fault: str) -> dict[str, Any]:
    """The same request and fault as plain httpx bytes through ``EventStream``."""
    headers = {"X-Streamfold-Fault": fault}
    events: list[Any] = []
    result: streamfold.Result | None
    with (
        httpx.Client(timeout=TIMEOUT) as client,
        client.stream("POST", url + api.path, json={"model": api.sample}, headers=headers) as r,
    ):
        live = EventStream(r)
        try:
            events.extend(live)
            result, error = live.final(), None
        except streamfold.StreamfoldError as exc:
            result, error = exc.partial, exc
    return {"result": _result(result), "error": _error(error), **_events_outcome(events, error)}


def cli_outcome(sample: str, tmp_path: Path) -> dict[str, Any]:
    """What ``streamfold fold`` prints for the recording's file."""
    path = tmp_path / f"{sample}.sse"
    path.write_bytes(samples.read(sample))
    printed = {}
    for fmt in ("response", "events"):
        out, err = io.StringIO(), io.StringIO()
        assert cli.main(["fold", str(path), "--format", fmt], out, err) == 0, err.getvalue()
        printed[fmt] = out.getvalue()
    return {
        "response": msgspec.json.decode(printed["response"]),
        "events": [msgspec.json.decode(line) for line in printed["events"].splitlines()],
    }


# -- the table ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(("fault", "ends_in"), FAULTS)
@pytest.mark.parametrize("api", [pytest.param(api, id=api.name) for api in APIS])
def test_an_sdk_stream_folds_as_its_bytes(
    replay_server: ReplayServer, api: API, fault: str, ends_in: str | None, mode: str
) -> None:
    url = replay_server.url
    sdk = sdk_outcome(api, mode, url, fault)
    reference = bytes_outcome(api, url, fault)
    assert (sdk["error"] or (None,))[0] == ends_in
    assert sdk == reference


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("api", [pytest.param(api, id=api.name) for api in APIS])
def test_a_complete_sdk_stream_folds_as_the_cli_folds_its_file(
    replay_server: ReplayServer, api: API, mode: str, tmp_path: Path
) -> None:
    sdk = sdk_outcome(api, mode, replay_server.url, "none")
    printed = cli_outcome(api.sample, tmp_path)
    assert sdk["error"] is None and sdk["events_error"] is None
    assert (
        msgspec.json.decode(msgspec.json.encode(sdk["result"]["response"])) == printed["response"]
    )
    assert msgspec.json.decode(msgspec.json.encode(sdk["events"])) == printed["events"]


# -- HTTP error statuses ---------------------------------------------------------------------

STATUSES = [
    pytest.param("status=500", 500, None, id="5xx"),
    pytest.param("status=429, retry-after=7", 429, 7.0, id="429-retry-after"),
]


def _status_reference(api: API, url: str, fault: str) -> HTTPStatusError:
    with (
        httpx.Client(timeout=TIMEOUT) as client,
        client.stream(
            "POST",
            url + api.path,
            json={"model": api.sample},
            headers={"X-Streamfold-Fault": fault},
        ) as response,
        pytest.raises(HTTPStatusError) as caught,
    ):
        EventStream(response).final()
    return caught.value


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(("fault", "status", "retry_after"), STATUSES)
@pytest.mark.parametrize(
    "api", [pytest.param(api, id=api.name) for api in APIS if api.name != "google-genai"]
)
def test_an_error_status_is_the_sdks_own_before_any_stream(
    replay_server: ReplayServer,
    api: API,
    fault: str,
    status: int,
    retry_after: float | None,
    mode: str,
) -> None:
    # openai and anthropic read the head in the call that returns the stream,
    # and raise their own status errors there (after their retries): nothing
    # reaches streamfold. What they carry is what streamfold's error says.
    headers = {"X-Streamfold-Fault": fault}
    errors = (openai.APIStatusError, anthropic.APIStatusError)
    with pytest.raises(errors) as caught:
        if mode == "sync":
            streamfold.fold(api.sync(replay_server.url, headers))
        else:
            asyncio.run(streamfold.afold(api.asynchronous(replay_server.url, headers)))
    reference = _status_reference(api, replay_server.url, fault)
    raised: Any = caught.value  # openai's or anthropic's APIStatusError
    assert raised.status_code == reference.status_code == status
    assert reference.retry_after == retry_after
    seconds = raised.response.headers.get("retry-after")
    assert (float(seconds) if seconds else None) == retry_after


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(("fault", "status", "retry_after"), STATUSES)
def test_google_genai_error_statuses_end_in_streamfolds_http_error(
    replay_server: ReplayServer, fault: str, status: int, retry_after: float | None, mode: str
) -> None:
    # google-genai sends the request when its stream is first iterated: its
    # status error comes out of the iteration, and becomes the error the HTTP
    # adapters raise for the same response.
    api = BY_NAME["google-genai"]
    headers = {"X-Streamfold-Fault": fault}
    with pytest.raises(HTTPStatusError) as caught:
        if mode == "sync":
            streamfold.fold(api.sync(replay_server.url, headers))
        else:
            asyncio.run(streamfold.afold(api.asynchronous(replay_server.url, headers)))
    error, reference = caught.value, _status_reference(api, replay_server.url, fault)
    assert type(caught.value.__cause__).__module__.startswith("google.genai")
    assert (error.status_code, error.retry_after, error.code, error.retryable) == (
        reference.status_code,
        reference.retry_after,
        reference.code,
        reference.retryable,
    )
    assert error.status_code == status and error.retry_after == retry_after
    assert str(error).split(" (request id")[0] == str(reference).split(" (request id")[0]


# -- cancellation ----------------------------------------------------------------------------


@pytest.mark.parametrize("api", [pytest.param(api, id=api.name) for api in APIS])
def test_leaving_the_events_early_closes_the_connection(
    replay_server: ReplayServer, api: API
) -> None:
    headers = {"X-Streamfold-Pace": "ttft=0, gap=0.05"}
    events: Any = streamfold.iter_events(api.sync(replay_server.url, headers))  # a generator
    first = next(events)
    events.close()  # what a `break` out of the loop does
    assert first.type == "response.started"
    assert replay_server.requests[-1].wait() == "disconnected"


@pytest.mark.parametrize("api", [pytest.param(api, id=api.name) for api in APIS])
def test_a_cancelled_task_closes_the_connection(replay_server: ReplayServer, api: API) -> None:
    headers = {"X-Streamfold-Pace": "ttft=0, gap=0.05"}
    seen: list[Any] = []

    async def consume(started: asyncio.Event) -> None:
        async for event in streamfold.aiter_events(api.asynchronous(replay_server.url, headers)):
            seen.append(event)
            started.set()

    async def run() -> None:
        started = asyncio.Event()
        task = asyncio.create_task(consume(started))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert seen and seen[0].type == "response.started"
    assert replay_server.requests[-1].wait() == "disconnected"


# -- what cannot be folded -------------------------------------------------------------------


def test_an_sdk_stream_already_iterated_is_refused(replay_server: ReplayServer) -> None:
    stream = BY_NAME["openai-chat"].sync(replay_server.url, {})
    for _ in stream:
        pass
    with pytest.raises(streamfold.UsageError, match="already read"):
        streamfold.fold(stream)


def test_a_twin_takes_only_its_own_kind_of_sdk_stream(replay_server: ReplayServer) -> None:
    api = BY_NAME["openai-chat"]

    async def fold_an_async_stream_sync() -> None:
        stream = await api.asynchronous(replay_server.url, {})
        try:
            with pytest.raises(streamfold.UsageError, match="async client: use afold"):
                streamfold.fold(stream)
        finally:
            await stream.close()

    asyncio.run(fold_an_async_stream_sync())
    stream = api.sync(replay_server.url, {})
    with pytest.raises(streamfold.UsageError, match="sync client: use fold"):
        asyncio.run(streamfold.afold(stream))
    stream.close()
    with pytest.raises(streamfold.UsageError, match="is async: use afold"):
        streamfold.fold(BY_NAME["google-genai"].asynchronous(replay_server.url, {}))


# -- the partial-value API on every layer ----------------------------------------------------


def _sse(*chunks: dict[str, Any]) -> bytes:
    body = b"".join(b"data: " + msgspec.json.encode(chunk) + b"\n\n" for chunk in chunks)
    return body + b"data: [DONE]\n\n"


def _delta(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "c",
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _call(arguments: str, **first: str) -> dict[str, Any]:
    return {"tool_calls": [{"index": 0, **first, "function": {"arguments": arguments}}]}


#: A tool call whose arguments come in two pieces, then JSON-mode text.
PARTIAL_BODY = _sse(
    _delta({"role": "assistant"}),
    _delta(_call('{"city": "Pa', id="call_1")),
    _delta(_call('ris"}')),
    _delta({"content": '{"a": [1'}),
    _delta({"content": ", 2]}"}, "tool_calls"),
)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_event_streams_give_partial_arguments_and_parse_content(mode: str) -> None:
    seen: list[Any] = []

    def look(stream: Any, event: Any) -> None:
        if event.type == "tool_call.arguments.delta":
            seen.append(stream.partial_arguments(event.index))
        elif event.type == "text.done":
            seen.append(event.value)

    pieces = [piece + b"\n\n" for piece in PARTIAL_BODY.split(b"\n\n") if piece]

    async def arrive() -> Any:
        for piece in pieces:
            yield piece

    def reply(request: httpx.Request) -> httpx.Response:
        # One read per event, as a server that flushes each one.
        return httpx.Response(200, content=iter(pieces) if mode == "sync" else arrive())

    options: Any = {"parse_arguments": True, "parse_content": True}
    if mode == "sync":
        with (
            httpx.Client(transport=httpx.MockTransport(reply)) as http,
            http.stream("POST", "http://test/") as response,
        ):
            stream = EventStream(response, **options)
            for event in stream:
                look(stream, event)
    else:

        async def run() -> None:
            async with (
                httpx.AsyncClient(transport=httpx.MockTransport(reply)) as http,
                http.stream("POST", "http://test/") as response,
            ):
                stream = AsyncEventStream(response, **options)
                async for event in stream:
                    look(stream, event)

        asyncio.run(run())
    assert seen == [{"city": "Pa"}, {"city": "Paris"}, {"a": [1, 2]}]


def test_the_client_stream_gives_partial_arguments(replay_server: ReplayServer) -> None:
    from streamfold.adapters.client import NO_KEY, stream

    live = stream(
        "hi",
        model="chat-parallel-tools",
        base_url=replay_server.url + "/v1",
        api_key=NO_KEY,
        parse_arguments=True,
    )
    with pytest.raises(streamfold.UsageError, match="not been sent"):
        live.partial_arguments(0)
    with live:
        calls = [event for event in live if isinstance(event, streamfold.ToolCallDone)]
        assert len(calls) > 1
        for call in calls:
            assert live.partial_arguments(call.index) == call.value
        assert live.partial_arguments(99) is None
