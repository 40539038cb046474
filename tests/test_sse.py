"""The SSE decoder against the WHATWG event-stream interpretation rules."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterable
from typing import Any

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
    # An empty type buffer means "message" (it was "" on the fast path).
    pytest.param(b"event: \ndata: 1\n\n", [("message", "1", None, True)], id="empty-event-type"),
    pytest.param(b"event:\ndata: 1\n\n", [("message", "1", None, True)], id="bare-event-field"),
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


def test_an_event_begun_late_in_a_chunk_is_read_whole_with_the_next() -> None:
    # Its lines wait, unread, for the chunk that ends it: the same events as
    # line by line, and what close() dispatches of it is the same too.
    decoder = SSEDecoder()
    assert [e.data for e in decoder.feed(b"data: a\n\nevent: e\ndata: b\n")] == ["a"]
    assert [(e.event, e.data, e.index) for e in decoder.feed(b"\n")] == [("e", "b", 1)]
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n\nid: 7\ndata: b\ndata: c")
    (last,) = decoder.close()
    assert (last.data, last.id, last.index, last.terminated) == ("b\nc", "7", 1, False)


def test_events_of_either_shape_in_turn_keep_their_own_type() -> None:
    # The decoder tries the last event's shape first: a named event after
    # unnamed ones, and back, each gets its own type and event_set.
    stream = (
        b"data: 1\n\nevent: a\ndata: 2\n\nevent: a\ndata: 3\n\ndata: 4\n\nevent: b\ndata: 5\n\n"
    )
    expected = [
        ("message", "1", False),
        ("a", "2", True),
        ("a", "3", True),
        ("message", "4", False),
        ("b", "5", True),
    ]
    for pieces in ([stream], bytewise(stream)):
        assert [(e.event, e.data, e.event_set) for e in decode(*pieces)] == expected


def test_a_retry_field_sets_the_reconnection_time_before_its_event_ends() -> None:
    # A dropped connection waits what the stream said, even mid-event.
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n\nretry: 250\ndata: b")
    assert decoder.reconnection_time == 250


def test_bytes_seen_counts_every_byte_once_whatever_the_split() -> None:
    unit = b"data: a\n\nevent: e\ndata: bb\n\ndata: c\n"
    stream = unit * 40
    # Cut after each `event: e` line: every chunk ends with an event's first line.
    after_first_lines = cut(stream, list(range(18, len(stream), len(unit))))
    for pieces in ([stream], after_first_lines, cut(stream, [3, 700]), bytewise(stream)):
        decoder = SSEDecoder()
        fed = 0
        for piece in pieces:
            decoder.feed(piece)
            fed += len(piece)
            assert decoder.bytes_seen == fed
        assert len(decoder.close()) == 1


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


# -- one meaning per field and one size, whatever the split ------------------------------


def outcome(pieces: Iterable[bytes], limit: int) -> tuple[list[tuple[Any, ...]], Any]:
    """Every field of every event, then the error (type, message, excerpt, position)."""
    decoder = SSEDecoder(limit)
    events: list[ServerSentEvent] = []
    try:
        for piece in pieces:
            events.extend(decoder.feed(piece))
        events.extend(decoder.close())
    except ProtocolError as error:
        failure: Any = (type(error), error.message, error.excerpt, error.position)
    else:
        failure = None
    fields = [(e.raw, e.event, e.id, e.retry, e.index, e.terminated, e.event_set) for e in events]
    return fields, failure


_LINES = [
    b"data: a\n",
    b"data: " + b"x" * 40 + b"\n",
    b"data:" + b"y" * 25 + b"\r\n",
    b"data\n",
    b"\n",
    b"\r\n",
    b"\r",
    b": " + b"c" * 30 + b"\n",
    b":\n",
    b"event: e\n",
    b"event: \n",
    b"event:\n",
    b"id: 1\n",
    b"retry: 10\n",
    b"  data: z\n",
    b"\xef\xbb\xbf",
    b"x",
]


@settings(max_examples=400, deadline=None)
@given(
    parts=st.lists(st.sampled_from(_LINES), max_size=30),
    limit=st.integers(1, 150),
    points=st.lists(st.integers(min_value=0, max_value=600), max_size=12),
)
def test_any_split_gives_the_same_events_and_the_same_error(
    parts: list[bytes], limit: int, points: list[int]
) -> None:
    # Every field (type, event_set, id, retry, index...) and the size limit
    # have one definition on the fast path and the general one: the events,
    # and the error with its message and excerpt, never depend on the split.
    stream = b"".join(parts)
    whole = outcome([stream], limit)
    assert outcome(cut(stream, points), limit) == whole
    assert outcome(bytewise(stream), limit) == whole


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.sampled_from([line for line in _LINES if b"\r" not in line]), max_size=30),
    crlf=st.lists(st.booleans(), min_size=30, max_size=30),
    limit=st.integers(1, 150),
    points=st.lists(st.integers(min_value=0, max_value=600), max_size=12),
)
def test_crlf_line_ends_read_as_lf_ones(
    parts: list[bytes], crlf: list[bool], limit: int, points: list[int]
) -> None:
    # A CRLF pair is one line end, as a lone LF is: a stream of CRLF ends (or
    # of both; read by the general rules, the LF-only one by its bulk split)
    # gives the LF stream's events and error, whole, cut anywhere (a cut
    # between CR and LF included) or byte by byte.
    lf = b"".join(parts)
    stream = b"".join(
        part[:-1] + b"\r\n" if wide and part.endswith(b"\n") else part
        for part, wide in zip(parts, crlf, strict=False)
    )
    expected = outcome([lf], limit)
    assert outcome([stream], limit) == expected
    assert outcome(cut(stream, points), limit) == expected
    assert outcome(bytewise(stream), limit) == expected


@pytest.mark.parametrize(
    ("stream", "limit", "fails"),
    [
        # A line counts its bytes and one for its end: "data: " + 93 bytes + LF is 100.
        pytest.param(b"data: " + b"x" * 93 + b"\n\n", 100, False, id="data-line-at-limit"),
        pytest.param(b"data: " + b"x" * 94 + b"\n\n", 100, True, id="data-line-over-limit"),
        # Every line of the event counts: field names, comments, other fields.
        pytest.param(b": " + b"c" * 97 + b"\ndata: x\n\n", 100, True, id="comment-counts"),
        pytest.param(b"event: " + b"e" * 92 + b"\ndata: x\n\n", 100, True, id="event-line-counts"),
        pytest.param(b"data: abc\n" * 10 + b"\n", 100, False, id="lines-add-up-to-limit"),
        pytest.param(b"data: abc\n" * 10 + b":\n\n", 100, True, id="lines-add-up-over-limit"),
        # A blank line starts the count again; it counts for nothing itself.
        pytest.param((b"data: " + b"x" * 90 + b"\n\n") * 5, 100, False, id="count-per-event"),
        pytest.param(b"\n" * 500 + b"data: x\n\n", 100, False, id="blank-lines-count-nothing"),
        # The last line without its end counts as if it ended.
        pytest.param(b"data: " + b"x" * 93, 100, False, id="unterminated-at-limit"),
        pytest.param(b"data: " + b"x" * 94, 100, True, id="unterminated-over-limit"),
        # CRLF is one line end: it counts one byte, as LF does.
        pytest.param(b"data: " + b"x" * 93 + b"\r\n\r\n", 100, False, id="crlf-counts-one"),
    ],
)
def test_what_the_size_limit_counts(stream: bytes, limit: int, fails: bool) -> None:
    # One definition of an event's size (the sse module docstring), the same
    # however the stream is cut: it used to count field names and comments only
    # when a line straddled two reads, so 64 KiB reads failed where one read passed.
    whole = outcome([stream], limit)
    assert (whole[1] is not None) is fails
    assert outcome(bytewise(stream), limit) == whole
    assert outcome(cut(stream, list(range(0, len(stream), 7))), limit) == whole


def test_events_before_an_oversized_one_survive_a_cut_inside_it() -> None:
    # The oversized line arrives in the same read as the end of the event
    # before it: that event is delivered, then the error (it used to be lost).
    stream = b"data: ok\n\ndata: " + b"x" * 2000
    for pieces in ([stream], [stream[:5], stream[5:]], bytewise(stream)):
        events, failure = outcome(pieces, 1024)
        assert [raw for raw, *_ in events] == [b"ok"]
        assert failure is not None and failure[3] == 1


def test_the_error_is_raised_again_on_every_later_call() -> None:
    decoder = SSEDecoder(64)
    assert [e.data for e in decoder.feed(b"data: ok\n\ndata: " + b"x" * 100)] == ["ok"]
    calls: list[Callable[[], object]] = [lambda: decoder.feed(b"\n\ndata: next\n\n"), decoder.close]
    for call in calls:
        with pytest.raises(ProtocolError, match="larger than the limit of 64 bytes"):
            call()


# -- memory bounded by the limit ---------------------------------------------------------------


def _peak(feed: Any, pieces: Iterable[bytes]) -> int:
    """The most memory traced at once while ``feed`` takes the pieces (made beforehand)."""
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError, match="larger than the limit"):
            for piece in pieces:
                feed(piece)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


LIMIT = 4 * 1024 * 1024
_TINY_LINES = b"data: xy\n" * 7281  # 64 KiB of the smallest data lines


@pytest.mark.parametrize(
    "pieces",
    [
        pytest.param([_TINY_LINES] * 100, id="64-KiB-reads"),
        pytest.param([_TINY_LINES * 100], id="one-read"),
        pytest.param([b"data", b"\n"] * 1_000_000, id="empty-data-lines-one-by-one"),
    ],
)
def test_an_event_of_millions_of_tiny_lines_is_held_in_about_its_size(
    pieces: list[bytes],
) -> None:
    # It used to be a list of millions of tiny bytes objects: 532 MB for an
    # event that counted 12 MB. Now its data is one buffer, and the event fails
    # at the limit before it holds much more than the limit.
    peak = _peak(SSEDecoder(LIMIT).feed, pieces)
    assert peak < 3 * LIMIT


def test_a_long_line_fed_a_byte_at_a_time_is_held_in_about_its_size() -> None:
    limit = 64 * 1024
    decoder = SSEDecoder(limit)
    decoder.feed(b"data: ")
    peak = _peak(decoder.feed, [b"y"] * (limit + 1))
    assert peak < 3 * limit


def test_many_event_types_do_not_grow_memory() -> None:
    # Event type names are decoded once, but only a few are remembered.
    decoder = SSEDecoder()
    decoder.feed(b"event: warm-up\ndata: x\n\n")
    tracemalloc.start()
    try:
        for block in range(20):
            stream = b"".join(
                b"event: type-%d\ndata: x\n\n" % n for n in range(block * 5000, (block + 1) * 5000)
            )
            assert len(decoder.feed(stream)) == 5000
            del stream
        kept = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert kept < 64 * 1024
