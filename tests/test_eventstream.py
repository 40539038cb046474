"""The AWS event-stream framing: messages written by ``encode_message`` and read
by ``EventStreamDecoder``, checked against botocore's own parser (a test-only
oracle) on the same bytes, every split alike."""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamfold import StreamParser
from streamfold.errors import IncompleteStreamError, ProtocolError
from streamfold.eventstream import (
    MAX_HEADERS_SIZE,
    EventStreamDecoder,
    EventStreamMessage,
    decode_headers,
    encode_error,
    encode_event,
    encode_exception,
    encode_message,
)
from streamfold.framing import Framing, FramingSniff
from streamfold.sse import ServerSentEvent

from .corpus import bytewise, cut

eventstream = pytest.importorskip("botocore.eventstream", reason="botocore is the oracle")

LIMIT = 1 << 20


def decode(pieces: list[bytes], limit: int = LIMIT) -> tuple[list[ServerSentEvent], Any]:
    """Feed pieces, then close: the events, and the error (message, position) or None."""
    decoder = EventStreamDecoder(limit)
    events: list[ServerSentEvent] = []
    try:
        for piece in pieces:
            events.extend(decoder.feed(piece))
        events.extend(decoder.close())
    except ProtocolError as error:
        return events, (error.message, error.position)
    return events, None


def seen(events: list[ServerSentEvent]) -> list[tuple[str, str, bytes, bool]]:
    out = []
    for event in events:
        assert isinstance(event, EventStreamMessage)
        out.append((event.message_type, event.event, event.raw, event.terminated))
    return out


def botocore_messages(data: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """What botocore reads: each message's headers and payload."""
    buffer = eventstream.EventStreamBuffer()
    buffer.add_data(data)
    return [(message.headers, message.payload) for message in buffer]


def headers_section(message: bytes) -> bytes:
    (length,) = struct.unpack("!I", message[4:8])
    return message[12 : 12 + length]


# -- hypothesis: messages of every header type ------------------------------------------

_names = st.text(st.characters(codec="utf-8"), max_size=12).filter(
    lambda name: len(name.encode()) <= 255
)
_header_values = st.one_of(
    st.booleans(),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**63), 2**63 - 1),
    st.binary(max_size=40),
    st.text(max_size=40),
    st.tuples(st.just(2), st.integers(-128, 127)),
    st.tuples(st.just(3), st.integers(-(2**15), 2**15 - 1)),
    st.tuples(st.just(8), st.integers(-(2**63), 2**63 - 1)),
    st.tuples(st.just(9), st.binary(min_size=16, max_size=16)),
)
_messages = st.lists(
    st.tuples(st.dictionaries(_names, _header_values, max_size=5), st.binary(max_size=200)),
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(messages=_messages, data=st.data())
def test_messages_read_as_botocore_reads_them_at_any_cut(
    messages: list[tuple[dict[str, Any], bytes]], data: Any
) -> None:
    frames = [encode_message(headers, payload) for headers, payload in messages]
    body = b"".join(frames)
    oracle = botocore_messages(body)
    assert [payload for _, payload in oracle] == [payload for _, payload in messages]
    for frame, (headers, _) in zip(frames, oracle, strict=True):
        assert decode_headers(headers_section(frame)) == headers
    points = data.draw(st.lists(st.integers(0, len(body)), max_size=10))
    events, error = decode(cut(body, points))
    assert error is None
    assert [event.raw for event in events] == [payload for _, payload in oracle]
    assert [event.index for event in events] == list(range(len(frames)))
    for event, (headers, _) in zip(events, oracle, strict=True):
        assert isinstance(event, EventStreamMessage)
        message_type = headers.get(":message-type")
        assert event.message_type == (
            message_type if isinstance(message_type, str) and message_type else "event"
        )


@settings(max_examples=150, deadline=None)
@given(messages=_messages.filter(bool), data=st.data())
def test_a_changed_byte_is_refused_as_botocore_refuses_it(
    messages: list[tuple[dict[str, Any], bytes]], data: Any
) -> None:
    # CRC-32 catches every single-byte change: botocore refuses the message,
    # and so does the decoder, with the same error however the bytes are cut.
    body = bytearray(b"".join(encode_message(headers, payload) for headers, payload in messages))
    at = data.draw(st.integers(0, len(body) - 1))
    body[at] ^= data.draw(st.integers(1, 255))
    changed = bytes(body)
    with pytest.raises(eventstream.ParserError):
        botocore_messages(changed)
    whole = decode([changed])
    assert whole[1] is not None
    assert decode(bytewise(changed)) == whole
    assert decode(cut(changed, [at, at + 1, len(changed) // 2])) == whole


# -- what a Bedrock stream holds -------------------------------------------------------------


def test_event_exception_and_error_messages() -> None:
    body = (
        encode_event("messageStart", b'{"role":"assistant","p":"abc"}')
        + encode_exception("throttlingException", b'{"message":"Too many requests"}')
        + encode_error("InternalFailure", "try later")
    )
    for pieces in ([body], bytewise(body)):
        events, error = decode(pieces)
        assert error is None
        assert seen(events) == [
            ("event", "messageStart", b'{"role":"assistant","p":"abc"}', True),
            ("exception", "throttlingException", b'{"message":"Too many requests"}', True),
            ("error", "InternalFailure", b'{"code":"InternalFailure","message":"try later"}', True),
        ]
    assert all(event.event_set for event in events)


def test_a_message_without_a_message_type_is_an_event() -> None:
    events, error = decode([encode_message({":event-type": "chunk"}, b"{}")])
    assert error is None
    assert seen(events) == [("event", "chunk", b"{}", True)]
    events, _ = decode([encode_message({}, b"{}")])
    assert seen(events) == [("event", "message", b"{}", True)]
    assert not events[0].event_set


def test_a_message_cut_by_the_end_comes_out_unterminated_and_empty() -> None:
    body = encode_event("messageStart", b'{"role":"assistant"}')
    second = encode_event("contentBlockDelta", b'{"delta":{"text":"Hi"}}')
    for end in (1, 11, 12, 20, len(second) - 4, len(second) - 1):
        events, error = decode(bytewise(body + second[:end]))
        assert error is None
        assert [(e.event, e.raw, e.terminated) for e in events] == [
            ("messageStart", b'{"role":"assistant"}', True),
            ("message", b"", False),
        ]


def test_the_parser_reports_a_cut_message_as_a_cut_stream() -> None:
    body = encode_event("contentBlockDelta", b'{"contentBlockIndex":0,"delta":{"text":"Hi"}}')
    parser = StreamParser()
    parser.feed(body + body[:30])
    parser.close()
    assert isinstance(parser.error, IncompleteStreamError)
    assert parser.error.message.startswith("the stream ended inside event-stream message #1")


def test_the_sniff_tells_an_event_stream_at_its_first_byte() -> None:
    body = encode_event("messageStart", b"{}")
    sniff = FramingSniff(LIMIT)
    assert sniff.feed(body[:1]) is Framing.EVENT_STREAM
    assert sniff.head == body[:1]


# -- every length bounded, every fault the same however cut ------------------------------


def prelude(total: int, headers: int) -> bytes:
    head = struct.pack("!II", total, headers)
    return head + struct.pack("!I", zlib.crc32(head))


def framed(headers_block: bytes, payload: bytes = b"") -> bytes:
    """A message with the given raw headers section and correct CRCs."""
    head = prelude(16 + len(headers_block) + len(payload), len(headers_block))
    head += headers_block + payload
    return head + struct.pack("!I", zlib.crc32(head))


GOOD = encode_event("messageStart", b"{}")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(prelude(15, 0) + b"xyz", "its total length, 15, is less than", id="short"),
        pytest.param(prelude(20, 5), "its headers length, 5, is more than the 4", id="headers"),
        pytest.param(
            prelude(MAX_HEADERS_SIZE + 17, MAX_HEADERS_SIZE + 1),
            f"its headers length, {MAX_HEADERS_SIZE + 1}, is over the limit",
            id="headers-limit",
        ),
        pytest.param(
            prelude(16 + LIMIT + 1, 0), "its payload, 1048577 bytes, is larger", id="payload"
        ),
        pytest.param(
            struct.pack("!II", 30, 0) + b"\x00\x00\x00\x00" + b"x" * 18,
            "its prelude CRC is 0x00000000, but its bytes give",
            id="prelude-crc",
        ),
        pytest.param(GOOD[:-1] + bytes([GOOD[-1] ^ 1]), "its message CRC is", id="message-crc"),
        pytest.param(framed(b"\x01a\x0a"), "header 'a' has the unknown type 10", id="type"),
        pytest.param(framed(b"\x01a\x00\x01a\x01"), "header 'a' appears twice", id="twice"),
        pytest.param(framed(b"\x05ab"), "header #1 runs past the end", id="name-past"),
        pytest.param(framed(b"\x01a\x07\x00\x05ab"), "header 'a' runs past the end", id="value"),
        pytest.param(framed(b"\x01a\x04\x00\x00"), "header 'a' runs past the end", id="int"),
        pytest.param(framed(b"\x01\xff\x00"), "header #1's name is not UTF-8", id="name-utf8"),
        pytest.param(framed(b"\x01a\x07\x00\x01\xff"), "header 'a' is not UTF-8", id="utf8"),
    ],
)
def test_malformed_messages_fail_the_same_however_cut(body: bytes, message: str) -> None:
    # The good message before the fault comes out first; the error names the
    # message and its offset, and what is wrong.
    data = GOOD + body
    whole = decode([data])
    events, error = whole
    assert [event.event for event in events] == ["messageStart"]
    assert error is not None
    assert error[0].startswith(f"event-stream message #1 at byte {len(GOOD)} of the body: ")
    assert message in error[0]
    assert error[1] == 1
    for pieces in (bytewise(data) if len(data) < 4096 else [], cut(data, [5, len(GOOD) + 3])):
        assert decode(pieces) == whole


def test_a_length_is_refused_before_its_bytes_are_awaited() -> None:
    # A prelude announcing 2 GB fails at once: nothing is buffered for it.
    decoder = EventStreamDecoder(LIMIT)
    with pytest.raises(ProtocolError, match="larger than the limit"):
        decoder.feed(prelude(2**31, 0))


def test_the_error_is_raised_again_after_being_held() -> None:
    decoder = EventStreamDecoder(LIMIT)
    events = decoder.feed(GOOD + prelude(3, 0))
    assert [event.event for event in events] == ["messageStart"]
    with pytest.raises(ProtocolError):
        decoder.feed(GOOD)
    with pytest.raises(ProtocolError):
        decoder.close()


def test_header_values_of_every_type() -> None:
    uuid = bytes(range(16))
    message = encode_message(
        {
            "t": True,
            "f": False,
            "b": (2, -5),
            "s": (3, 300),
            "i": 70000,
            "l": 2**40,
            "a": b"\x00\xff",
            "u": "é",
            "ts": (8, 1_700_000_000_000),
            "id": (9, uuid),
        },
        b"x",
    )
    expected = {
        "t": True,
        "f": False,
        "b": -5,
        "s": 300,
        "i": 70000,
        "l": 2**40,
        "a": b"\x00\xff",
        "u": "é",
        "ts": 1_700_000_000_000,
        "id": uuid,
    }
    assert decode_headers(headers_section(message)) == expected
    assert botocore_messages(message) == [(expected, b"x")]


def test_encode_refuses_what_cannot_be_written() -> None:
    with pytest.raises(ValueError, match="longer than 255"):
        encode_message({"x" * 256: "v"})
    with pytest.raises(ValueError, match="longer than 65535"):
        encode_message({"a": "x" * 65536})
    with pytest.raises(ValueError, match="cannot hold"):
        encode_message({"a": (9, b"short")})


def test_a_message_split_across_reads_is_gathered_once() -> None:
    # A large payload read a few bytes at a time: the buffer grows by what
    # arrives, so the work stays linear (each byte copied about once).
    payload = json.dumps({"text": "x" * 200_000}).encode()
    body = encode_event("contentBlockDelta", payload)
    decoder = EventStreamDecoder(LIMIT)
    events: list[ServerSentEvent] = []
    for piece in cut(body, list(range(0, len(body), 7))):
        events.extend(decoder.feed(piece))
    assert [event.raw for event in events] == [payload]
