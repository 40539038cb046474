"""Retries and resumption, sans IO, on a fake clock: the policy's waits, which
failures the exchange sends again, when a cut stream waits for a re-attach
request, and the seam between two connections (nothing lost, nothing doubled)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

import streamfold
from streamfold import samples
from streamfold.adapters.exchange import (
    STALLED,
    Exchange,
    Lost,
    Phase,
    ResponseHead,
    RetryPolicy,
    SentRequest,
    Timeouts,
    retry_attempt,
)
from streamfold.adapters.server import split_events
from streamfold.dialects.registry import get_api
from streamfold.errors import (
    HTTPStatusError,
    IncompleteStreamError,
    StreamTimeoutError,
    UsageError,
    timeout_error,
)
from streamfold.events import Event
from streamfold.parser import StreamParser

RESPONSES = samples.read("responses-parallel-tools")
RESPONSES_BLOCKS = split_events(RESPONSES)
CHAT = samples.read("chat-reasoning")
CHAT_BLOCKS = split_events(CHAT)
NO_WAIT = RetryPolicy(initial_delay=0.0, jitter=0.0)


class Lib(Exception):
    """Stands for the HTTP library's transport error."""


def head(
    status: int = 200,
    content_type: str = "text/event-stream",
    headers: tuple[tuple[str, str], ...] = (),
    url: str = "https://api.example/v1/responses",
    method: str = "POST",
) -> ResponseHead:
    return ResponseHead(
        status_code=status,
        reason="OK" if status == 200 else "Error",
        http_version="HTTP/1.1",
        headers=[("content-type", content_type), *headers],
        requests=[SentRequest(method, url, [])],
        received_at=40_000.0,
    )


def exchange(
    policy: RetryPolicy | None = NO_WAIT, resume: bool = False, api: str = "responses", **kw: Any
) -> Exchange:
    return Exchange(
        head(**kw.pop("head", {})),
        retry=policy,
        resume=resume,
        reattach=get_api(api).reattach,
        started=0.0,
        now=0.0,
        rand=lambda: 0.5,
        **kw,
    )


def phase(run: Exchange) -> Phase:
    # Read afresh: an assertion on ``run.phase`` would narrow it for the next.
    return run.phase


def feed(run: Exchange, blocks: list[bytes], at: float = 0.1) -> list[Event]:
    events: list[Event] = []
    for block in blocks:
        events += run.receive(block, at)
    return events


def expected_of(data: bytes) -> streamfold.Result:
    return streamfold.fold(data)


# -- the policy --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "attempt", "asked", "rand", "wait"),
    [
        pytest.param(RetryPolicy(), 1, None, 0.0, 0.5, id="first-backoff"),
        pytest.param(RetryPolicy(), 2, None, 0.0, 1.0, id="doubles"),
        pytest.param(RetryPolicy(), 6, None, 0.0, 8.0, id="capped-at-max-delay"),
        pytest.param(RetryPolicy(), 1, None, 1.0, 0.375, id="jitter-takes-up-to-a-quarter"),
        pytest.param(RetryPolicy(), 1, 3.0, 0.9, 3.0, id="retry-after-as-asked"),
        pytest.param(RetryPolicy(), 1, 0.0, 0.0, 0.5, id="retry-after-zero-backs-off"),
        pytest.param(RetryPolicy(), 1, 61.0, 0.0, None, id="retry-after-over-the-cap"),
        pytest.param(RetryPolicy(max_retry_after=120), 1, 61.0, 0.0, 61.0, id="cap-raised"),
        pytest.param(RetryPolicy(), 10_000, None, 0.0, 8.0, id="no-overflow"),
    ],
)
def test_the_wait_before_an_attempt(
    policy: RetryPolicy, attempt: int, asked: float | None, rand: float, wait: float | None
) -> None:
    assert policy.wait(attempt, asked, rand) == wait


def test_the_defaults_are_the_official_sdks() -> None:
    policy = RetryPolicy()
    assert (policy.retries, policy.initial_delay, policy.max_delay) == (2, 0.5, 8.0)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"retries": -1}, id="negative-retries"),
        pytest.param({"retries": True}, id="bool-retries"),
        pytest.param({"resumes": 1.5}, id="float-resumes"),
        pytest.param({"initial_delay": float("nan")}, id="nan-delay"),
        pytest.param({"jitter": 2}, id="jitter-over-one"),
    ],
)
def test_a_bad_policy_is_a_usage_error(options: dict[str, Any]) -> None:
    with pytest.raises(UsageError, match="RetryPolicy"):
        RetryPolicy(**options)


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        pytest.param(timeout_error("connect", 5), True, id="connect-timeout"),
        pytest.param(timeout_error("first_event", 5), True, id="first-event-timeout"),
        pytest.param(
            IncompleteStreamError("cannot reach"), False, id="incomplete-without-transport-cause"
        ),
        pytest.param(streamfold.ProtocolError("bad"), False, id="malformed"),
        pytest.param(streamfold.ProviderError("overloaded", retryable=True), False, id="in-band"),
    ],
)
def test_which_failures_before_a_response_are_sent_again(
    error: streamfold.StreamfoldError, retried: bool
) -> None:
    assert (retry_attempt(NO_WAIT, error, (), 0.0) is not None) is retried


def test_a_transport_failure_is_sent_again_until_the_retries_are_spent() -> None:
    error = IncompleteStreamError("cannot reach")
    error.__cause__ = Lib("refused")
    first = retry_attempt(NO_WAIT, error, (), 0.0)
    assert first is not None and first.number == 1 and first.error == error.info
    second = retry_attempt(NO_WAIT, error, (first,), 0.0)
    assert second is not None and second.number == 2
    assert retry_attempt(NO_WAIT, error, (first, second), 0.0) is None
    assert retry_attempt(RetryPolicy(retries=0), error, (), 0.0) is None
    assert retry_attempt(None, error, (), 0.0) is None


# -- retries after the head --------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "delay"),
    [
        pytest.param(429, (("retry-after", "2"),), 2.0, id="429-retry-after"),
        pytest.param(429, (("retry-after-ms", "250"),), 0.25, id="429-retry-after-ms"),
        pytest.param(500, (), 0.0, id="500-backoff"),
        pytest.param(529, (), 0.0, id="anthropic-529"),
        pytest.param(408, (), 0.0, id="408"),
        pytest.param(409, (), 0.0, id="409"),
        pytest.param(400, (("x-should-retry", "true"),), 0.0, id="x-should-retry-true"),
        pytest.param(500, (("x-should-retry", "false"),), None, id="x-should-retry-false"),
        pytest.param(400, (), None, id="400"),
        pytest.param(401, (), None, id="401"),
        pytest.param(429, (("retry-after", "3600"),), None, id="retry-after-too-long"),
    ],
)
def test_a_status_is_sent_again_when_retryable(
    status: int, headers: tuple[tuple[str, str], ...], delay: float | None
) -> None:
    run = exchange(head={"status": status, "content_type": "application/json", "headers": headers})
    assert run.receive(b'{"error": {"message": "no", "type": "t"}}', 0.1) == []
    assert run.receive(b"", 0.2) == []
    assert run.ended
    if delay is None:
        assert run.retry is None
        with pytest.raises(HTTPStatusError):
            run.raise_failure()
        return
    assert run.retry is not None and run.retry.delay == delay
    assert run.retry.status_code == status and run.retry.number == 1
    assert [a.number for a in run.attempts] == [1]


@pytest.mark.parametrize(
    ("read", "kind"),
    [
        pytest.param(Lost(Lib("reset")), "incomplete_stream", id="lost"),
        pytest.param(STALLED, "timeout", id="first-event-deadline"),
    ],
)
def test_a_failure_before_the_first_byte_is_sent_again(read: Any, kind: str) -> None:
    run = Exchange(
        head(),
        timeouts=Timeouts(first_event=1),
        retry=NO_WAIT,
        started=0.0,
        now=0.0,
        rand=lambda: 0.0,
    )
    events = run.receive(read, 1.5)
    assert events == [] and run.ended
    assert run.retry is not None and run.retry.error is not None
    assert run.retry.error.type == kind and run.retry.status_code == 200


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(Lost(Lib("reset")), id="lost"),
        pytest.param(STALLED, id="first-event-deadline"),
    ],
)
def test_after_the_first_byte_nothing_is_sent_again(read: Any) -> None:
    # A keep-alive comment is no event, but the provider is generating: the
    # prompt sent again would be paid twice.
    run = Exchange(
        head(),
        timeouts=Timeouts(first_event=1),
        retry=NO_WAIT,
        started=0.0,
        now=0.0,
        rand=lambda: 0.0,
    )
    events = run.receive(b": keep-alive\n\n", 0.5)
    events += run.receive(read, 1.5)
    assert run.ended and run.retry is None and events[-1].type == "error"
    with pytest.raises((IncompleteStreamError, StreamTimeoutError)):
        run.raise_failure()


@pytest.mark.parametrize(
    ("first_sent", "now", "retry_after", "retried"),
    [
        pytest.param(None, 0.1, "2", True, id="the-wait-ends-before-the-deadline"),
        pytest.param(None, 0.1, "5", False, id="the-wait-ends-past-the-deadline"),
        pytest.param(None, 4.5, "1", False, id="too-late-for-the-wait"),
        pytest.param(-4.0, 0.1, "0.5", True, id="a-later-attempt-within-the-total"),
        pytest.param(-4.0, 0.1, "1", False, id="the-total-counts-from-the-first-attempt"),
    ],
)
def test_a_retry_waits_only_within_the_total_deadline(
    first_sent: float | None, now: float, retry_after: str, retried: bool
) -> None:
    run = exchange(
        head={
            "status": 429,
            "content_type": "application/json",
            "headers": (("retry-after", retry_after),),
        },
        timeouts=Timeouts(total=5),
        first_sent=first_sent,
    )
    run.receive(b'{"error": {"message": "slow down"}}', now)
    run.receive(b"", now)
    assert run.ended and (run.retry is not None) is retried
    if not retried:
        with pytest.raises(HTTPStatusError):
            run.raise_failure()


def test_the_total_deadline_of_a_later_attempt_counts_from_the_first() -> None:
    run = exchange(api="chat", timeouts=Timeouts(total=5), first_sent=-4.0)
    assert run.deadline == 1.0
    run.receive(STALLED, 1.0)
    with pytest.raises(StreamTimeoutError) as caught:
        run.raise_failure()
    assert caught.value.info_type == "timeout" and run.retry is None  # no time left to retry


def test_once_output_started_nothing_is_sent_again() -> None:
    run = exchange(api="chat")
    events = feed(run, CHAT_BLOCKS[:3])
    events += run.receive(Lost(Lib("reset")), 0.2)
    assert run.retry is None and run.reconnect is None
    assert events[-1].type == "error"
    with pytest.raises(IncompleteStreamError) as caught:
        run.raise_failure()
    assert isinstance(caught.value.__cause__, Lib)


def test_the_attempts_so_far_are_in_the_metadata() -> None:
    error = IncompleteStreamError("cannot reach")
    error.__cause__ = Lib("refused")
    failed = retry_attempt(NO_WAIT, error, (), 0.0)
    assert failed is not None
    run = exchange(attempts=(failed,), api="chat")
    feed(run, CHAT_BLOCKS)
    run.receive(b"", 1.0)
    attempts = run.final().metadata.attempts
    assert [(a.number, a.error is None) for a in attempts] == [(1, False), (2, True)]
    assert Exchange(head(), now=0.0).metadata().attempts == ()  # a caller's response


# -- resumption ----------------------------------------------------------------------------


def _sequence(block: bytes) -> int:
    data = block.split(b"data: ", 1)[1]
    return int(msgspec.json.decode(data)["sequence_number"])


@pytest.mark.parametrize("cut", [1, 3, 10, len(RESPONSES_BLOCKS) - 1])
@pytest.mark.parametrize("overlap", [0, 1, 3])
def test_a_cut_responses_stream_is_reattached_after_its_last_sequence_number(
    cut: int, overlap: int
) -> None:
    run = exchange(resume=True)
    events = feed(run, RESPONSES_BLOCKS[:cut])
    # The cut falls inside the next event: its first half is lost with it.
    events += run.receive(RESPONSES_BLOCKS[cut][:20], 0.2)
    events += run.receive(Lost(Lib("reset")), 0.3)
    assert phase(run) is Phase.RESUMING and not run.ended and run.deadline is None
    plan = run.reconnect
    assert plan is not None and plan.via == "starting_after"
    assert plan.cursor == str(_sequence(RESPONSES_BLOCKS[cut - 1]))
    assert (
        plan.path
        == f"/responses/resp_SampleParallelTools0001?stream=true&starting_after={plan.cursor}"
    )
    run.reattached(
        head(url="https://api.example/v1/responses/x", method="GET"), sent_at=0.4, now=0.5
    )
    assert phase(run) is Phase.STREAMING
    events += feed(run, RESPONSES_BLOCKS[max(cut - overlap, 0) :], at=0.6)
    events += run.receive(b"", 0.7)
    result = run.final()
    expected = expected_of(RESPONSES)
    assert result.response == expected.response and result.unified == expected.unified
    assert not result.warnings
    uncut = list(streamfold.iter_events(RESPONSES))
    assert events == uncut
    [resumption] = result.metadata.resumptions
    assert (resumption.events_before, resumption.cursor) == (cut, plan.cursor)
    assert resumption.error is None and resumption.cut.type == "incomplete_stream"


_RESPONSES_EVENTS = list(streamfold.iter_events(RESPONSES))
_ID_BLOCKS = [b"id: e%d\n" % i + block for i, block in enumerate(CHAT_BLOCKS)]
_CHAT_EVENTS = list(streamfold.iter_events(CHAT))


@given(data=st.data(), overlap=st.integers(0, 4))
def test_a_stream_cut_at_any_byte_resumes_into_the_uncut_events(
    data: st.DataObject, overlap: int
) -> None:
    # Cut anywhere after the first event and before the last one (a cut
    # inside an event loses it whole, its id field read or not); the server
    # starts again `overlap` events before the cursor (sequence numbers tell
    # any replay; an opaque event id, only the event at the cursor sent
    # again): the events are the uncut stream's, in order.
    api = data.draw(st.sampled_from(["responses", "chat"]))
    if api == "chat":
        overlap = min(overlap, 1)
    blocks = RESPONSES_BLOCKS if api == "responses" else _ID_BLOCKS
    body = b"".join(blocks)
    cut = data.draw(st.integers(len(blocks[0]), len(body) - len(blocks[-1])))
    run = exchange(resume=True, api=api)
    events = run.receive(body[:cut], 0.1)
    events += run.receive(Lost(Lib("reset")), 0.2)
    plan = run.reconnect
    assert plan is not None and phase(run) is Phase.RESUMING
    if api == "responses":
        after = [b for b in blocks if _sequence(b) > int(plan.cursor) - overlap]
    else:
        after = blocks[max(int(plan.cursor[1:]) + 1 - overlap, 0) :]
    run.reattached(head(), sent_at=0.3, now=0.3)
    events += feed(run, after, at=0.4)
    events += run.receive(b"", 0.5)
    assert events == (_RESPONSES_EVENTS if api == "responses" else _CHAT_EVENTS)
    assert run.final().complete and len(run.metadata().resumptions) == 1


def test_an_idle_stall_resumes_a_total_one_does_not() -> None:
    run = exchange(resume=True, timeouts=Timeouts(idle=1, total=3))
    feed(run, RESPONSES_BLOCKS[:4])
    assert run.receive(STALLED, 1.5) == []
    assert run.reconnect is not None
    run.reattached(head(), sent_at=2.0, now=2.0)
    assert run.deadline == 3.0  # the idle deadline counts from the re-attach request
    feed(run, RESPONSES_BLOCKS[4:6], at=2.5)
    events = run.receive(STALLED, 3.0)  # total (3.0) before idle (3.5)
    assert run.ended and events[-1].type == "error"
    with pytest.raises(StreamTimeoutError) as caught:
        run.raise_failure()
    assert caught.value.kind == "total"
    assert [r.cut.type for r in run.metadata().resumptions] == ["timeout"]


@pytest.mark.parametrize(
    ("cut_at", "resumed"),
    [pytest.param(0.2, True, id="the-wait-ends-in-time"), pytest.param(1.6, False, id="too-late")],
)
def test_a_reattach_waits_only_within_the_total_deadline(cut_at: float, resumed: bool) -> None:
    policy = RetryPolicy(initial_delay=0.5, jitter=0.0)
    run = exchange(policy, resume=True, timeouts=Timeouts(total=2))
    feed(run, RESPONSES_BLOCKS[:4])
    events = run.receive(Lost(Lib("reset")), cut_at)
    assert (run.reconnect is not None) is resumed
    if not resumed:
        assert run.ended and events[-1].type == "error"
        with pytest.raises(IncompleteStreamError):
            run.raise_failure()


def test_server_sent_event_ids_resume_with_last_event_id_after_its_retry_field() -> None:
    blocks = [b"retry: 1500\n\n"] + [
        b"id: e%d\n" % i + block for i, block in enumerate(CHAT_BLOCKS)
    ]
    run = exchange(resume=True, api="chat")
    feed(run, blocks[:6])
    run.receive(Lost(Lib("reset")), 0.2)
    plan = run.reconnect
    assert plan is not None
    assert (plan.via, plan.cursor, plan.path, plan.delay) == ("last_event_id", "e4", None, 1.5)
    run.reattached(head(), sent_at=0.3, now=0.3)
    feed(run, blocks[5:])  # the server sent the event at the cursor again
    run.receive(b"", 0.4)
    expected = expected_of(CHAT)
    result = run.final()
    assert result.response == expected.response and result.unified == expected.unified


def test_a_stream_that_cannot_resume_fails_as_before() -> None:
    run = exchange(resume=True, api="chat")  # no re-attach request, no event ids
    feed(run, CHAT_BLOCKS[:4])
    events = run.receive(Lost(Lib("reset")), 0.2)
    assert run.ended and run.reconnect is None and events[-1].type == "error"
    with pytest.raises(IncompleteStreamError) as caught:
        run.raise_failure()
    assert caught.value.partial is not None and caught.value.partial.unified.reasoning
    assert isinstance(caught.value.__cause__, Lib)


def test_a_failed_reattach_is_tried_again_then_the_stream_ends_as_it_was_cut() -> None:
    run = exchange(RetryPolicy(resumes=3, initial_delay=0.5, jitter=0.0), resume=True)
    feed(run, RESPONSES_BLOCKS[:5])
    run.receive(Lost(Lib("reset")), 0.2)
    assert run.reconnect is not None and run.reconnect.delay == 0.5
    # 1: a server error: read its body, then another try after a backoff
    run.reattached(head(503, "application/json"), sent_at=0.3, now=0.3)
    assert phase(run) is Phase.ERROR_BODY
    assert run.receive(b'{"error": {"message": "busy", "type": "server_error"}}', 0.4) == []
    assert run.receive(b"", 0.4) == []
    assert run.reconnect is not None and run.reconnect.number == 2 and run.reconnect.delay == 1.0
    # 2: no connection at all, transient: another
    refused = IncompleteStreamError("cannot reach")
    refused.__cause__ = Lib("refused")
    assert run.reattach_failed(refused, 0.5) == []
    assert run.reconnect is not None and run.reconnect.number == 3
    # 3: a 404 is not transient: the stream ends with the error that cut it
    run.reattached(head(404, "application/json"), sent_at=0.6, now=0.6)
    run.receive(
        b'{"error": {"message": "No response found", "type": "invalid_request_error"}}', 0.7
    )
    events = run.receive(b"", 0.7)
    assert run.ended and events[-1].type == "error"
    with pytest.raises(IncompleteStreamError) as caught:
        run.raise_failure()
    assert isinstance(caught.value.__cause__, Lib)
    resumptions = caught.value.partial.metadata.resumptions  # type: ignore[union-attr]
    assert [(r.number, r.status_code) for r in resumptions] == [(1, 503), (2, None), (3, 404)]
    assert all(r.error is not None for r in resumptions)


def test_the_resumes_are_bounded() -> None:
    run = exchange(RetryPolicy(resumes=2, initial_delay=0.0, jitter=0.0), resume=True)
    feed(run, RESPONSES_BLOCKS[:3])
    for _ in range(2):
        run.receive(Lost(Lib("reset")), 0.2)
        assert run.reconnect is not None
        run.reattached(head(), sent_at=0.3, now=0.3)
        feed(run, RESPONSES_BLOCKS[3:4])
    events = run.receive(Lost(Lib("reset")), 0.4)
    assert run.ended and events[-1].type == "error"
    assert len(run.metadata().resumptions) == 2


def test_reattach_answers_only_a_planned_reconnect() -> None:
    run = exchange(resume=True)
    with pytest.raises(UsageError):
        run.reattached(head(), sent_at=0.0, now=0.0)
    with pytest.raises(UsageError):
        run.reattach_failed(IncompleteStreamError("x"), 0.0)


def test_closing_while_resuming_ends_the_stream_incomplete() -> None:
    run = exchange(resume=True)
    feed(run, RESPONSES_BLOCKS[:3])
    run.receive(Lost(Lib("reset")), 0.2)
    run.abandon(0.3)
    assert run.ended and run.reconnect is None
    with pytest.raises(IncompleteStreamError):
        run.raise_failure()


# -- the parser's seam -----------------------------------------------------------------------


def test_a_reconnected_parser_drops_the_event_the_cut_split() -> None:
    parser = StreamParser()
    parser.feed(b"".join(CHAT_BLOCKS[:3]) + CHAT_BLOCKS[3][:25])
    parser.reconnect()
    parser.feed(b"".join(CHAT_BLOCKS[3:]))
    parser.close()
    expected = expected_of(CHAT)
    assert parser.final().unified == expected.unified


def test_the_reconnection_time_and_last_id_carry_over_connections() -> None:
    parser = StreamParser()
    parser.feed(b"retry: 250\nid: 7\n" + CHAT_BLOCKS[0])
    assert (parser.last_event_id, parser.reconnection_time) == ("7", 250)
    parser.reconnect()
    assert (parser.last_event_id, parser.reconnection_time) == ("7", 250)
    parser.feed(b"id: 8\n" + CHAT_BLOCKS[1])
    assert parser.last_event_id == "8"


def test_reconnect_after_the_end_is_a_usage_error() -> None:
    parser = StreamParser()
    parser.feed(CHAT)
    parser.close()
    with pytest.raises(UsageError):
        parser.reconnect()
