"""The client for live endpoints: requests as each API (and its SDK) sends them,
the API key kept out of every message, and streams end to end over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import pickle
import socket
from typing import Any

import anthropic
import httpx
import openai
import pytest

import streamfold
from streamfold import ProtocolError, ProviderError, StreamfoldError, samples
from streamfold.adapters.client import (
    NO_KEY,
    APIKey,
    astream,
    build_request,
    http_library,
    resolve_api_key,
    stream,
)
from streamfold.adapters.httpx import (
    ContentTypeError,
    HTTPResult,
    HTTPStatusError,
    StreamTimeoutError,
    Timeouts,
)
from streamfold.adapters.server import ReplayServer
from streamfold.dialects.registry import get_api

SECRET = "sk-test-LEAKCHECK-0123456789abcdef"
CHAT_NAMES = ["chat-reasoning", "chat-parallel-tools"]


# -- requests as the SDKs send them ---------------------------------------------------------


def _capture_openai(call: Any) -> httpx.Request:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, content=b"data: [DONE]\n\n", headers={"content-type": "text/event-stream"}
        )

    client = openai.OpenAI(
        base_url="http://sdk.test/v1",
        api_key=SECRET,
        # typed for httpx2 (the SDK's own fork), but it accepts an httpx client
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),  # type: ignore[arg-type]
    )
    with contextlib.suppress(Exception):  # only the request matters here
        list(call(client))
    return seen[0]


def _capture_anthropic() -> Any:
    # The installed anthropic SDK runs on httpx2, a fork of httpx.
    httpx2 = pytest.importorskip("httpx2")
    seen: list[Any] = []

    def handler(request: Any) -> Any:
        seen.append(request)
        return httpx2.Response(
            200,
            content=b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
            headers={"content-type": "text/event-stream"},
        )

    client = anthropic.Anthropic(
        base_url="http://sdk.test",
        api_key=SECRET,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
    list(
        client.messages.create(
            model="claude-x",
            max_tokens=10,
            system="be brief",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
        )
    )
    return seen[0]


def test_chat_request_matches_the_openai_sdk() -> None:
    sdk = _capture_openai(
        lambda c: c.chat.completions.create(
            model="gpt-x",
            messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    ours = build_request(
        "hi", model="gpt-x", system="be brief", base_url="http://sdk.test/v1", api_key=SECRET
    )
    assert ours.url == str(sdk.url)
    assert ours.body == json.loads(sdk.content)
    assert (
        ours.to_httpx(httpx.Client(), (1.0, 1.0, 1.0, 1.0)).headers["authorization"]
        == sdk.headers["authorization"]
    )


def test_responses_request_matches_the_openai_sdk() -> None:
    sdk = _capture_openai(
        lambda c: c.responses.create(
            model="gpt-x", input="hi", instructions="be brief", stream=True
        )
    )
    ours = build_request(
        "hi",
        model="gpt-x",
        api="responses",
        system="be brief",
        base_url="http://sdk.test/v1",
        api_key=SECRET,
    )
    assert ours.url == str(sdk.url)
    assert ours.body == json.loads(sdk.content)


def test_anthropic_request_matches_the_sdk_url_and_body() -> None:
    sdk = _capture_anthropic()
    ours = build_request(
        "hi",
        model="claude-x",
        api="anthropic",
        system="be brief",
        max_tokens=10,
        base_url="http://sdk.test",
        api_key=SECRET,
    )
    assert ours.url == str(sdk.url)
    assert ours.body == json.loads(sdk.content)
    # Credentials as Anthropic's API reference documents them (x-api-key and
    # anthropic-version 2023-06-01); the SDK installed here sends a Bearer token
    # and a newer version instead.
    sent = ours.to_httpx(httpx.Client(), (1.0, 1.0, 1.0, 1.0)).headers
    assert sent["x-api-key"] == SECRET and sent["anthropic-version"] == "2023-06-01"


@pytest.mark.parametrize(
    ("kwargs", "url", "key_header", "body"),
    [
        pytest.param(
            {
                "api": "gemini",
                "model": "models/gemini-2.5-flash",
                "system": "be brief",
                "max_tokens": 64,
            },
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"
            ":streamGenerateContent?alt=sse",
            "x-goog-api-key",
            {
                "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                "systemInstruction": {"parts": [{"text": "be brief"}]},
                "generationConfig": {"maxOutputTokens": 64},
            },
            id="gemini",
        ),
        pytest.param(
            {
                "api": "chat",
                "model": "m",
                "max_tokens": 5,
                "base_url": "https://or.test/api/v1/",
                "extra_body": {"stream_options": None, "provider": {"order": ["x"]}},
            },
            "https://or.test/api/v1/chat/completions",
            "authorization",
            {
                "model": "m",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": True,
                "max_tokens": 5,
                "provider": {"order": ["x"]},
            },
            id="chat-extra-body-removes-and-adds",
        ),
        pytest.param(
            {"api": "anthropic", "model": "claude-x", "api_version": "2024-01-01"},
            "https://api.anthropic.com/v1/messages",
            "x-api-key",
            {
                "model": "claude-x",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": True,
                "max_tokens": 4096,
            },
            id="anthropic-default-max-tokens",
        ),
        pytest.param(
            {"api": "cohere", "model": "command-a-03-2025", "system": "be brief", "max_tokens": 9},
            "https://api.cohere.com/v2/chat",
            "authorization",
            {
                "model": "command-a-03-2025",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi"},
                ],
                "stream": True,
                "max_tokens": 9,
            },
            id="cohere",
        ),
        pytest.param(
            {"api": "interactions", "model": "gemini-3-flash-preview", "max_tokens": 64},
            "https://generativelanguage.googleapis.com/v1beta/interactions",
            "x-goog-api-key",
            {
                "model": "gemini-3-flash-preview",
                "input": "hi",
                "stream": True,
                "generation_config": {"max_output_tokens": 64},
            },
            id="interactions",
        ),
        pytest.param(
            {"api": "completions", "model": "gpt-3.5-turbo-instruct", "max_tokens": 32},
            "https://api.openai.com/v1/completions",
            "authorization",
            {
                "model": "gpt-3.5-turbo-instruct",
                "prompt": "hi",
                "stream": True,
                "stream_options": {"include_usage": True},
                "max_tokens": 32,
            },
            id="completions",
        ),
    ],
)
def test_build_request(
    kwargs: dict[str, Any], url: str, key_header: str, body: dict[str, Any]
) -> None:
    request = build_request("hi", api_key=SECRET, **kwargs)
    assert request.url == url
    assert request.body == body
    headers = request.to_httpx(httpx.Client(), (1.0, 1.0, 1.0, 1.0)).headers
    assert SECRET in headers[key_header]
    assert headers["accept"] == "text/event-stream"
    if kwargs["api"] == "anthropic":
        assert headers["anthropic-version"] == kwargs["api_version"]


def test_messages_and_tools_are_sent_in_the_apis_own_shape() -> None:
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    request = build_request(messages, model="m", tools=tools)
    assert request.body["messages"] == messages and request.body["tools"] == tools


def test_unknown_api_is_a_usage_error() -> None:
    with pytest.raises(streamfold.UsageError, match="unknown API 'bard'"):
        build_request("hi", model="m", api="bard")


# -- the API key -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api", "environ", "expected"),
    [
        pytest.param("chat", {"OPENAI_API_KEY": "a"}, "a", id="openai"),
        pytest.param(
            "anthropic", {"ANTHROPIC_API_KEY": "b", "OPENAI_API_KEY": "a"}, "b", id="anthropic"
        ),
        pytest.param("gemini", {"GOOGLE_API_KEY": "g"}, "g", id="gemini-google"),
        pytest.param(
            "gemini", {"GEMINI_API_KEY": "m", "GOOGLE_API_KEY": "g"}, "m", id="gemini-first"
        ),
        pytest.param("responses", {}, None, id="none"),
    ],
)
def test_api_key_from_the_environment(
    api: str, environ: dict[str, str], expected: str | None
) -> None:
    key = resolve_api_key(api, None, environ)
    assert (key.reveal() if key else None) == expected
    assert resolve_api_key(api, "explicit", environ).reveal() == "explicit"  # type: ignore[union-attr]


def test_no_key_sends_no_credential_even_with_one_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    headers = (
        build_request("hi", model="m", api_key=NO_KEY)
        .to_httpx(httpx.Client(), (1.0, 1.0, 1.0, 1.0))
        .headers
    )
    assert "authorization" not in headers


def test_the_key_hides_itself() -> None:
    key = APIKey(SECRET)
    assert SECRET not in repr(key) and SECRET not in str(key) and SECRET not in f"{key}"
    with pytest.raises(TypeError):
        pickle.dumps(key)
    request = build_request("hi", model="m", api_key=key, headers={"Api-Key": SECRET})
    assert SECRET not in repr(request)
    assert "REDACTED" in repr(request) and "APIKey('***')" in repr(request)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    ("fault", "error_type"),
    [
        pytest.param("status=401", HTTPStatusError, id="401"),
        pytest.param("status=429", HTTPStatusError, id="429"),
        pytest.param("json-body", ContentTypeError, id="json-body"),
        pytest.param("drop-after=2", streamfold.IncompleteStreamError, id="drop"),
        pytest.param("stall=2, stall-after=1", StreamTimeoutError, id="timeout"),
        pytest.param("malformed-after=1", ProtocolError, id="malformed"),
        pytest.param("error-after=1", ProviderError, id="provider-error"),
    ],
)
def test_the_key_never_reaches_errors_reprs_or_logs(
    replay_server: ReplayServer,
    caplog: pytest.LogCaptureFixture,
    mode: str,
    fault: str,
    error_type: type[Exception],
) -> None:
    caplog.set_level(logging.DEBUG)
    options: dict[str, Any] = {
        "model": "chat-reasoning",
        "base_url": replay_server.url,
        "api_key": SECRET,
        "headers": {"X-Streamfold-Fault": fault},
        "timeouts": Timeouts(idle=0.2),
    }
    live: Any
    if mode == "sync":
        live = stream("hi", **options)
        with pytest.raises(error_type) as caught:
            live.final()
    else:
        live = astream("hi", **options)

        async def run() -> None:
            await live.final()

        with pytest.raises(error_type) as caught:
            asyncio.run(run())
    error = caught.value
    texts = [
        str(error),
        repr(error),
        repr(vars(error)),
        repr(live),
        caplog.text,
        repr(getattr(error, "partial", None)),
        repr(getattr(error, "metadata", None)),
    ]
    assert all(SECRET not in text for text in texts)
    assert caplog.text  # httpx did log the exchange


@pytest.mark.parametrize(
    ("fault", "error_type", "retryable"),
    [
        pytest.param("error-after=2", ProviderError, True, id="in-band-error"),
        pytest.param("drop-after=2", streamfold.IncompleteStreamError, None, id="drop"),
        pytest.param("malformed-after=1", ProtocolError, None, id="malformed"),
        pytest.param("status=429", HTTPStatusError, True, id="429"),
        pytest.param("status=400", HTTPStatusError, False, id="400"),
    ],
)
@pytest.mark.parametrize("name", ["cohere-tools", "interactions-thinking", "completions-text"])
def test_the_newer_apis_are_replayed_with_faults(
    replay_server: ReplayServer,
    name: str,
    fault: str,
    error_type: type[StreamfoldError],
    retryable: bool | None,
) -> None:
    # Each API's route serves its recording with the fault, and its dialect
    # reports it as the same typed error as for the other APIs.
    sample = next(s for s in samples.SAMPLES if s.name == name)
    live = stream(
        sample.prompt,
        model=name,
        api=sample.api,
        base_url=replay_server.url,
        api_key=NO_KEY,
        headers={"X-Streamfold-Fault": fault},
    )
    with pytest.raises(error_type) as caught:
        live.final()
    error = caught.value
    if retryable is not None:
        assert isinstance(error, (ProviderError, HTTPStatusError))
        assert error.retryable is retryable
    if not isinstance(error, HTTPStatusError):
        partial = error.partial
        assert partial is not None and partial.dialect == sample.api


def test_the_key_is_sent_in_its_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            content=samples.read("chat-reasoning"),
            headers={"content-type": "text/event-stream"},
        )

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        stream("hi", model="m", api_key=SECRET, http_client=client).final()
    assert seen[0].headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in str(seen[0].url)


# -- end to end over loopback --------------------------------------------------------------------


@pytest.mark.parametrize("name", CHAT_NAMES)
def test_stream_end_to_end(replay_server: ReplayServer, name: str) -> None:
    events = []
    with stream("What now?", model=name, base_url=replay_server.url, api_key=NO_KEY) as live:
        assert live.response.status_code == 200  # sent on entering the block
        for event in live:
            events.append(event)
        result = live.final()
    assert live.response.is_closed
    expected = streamfold.fold(samples.read(name))
    assert result.response == expected.response and result.unified == expected.unified
    assert [e.type for e in events].count("response.finished") == 1
    assert isinstance(result, HTTPResult) and result.metadata is not None
    assert result.metadata.time_to_first_token is not None
    served = replay_server.request(result.metadata.request_id)
    assert served.body == {
        "model": name,
        "messages": [{"role": "user", "content": "What now?"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


@pytest.mark.parametrize("name", CHAT_NAMES)
async def test_astream_end_to_end(replay_server: ReplayServer, name: str) -> None:
    async with astream("What now?", model=name, base_url=replay_server.url, api_key=NO_KEY) as live:
        types = [event.type async for event in live]
        result = await live.final()
    expected = streamfold.fold(samples.read(name))
    assert result.response == expected.response and result.unified == expected.unified
    assert types[-1] == "response.finished"
    assert live.response.is_closed


def test_nothing_is_sent_until_the_stream_is_used(replay_server: ReplayServer) -> None:
    before = len(replay_server.requests)
    live = stream("hi", model="chat-reasoning", base_url=replay_server.url)
    assert len(replay_server.requests) == before
    with pytest.raises(streamfold.UsageError):
        _ = live.metadata
    assert live.final().complete
    assert len(replay_server.requests) == before + 1


def test_a_given_http_client_stays_open(replay_server: ReplayServer) -> None:
    with httpx.Client() as client:
        stream("hi", model="chat-reasoning", base_url=replay_server.url, http_client=client).final()
        assert not client.is_closed
        stream("hi", model="chat-reasoning", base_url=replay_server.url, http_client=client).final()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_client_idle_timeout(replay_server: ReplayServer, mode: str) -> None:
    options: dict[str, Any] = {
        "model": "chat-reasoning",
        "base_url": replay_server.url,
        "headers": {"X-Streamfold-Fault": "stall=2, stall-after=4"},
        "timeouts": Timeouts(idle=0.2),
    }
    with pytest.raises(StreamTimeoutError) as caught:
        if mode == "sync":
            stream("hi", **options).final()
        else:
            asyncio.run(astream("hi", **options).final())
    assert caught.value.kind == "idle"
    assert caught.value.partial is not None
    assert caught.value.partial.unified.reasoning == "The user asks"


@pytest.mark.parametrize(
    ("raised", "kind"),
    [
        pytest.param(httpx.ConnectTimeout("connect"), "connect", id="connect"),
        pytest.param(httpx.ReadTimeout("headers"), "first_event", id="headers"),
    ],
)
def test_timeouts_before_the_headers(raised: Exception, kind: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise raised

    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as client,
        pytest.raises(StreamTimeoutError) as caught,
    ):
        stream("hi", model="m", http_client=client).final()
    assert caught.value.kind == kind and caught.value.partial is None
    assert caught.value.__cause__ is raised


async def test_async_first_event_deadline_covers_the_header_wait() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(2)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        live = astream("hi", model="m", http_client=client, timeouts=Timeouts(first_event=0.1))
        with pytest.raises(StreamTimeoutError) as caught:
            await live.final()
    assert caught.value.kind == "first_event"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_connection_refused_is_an_incomplete_stream_with_the_librarys_error(mode: str) -> None:
    # Either HTTP library may be in use: the error is streamfold's, the
    # library's own is its cause.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://user:{SECRET}@127.0.0.1:{port}"
    with pytest.raises(streamfold.IncompleteStreamError) as caught:
        if mode == "sync":
            stream("hi", model="m", base_url=url).final()
        else:
            asyncio.run(astream("hi", model="m", base_url=url).final())
    assert type(caught.value.__cause__).__name__ == "ConnectError"
    assert type(caught.value.__cause__).__module__ == http_library().__name__ == "httpx2"
    assert "cannot reach" in str(caught.value) and SECRET not in str(caught.value)
    assert caught.value.partial is None


@pytest.mark.parametrize("sample", samples.SAMPLES, ids=lambda s: s.name)
def test_every_api_reaches_its_route_with_the_sdk_url_convention(
    replay_server: ReplayServer, sample: Any
) -> None:
    # The dialects of some APIs may not be registered yet: this checks the HTTP
    # path only (URL, body, the recording chosen by model), not the fold.
    with stream(
        sample.prompt, model=sample.name, api=sample.api, base_url=replay_server.url, api_key=NO_KEY
    ) as live:
        body = b"".join(live.response.iter_bytes())
        request_id = live.metadata.request_id
    recorded = samples.read(sample.name)
    if get_api(sample.api).framing == "sse":
        assert body == recorded
    else:
        # Written in the route's framing (Bedrock's frames, Ollama's lines):
        # the same events, so the same answer.
        assert body != recorded
        assert streamfold.fold(body).response == streamfold.fold(recorded).response
    # Ollama sends no request id: then the one request of the test's context.
    served = replay_server.request(request_id) if request_id else replay_server.requests[-1]
    assert served.api == sample.api and served.recording == sample.name


def _fold_or_error(data: bytes) -> tuple[Any, BaseException | None]:
    try:
        return streamfold.fold(data), None
    except streamfold.StreamfoldError as exc:
        return exc.partial, exc


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("sample", samples.SAMPLES, ids=lambda s: s.name)
def test_every_sample_folds_over_http_as_its_bytes_do(
    replay_server: ReplayServer, sample: Any, mode: str
) -> None:
    expected, expected_error = _fold_or_error(samples.read(sample.name))
    if expected is None or (expected_error is not None and not expected.dialect):
        pytest.skip(f"no registered dialect reads {sample.api} streams yet")
    options: dict[str, Any] = {
        "model": sample.name,
        "api": sample.api,
        "base_url": replay_server.url,
        "api_key": NO_KEY,
    }
    error: BaseException | None = None
    try:
        if mode == "sync":
            result: Any = stream(sample.prompt, **options).final()
        else:
            result = asyncio.run(astream(sample.prompt, **options).final())
    except streamfold.StreamfoldError as exc:
        result, error = exc.partial, exc
    assert type(error) is type(expected_error)
    assert result.response == expected.response
    assert result.unified == expected.unified


@pytest.mark.parametrize(
    ("api", "base_url", "url"),
    [
        pytest.param(
            "gemini",
            "https://g.example/?key=abc",
            "https://g.example/v1beta/models/m:streamGenerateContent?key=abc&alt=sse",
            id="gemini-key-in-query",
        ),
        pytest.param(
            "chat", "http://h:8080/v1/", "http://h:8080/v1/chat/completions", id="trailing-slash"
        ),
        pytest.param(
            "chat",
            "https://az.example/openai/deployments/d?api-version=2024-10-21",
            "https://az.example/openai/deployments/d/chat/completions?api-version=2024-10-21",
            id="azure-query",
        ),
    ],
)
def test_the_api_path_goes_before_the_base_urls_query(api: str, base_url: str, url: str) -> None:
    assert build_request("hi", model="m", api=api, base_url=base_url).url == url


@pytest.mark.parametrize("base_url", ["ftp://h/v1", "http://[::1", "localhost:8000", "http://h:x/"])
def test_a_base_url_that_is_not_http_is_a_usage_error(base_url: str) -> None:
    with pytest.raises(streamfold.UsageError, match="base URL"):
        build_request("hi", model="m", base_url=base_url)
