"""The parser's own decisions: its arguments, how a body's framing is told, and how
the end of input is classified (a cut stream, or a malformed one)."""

from __future__ import annotations

import re
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamfold import Phase, StreamParser
from streamfold.errors import IncompleteStreamError, ProtocolError, UsageError
from streamfold.parser import _CALLER, _TRANSITIONS, _State, _Trigger
from streamfold.sse import SSEDecoder

from .corpus import CORPUS, FIXTURES, bytewise, cut, fold_pieces

SAMPLES = Path(__file__).resolve().parents[1] / "src" / "streamfold" / "samples"
ARRAY = FIXTURES / "gemini" / "array.json"  # three elements
CHAT_STOP = (
    b'data: {"id":"c","object":"chat.completion.chunk","choices":'
    b'[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\n'
)


def error_of(pieces: list[bytes], **options: Any) -> tuple[type[BaseException], str, Any] | None:
    """The error a fold ends with, as a caller sees it: type, message, position."""
    _, _, error = fold_pieces(pieces, **options)
    if error is None:
        return None
    return type(error), str(error), getattr(error, "position", None)


# -- arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "words"),
    [
        pytest.param("data: x\n\n", "not str: encode text first", id="str"),
        pytest.param(None, "not NoneType", id="none"),
        pytest.param(12, "not int", id="int"),
        pytest.param([b"data: x\n\n"], "not list", id="list"),
    ],
)
def test_feed_takes_bytes_or_decoded_events(data: Any, words: str) -> None:
    with pytest.raises(
        UsageError, match="takes bytes, bytearray or memoryview, or decoded events"
    ) as caught:
        StreamParser().feed(data)
    assert words in caught.value.message


@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(bytes, id="bytes"),
        pytest.param(bytearray, id="bytearray"),
        pytest.param(memoryview, id="memoryview"),
    ],
)
def test_feed_accepts_bytearray_and_memoryview(convert: Callable[[bytes], Any]) -> None:
    parser = StreamParser()
    for piece in cut(CHAT_STOP, [1, 7, 40]):
        parser.feed(convert(piece))
    parser.close()
    result = parser.final()
    assert result.unified.text == "hi"
    assert result.complete


@pytest.mark.parametrize(
    "size",
    [
        pytest.param("x", id="str"),
        pytest.param(0, id="zero"),
        pytest.param(-1, id="negative"),
        pytest.param(1.5, id="float"),
        pytest.param(True, id="bool"),
        pytest.param(None, id="none"),
    ],
)
def test_max_event_size_must_be_a_positive_int(size: Any) -> None:
    with pytest.raises(UsageError, match="max_event_size takes a positive number of bytes"):
        StreamParser(max_event_size=size)


# -- the phase table -----------------------------------------------------------------------

CHAT_DONE = CHAT_STOP + b"data: [DONE]\n\n"


def _parser_at(state: _State) -> StreamParser:
    """A parser driven to ``state`` through its public methods."""
    parser = StreamParser()
    if state is _State.STARTING:
        return parser
    if state is _State.STREAMING:
        parser.feed(CHAT_STOP[:40])
    elif state in (_State.FINISHED, _State.CLOSED_FINISHED):
        parser.feed(CHAT_DONE)
    else:
        parser.feed(b"data: {not json}\n\n")
    if state.closed:
        parser.close()
    return parser


@pytest.mark.parametrize("state", list(_State), ids=lambda s: s.name.lower())
def test_every_state_is_reached_through_the_public_methods(state: _State) -> None:
    parser = _parser_at(state)
    assert (parser.phase, parser.closed) == state.value


@pytest.mark.parametrize(
    ("state", "trigger"),
    [
        pytest.param(state, trigger, id=f"{state.name.lower()}-{trigger.name.lower()}")
        for state in _State
        for trigger in _Trigger
        if trigger not in _TRANSITIONS[state]
    ],
)
def test_every_illegal_transition_fails_the_same_way(state: _State, trigger: _Trigger) -> None:
    # The caller's misuse is a UsageError, the stream's a ProtocolError; the
    # state stays as it was.
    parser = _parser_at(state)
    expected = UsageError if trigger in _CALLER else ProtocolError
    with pytest.raises(expected):
        parser._fire(trigger)
    assert (parser.phase, parser.closed) == state.value


def test_a_failure_is_accepted_in_every_state() -> None:
    # fail() from an adapter may come at any moment: after the end it changes nothing.
    assert all(_Trigger.FAILURE in row for row in _TRANSITIONS.values())


@pytest.mark.parametrize(
    ("state", "call", "message"),
    [
        pytest.param(_State.CLOSED_FINISHED, "feed", "feed() after close()", id="feed-closed"),
        pytest.param(_State.CLOSED_FAILED, "feed", "feed() after close()", id="feed-failed"),
        pytest.param(_State.STARTING, "final", "final() before close()", id="final-starting"),
        pytest.param(_State.STREAMING, "final", "final() before close()", id="final-streaming"),
        pytest.param(_State.FINISHED, "final", "final() before close()", id="final-finished"),
    ],
)
def test_calls_out_of_turn_are_usage_errors(state: _State, call: str, message: str) -> None:
    parser = _parser_at(state)
    with pytest.raises(UsageError, match=re.escape(message)):
        parser.feed(b"data: x\n\n") if call == "feed" else parser.final()


def test_after_a_failure_bytes_are_dropped_and_final_raises_before_close() -> None:
    parser = _parser_at(_State.FAILED)
    assert parser.feed(CHAT_DONE) == []
    with pytest.raises(ProtocolError):
        parser.final()
    assert parser.close() == [] and parser.closed


@pytest.mark.parametrize("state", list(_State), ids=lambda s: s.name.lower())
def test_fail_ends_an_open_stream_and_closes_any(state: _State) -> None:
    parser = _parser_at(state)
    before = parser.phase
    parser.fail(IncompleteStreamError("the connection dropped"))
    assert parser.closed
    if before in (Phase.STARTING, Phase.STREAMING):
        assert parser.phase is Phase.FAILED
        assert isinstance(parser.error, IncompleteStreamError)
    else:
        assert parser.phase is before
    assert parser.close() == []


# -- telling the framing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "text", "error"),
    [
        pytest.param(b"\n\n\r\n", "hi", None, id="blank-lines"),
        pytest.param(b"\xef\xbb\xbf\n", "hi", None, id="bom-then-blank-line"),
        # "  data: ..." is a line whose field is "  data": no data line, no event.
        pytest.param(b"  ", None, "the stream ended before any event", id="spaces-make-a-field"),
        pytest.param(b"\n" * 201, None, "more than 200 bytes of white space", id="over-the-limit"),
    ],
)
def test_white_space_before_the_first_line_keeps_its_meaning(
    head: bytes, text: str | None, error: str | None
) -> None:
    body = head + CHAT_STOP
    outcomes = []
    for pieces in ([body], bytewise(body), cut(body, [1, len(head)])):
        _, result, failure = fold_pieces(pieces, max_event_size=200)
        assert result is not None
        outcomes.append((result.unified.text or None, None if failure is None else str(failure)))
    assert outcomes == [outcomes[0]] * 3
    got_text, got_error = outcomes[0]
    assert got_text == text
    assert (got_error is None) is (error is None)
    assert error is None or (got_error is not None and error in got_error)


def _allocated(feed: Callable[[bytes], object], pieces: list[bytes]) -> int:
    """The bytes ``feed`` allocates, summed over the pieces: the work of copying."""
    total = 0
    tracemalloc.start()
    try:
        for piece in pieces:
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            feed(piece)
            total += tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return total


def test_leading_blank_lines_fed_a_byte_at_a_time_cost_linear_work() -> None:
    # The head was re-joined on every read until the first non-blank byte:
    # 64 K newlines a byte at a time copied n / 2 bytes per call (x3.9 time per
    # doubling). Now each call copies a few bytes of bookkeeping.
    n = 64 * 1024
    parser = StreamParser()
    assert _allocated(parser.feed, [b"\n"] * n) < 128 * n
    parser.feed(CHAT_STOP)
    parser.close()
    assert parser.final().unified.text == "hi"


# -- the end of input: cut, or malformed --------------------------------------------------


def _last_json_event(raw: bytes) -> tuple[int, int, int]:
    """Where the last event with JSON data starts, the middle of its data line,
    and its index."""
    data = raw.rfind(b"data: {")
    block = max(raw.rfind(b"\n\n", 0, data) + 2, raw.rfind(b"\r\n\r\n", 0, data) + 4)
    middle = (data + 6 + raw.index(b"\n", data)) // 2
    return block, middle, len(SSEDecoder().feed(raw[:block]))


_SSE = [
    SAMPLES / "chat-parallel-tools.sse",
    SAMPLES / "responses-parallel-tools.sse",
    SAMPLES / "anthropic-thinking.sse",
    SAMPLES / "gemini-thinking.sse",
    FIXTURES / "gemini" / "text-crlf.sse",
]


def _cut_inside() -> list[Any]:
    cases = []
    for path in _SSE:
        raw = path.read_bytes()
        _, middle, index = _last_json_event(raw)
        cases.append(pytest.param(raw[:middle], "server-sent event", index, id=path.stem))
    raw = ARRAY.read_bytes()
    start = raw.index(b"{", raw.rfind(b"\n,"))  # the last element
    cases.append(pytest.param(raw[: start + 40], "JSON array element", 2, id="array"))
    return cases


@pytest.mark.parametrize(("body", "what", "index"), _cut_inside())
@pytest.mark.parametrize("strict", [True, False], ids=["strict", "lenient"])
def test_a_stream_cut_inside_its_last_event_is_incomplete(
    body: bytes, what: str, index: int, strict: bool
) -> None:
    # A connection that dropped inside the last event was a ProtocolError
    # (exit 3), one that dropped between events an IncompleteStreamError (exit
    # 1): a cut is a cut, in every dialect and framing, strict or lenient (the
    # event's bytes are lost, not malformed), and the cut event is named. The
    # same whole, byte by byte and at random cuts.
    whole = error_of([body], strict=strict)
    assert whole is not None
    assert whole[0] is IncompleteStreamError
    assert whole[1].startswith(f"the stream ended inside {what} #{index}, cut short: ")
    assert whole[2] == index
    assert error_of(bytewise(body), strict=strict) == whole
    assert error_of(cut(body, [len(body) // 3, len(body) - 2]), strict=strict) == whole


def _malformed() -> list[Any]:
    cases = []
    for path in _SSE:
        raw = path.read_bytes()
        block, middle, index = _last_json_event(raw)
        end = b"\r\n\r\n" if b"\r\n" in raw else b"\n\n"
        cases += [
            pytest.param(raw[:middle] + end, index, id=f"{path.stem}-at-the-end"),
            pytest.param(raw[:middle] + end + raw[block:], index, id=f"{path.stem}-then-more"),
        ]
    raw = ARRAY.read_bytes()  # the last of its three elements holds the finish reason
    cases.append(pytest.param(raw.replace(b'"STOP"', b"STOP"), 2, id="array-then-more"))
    return cases


@pytest.mark.parametrize(("body", "index"), _malformed())
def test_json_that_does_not_parse_in_an_ended_event_is_a_protocol_error(
    body: bytes, index: int
) -> None:
    # The event ended (its blank line came, the element closed): its bytes
    # all arrived and are malformed, whatever follows. Lenient mode skips it.
    whole = error_of([body])
    assert whole is not None
    assert whole[0] is ProtocolError
    assert f"#{index} is not valid JSON" in whole[1]
    assert whole[2] == index
    assert error_of(bytewise(body)) == whole
    _, result, error = fold_pieces([body], strict=False)
    assert not isinstance(error, ProtocolError)
    assert result is not None and any(w.startswith("skipped: ") for w in result.warnings)


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        # Every choice had its finish reason before the usage chunk.
        pytest.param(SAMPLES / "chat-parallel-tools.sse", None, id="chat-complete"),
        pytest.param(
            SAMPLES / "responses-parallel-tools.sse", IncompleteStreamError, id="responses"
        ),
        pytest.param(SAMPLES / "anthropic-thinking.sse", IncompleteStreamError, id="anthropic"),
        pytest.param(SAMPLES / "gemini-thinking.sse", IncompleteStreamError, id="gemini"),
    ],
)
def test_a_stream_cut_between_events_is_judged_by_its_dialect(
    path: Path, kind: type[Exception] | None
) -> None:
    raw = path.read_bytes()
    block, _, _ = _last_json_event(raw)
    whole = error_of([raw[:block]])
    assert (whole and whole[0]) == kind
    assert error_of(bytewise(raw[:block])) == whole


@pytest.mark.parametrize(
    ("tail", "warning"),
    [
        pytest.param(
            b"data: " + b"x" * 300 + b"\n\n",
            "bytes after the end of the stream ignored: server-sent event #2 is larger",
            id="oversized-event",
        ),
        pytest.param(b"data: " + b"x" * 300, "bytes after the end", id="oversized-unterminated"),
        pytest.param(b'data: {"late": 1}\n\n', "#2 after the end of the stream", id="event"),
        pytest.param(b'data: {"late": 1}', "#2 after the end of the stream", id="unterminated"),
    ],
)
def test_after_the_end_framing_faults_are_warnings_at_any_split(tail: bytes, warning: str) -> None:
    # An event too large after [DONE] failed the finished stream when it came
    # in a later read, and vanished when it came in the same read. Both are
    # now what any event after the end is: ignored, with one warning.
    body = CHAT_DONE + tail
    outcomes = []
    for pieces in ([body], [CHAT_DONE, tail], bytewise(body)):
        _, result, error = fold_pieces(pieces, max_event_size=200)
        assert error is None and result is not None and result.complete
        outcomes.append(result.warnings)
    assert outcomes == [outcomes[0]] * 3
    assert len(outcomes[0]) == 1
    assert warning in outcomes[0][0]


def _recordings() -> list[Any]:
    paths = sorted(CORPUS.glob("*.sse")) if CORPUS.is_dir() else []
    paths += [*sorted(FIXTURES.rglob("*.sse")), ARRAY]
    return [pytest.param(path, id=path.stem) for path in paths]


@pytest.mark.parametrize("path", _recordings())
@settings(max_examples=4, deadline=None)
@given(data=st.data())
def test_a_recording_cut_anywhere_is_never_a_protocol_error(path: Path, data: Any) -> None:
    # Wherever a well-formed recording is cut, the stream is incomplete (or
    # already complete, or had a provider error before the cut): never
    # malformed. The same at any split of what arrived.
    raw = path.read_bytes()
    whole = error_of([raw])
    if whole is not None and whole[0] is ProtocolError:
        return  # a dialect streamfold does not speak: nothing to cut
    prefix = raw[: data.draw(st.integers(0, len(raw)), label="cut at")]
    points = data.draw(st.lists(st.integers(0, len(prefix)), max_size=6), label="reads")
    outcome = error_of([prefix])
    assert outcome is None or outcome[0] is not ProtocolError
    assert error_of(cut(prefix, points)) == outcome


# -- JSON that no decoder can hold ----------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"data: " + b"[" * 100_000 + b"\n\n", id="sse-nested"),
        pytest.param(b"[" + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"]", id="array-nested"),
        pytest.param(b'{"a":' * 50_000 + b"1" + b"}" * 50_000, id="body-nested"),
        pytest.param(b'data: {"a": ' + b"9" * 5000 + b"}\n\n", id="sse-huge-integer"),
        pytest.param(b'[{"a": ' + b"9" * 5000 + b"}]", id="array-huge-integer"),
        pytest.param(b'{"a": -' + b"9" * 5000 + b"}", id="body-huge-integer"),
        pytest.param(b'{"a": 1e999}', id="body-huge-float"),
    ],
)
@pytest.mark.parametrize("strict", [True, False], ids=["strict", "lenient"])
def test_too_deep_or_too_large_json_is_a_typed_error(body: bytes, strict: bool) -> None:
    # RecursionError and integers too large for Python never escape: every
    # framing's first event goes through the dialects' one JSON decoder.
    parser = StreamParser(strict=strict)
    parser.feed(body)
    parser.close()
    assert isinstance(parser.error, (ProtocolError, IncompleteStreamError))
    if strict:
        assert isinstance(parser.error, ProtocolError)
        assert "is not valid JSON" in parser.error.message


def test_json_too_deep_and_malformed_fails_alike_at_any_stack_depth() -> None:
    # msgspec stops at the recursion limit less the frames on the stack: a
    # document 700 deep, malformed past its deepest point, failed as "nested
    # too deeply" from a deep caller and as malformed from a shallow one (the
    # fuzz found it as a split difference). Past MAX_ERROR_DEPTH it fails alike.
    body = b'data: {"candidates":' + b'{"a":' * 700 + b"1" + b"}" * 699 + b"]}\n\n"

    def message(frames: int) -> str:
        if frames:
            return message(frames - 1)
        parser = StreamParser()
        parser.feed(body)
        parser.close()
        assert isinstance(parser.error, ProtocolError)
        return parser.error.message

    shallow = message(0)
    assert "nested too deeply" in shallow
    assert message(min(600, sys.getrecursionlimit() - 200)) == shallow
