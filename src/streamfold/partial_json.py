"""Linear-time incremental JSON parser for streamed tool-call arguments.

Providers stream a tool call's arguments as JSON text cut into small pieces
(often about six characters each). Re-parsing the whole buffer on every piece
costs time quadratic in the length of the arguments; :class:`PartialJSONParser`
looks at each character once, keeps the value it is building on an explicit
stack (no recursion, so nesting depth can never raise ``RecursionError``), and
reports what each piece changed::

    parser = PartialJSONParser()
    for piece in pieces:
        for update in parser.feed(piece):
            ...  # JSONValueStarted, JSONStringDelta, JSONValueDone
        parser.snapshot()  # the partial value so far, on demand
    arguments = parser.close()  # == json.loads("".join(pieces))

The parser is sans-IO: it is fed ``str`` and returns updates; decoding bytes is
the caller's business.

Final value:
    ``close()`` returns exactly what ``json.loads`` returns for the whole text:
    ``int`` for numbers without fraction or exponent (``-0`` is ``0``, big
    integers are exact), ``float`` otherwise; the last of duplicate keys wins
    and keeps the first key's place; lone surrogate escapes such as
    ``"\\ud83d"`` become the lone surrogate character. The parser is strict
    where ``json.loads`` is lenient by default: the literals ``NaN``,
    ``Infinity`` and ``-Infinity`` are rejected.

Updates (``feed()`` returns them in document order; ``path`` is the tuple of
object keys and array indexes from the top-level value down):
    - :class:`JSONValueStarted` when an object, array or string value begins.
      For an array item the path ends with the new item's index, which is how
      a new array item is reported. Object keys are not values and are never
      reported on their own.
    - :class:`JSONStringDelta` when a string value grew: ``fragment`` is decoded
      text (escapes resolved), never empty, at most one per string per
      ``feed()``. The fragments of a string concatenate to its final value
      however the text was split.
    - :class:`JSONValueDone` when a value is complete: a scalar (string,
      number, ``true``, ``false``, ``null``) or a closed container, with its
      value. For an object member this reports a key with a complete value.
      A container's value is the very object that ends up in the final
      result: treat it as read-only.

    A number is complete only when the character after it arrives (or at
    ``close()``); a document that is a bare number with nothing after it
    therefore gets no :class:`JSONValueDone`, and ``close()`` returns it.

Snapshot semantics (``snapshot()``; ``parse_partial()`` is the same for one
prefix):
    - Before any value has started, the snapshot is :data:`MISSING` (not
      ``None``, which is what ``null`` parses to).
    - Containers appear as soon as they are opened (``{`` gives ``{}``).
    - Strings appear as soon as they are opened and hold the text received so
      far, decoded. An escape sequence is left out until complete (a lone
      backslash, ``\\u12``). A ``\\uD800``-``\\uDBFF`` escape is left out while
      it may still be the first half of a surrogate pair: it joins the next
      escape if that is a low surrogate, and is kept as the lone surrogate
      character (as ``json.loads`` does) as soon as anything else follows.
    - Numbers and ``true``/``false``/``null`` appear only when complete; a
      number is complete when a character that cannot continue it arrives
      (whitespace, ``,``, ``]``, ``}``), or at ``close()``.
    - An object member appears once its value has started (by the rules
      above): a key whose string is incomplete, or whose value has not started
      or is an incomplete number or literal, is left out. With duplicate keys
      the earlier value shows until the later one appears.
    - Snapshots are independent of later input: open containers are copied on
      each call (cost proportional to their sizes, paid only on demand), while
      completed values inside them are shared with the parser's result and
      must not be mutated.

Limits:
    ``max_depth`` bounds how many containers may be open at once (the
    default, 256, allows ``[`` nested 256 deep); ``max_size`` bounds the
    characters (not bytes) fed in total. Memory is the value being built plus
    a few small buffers.

Cost:
    ``feed()`` is linear in the piece. String content is decoded a run at a
    time by ``json``'s C string decoder (escapes included; only a piece with
    an error, an unfinished ``\\u`` escape or a possible half of a surrogate
    pair at its end goes one token at a time), and a piece that goes on with
    a string takes a short path of its own; whitespace and numbers are
    consumed in runs by compiled regular expressions. ``close()`` costs
    nothing more; ``snapshot()`` copies the open containers and joins the
    string being received, on demand only.

Errors:
    Every error is a :class:`PartialJSONError` (a ``StreamfoldError`` and a
    ``ValueError``, defined in ``streamfold.errors``) with a
    ``reason`` and a ``position``: the offset of the first character at which
    the text fed so far stopped being a prefix of any valid JSON document;
    the length of the text when ``close()`` finds it ended too early;
    ``max_size`` for :class:`JSONSizeError`; the first digit for an integer
    too long for ``int()`` (which ``json.loads`` rejects too). An error is
    raised by the ``feed()`` that makes it detectable. After an error the
    parser is failed: ``feed()`` and ``close()`` raise the same error again,
    and ``snapshot()`` still shows what was parsed before it::

        StreamfoldError, ValueError
        └── PartialJSONError      invalid JSON, or input ended too early
            ├── JSONDepthError    more than max_depth nested containers
            └── JSONSizeError     more than max_size characters fed
"""

from __future__ import annotations

import enum
import re
from collections import deque
from collections.abc import Callable
from typing import Any, Final, TypeAlias

import msgspec

from .errors import PartialJSONError

try:  # json's string decoder, in C
    from _json import scanstring as _scanstring
except ImportError:  # pragma: no cover - an interpreter without CPython's _json
    import json.decoder

    _scanstring = json.decoder.py_scanstring  # type: ignore[attr-defined]

scanstring: Final[Callable[[str, int], tuple[str, int]]] = _scanstring

__all__ = [
    "MISSING",
    "JSONDepthError",
    "JSONSizeError",
    "JSONStringDelta",
    "JSONUpdate",
    "JSONValueDone",
    "JSONValueStarted",
    "MissingType",
    "PartialJSONError",
    "PartialJSONParser",
    "Path",
    "parse_partial",
]

Path: TypeAlias = tuple[str | int, ...]
"""Object keys and array indexes from the top-level value down; ``()`` is the top."""


class MissingType(enum.Enum):
    """Type of :data:`MISSING`."""

    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = MissingType.MISSING
"""What ``snapshot()`` returns before any value has started."""


# gc=False: an update is built per piece, and holds only a path and a JSON
# value (which never refers back to it), so it cannot be part of a cycle; not
# tracking it makes it cheaper to build and keeps the collector from running
# as often.
class _Update(msgspec.Struct, frozen=True, tag_field="type", gc=False):
    @property
    def type(self) -> str:
        """The update's tag, e.g. ``"json.string.delta"`` (its ``type`` key in JSON)."""
        return str(self.__struct_config__.tag)


class JSONValueStarted(_Update, frozen=True, tag="json.started"):
    """An object, array or string value began at ``path``.

    Attributes:
        path: Where the value is; for an array item, ends with its index.
        kind: ``"object"``, ``"array"`` or ``"string"``.
    """

    path: Path
    kind: str


class JSONStringDelta(_Update, frozen=True, tag="json.string.delta"):
    """The string value at ``path`` grew by ``fragment`` (decoded, never empty)."""

    path: Path
    fragment: str


class JSONValueDone(_Update, frozen=True, tag="json.done"):
    """The value at ``path`` is complete.

    Attributes:
        path: Where the value is.
        value: The complete value; containers are shared with the final result.
    """

    path: Path
    value: Any


JSONUpdate: TypeAlias = JSONValueStarted | JSONStringDelta | JSONValueDone
"""Any update returned by :meth:`PartialJSONParser.feed`."""


class JSONDepthError(PartialJSONError):
    """More containers are open at once than ``max_depth`` allows."""


class JSONSizeError(PartialJSONError):
    """More characters were fed than ``max_size`` allows."""


class _State(enum.Enum):
    """What the parser expects next."""

    # Members hash by identity: Enum's own __hash__ is Python code, too slow
    # for the per-token table lookup.
    __hash__ = object.__hash__

    TOP = "a value"
    MEMBER_VALUE = "a value after ':'"
    FIRST_ITEM = "a value or ']' after '['"
    ITEM = "a value after ','"
    FIRST_KEY = "a string key or '}' after '{'"
    KEY = "a string key after ','"
    COLON = "':' after a key"
    AFTER_ITEM = "',' or ']' after an array item"
    AFTER_MEMBER = "',' or '}' after an object member"
    END = "nothing but whitespace after the value"
    STRING = "the rest of a string"
    NUMBER = "the rest of a number"
    LITERAL = "the rest of true, false or null"


# Looking a member up on an Enum class costs several times a global lookup, and
# these are looked up for every token.
(
    _TOP,
    _MEMBER_VALUE,
    _FIRST_ITEM,
    _ITEM,
    _FIRST_KEY,
    _KEY,
    _COLON,
    _AFTER_ITEM,
    _AFTER_MEMBER,
    _END,
    _STRING,
    _NUMBER,
    _LITERAL,
) = _State


class _Action(enum.Enum):
    """What a structural character does in a state that accepts it."""

    OPEN_OBJECT = enum.auto()
    OPEN_ARRAY = enum.auto()
    OPEN_STRING = enum.auto()
    OPEN_KEY = enum.auto()
    START_NUMBER = enum.auto()
    START_LITERAL = enum.auto()
    ITEM_COMMA = enum.auto()
    MEMBER_COMMA = enum.auto()
    COLON = enum.auto()
    CLOSE = enum.auto()


(
    _OPEN_OBJECT,
    _OPEN_ARRAY,
    _OPEN_STRING,
    _OPEN_KEY,
    _START_NUMBER,
    _START_LITERAL,
    _ITEM_COMMA,
    _MEMBER_COMMA,
    _COLON_ACTION,
    _CLOSE,
) = _Action

_VALUE_STARTS: Final = {
    "{": _OPEN_OBJECT,
    "[": _OPEN_ARRAY,
    '"': _OPEN_STRING,
    "-": _START_NUMBER,
    **dict.fromkeys("0123456789", _START_NUMBER),
    **dict.fromkeys("tfn", _START_LITERAL),
}

# The transition table for structural characters. Whitespace is skipped in
# every state with actions; any other character is an error. STRING, NUMBER
# and LITERAL have none: they consume their tokens with their own scanners.
# (Every state is a key, so that _consume subscripts: dict.get is a call;
# nested_arguments: 270M -> 267M.)
_ACTIONS: Final[dict[_State, dict[str, _Action] | None]] = {
    _TOP: _VALUE_STARTS,
    _MEMBER_VALUE: _VALUE_STARTS,
    _ITEM: _VALUE_STARTS,
    _FIRST_ITEM: {**_VALUE_STARTS, "]": _CLOSE},
    _FIRST_KEY: {'"': _OPEN_KEY, "}": _CLOSE},
    _KEY: {'"': _OPEN_KEY},
    _COLON: {":": _COLON_ACTION},
    _AFTER_ITEM: {",": _ITEM_COMMA, "]": _CLOSE},
    _AFTER_MEMBER: {",": _MEMBER_COMMA, "}": _CLOSE},
    _END: {},
    _STRING: None,
    _NUMBER: None,
    _LITERAL: None,
}

_LITERALS: Final[dict[str, tuple[str, Any]]] = {
    "t": ("true", True),
    "f": ("false", False),
    "n": ("null", None),
}

_WHITESPACE: Final = " \t\n\r"
_NON_WHITESPACE: Final = re.compile(r"[^ \t\n\r]")
# String content up to the next quote, backslash or (invalid) control character.
_STRING_RUN: Final = re.compile(r'[^"\\\x00-\x1f]+')
_UNICODE_ESCAPE: Final = re.compile(r"\\u([0-9a-fA-F]{4})")
_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")
_SIMPLE_ESCAPES: Final = {
    '"': '"',
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}

# A whole number; groups 1 and 2 (fraction, exponent) make it a float.
_WHOLE_NUMBER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_NUMBER_CHARACTERS: Final = frozenset("0123456789-+.eE")


def _number_automaton() -> list[dict[str, int]]:
    """Build the automaton that checks a number split across pieces, one character at a time.

    States: 0 start, 1 after '-', 2 after a leading '0', 3 in integer digits,
    4 after '.', 5 in fraction digits, 6 after 'e', 7 after the exponent sign,
    8 in exponent digits.
    """
    digits = "0123456789"
    nonzero = "123456789"
    return [
        {"-": 1, "0": 2, **dict.fromkeys(nonzero, 3)},
        {"0": 2, **dict.fromkeys(nonzero, 3)},
        {".": 4, "e": 6, "E": 6},
        {**dict.fromkeys(digits, 3), ".": 4, "e": 6, "E": 6},
        dict.fromkeys(digits, 5),
        {**dict.fromkeys(digits, 5), "e": 6, "E": 6},
        {"-": 7, "+": 7, **dict.fromkeys(digits, 8)},
        dict.fromkeys(digits, 8),
        dict.fromkeys(digits, 8),
    ]


_NUMBER_AUTOMATON: Final = _number_automaton()
_NUMBER_COMPLETE: Final = frozenset({2, 3, 5, 8})
_NUMBER_INTEGER: Final = frozenset({2, 3})
# What may follow a complete number in each of the automaton's complete states,
# for a number cut across pieces; groups 1 and 2 (if any) make it a float.
_NUMBER_CONTINUATIONS: Final = {
    2: re.compile(r"(\.[0-9]+)?([eE][-+]?[0-9]+)?"),
    3: re.compile(r"[0-9]*(\.[0-9]+)?([eE][-+]?[0-9]+)?"),
    5: re.compile(r"[0-9]*([eE][-+]?[0-9]+)?"),
    8: re.compile(r"[0-9]*"),
}

_EXCERPT_BEFORE: Final = 32
_EXCERPT_AFTER: Final = 16


def _unexpected_reason(state: _State, character: str) -> str:
    """Say why ``character`` cannot come next in ``state``."""
    got = f", got {character!r}"
    if state is _ITEM and character == "]":
        return "trailing comma before ']'"
    if state is _KEY and character == "}":
        return "trailing comma before '}'"
    if character in "NI" and state in (_TOP, _MEMBER_VALUE, _ITEM, _FIRST_ITEM):
        return "NaN and Infinity are not valid JSON" + got
    if character == "'" and state in (_TOP, _MEMBER_VALUE, _ITEM, _FIRST_ITEM, _FIRST_KEY, _KEY):
        return "strings need double quotes" + got
    if state is _END:
        return "extra data after the top-level value" + got
    return f"expected {state.value}{got}"


def _decode_string(raw: str) -> tuple[str, int, bool] | None:
    """Decode string content (after the opening quote) at C speed.

    Args:
        raw: The escape left pending by the previous piece, then the piece.

    Returns:
        The decoded text, where it stopped in ``raw`` and whether at the
        closing quote (then just after it). Otherwise it stopped at the end,
        or before a final backslash that begins an escape the piece cut (an
        odd run of backslashes), which is then pending. None when the careful
        path must decide: an invalid character or escape (to report it where
        it is), an unfinished ``\\u`` escape at the end, or a high surrogate
        at the end, which may pair with the next piece's escape.
    """
    size = len(raw)
    cut = raw[-1] == "\\" and (size - len(raw.rstrip("\\"))) & 1
    try:
        decoded, end = scanstring(raw[:-1] + '"' if cut else raw + '"', 0)
    except ValueError:  # json.JSONDecodeError
        return None
    if end <= size - cut:
        return decoded, end, True
    if "\ud800" <= decoded[-1:] <= "\udbff":
        return None
    return decoded, size - cut, False


def _is_high_surrogate(code_point: int) -> bool:
    return 0xD800 <= code_point <= 0xDBFF


class _Frame:
    """An open container, where it is, and (for objects) the current member's key."""

    __slots__ = ("container", "key", "path")

    def __init__(self, container: list[Any] | dict[str, Any], path: Path) -> None:
        self.container = container
        self.path = path
        self.key = ""


class PartialJSONParser:
    """Parse one JSON document fed in pieces, in time linear in its length.

    See the module docstring for the updates, the snapshot semantics and the
    errors.

    Args:
        max_depth: Most containers that may be open at once.
        max_size: Most characters that may be fed in total.
        updates: Whether ``feed()`` builds updates; without them it does only
            what ``close()`` and ``snapshot()`` need.
    """

    __slots__ = (
        "_closed",
        "_failure",
        "_fragments",
        "_in_key",
        "_limit",
        "_literal",
        "_literal_matched",
        "_max_depth",
        "_max_size",
        "_number_parts",
        "_number_start",
        "_number_state",
        "_offset",
        "_out",
        "_pending",
        "_recent",
        "_reported",
        "_result",
        "_stack",
        "_state",
        "_string_path",
        "_updates",
    )

    def __init__(
        self, *, max_depth: int = 256, max_size: int = 64 * 1024 * 1024, updates: bool = True
    ) -> None:
        self._max_depth = max_depth
        self._max_size = max_size
        # What feed()'s fast paths check the size against: max_size, or -1 once
        # the parser failed or closed, which sends every later piece to the
        # checks.
        self._limit = max_size
        self._updates = updates
        self._state = _TOP
        self._stack: list[_Frame] = []
        self._result: Any = MISSING
        self._out: list[JSONUpdate] = []
        self._failure: PartialJSONError | None = None
        self._closed = False
        # Characters consumed before the piece being parsed, and the last
        # pieces before it, raw (for error excerpts: each piece is at least one
        # character, so these hold the _EXCERPT_BEFORE characters it shows).
        self._offset = 0
        self._recent: deque[str] = deque(maxlen=_EXCERPT_BEFORE)
        # The string being parsed: decoded fragments, how many were reported
        # (all of them between two feed() calls), the raw text of escapes not
        # decoded yet: an unfinished escape ("\\", "\\u", "\\u12"), or a high
        # surrogate escape that may pair with the next one ("\\ud83d"), maybe
        # followed by an unfinished one; and its path, None when it is a key
        # or updates are off (nothing to report).
        self._in_key = False
        self._fragments: list[str] = []
        self._reported = 0
        self._pending = ""
        self._string_path: Path | None = None
        # The number or literal being parsed.
        self._number_parts: list[str] = []
        self._number_state = 0
        self._number_start = 0
        self._literal = ""
        self._literal_matched = 0

    @property
    def complete(self) -> bool:
        """Whether a whole top-level value has been parsed."""
        return self._state is _END

    @property
    def position(self) -> int:
        """Characters consumed so far (after an error: the error's position)."""
        return self._offset

    def feed(self, text: str) -> list[JSONUpdate]:
        """Parse the next piece of the document.

        Args:
            text: The characters that follow everything fed so far.

        Returns:
            The updates this piece caused, in document order (always empty
            when the parser was made with ``updates=False``).

        Raises:
            PartialJSONError: The text so far is not a prefix of valid JSON,
                or ``close()`` was called already.
            JSONDepthError: More than ``max_depth`` containers are open.
            JSONSizeError: More than ``max_size`` characters were fed.
        """
        offset = self._offset + len(text)
        if self._state is _STRING and offset <= self._limit and text:
            # The hot paths: a piece that goes on with a string. The shortest
            # one takes a piece that is only more text: the test only filters,
            # what it turns away (a quote, a backslash, a character that does
            # not print) is decoded as a string below.
            fragments = self._fragments
            if not self._pending and '"' not in text and "\\" not in text and text.isprintable():
                fragments.append(text)
                self._offset = offset
                self._recent.append(text)
                path = self._string_path
                if path is not None:
                    return [JSONStringDelta(path, text)]
                return []
            # A piece with escapes or quotes: _decode_string, inlined (this
            # is a third of the pieces of code in JSON; the call costs 12% of
            # the parser's time on a 100 KB code edit), then the general way
            # for the rest of the piece once the string ends, or for all of it
            # when the careful path must decide.
            pending = self._pending
            raw = pending + text if pending else text
            size = len(raw)
            cut = raw[-1] == "\\" and (size - len(raw.rstrip("\\"))) & 1
            try:
                fragment, end = scanstring(raw[:-1] + '"' if cut else raw + '"', 0)
            except ValueError:
                end = -1
            if end > size - cut:
                if fragment[-1:] < "\ud800" or fragment[-1:] > "\udbff":
                    self._pending = "\\" if cut else ""
                    self._offset = offset
                    self._recent.append(text)
                    if fragment:
                        fragments.append(fragment)
                        path = self._string_path
                        if path is not None:
                            return [JSONStringDelta(path, fragment)]
                    return []
            elif end > 0:
                self._out = []
                self._reported = len(fragments)
                if fragment:
                    fragments.append(fragment)
                self._pending = ""
                end -= len(pending)  # where the string ended in the piece
                if self._in_key:
                    # _end_string for a key, inlined, and the colon if it
                    # follows at once (nested_arguments: 294M -> 292M, 278M -> 274M).
                    self._stack[-1].key = "".join(fragments)
                    if end < len(text) and text[end] == ":":
                        self._state = _MEMBER_VALUE
                        end += 1
                    else:
                        self._state = _COLON
                else:
                    self._end_string()
                return self._consume(text, end)
        elif offset <= self._limit:
            # The usual piece: within max_size, the parser neither failed nor
            # closed (either sets the limit to -1), so none of the checks
            # below apply (nested_arguments: 285M -> 284M).
            self._out = []
            return self._consume(text, 0)
        if self._failure is not None:
            raise self._failure
        if self._closed:
            raise PartialJSONError("feed() after close()", self._offset)
        if offset > self._max_size:
            limit = self._max_size - self._offset
            self._out = []
            self._consume(text[:limit], 0)
            reason = f"more than max_size={self._max_size} characters"
            raise self._fail(JSONSizeError, reason, text[limit:], 0)
        self._out = []
        return self._consume(text, 0)

    def snapshot(self) -> Any:
        """Build the value parsed so far, following the snapshot semantics.

        Returns:
            The partial value, independent of later input, or :data:`MISSING`
            if no value has started.
        """
        state = self._state
        leaf: Any = MISSING
        if state is _STRING and not self._in_key:
            fragments = self._fragments
            if len(fragments) > 1:
                # Keep the joined text, so the list stays short however many
                # snapshots, and extend it: once the last snapshot that shared
                # it is gone, CPython appends in place (`str +=` on a string
                # nothing else holds), so a snapshot costs the new text only.
                tail = fragments[1] if len(fragments) == 2 else "".join(fragments[1:])
                text = fragments[0]
                fragments.clear()
                text += tail
                fragments.append(text)
                self._reported = 1
            leaf = fragments[0] if fragments else ""
        stack = self._stack
        if not stack:
            return self._result if state is _END else leaf
        child = leaf
        innermost = True
        for frame in reversed(stack):
            container = frame.container
            if isinstance(container, list):
                items = list(container)
                if not innermost:
                    items[-1] = child
                elif child is not MISSING:
                    items.append(child)
                child = items
            else:
                members = dict(container)
                if child is not MISSING:
                    members[frame.key] = child
                child = members
            innermost = False
        return child

    def close(self) -> Any:
        """End the input and return the document's value.

        Returns:
            The value, equal to ``json.loads`` of the whole text.

        Raises:
            PartialJSONError: The text is incomplete or invalid; ``position``
                is its length when it ended too early.
        """
        if self._failure is not None:
            raise self._failure
        if not self._closed:
            state = self._state
            if state is _NUMBER and not self._stack:
                self._end_number("", 0)
            elif state is not _END:
                raise self._fail(PartialJSONError, self._end_reason(), "", 0)
            self._closed = True
            self._limit = -1
        return self._result

    # The parsing machinery; ``text`` is the current piece, ``i`` an index in it.

    def _consume(self, text: str, i: int) -> list[JSONUpdate]:
        """Parse a piece from ``text[i]`` on and move past it; return ``self._out``."""
        out = self._out
        if self._state is _STRING:
            self._reported = len(self._fragments)
        n = len(text)
        while i < n:
            state = self._state
            actions = _ACTIONS[state]
            if actions is None:  # inside a token that has its own scanner
                if state is _STRING:
                    i = self._string(text, i)
                elif state is _NUMBER:
                    i = self._number(text, i)
                else:
                    i = self._literal_rest(text, i)
                continue
            character = text[i]
            action = actions.get(character)
            if action is None:
                if character in _WHITESPACE:
                    match = _NON_WHITESPACE.search(text, i)
                    i = n if match is None else match.start()
                    continue
                raise self._fail(PartialJSONError, _unexpected_reason(state, character), text, i)
            if action is _MEMBER_COMMA:
                i += 1
                if i == n or text[i] != '"':
                    self._state = _KEY
                    continue
                # A key follows at once, as it almost always does: open it in
                # the same turn (nested_arguments: 284M -> 280M).
                action = _OPEN_KEY
            # The branches go from the most frequent action to the least.
            if action is _OPEN_KEY:
                i += 1
                end = text.find('"', i)
                key = text[i:end] if end >= 0 else text[i:]
                if "\\" in key or not key.isprintable():
                    self._start_string(in_key=True)
                elif end >= 0:
                    # The whole key is in this piece, plain: take it at once,
                    # and the colon if it follows at once (nested_arguments:
                    # 280M -> 278M).
                    self._stack[-1].key = key
                    i = end + 1
                    if i < n and text[i] == ":":
                        self._state = _MEMBER_VALUE
                        i += 1
                    else:
                        self._state = _COLON
                else:
                    # A plain key the piece cuts: what _start_string and
                    # _string would do, inlined (keys cut across 6-character
                    # pieces of short members, nested_arguments: 341M -> 310M
                    # instructions per 100 KB).
                    self._state = _STRING
                    self._in_key = True
                    self._fragments = [key] if key else []
                    self._reported = 0
                    self._string_path = None
                    i = n
            elif action is _COLON_ACTION:
                self._state = _MEMBER_VALUE
                i += 1
            elif action is _OPEN_STRING:
                i += 1
                end = text.find('"', i)
                run = text[i:end] if end >= 0 else text[i:]
                stack = self._stack
                if not stack or "\\" in run or not run.isprintable():
                    self._start_string(in_key=False)
                    continue
                # A plain string in a container: what _start_string, _string
                # and _end_string would do, inlined (nested_arguments: 310M ->
                # 294M instructions; a prose answer: 187M -> 175M).
                frame = stack[-1]
                container = frame.container
                if self._updates:
                    if isinstance(container, list):
                        path = (*frame.path, len(container))
                    else:
                        path = (*frame.path, frame.key)
                    out.append(JSONValueStarted(path, "string"))
                    if end < 0:
                        # It goes on in the next piece; reported below.
                        self._string_path = path
                    else:
                        if run:
                            out.append(JSONStringDelta(path, run))
                        out.append(JSONValueDone(path, run))
                elif end < 0:
                    self._string_path = None
                if end < 0:
                    self._state = _STRING
                    self._in_key = False
                    self._fragments = [run] if run else []
                    self._reported = 0
                    i = n
                else:
                    if isinstance(container, list):
                        container.append(run)
                        self._state = _AFTER_ITEM
                    else:
                        container[frame.key] = run
                        self._state = _AFTER_MEMBER
                    i = end + 1
            elif action is _START_NUMBER:
                i = self._start_number(text, i)
            elif action is _CLOSE:
                stack = self._stack
                frame = stack.pop()
                if not stack:
                    self._result = frame.container
                    self._state = _END
                elif isinstance(stack[-1].container, list):
                    self._state = _AFTER_ITEM
                else:
                    self._state = _AFTER_MEMBER
                if self._updates:
                    out.append(JSONValueDone(frame.path, frame.container))
                i += 1
            elif action is _ITEM_COMMA:
                self._state = _ITEM
                i += 1
            elif action is _START_LITERAL:
                i = self._start_literal(text, i)
            elif action is _OPEN_OBJECT:
                self._open_container({}, "object", text, i)
                self._state = _FIRST_KEY
                i += 1
            else:
                self._open_container([], "array", text, i)
                self._state = _FIRST_ITEM
                i += 1
        if self._state is _STRING and self._string_path is not None:
            # What the string gained in this piece, as one delta.
            fragments = self._fragments
            reported = self._reported
            count = len(fragments)
            if count > reported:
                if count == reported + 1:
                    fragment = fragments[reported]
                else:
                    fragment = "".join(fragments[reported:])
                out.append(JSONStringDelta(self._string_path, fragment))
                self._reported = count
        self._offset += n
        if n:
            self._recent.append(text)
        return out

    def _fail(
        self, error_type: type[PartialJSONError], reason: str, text: str, i: int
    ) -> PartialJSONError:
        """Make the error for ``text[i]`` and fail the parser; the caller raises it."""
        position = self._offset + i
        before = "".join(self._recent) + text[max(0, i - _EXCERPT_BEFORE) : i]
        error = error_type(
            reason, position, (before[-_EXCERPT_BEFORE:], text[i : i + _EXCERPT_AFTER])
        )
        self._failure = error
        self._limit = -1
        self._offset = position
        return error

    def _end_reason(self) -> str:
        state = self._state
        if state is _TOP:
            return "no JSON value before the end of input"
        if state is _STRING:
            return "unterminated string at the end of input"
        return f"unexpected end of input, expected {state.value}"

    def _child_path(self) -> Path:
        """The path of a value starting now in the innermost open container."""
        stack = self._stack
        if not stack:
            return ()
        frame = stack[-1]
        container = frame.container
        if isinstance(container, list):
            return (*frame.path, len(container))
        return (*frame.path, frame.key)

    def _finish_scalar(self, value: Any) -> None:
        """Put a finished number or literal where it belongs and report it.

        Its path is ``_child_path()``.
        """
        stack = self._stack
        if not stack:
            self._result = value
            self._state = _END
            path: Path = ()
        else:
            frame = stack[-1]
            container = frame.container
            if isinstance(container, list):
                path = (*frame.path, len(container)) if self._updates else ()
                container.append(value)
                self._state = _AFTER_ITEM
            else:
                key = frame.key
                container[key] = value
                self._state = _AFTER_MEMBER
                path = (*frame.path, key) if self._updates else ()
        if self._updates:
            self._out.append(JSONValueDone(path, value))

    def _open_container(
        self, container: list[Any] | dict[str, Any], kind: str, text: str, i: int
    ) -> None:
        stack = self._stack
        if len(stack) >= self._max_depth:
            reason = f"more than max_depth={self._max_depth} nested containers"
            raise self._fail(JSONDepthError, reason, text, i)
        # _child_path() inline, where the parent is at hand.
        updates = self._updates
        path: Path = ()
        if stack:
            parent = stack[-1]
            parent_container = parent.container
            if isinstance(parent_container, list):
                if updates:
                    path = (*parent.path, len(parent_container))
                parent_container.append(container)
            else:
                key = parent.key
                if updates:
                    path = (*parent.path, key)
                parent_container[key] = container
        stack.append(_Frame(container, path))
        if updates:
            self._out.append(JSONValueStarted(path, kind))

    # Strings.

    def _start_string(self, *, in_key: bool) -> None:
        self._state = _STRING
        self._in_key = in_key
        self._fragments = []
        self._reported = 0
        if not in_key and self._updates:
            path = self._child_path()
            self._string_path = path
            self._out.append(JSONValueStarted(path, "string"))
        else:
            self._string_path = None

    def _string(self, text: str, i: int) -> int:
        """Consume string content from ``text[i:]``; return where it stopped."""
        pending = self._pending
        if not pending and text.find('"', i) >= 0:
            # It may end in this piece: decode it in place (never copy the
            # rest of the piece for each string that starts in it).
            try:
                fragment, end = scanstring(text, i)
            except ValueError:  # an error, or only escaped quotes follow
                return self._string_carefully(text, i)
            if fragment:
                self._fragments.append(fragment)
            self._end_string()
            return end
        # It goes on past this piece, or after an escape the last one cut.
        raw = pending + text[i:]
        run = _decode_string(raw)
        if run is None:
            return self._string_carefully(text, i)
        fragment, stop, closed = run
        if fragment:
            self._fragments.append(fragment)
        if closed:
            self._pending = ""
            self._end_string()
            return i + stop - len(pending)
        self._pending = raw[stop:]
        return len(text)

    def _string_carefully(self, text: str, i: int) -> int:
        """Consume string content one token at a time, for what ``_decode_string`` leaves.

        Finds the exact position of an invalid character or escape, and
        keeps what may be the first half of a surrogate pair pending.
        """
        fragments = self._fragments
        n = len(text)
        run = _STRING_RUN.match
        while i < n:
            if self._pending:
                i = self._escape(text, i)
                continue
            match = run(text, i)
            if match is not None:
                fragments.append(match.group())
                i = match.end()
                if i == n:
                    break
            character = text[i]
            if character == '"':
                self._end_string()
                return i + 1
            if character == "\\":
                following = text[i + 1 : i + 2]
                decoded = _SIMPLE_ESCAPES.get(following)
                if decoded is not None:
                    fragments.append(decoded)
                    i += 2
                    continue
                if following == "u":
                    escape = _UNICODE_ESCAPE.match(text, i)
                    if escape is not None:
                        code_point = int(escape.group(1), 16)
                        if not _is_high_surrogate(code_point):
                            fragments.append(chr(code_point))
                            i += 6
                            continue
                # Unfinished in this piece, invalid, or maybe half a pair.
                self._pending = "\\"
                i += 1
                continue
            raise self._fail(
                PartialJSONError, f"invalid control character {character!r} in string", text, i
            )
        return i

    def _escape(self, text: str, i: int) -> int:
        """Decode the escape in ``self._pending`` with what ``text[i:]`` adds to it.

        Goes one character at a time, so that an escape, or a surrogate pair,
        may be split anywhere across pieces. Returns where it stopped: at the
        end of the text, or once nothing is pending.
        """
        pending = self._pending
        fragments = self._fragments
        n = len(text)
        while i < n:
            character = text[i]
            size = len(pending)
            if size == 6:  # a high surrogate, waiting for a second escape
                if character != "\\":
                    fragments.append(chr(int(pending[2:], 16)))
                    pending = ""
                    break
                pending += character
                i += 1
                continue
            start = 0 if size < 6 else 6  # where the escape being read begins
            if size - start == 1:  # after the backslash
                if character == "u":
                    pending += character
                    i += 1
                    continue
                decoded = _SIMPLE_ESCAPES.get(character)
                if decoded is None:
                    self._pending = pending
                    reason = f"invalid escape sequence {chr(92) + character!r}"
                    raise self._fail(PartialJSONError, reason, text, i)
                if start:
                    fragments.append(chr(int(pending[2:6], 16)))
                fragments.append(decoded)
                pending = ""
                i += 1
                break
            if character not in _HEX_DIGITS:
                self._pending = pending
                reason = "invalid \\u escape, expected 4 hex digits"
                raise self._fail(PartialJSONError, reason, text, i)
            pending += character
            i += 1
            if size - start < 5:
                continue
            code_point = int(pending[start + 2 :], 16)
            if start:
                if 0xDC00 <= code_point <= 0xDFFF:
                    high = int(pending[2:6], 16)
                    fragments.append(chr(0x10000 + ((high - 0xD800) << 10) + code_point - 0xDC00))
                    pending = ""
                    break
                fragments.append(chr(int(pending[2:6], 16)))  # it was a lone one
                pending = pending[6:]
            if _is_high_surrogate(code_point):
                continue
            fragments.append(chr(code_point))
            pending = ""
            break
        self._pending = pending
        return i

    def _end_string(self) -> None:
        """Put the finished string where it belongs (a key: the member's) and report it."""
        fragments = self._fragments
        value = "".join(fragments)
        if self._in_key:
            self._stack[-1].key = value
            self._state = _COLON
            return
        # Its last delta and storing it inline, not in two more calls (a
        # string value that ends after a cut; nested_arguments: 288M -> 285M).
        path = self._string_path
        out = self._out
        if path is not None:
            reported = self._reported
            count = len(fragments)
            if count > reported:
                if count == reported + 1:
                    out.append(JSONStringDelta(path, fragments[reported]))
                else:
                    out.append(JSONStringDelta(path, "".join(fragments[reported:])))
        stack = self._stack
        if not stack:
            self._result = value
            self._state = _END
        else:
            frame = stack[-1]
            container = frame.container
            if isinstance(container, list):
                container.append(value)
                self._state = _AFTER_ITEM
            else:
                container[frame.key] = value
                self._state = _AFTER_MEMBER
        if path is not None:
            out.append(JSONValueDone(path, value))

    # Numbers and literals.

    def _start_number(self, text: str, i: int) -> int:
        match = _WHOLE_NUMBER.match(text, i)
        if match is not None:
            end = match.end()
            if end < len(text) and text[end] not in _NUMBER_CHARACTERS:
                # The whole number is in this piece, and what follows ends it.
                # Converted here, not in a call (with the same in _number
                # and _end_number, nested_arguments: 272M -> 270M).
                token = match.group()
                try:
                    value = int(token) if match.lastindex is None else float(token)
                except ValueError:
                    raise self._integer_too_long(token, self._offset + i) from None
                self._finish_scalar(value)
                return end
            if end == len(text):
                # A whole number so far, which the piece cuts: the automaton's
                # state read off the match, not walked one character at a time.
                token = match.group()
                self._state = _NUMBER
                self._number_parts = [token]
                if match.lastindex is not None:
                    self._number_state = 8 if match.lastindex == 2 else 5
                else:
                    self._number_state = 2 if token == "0" or token == "-0" else 3
                self._number_start = self._offset + i
                return end
        self._state = _NUMBER
        self._number_parts = []
        self._number_state = 0
        self._number_start = self._offset + i
        return self._number(text, i)

    def _number(self, text: str, i: int) -> int:
        """Continue a number that may be split across pieces.

        At once when the piece completes it, else one character at a time.
        """
        state = self._number_state
        n = len(text)
        continuation = _NUMBER_CONTINUATIONS.get(state)
        match = None if continuation is None else continuation.match(text, i)
        if match is not None:
            end = match.end()
            if end < n and text[end] not in _NUMBER_CHARACTERS:
                # What the piece adds completes the number, and what follows
                # ends it: what the automaton and _end_number would find.
                self._number_parts.append(match.group())
                token = "".join(self._number_parts)
                is_integer = state < 5 and match.lastindex is None
                try:
                    value = int(token) if is_integer else float(token)
                except ValueError:
                    raise self._integer_too_long(token, self._number_start) from None
                self._finish_scalar(value)
                return end
        automaton = _NUMBER_AUTOMATON
        start = i
        while i < n:
            following = automaton[state].get(text[i])
            if following is None:
                break
            state = following
            i += 1
        self._number_state = state
        self._number_parts.append(text[start:i])
        if i < n:
            self._end_number(text, i)
        return i

    def _end_number(self, text: str, i: int) -> None:
        """Finish the number at ``text[i]`` (or at the end of input), which cannot continue it."""
        state = self._number_state
        if i < len(text) and text[i] in _NUMBER_CHARACTERS:
            leading_zero = state == 2 and text[i].isdigit()
            reason = "leading zeros are not allowed" if leading_zero else "invalid number"
            raise self._fail(PartialJSONError, f"{reason}, got {text[i]!r}", text, i)
        if state not in _NUMBER_COMPLETE:
            got = f", got {text[i]!r}" if i < len(text) else " at the end of input"
            raise self._fail(PartialJSONError, f"incomplete number{got}", text, i)
        token = "".join(self._number_parts)
        try:
            value = int(token) if state in _NUMBER_INTEGER else float(token)
        except ValueError:
            raise self._integer_too_long(token, self._number_start) from None
        self._finish_scalar(value)

    def _integer_too_long(self, token: str, position: int) -> PartialJSONError:
        """Fail the parser for a checked integer ``int()`` refuses; the caller raises it.

        ``int()`` refuses more digits than ``sys.get_int_max_str_digits()``
        allows (``float()`` takes any checked number token), as in json.loads.
        """
        reason = "integer has more digits than sys.get_int_max_str_digits() allows"
        error = PartialJSONError(reason, position, ("", token[:_EXCERPT_AFTER]))
        self._failure = error
        self._limit = -1
        self._offset = position
        return error

    def _start_literal(self, text: str, i: int) -> int:
        word, value = _LITERALS[text[i]]
        if text.startswith(word, i):
            self._finish_scalar(value)
            return i + len(word)
        self._state = _LITERAL
        self._literal = word
        if word.startswith(text[i:]):
            # The piece cuts it, right so far: what _literal_rest would find.
            self._literal_matched = len(text) - i
            return len(text)
        self._literal_matched = 0
        return self._literal_rest(text, i)

    def _literal_rest(self, text: str, i: int) -> int:
        """Continue ``true``, ``false`` or ``null``, maybe split across pieces."""
        word = self._literal
        matched = self._literal_matched
        if text.startswith(word[matched:], i):
            # The piece completes it, the usual case (with the shortcut in
            # _start_literal, nested_arguments: 274M -> 272M).
            self._finish_scalar(_LITERALS[word[0]][1])
            return i + len(word) - matched
        piece = text[i : i + len(word) - matched]
        expected = word[matched : matched + len(piece)]
        if piece != expected:
            wrong = next(k for k, (a, b) in enumerate(zip(piece, expected, strict=True)) if a != b)
            reason = f"invalid literal, expected {word!r}, got {piece[wrong]!r}"
            raise self._fail(PartialJSONError, reason, text, i + wrong)
        matched += len(piece)
        if matched == len(word):
            self._finish_scalar(_LITERALS[word[0]][1])
        else:
            self._literal_matched = matched
        return i + len(piece)


def parse_partial(text: str) -> Any:
    """Parse a prefix of a JSON document into its snapshot.

    Args:
        text: The beginning of a JSON document (or all of it).

    Returns:
        The snapshot of ``text`` (see the module docstring), or
        :data:`MISSING` if no value has started.

    Raises:
        PartialJSONError: ``text`` is not a prefix of valid JSON.
    """
    parser = PartialJSONParser(updates=False)
    parser.feed(text)
    return parser.snapshot()
