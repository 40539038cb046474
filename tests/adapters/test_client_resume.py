"""Retries and resumption end to end: the client against the replay server's
resumable streams and scoped faults (``times=N``), sync and async. A resumed
result equals the uncut recording folded; what cannot resume fails as before,
and the prompt is never sent again once output has started."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

import streamfold
from streamfold import samples
from streamfold.adapters import httpx as adapter
from streamfold.adapters.client import NO_KEY, RetryPolicy, astream, stream
from streamfold.adapters.httpx import HTTPResult, HTTPStatusError, Timeouts
from streamfold.adapters.server import ReplayServer

NO_WAIT = RetryPolicy(initial_delay=0.0, jitter=0.0)
RESPONSES = "responses-parallel-tools"
CHAT = "chat-reasoning"


def run(mode: str, server: ReplayServer, name: str, **options: Any) -> HTTPResult:
    sample = next(s for s in samples.SAMPLES if s.name == name)
    options = {
        "model": name,
        "api": sample.api,
        # Each SDK's convention: OpenAI's base URL ends in /v1, Anthropic's does not.
        "base_url": server.url + ("/v1" if sample.api.startswith("openai") else ""),
        "api_key": NO_KEY,
        "retries": NO_WAIT,
        **options,
    }
    if mode == "sync":
        return stream(sample.prompt, **options).final()
    return asyncio.run(astream(sample.prompt, **options).final())


def uncut(name: str) -> streamfold.Result:
    return streamfold.fold(samples.read(name))


def same(result: streamfold.Result, name: str) -> bool:
    expected = uncut(name)
    return result.response == expected.response and result.unified == expected.unified


MODES = pytest.mark.parametrize("mode", ["sync", "async"])


@pytest.fixture(autouse=True)
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits before each retry and re-attachment, on a fake clock: no test sleeps."""
    waited: list[float] = []

    def sleep(seconds: float) -> None:
        waited.append(seconds)

    async def asleep(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(adapter, "_sleep", sleep)
    monkeypatch.setattr(adapter, "_asleep", asleep)
    return waited


# -- resume ----------------------------------------------------------------------------------


@MODES
@pytest.mark.parametrize(
    ("name", "faults", "via"),
    [
        pytest.param(RESPONSES, ["drop-after=1"], "starting_after", id="responses-drop-early"),
        pytest.param(RESPONSES, ["drop-after=12"], "starting_after", id="responses-drop-late"),
        pytest.param(
            RESPONSES, ["drop-after=6", "overlap=3"], "starting_after", id="responses-overlap"
        ),
        pytest.param(
            CHAT, ["drop-after=20, event-ids", "event-ids, overlap=1"], "last_event_id", id="ids"
        ),
    ],
)
def test_a_dropped_stream_is_resumed_into_the_uncut_result(
    replay_server: ReplayServer, mode: str, name: str, faults: list[str], via: str
) -> None:
    replay_server.inject(faults[0], times=1)
    for rest in faults[1:]:
        replay_server.inject(rest)
    result = run(mode, replay_server, name, resume=True)
    assert same(result, name) and not result.warnings
    [resumption] = result.metadata.resumptions
    assert resumption.via == via and resumption.error is None
    assert [r.wait() for r in replay_server.requests] == ["dropped", "complete"]
    first, second = replay_server.requests
    assert second.recording == first.recording == name


@MODES
def test_a_stalled_stream_is_resumed_past_its_idle_deadline(
    replay_server: ReplayServer, mode: str
) -> None:
    replay_server.inject("stall=5, stall-after=8", times=1)
    result = run(mode, replay_server, RESPONSES, resume=True, timeouts=Timeouts(idle=0.3))
    assert same(result, RESPONSES)
    assert [r.cut.type for r in result.metadata.resumptions] == ["timeout"]
    assert replay_server.requests[0].wait() == "disconnected"


def test_resume_asks_the_responses_api_for_a_background_response(
    replay_server: ReplayServer,
) -> None:
    run("sync", replay_server, RESPONSES, resume=True)
    assert replay_server.requests[0].body["background"] is True
    run("sync", replay_server, RESPONSES)
    assert "background" not in replay_server.requests[1].body


def test_a_stream_cut_again_after_resuming_is_resumed_again(replay_server: ReplayServer) -> None:
    replay_server.inject("drop-after=4", times=2)
    result = run("sync", replay_server, RESPONSES, resume=True)
    assert same(result, RESPONSES)
    assert [r.number for r in result.metadata.resumptions] == [1, 2]
    assert [r.wait() for r in replay_server.requests] == ["dropped", "dropped", "complete"]


def test_last_event_id_waits_what_the_retry_field_says(
    replay_server: ReplayServer, waits: list[float]
) -> None:
    replay_server.inject("drop-after=10, event-ids, sse-retry=2500", times=1)
    replay_server.inject("event-ids")
    result = run("sync", replay_server, CHAT, resume=True)
    assert same(result, CHAT)
    assert [r.delay for r in result.metadata.resumptions] == waits == [2.5]


@MODES
def test_a_stream_that_cannot_resume_fails_as_before_and_is_not_sent_again(
    replay_server: ReplayServer, mode: str
) -> None:
    replay_server.inject("drop-after=5", times=1)  # chat without event ids: no way to resume
    with pytest.raises(streamfold.IncompleteStreamError) as caught:
        run(mode, replay_server, CHAT, resume=True)
    partial = caught.value.partial
    assert isinstance(partial, HTTPResult) and partial.unified.reasoning
    assert partial.metadata.resumptions == ()
    assert len(replay_server.requests) == 1  # the prompt went once


@MODES
def test_a_resume_that_fails_ends_the_stream_as_it_was_cut(
    replay_server: ReplayServer, mode: str
) -> None:
    replay_server.inject("drop-after=3", times=1)
    replay_server.inject("status=400", times=1)
    with pytest.raises(streamfold.IncompleteStreamError) as caught:
        run(mode, replay_server, RESPONSES, resume=True)
    partial = caught.value.partial
    assert isinstance(partial, HTTPResult)
    [resumption] = partial.metadata.resumptions
    assert resumption.status_code == 400 and resumption.error is not None
    assert [r.method for r in replay_server.requests] == ["POST", "GET"]


def test_without_resume_a_cut_stream_is_never_continued(replay_server: ReplayServer) -> None:
    replay_server.inject("drop-after=3", times=1)
    with pytest.raises(streamfold.IncompleteStreamError):
        run("sync", replay_server, RESPONSES)
    assert len(replay_server.requests) == 1


# -- retry -----------------------------------------------------------------------------------


@MODES
@pytest.mark.parametrize(
    ("fault", "name", "status"),
    [
        pytest.param("status=429, retry-after=0", CHAT, 429, id="429"),
        pytest.param("status=500", CHAT, 500, id="500"),
        pytest.param("status=503, retry-after=0", RESPONSES, 503, id="503"),
        pytest.param("status=529, retry-after=0", "anthropic-thinking", 529, id="anthropic-529"),
        pytest.param("drop-after=0", CHAT, 200, id="dropped-before-any-event"),
    ],
)
def test_a_failure_before_any_event_is_retried_twice(
    replay_server: ReplayServer, mode: str, fault: str, name: str, status: int
) -> None:
    replay_server.inject(fault, times=2)
    result = run(mode, replay_server, name)
    assert same(result, name)
    attempts = result.metadata.attempts
    assert [(a.number, a.status_code) for a in attempts] == [(1, status), (2, status), (3, 200)]
    assert attempts[-1].error is None and all(a.error is not None for a in attempts[:2])
    assert len(replay_server.requests) == 3


def test_a_timeout_before_the_first_event_is_retried(replay_server: ReplayServer) -> None:
    replay_server.inject("stall=5, stall-after=0", times=1)
    result = run("sync", replay_server, CHAT, timeouts=Timeouts(first_event=0.3))
    assert same(result, CHAT)
    assert [a.error.type if a.error else None for a in result.metadata.attempts] == [
        "timeout",
        None,
    ]


@MODES
def test_retry_after_is_waited_as_asked(
    replay_server: ReplayServer, waits: list[float], mode: str
) -> None:
    replay_server.inject("status=429, retry-after=2", times=1)
    result = run(mode, replay_server, CHAT, retries=RetryPolicy())
    assert same(result, CHAT)
    assert waits == [2.0] and result.metadata.attempts[0].delay == 2.0


@MODES
def test_the_backoff_doubles_with_jitter(
    replay_server: ReplayServer, waits: list[float], mode: str
) -> None:
    replay_server.inject("status=500", times=2)
    result = run(mode, replay_server, CHAT, retries=2)
    assert same(result, CHAT)
    first, second = waits
    assert 0.375 <= first <= 0.5 and 0.75 <= second <= 1.0  # 0.5 s doubling, 25% jitter
    assert [a.delay for a in result.metadata.attempts] == [first, second, None]


@MODES
def test_no_retry_waits_past_the_total_deadline(
    replay_server: ReplayServer, waits: list[float], mode: str
) -> None:
    replay_server.inject("status=503, retry-after=2", times=1)
    with pytest.raises(HTTPStatusError) as caught:
        run(mode, replay_server, CHAT, retries=RetryPolicy(), timeouts=Timeouts(total=1.5))
    assert caught.value.status_code == 503 and waits == []
    assert len(replay_server.requests) == 1


@pytest.mark.parametrize(
    ("fault", "retries", "requests"),
    [
        pytest.param("status=429, retry-after=0", NO_WAIT, 3, id="spent-after-two"),
        pytest.param("status=429, retry-after=0", 0, 1, id="zero-turns-it-off"),
        pytest.param("status=400", NO_WAIT, 1, id="not-retryable"),
        pytest.param("status=429, retry-after=3600", NO_WAIT, 1, id="retry-after-over-the-cap"),
        pytest.param("drop-after=2", NO_WAIT, 1, id="output-started"),
        pytest.param("error-after=0", NO_WAIT, 1, id="in-band-error"),
    ],
)
def test_what_is_not_retried(
    replay_server: ReplayServer, fault: str, retries: Any, requests: int
) -> None:
    replay_server.inject(fault)
    with pytest.raises(streamfold.StreamfoldError):
        run("sync", replay_server, CHAT, retries=retries)
    assert len(replay_server.requests) == requests


def test_a_connection_error_is_retried_then_raised() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("refused")

    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as client,
        pytest.raises(streamfold.IncompleteStreamError, match="cannot reach"),
    ):
        stream("hi", model="m", http_client=client, retries=NO_WAIT).final()
    assert len(calls) == 3


@pytest.mark.parametrize(
    ("should_retry", "calls"),
    [pytest.param("false", 1, id="false-on-500"), pytest.param("true", 3, id="true-on-400")],
)
def test_x_should_retry_decides(should_retry: str, calls: int) -> None:
    seen: list[httpx.Request] = []
    status = 500 if should_retry == "false" else 400

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            status, json={"error": {"message": "no"}}, headers={"x-should-retry": should_retry}
        )

    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as client,
        pytest.raises(HTTPStatusError),
    ):
        stream("hi", model="m", http_client=client, retries=NO_WAIT).final()
    assert len(seen) == calls


def test_a_bad_retries_value_is_a_usage_error() -> None:
    with pytest.raises(streamfold.UsageError, match="retries"):
        stream("hi", model="m", retries="2")  # type: ignore[arg-type]
