"""Framings other than SSE: a streamed JSON array (Gemini without ``alt=sse``) and a
sequence of JSON objects (newline-delimited JSON, and a body that is one JSON
document). The AWS event-stream has its own tests (``test_eventstream.py``)."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamfold.errors import ProtocolError
from streamfold.framing import (
    Framing,
    FramingSniff,
    JSONArrayDecoder,
    JSONSequenceDecoder,
    ndjson,
)
from streamfold.sse import ServerSentEvent

from .corpus import bytewise, cut

LIMIT = 1 << 20
BOM = b"\xef\xbb\xbf"


def decode(
    decoder: JSONArrayDecoder | JSONSequenceDecoder, pieces: list[bytes]
) -> tuple[list[ServerSentEvent], ProtocolError | None]:
    """Feed pieces, then close: the events, and the error that stopped them."""
    events: list[ServerSentEvent] = []
    try:
        for piece in pieces:
            events.extend(decoder.feed(piece))
        events.extend(decoder.close())
    except ProtocolError as error:
        return events, error
    return events, None


def elements(pieces: list[bytes]) -> tuple[list[Any], ProtocolError | None]:
    events, error = decode(JSONArrayDecoder(LIMIT), pieces)
    assert [event.index for event in events] == list(range(len(events)))
    assert all(event.terminated for event in events)
    return [json.loads(event.raw) for event in events], error


def outcome(
    make: Callable[[], JSONArrayDecoder | JSONSequenceDecoder], pieces: list[bytes]
) -> tuple[list[tuple[bytes, int, bool]], Any]:
    """The events, then the error as a caller sees it (message, excerpt, position)."""
    events, error = decode(make(), pieces)
    failure = None if error is None else (error.message, error.excerpt, error.position)
    return [(e.raw, e.index, e.terminated) for e in events], failure


# -- the JSON array --------------------------------------------------------------------

_text = st.text(alphabet=st.sampled_from(list('ab"\\[]{},: \n\té€😀/')), max_size=10)
_value = st.recursive(
    st.none() | st.booleans() | st.integers() | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_objects = st.lists(st.dictionaries(_text, _value, max_size=4), max_size=5)


@settings(max_examples=300, deadline=None)
@given(
    objects=_objects,
    gap=st.sampled_from(["", " ", "\r\n", "\n  "]),
    indent=st.sampled_from([None, 2]),
    ascii_only=st.booleans(),
    data=st.data(),
)
def test_array_elements_survive_any_cut(
    objects: list[dict[str, Any]], gap: str, indent: int | None, ascii_only: bool, data: Any
) -> None:
    # Strings full of brackets, quotes and escapes, multi-byte characters, any
    # whitespace between elements: each element comes out whole, wherever the
    # body was cut.
    items = f",{gap}".join(
        json.dumps(item, indent=indent, ensure_ascii=ascii_only) for item in objects
    )
    body = f"[{gap}{items}{gap}]{gap}".encode()
    points = data.draw(st.lists(st.integers(0, len(body)), max_size=12))
    assert elements(cut(body, points)) == (objects, None)


def test_array_bytewise_with_escape_at_every_boundary() -> None:
    objects = [{"a": 'x\\"]}', "b": [{"c": "\\\\"}]}, {"d": "é😀", "e": {}}]
    body = json.dumps(objects, ensure_ascii=False).encode()
    assert elements(bytewise(body)) == (objects, None)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(BOM + b'[{"a": 1}]', id="bom"),
        pytest.param(b'[{"a": 1}', id="missing-close"),
        pytest.param(b'[{"a": 1}]\r\n  ', id="trailing-whitespace"),
        pytest.param(b"  [  ]  ", id="empty-array"),
        pytest.param(b'[{"a": 1},]', id="trailing-comma"),
    ],
)
def test_array_accepted_shapes(body: bytes) -> None:
    # A missing ']' is the dialect's business (it judges completeness), not the
    # framing's; a byte-order mark may be split across the first chunks.
    expected = [] if b"a" not in body else [{"a": 1}]
    assert elements([body]) == (expected, None)
    assert elements(bytewise(body)) == (expected, None)


@pytest.mark.parametrize(
    ("body", "good", "message"),
    [
        pytest.param(b'x[{"a": 1}]', 0, "unexpected bytes", id="junk-before"),
        pytest.param(b'[{"a": 1}] [{"b": 2}]', 1, "unexpected bytes", id="second-array"),
        pytest.param(b'[{"a": 1}, 2]', 1, "unexpected bytes", id="scalar-element"),
        pytest.param(b'[{"a": 1}, [1]]', 1, "unexpected bytes", id="array-element"),
        pytest.param(b'[{"a": 1}}]', 1, "unexpected bytes", id="extra-brace"),
        pytest.param(b'[{"a": 1}], ', 1, "unexpected bytes", id="comma-after-close"),
        pytest.param(b"\xef\xbb", 0, "unexpected bytes", id="half-a-bom"),
        pytest.param(b'[{"a": 1}, xyz' + b"q" * 100, 1, "b'x' at byte 11", id="junk-quoted"),
    ],
)
def test_array_errors_keep_the_elements_before_them(body: bytes, good: int, message: str) -> None:
    # The elements before the fault come out first, whole body or byte by byte,
    # then the same error: its message quotes the offending byte and its offset,
    # never the rest of the read it came in (which depended on the split).
    whole = outcome(lambda: JSONArrayDecoder(LIMIT), [body])
    for pieces in (bytewise(body), cut(body, [len(body) // 2]), cut(body, [12])):
        assert outcome(lambda: JSONArrayDecoder(LIMIT), pieces) == whole
    found, error = elements([body])
    assert len(found) == good
    assert error is not None and message in error.message
    assert error.position == good


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'[{"a": 1}, {"b": "unterminated', id="in-a-string"),
        pytest.param(b'[{"a": 1}, {"b": [1, {"c"', id="nested"),
        pytest.param(b'[{"a": 1}, {', id="just-opened"),
    ],
)
def test_array_element_cut_by_the_end_comes_out_unterminated(body: bytes) -> None:
    # As an SSE event without its closing blank line: the parser, not the
    # framing, tells a cut stream (the connection dropped) from a malformed one.
    for pieces in ([body], bytewise(body)):
        events, error = decode(JSONArrayDecoder(LIMIT), pieces)
        assert error is None
        assert [(e.index, e.terminated) for e in events] == [(0, True), (1, False)]
        assert events[1].raw == body[body.index(b"{", 2) :]


_junk = st.sampled_from([b"x", b",", b"]", b"[", b"}", b" ", b"\xef\xbb\xbf", b'"', b"{"])


@settings(max_examples=300, deadline=None)
@given(
    objects=_objects,
    junk=st.lists(st.tuples(st.integers(0, 200), _junk), max_size=3),
    limit=st.integers(1, 80),
    data=st.data(),
)
def test_array_same_events_and_error_at_any_cut(
    objects: list[dict[str, Any]], junk: list[tuple[int, bytes]], limit: int, data: Any
) -> None:
    # Valid arrays with stray bytes spliced in and a small limit: whatever the
    # fault (unexpected bytes, an element too large, a cut element), the events
    # and the error, message and excerpt included, never depend on the split.
    body = json.dumps(objects, ensure_ascii=False).encode()
    for at, piece in junk:
        body = body[:at] + piece + body[at:]
    points = data.draw(st.lists(st.integers(0, len(body)), max_size=12))
    whole = outcome(lambda: JSONArrayDecoder(limit), [body])
    assert outcome(lambda: JSONArrayDecoder(limit), cut(body, points)) == whole
    assert outcome(lambda: JSONArrayDecoder(limit), bytewise(body)) == whole


@pytest.mark.parametrize(
    "pieces",
    [
        pytest.param(lambda body: [body], id="one-chunk"),
        pytest.param(bytewise, id="bytewise"),
        pytest.param(lambda body: cut(body, [5, 40]), id="cut"),
    ],
)
def test_array_element_larger_than_the_limit_fails_however_cut(pieces: Any) -> None:
    body = b'[{"small": 1}, {"big": "' + b"x" * 100 + b'"}]'
    events, error = decode(JSONArrayDecoder(64), pieces(body))
    assert [json.loads(event.raw) for event in events] == [{"small": 1}]
    assert error is not None and "larger than the limit of 64 bytes" in error.message
    assert error.position == 1


def test_array_error_is_raised_again_after_being_held() -> None:
    decoder = JSONArrayDecoder(LIMIT)
    assert [event.raw for event in decoder.feed(b'[{"a": 1} x')] == [b'{"a": 1}']
    with pytest.raises(ProtocolError):
        decoder.feed(b"]")
    with pytest.raises(ProtocolError):
        decoder.close()


# -- a sequence of JSON objects (NDJSON, or one document) ---------------------------------


def values(pieces: list[bytes]) -> tuple[list[Any], ProtocolError | None]:
    events, error = decode(JSONSequenceDecoder(LIMIT), pieces)
    assert [event.index for event in events] == list(range(len(events)))
    assert all(event.terminated for event in events)
    return [json.loads(event.raw) for event in events], error


@settings(max_examples=300, deadline=None)
@given(
    objects=_objects,
    gap=st.sampled_from(["\n", "\r\n", " ", "", "\n\n  "]),
    indent=st.sampled_from([None, 2]),
    data=st.data(),
)
def test_sequence_values_survive_any_cut(
    objects: list[dict[str, Any]], gap: str, indent: int | None, data: Any
) -> None:
    # Newline-delimited objects (or pretty-printed ones, or none between):
    # each comes out whole as soon as it closes, wherever the body was cut.
    body = "".join(json.dumps(item, indent=indent, ensure_ascii=False) + gap for item in objects)
    raw = body.encode()
    points = data.draw(st.lists(st.integers(0, len(raw)), max_size=12))
    assert values(cut(raw, points)) == (objects, None)


def test_ndjson_writes_what_the_sequence_decoder_reads() -> None:
    payloads = [b'{"a": 1}', b'{"b": "x\\ny"}', b"{}"]
    body = ndjson(payloads)
    assert body == b'{"a": 1}\n{"b": "x\\ny"}\n{}\n'
    assert [event.raw for event in decode(JSONSequenceDecoder(LIMIT), bytewise(body))[0]] == (
        payloads
    )


def test_each_value_is_handed_over_when_it_closes() -> None:
    # Not at the end of the body: a stream of lines is read as it arrives.
    decoder = JSONSequenceDecoder(LIMIT)
    assert [e.raw for e in decoder.feed(b'{"a": 1}\n{"b"')] == [b'{"a": 1}']
    assert [e.raw for e in decoder.feed(b": 2}\n")] == [b'{"b": 2}']
    assert decoder.close() == []


@pytest.mark.parametrize(
    ("body", "raw"),
    [
        pytest.param(b'{"error": {"code": 429}}', b'{"error": {"code": 429}}', id="plain"),
        pytest.param(b'\r\n {"a": 1} \n', b'{"a": 1}', id="whitespace"),
        pytest.param(BOM + b' {"a": 1}', b'{"a": 1}', id="bom"),
        pytest.param(
            b'{\n  "a": [1, {"b": "}"}]\n}\n', b'{\n  "a": [1, {"b": "}"}]\n}', id="pretty"
        ),
        pytest.param(b"", None, id="empty"),
        pytest.param(b" \r\n", None, id="blank"),
    ],
)
def test_one_document_is_one_event(body: bytes, raw: bytes | None) -> None:
    for pieces in ([body], bytewise(body)):
        events, error = decode(JSONSequenceDecoder(LIMIT), pieces)
        assert error is None
        assert [event.raw for event in events] == ([] if raw is None else [raw])
        assert all(event.index == 0 and event.terminated for event in events)


@pytest.mark.parametrize(
    ("body", "good", "message"),
    [
        pytest.param(b'x{"a": 1}', 0, "b'x' at byte 0", id="junk-before"),
        pytest.param(b'{"a": 1}\n[1]', 1, "b'[' at byte 9", id="array-value"),
        pytest.param(b'{"a": 1}\n2\n', 1, "b'2' at byte 9", id="scalar-value"),
        pytest.param(b'{"a": 1}}', 1, "b'}' at byte 8", id="extra-brace"),
        pytest.param(b'{"a": 1},{"b": 2}', 1, "b',' at byte 8", id="comma"),
        pytest.param(b'{"a": 1}\ndata: x\n', 1, "b'd' at byte 9", id="sse-after"),
    ],
)
def test_sequence_errors_keep_the_values_before_them(body: bytes, good: int, message: str) -> None:
    whole = outcome(lambda: JSONSequenceDecoder(LIMIT), [body])
    for pieces in (bytewise(body), cut(body, [len(body) // 2]), cut(body, [3])):
        assert outcome(lambda: JSONSequenceDecoder(LIMIT), pieces) == whole
    found, error = values([body])
    assert len(found) == good
    assert error is not None
    assert error.message.startswith("unexpected bytes in a body of JSON values after value #")
    assert message in error.message
    assert error.position == good


def test_sequence_value_cut_by_the_end_comes_out_unterminated() -> None:
    body = b'{"a": 1}\n{"b": "unterminated'
    for pieces in ([body], bytewise(body)):
        events, error = decode(JSONSequenceDecoder(LIMIT), pieces)
        assert error is None
        assert [(e.raw, e.terminated) for e in events] == [
            (b'{"a": 1}', True),
            (b'{"b": "unterminated', False),
        ]


def test_sequence_value_larger_than_the_limit() -> None:
    # Each value is bounded (a body of many small values is not).
    body = b'{"s": 1}\n{"a": "' + b"x" * 20 + b'"}'
    whole = outcome(lambda: JSONSequenceDecoder(16), [body])
    assert whole == (
        [(b'{"s": 1}', 0, True)],
        ("JSON value #1 is larger than the limit of 16 bytes", '{"a": "xxxxxxxxxx', 1),
    )
    for pieces in (bytewise(body), cut(body, [3, 11, 14])):
        assert outcome(lambda: JSONSequenceDecoder(16), pieces) == whole
    many = ndjson([b'{"s": 1}'] * 1000)
    assert len(decode(JSONSequenceDecoder(16), [many])[0]) == 1000


@settings(max_examples=200, deadline=None)
@given(
    objects=_objects,
    junk=st.lists(st.tuples(st.integers(0, 200), _junk), max_size=3),
    limit=st.integers(1, 80),
    data=st.data(),
)
def test_sequence_same_events_and_error_at_any_cut(
    objects: list[dict[str, Any]], junk: list[tuple[int, bytes]], limit: int, data: Any
) -> None:
    body = ndjson([json.dumps(item, ensure_ascii=False).encode() for item in objects])
    for at, piece in junk:
        body = body[:at] + piece + body[at:]
    points = data.draw(st.lists(st.integers(0, len(body)), max_size=12))
    whole = outcome(lambda: JSONSequenceDecoder(limit), [body])
    assert outcome(lambda: JSONSequenceDecoder(limit), cut(body, points)) == whole
    assert outcome(lambda: JSONSequenceDecoder(limit), bytewise(body)) == whole


class _ScannedSequence(JSONSequenceDecoder):
    """The sequence decoder without its shortcuts (whole lines checked at C
    speed, a line's start held unscanned): every byte scanned. What the
    shortcuts must give, however the input is cut."""

    def _whole_lines(self, chunk: bytes, pos: int, end: int, events: list[ServerSentEvent]) -> int:
        return pos

    def _hold(self, chunk: bytes, pos: int) -> int:
        self._start = pos
        return pos


_line = st.sampled_from(
    [
        b'{"a": 1}',
        b'{"model":"m","message":{"content":"x"},"done":false}',
        b'{"a": [1, 2]}',
        b'{"a": "}"}',
        b'{"a": "]"}',
        b'{"a": 1}{"b": 2}',  # two values on a line
        b'{"a": 1} {"b": 2}',
        b'{"a": 1},{"b": 2}',  # a comma between them
        b'{"a": 1}]',
        b'{"a": 1]',  # the scanner takes "]" for a close
        b'{"a": [1}',
        b'{"a": tru}',  # balanced, not JSON: one value all the same
        b'{"a": "x}',  # a string open at the line end
        b'{"b": "y\\"}',
        b'{"a": 1} ',
        b'{"a": 1}\r',
        b' {"a": 1}',
        b'\t{"a": 2} \r',
        b" ",
        b"",
        b"x",
        b"[1]",
        b'{"s": "' + b"x" * 60 + b'"}',  # larger than a small limit
        b"{" * 300 + b"}" * 300,  # nested deeper than msgspec reads
        b'{"a": {',  # a value over several lines
        b'"b": 1}}',
    ]
)


@settings(max_examples=500, deadline=None)
@given(
    lines=st.lists(_line, max_size=12),
    limit=st.sampled_from([40, 200, LIMIT]),
    end=st.sampled_from([b"\n", b""]),
    data=st.data(),
)
def test_sequence_shortcuts_give_what_the_scanner_gives(
    lines: list[bytes], limit: int, end: bytes, data: Any
) -> None:
    # NDJSON whose lines are not all one object each (two on a line, a stray
    # "]", white space, a value across lines, garbage, too large or too deep):
    # the events and the error are the scanner's, however the input is cut.
    # Each read hands over the same events as the scanner's (a value as soon
    # as it closes).
    body = b"\n".join(lines) + end
    points = data.draw(st.lists(st.integers(0, len(body)), max_size=8))
    for pieces in ([body], cut(body, points), bytewise(body)):
        assert reads(JSONSequenceDecoder(limit), pieces) == reads(_ScannedSequence(limit), pieces)


def reads(decoder: JSONSequenceDecoder, pieces: list[bytes]) -> tuple[list[Any], Any]:
    """The events of each call (``feed`` per piece, then ``close``), and the error."""
    out: list[Any] = []
    try:
        for piece in pieces:
            out.append([(e.raw, e.index, e.terminated) for e in decoder.feed(piece)])
        out.append([(e.raw, e.index, e.terminated) for e in decoder.close()])
    except ProtocolError as error:
        return out, (error.message, error.excerpt, error.position)
    return out, None


class _Probe(msgspec.Struct, forbid_unknown_fields=True):
    """A consumer's typed line: ``{"a": <int>}`` only."""

    a: int


_probe = msgspec.json.Decoder(_Probe).decode


def _taken(event: ServerSentEvent) -> Any:
    # What a consumer that takes the lines its typed decode accepts (_Probe)
    # sees of an event: the decoded value (the white space around the line
    # unseen), or the bytes.
    try:
        return _probe(event.raw), event.index
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return event.raw, event.index, event.terminated


def verified_reads(limit: int, pieces: list[bytes], validate: bool) -> tuple[list[Any], Any]:
    """The ``_taken`` of each call's events and the error, the consumer
    verifying every event it does not take, as the parser does."""
    decoder = JSONSequenceDecoder(limit, validate=validate)
    out: list[Any] = []
    try:
        for piece in pieces:
            events = decoder.feed(piece)
            i = 0
            while i < len(events):
                if type(_taken(events[i])[0]) is bytes and decoder.verify(events, i):
                    continue
                i += 1
            out.append([_taken(e) for e in events])
        out.append([_taken(e) for e in decoder.close()])
    except ProtocolError as error:
        return out, (error.message, error.excerpt, error.position)
    return out, None


@settings(max_examples=500, deadline=None)
@given(
    lines=st.lists(_line, max_size=12),
    limit=st.sampled_from([40, 200, LIMIT]),
    end=st.sampled_from([b"\n", b""]),
    data=st.data(),
)
def test_unchecked_lines_verified_give_what_the_validating_decoder_gives(
    lines: list[bytes], limit: int, end: bytes, data: Any
) -> None:
    # The lines handed over unchecked, each one the consumer's decode took or
    # verified: every read's events and the error are the validating
    # decoder's (so the scanner's), however the input is cut, but for the
    # white space around a line the consumer took.
    body = b"\n".join(lines) + end
    points = data.draw(st.lists(st.integers(0, len(body)), max_size=8))
    for pieces in ([body], cut(body, points)):
        assert verified_reads(limit, pieces, False) == verified_reads(limit, pieces, True)


def _verify_all(decoder: JSONSequenceDecoder, events: list[ServerSentEvent]) -> list[bytes]:
    i = 0
    while i < len(events):
        if not decoder.verify(events, i):
            i += 1
    return [event.raw for event in events]


@pytest.mark.parametrize(
    ("body", "raws"),
    [
        pytest.param(b'{"a": 1}\n{"b": 2}\n', [b'{"a": 1}', b'{"b": 2}'], id="valid"),
        pytest.param(
            b'{"a": 1}\n{"a": 1}{"b": 2}\n{"c": 3}\n',
            [b'{"a": 1}', b'{"a": 1}', b'{"b": 2}', b'{"c": 3}'],
            id="two-on-a-line",
        ),
        pytest.param(
            b'{"a": 1}\n{"a": tru}\n{"c": 3}\n',
            [b'{"a": 1}', b'{"a": tru}', b'{"c": 3}'],
            id="not-json",
        ),
        pytest.param(
            b'{"a": 1}\n{"a": {\n"b": 1}}\n{"c": 3}\n',
            [b'{"a": 1}', b'{"a": {\n"b": 1}}', b'{"c": 3}'],
            id="across-lines",
        ),
    ],
)
def test_verify_replaces_the_events_from_a_line_that_is_not_one_value(
    body: bytes, raws: list[bytes]
) -> None:
    decoder = JSONSequenceDecoder(LIMIT, validate=False)
    events = decoder.feed(body)
    assert _verify_all(decoder, events) == raws
    assert [event.index for event in events] == list(range(len(raws)))
    assert decoder.count == len(raws) and decoder.close() == []
    # A validating decoder has nothing to verify.
    checked = JSONSequenceDecoder(LIMIT)
    assert _verify_all(checked, checked.feed(body)) == raws


def test_verify_raises_the_error_feed_would_have_raised() -> None:
    # The first line of the read is a value that grows past the limit: no
    # event comes before the error, so it is raised, and again on every call.
    body = b'{"a": [\n' + b"1,\n" * 20 + b"2]}\n"
    decoder = JSONSequenceDecoder(40, validate=False)
    events = decoder.feed(body)
    with pytest.raises(ProtocolError, match="larger than the limit of 40 bytes") as raised:
        decoder.verify(events, 0)
    assert events == []
    with pytest.raises(ProtocolError) as again:
        decoder.close()
    assert again.value is raised.value
    # After a good line, the error is held for the next call, as feed holds it.
    decoder = JSONSequenceDecoder(40, validate=False)
    events = decoder.feed(b'{"s": 1}\n' + body)
    assert _verify_all(decoder, events) == [b'{"s": 1}']
    with pytest.raises(ProtocolError, match="JSON value #1 is larger"):
        decoder.feed(b"")


# -- telling the framing -------------------------------------------------------------------


def sniff(pieces: list[bytes], max_size: int = LIMIT) -> tuple[Framing, bytes]:
    """The framing told, and the bytes handed to its decoder."""
    sniffer = FramingSniff(max_size)
    for number, piece in enumerate(pieces):
        framing = sniffer.feed(piece)
        if framing is not None:
            return framing, sniffer.head + b"".join(pieces[number + 1 :])
    return sniffer.close(), sniffer.head


@pytest.mark.parametrize(
    ("body", "framing", "head"),
    [
        pytest.param(b"data: x\n\n", Framing.SSE, None, id="sse"),
        pytest.param(b'[{"a": 1}]', Framing.JSON_ARRAY, None, id="array"),
        pytest.param(b'{"error": {}}', Framing.JSON_SEQUENCE, None, id="body"),
        pytest.param(b'{"a": 1}\n{"b": 2}\n', Framing.JSON_SEQUENCE, None, id="ndjson"),
        pytest.param(
            b"\x00\x00\x00\x10\x00\x00\x00\x00", Framing.EVENT_STREAM, None, id="event-stream"
        ),
        pytest.param(b"\x01\x00\x00\x10", Framing.EVENT_STREAM, None, id="event-stream-16-mib"),
        pytest.param(b"\x08", Framing.EVENT_STREAM, None, id="backspace-is-binary"),
        pytest.param(BOM + b"\x00\x00", Framing.EVENT_STREAM, None, id="event-stream-after-bom"),
        pytest.param(
            b' \r\n\t[{"a": 1}]',
            Framing.JSON_ARRAY,
            b'\n\t[{"a": 1}]',
            id="array-after-white-space",
        ),
        pytest.param(
            BOM + b'\n{"a": 1}', Framing.JSON_SEQUENCE, b'\n{"a": 1}', id="body-after-bom"
        ),
        pytest.param(b"  data: x\n\n", Framing.SSE, None, id="sse-blanks-in-the-line"),
        pytest.param(
            b"\n\n  data: x\n\n", Framing.SSE, b"\n  data: x\n\n", id="sse-after-white-space"
        ),
        pytest.param(
            b"\r" * 100_000 + b"data: x\n\n", Framing.SSE, b"\ndata: x\n\n", id="long-blank-prefix"
        ),
        pytest.param(
            b"\n" + BOM + b"data: x\n\n", Framing.SSE, None, id="a-mark-after-a-line-stays"
        ),
        pytest.param(BOM + BOM + b"[]", Framing.SSE, None, id="second-bom-is-not-white-space"),
        pytest.param(b" " + BOM + b"[]", Framing.SSE, None, id="bom-after-white-space"),
        pytest.param(b"\xef\xbb[]", Framing.SSE, None, id="half-a-bom"),
        pytest.param(b"", Framing.SSE, None, id="empty"),
        pytest.param(b" \r\n", Framing.SSE, b"\n", id="blank"),
        pytest.param(b" \r\n  ", Framing.SSE, b"\n  ", id="blank-then-blanks"),
        pytest.param(b"\xef\xbb", Framing.SSE, None, id="only-half-a-bom"),
    ],
)
def test_sniff_tells_the_framing_and_hands_on_the_last_line(
    body: bytes, framing: Framing, head: bytes | None
) -> None:
    # White space in the first meaningful line is not droppable ("  data: x" is
    # a line whose field is "  data"): the decoder gets that line unchanged. The
    # whole lines of white space before it are: they become one LF, whatever
    # the cuts, so a blank prefix holds no memory and no mark is stripped
    # after a line end.
    bytes_at_the_end = [body[:-40], *bytewise(body[-40:])] if len(body) > 40 else bytewise(body)
    for pieces in ([body], bytes_at_the_end, cut(body, [1, 2, 3])):
        assert sniff(pieces) == (framing, body if head is None else head)


def test_sniff_refuses_more_white_space_than_the_limit() -> None:
    for pieces in ([b"\n" * 101 + b"data: x\n\n"], [b" " * 60, b"\n" * 41], bytewise(b"\n" * 101)):
        with pytest.raises(ProtocolError) as caught:
            sniff(pieces, max_size=100)
        assert caught.value.message == "the body starts with more than 100 bytes of white space"
    assert sniff([b"\n" * 100, b"["], max_size=100)[0] is Framing.JSON_ARRAY


def allocated(feed: Callable[[bytes], object], pieces: list[bytes]) -> int:
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


def test_sniff_work_is_linear_in_the_white_space() -> None:
    # A few bytes of bookkeeping per call (the counts), no copy of what came
    # before; the head used to be re-joined on every read: 64 K newlines a byte
    # at a time copied 2 GB, n / 2 bytes per call. A line of blanks is held
    # whole (its bytes are the line's), each byte copied about once.
    n = 64 * 1024
    sniffer = FramingSniff(LIMIT)
    assert allocated(sniffer.feed, [b"\n"] * n) < 128 * n
    assert sniffer.feed(b"[") is Framing.JSON_ARRAY
    assert sniffer.head == b"\n["
    sniffer = FramingSniff(LIMIT)
    assert allocated(sniffer.feed, [b" "] * n) < 128 * n
    assert sniffer.feed(b"[") is Framing.JSON_ARRAY
    assert sniffer.head == b" " * n + b"["


def sniff_outcome(pieces: list[bytes], max_size: int) -> Any:
    try:
        return sniff(pieces, max_size)
    except ProtocolError as error:
        return error.message, error.position


@settings(max_examples=300, deadline=None)
@given(
    head=st.lists(
        st.sampled_from([b" ", b"\t", b"\r\n", b"\n", BOM, b"\xef", b"\xbb"]), max_size=12
    ),
    first=st.sampled_from([b"", b"[", b"{", b"d", b"\xef", b"\x00"]),
    max_size=st.integers(0, 12),
    data=st.data(),
)
def test_sniff_same_framing_or_error_at_any_cut(
    head: list[bytes], first: bytes, max_size: int, data: Any
) -> None:
    body = b"".join(head) + first + b"rest"
    points = data.draw(st.lists(st.integers(0, len(body)), max_size=6))
    whole = sniff_outcome([body], max_size)
    assert sniff_outcome(cut(body, points), max_size) == whole
    assert sniff_outcome(bytewise(body), max_size) == whole
