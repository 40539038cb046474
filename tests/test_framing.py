"""Framings other than SSE: a streamed JSON array (Gemini without ``alt=sse``) and a
body that is one JSON document."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamfold.errors import ProtocolError
from streamfold.framing import BodyDecoder, JSONArrayDecoder
from streamfold.sse import ServerSentEvent

from .corpus import bytewise, cut

LIMIT = 1 << 20
BOM = b"\xef\xbb\xbf"


def decode(
    decoder: JSONArrayDecoder | BodyDecoder, pieces: list[bytes]
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
    return [json.loads(event.raw) for event in events], error


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
        pytest.param(b'[{"a": 1}, {"b": "unterminated', 1, "ended inside", id="cut-element"),
        pytest.param(b"\xef\xbb", 0, "unexpected bytes", id="half-a-bom"),
    ],
)
def test_array_errors_keep_the_elements_before_them(body: bytes, good: int, message: str) -> None:
    # The elements before the fault come out first, whole body or byte by byte:
    # what a caller sees before an error never depends on how the body was cut.
    for pieces in ([body], bytewise(body), cut(body, [len(body) // 2])):
        found, error = elements(pieces)
        assert len(found) == good
        assert error is not None and message in error.message
        assert error.position == good


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


# -- one JSON body ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "raw"),
    [
        pytest.param(b'{"error": {"code": 429}}', b'{"error": {"code": 429}}', id="plain"),
        pytest.param(b'\r\n {"a": 1} \n', b'{"a": 1}', id="whitespace"),
        pytest.param(BOM + b' {"a": 1}', b'{"a": 1}', id="bom"),
        pytest.param(b"", None, id="empty"),
        pytest.param(b" \r\n", None, id="blank"),
    ],
)
def test_body_is_one_event_at_the_end(body: bytes, raw: bytes | None) -> None:
    for pieces in ([body], bytewise(body)):
        decoder = BodyDecoder(LIMIT)
        assert [event for piece in pieces for event in decoder.feed(piece)] == []
        events = decoder.close()
        assert [event.raw for event in events] == ([] if raw is None else [raw])
        assert all(event.index == 0 and event.terminated for event in events)


def test_body_larger_than_the_limit() -> None:
    for pieces in ([b"{" + b" " * 20 + b"}"], bytewise(b"{" + b" " * 20 + b"}")):
        events, error = decode(BodyDecoder(16), pieces)
        assert events == []
        assert error is not None and "larger than the limit of 16 bytes" in error.message
