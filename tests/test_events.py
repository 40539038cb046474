"""The event model: what each event carries and when (docs/semantics.md). The
order contract on every recording is the conformance suite's (``test_conformance.py``)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

import streamfold
from streamfold import events as ev
from streamfold.fold import PartKind
from streamfold.partial_json import JSONStringDelta

from .corpus import ROOT, check_order

EXAMPLES = sorted((ROOT / "examples").glob("*.sse"))


def test_each_part_kind_names_its_delta_and_done_events() -> None:
    # The kinds are the accumulator's own: no event carries one, each names a pair.
    tags = {cls.__struct_config__.tag for cls in (*ev.Event.__args__,)}  # type: ignore[attr-defined]
    for kind in PartKind:
        assert {f"{kind.value}.delta", f"{kind.value}.done"} <= tags
        assert kind == kind.value and hash(kind) == hash(kind.value)


def test_truncated_stream_yields_incomplete_dones_then_raises() -> None:
    stream = (
        b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c",'
        b'"function":{"name":"f","arguments":"{\\"a\\":"}}]}}]}\n\n'
    )
    seen: list[ev.Event] = []
    with pytest.raises(streamfold.IncompleteStreamError):
        for event in streamfold.iter_events(stream):
            seen.append(event)
    kinds = [e.type for e in seen]
    assert kinds[-3:] == ["text.done", "tool_call.done", "error"]
    text_done, call_done = seen[-3], seen[-2]
    assert isinstance(text_done, ev.TextDone) and not text_done.complete
    assert isinstance(call_done, ev.ToolCallDone) and not call_done.complete


def test_tool_call_done_never_before_its_last_delta_even_when_json_parses() -> None:
    # '{"a": 1}' parses after the 2nd delta, but the 3rd delta still belongs to it.
    pieces = ['{"a": 1', "}", " "]
    chunks = [
        b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c",'
        b'"function":{"name":"f","arguments":""}}]}}]}\n\n'
    ]
    for piece in pieces:
        body = msgspec.json.encode(
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]},
                    }
                ]
            }
        )
        chunks.append(b"data: " + body + b"\n\n")
    chunks.append(b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n')
    kinds = [e.type for e in streamfold.iter_events(b"".join(chunks))]
    assert kinds.index("tool_call.done") > max(
        i for i, k in enumerate(kinds) if k == "tool_call.arguments.delta"
    )


def test_provider_error_is_yielded_then_raised_and_nothing_after() -> None:
    stream = (
        b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
        b'data: {"error":{"message":"boom","type":"server_error"}}\n\n'
        b'data: {"choices":[{"index":0,"delta":{"content":"b"}}]}\n\n'
    )
    seen: list[ev.Event] = []
    with pytest.raises(streamfold.ProviderError):
        for event in streamfold.iter_events(stream):
            seen.append(event)
    assert isinstance(seen[-1], ev.ErrorOccurred)
    assert seen[-1].error.code == "server_error"
    assert not any(isinstance(e, ev.TextDelta) and e.delta == "b" for e in seen)


def test_parsed_arguments_on_demand_only() -> None:
    data = EXAMPLES[0].read_bytes()
    plain = [e for e in streamfold.iter_events(data) if e.type == "tool_call.arguments.delta"]
    assert plain and all(e.updates == () for e in plain)  # type: ignore[union-attr]
    parsed = [
        e
        for e in streamfold.iter_events(data, parse_arguments=True)
        if e.type == "tool_call.arguments.delta"
    ]
    assert any(e.updates for e in parsed)  # type: ignore[union-attr]
    done = [e for e in streamfold.iter_events(data) if isinstance(e, ev.ToolCallDone)]
    assert [d.value for d in done] == [
        {"city": "Paris", "unit": "c"},
        {"city": "Tokyo", "unit": "c"},
    ]


def test_invalid_arguments_give_a_typed_parse_error() -> None:
    stream = (
        b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c",'
        b'"function":{"name":"f","arguments":"{\\"a\\": tru"}}]}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n'
    )
    for parse in (False, True):
        done = [
            e
            for e in streamfold.iter_events(stream, parse_arguments=parse)
            if isinstance(e, ev.ToolCallDone)
        ]
        assert len(done) == 1 and done[0].complete
        assert done[0].parse_error is not None and done[0].value is None
        assert done[0].parse_error.position is not None


def test_snapshot_mid_stream() -> None:
    data = EXAMPLES[0].read_bytes()
    parser = streamfold.StreamParser()
    half = data.index(b"call_tokyo")
    parser.feed(data[:half])
    snap = parser.snapshot
    assert snap.unified.text == "Checking both cities now."
    assert [c.id for c in snap.unified.tool_calls] == ["call_paris"]
    assert not snap.complete
    parser.feed(data[half:])
    parser.close()
    assert len(parser.final().unified.tool_calls) == 2


def test_json_mode_content_parsed_on_demand() -> None:
    pieces = ['{"ci', 'ty": "Par', 'is", "temp', '": 21}']
    body = b"".join(
        b"data: "
        + msgspec.json.encode({"choices": [{"index": 0, "delta": {"content": piece}}]})
        + b"\n\n"
        for piece in pieces
    )
    body += b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    plain = list(streamfold.iter_events(body))
    assert all(e.updates == () for e in plain if isinstance(e, ev.TextDelta))
    parsed = list(streamfold.iter_events(body, parse_content=True))
    strings = [
        u.fragment
        for e in parsed
        if isinstance(e, ev.TextDelta)
        for u in e.updates
        if isinstance(u, JSONStringDelta) and u.path == ("city",)
    ]
    assert "".join(strings) == "Paris"
    (done,) = [e for e in parsed if isinstance(e, ev.TextDone)]
    assert done.value == {"city": "Paris", "temp": 21} and done.parse_error is None
    bad = body.replace(b'21}"', b'21"')
    (bad_done,) = [
        e for e in streamfold.iter_events(bad, parse_content=True) if e.type == "text.done"
    ]
    assert isinstance(bad_done, ev.TextDone) and bad_done.parse_error is not None


@pytest.mark.parametrize("parse", [False, True])
def test_partial_arguments_on_demand(parse: bool) -> None:
    data = EXAMPLES[0].read_bytes()
    parser = streamfold.StreamParser(parse_arguments=parse)
    cut_at = data.index(b'ris\\", \\"un')  # inside the first call's arguments
    parser.feed(data[:cut_at])
    assert parser.partial_arguments(0) == {"city": "Pa"}
    assert parser.partial_arguments(5) is None
    parser.feed(data[cut_at:])
    parser.close()
    assert parser.partial_arguments(1) == {"city": "Tokyo", "unit": "c"}


def _tool_piece(index: int, arguments: str, **call: Any) -> bytes:
    body = {"index": index, "function": {"arguments": arguments, **call.pop("function", {})}}
    body.update(call)
    chunk = {"choices": [{"index": 0, "delta": {"tool_calls": [body]}}]}
    return b"data: " + msgspec.json.encode(chunk) + b"\n\n"


@pytest.mark.parametrize("parse", [False, True])
def test_interleaved_tool_calls_end_only_after_their_last_delta(parse: bool) -> None:
    stream = b"".join(
        [
            _tool_piece(0, "", id="a", function={"name": "f"}),
            _tool_piece(0, '{"x": '),
            _tool_piece(1, "", id="b", function={"name": "g"}),
            _tool_piece(1, '{"y": 2'),
            _tool_piece(0, "1}"),  # call 0 goes on after call 1 started
            _tool_piece(1, "}"),
            b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n',
        ]
    )
    events = list(streamfold.iter_events(stream, parse_arguments=parse))
    check_order(events, failed=False)
    done = [e for e in events if isinstance(e, ev.ToolCallDone)]
    assert [(d.id, d.value, d.complete) for d in done] == [
        ("a", {"x": 1}, True),
        ("b", {"y": 2}, True),
    ]


def test_sequential_tool_calls_end_when_the_next_starts() -> None:
    stream = b"".join(
        [
            _tool_piece(0, '{"x": 1}', id="a", function={"name": "f"}),
            _tool_piece(1, "{}", id="b", function={"name": "g"}),
            b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n',
        ]
    )
    kinds = [(e.type, getattr(e, "id", None)) for e in streamfold.iter_events(stream)]
    assert kinds.index(("tool_call.done", "a")) < kinds.index(("tool_call.started", "b"))


def test_a_call_ended_by_the_next_one_is_complete_with_events_on_or_off() -> None:
    # A call whose arguments are whole JSON ends when the next call starts,
    # whether events are built or not (the plain fold used to keep it open, so
    # a stream failing later reported it incomplete); a piece for it after
    # that is warned about either way.
    def chunk(calls: list[dict[str, Any]]) -> bytes:
        delta = {"tool_calls": calls}
        line = {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        return b"data: " + msgspec.json.encode(line) + b"\n\n"

    body = (
        chunk([{"index": 0, "id": "a", "function": {"name": "f", "arguments": '{"x": 1}'}}])
        + chunk([{"index": 1, "id": "b", "function": {"name": "g", "arguments": '{"y"'}}])
        + chunk([{"index": 0, "function": {"arguments": "1"}}])
        + b"data: {not json}\n\n"
    )
    folds = []
    for events in (True, False):
        parser = streamfold.StreamParser(events=events)
        parser.feed(body)
        parser.close()
        assert isinstance(parser.error, streamfold.ProtocolError)
        folds.append((parser.snapshot.unified.tool_calls, parser.snapshot.warnings))
    assert folds[0] == folds[1]
    calls, warnings = folds[0]
    assert [c.complete for c in calls] == [True, False]
    assert any("after it was reported done" in w for w in warnings)
