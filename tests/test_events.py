"""The event model and its order contract (docs/semantics.md), on every stream."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streamfold
from streamfold import events as ev
from streamfold.fold import Accumulator, PartKind
from streamfold.partial_json import JSONStringDelta

from .corpus import (
    CORPUS,
    FIXTURES,
    ROOT,
    corpus_files,
    fold_pieces,
    fold_raising_only_our_errors,
    mutate,
)

EXAMPLES = sorted((ROOT / "examples").glob("*.sse"))
# The streamed halves of the shared stream/non-stream pairs: every dialect again.
PAIRS = ROOT.parent / "shared" / "pairs"
#: The "other" recordings a dialect reads, by name prefix: the dialect that must.
_OTHER_DIALECTS = {
    "amazon-bedrock__other__converse-stream-": "bedrock-converse",
    "cohere__other__v2-chat-": "cohere-chat",
    "google__other__interactions-": "gemini-interactions",
    "openai__other__legacy-completions-": "openai-completions",
}


def _read_by_a_dialect(path: Path) -> bool:
    # The recordings of APIs without their own corpus name ("other"): those a
    # dialect reads (Bedrock ConverseStream, Cohere, the Interactions API,
    # legacy Completions).
    return path.name.split("__")[1] != "other" or path.stem.startswith(tuple(_OTHER_DIALECTS))


def all_streams() -> list[Any]:
    paths = list(EXAMPLES) + sorted(FIXTURES.glob("**/*.sse"))
    if CORPUS.is_dir():
        paths += [p for p in sorted(CORPUS.glob("*.sse")) if _read_by_a_dialect(p)]
    if PAIRS.is_dir():
        paths += [p for p in sorted(PAIRS.glob("*.sse"))]
    return [pytest.param(p, id=f"{p.parent.name}-{p.stem}") for p in paths]


_DELTA_PART = {
    "text.delta": "text",
    "reasoning.delta": "reasoning",
    "refusal.delta": "refusal",
}
_DONE_PART = {"text.done": "text", "reasoning.done": "reasoning", "refusal.done": "refusal"}


def check_order(
    events: list[ev.Event], failed: bool, finished_at: dict[int, int] | None = None
) -> None:
    """Assert the order contract of docs/semantics.md. ``finished_at`` maps a
    choice to the position in ``events`` where its finish reason arrived (see
    ``FinishProbe``): no delta nor call of that choice may follow it."""
    open_parts: set[tuple[int, str]] = set()
    parts_text: dict[tuple[int, str], list[str]] = defaultdict(list)
    calls: dict[tuple[int, int], str] = {}  # (choice, index) -> "open" | "done"
    call_args: dict[tuple[int, int], list[str]] = defaultdict(list)
    finished: set[int] = set()
    ended = False
    kinds = [e.type for e in events]
    if "response.started" in kinds:
        assert kinds.count("response.started") == 1
    for position, event in enumerate(events):
        assert not ended, f"event after the terminal error: {event}"
        kind = event.type
        choice = getattr(event, "choice", 0)
        if (
            kind in _AFTER_FINISH_NEVER
            and finished_at
            and position >= finished_at.get(choice, position + 1)
        ):
            raise AssertionError(f"#{position} {kind} of choice {choice} after its finish reason")
        if kind in _DELTA_PART:
            key = (choice, _DELTA_PART[kind])
            assert choice not in finished
            open_parts.add(key)
            parts_text[key].append(event.delta)  # type: ignore[union-attr]
        elif kind in _DONE_PART:
            key = (choice, _DONE_PART[kind])
            # A part may have no delta at all (redacted or signed-only thinking).
            assert key in open_parts or event.text == "", f"#{position} {kind} out of place"  # type: ignore[union-attr]
            assert choice not in finished
            open_parts.discard(key)
            assert event.text == "".join(parts_text.pop(key, []))  # type: ignore[union-attr]
            if not failed:
                assert event.complete  # type: ignore[union-attr]
        elif kind == "tool_call.started":
            call_key: tuple[int, int] = (choice, event.index)  # type: ignore[union-attr, assignment]
            assert call_key not in calls, f"tool call {call_key} started twice"
            calls[call_key] = "open"
        elif kind == "tool_call.arguments.delta":
            call_key = (choice, event.index)  # type: ignore[union-attr, assignment]
            assert calls.get(call_key) == "open", f"#{position} arguments for a call not open"
            call_args[call_key].append(event.delta)  # type: ignore[union-attr]
        elif kind == "tool_call.done":
            call_key = (choice, event.index)  # type: ignore[union-attr, assignment]
            assert calls.get(call_key) == "open", f"#{position} tool_call.done twice or unstarted"
            calls[call_key] = "done"
            args = "".join(call_args.pop(call_key, []))
            assert isinstance(event, ev.ToolCallDone)
            if args:
                assert event.arguments == args, "done arguments differ from the deltas"
        elif kind == "response.finished":
            assert not [p for p in open_parts if p[0] == choice], "finished with parts open"
            assert not [k for k, v in calls.items() if k[0] == choice and v == "open"]
            finished.add(choice)
        elif kind == "error":
            ended = True
    if not failed:
        assert not open_parts, f"parts never done: {open_parts}"
        assert all(v == "done" for v in calls.values())
        assert "response.finished" in kinds
    else:
        assert kinds[-1] == "error"


# Events that start or extend a part or a call: none may follow the choice's finish.
_AFTER_FINISH_NEVER = frozenset({*_DELTA_PART, "tool_call.started", "tool_call.arguments.delta"})


class FinishProbe(Accumulator):
    """The accumulator, noting at which event each choice's finish reason arrived."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.finished_at: dict[int, int] = {}
        self.handed_over = 0

    def drain(self) -> list[ev.Event]:
        out = super().drain()
        self.handed_over += len(out)
        return out

    def finish(self, index: int, raw: str, unified: str, close: bool = True) -> None:
        self.finished_at.setdefault(index, self.handed_over + len(self._out))
        super().finish(index, raw, unified, close)

    def restart(self) -> None:
        super().restart()  # a spliced retry: the fold, and its choices, start over
        self.finished_at.clear()


def fold_with_finishes(data: bytes) -> tuple[list[ev.Event], BaseException | None, dict[int, int]]:
    parser = streamfold.StreamParser(parse_arguments=True)
    probe = parser.acc = FinishProbe(parse_arguments=True)
    events = [*parser.feed(data), *parser.close()]
    return events, parser.error, probe.finished_at


@pytest.mark.parametrize("path", all_streams())
def test_order_contract(path: Path) -> None:
    events, error, finished_at = fold_with_finishes(path.read_bytes())
    check_order(events, failed=error is not None, finished_at=finished_at)


@pytest.mark.parametrize("path", all_streams())
def test_every_event_serialises_to_json_and_back(path: Path) -> None:
    events, _, _ = fold_pieces([path.read_bytes()], parse_arguments=True)
    decoder = msgspec.json.Decoder(ev.Event)
    for event in events:
        encoded = ev.to_json(event)
        assert decoder.decode(encoded).type == event.type


@pytest.mark.parametrize("path", all_streams())
def test_every_result_failed_or_not_encodes_to_json_and_back(path: Path) -> None:
    # A result is data: a failed one carries its error as an ErrorInfo, never the
    # exception (whose .partial is the result), so it encodes like any other.
    _, result, error = fold_pieces([path.read_bytes()])
    assert result is not None
    decoded = msgspec.json.decode(msgspec.json.encode(result), type=streamfold.Result)
    assert decoded == result
    if error is not None:
        assert isinstance(error, streamfold.StreamfoldError)
        assert result.error == error.info == decoded.error
        assert error.partial is not None and error.partial.error == error.info


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


def test_sync_and_async_give_the_same_events() -> None:
    data = EXAMPLES[0].read_bytes()
    sync = list(streamfold.iter_events(data, parse_arguments=True))

    async def collect() -> list[ev.Event]:
        async def source() -> Any:
            for i in range(0, len(data), 7):
                yield data[i : i + 7]

        return [e async for e in streamfold.aiter_events(source(), parse_arguments=True)]

    assert asyncio.run(collect()) == sync
    assert asyncio.run(streamfold.afold(data)) == streamfold.fold(data)


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


_OTHER = (
    [pytest.param(p, id=p.stem) for p in sorted(CORPUS.glob("*__other__*.sse"))]
    if CORPUS.is_dir()
    else [pytest.param(None, marks=pytest.mark.skip(reason="the shared corpus is absent"))]
)


@pytest.mark.parametrize("path", _OTHER)
def test_apis_without_a_corpus_name_fold_or_fail_with_a_typed_error(path: Path) -> None:
    # Bedrock ConverseStream, Cohere v2, Gemini Interactions, legacy Completions
    # fold complete by their dialect; an API no dialect claims gets an error
    # that says so instead of folding to nothing.
    _, result, error = fold_pieces([path.read_bytes()])
    expected = next((d for p, d in _OTHER_DIALECTS.items() if path.stem.startswith(p)), None)
    assert result is not None
    if expected is not None:
        assert error is None and result.complete and result.dialect == expected
        assert result.text or result.unified.tool_calls
        return
    assert isinstance(error, streamfold.ProtocolError)
    assert "matches no known dialect" in str(error)
    assert not result.complete


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


_ANTHROPIC_GEMINI = (
    [p.values[0] for api in ("anthropic", "gemini") for p in corpus_files(api) if p.values[0]]
    + sorted((FIXTURES / "anthropic").glob("*.sse"))
    + sorted((FIXTURES / "gemini").glob("*.sse"))
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_anthropic_and_gemini_streams_raise_only_streamfold_errors(
    data: st.DataObject,
) -> None:
    path = data.draw(st.sampled_from(_ANTHROPIC_GEMINI))
    fold_raising_only_our_errors(mutate(data, path.read_bytes()))


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
