"""The sans-IO exchange on a fake clock: every deadline, the body checks, the
error bodies of each provider, the metadata and the secrets, with no socket and
no sleeping. Each read's outcome is handed in with the time, as the adapters do."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import pytest

import streamfold
from streamfold import samples
from streamfold.adapters.exchange import (
    MAX_ERROR_BODY,
    STALLED,
    Exchange,
    Lost,
    Read,
    ResponseHead,
    SentRequest,
    Timeouts,
    request_id_of,
)
from streamfold.adapters.server import split_events
from streamfold.errors import (
    ContentTypeError,
    HTTPStatusError,
    IncompleteStreamError,
    ProtocolError,
    ProviderError,
    StreamfoldError,
    StreamTimeoutError,
    UsageError,
)
from streamfold.events import Event
from streamfold.result import HTTPResult
from streamfold.sse import DEFAULT_MAX_EVENT_SIZE

URL = "https://api.example/v1/chat/completions"
KEY = "sk-test-ECHOED-0123456789abcdef"
BLOCKS = split_events(samples.read("chat-reasoning"))


def make_head(
    status: int = 200,
    content_type: str | None = "text/event-stream",
    headers: Sequence[tuple[str, str]] = (),
    *,
    url: str = URL,
    sent: Sequence[tuple[str, str]] = (),
    requests: Sequence[SentRequest] | None = None,
    read_timeout: float | None = None,
    received_at: float = 40_200.0,
) -> ResponseHead:
    pairs = [("content-type", content_type)] if content_type else []
    return ResponseHead(
        status_code=status,
        reason="OK" if status == 200 else "Error",
        http_version="HTTP/1.1",
        headers=[*pairs, *headers],
        requests=requests if requests is not None else [SentRequest("POST", url, list(sent))],
        received_at=received_at,
        read_timeout=read_timeout,
    )


class Run:
    """An exchange driven by hand: each read's outcome at a given time."""

    def __init__(self, head: ResponseHead, timeouts: Timeouts | None = None, **options: Any):
        self.exchange = Exchange(head, timeouts=timeouts, started=0.0, now=0.0, **options)
        self.events: list[Event] = []

    def read(self, outcome: Read, at: float) -> Run:
        assert not self.exchange.ended, "read after the end"
        self.events += self.exchange.receive(outcome, at)
        return self

    def error(self) -> StreamfoldError:
        assert self.exchange.ended
        error = self.exchange.failure
        assert error is not None
        with pytest.raises(type(error)):
            self.exchange.raise_failure()
        return error


# -- deadlines, on a fake clock ----------------------------------------------------------


@pytest.mark.parametrize(
    ("timeouts", "reads", "kind", "limit", "events"),
    [
        pytest.param(
            Timeouts(first_event=5, idle=1),
            [(BLOCKS[0], 4.0), (STALLED, 5.0)],
            "idle",
            1,
            1,
            id="first-event-longer-than-idle-waits-first-event",
        ),
        pytest.param(
            Timeouts(first_event=5, idle=1),
            [(STALLED, 5.0)],
            "first_event",
            5,
            0,
            id="first-event-passes",
        ),
        pytest.param(
            Timeouts(first_event=1, idle=5),
            [(BLOCKS[0], 0.5), (BLOCKS[1], 5.0), (STALLED, 10.0)],
            "idle",
            5,
            2,
            id="idle-moves-with-every-event",
        ),
        pytest.param(
            Timeouts(first_event=5, idle=5, total=2),
            [(BLOCKS[0], 1.0), (STALLED, 2.0)],
            "total",
            2,
            1,
            id="total-caps-idle",
        ),
        pytest.param(
            Timeouts(idle=1),
            [
                (BLOCKS[0], 0.1),
                (b": keep-alive\n\n", 0.9),
                (b": keep-alive\n\n", 1.09),
                (BLOCKS[1], 1.2),
            ],
            "idle",
            1,
            1,
            id="comments-do-not-hold-a-stalled-stream-open",
        ),
        pytest.param(
            Timeouts(idle=1),
            [(BLOCKS[0], 0.1), (BLOCKS[1], 1.5)],
            "idle",
            1,
            1,
            id="bytes-after-the-deadline-do-not-count",
        ),
        pytest.param(
            Timeouts(idle=1),
            [(BLOCKS[0], 0.1), (b"", 1.5)],
            "idle",
            1,
            1,
            id="an-end-after-the-deadline-does-not-count",
        ),
    ],
)
def test_deadlines(
    timeouts: Timeouts,
    reads: list[tuple[Read, float]],
    kind: str,
    limit: float,
    events: int,
) -> None:
    run = Run(make_head(), timeouts)
    for outcome, at in reads:
        run.read(outcome, at)
    error = run.error()
    assert isinstance(error, StreamTimeoutError)
    assert (error.kind, error.timeout, error.position) == (kind, limit, events)
    assert f"after {limit:g} s" in str(error)
    partial = error.partial
    assert isinstance(partial, HTTPResult)
    assert partial.metadata.events_received == events
    assert run.events[-1].type == "error"


@pytest.mark.parametrize(
    ("timeouts", "reads", "deadline"),
    [
        pytest.param(Timeouts(first_event=5, idle=1), [], 5.0, id="first-event"),
        pytest.param(Timeouts(first_event=5, idle=1), [(BLOCKS[0], 3.0)], 4.0, id="then-idle"),
        pytest.param(Timeouts(first_event=5, idle=9, total=6), [(BLOCKS[0], 3.0)], 6.0, id="total"),
        pytest.param(Timeouts(first_event=None, idle=None), [(BLOCKS[0], 3.0)], None, id="none"),
    ],
)
def test_the_deadline_each_read_must_not_outlive(
    timeouts: Timeouts, reads: list[tuple[Read, float]], deadline: float | None
) -> None:
    run = Run(make_head(), timeouts)
    for outcome, at in reads:
        run.read(outcome, at)
    assert run.exchange.deadline == deadline


def test_a_stall_the_http_client_cut_first_names_its_read_timeout() -> None:
    # The caller's client gave up after 3 s, before first_event's 600 s: the
    # error says what really happened.
    run = Run(make_head(read_timeout=3.0), Timeouts()).read(STALLED, 3.0)
    error = run.error()
    assert isinstance(error, StreamTimeoutError)
    assert (error.kind, error.timeout) == ("first_event", 3.0)
    assert "after 3 s" in str(error)


def test_the_read_timeouts_a_client_gives_never_cut_a_deadline_short() -> None:
    timeouts = Timeouts(first_event=5, idle=1, total=None)
    assert timeouts.header_read() == 5  # before the head: no event can come
    assert timeouts.body_read() == 5  # the longest a read may wait while a deadline may apply
    assert Timeouts(first_event=1, idle=5, total=3).body_read() == 3
    assert Timeouts(first_event=None, idle=5).body_read() is None


def test_a_clean_stream_ends_complete_with_its_timings() -> None:
    run = Run(make_head(), Timeouts(idle=1))
    for at, block in enumerate(BLOCKS):
        run.read(block, 0.5 + at * 0.01)
    run.read(b"", 9.0) if not run.exchange.ended else None
    result = run.exchange.final()
    assert result.complete and result.text == streamfold.fold(samples.read("chat-reasoning")).text
    assert result.metadata.time_to_first_byte == 0.5
    assert result.metadata.time_to_first_event == 0.5
    assert result.metadata.events_received == len(BLOCKS)


def test_a_lost_connection_is_incomplete_with_its_cause() -> None:
    cause = ConnectionResetError("reset")
    run = Run(make_head()).read(BLOCKS[0], 0.1).read(Lost(cause), 0.2)
    error = run.error()
    assert isinstance(error, IncompleteStreamError) and not isinstance(error, StreamTimeoutError)
    assert error.__cause__ is cause


# -- bodies that are not a stream, read under the same deadlines --------------------------


ERROR_BODY = (
    b'{"error": {"message": "Rate limit reached", "type": "requests",'
    b' "code": "rate_limit_exceeded"}}'
)


def test_a_stalled_error_body_ends_at_the_deadline_with_what_arrived() -> None:
    run = Run(make_head(429, "application/json"), Timeouts(first_event=1, idle=1, total=2))
    assert run.exchange.deadline == 1.0  # an error body is waited for like the first event
    run.read(ERROR_BODY[:20], 0.1).read(STALLED, 1.0)
    error = run.error()
    assert isinstance(error, HTTPStatusError) and error.status_code == 429
    assert error.body == ERROR_BODY[:20].decode()
    assert isinstance(error.__cause__, StreamTimeoutError)
    assert error.__cause__.kind == "first_event"
    assert "body cut short: timed out" in str(error)


@pytest.mark.parametrize(
    ("status", "content_type", "body", "error_type"),
    [
        pytest.param(500, "application/json", ERROR_BODY, HTTPStatusError, id="error-status"),
        pytest.param(
            200, "application/json", ERROR_BODY, ContentTypeError, id="json-object-on-200"
        ),
        pytest.param(200, "text/html", b"<html>" + b"x" * 100, ContentTypeError, id="html"),
    ],
)
def test_a_trickled_body_ends_at_the_deadline(
    status: int, content_type: str, body: bytes, error_type: type[Exception]
) -> None:
    # One byte every 0.3 s: the deadline passes between two of them.
    run = Run(make_head(status, content_type), Timeouts(first_event=1, idle=1))
    at = 0.0
    for byte in range(len(body)):
        at += 0.3
        run.read(body[byte : byte + 1], at)
        if run.exchange.ended:
            break
    assert at == pytest.approx(1.2)
    error = run.error()
    assert isinstance(error, error_type)
    assert isinstance(error.__cause__, StreamTimeoutError)
    assert getattr(error, "body", "") == body[:3].decode()


def test_an_error_body_is_read_up_to_its_limit() -> None:
    run = Run(make_head(502, "text/html"))
    chunk = b"x" * 1000
    reads = 0
    while not run.exchange.ended:
        run.read(chunk, 0.0)
        reads += 1
    assert reads == MAX_ERROR_BODY // 1000 + 1
    error = run.error()
    assert isinstance(error, HTTPStatusError) and len(error.body) == MAX_ERROR_BODY


def test_a_json_body_leading_whitespace_is_bounded() -> None:
    # The framing layer's one sniff, with the parser's limit: the same bound
    # as for any other body.
    run = Run(make_head(200, "application/json"))
    chunk = b" \n" * 32 * 1024
    while not run.exchange.ended:
        run.read(chunk, 0.0)
    error = run.error()
    assert isinstance(error, ProtocolError)
    assert str(DEFAULT_MAX_EVENT_SIZE) in str(error)
    assert run.exchange.bytes <= DEFAULT_MAX_EVENT_SIZE + len(chunk)


@pytest.mark.parametrize("cut", [1, 2, 3, 5])
def test_a_json_array_after_a_split_byte_order_mark_streams(cut: int) -> None:
    try:
        expected = streamfold.fold(samples.read("gemini-thinking"))
    except StreamfoldError:
        pytest.skip("no registered dialect reads Gemini yet")
    elements = [
        line.removeprefix(b"data: ")
        for block in split_events(samples.read("gemini-thinking"))
        for line in block.splitlines()
        if line.startswith(b"data: ")
    ]
    body = b"\xef\xbb\xbf \n[" + b",".join(elements) + b"]"
    run = Run(make_head(200, "application/json"))
    for start in range(0, len(body), cut):
        if not run.exchange.ended:
            run.read(body[start : start + cut], 0.0)
    if not run.exchange.ended:
        run.read(b"", 0.0)
    assert run.exchange.final().unified == expected.unified


# -- error envelopes, each provider's through its dialect ----------------------------------


@pytest.mark.parametrize(
    ("body", "headers", "code", "message", "request_id", "retry_after"),
    [
        pytest.param(
            b'[{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED",'
            b' "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",'
            b' "retryDelay": "1.5s"}]}}]',
            [],
            "RESOURCE_EXHAUSTED",
            "quota",
            None,
            1.5,
            id="gemini-array-wrapped",
        ),
        pytest.param(
            b'{"error": {"code": 503, "message": "down", "status": "UNAVAILABLE",'
            b' "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",'
            b' "retryDelay": "nans"}]}}',
            [],
            "UNAVAILABLE",
            "down",
            None,
            None,
            id="gemini-hostile-retry-delay",
        ),
        pytest.param(
            b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},'
            b' "request_id": "req_011CBody"}',
            [],
            "overloaded_error",
            "Overloaded",
            "req_011CBody",
            None,
            id="anthropic-body-request-id",
        ),
        pytest.param(
            b'{"error": {"code": 429, "message": "slow down", "metadata": {}}}',
            [("x-generation-id", "gen-1")],
            "429",
            "slow down",
            "gen-1",
            None,
            id="openrouter-numeric-code",
        ),
        pytest.param(
            ERROR_BODY,
            [("retry-after", "Thu, 01 Jan 1970 11:46:50 GMT"), ("x-request-id", "req_1")],
            "rate_limit_exceeded",
            "Rate limit reached",
            "req_1",
            2210.0,
            id="openai-http-date-retry-after",
        ),
    ],
)
def test_error_envelopes(
    body: bytes,
    headers: list[tuple[str, str]],
    code: str,
    message: str,
    request_id: str | None,
    retry_after: float | None,
) -> None:
    run = Run(make_head(429, "application/json", headers)).read(body, 0.1).read(b"", 0.2)
    error = run.error()
    assert isinstance(error, HTTPStatusError)
    assert (error.code, error.provider_message, error.request_id) == (code, message, request_id)
    assert error.retry_after == retry_after
    assert error.retryable


@pytest.mark.parametrize(
    ("headers", "dialect", "expected"),
    [
        pytest.param({"x-request-id": "a", "request-id": "b"}, None, "a", id="registry-order"),
        pytest.param(
            {"x-request-id": "a", "request-id": "b"}, "anthropic", "b", id="its-row-first"
        ),
        pytest.param({"x-goog-request-id": "g"}, "openai-chat", "g", id="then-the-others"),
        pytest.param({"apim-request-id": "z"}, None, "z", id="azure"),
        pytest.param({}, None, None, id="none"),
    ],
)
def test_request_id_headers_come_from_the_registry(
    headers: dict[str, str], dialect: str | None, expected: str | None
) -> None:
    assert request_id_of(headers, dialect) == expected


# -- secrets -------------------------------------------------------------------------------


def _texts(run: Run, error: BaseException) -> list[str]:
    texts = [str(error), repr(error), repr(vars(error)), repr(run.exchange.metadata())]
    texts += [msgspec.json.encode(event).decode() for event in run.events]
    texts.append(msgspec.json.encode(run.exchange.snapshot()).decode())
    return texts


@pytest.mark.parametrize("cut", [1, 7, 1000])
def test_a_key_echoed_in_band_is_redacted_wherever_the_bytes_were_cut(cut: int) -> None:
    body = (
        BLOCKS[0]
        + b'data: {"error": {"message": "Incorrect API key provided: '
        + KEY.encode()
        + b'", "code": "invalid_api_key"}}\n\n'
    )
    run = Run(make_head(sent=[("Authorization", f"Bearer {KEY}")]))
    for start in range(0, len(body), cut):
        if not run.exchange.ended:
            run.read(body[start : start + cut], 0.0)
    if not run.exchange.ended:
        run.read(b"", 0.0)
    error = run.error()
    assert isinstance(error, ProviderError)
    assert "REDACTED" in error.provider_message
    assert all(KEY not in text for text in _texts(run, error))


def test_a_key_echoed_in_an_error_body_headers_or_url_is_redacted() -> None:
    head = make_head(
        401,
        "application/json",
        [("x-echo", f"you sent {KEY}"), ("x-request-id", "req_1")],
        url=f"https://user:{KEY}@api.example/v1beta/models/m:streamGenerateContent?key={KEY}",
        sent=[("x-goog-api-key", KEY)],
    )
    body = b'{"error": {"message": "API key ' + KEY.encode() + b' not valid", "code": 401}}'
    run = Run(head).read(body[:30], 0.1).read(body[30:], 0.2).read(b"", 0.3)
    error = run.error()
    assert isinstance(error, HTTPStatusError)
    assert "REDACTED" in error.body and "REDACTED" in str(error)
    assert all(KEY not in text for text in _texts(run, error))
    assert "user:REDACTED@" in error.metadata.url


@pytest.mark.parametrize(
    ("urls", "header", "refused"),
    [
        pytest.param(
            ["https://a.example/v1", "https://b.example/v1"], "x-api-key", True, id="other-host"
        ),
        pytest.param(
            ["https://a.example/v1", "https://a.example:8443/v1"],
            "x-goog-api-key",
            True,
            id="other-port",
        ),
        pytest.param(
            ["https://a.example/v1", "https://a.example/v2"], "x-api-key", False, id="same-origin"
        ),
        pytest.param(
            ["http://a.example/v1", "https://a.example/v1"], "api-key", False, id="https-upgrade"
        ),
        pytest.param(
            ["https://a.example/v1", "https://b.example/v1"], "accept", False, id="no-key"
        ),
    ],
)
def test_a_redirect_that_carried_a_key_to_another_origin_is_refused(
    urls: list[str], header: str, refused: bool
) -> None:
    requests = [SentRequest("POST", url, [(header, KEY)]) for url in urls]
    head = make_head(requests=requests)
    if refused:
        with pytest.raises(UsageError, match="another origin") as caught:
            Exchange(head, now=0.0)
        assert KEY not in str(caught.value)
    else:
        Exchange(head, now=0.0)


def test_nothing_is_taken_after_the_end() -> None:
    run = Run(make_head(500, "text/plain")).read(b"oops", 0.0).read(b"", 0.0)
    assert run.exchange.ended
    assert run.exchange.receive(b"more", 1.0) == []
    assert isinstance(run.error(), HTTPStatusError)
