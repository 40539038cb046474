"""Typed output through the whole parser: ``output_type=`` and ``tool_types=``.

Random instances of the nested shape of ``test_structured`` (as a msgspec
Struct, a dataclass, a TypedDict, a pydantic model and a JSON Schema) are
serialised into a chat JSON-mode answer, a chat tool call and an Anthropic tool
call, the JSON split into deltas at random points and the bytes fed in random
chunks. After every chunk the partial output is a prefix view of the final
value; every ``output.updated`` event carries the value that ends up at its
path; the final output (on ``text.done`` / ``tool_call.done`` and in the
result) equals what the library decodes. A document with one wrong value
gives the typed error with its path, a cut answer never validates.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

import streamfold
from streamfold import StreamParser
from streamfold.errors import IncompleteStreamError, TruncatedResponseError, UsageError
from streamfold.events import OutputUpdated, TextDelta, TextDone, ToolCallDone, to_json
from streamfold.fold import Accumulator, PartKind
from streamfold.structured import UNSET, OutputValidationError, UnsupportedSchemaError

from .test_structured import (
    KIND_PARAMS,
    Kind,
    _leaf_paths,
    _order,
    _replace,
    _serialised,
    _settings,
    _wrong,
    prefix_of,
    same,
    split_at,
    value_at,
)

TOOL = "make_order"


def _sse(payloads: list[Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(p).encode() + b"\n\n" for p in payloads)


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def chat_answer(pieces: list[str], finish: str = "stop") -> bytes:
    """A chat JSON-mode answer streamed in ``pieces``."""
    chunks = [_chunk({"role": "assistant", "content": ""})]
    chunks += [_chunk({"content": piece}) for piece in pieces]
    return _sse([*chunks, _chunk({}, finish)]) + b"data: [DONE]\n\n"


def chat_tool_call(pieces: list[str], finish: str = "tool_calls") -> bytes:
    """A chat tool call to ``TOOL`` whose arguments stream in ``pieces``."""
    start = {"index": 0, "id": "call_1", "type": "function"}
    chunks = [
        _chunk(
            {
                "role": "assistant",
                "tool_calls": [{**start, "function": {"name": TOOL, "arguments": ""}}],
            }
        )
    ]
    chunks += [
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}) for piece in pieces
    ]
    return _sse([*chunks, _chunk({}, finish)]) + b"data: [DONE]\n\n"


def anthropic_tool_call(pieces: list[str], stop: str = "tool_use") -> bytes:
    """An Anthropic tool_use block whose input streams in ``pieces``."""
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": []}
    events = [
        ("message_start", {"type": "message_start", "message": message}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "toolu_1", "name": TOOL, "input": {}},
            },
        ),
        *(
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": piece},
                },
            )
            for piece in pieces
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return b"".join(
        f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events
    )


#: How each stream carries the JSON: its builder, and whether it is a tool call.
STREAMS: list[Any] = [
    pytest.param(chat_answer, False, id="chat-json-mode"),
    pytest.param(chat_tool_call, True, id="chat-tool-call"),
    pytest.param(anthropic_tool_call, True, id="anthropic-tool-call"),
]


def typed_parser(kind: Kind, tool: bool, **options: Any) -> StreamParser:
    if tool:
        return StreamParser(tool_types={TOOL: kind.output_type}, **options)
    return StreamParser(output_type=kind.output_type, **options)


def partial_of(parser: StreamParser, tool: bool) -> Any:
    if not tool:
        return parser.partial_output()
    partial = parser.partial_tool_output(0)
    return UNSET if partial is None else partial  # None: the call has not started


def final_of(result: streamfold.Result, tool: bool) -> tuple[Any, OutputValidationError | None]:
    if tool:
        call = result.unified.tool_calls[0]
        return call.output, call.output_error
    return result.output, result.output_error


def feed(parser: StreamParser, data: bytes, cuts: list[int]) -> list[Any]:
    events: list[Any] = []
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for a, b in itertools.pairwise(points):
        events.extend(parser.feed(data[a:b]))
    events.extend(parser.close())
    return events


# -- properties --------------------------------------------------------------------------------


@pytest.mark.parametrize(("build", "tool"), STREAMS)
@pytest.mark.parametrize("kind", KIND_PARAMS)
@_settings
@given(
    data=st.data(),
    cuts=st.lists(st.integers(min_value=0), max_size=30),
    byte_cuts=st.lists(st.integers(min_value=0), max_size=30),
)
def test_partial_outputs_are_prefix_views_and_the_final_output_is_the_libraries(
    build: Callable[[list[str]], bytes],
    tool: bool,
    kind: Kind,
    data: st.DataObject,
    cuts: list[int],
    byte_cuts: list[int],
) -> None:
    document = data.draw(_order)
    text = data.draw(_serialised(document))
    expected = kind.reference(text)
    stream = build(split_at(text, cuts))
    parser = typed_parser(kind, tool)
    points = sorted({0, len(stream), *(c % (len(stream) + 1) for c in byte_cuts)})
    events: list[Any] = []
    for a, b in itertools.pairwise(points):
        events.extend(parser.feed(stream[a:b]))
        assert prefix_of(partial_of(parser, tool), expected)
    events.extend(parser.close())
    updates = [e for e in events if isinstance(e, OutputUpdated)]
    assert updates and updates[-1].path == ()
    assert all(e.index == (0 if tool else None) for e in updates)
    for update in updates:
        assert same(update.value, value_at(expected, update.path)), update.path
    done = next(e for e in events if isinstance(e, ToolCallDone if tool else TextDone))
    assert same(done.output, expected) and done.output_error is None
    result = parser.final(checked=True)
    output, error = final_of(result, tool)
    assert same(output, expected) and error is None
    assert partial_of(parser, tool) is output
    # Typed values stay out of the JSON: the result and every event still encode.
    assert msgspec.json.decode(msgspec.json.encode(result))["unified"] == result.unified.to_dict()
    for event in events:
        to_json(event)
    # Byte-split invariance holds for the typed events too.
    whole = typed_parser(kind, tool)
    assert [to_json(e) for e in feed(whole, stream, [])] == [to_json(e) for e in events]


@pytest.mark.parametrize(("build", "tool"), STREAMS)
@pytest.mark.parametrize("kind", KIND_PARAMS)
@_settings
@given(data=st.data(), cuts=st.lists(st.integers(min_value=0), max_size=20))
def test_a_wrong_value_gives_the_typed_error_with_its_path(
    build: Callable[[list[str]], bytes],
    tool: bool,
    kind: Kind,
    data: st.DataObject,
    cuts: list[int],
) -> None:
    document = data.draw(_order)
    paths = [p for p in _leaf_paths(document) if not (p[0] == "meta" and len(p) == 1)]
    path = data.draw(st.sampled_from(paths))
    wrong = _replace(document, path, _wrong(value_at(document, path)))
    text = data.draw(_serialised(wrong))
    parser = typed_parser(kind, tool, parse_content=True, parse_arguments=True)
    events = feed(parser, build(split_at(text, cuts)), [])
    done = next(e for e in events if isinstance(e, ToolCallDone if tool else TextDone))
    assert done.output is UNSET
    error = done.output_error
    assert isinstance(error, OutputValidationError)
    assert (error.kind, error.path) == ("value", path), error
    # The raw text when it was found (read from the accumulator's store), and all of it.
    assert error.text and text.startswith(error.text)
    assert (done.arguments if isinstance(done, ToolCallDone) else done.text) == text
    assert prefix_of(error.partial_value, kind.reference(json.dumps(document)))
    # The JSON is still followed without the type: its value and updates stay.
    assert done.value == json.loads(text) and done.parse_error is None
    result = parser.final()
    output, final_error = final_of(result, tool)
    assert output is UNSET and final_error is error
    if not tool:
        assert result.text == text


@pytest.mark.parametrize(("build", "tool"), STREAMS)
@pytest.mark.parametrize("kind", KIND_PARAMS)
@_settings
@given(data=st.data())
def test_a_length_stopped_answer_is_never_validated(
    build: Callable[..., bytes], tool: bool, kind: Kind, data: st.DataObject
) -> None:
    # Even a whole JSON value: the provider said the answer was cut by the token limit.
    text = data.draw(_serialised(data.draw(_order)))
    stop = "max_tokens" if build is anthropic_tool_call else "length"
    parser = typed_parser(kind, tool)
    events = feed(parser, build([text], stop), [])
    with pytest.raises(TruncatedResponseError) as caught:
        parser.final(checked=True)
    partial = caught.value.partial
    assert isinstance(partial, streamfold.Result)
    output, error = final_of(partial, tool)
    assert output is UNSET
    assert isinstance(error, OutputValidationError) and error.kind == "incomplete"
    assert prefix_of(error.partial_value, kind.reference(text))
    if not tool:  # chat sends the finish reason before the part ends: its event knows too
        done = next(e for e in events if isinstance(e, TextDone))
        assert done.output is UNSET and done.output_error is not None


@pytest.mark.parametrize(("build", "tool"), STREAMS)
@pytest.mark.parametrize("kind", KIND_PARAMS[:1] + KIND_PARAMS[3:4])
@_settings
@given(data=st.data())
def test_a_cut_stream_is_never_validated(
    build: Callable[[list[str]], bytes], tool: bool, kind: Kind, data: st.DataObject
) -> None:
    text = data.draw(_serialised(data.draw(_order)))
    stream = build(split_at(text, [len(text) // 2]))
    cut = data.draw(st.integers(0, len(stream) - 40))
    parser = typed_parser(kind, tool)
    parser.feed(stream[:cut])
    parser.close()
    with pytest.raises(IncompleteStreamError) as caught:
        parser.final()
    partial = caught.value.partial
    assert isinstance(partial, streamfold.Result)
    calls = partial.unified.tool_calls
    output, error = final_of(partial, tool) if calls or not tool else (UNSET, None)
    if tool and calls and calls[0].complete:
        # Anthropic ended the block before the cut: the call is whole, and so is its value.
        assert same(output, kind.reference(text))
        return
    assert output is UNSET
    assert error is None or error.kind == "incomplete"


# -- the surface -------------------------------------------------------------------------------


class Weather(msgspec.Struct):
    city: str
    temperature: float


WEATHER = '{"city": "Paris", "temperature": 21.5}'


def test_one_parser_follows_a_typed_part() -> None:
    # With parse_content the JSON updates come from the typed parser itself.
    parser = StreamParser(output_type=Weather, parse_content=True)
    events = feed(parser, chat_answer(split_at(WEATHER, [3, 9, 20])), [])
    updates = [u for e in events if isinstance(e, TextDelta) for u in e.updates]
    untyped = feed(StreamParser(parse_content=True), chat_answer(split_at(WEATHER, [3, 9, 20])), [])
    assert updates == [u for e in untyped if isinstance(e, TextDelta) for u in e.updates]
    done = next(e for e in events if isinstance(e, TextDone))
    assert done.value == json.loads(WEATHER) and done.output == Weather("Paris", 21.5)
    assert [e.path for e in events if isinstance(e, OutputUpdated)] == [
        ("city",),
        ("temperature",),
        (),
    ]


def test_a_fold_without_events_still_validates() -> None:
    data = chat_answer([WEATHER])
    result = streamfold.fold(data, output_type=Weather)
    assert result.output == Weather("Paris", 21.5) and result.output_error is None
    assert streamfold.fold(data).output is UNSET  # no type, no output


def test_partial_reads_find_each_call_by_its_event_index() -> None:
    # Two choices, each with two parallel calls whose pieces interleave: a read
    # names a call by its event index (numbered on across a choice's calls) and
    # its choice; a call that does not exist reads as None.
    def call(choice: int, index: int, **fields: Any) -> dict[str, Any]:
        chunk = _chunk({"tool_calls": [{"index": index, **fields}]})
        chunk["choices"][0]["index"] = choice
        return chunk

    def start(choice: int, index: int, name: str) -> dict[str, Any]:
        return call(
            choice,
            index,
            id=f"c{choice}{index}",
            type="function",
            function={"name": name, "arguments": ""},
        )

    def piece(choice: int, index: int, text: str) -> dict[str, Any]:
        return call(choice, index, function={"arguments": text})

    chunks = [start(c, i, TOOL if i == 0 else "other_tool") for c in (0, 1) for i in (0, 1)]
    chunks += [piece(c, i, '{"city": "') for c in (0, 1) for i in (0, 1)]
    chunks += [piece(c, i, f"P{c}{i}") for c in (0, 1) for i in (1, 0)]
    parser = StreamParser(tool_types={TOOL: Weather, "other_tool": Weather})
    parser.feed(_sse(chunks))
    for c in (0, 1):
        for i in (0, 1):
            partial = parser.partial_tool_output(i, choice=c)
            assert partial.city == f"P{c}{i}" and partial.temperature is UNSET
            assert parser.partial_arguments(i, choice=c) == {"city": f"P{c}{i}"}
    assert parser.partial_tool_output(2) is None
    assert parser.partial_tool_output(0, choice=2) is None
    assert parser.partial_arguments(2, choice=1) is None


def test_untyped_tools_and_answers_have_no_output() -> None:
    parser = StreamParser(tool_types={"other_tool": Weather})
    feed(parser, chat_tool_call([WEATHER]), [])
    call = parser.final().unified.tool_calls[0]
    assert call.output is UNSET and call.output_error is None
    assert parser.partial_tool_output(0) is UNSET
    assert parser.partial_tool_output(5) is None
    assert parser.partial_output() is UNSET


def test_empty_tool_arguments_are_an_empty_object() -> None:
    class NoArguments(msgspec.Struct):
        pass

    parser = StreamParser(tool_types={TOOL: NoArguments})
    feed(parser, chat_tool_call([]), [])
    assert parser.final().unified.tool_calls[0].output == NoArguments()


def test_the_unified_view_leaves_typed_output_out_of_its_dict() -> None:
    result = streamfold.fold(chat_answer([WEATHER]), output_type=Weather)
    assert "output" not in result.unified.to_dict()
    assert b"Paris" in msgspec.json.encode(result)  # the raw text is there
    assert b"output" not in msgspec.json.encode(result)


def test_an_unsupported_type_fails_before_any_byte() -> None:
    class Custom:
        pass

    with pytest.raises(UnsupportedSchemaError) as caught:
        StreamParser(output_type=Custom)
    assert isinstance(caught.value, UsageError)
    with pytest.raises(UnsupportedSchemaError):
        streamfold.fold(b"", tool_types={"t": {"type": "object", "patternProperties": {}}})


# -- the accumulator's typed hook --------------------------------------------------------------


def _done_of(events: list[Any], kind: type) -> Any:
    return next(e for e in events if isinstance(e, kind))


def test_a_tool_named_after_its_first_arguments_is_typed_from_the_start() -> None:
    acc = Accumulator(tool_types={"weather": Weather})
    acc.tool_call(0, "k", id="c1", arguments='{"city": "Pa')
    acc.tool_call(0, "k", name="weather", arguments='ris", "temperature": 2}')
    assert acc.choice(0).tool_calls[0].partial_output() == Weather("Paris", 2.0)
    acc.terminate()
    done = _done_of(acc.drain(), ToolCallDone)
    assert done.output == Weather("Paris", 2.0) and done.value == {
        "city": "Paris",
        "temperature": 2,
    }


@pytest.mark.parametrize("whole", [WEATHER, '{"city": "Rome", "temperature": 30}'])
def test_arguments_sent_whole_win_over_the_deltas(whole: str) -> None:
    acc = Accumulator(tool_types={"weather": Weather})
    acc.tool_call(0, "k", id="c1", name="weather", arguments=WEATHER[:20])
    acc.replace_arguments(0, "k", whole)
    acc.end_tool_call(0, "k")
    done = _done_of(acc.drain(), ToolCallDone)
    assert done.output == msgspec.json.decode(whole, type=Weather)
    assert acc.unified().tool_calls[0].output == done.output


def test_text_sent_whole_wins_over_the_deltas() -> None:
    acc = Accumulator(output_type=Weather)
    acc.text(0, '{"city": "Pa')
    acc.replace_part(0, PartKind.TEXT, WEATHER)
    acc.end_part(0, PartKind.TEXT)
    assert _done_of(acc.drain(), TextDone).output == Weather("Paris", 21.5)
    assert acc.unified().output == Weather("Paris", 21.5)


def test_partial_arguments_of_a_typed_call_come_from_its_parser() -> None:
    acc = Accumulator(tool_types={"weather": Weather}, emit=False)
    call = acc.tool_call(0, "k", id="c1", name="weather", arguments='{"city": "Pa')
    assert call.partial_arguments() == {"city": "Pa"}
    assert call.partial_output() == Weather("Pa", UNSET)  # type: ignore[arg-type]
    acc.tool_call(0, "k", arguments='ris", "temperature": "hot"}')  # not a float
    assert call.partial_arguments() == {"city": "Paris", "temperature": "hot"}
    acc.terminate()
    error = acc.unified().tool_calls[0].output_error
    assert error is not None and (error.kind, error.path) == ("value", ("temperature",))


@pytest.mark.parametrize(
    "pieces",
    [
        pytest.param(
            ['{"city": "Pa', 'ris", "tempe', 'rature": "hot"', ', "x": [1, ', "2]}"],
            id="error-mid-stream",
        ),
        pytest.param(['{"city": 5, "temperature": 1}'], id="error-in-the-first-piece"),
        pytest.param(['{"city": "Paris", "tem', 'perature": 21.5}'], id="valid"),
    ],
)
def test_typed_calls_give_the_untyped_json_updates(pieces: list[str]) -> None:
    # With parse_arguments a typed call's deltas carry the same JSON updates as an
    # untyped call's, before, at and after a value that does not validate.
    def updates(parser: StreamParser) -> list[Any]:
        events = feed(parser, chat_tool_call(pieces), [])
        return [e.updates for e in events if type(e).__name__ == "ToolCallArgumentsDelta"]

    typed = updates(StreamParser(tool_types={TOOL: Weather}, parse_arguments=True))
    assert typed == updates(StreamParser(parse_arguments=True))
    assert sum(len(u) for u in typed) > len(pieces)  # updates were made at all


def test_output_updated_carries_the_validated_value() -> None:
    events = feed(StreamParser(output_type=Weather), chat_answer(split_at(WEATHER, [5, 17])), [])
    assert [(e.path, e.value) for e in events if isinstance(e, OutputUpdated)] == [
        (("city",), "Paris"),
        (("temperature",), 21.5),
        ((), Weather("Paris", 21.5)),
    ]


def test_a_second_call_after_a_typed_one_is_told_apart() -> None:
    # A typed call whose arguments are one whole value ends when the next call starts,
    # whether it validated or not (its typed parser says so, without a second parse).
    for arguments in (WEATHER, '{"city": 5, "temperature": 1}'):
        acc = Accumulator(tool_types={"weather": Weather})
        acc.tool_call(0, "a", id="c1", name="weather", arguments=arguments)
        acc.tool_call(0, "b", id="c2", name="weather", arguments=WEATHER)
        done = [e for e in acc.drain() if isinstance(e, ToolCallDone)]
        assert [e.id for e in done] == ["c1"]
