"""``Accumulator.sink``: the shortcut that the dialects' typed paths keep to
fold the next delta of a part (in a plain fold, an append without a call). It
must fold a delta exactly as ``text`` or ``reasoning`` would, and ``epoch``
must move whenever it would not."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, cast

import msgspec
import pytest

from streamfold.errors import PartialJSONError
from streamfold.events import Event, TextDelta, ToolCallArgumentsDelta
from streamfold.fold import REASONING, REFUSAL, TEXT, Accumulator, PartKind


class Answer(msgspec.Struct):
    a: int


def test_a_sink_appends_as_the_call_would_while_the_epoch_holds() -> None:
    acc = Accumulator(emit=False)
    part = acc.text(0, "Hel")
    sink = acc.sink(part)
    assert sink is not None
    epoch = acc.epoch
    sink("lo")
    acc.text(0, ", ")  # the call and the sink append to the same part
    sink("world")
    assert acc.epoch == epoch
    assert [p.text for p in acc.choice(0).parts(TEXT)] == ["Hello, world"]


def test_the_epoch_moves_when_a_part_opens_ends_or_is_replaced() -> None:
    acc = Accumulator(emit=False)
    text = acc.text(0, "a")
    moves = [acc.epoch]
    acc.reasoning(0, "r")  # a part opens
    moves.append(acc.epoch)
    acc.end_part(0, REASONING)  # a part ends
    moves.append(acc.epoch)
    acc.replace_part(0, TEXT, "whole")  # a part's text is replaced
    moves.append(acc.epoch)
    acc.text(0, "x", owner="other")  # another owner's part: the old one ends, one opens
    moves.append(acc.epoch)
    assert moves == sorted(set(moves)), moves
    assert text.text == "whole"


def test_with_events_or_a_type_the_sink_is_the_call() -> None:
    events = Accumulator(emit=True)
    sink = events.sink(events.text(1, "a", owner="block"))
    sink("b")
    assert [(e.choice, e.delta) for e in events.drain() if isinstance(e, TextDelta)] == [
        (1, "a"),
        (1, "b"),
    ]
    assert [p.text for p in events.choice(1).parts(TEXT)] == ["ab"]
    typed = Accumulator(emit=False, output_type=Answer)
    typed.sink(typed.text(0, '{"a"'))(": 1}")
    assert typed.choice(0).parts(TEXT)[0].partial_output() == Answer(a=1)
    plain = Accumulator(emit=False)
    plain.sink(plain.reasoning(0, "r"))("s")
    assert plain.choice(0).joined(REASONING) == "rs"


def test_an_arguments_sink_holds_while_its_call_is_the_current_one() -> None:
    acc = Accumulator(emit=False)
    acc.tool_call(0, "a", id="a", name="f", arguments='{"x"')
    sink = acc.arguments_sink(0, "a")
    epoch = acc.epoch
    sink(": 1")
    acc.tool_arguments(0, "a", ", ")  # the call and the sink append to the same call
    sink('"y": 2}')
    assert acc.epoch == epoch
    assert acc.choice(0).tool_calls[0].arguments == '{"x": 1, "y": 2}'
    moves = [acc.epoch]
    acc.tool_call(0, "b", id="b", name="g", arguments="{")  # a new call: the current one changes
    moves.append(acc.epoch)
    acc.tool_arguments(0, "a", "")  # no piece: nothing changes
    acc.tool_arguments(0, "a", " ")  # back to the first: interleaved
    moves.append(acc.epoch)
    acc.replace_arguments(0, "a", "{}")
    moves.append(acc.epoch)
    acc.end_tool_call(0, "b")
    moves.append(acc.epoch)
    assert moves == sorted(set(moves)), moves


@pytest.mark.parametrize("emit", [False, True])
def test_interleaved_calls_keep_their_sinks_across_switches(emit: bool) -> None:
    # The epoch moves once, when the calls first interleave; after that each
    # call's sink holds while the others' pieces go through theirs (parallel
    # calls switch call on every piece).
    acc = Accumulator(emit=emit)
    acc.tool_call(0, "a", id="a", name="f", arguments='{"x": "')
    acc.tool_call(0, "b", id="b", name="g", arguments='{"y": "')
    acc.tool_arguments(0, "a", "1")  # back to the first: interleaved, the epoch moves
    epoch = acc.epoch
    sinks = {key: acc.arguments_sink(0, key) for key in "ab"}
    for piece in "234":
        for key in "ab":
            sinks[key](piece)
        acc.tool_arguments(0, "b", "-")  # the lookups' way, between the sinks'
    assert acc.epoch == epoch
    acc.tool_arguments(0, "a", '"}')
    acc.tool_arguments(0, "b", '"}')
    a, b = acc.choice(0).tool_calls
    assert (a.arguments, b.arguments) == ('{"x": "1234"}', '{"y": "2-3-4-"}')
    acc.end_tool_call(0, "a")
    assert acc.epoch != epoch  # an end still moves it


def _pieces() -> list[str]:
    # 200,000 short pieces, each its own string (made before any count starts).
    return ["ab" + "wxyz"[k % 4] for k in range(200_000)]


def _held_after_reads(acc: Accumulator, feed: Callable[[str], object], pieces: list[str]) -> int:
    # The memory the pieces take, fed in 200 reads of 1,000 (a drain ends each).
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for read in range(200):
            for piece in pieces[read * 1000 : (read + 1) * 1000]:
                feed(piece)
            acc.drain()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("emit", [False, True])
def test_an_arguments_sink_keeps_the_pieces_in_blocks_across_reads(emit: bool) -> None:
    # The sink appends to the call's list itself (and, with events, builds
    # its delta event); the pieces are joined into blocks at each drain (one
    # read). Kept as a list, the pieces cost a pointer each here (and their
    # own ~52 bytes, made first); in blocks the arguments cost about their
    # length.
    acc = Accumulator(emit=emit)
    acc.tool_call(0, "a", id="a", name="f", arguments='"')
    pieces = _pieces()
    expected = '"' + "".join(pieces)
    held = _held_after_reads(acc, acc.arguments_sink(0, "a"), pieces)
    assert held < 2 * len(expected), held  # blocks, and at most one read's pieces
    assert acc.choice(0).tool_calls[0].arguments == expected
    acc.end_tool_call(0, "a")
    acc.drain()  # a done call is no longer checked at each read
    acc.tool_arguments(0, "a", " ")  # white space after the end: kept
    assert acc.choice(0).tool_calls[0].arguments == expected + " "


@pytest.mark.parametrize("emit", [False, True])
@pytest.mark.parametrize("through", ["sink", "text"])
def test_a_text_part_keeps_its_pieces_in_blocks_across_reads(emit: bool, through: str) -> None:
    # The same for an open text part, fed through its sink (a plain fold's is
    # its list's append) or through text(): a long answer costs about its
    # length while it streams, not a pointer per piece.
    acc = Accumulator(emit=emit)
    part = acc.text(0, "<")
    pieces = _pieces()
    expected = "<" + "".join(pieces)
    feed = acc.sink(part) if through == "sink" else partial(acc.text, 0)
    held = _held_after_reads(acc, feed, pieces)
    assert held < 2 * len(expected), held  # blocks, and at most one read's pieces
    assert part.text == expected
    acc.text(0, ">")  # still the open part, after a join
    acc.end_part(0, PartKind.TEXT)
    acc.drain()  # an ended part is no longer checked at each read
    assert [p.text for p in acc.choice(0).parts(TEXT)] == [expected + ">"]


class _CountingSet(set[Any]):
    # A set that counts the members iterated over.
    visits = 0

    def __iter__(self) -> Iterator[Any]:
        for member in super().__iter__():
            self.visits += 1
            yield member


def test_reads_check_many_open_stores_a_few_at_a_time() -> None:
    # Each read checks the open stores for a block; with many of them open
    # (a choice each) a read checks a bounded number on average, so a stream
    # of many choices in small reads stays linear, and a long part among them
    # still gets its blocks.
    acc = Accumulator(emit=False)
    parts = [acc.text(index, "x") for index in range(6_400)]
    counting = acc._appending = _CountingSet(acc._appending)
    sink = acc.sink(parts[0])
    for _ in range(1_000):
        for _ in range(10):
            sink("ab")
        acc.drain()
    assert counting.visits <= 1_000 * 64 + 6_400, counting.visits
    assert cast(Any, parts[0])._blocks >= 2  # its 10,000 pieces joined into blocks
    assert parts[0].text == "x" + "ab" * 10_000


def test_with_events_the_arguments_sink_is_the_call() -> None:
    acc = Accumulator(emit=True)
    acc.tool_call(0, "a", id="a", name="f", arguments="{")
    acc.arguments_sink(0, "a")("}")
    assert acc.choice(0).tool_calls[0].arguments == "{}"
    assert [e.type for e in acc.drain()].count("tool_call.arguments.delta") == 2


def test_the_epoch_moves_when_a_call_gets_its_type_late() -> None:
    acc = Accumulator(emit=False, tool_types={"f": Answer})
    acc.tool_call(0, "a", id="a", arguments='{"a"')
    acc.arguments_sink(0, "a")(": 1")  # no name yet: a plain call
    epoch = acc.epoch
    acc.tool_call(0, "a", name="f")  # now typed: its pieces must reach its parser
    assert acc.epoch != epoch
    acc.arguments_sink(0, "a")("}")
    assert acc.choice(0).tool_calls[0].partial_output() == Answer(a=1)


# With events, a sink appends and builds the delta event itself (no call of
# ``text`` or ``tool_arguments``): its events, text and versions must be the
# call's, drained between pieces or not.
OPTIONS = [
    pytest.param({}, id="events"),
    pytest.param({"parse_content": True}, id="parse_content"),
    pytest.param({"parse_arguments": True}, id="parse_arguments"),
    # Typed: the sink feeds the type's parser and reports its completed values.
    pytest.param({"output_type": Answer, "tool_types": {"f": Answer}}, id="typed"),
    pytest.param(
        {
            "output_type": Answer,
            "tool_types": {"f": Answer},
            "parse_content": True,
            "parse_arguments": True,
        },
        id="typed-parsed",
    ),
]
PIECES = ['{"a"', ": 1", "}", " "]


def _fold_part(acc: Accumulator, kind: PartKind, use_sink: bool) -> list[Event]:
    push = acc.text if kind is TEXT else acc.reasoning if kind is REASONING else acc.refusal
    part = push(2, "", owner="block")
    sink = acc.sink(part) if use_sink else lambda delta: push(2, delta, owner="block")
    epoch = acc.epoch
    events: list[Event] = [
        *acc.drain()
    ]  # a copy: drain() hands over its list, the sink outlives it
    for i, piece in enumerate(PIECES):
        sink(piece)
        if i % 2:
            events += acc.drain()
    assert acc.epoch == epoch
    acc.end_part(2, kind)
    return events + acc.drain()


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("kind", [TEXT, REASONING, REFUSAL], ids=lambda kind: kind.value)
def test_with_events_a_sink_folds_a_delta_as_the_call(
    kind: PartKind, options: dict[str, Any]
) -> None:
    calls, sinks = Accumulator(**options), Accumulator(**options)
    expected = _fold_part(calls, kind, use_sink=False)
    assert _fold_part(sinks, kind, use_sink=True) == expected
    assert [type(e) for e in expected].count(type(expected[0])) == len(PIECES) + 1
    (part,) = sinks.choice(2).parts(kind)
    assert (part.text, part.version) == ('{"a": 1} ', calls.choice(2).parts(kind)[0].version)


def _fold_call(acc: Accumulator, pieces: list[str], use_sink: bool) -> list[Event]:
    acc.tool_call(1, "k", name="f", kind="function")  # no id yet
    sink = (
        acc.arguments_sink(1, "k") if use_sink else lambda delta: acc.tool_arguments(1, "k", delta)
    )
    epoch = acc.epoch
    events: list[Event] = [*acc.drain()]  # a copy: drain() hands over its list
    for i, piece in enumerate(pieces):
        sink(piece)
        if i == 1:
            acc.tool_call(1, "k", id="call_1")  # the id comes late: the next events carry it
        if i % 3 == 0:
            events += acc.drain()
    assert acc.epoch == epoch
    acc.end_tool_call(1, "k")
    return events + acc.drain()


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize(
    "pieces",
    [
        pytest.param(PIECES, id="a-few"),
        # Past _BLOCK pieces: the call joins them into a block as it goes.
        pytest.param(['{"a": "', *["x"] * 5000, '"}'], id="many"),
        # Invalid from the third piece: the parser stops, the pieces still come.
        pytest.param(['{"a"', ": 1", "]", ' "b"', "}"], id="invalid"),
    ],
)
def test_with_events_an_arguments_sink_folds_a_piece_as_the_call(
    pieces: list[str], options: dict[str, Any]
) -> None:
    calls, sinks = Accumulator(**options), Accumulator(**options)
    expected = _fold_call(calls, pieces, use_sink=False)
    assert _fold_call(sinks, pieces, use_sink=True) == expected
    deltas = [e for e in expected if isinstance(e, ToolCallArgumentsDelta)]
    assert [e.id for e in deltas[:3]] == [None, None, "call_1"]
    (call,) = sinks.choice(1).tool_calls
    (called,) = calls.choice(1).tool_calls
    assert (call.arguments, call.version) == ("".join(pieces), called.version)
    assert _partial_or_error(call) == _partial_or_error(called)


def _partial_or_error(call: Any) -> Any:
    try:
        return call.partial_arguments()
    except PartialJSONError as exc:  # invalid arguments: the same error either way
        return str(exc)
