"""The ASGI response that relays events re-encoded: driven in process through
its ``receive`` and ``send``, as a server drives it. It writes exactly the
encoder's bytes with the target's headers, keep-alive frames only where the
target's framing has them and only when the upstream is silent, ends a failed
upstream as the target says, and closes the upstream when the client leaves.
(Over a real socket, with the live client and the replay server:
``tests/test_example_fastapi.py``.)
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import anyio
import pytest

import streamfold
from streamfold import events as ev
from streamfold.adapters.asgi import EncodedStreamResponse
from streamfold.encode import Encoder, GeminiEncoder, get
from streamfold.errors import (
    IncompleteStreamError,
    ProviderError,
    StreamTimeoutError,
    UsageError,
    timeout_error,
)

from ..corpus import ROOT

SAMPLES = sorted((ROOT / "src" / "streamfold" / "samples").glob("*.sse"))
TARGETS = ["openai-chat", "openai-responses", "anthropic", "gemini", "gemini-array", "ai-sdk-ui"]
SSE_TARGETS = [t for t in TARGETS if t != "gemini-array"]
TEXT = SAMPLES[0].read_bytes()  # anthropic-thinking: reasoning, then text


def encoder(target: str) -> Encoder:
    return GeminiEncoder(json_array=True) if target == "gemini-array" else get(target)()


def encoded(data: bytes, target: str) -> bytes:
    out = encoder(target)
    parser = streamfold.StreamParser()
    body = out.encode_all(parser.feed(data)) + out.encode_all(parser.close())
    return body + out.close()


class Client:
    """The server's side of one request: what was sent, and a client that can leave."""

    def __init__(self, leave_after: int | None = None) -> None:
        self.messages: list[dict[str, Any]] = []
        self.leave_after = leave_after  # body messages, then http.disconnect
        self.gone = anyio.Event()

    async def send(self, message: MutableMapping[str, Any]) -> None:
        self.messages.append(dict(message))
        if self.leave_after is not None and len(self.bodies) >= self.leave_after:
            self.gone.set()

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    @property
    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.messages if m["type"] == "http.response.body"]

    @property
    def ended(self) -> bool:
        """The response body was ended (``more_body`` false)."""
        return self.messages[-1] == {"type": "http.response.body", "body": b"", "more_body": False}

    async def serve(self, response: EncodedStreamResponse) -> None:
        with anyio.fail_after(30):
            await response(
                {"type": "http", "asgi": {"spec_version": "2.4"}}, self.receive, self.send
            )


async def play(data: bytes, gaps: dict[int, Any] | None = None) -> AsyncIterator[ev.Event]:
    """The events of ``data``; before event number N, awaits ``gaps[N]()``."""
    for number, event in enumerate(streamfold.iter_events(data, strict=False)):
        if gaps and number in gaps:
            await gaps[number]()
        yield event


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
async def test_the_body_is_exactly_the_encoders_bytes(path: Path, target: str) -> None:
    # aiter_events raises after a stream's error event (chat-midstream-error):
    # the response has written that error already and ends the body.
    data = path.read_bytes()
    client = Client()
    await client.serve(EncodedStreamResponse(streamfold.aiter_events(data), encoder(target)))
    assert b"".join(client.bodies) == encoded(data, target)
    assert client.ended


@pytest.mark.parametrize(
    ("target", "content_type", "ui_header"),
    [
        pytest.param("openai-chat", b"text/event-stream; charset=utf-8", None, id="openai-chat"),
        pytest.param("anthropic", b"text/event-stream; charset=utf-8", None, id="anthropic"),
        pytest.param("gemini-array", b"application/json", None, id="gemini-array"),
        pytest.param("ai-sdk-ui", b"text/event-stream; charset=utf-8", b"v1", id="ai-sdk-ui"),
    ],
)
async def test_the_headers_are_the_targets(
    target: str, content_type: bytes, ui_header: bytes | None
) -> None:
    client = Client()
    response = EncodedStreamResponse(
        play(TEXT),
        encoder(target),
        headers={"X-Request-Id": "req_1", "Cache-Control": "no-store"},
        status_code=201,
    )
    await client.serve(response)
    start = client.messages[0]
    assert start["status"] == 201
    headers = dict(start["headers"])
    assert headers[b"content-type"] == content_type
    assert headers[b"x-accel-buffering"] == b"no"
    assert headers.get(b"x-vercel-ai-ui-message-stream") == ui_header
    assert headers[b"x-request-id"] == b"req_1"
    assert [v for k, v in start["headers"] if k == b"cache-control"] == [b"no-store"]
    assert b"content-length" not in headers


def test_a_target_by_short_name_and_bad_arguments() -> None:
    assert EncodedStreamResponse([], "chat").encoder.dialect == "openai-chat"
    with pytest.raises(UsageError, match="no encoder"):
        EncodedStreamResponse([], "nope")
    for keepalive in (0, -1.0, float("nan")):
        with pytest.raises(UsageError, match="keepalive"):
            EncodedStreamResponse([], "chat", keepalive=keepalive)


@pytest.mark.parametrize("target", SSE_TARGETS)
async def test_a_silent_upstream_gets_keep_alive_frames_between_whole_frames(target: str) -> None:
    client = Client()
    frame = encoder(target).keepalive
    assert frame is not None

    async def until_a_keep_alive() -> None:
        seen = client.bodies.count(frame)
        while client.bodies.count(frame) == seen:
            await anyio.sleep(0.005)

    # Silent before the first event and again in the middle of the stream.
    upstream = play(TEXT, {0: until_a_keep_alive, 5: until_a_keep_alive})
    await client.serve(EncodedStreamResponse(upstream, target, keepalive=0.01))
    kept = [body for body in client.bodies if body == frame]
    assert len(kept) >= 2
    assert b"".join(b for b in client.bodies if b != frame) == encoded(TEXT, target)
    # Every reader of the target skips them: streamfold folds the same.
    with_frames = streamfold.fold(b"".join(client.bodies))
    assert with_frames.unified.text == streamfold.fold(TEXT).unified.text


@pytest.mark.parametrize(
    ("target", "keepalive"),
    [
        pytest.param("gemini-array", 0.01, id="json-array"),
        pytest.param("openai-chat", None, id="keepalive-off"),
    ],
)
async def test_no_keep_alive_inside_a_json_array_or_when_off(
    target: str, keepalive: float | None
) -> None:
    async def pause() -> None:
        await anyio.sleep(0.1)

    client = Client()
    await client.serve(
        EncodedStreamResponse(play(TEXT, {3: pause}), encoder(target), keepalive=keepalive)
    )
    assert b"".join(client.bodies) == encoded(TEXT, target)


@pytest.mark.parametrize("target", ["openai-chat", "ai-sdk-ui"])
def test_the_official_decoders_skip_the_keep_alive_comment(target: str) -> None:
    openai = pytest.importorskip("openai._streaming")
    frame = encoder(target).keepalive
    assert frame is not None
    body = encoded(TEXT, target)
    interleaved = frame + body.replace(b"\n\n", b"\n\n" + frame)
    decoder = openai.SSEDecoder()
    plain = [(e.event, e.data) for e in decoder.iter_bytes(iter([body]))]
    assert [(e.event, e.data) for e in decoder.iter_bytes(iter([interleaved]))] == plain


class Upstream:
    """An upstream that sends a few events, then waits forever, and records
    whether it was closed (as ``AsyncEventStream``: an iterable with ``aclose``)."""

    def __init__(self) -> None:
        self.closed = False
        self.iterator_closed = False

    def __aiter__(self) -> AsyncIterator[ev.Event]:
        return self._events()

    async def _events(self) -> AsyncIterator[ev.Event]:
        try:
            for event in list(streamfold.iter_events(TEXT))[:6]:
                yield event
            await anyio.sleep_forever()
        finally:
            self.iterator_closed = True

    async def aclose(self) -> None:
        self.closed = True


async def test_a_client_that_leaves_closes_the_upstream_at_once() -> None:
    upstream = Upstream()
    client = Client(leave_after=2)
    await client.serve(EncodedStreamResponse(upstream, "ai-sdk-ui"))
    assert upstream.iterator_closed and upstream.closed
    assert not client.ended  # nothing is written once the client has gone


async def test_a_client_that_leaves_while_the_upstream_has_not_answered() -> None:
    upstream = Upstream()
    upstream._events = _silent  # type: ignore[method-assign]
    client = Client(leave_after=0)
    await client.serve(EncodedStreamResponse(upstream, "openai-chat"))
    assert upstream.closed and client.bodies == []


async def _silent() -> AsyncIterator[ev.Event]:
    await anyio.sleep_forever()
    yield ev.TextDelta(delta="never")  # pragma: no cover


async def test_a_sync_iterable_is_read_in_a_thread_and_closed_when_the_client_leaves() -> None:
    data = TEXT
    client = Client()
    await client.serve(EncodedStreamResponse(streamfold.iter_events(data), "anthropic"))
    assert b"".join(client.bodies) == encoded(data, "anthropic")

    closed = threading.Event()
    loop_threads: set[int] = set()

    def events() -> Iterator[ev.Event]:
        try:
            for event in streamfold.iter_events(data):
                loop_threads.add(threading.get_ident())
                yield event
        finally:
            closed.set()

    client = Client(leave_after=1)
    await client.serve(EncodedStreamResponse(events(), "anthropic"))
    assert closed.is_set()
    assert threading.get_ident() not in loop_threads


async def _raising(exc: BaseException, events: int = 0) -> AsyncIterator[ev.Event]:
    """The first ``events`` events of TEXT, then ``exc``."""
    for event in list(streamfold.iter_events(TEXT))[:events]:
        yield event
    raise exc


@pytest.mark.parametrize("target", TARGETS)
async def test_a_failure_raised_before_any_event_is_the_targets_in_band_error(target: str) -> None:
    # As an HTTP error status raised by AsyncEventStream: no error event came.
    failure = ProviderError("Overloaded", code="overloaded_error")
    client = Client()
    await client.serve(EncodedStreamResponse(_raising(failure), encoder(target)))
    body = b"".join(client.bodies)
    assert b"Overloaded" in body and client.ended
    folded = streamfold.StreamParser()
    folded.feed(body)
    folded.close()
    assert folded.error is not None and folded.error.info.type == "provider_error"


async def test_a_timeout_before_any_event_cuts_the_response() -> None:
    client = Client()
    with pytest.raises(StreamTimeoutError):
        await client.serve(
            EncodedStreamResponse(_raising(timeout_error("connect", 5.0)), "openai-chat")
        )
    assert client.bodies == []  # the server closes the connection: no end of the body


async def _events_then_stop(events: list[ev.Event]) -> AsyncIterator[ev.Event]:
    for event in events:
        yield event


@pytest.mark.parametrize("raises", [True, False], ids=["raising", "event-only"])
@pytest.mark.parametrize("target", TARGETS)
async def test_a_cut_upstream_cuts_the_response(target: str, raises: bool) -> None:
    # Cut inside the answer: aiter_events yields the incomplete error event,
    # then raises; a plain iterable of the same events just stops.
    data = TEXT[: TEXT.index(b"content_block_stop")]
    parser = streamfold.StreamParser()
    events = parser.feed(data) + parser.close()
    assert type(events[-1]) is ev.ErrorOccurred
    upstream = streamfold.aiter_events(data) if raises else _events_then_stop(events)
    client = Client()
    with pytest.raises(IncompleteStreamError):
        await client.serve(EncodedStreamResponse(upstream, encoder(target)))
    assert b"".join(client.bodies) == encoded(data, target)
    assert not client.ended


async def test_another_exception_ends_the_stream_naming_only_its_class_then_is_raised() -> None:
    secret = RuntimeError("connect to http://user:hunter2@10.0.0.1 failed")
    client = Client()
    with pytest.raises(RuntimeError, match="hunter2"):
        await client.serve(EncodedStreamResponse(_raising(secret, 8), "ai-sdk-ui"))
    body = b"".join(client.bodies)
    assert body.endswith(
        b'data: {"type":"error","errorText":"the upstream failed (RuntimeError)"}\n\n'
    )
    assert b"hunter2" not in body and client.ended
