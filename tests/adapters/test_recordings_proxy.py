"""Recording through the proxy, over real sockets on loopback: a second replay
server stands in for the upstream API. Each record mode, matching across a
conversation, and no secret ever written to a recording."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import streamfold
from streamfold import samples
from streamfold.adapters.recordings import FORMAT, Recording, load_recordings
from streamfold.adapters.server import ReplayServer
from streamfold.client import NO_KEY, stream
from streamfold.errors import HTTPStatusError

SECRET = "sk-proxy-LEAKCHECK-0042"


@pytest.fixture
def upstream() -> Iterator[ReplayServer]:
    """The "real API": the shipped samples, on their own port."""
    with ReplayServer() as server:
        yield server


def _ask(url: str, model: str = "chat-reasoning", prompt: str = "hi", **options: Any) -> Any:
    options.setdefault("api_key", SECRET)
    return stream(prompt, model=model, base_url=url, **options).final()


def _served(server: ReplayServer) -> list[Any]:
    """The server's requests, once each has ended (a client may finish first)."""
    requests = server.requests
    for record in requests:
        record.wait(10)
    return requests


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# -- recording, then replaying offline ------------------------------------------------------------


def test_recorded_then_replayed_offline_folds_as_the_upstreams_recording(
    upstream: ReplayServer, tmp_path: Path
) -> None:
    expected = streamfold.fold(samples.read("chat-reasoning"))
    with ReplayServer({}, record=tmp_path, upstream=upstream.url) as proxy:
        live = _ask(proxy.url + "/v1")
        served = _served(proxy)[-1]
    assert (served.outcome, served.recorded, served.upstream) == (
        "complete",
        "chat-reasoning-1",
        upstream.url,
    )
    assert (
        served.events_sent == expected.metadata.events_received
        if hasattr(expected, "metadata")
        else served.events_sent > 0
    )
    assert live.response == expected.response
    assert len(upstream.requests) == 1
    assert _files(tmp_path) == ["chat-reasoning-1.meta.json", "chat-reasoning-1.sse"]
    assert (tmp_path / "chat-reasoning-1.sse").read_bytes() == samples.read("chat-reasoning")
    meta = json.loads((tmp_path / "chat-reasoning-1.meta.json").read_text())
    assert meta["format"] == FORMAT and meta["api"] == "openai-chat"
    assert meta["request"]["path"] == "/v1/chat/completions"
    assert meta["request"]["body"] == upstream.requests[0].body
    assert meta["response"]["status"] == 200
    headers = meta["response"]["headers"]
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["x-request-id"] == upstream.requests[0].id
    assert "x-ratelimit-remaining-requests" in headers

    upstream.stop()  # offline from here on
    with ReplayServer({}, record=tmp_path, record_mode="none") as offline:
        replayed = _ask(offline.url + "/v1")
        again = _served(offline)[-1]
    assert replayed.response == expected.response and replayed.unified == expected.unified
    assert (again.outcome, again.recording, again.upstream) == (
        "complete",
        "chat-reasoning-1",
        None,
    )


def test_mode_once_replays_what_it_has_and_records_what_is_missing(
    upstream: ReplayServer, tmp_path: Path
) -> None:
    with ReplayServer({}, record=tmp_path, upstream=upstream.url) as proxy:
        _ask(proxy.url + "/v1", prompt="first")
    with ReplayServer({}, record=tmp_path, upstream=upstream.url) as proxy:
        _ask(proxy.url + "/v1", prompt="first")  # recorded: replayed
        assert len(upstream.requests) == 1
        _ask(proxy.url + "/v1", prompt="second")  # missing: recorded
        assert len(upstream.requests) == 2
        assert [r.recorded for r in _served(proxy)] == [None, "chat-reasoning-2"]
        assert [r.recording for r in proxy.requests] == ["chat-reasoning-1", None]
    assert len(load_recordings(tmp_path)) == 2


def test_mode_all_records_every_request_again(upstream: ReplayServer, tmp_path: Path) -> None:
    with ReplayServer({}, record=tmp_path, upstream=upstream.url) as proxy:
        _ask(proxy.url + "/v1")
    with ReplayServer({}, record=tmp_path, upstream=upstream.url, record_mode="all") as proxy:
        upstream.script("chat-parallel-tools")  # the API answers differently now
        result = _ask(proxy.url + "/v1")
        assert _served(proxy)[-1].recorded == "chat-reasoning-1"  # replaced in place
    assert len(upstream.requests) == 2
    assert [c.name for c in result.unified.tool_calls] == ["get_weather", "get_weather"]
    assert _files(tmp_path) == ["chat-reasoning-1.meta.json", "chat-reasoning-1.sse"]
    assert (tmp_path / "chat-reasoning-1.sse").read_bytes() == samples.read("chat-parallel-tools")


def test_mode_none_sends_nothing_and_the_404_says_so(
    upstream: ReplayServer, tmp_path: Path
) -> None:
    with ReplayServer({}, record=tmp_path, upstream=upstream.url, record_mode="none") as proxy:
        with pytest.raises(HTTPStatusError) as caught:
            _ask(proxy.url + "/v1")
        assert _served(proxy)[-1].outcome == "not-found"
    assert caught.value.status_code == 404
    assert "record mode none: nothing is sent upstream" in str(caught.value)
    assert upstream.requests == [] and _files(tmp_path) == []


def test_an_unreachable_upstream_is_a_502_naming_it(tmp_path: Path) -> None:
    with ReplayServer({}) as gone:
        url = gone.url
    with ReplayServer({}, record=tmp_path, upstream=url) as proxy:
        with pytest.raises(HTTPStatusError) as caught:
            _ask(proxy.url + "/v1")
        served = _served(proxy)[-1]
    assert caught.value.status_code == 502
    assert f"cannot reach the upstream API at {url}" in str(caught.value)
    assert served.outcome == "upstream-failed" and _files(tmp_path) == []


def test_an_upstream_error_is_passed_on_and_not_recorded_when_it_would_replay_a_failure(
    upstream: ReplayServer, tmp_path: Path
) -> None:
    upstream.inject("status=429, retry-after=0", times=1)
    with ReplayServer({}, record=tmp_path, upstream=upstream.url) as proxy:
        with pytest.raises(HTTPStatusError) as caught:
            _ask(proxy.url + "/v1", retries=0)  # the error itself, as the proxy passed it on
        assert caught.value.status_code == 429 and caught.value.retryable
        assert "not recorded: a 429 would replay that failure" in _served(proxy)[-1].log_line()
        _ask(proxy.url + "/v1")  # the retry goes upstream again, and is recorded
        assert _served(proxy)[-1].recorded == "chat-reasoning-1"


def test_a_client_that_leaves_mid_stream_records_nothing(
    upstream: ReplayServer, tmp_path: Path
) -> None:
    upstream.inject("stall=30, stall-after=2")  # the upstream holds the rest back
    with ReplayServer({}, record=tmp_path, upstream=upstream.url) as proxy:
        with stream(
            "hi", model="chat-reasoning", base_url=proxy.url + "/v1", api_key=NO_KEY
        ) as live:
            next(iter(live))
        served = proxy.requests[-1]
        assert served.wait(10) == "disconnected"
    assert served.recorded is None and _files(tmp_path) == []
    assert "disconnected after 1 events" in served.log_line() or "disconnected after" in (
        served.log_line()
    )


# -- matching a conversation ----------------------------------------------------------------------

TURNS = [
    [{"role": "user", "content": "What is the weather in Paris and in São Paulo?"}],
    [
        {"role": "user", "content": "What is the weather in Paris and in São Paulo?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1"}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18 °C"},
    ],
    [
        {"role": "user", "content": "What is the weather in Paris and in São Paulo?"},
        {"role": "assistant", "content": "Paris 18 °C, São Paulo 25 °C."},
        {"role": "user", "content": "Is 9.11 larger than 9.9?"},
    ],
]
ANSWERS = ["chat-parallel-tools", "chat-midstream-error", "chat-reasoning"]


def _turn(url: str, turn: int, **options: Any) -> Any:
    try:
        return _ask(url, model="gpt-test", prompt=TURNS[turn], **options)  # type: ignore[arg-type]
    except streamfold.ProviderError as exc:
        return exc.partial


def test_a_three_turn_conversation_replays_each_turn_by_its_body(
    upstream: ReplayServer, tmp_path: Path
) -> None:
    upstream.script(*ANSWERS)
    with ReplayServer({}, record=tmp_path, upstream=upstream.url) as proxy:
        recorded = [_turn(proxy.url + "/v1", turn).text for turn in range(3)]
    assert [r.recorded for r in _served(proxy)] == ["gpt-test-1", "gpt-test-2", "gpt-test-3"]
    upstream.stop()
    with ReplayServer({}, record=tmp_path, record_mode="none") as offline:
        # Out of order, and the volatile `user` field changed: each turn's own answer.
        replayed = {
            turn: _turn(offline.url + "/v1", turn, extra_body={"user": f"run-{turn}"}).text
            for turn in (2, 0, 1)
        }
        assert [r.recording for r in offline.requests] == [
            "gpt-test-3",
            "gpt-test-1",
            "gpt-test-2",
        ]
    assert [replayed[turn] for turn in range(3)] == recorded
    assert recorded == [_text(name) for name in ANSWERS]


def _text(name: str) -> str:
    parser = streamfold.StreamParser()
    parser.feed(samples.read(name))
    parser.close()
    return parser.snapshot.text


def test_a_body_that_matches_no_turn_is_a_404_saying_what_there_is(tmp_path: Path) -> None:
    recording = Recording(
        "gpt-test-1",
        samples.read("chat-reasoning"),
        request=streamfold.adapters.recordings.RecordedRequest(
            "POST", "/v1/chat/completions", "gpt-test", {"model": "gpt-test", "messages": []}
        ),
    )
    with ReplayServer({"gpt-test-1": recording}) as server:
        response = httpx.post(
            server.url + "/v1/chat/completions",
            json={"model": "gpt-test", "messages": [{"role": "user", "content": "new"}]},
        )
    message = response.json()["error"]["message"]
    assert response.status_code == 404
    assert "1 recorded for 'gpt-test' answer other request bodies" in message
    assert "recordings of openai-chat: gpt-test-1" in message


# -- secrets ---------------------------------------------------------------------------------------


def _echoing_upstream(folder: Path) -> dict[str, Recording]:
    # An API that echoes the key in-band and sets a cookie holding it.
    body = (
        b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{"content":"key ' + SECRET.encode() + b'"},'
        b'"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    )
    (folder / "echo.sse").write_bytes(body)
    meta = {
        "format": FORMAT,
        "response": {
            "headers": {"set-cookie": f"session={SECRET}", "x-request-id": "req_e"},
            "body": "echo.sse",
        },
    }
    (folder / "echo.meta.json").write_text(json.dumps(meta))
    return load_recordings(folder)


@pytest.mark.parametrize(
    ("api", "base", "how"),
    [
        pytest.param("chat", "/v1", "key", id="chat-bearer"),
        pytest.param("anthropic", "", "key", id="anthropic-x-api-key"),
        pytest.param("gemini", "", "query", id="gemini-query-key"),
        pytest.param("chat", "/v1", "header", id="chat-extra-header"),
    ],
)
def test_no_secret_is_ever_written_to_a_recording(
    tmp_path: Path, api: str, base: str, how: str
) -> None:
    source = tmp_path / "upstream"
    source.mkdir()
    folder = tmp_path / "recorded"
    with (
        ReplayServer(_echoing_upstream(source)) as upstream,
        ReplayServer({}, record=folder, upstream=upstream.url) as proxy,
    ):
        url = proxy.url + base + (f"?key={SECRET}" if how == "query" else "")
        options: dict[str, Any] = {"api": api, "api_key": SECRET if how == "key" else NO_KEY}
        if how == "header":
            options["headers"] = {"Cookie": f"session={SECRET}", "Api-Key": SECRET}
        result = _ask(url, model="echo", **options)
        served = _served(proxy)[-1]
    assert served.recorded == "echo-1", served.log_line()
    assert result.text.startswith("hikey ")
    files = list(folder.rglob("*"))
    assert files and all(SECRET.encode() not in p.read_bytes() for p in files if p.is_file())
    meta = json.loads((folder / "echo-1.meta.json").read_text())
    assert "set-cookie" not in meta["response"]["headers"]
    assert b"REDACTED" in (folder / "echo-1.sse").read_bytes()
    assert SECRET not in served.log_line()
