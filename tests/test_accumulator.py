"""``Accumulator.sink``: the shortcut that the dialects' typed paths keep to
fold the next delta of a part (in a plain fold, an append without a call). It
must fold a delta exactly as ``text`` or ``reasoning`` would, and ``epoch``
must move whenever it would not."""

from __future__ import annotations

import msgspec

from streamfold.events import TextDelta
from streamfold.fold import REASONING, TEXT, Accumulator


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
