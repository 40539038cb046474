"""Tests for streamfold.partial_json, the linear-time incremental JSON parser."""

from __future__ import annotations

import itertools
import json
import pickle
import re
from typing import Any, cast

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamfold.partial_json import (
    MISSING,
    JSONDepthError,
    JSONSizeError,
    JSONStringDelta,
    JSONUpdate,
    JSONValueDone,
    JSONValueStarted,
    PartialJSONError,
    PartialJSONParser,
    Path,
    parse_partial,
)


def feed_all(pieces: list[str], **options: Any) -> tuple[PartialJSONParser, list[JSONUpdate]]:
    parser = PartialJSONParser(**options)
    updates: list[JSONUpdate] = []
    for piece in pieces:
        updates.extend(parser.feed(piece))
    return parser, updates


def same(actual: Any, expected: Any) -> bool:
    """Equal, and of the same types throughout (1 is not 1.0), with the same key order."""
    return actual == expected and repr(actual) == repr(expected)


def split_at(text: str, cuts: list[int]) -> list[str]:
    points = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    return [text[a:b] for a, b in itertools.pairwise(points)]


# A reference for prefix snapshots: quadratic and recursive, written from the
# documented semantics without sharing code with the parser.

_ESCAPE_TOKEN = re.compile(r"\\u[0-9a-fA-F]{0,4}|\\.?|[^\\]+", re.DOTALL)


def _reference_string(content: str) -> str:
    """Decode the received part of a string's content (no closing quote yet)."""
    tokens = _ESCAPE_TOKEN.findall(content)
    if tokens and (tokens[-1] == "\\" or (tokens[-1][:2] == "\\u" and len(tokens[-1]) < 6)):
        tokens.pop()  # an unfinished escape
    if tokens and re.fullmatch(r"\\u[dD][89abAB][0-9a-fA-F]{2}", tokens[-1]):
        tokens.pop()  # a high surrogate that may still get its low half
    result: str = json.loads('"' + "".join(tokens) + '"')
    return result


_END_OF_STRING = re.compile(r'(?:[^"\\]|\\.)*"', re.DOTALL)
_NUMBER_TOKEN = re.compile(r"[-+0-9.eE]+")


def _reference_value(text: str, i: int) -> tuple[Any, int, bool]:
    """Parse the value at ``text[i:]``: (snapshot or MISSING, end, complete)."""
    while i < len(text) and text[i] in " \t\n\r":
        i += 1
    if i == len(text):
        return MISSING, i, False
    c = text[i]
    if c == '"':
        end = _END_OF_STRING.match(text, i + 1)
        if end is None:
            return _reference_string(text[i + 1 :]), len(text), False
        return json.loads(text[i : end.end()]), end.end(), True
    if c in "-0123456789":
        token = _NUMBER_TOKEN.match(text, i)
        assert token is not None
        if token.end() == len(text):
            return MISSING, len(text), False
        return json.loads(token.group()), token.end(), True
    for word, value in (("true", True), ("false", False), ("null", None)):
        if c == word[0]:
            if text.startswith(word, i):
                return value, i + len(word), True
            return MISSING, len(text), False
    if c == "[":
        items: list[Any] = []
        i += 1
        while True:
            while i < len(text) and text[i] in " \t\n\r,":
                i += 1
            if i == len(text):
                return items, i, False
            if text[i] == "]":
                return items, i + 1, True
            item, i, complete = _reference_value(text, i)
            if item is not MISSING:
                items.append(item)
            if not complete:
                return items, i, False
    assert c == "{"
    members: dict[str, Any] = {}
    i += 1
    while True:
        while i < len(text) and text[i] in " \t\n\r,":
            i += 1
        if i == len(text):
            return members, i, False
        if text[i] == "}":
            return members, i + 1, True
        key, i, complete = _reference_value(text, i)
        if not complete:
            return members, i, False
        while i < len(text) and text[i] in " \t\n\r:":
            i += 1
        value, i, complete = _reference_value(text, i)
        if value is not MISSING:
            members[key] = value
        if not complete:
            return members, i, False


def reference_snapshot(prefix: str) -> Any:
    return _reference_value(prefix, 0)[0]


def replay(updates: list[JSONUpdate]) -> Any:
    """Build the document from updates alone, checking them on the way."""
    root: list[Any] = [MISSING]

    def place(path: Path, value: Any) -> None:
        container: Any = root
        key: Any = 0
        for step in path:
            container = container[key]
            key = step
        if isinstance(container, list) and key == len(container):
            container.append(value)
        else:
            container[key] = value

    def get(path: Path) -> Any:
        value: Any = root[0]
        for step in path:
            value = value[step]
        return value

    for update in updates:
        if isinstance(update, JSONValueStarted):
            place(update.path, {"object": {}, "array": [], "string": ""}[update.kind])
        elif isinstance(update, JSONStringDelta):
            assert update.fragment
            place(update.path, get(update.path) + update.fragment)
        else:
            if isinstance(update.value, (dict, list, str)):
                assert same(get(update.path), update.value)
            place(update.path, update.value)
    return root[0]


def normalise(updates: list[JSONUpdate]) -> list[tuple[Any, ...]]:
    """Updates with consecutive string deltas of one path merged."""
    result: list[tuple[Any, ...]] = []
    for update in updates:
        if isinstance(update, JSONStringDelta):
            if result and result[-1][0] == "delta" and result[-1][1] == update.path:
                result[-1] = ("delta", update.path, result[-1][2] + update.fragment)
            else:
                result.append(("delta", update.path, update.fragment))
        elif isinstance(update, JSONValueStarted):
            result.append(("started", update.path, update.kind))
        else:
            result.append(("done", update.path, repr(update.value)))
    return result


# Valid documents.

VALID = [
    pytest.param("null", id="null"),
    pytest.param(" true ", id="true"),
    pytest.param("false", id="false"),
    pytest.param("0", id="zero"),
    pytest.param("-0", id="minus-zero-is-int"),
    pytest.param("-0.0", id="minus-zero-float"),
    pytest.param("1.0", id="float"),
    pytest.param("1e5", id="exponent-is-float"),
    pytest.param("-12.5E-3", id="negative-exponent"),
    pytest.param("1E+400", id="overflow-is-inf"),
    pytest.param("123456789012345678901234567890", id="big-int"),
    pytest.param('""', id="empty-string"),
    pytest.param('"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t"', id="simple-escapes"),
    pytest.param('"\\u00e9\\u00E9"', id="unicode-escape"),
    pytest.param('"\\ud83d\\ude00"', id="surrogate-pair"),
    pytest.param('"\\udbff\\udfff\\ud800\\udc00"', id="surrogate-pair-edges"),
    pytest.param('"\\ud83d"', id="lone-high-surrogate"),
    pytest.param('"\\ude00x"', id="lone-low-surrogate"),
    pytest.param('"\\ud83dx"', id="high-surrogate-then-text"),
    pytest.param('"\\ud83d\\n"', id="high-surrogate-then-escape"),
    pytest.param('"\\ud83d\\u0041"', id="high-surrogate-then-bmp-escape"),
    pytest.param('"\\ud83d\\ud83d\\ude00"', id="high-surrogate-twice"),
    pytest.param('"caf\u00e9 \u2713 \U0001f600 \x7f \u2028"', id="raw-unicode"),
    pytest.param("[]", id="empty-array"),
    pytest.param("{}", id="empty-object"),
    pytest.param('[1, [2, [3, []]], {"a": {}}]', id="nesting"),
    pytest.param('{"a": 1, "b": 2, "a": 3}', id="duplicate-key-last-wins"),
    pytest.param('{"a": {"x": 1}, "a": "s"}', id="duplicate-key-container"),
    pytest.param('{"": ""}', id="empty-key"),
    pytest.param('{"k\\u00e9\\n": [true, false, null]}', id="escaped-key"),
    pytest.param(' \t\n\r{ "a" : [ 1 , 2.5 , "x" ] } \n', id="whitespace-everywhere"),
]


@pytest.mark.parametrize("text", VALID)
def test_valid_documents_match_json_loads(text: str) -> None:
    expected = json.loads(text)
    for pieces in ([text], list(text)):
        parser, _ = feed_all(pieces)
        assert same(parser.close(), expected)
        assert parser.complete
        assert parser.position == len(text)


@pytest.mark.parametrize("text", VALID)
def test_valid_documents_split_at_every_point(text: str) -> None:
    expected = json.loads(text)
    whole = normalise(feed_all([text])[1])
    for cut in range(len(text) + 1):
        parser, updates = feed_all([text[:cut], text[cut:]])
        assert same(parser.close(), expected)
        assert normalise(updates) == whole


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('"\\u00e9"', id="u-escape"),
        pytest.param('"\\ud83d\\ude00"', id="surrogate-pair"),
        pytest.param('"a\\\\b"', id="backslash"),
        pytest.param('"a\\"b"', id="quote"),
        pytest.param('["\\ud83d", "\\ud83d\\u0041\\ud83d\\ude00"]', id="lone-surrogates"),
        pytest.param('["a\\"b", "c\\\\", "\\"", "d"]', id="strings-with-escaped-quotes"),
        pytest.param('{"k\\"": "v\\n", "x": "\\ud83d\\ude00", "\\\\": 1}', id="keys-with-escapes"),
    ],
)
def test_escapes_split_at_every_position(text: str) -> None:
    expected = json.loads(text)
    for first in range(len(text) + 1):
        for second in range(first, len(text) + 1):
            pieces = [text[:first], text[first:second], text[second:]]
            parser, updates = feed_all(pieces)
            assert same(parser.close(), expected)
            assert same(replay(updates), expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("-12.5e+3 ", -12500.0, id="float"),
        pytest.param("[10, -0, 7e2]", [10, 0, 700.0], id="in-array"),
        pytest.param('{"n": 123456789}', {"n": 123456789}, id="in-object"),
    ],
)
def test_numbers_split_across_deltas(text: str, expected: Any) -> None:
    for size in range(1, len(text) + 1):
        pieces = [text[i : i + size] for i in range(0, len(text), size)]
        parser, updates = feed_all(pieces)
        assert same(parser.close(), expected)
        assert same(replay(updates), expected)


def _outcome(pieces: list[str]) -> tuple[str, Any]:
    parser = PartialJSONParser()
    try:
        updates = [update for piece in pieces for update in parser.feed(piece)]
        return "value", (repr(parser.close()), normalise(updates))
    except PartialJSONError as error:
        return "error", (type(error), error.reason, error.position)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"a":0,"b":-0,"c":5,"d":503,"e":-105,"f":100}', id="integers"),
        pytest.param("[0.5,-0.25,10.0625,3.0]", id="fractions"),
        pytest.param("[1e5,2E-3,0e0,-1.5e+2,7.25E10]", id="exponents"),
        pytest.param("[01]", id="leading-zero"),
        pytest.param("[-01]", id="negative-leading-zero"),
        pytest.param("[1.]", id="dot-without-digits"),
        pytest.param("[1.5.2]", id="two-dots"),
        pytest.param("[1e5e]", id="two-exponents"),
        pytest.param("[2.5e+]", id="exponent-sign-only"),
        pytest.param("[12-3]", id="minus-inside"),
        pytest.param("[0.5e3.1]", id="dot-after-exponent"),
    ],
)
def test_numbers_cut_at_every_two_points(text: str) -> None:
    """A number cut anywhere (in each automaton state) parses, or fails, as when whole."""
    whole = _outcome([text])
    for first, second in itertools.combinations_with_replacement(range(len(text) + 1), 2):
        assert _outcome(split_at(text, [first, second])) == whole


def test_top_level_number_completes_at_close() -> None:
    parser = PartialJSONParser()
    assert parser.feed("12") == []
    assert parser.feed("3") == []
    assert parser.snapshot() is MISSING
    assert not parser.complete
    assert same(parser.close(), 123)
    assert parser.complete
    assert same(parser.close(), 123)


# Invalid documents: error type, position and reason, whole and byte by byte.

INVALID = [
    pytest.param("", PartialJSONError, 0, "no JSON value", id="empty"),
    pytest.param("  ", PartialJSONError, 2, "no JSON value", id="only-whitespace"),
    pytest.param("[1,]", PartialJSONError, 3, "trailing comma", id="trailing-comma-array"),
    pytest.param('{"a": 1,}', PartialJSONError, 8, "trailing comma", id="trailing-comma-object"),
    pytest.param("[01]", PartialJSONError, 2, "leading zeros", id="leading-zero"),
    pytest.param("-01", PartialJSONError, 2, "leading zeros", id="negative-leading-zero"),
    pytest.param("[1.]", PartialJSONError, 3, "incomplete number", id="dot-without-digits"),
    pytest.param("[.5]", PartialJSONError, 1, "expected a value", id="dot-first"),
    pytest.param("[1e]", PartialJSONError, 3, "incomplete number", id="exponent-without-digits"),
    pytest.param("[+1]", PartialJSONError, 1, "expected a value", id="plus-sign"),
    pytest.param("[-]", PartialJSONError, 2, "incomplete number", id="lone-minus"),
    pytest.param("[1.5.2]", PartialJSONError, 4, "invalid number", id="two-dots"),
    pytest.param("1-2", PartialJSONError, 1, "invalid number", id="minus-inside"),
    pytest.param("NaN", PartialJSONError, 0, "NaN and Infinity", id="nan"),
    pytest.param("[Infinity]", PartialJSONError, 1, "NaN and Infinity", id="infinity"),
    pytest.param("-Infinity", PartialJSONError, 1, "incomplete number", id="minus-infinity"),
    pytest.param("'a'", PartialJSONError, 0, "double quotes", id="single-quotes"),
    pytest.param("{'a': 1}", PartialJSONError, 1, "double quotes", id="single-quoted-key"),
    pytest.param("{a: 1}", PartialJSONError, 1, "expected a string key", id="bare-key"),
    pytest.param('{"a" 1}', PartialJSONError, 5, "expected ':'", id="missing-colon"),
    pytest.param('{"a": 1 "b": 2}', PartialJSONError, 8, "expected ',' or '}'", id="no-comma"),
    pytest.param("[1 2]", PartialJSONError, 3, "expected ',' or ']'", id="no-comma-array"),
    pytest.param("[1}", PartialJSONError, 2, "expected ',' or ']'", id="wrong-closer"),
    pytest.param('{"a": 1]', PartialJSONError, 7, "expected ',' or '}'", id="wrong-closer-obj"),
    pytest.param("[1] 2", PartialJSONError, 4, "extra data", id="extra-data"),
    pytest.param("{} {}", PartialJSONError, 3, "extra data", id="two-documents"),
    pytest.param("tru", PartialJSONError, 3, "end of input", id="truncated-literal"),
    pytest.param("trUe", PartialJSONError, 2, "expected 'true'", id="wrong-literal"),
    pytest.param("[nul]", PartialJSONError, 4, "expected 'null'", id="short-literal"),
    pytest.param("True", PartialJSONError, 0, "expected a value", id="capital-literal"),
    pytest.param('"abc', PartialJSONError, 4, "unterminated string", id="unterminated"),
    pytest.param('"a\nb"', PartialJSONError, 2, "control character", id="raw-newline"),
    pytest.param('"a\x00"', PartialJSONError, 2, "control character", id="raw-nul"),
    pytest.param('"a\\x"', PartialJSONError, 3, "invalid escape", id="bad-escape"),
    pytest.param('"\\u12g4"', PartialJSONError, 5, "hex digits", id="bad-hex"),
    pytest.param('"\\ud83d\\uzzzz"', PartialJSONError, 9, "hex digits", id="bad-second-hex"),
    pytest.param('"\\ud83d\\q"', PartialJSONError, 8, "invalid escape", id="bad-second-escape"),
    pytest.param('{"a": [1, {"b": ', PartialJSONError, 16, "end of input", id="truncated"),
    pytest.param("[1", PartialJSONError, 2, "end of input", id="truncated-number"),
    pytest.param("1.", PartialJSONError, 2, "incomplete number", id="truncated-top-number"),
    pytest.param('{"a"', PartialJSONError, 4, "end of input", id="truncated-after-key"),
    pytest.param("[" * 257, JSONDepthError, 256, "max_depth", id="depth-257"),
    pytest.param(
        "[" * 100_000, JSONDepthError, 256, "max_depth", id="depth-100000-no-recursion-error"
    ),
    pytest.param('{"a": ' * 300, JSONDepthError, 256 * 6, "max_depth", id="depth-objects"),
]


@pytest.mark.parametrize(("text", "error_type", "position", "reason"), INVALID)
def test_invalid_documents(
    text: str, error_type: type[PartialJSONError], position: int, reason: str
) -> None:
    splits = [[text]] if len(text) > 1000 else [[text], list(text)]
    for pieces in splits:
        parser = PartialJSONParser()
        with pytest.raises(error_type) as caught:
            for piece in pieces:
                parser.feed(piece)
            parser.close()
        error = caught.value
        assert type(error) is error_type
        assert issubclass(error_type, ValueError)
        assert error.position == position
        assert reason in error.reason
        assert f"at position {position}" in str(error)
        assert parser.position == position
        # The parser stays failed with the same error.
        with pytest.raises(error_type):
            parser.feed("1")
        with pytest.raises(error_type):
            parser.close()


def test_error_position_is_where_the_prefix_stops_being_valid() -> None:
    """The position is the first character that no valid document could have there."""
    for param in INVALID:
        text, error_type, position, _ = cast(tuple[str, type, int, str], param.values)
        if error_type is not PartialJSONError or len(text) > 1000:
            continue
        prefix = text[:position]
        parse_partial(prefix)  # still a valid prefix
        if position < len(text):
            with pytest.raises(PartialJSONError):
                parse_partial(text[: position + 1])


def test_error_message_shows_an_excerpt() -> None:
    parser = PartialJSONParser()
    for piece in ['{"path": "a.py", ', '"lines": [1, 2,', " ]}"]:
        try:
            parser.feed(piece)
        except PartialJSONError as error:
            assert error.position == 33
            assert str(error) == (
                "trailing comma before ']' at position 33 "
                '(after \'"path": "a.py", "lines": [1, 2, \', at \']}\')'
            )
            assert error.excerpt == ('"path": "a.py", "lines": [1, 2, ', "]}")
            copy = pickle.loads(pickle.dumps(error))
            assert (type(copy), str(copy), copy.position) == (type(error), str(error), 33)
            return
    pytest.fail("no error")


def test_error_excerpt_includes_fast_path_pieces() -> None:
    parser = PartialJSONParser()
    pieces = ['{"a": "', "hello ", "world ", "again!", "\x01"]
    with pytest.raises(PartialJSONError) as caught:
        for piece in pieces:
            parser.feed(piece)
    assert caught.value.excerpt == ('{"a": "hello world again!', "\x01")
    assert caught.value.position == 25


def test_error_excerpt_includes_escaped_string_pieces() -> None:
    parser = PartialJSONParser()
    pieces = ['{"a": "', "x\\n", 'y\\"', "z\\", "\\\\", "\x01"]
    with pytest.raises(PartialJSONError) as caught:
        for piece in pieces:
            parser.feed(piece)
    assert caught.value.excerpt == ('{"a": "x\\ny\\"z\\\\\\', "\x01")
    assert caught.value.position == 17


def test_depth_limit() -> None:
    ok = "[" * 256 + "]" * 256
    parser, _ = feed_all([ok])
    assert parser.close() == json.loads(ok)
    parser, _ = feed_all(["[[[]]]"], max_depth=3)
    assert parser.close() == [[[]]]
    with pytest.raises(JSONDepthError):
        feed_all(["[[[[]]]]"], max_depth=3)


@pytest.mark.parametrize(
    ("pieces", "position", "valid_prefix"),
    [
        pytest.param(['"abcdefghij"'], 10, True, id="one-piece"),
        pytest.param(['"abcde', "fghij", '"'], 10, True, id="string-fast-path"),
        pytest.param(["[1, 2, 3, 4, 5, 6, 7, 8]"], 10, True, id="structure"),
        pytest.param(["[1, }", "x" * 20], 4, False, id="syntax-error-before-limit"),
    ],
)
def test_size_limit(pieces: list[str], position: int, valid_prefix: bool) -> None:
    parser = PartialJSONParser(max_size=10)
    expected_type = JSONSizeError if valid_prefix else PartialJSONError
    with pytest.raises(PartialJSONError) as caught:
        for piece in pieces:
            parser.feed(piece)
    assert type(caught.value) is expected_type
    assert caught.value.position == position
    assert parser.position == position


def test_size_limit_counts_characters_exactly() -> None:
    parser = PartialJSONParser(max_size=10)
    parser.feed('"abcdefgh"')
    assert parser.close() == "abcdefgh"


def test_feed_after_close_is_an_error() -> None:
    parser = PartialJSONParser()
    parser.feed("[]")
    assert parser.close() == []
    with pytest.raises(PartialJSONError, match="after close"):
        parser.feed(" ")


def test_integer_with_too_many_digits_is_a_typed_error() -> None:
    digits = "1" * 5000
    with pytest.raises(ValueError):
        json.loads(digits + " ")
    for pieces in ([f"[{digits}]"], ["[", digits, "]"]):
        parser = PartialJSONParser()
        with pytest.raises(PartialJSONError, match="more digits") as caught:
            for piece in pieces:
                parser.feed(piece)
        assert caught.value.position == 1


# Updates.


def test_updates_of_a_small_document() -> None:
    text = '{"a": [1, "x\\u00e9"], "b": {"c": null}, "d": ""}'
    parser, updates = feed_all([text])
    full = {"a": [1, "xé"], "b": {"c": None}, "d": ""}
    assert updates == [
        JSONValueStarted((), "object"),
        JSONValueStarted(("a",), "array"),
        JSONValueDone(("a", 0), 1),
        JSONValueStarted(("a", 1), "string"),
        JSONStringDelta(("a", 1), "xé"),
        JSONValueDone(("a", 1), "xé"),
        JSONValueDone(("a",), [1, "xé"]),
        JSONValueStarted(("b",), "object"),
        JSONValueDone(("b", "c"), None),
        JSONValueDone(("b",), {"c": None}),
        JSONValueStarted(("d",), "string"),
        JSONValueDone(("d",), ""),
        JSONValueDone((), full),
    ]
    assert parser.close() == full


def test_updates_of_a_string_in_pieces() -> None:
    parser = PartialJSONParser()
    assert parser.feed('{"content": "ab') == [
        JSONValueStarted((), "object"),
        JSONValueStarted(("content",), "string"),
        JSONStringDelta(("content",), "ab"),
    ]
    assert parser.feed("cd\\") == [JSONStringDelta(("content",), "cd")]
    assert parser.feed("n\\ud83d") == [JSONStringDelta(("content",), "\n")]
    assert parser.feed("\\ude00") == [JSONStringDelta(("content",), "\U0001f600")]
    assert parser.feed("") == []
    assert parser.feed('"}') == [
        JSONValueDone(("content",), "abcd\n\U0001f600"),
        JSONValueDone((), {"content": "abcd\n\U0001f600"}),
    ]


# Pieces cut inside escapes: the fragment of the one JSONStringDelta each
# feed() reports (None: no delta), then the value.
CUT_ESCAPES = [
    pytest.param(['"a\\', 'nb"'], ["a", "\nb"], id="after-backslash"),
    pytest.param(
        ['"x', "a\\", '"b', "\\\\", 'c"'], ["x", "a", '"b', "\\", "c"], id="quote-and-backslash"
    ),
    pytest.param(['"a\\\\\\', 'nb"'], ["a\\", "\nb"], id="odd-backslash-run"),
    pytest.param(['"a\\\\', 'nb"'], ["a\\", "nb"], id="even-backslash-run"),
    pytest.param(['"', "\\", "\\", '"'], [None, None, "\\", None], id="only-a-backslash"),
    pytest.param(['"a\\u0', "0e9", 'b"'], ["a", "\u00e9", "b"], id="u-escape-split"),
    pytest.param(['"\\u00', 'E9"'], [None, "\u00e9"], id="u-escape-upper-hex"),
    pytest.param(['"\\ud83d', '\\ude00"'], [None, "\U0001f600"], id="pair-between-escapes"),
    pytest.param(['"\\ud83d\\ud', 'e00x"'], [None, "\U0001f600x"], id="pair-inside-second"),
    pytest.param(['"a\\uD83D', "\\", 'uDE00"'], ["a", None, "\U0001f600"], id="pair-cut-twice"),
    pytest.param(['"\\ud83d', 'x"'], [None, "\ud83dx"], id="lone-high-then-text"),
    pytest.param(['"\\ud83d\\', 'n"'], [None, "\ud83d\n"], id="lone-high-then-escape"),
    pytest.param(['"\\ud83d', '"'], [None, "\ud83d"], id="lone-high-at-the-end"),
    pytest.param(['"\\ude00', 'x"'], ["\ude00", "x"], id="lone-low"),
    pytest.param(['"\ud83d', "x\\", 'n"'], ["\ud83d", "x", "\n"], id="raw-high-surrogate"),
]


@pytest.mark.parametrize(("pieces", "fragments"), CUT_ESCAPES)
def test_string_pieces_cut_inside_escapes(pieces: list[str], fragments: list[str | None]) -> None:
    value = json.loads("".join(pieces))
    assert "".join(fragment or "" for fragment in fragments) == value
    parser = PartialJSONParser()
    for k, (piece, fragment) in enumerate(zip(pieces, fragments, strict=True)):
        expected: list[JSONUpdate] = [JSONValueStarted((), "string")] if k == 0 else []
        if fragment is not None:
            expected.append(JSONStringDelta((), fragment))
        if k == len(pieces) - 1:
            expected.append(JSONValueDone((), value))
        assert parser.feed(piece) == expected, piece
    assert same(parser.close(), value)


# Errors found in pieces that the string fast path decodes, or cut inside an
# escape: the same position, reason and excerpt as the whole text.
CUT_ERRORS = [
    pytest.param(['"ab\\', 'x"'], 4, "invalid escape", id="bad-escape-after-cut"),
    pytest.param(['"ab\\u0', '0g0"'], 7, "hex digits", id="bad-hex-after-cut"),
    pytest.param(['"a\\nb\\', "q"], 6, "invalid escape", id="bad-escape-at-piece-start"),
    pytest.param(['"\\ud83d', "\\uzz"], 9, "hex digits", id="bad-second-hex-after-cut"),
    pytest.param(['"x', 'a\\nb\\"c\x01"'], 9, "control character", id="control-after-escapes"),
    pytest.param(['"x', 'a\\nb\\z"'], 7, "invalid escape", id="bad-escape-after-escapes"),
    pytest.param(['{"a": "x\\', 'n", "b":\x01'], 17, "expected a value", id="after-string-closes"),
]


@pytest.mark.parametrize(("pieces", "position", "reason"), CUT_ERRORS)
def test_errors_in_string_pieces(pieces: list[str], position: int, reason: str) -> None:
    text = "".join(pieces)
    whole = PartialJSONParser()
    with pytest.raises(PartialJSONError) as expected:
        whole.feed(text)
    parser = PartialJSONParser()
    with pytest.raises(PartialJSONError) as caught:
        for piece in pieces:
            parser.feed(piece)
    assert (caught.value.position, caught.value.reason) == (position, expected.value.reason)
    assert reason in caught.value.reason
    assert str(caught.value) == str(expected.value)
    assert caught.value.excerpt == expected.value.excerpt
    assert same(parser.snapshot(), whole.snapshot())
    with pytest.raises(PartialJSONError) as again:
        parser.feed('"')
    assert again.value is caught.value


def test_updates_off() -> None:
    parser = PartialJSONParser(updates=False)
    assert parser.feed('{"a": ["x", ') == []
    assert parser.feed("1") == []
    assert parser.snapshot() == {"a": ["x"]}
    assert parser.feed("]}") == []
    assert parser.close() == {"a": ["x", 1]}


def test_updates_serialise_as_tagged_json() -> None:
    updates: list[JSONUpdate] = [
        JSONValueStarted(("a", 0), "string"),
        JSONStringDelta(("a", 0), "x"),
        JSONValueDone(("a",), ["x"]),
    ]
    encoded = msgspec.json.encode(updates)
    assert json.loads(encoded)[0] == {"type": "json.started", "path": ["a", 0], "kind": "string"}
    assert msgspec.json.decode(encoded, type=list[JSONUpdate]) == updates


# Snapshots.

SNAPSHOTS = [
    pytest.param("", MISSING, id="nothing"),
    pytest.param("  ", MISSING, id="whitespace"),
    pytest.param("12", MISSING, id="number-not-complete"),
    pytest.param("12 ", 12, id="number-complete"),
    pytest.param("tr", MISSING, id="literal-not-complete"),
    pytest.param('"ab', "ab", id="string"),
    pytest.param('"ab\\', "ab", id="lone-backslash-left-out"),
    pytest.param('"ab\\u00', "ab", id="partial-u-escape-left-out"),
    pytest.param('"ab\\ud83d', "ab", id="high-surrogate-waits"),
    pytest.param('"ab\\ud83d\\ud', "ab", id="high-surrogate-waits-for-next-escape"),
    pytest.param('"ab\\ud83dx', "ab\ud83dx", id="lone-high-surrogate-kept"),
    pytest.param('"ab\\ud83d\\n', "ab\ud83d\n", id="lone-high-surrogate-then-escape"),
    pytest.param('"ab\\ud83d\\ude00', "ab\U0001f600", id="pair-complete"),
    pytest.param("[", [], id="array-open"),
    pytest.param('{"', {}, id="key-incomplete"),
    pytest.param('{"a"', {}, id="key-without-colon"),
    pytest.param('{"a": ', {}, id="value-not-started"),
    pytest.param('{"a": 1', {}, id="number-value-incomplete"),
    pytest.param('{"a": 1,', {"a": 1}, id="number-value-complete"),
    pytest.param('{"a": "', {"a": ""}, id="string-value-started"),
    pytest.param('{"a": [', {"a": []}, id="array-value-started"),
    pytest.param('{"a": [1, {"b": "c', {"a": [1, {"b": "c"}]}, id="nested"),
    pytest.param('{"a": 1, "a": 2', {"a": 1}, id="duplicate-earlier-value-shows"),
    pytest.param('{"a": 1, "a": "', {"a": ""}, id="duplicate-later-value-started"),
    pytest.param("[true, fals", [True], id="literal-in-array"),
    pytest.param("[1, 2]", [1, 2], id="complete"),
]


@pytest.mark.parametrize(("text", "expected"), SNAPSHOTS)
def test_snapshot(text: str, expected: Any) -> None:
    assert same(parse_partial(text), expected)
    assert same(reference_snapshot(text), expected)
    parser, _ = feed_all(list(text))
    assert same(parser.snapshot(), expected)


def test_snapshots_do_not_change_with_later_input() -> None:
    text = '{"a": [1, {"b": "xyz"}, "uvw"], "c": "end"}'
    parser = PartialJSONParser()
    taken = []
    for k, character in enumerate(text):
        parser.feed(character)
        taken.append((k + 1, parser.snapshot()))
    for length, snapshot in taken:
        assert same(snapshot, reference_snapshot(text[:length]))
    assert parser.snapshot() == parser.close() == json.loads(text)


def test_snapshot_between_string_pieces_keeps_deltas_right() -> None:
    parser = PartialJSONParser()
    updates = parser.feed('["ab')
    assert parser.snapshot() == ["ab"]
    updates += parser.feed("cd")
    updates += parser.feed("e\\n")
    assert parser.snapshot() == ["abcde\n"]
    updates += parser.feed('f"]')
    assert same(replay(updates), ["abcde\nf"])


def test_snapshot_after_error_shows_what_was_parsed() -> None:
    parser = PartialJSONParser()
    with pytest.raises(PartialJSONError):
        parser.feed('{"a": "x", "b": [1, 2}')
    assert parser.snapshot() == {"a": "x", "b": [1, 2]}


def test_parse_partial_raises_on_invalid_prefix() -> None:
    with pytest.raises(PartialJSONError):
        parse_partial('{"a": 1,}')


# Properties over random documents.

_characters = st.characters(exclude_categories=())  # surrogates and control characters too
_text = st.one_of(
    st.text(_characters, max_size=12),
    st.text(
        st.sampled_from('"\\/\b\f\n\r\t\x00\x1f a\u00e9\u2028\U0001f600\ud83d\ude00'), max_size=12
    ),
)
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(_text, children, max_size=5),
    max_leaves=20,
)


@st.composite
def _documents(draw: st.DrawFn) -> str:
    value = draw(_json_values)
    indent = draw(st.sampled_from([None, 0, 1, 2, "\t", " \r\n"]))
    separators = draw(st.sampled_from([None, (",", ":"), (" , ", " : ")]))
    text = json.dumps(value, ensure_ascii=draw(st.booleans()), indent=indent, separators=separators)
    return draw(st.sampled_from(["", " ", "\n"])) + text + draw(st.sampled_from(["", " \n"]))


_settings = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(text=_documents(), cuts=st.lists(st.integers(min_value=0), max_size=30))
def test_close_equals_json_loads(text: str, cuts: list[int]) -> None:
    expected = json.loads(text)
    for options in ({}, {"updates": False}):
        parser, _ = feed_all(split_at(text, cuts), **options)
        assert same(parser.close(), expected)


@_settings
@given(text=_documents(), cuts=st.lists(st.integers(min_value=0), max_size=30))
def test_replaying_updates_rebuilds_the_document(text: str, cuts: list[int]) -> None:
    expected = json.loads(text)
    parser, updates = feed_all(split_at(text, cuts))
    rebuilt = replay(updates)
    if parser.complete:
        assert same(rebuilt, expected)
    else:  # a bare top-level number is only done at close()
        assert rebuilt is MISSING
        assert isinstance(expected, (int, float)) and not isinstance(expected, bool)
    assert same(parser.close(), expected)


@_settings
@given(text=_documents())
def test_every_prefix_snapshot_follows_the_semantics(text: str) -> None:
    parser = PartialJSONParser()
    taken = []
    for k, character in enumerate(text):
        parser.feed(character)
        taken.append(parser.snapshot())
        assert same(parse_partial(text[: k + 1]), taken[-1])
    # Checked after the whole text was fed: snapshots must not change later.
    for k, snapshot in enumerate(taken):
        assert same(snapshot, reference_snapshot(text[: k + 1]))


@_settings
@given(text=_documents(), cuts=st.lists(st.integers(min_value=0), max_size=30))
def test_updates_do_not_depend_on_how_the_text_is_split(text: str, cuts: list[int]) -> None:
    whole = normalise(feed_all([text])[1])
    assert normalise(feed_all(split_at(text, cuts))[1]) == whole
    assert normalise(feed_all(list(text))[1]) == whole
