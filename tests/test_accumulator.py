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
