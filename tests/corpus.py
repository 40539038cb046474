"""Shared test helpers: the recordings (in-repo and the team's shared corpus),
folding with arbitrary cuts, what makes two folds identical (``comparable``,
``fold_checked``), the event order contract (``check_order``), and the hostile
mutations of the fuzz tests (also driven by ``bench/fuzz.py``). The conformance
suite (``test_conformance.py``) runs them over every recording."""

from __future__ import annotations

import contextlib
import csv
import functools
import itertools
import random
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import msgspec
import pytest
from hypothesis import strategies as st

from streamfold import StreamfoldError, StreamParser
from streamfold.events import (
    Event,
    ReasoningDone,
    RefusalDone,
    TextDone,
    ToolCallArgumentsDelta,
    ToolCallDone,
    ToolCallStarted,
    UsageUpdated,
)
from streamfold.fold import Accumulator
from streamfold.result import Result

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SKIP_REASON = f"the shared corpus is absent (expected at {CORPUS})"


@functools.cache
def manifest() -> dict[str, dict[str, str]]:
    """The corpus manifest, by file name (empty when the corpus is absent)."""
    path = CORPUS / "MANIFEST.tsv"
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["file"]: row for row in csv.DictReader(handle, delimiter="\t")}


def corpus_files(api: str) -> list[Any]:
    """``pytest.param`` per corpus stream of ``api`` (chat, responses, anthropic,
    gemini, other), or one skipped param saying why when the corpus is absent."""
    if not CORPUS.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_REASON), id="no-corpus")]
    files = sorted(CORPUS.glob(f"*__{api}__*.sse"))
    return [pytest.param(path, id=path.stem) for path in files]


def features(path: Path) -> set[str]:
    """The manifest's feature hints for a corpus stream."""
    row = manifest().get(path.name)
    return set(row["features"].split(",")) if row else set()


def fold_pieces(
    pieces: Iterable[bytes], dialect: Any = "auto", **options: Any
) -> tuple[list[Event], Result | None, BaseException | None]:
    """Feed pieces to a fresh parser: (events, result or None, error or None)."""
    parser = StreamParser(dialect, **options)
    events: list[Event] = []
    for piece in pieces:
        events.extend(parser.feed(piece))
    events.extend(parser.close())
    if parser.error is not None:
        return events, parser.snapshot, parser.error
    return events, parser.final(), None


def cut(data: bytes, points: Sequence[int]) -> list[bytes]:
    """Split ``data`` at the given offsets (any order, duplicates allowed)."""
    bounds = [0, *sorted({min(max(p, 0), len(data)) for p in points}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def bytewise(data: bytes) -> list[bytes]:
    """Every byte its own chunk."""
    return [data[i : i + 1] for i in range(len(data))]


# -- every recording -------------------------------------------------------------

PAIRS = ROOT.parent / "shared" / "pairs"
#: In-repo recordings: every dialect's fixtures, the examples and the packaged samples.
IN_REPO = (FIXTURES, ROOT / "examples", ROOT / "src" / "streamfold" / "samples")
#: The team's shared recordings (absent outside the team's machines).
SHARED = (CORPUS, PAIRS)
_RECORDING_SUFFIXES = (".sse", ".json", ".ndjson", ".eventstream")
#: What the conformance suite expects of an in-repo fixture, beside it: its
#: unified view and its native response (``<case>.unified.json``, ``<case>.response.json``).
GOLDEN_KINDS = ("unified", "response")


def is_golden(path: Path) -> bool:
    """Whether ``path`` is a golden file (an expected result), not a recording."""
    return path.name.endswith(tuple(f".{kind}.json" for kind in GOLDEN_KINDS))


def recordings(sources: Sequence[Path] = IN_REPO + SHARED) -> list[Path]:
    """Every recorded body under ``sources`` that exist: ``.sse`` streams,
    ``.json`` bodies (a Gemini JSON array, a non-streamed answer), and bodies
    in their wire framing (``.ndjson`` lines, ``.eventstream`` frames). Sorted,
    so draws from the list are reproducible. Golden files are no recordings."""
    found: list[Path] = []
    for source in sources:
        if source.is_dir():
            found.extend(
                sorted(
                    p
                    for p in source.rglob("*")
                    if p.suffix in _RECORDING_SUFFIXES
                    and p.is_file()
                    and p.stem != "MANIFEST"
                    and not is_golden(p)
                )
            )
    return found


def recording_name(path: Path) -> str:
    """A short, stable name for a recording: ``corpus/x.sse``, ``fixtures/gemini/text.sse``."""
    for source in IN_REPO + SHARED:
        if path.is_relative_to(source):
            return f"{source.name}/{path.relative_to(source).as_posix()}"
    return path.name


@functools.cache
def dialect_of(path: Path) -> str:
    """The dialect a recording folds as (``"unknown"`` when none): to spread fuzz
    draws over every dialect, whatever the file names say."""
    try:
        parser = StreamParser(events=False)
        parser.feed(path.read_bytes())
        parser.close()
        dialect = parser.dialect_name or ""
    except StreamfoldError:
        dialect = ""
    return dialect or "unknown"


# -- what "identical" means ------------------------------------------------------------


def comparable(
    events: Sequence[Event], result: Result | None, error: BaseException | None
) -> dict[str, Any]:
    """One fold as plain data, to compare two folds of the same bytes: the events
    (as msgspec builtins), the result (dialect, native response, unified view,
    warnings, complete) and the error (type, message, position). Two folds are
    identical when these are equal."""
    return {
        "events": [msgspec.to_builtins(event) for event in events],
        "result": None
        if result is None
        else {
            "dialect": result.dialect,
            "response": msgspec.to_builtins(result.response),
            "unified": msgspec.to_builtins(result.unified),
            "warnings": list(result.warnings),
            "complete": result.complete,
        },
        "error": None
        if error is None
        else {
            "type": type(error).__name__,
            "message": str(error),
            "position": getattr(error, "position", None),
        },
    }


def first_difference(a: Any, b: Any, where: str = "") -> tuple[str, Any, Any] | None:
    """Where two ``comparable`` values first differ: the path (``events[3].delta``,
    ``result.unified.text``) and the two values there, or ``None`` when equal."""
    if a == b:
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            path = f"{where}.{key}" if where else str(key)
            if key not in a or key not in b:
                return path, a.get(key, "<absent>"), b.get(key, "<absent>")
            if a[key] != b[key]:
                return first_difference(a[key], b[key], path)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            if x != y:
                return first_difference(x, y, f"{where}[{i}]")
        return f"{where}.length", len(a), len(b)
    return where or ".", a, b


# -- the two fuzz properties -------------------------------------------------------------

#: The option sets under which bad input must end in a streamfold error.
FUZZ_OPTIONS: tuple[dict[str, bool], ...] = tuple(
    {"strict": strict, "events": events, "parse_arguments": True, "parse_content": True}
    for strict in (True, False)
    for events in (True, False)
)
#: The option sets under which every split must fold identically.
SPLIT_OPTIONS: tuple[dict[str, bool], ...] = tuple(o for o in FUZZ_OPTIONS if o["events"])
_encode_json = msgspec.json.Encoder().encode


def fold_checked(pieces: Iterable[bytes], dialect: Any = "auto", **options: Any) -> dict[str, Any]:
    """Fold ``pieces`` with a fresh parser and use the result as a caller would
    (``final()``, the snapshot, its unified dict, its JSON encoding). Anything but
    a streamfold error escapes; an error must carry the partial result.

    Returns:
        The ``comparable`` of the fold.
    """
    parser = StreamParser(dialect, **options)
    events: list[Event] = []
    for piece in pieces:
        events.extend(parser.feed(piece))
    events.extend(parser.close())
    with contextlib.suppress(StreamfoldError):
        parser.final()
    error = parser.error
    assert error is None or isinstance(error.partial, Result), f"{error!r} has no partial"
    value = comparable(events, parser.snapshot, error)
    _encode_json(value)  # results are data: the CLI prints them as JSON
    parser.snapshot.unified.to_dict()
    return value


def fold_every_way(raw: bytes, dialect: Any = "auto") -> list[dict[str, Any]]:
    """``fold_checked`` of ``raw`` whole under each of ``FUZZ_OPTIONS``, in order."""
    return [fold_checked([raw], dialect, **options) for options in FUZZ_OPTIONS]


def split_difference(
    raw: bytes, pieces: Sequence[bytes], dialect: Any = "auto"
) -> tuple[dict[str, bool], tuple[str, Any, Any]] | None:
    """Fold ``raw`` whole and as ``pieces`` under each of ``SPLIT_OPTIONS``.

    Returns:
        ``None`` when every fold is identical, else the options and the first
        difference (``first_difference`` of whole and split).
    """
    for options in SPLIT_OPTIONS:
        whole = fold_checked([raw], dialect, **options)
        split = fold_checked(pieces, dialect, **options)
        difference = first_difference(whole, split)
        if difference is not None:
            return options, difference
    return None


# -- hostile mutations ------------------------------------------------------------------

T = TypeVar("T")


class Chooser(Protocol):
    """Where a mutation's choices come from: hypothesis (``HypothesisChooser``,
    so failures shrink) or a seeded ``random.Random`` (``RandomChooser``, for
    the long runs of ``bench/fuzz.py``)."""

    def integer(self, low: int, high: int) -> int:
        """An integer in ``[low, high]``."""
        ...

    def choice(self, options: Sequence[T]) -> T:
        """One of ``options``."""
        ...


class HypothesisChooser:
    """Choices drawn from a hypothesis ``st.data()`` object."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def integer(self, low: int, high: int) -> int:
        return self.data.draw(st.integers(low, high))

    def choice(self, options: Sequence[T]) -> T:
        return self.data.draw(st.sampled_from(options))


class RandomChooser:
    """Choices drawn from a ``random.Random``."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def choice(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]


class _Raw:
    """JSON text spliced verbatim where a value goes (what msgspec cannot encode:
    a 5,000-digit integer, a float out of range, a lone surrogate)."""

    def __init__(self, text: bytes) -> None:
        self.text = text


# Values an attacker puts where a field was: every JSON type, edge numbers, and
# shapes that break naive code (huge integers, deep arrays, lone surrogates).
_HOSTILE_VALUES: tuple[Any, ...] = (
    [],
    [1, "a"],
    [{}],
    {},
    {"type": "text"},
    True,
    False,
    None,
    0,
    -1,
    2**63,
    -(2**63) - 1,
    2**64,
    1.5,
    -0.0,
    1e308,
    "",
    "x",
    "[DONE]",
    "\x00",
    "é\U0001f600",
    "a" * 10_000,
    "[" * 5000 + "]" * 5000,  # JSON text nested too deep, as a string (arguments, input)
    '{"a":' * 3000 + "1" + "}" * 3000,
    _Raw(b"1" + b"0" * 5000),
    _Raw(b"-1" + b"0" * 5000),
    _Raw(b"1e400"),
    _Raw(b"[" * 5000 + b"]" * 5000),
    _Raw(b'{"a":' * 5000 + b"1" + b"}" * 5000),
    _Raw(b'"\\ud800"'),
)
_RENAMES = ("", "type", "index", "id", "delta", "text", "content", "choices", "candidates", "\x00")
# Bytes as a hostile server or a broken proxy sends them.
_INVALID_UTF8 = (b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80")
_LINE_ENDS = (b"\r", b"\n", b"\r\n", b"\n\n", b"\r\n\r\n", b"\r\r")
_BYTE_OM = b"\xef\xbb\xbf"
_INTERESTING = b'{}[]":,\\ \t\r\n0a-.eE\x00\xff'
# A blank line between SSE events (CRLF, LF or CR line ends).
_SSE_BLANK = re.compile(rb"(?:\r\n|\n|\r(?!\n))(?:\r\n|\n|\r(?!\n))")


def split_events(raw: bytes) -> tuple[list[bytes], list[bytes], bool]:
    """``raw`` as (events, separators, is_array): SSE blocks and the blank lines
    after each, or a JSON array's elements re-encoded one per event."""
    if raw.lstrip(_BYTE_OM + b" \t\r\n")[:1] == b"[":
        with contextlib.suppress(msgspec.DecodeError, RecursionError):
            items = msgspec.json.decode(raw.lstrip(_BYTE_OM))
            if isinstance(items, list):
                return [_encode_json(item) for item in items], [b",\n"] * len(items), True
    events: list[bytes] = []
    separators: list[bytes] = []
    start = 0
    for match in _SSE_BLANK.finditer(raw):
        events.append(raw[start : match.start()])
        separators.append(match.group())
        start = match.end()
    if start < len(raw):
        events.append(raw[start:])
        separators.append(b"")
    return events, separators, False


def join_events(events: list[bytes], separators: list[bytes], is_array: bool) -> bytes:
    """The bytes ``split_events`` took apart (after any change to the lists)."""
    if is_array:
        return b"[" + b",\n".join(events) + b"]"
    return b"".join(e + s for e, s in zip(events, separators, strict=True))


def _encode_with_raw(value: Any) -> bytes:
    spliced: list[bytes] = []

    def hook(obj: Any) -> Any:
        if isinstance(obj, _Raw):
            spliced.append(obj.text)
            return f"@@streamfold-raw-{len(spliced) - 1}@@"
        raise NotImplementedError(type(obj))

    text = msgspec.json.encode(value, enc_hook=hook)
    for i, piece in enumerate(spliced):
        text = text.replace(f'"@@streamfold-raw-{i}@@"'.encode(), piece)
    return text


def _paths(value: Any, limit: int = 4096) -> list[tuple[Any, ...]]:
    """The paths of the first ``limit`` fields and items of ``value``, breadth first."""
    paths: list[tuple[Any, ...]] = []
    queue: list[tuple[tuple[Any, ...], Any]] = [((), value)]
    for path, node in queue:
        if len(paths) >= limit:
            break
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            paths.append((*path, key))
            if isinstance(child, (dict, list)):
                queue.append(((*path, key), child))
    return paths


def _mutate_value(choose: Chooser, value: Any) -> Any:
    """``value`` with one field or item, any depth alike, set to a hostile value,
    deleted or renamed (or the whole value replaced, when it has none)."""
    paths = _paths(value) if isinstance(value, (dict, list)) else []
    if not paths:
        return choose.choice(_HOSTILE_VALUES)
    path = choose.choice(paths)
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    action = choose.choice(("set", "set", "set", "delete", "rename"))
    if action == "set":
        parent[key] = choose.choice(_HOSTILE_VALUES)
    elif action == "delete":
        del parent[key]
    elif isinstance(parent, dict):
        new = choose.choice(_RENAMES)
        parent[new if new != key else f"{key}_"] = parent.pop(key)
    else:
        parent.insert(choose.integer(0, len(parent)), parent.pop(key))
    return value


def _mutate_event_json(choose: Chooser, event: bytes, is_array: bool) -> bytes:
    if is_array:
        payload = event
        lines: list[bytes] = []
    else:
        lines = event.splitlines()
        data = [i for i, line in enumerate(lines) if line.startswith(b"data:")]
        if not data:
            return event
        values = [lines[i][5:] for i in data]
        payload = b"\n".join(v[1:] if v[:1] == b" " else v for v in values)
    try:
        value = msgspec.json.decode(payload)
    except (msgspec.DecodeError, RecursionError):
        return event
    text = _encode_with_raw(_mutate_value(choose, value))
    if is_array:
        return text
    first = data[0]
    kept = [line for i, line in enumerate(lines) if i not in data[1:]]
    kept[first] = b"data: " + text
    return b"\n".join(kept)


def mutate_structure(choose: Chooser, raw: bytes) -> bytes:
    """``raw`` with one structural change, as an attacker would make it: an
    event's JSON with a field set to a wrong type, deleted or renamed; or an
    event duplicated, moved, dropped or cut short."""
    events, separators, is_array = split_events(raw)
    if not events:
        return raw
    i = choose.integer(0, len(events) - 1)
    action = choose.choice(("field", "field", "field", "duplicate", "reorder", "drop", "cut"))
    if action == "field":
        events[i] = _mutate_event_json(choose, events[i], is_array)
    elif action == "duplicate":
        j = choose.integer(0, len(events))
        events.insert(j, events[i])
        separators.insert(j, separators[i] or b"\n\n")
    elif action == "reorder":
        j = choose.integer(0, len(events) - 1)
        events[i], events[j] = events[j], events[i]
        separators[i], separators[j] = separators[j], separators[i]
    elif action == "drop" and len(events) > 1:
        del events[i], separators[i]
    elif action == "cut":
        events[i] = events[i][: choose.integer(0, len(events[i]))]
    return join_events(events, separators, is_array)


def mutate_bytes(choose: Chooser, raw: bytes) -> bytes:
    """``raw`` with one byte-level change: a flipped byte, a NUL, invalid UTF-8,
    a CR, LF or CRLF, a byte-order mark, a deleted range, or a truncation."""
    at = choose.integer(0, len(raw))
    action = choose.choice(("flip", "nul", "utf8", "line-end", "bom", "delete", "truncate"))
    if action == "flip" and at < len(raw):
        byte = choose.choice((*_INTERESTING, raw[at] ^ (1 << choose.integer(0, 7))))
        return raw[:at] + bytes([byte]) + raw[at + 1 :]
    if action == "nul":
        return raw[:at] + b"\x00" + raw[at:]
    if action == "utf8":
        return raw[:at] + choose.choice(_INVALID_UTF8) + raw[at:]
    if action == "line-end":
        return raw[:at] + choose.choice(_LINE_ENDS) + raw[at:]
    if action == "bom":
        at = choose.choice((0, 0, at))
        return raw[:at] + _BYTE_OM + raw[at:]
    if action == "delete":
        return raw[:at] + raw[at + choose.integer(1, 16) :]
    return raw[:at]


def hostile(choose: Chooser, raw: bytes) -> bytes:
    """``raw`` with one to three mutations of ``mutate_structure`` and ``mutate_bytes``."""
    for _ in range(choose.choice((1, 1, 1, 2, 3))):
        mutation = choose.choice((mutate_structure, mutate_structure, mutate_bytes))
        raw = mutation(choose, raw)
    return raw


PAIRS_SKIP_REASON = f"the shared pairs are absent (expected at {PAIRS})"


@functools.cache
def pairs_manifest() -> dict[str, dict[str, str]]:
    """The pairs' manifest, by pair name (empty when the pairs are absent)."""
    path = PAIRS / "MANIFEST.tsv"
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["name"]: row for row in csv.DictReader(handle, delimiter="\t")}


def pair_files() -> list[Any]:
    """``pytest.param(sse_path, provider)`` per pair of ``../shared/pairs`` (a streamed
    ``.sse`` and the non-streaming ``.json`` of the same request), or one skipped
    param saying why when the folder is absent."""
    if not PAIRS.is_dir():
        return [
            pytest.param(
                None, None, marks=pytest.mark.skip(reason=PAIRS_SKIP_REASON), id="no-pairs"
            )
        ]
    rows = pairs_manifest()
    return [
        pytest.param(path, rows[path.stem]["provider"] if path.stem in rows else "", id=path.stem)
        for path in sorted(PAIRS.glob("*.sse"))
    ]


#: The usage counts the dialect tables compare, in order.
USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_tokens",
    "reasoning_tokens",
)


def usage_counts(usage: dict[str, Any] | None) -> tuple[int | None, ...] | None:
    """``(input, output, total, cache read, reasoning)`` of a unified view's usage dict."""
    return None if usage is None else tuple(usage[key] for key in USAGE_KEYS)


# -- the event order contract (docs/semantics.md, section 2) ------------------------------

_DELTA_PART = {"text.delta": "text", "reasoning.delta": "reasoning", "refusal.delta": "refusal"}
_DONE_PART = {"text.done": "text", "reasoning.done": "reasoning", "refusal.done": "refusal"}
# Events that start or extend a part or a call: none may follow the choice's finish.
_AFTER_FINISH_NEVER = frozenset({*_DELTA_PART, "tool_call.started", "tool_call.arguments.delta"})
# Events that are content: none may come before ``response.started``.
_CONTENT = frozenset(
    {*_DELTA_PART, *_DONE_PART, "logprobs.delta", "logprobs.done", "response.finished"}
    | {"tool_call.started", "tool_call.arguments.delta", "tool_call.done"}
)


def check_order(
    events: Sequence[Event], failed: bool, finished_at: dict[int, int] | None = None
) -> None:
    """Assert the event order contract of docs/semantics.md on one stream's events.

    - ``response.started`` at most once, before any content;
    - each part (text, reasoning, refusal of a choice) gets one ``*.done`` after
      its deltas, whose ``text`` is the deltas joined; each tool call gets
      ``tool_call.started`` once (its ``index`` the next position among its
      choice's calls), argument deltas only while open, one ``tool_call.done``
      whose arguments are the deltas joined; both before their choice's finish;
    - ``usage`` only when it differs from the last report;
    - ``response.finished`` once per choice, at the terminal point: only other
      choices' finishes follow it; a stream that did not fail finishes every
      choice it streamed and leaves nothing open;
    - a failure ends every open part and call (``complete: false``), then one
      ``error`` event, the last.

    ``complete: false`` on a stream that did not fail is an abandoned attempt (a
    retry spliced into the stream): the fold starts over, its usage too.
    ``finished_at`` maps a choice to the position in ``events`` by which its
    finish reason had arrived (``fold_with_finishes``): no delta nor call of
    that choice may come after it (what every recording shows; a stream whose
    events a fault reordered may send content after its finish reason).

    Raises:
        AssertionError: the first breach, naming the event's position.
    """
    kinds = [event.type for event in events]
    assert kinds.count("response.started") <= 1, "response.started twice"
    if "response.started" in kinds:
        early = set(kinds[: kinds.index("response.started")]) & _CONTENT
        assert not early, f"{early} before response.started"
    assert kinds.count("error") == int(failed), f"failed={failed} but error events: {kinds}"
    if failed:
        assert kinds[-1] == "error", f"{kinds[-1]} after the error event"
    open_parts: dict[tuple[int, str], list[str]] = {}
    calls: dict[tuple[int, int], list[str] | None] = {}  # open: its deltas; done: None
    calls_per_choice: dict[int, int] = {}
    streamed: set[int] = set()
    finished: set[int] = set()
    last_usage: Any = None
    for position, event in enumerate(events):
        kind = event.type
        where = f"#{position} {kind}"
        choice = getattr(event, "choice", 0)
        if finished:
            assert kind == "response.finished", f"{where} after the terminal point"
        if kind in _AFTER_FINISH_NEVER and finished_at:
            assert position < finished_at.get(choice, position + 1), (
                f"{where} of choice {choice} after its finish reason"
            )
        if kind in _CONTENT and kind != "response.finished":
            streamed.add(choice)
        if kind in _DELTA_PART:
            open_parts.setdefault((choice, _DELTA_PART[kind]), []).append(event.delta)  # type: ignore[union-attr]
        elif kind in _DONE_PART:
            assert isinstance(event, (TextDone, ReasoningDone, RefusalDone))
            deltas = open_parts.pop((choice, _DONE_PART[kind]), None)
            # A part may have no delta at all (redacted or signed-only thinking).
            assert deltas is not None or event.text == "", f"{where} for no open part"
            assert event.text == "".join(deltas or []), f"{where}: text is not its deltas"
            if not event.complete and not failed:
                last_usage = None  # an abandoned attempt: the fold starts over
        elif kind == "tool_call.started":
            assert isinstance(event, ToolCallStarted)
            key = (choice, event.index)
            assert key not in calls, f"{where}: call {key} started twice"
            expected = calls_per_choice.get(choice, 0)
            assert event.index == expected, f"{where}: index {event.index}, not {expected}"
            calls_per_choice[choice] = expected + 1
            calls[key] = []
        elif kind == "tool_call.arguments.delta":
            assert isinstance(event, ToolCallArgumentsDelta)
            deltas = calls.get((choice, event.index))
            assert deltas is not None, f"{where} for a call not open"
            deltas.append(event.delta)
        elif kind == "tool_call.done":
            assert isinstance(event, ToolCallDone)
            deltas = calls.get((choice, event.index))
            assert deltas is not None, f"{where}: done twice or never started"
            calls[(choice, event.index)] = None
            if deltas:
                assert event.arguments == "".join(deltas), f"{where}: arguments are not its deltas"
            if not event.complete and not failed:
                last_usage = None
        elif kind == "usage":
            assert isinstance(event, UsageUpdated)
            assert event.usage != last_usage, f"{where}: the same usage reported again"
            last_usage = event.usage
        elif kind == "response.finished":
            assert choice not in finished, f"{where}: choice {choice} finished twice"
            assert not [p for p in open_parts if p[0] == choice], f"{where} with parts open"
            assert not [k for k, v in calls.items() if k[0] == choice and v is not None], (
                f"{where} with calls open"
            )
            finished.add(choice)
        elif kind == "error":
            assert not open_parts, f"{where} with parts still open: {sorted(open_parts)}"
            assert all(v is None for v in calls.values()), f"{where} with calls still open"
    if not failed:
        assert not open_parts, f"parts never done: {sorted(open_parts)}"
        assert all(v is None for v in calls.values()), "calls never done"
        assert streamed <= finished, f"choices never finished: {sorted(streamed - finished)}"


class FinishProbe(Accumulator):
    """The accumulator, noting by which event each choice's finish reason had
    arrived: the end of the batch of events handed over with it."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.finished_at: dict[int, int] = {}
        self.handed_over = 0
        self._finishing: set[int] = set()

    def drain(self) -> list[Event]:
        out = super().drain()
        self.handed_over += len(out)
        for index in self._finishing:
            self.finished_at.setdefault(index, self.handed_over)
        self._finishing.clear()
        return out

    def finish(self, index: int, raw: str, unified: str, close: bool = True) -> None:
        if index not in self.finished_at:
            self._finishing.add(index)
        super().finish(index, raw, unified, close)

    def restart(self) -> None:
        super().restart()  # a spliced retry: the fold, and its choices, start over
        self.finished_at.clear()
        self._finishing.clear()


def fold_with_finishes(
    data: bytes, dialect: Any = "auto"
) -> tuple[list[Event], BaseException | None, dict[int, int]]:
    """Fold ``data`` fed a line at a time (so each batch of events is about one
    event's): the events, the error, and ``FinishProbe.finished_at``."""
    parser = StreamParser(dialect, parse_arguments=True)
    probe = parser.acc = FinishProbe(parse_arguments=True)
    events: list[Event] = []
    for piece in cut(data, [i + 1 for i, byte in enumerate(data) if byte == 0x0A]):
        events.extend(parser.feed(piece))
    events.extend(parser.close())
    return events, parser.error, probe.finished_at
