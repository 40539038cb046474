"""The SSE decoder against the WHATWG event-stream interpretation rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamfold.errors import ProtocolError
from streamfold.sse import ServerSentEvent, SSEDecoder

from .corpus import bytewise, cut


def decode(*chunks: bytes, max_event_size: int | None = None) -> list[ServerSentEvent]:
    decoder = SSEDecoder() if max_event_size is None else SSEDecoder(max_event_size)
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.close())
    return events


def summary(events: list[ServerSentEvent]) -> list[tuple[str, str, str | None, bool]]:
    return [(e.event, e.data, e.id, e.terminated) for e in events]


CASES = [
    pytest.param(b"data: a\n\n", [("message", "a", None, True)], id="lf"),
    pytest.param(b"data: a\r\n\r\n", [("message", "a", None, True)], id="crlf"),
    pytest.param(b"data: a\r\r", [("message", "a", None, True)], id="cr"),
    pytest.param(
        b"data: a\r\n\ndata: b\r\r\n",
        [("message", "a", None, True), ("message", "b", None, True)],
        id="mixed-ends",
    ),
    pytest.param(b"\xef\xbb\xbfdata: a\n\n", [("message", "a", None, True)], id="bom-stripped"),
    # Only one leading BOM goes: a second one makes the field name "\ufeffdata",
    # an unknown field, and so does a BOM later in the stream.
    pytest.param(
        b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\n\xef\xbb\xbfdata: b\n\ndata: c\n\n",
        [("message", "c", None, True)],
        id="only-one-bom-stripped",
    ),
    pytest.param(b": keep-alive\ndata: a\n\n", [("message", "a", None, True)], id="comment"),
    pytest.param(b": OPENROUTER PROCESSING\n\n", [], id="comment-only"),
    pytest.param(b"data: a\ndata: b\n\n", [("message", "a\nb", None, True)], id="multiline-data"),
    pytest.param(b"data: a\ndata\n\n", [("message", "a\n", None, True)], id="bare-data-field"),
    pytest.param(b"data\n\n", [("message", "", None, True)], id="empty-data-dispatched"),
    pytest.param(b"data:a\n\n", [("message", "a", None, True)], id="no-space"),
    pytest.param(b"data:  a\n\n", [("message", " a", None, True)], id="one-space-removed"),
    pytest.param(b"data: a:b\n\n", [("message", "a:b", None, True)], id="colon-in-value"),
    pytest.param(b"event: ping\ndata: 1\n\n", [("ping", "1", None, True)], id="event-type"),
    pytest.param(
        b"event: x\n\ndata: 1\n\n", [("message", "1", None, True)], id="type-reset-when-no-data"
    ),
    pytest.param(b"event: x\n\n", [], id="no-dispatch-without-data"),
    pytest.param(
        b"id: 7\ndata: 1\n\ndata: 2\n\n",
        [("message", "1", "7", True), ("message", "2", "7", True)],
        id="id-persists",
    ),
    pytest.param(
        b"id: 7\ndata: 1\n\nid\ndata: 2\n\n",
        [("message", "1", "7", True), ("message", "2", "", True)],
        id="id-reset-empty",
    ),
    pytest.param(b"id: a\x00b\ndata: 1\n\n", [("message", "1", None, True)], id="id-with-nul"),
    pytest.param(b"foo: bar\ndata: 1\n\n", [("message", "1", None, True)], id="unknown-field"),
    pytest.param(
        b"data: 1\n\ndata: 2",
        [("message", "1", None, True), ("message", "2", None, False)],
        id="unterminated",
    ),
    pytest.param(b"data: 1\n", [("message", "1", None, False)], id="unterminated-after-line"),
    pytest.param(b"data: caf\xc3\xa9\n\n", [("message", "café", None, True)], id="utf8"),
    pytest.param(b"data: \xff\n\n", [("message", "\ufffd", None, True)], id="invalid-utf8"),
    pytest.param(b"", [], id="empty"),
]


@pytest.mark.parametrize(("stream", "expected"), CASES)
def test_spec_rules(stream: bytes, expected: list[tuple[str, str, str | None, bool]]) -> None:
    assert summary(decode(stream)) == expected


@pytest.mark.parametrize(("stream", "expected"), CASES)
def test_spec_rules_byte_by_byte(
    stream: bytes, expected: list[tuple[str, str, str | None, bool]]
) -> None:
    assert summary(decode(*bytewise(stream))) == expected


def test_cr_and_lf_split_across_chunks_are_one_line_end() -> None:
    # A CR at the end of one chunk and LF at the start of the next: one line end,
    # so the blank line after it still dispatches exactly one event.
    events = decode(b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n")
    assert summary(events) == [("message", "a", None, True), ("message", "b", None, True)]


def test_utf8_split_inside_a_character() -> None:
    data = "data: 日本語 ✓\n\n".encode()
    for i in range(len(data)):
        assert [e.data for e in decode(data[:i], data[i:])] == ["日本語 ✓"]


def test_bom_split_across_chunks() -> None:
    assert [e.data for e in decode(b"\xef", b"\xbb", b"\xbfdata: x\n\n")] == ["x"]
    # A partial BOM that turns out not to be one is kept as data bytes.
    assert [e.event for e in decode(b"\xef", b"event: y\ndata: x\n\n")] == ["message"]


def test_retry_digits_only() -> None:
    events = decode(b"retry: 1500\ndata: a\n\nretry: 15x\ndata: b\n\n")
    assert [e.retry for e in events] == [1500, None]


def test_event_index_counts_dispatched_events() -> None:
    events = decode(b"data: a\n\n: c\n\ndata: b\n\n")
    assert [e.index for e in events] == [0, 1]


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param([b"data: " + b"x" * 2000 + b"\n\n"], id="one-line"),
        pytest.param([b"data: " + b"x" * 600 + b"\n"] * 4 + [b"\n"], id="many-lines"),
        pytest.param([b"data: "] + [b"x" * 100] * 30, id="growing-unterminated-line"),
    ],
)
def test_event_size_limit_raises_protocol_error(stream: list[bytes]) -> None:
    with pytest.raises(ProtocolError, match="larger than the limit of 1024 bytes") as info:
        decode(*stream, max_event_size=1024)
    assert info.value.position == 0


def test_memory_bounded_on_a_huge_line_without_end() -> None:
    decoder = SSEDecoder(max_event_size=1 << 16)
    with pytest.raises(ProtocolError):
        for _ in range(10_000):
            decoder.feed(b"y" * 1024)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b"data: a\n",
                b"data: b\r\n",
                b"\n",
                b"\r\n",
                b"\r",
                b": c\n",
                b"event: e\n",
                b"id: 1\n",
                b"data:\xc3\xa9\n",
                b"retry: 10\n",
                b"data\n",
                b"x",
            ]
        ),
        max_size=30,
    ),
    st.lists(st.integers(min_value=0, max_value=400), max_size=12),
)
def test_any_split_gives_the_same_events(parts: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(parts)
    whole = summary(decode(stream))
    assert summary(decode(*cut(stream, cuts))) == whole
    assert summary(decode(*bytewise(stream))) == whole


def test_events_before_an_oversized_one_survive_any_cut() -> None:
    stream = b"data: ok\n\ndata: " + b"x" * 2000 + b"\n\n"
    for pieces in ([stream], [stream[:5], stream[5:]], bytewise(stream)):
        decoder = SSEDecoder(max_event_size=1024)
        got: list[str] = []
        with pytest.raises(ProtocolError):
            for piece in pieces:
                got.extend(e.data for e in decoder.feed(piece))
            decoder.close()
        assert got == ["ok"]
