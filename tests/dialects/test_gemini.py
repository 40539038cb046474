"""Google Gemini ``streamGenerateContent``: parts merging, streamed function-call
arguments, finish reasons, usage, errors, both framings, and the corpus."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import streamfold
from streamfold import (
    IncompleteStreamError,
    ProtocolError,
    ProviderError,
    ReasoningDone,
    ResponseFinished,
    ResponseStarted,
    TextDelta,
    TextDone,
    ToolCallArgumentsDelta,
    ToolCallDone,
    ToolCallStarted,
    TruncatedResponseError,
    Unknown,
)
from streamfold.dialects.gemini import (
    Gemini,
    normalise_usage,
    parse_json_path,
    unified_finish_reason,
)
from streamfold.events import Event
from streamfold.sse import ServerSentEvent, SSEDecoder

from ..corpus import (
    CORPUS,
    FIXTURES,
    bytewise,
    corpus_files,
    fold_checked,
    fold_pieces,
)
from .typed_path import assert_same_as_dict_path, hostile_test

GEMINI_FIXTURES = FIXTURES / "gemini"
SSE_FIXTURES = sorted(path.name for path in GEMINI_FIXTURES.glob("*.sse"))


def fixture(name: str) -> bytes:
    return (GEMINI_FIXTURES / name).read_bytes()


def sse(*chunks: dict[str, Any]) -> bytes:
    """A Gemini SSE stream from chunk objects, CRLF-framed as Google sends it."""
    return "".join(f"data: {json.dumps(c)}\r\n\r\n" for c in chunks).encode()


def chunk(*parts: dict[str, Any], finish: str | None = None, **top: Any) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": list(parts), "role": "model"}}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "modelVersion": "gemini-test", "responseId": "r1", **top}


def call(**function_call: Any) -> dict[str, Any]:
    return {"functionCall": function_call}


def piece(path: str, **value: Any) -> dict[str, Any]:
    return {"jsonPath": path, **value}


def fold(data: bytes, **options: Any) -> streamfold.Result:
    return streamfold.fold(data, dialect=Gemini, **options)


def events_of(data: bytes) -> list[Event]:
    events, _, _ = fold_pieces([data], Gemini)
    return events


def payloads(data: bytes) -> list[bytes]:
    """The data of every event of an SSE stream."""
    decoder = SSEDecoder()
    return [event.raw for event in [*decoder.feed(data), *decoder.close()]]


def as_json_array(data: bytes) -> bytes:
    """The same stream in the form Gemini uses without ``alt=sse``."""
    return b"[" + b"\r\n,\r\n".join(payloads(data)) + b"\r\n]"


def folded(data: bytes) -> dict[str, Any]:
    """The fold of ``data`` as the conformance suite compares folds (``fold_checked``)."""
    return fold_checked([data], Gemini)


# -- what each fixture folds to ---------------------------------------------------------

# (fixture, text, reasoning, tool calls as (name, parsed arguments), unified finish,
#  raw finish, usage as (input, output, total, cache_read, reasoning))
FOLDED = [
    pytest.param(
        "text.sse", "Grüße aus Köln 👋, bis bald.", "", [], "stop", "STOP",
        (6, 9, 15, None, None), id="text",
    ),
    pytest.param(
        "text-crlf.sse", "Grüße aus Köln 👋, bis bald.", "", [], "stop", "STOP",
        (6, 9, 15, None, None), id="text-crlf",
    ),
    pytest.param(
        "thoughts-signed-first.sse",
        "Autumn moonlight—\na worm digs silently\ninto the chestnut.",
        "**Planning**\n\nThe user wants a haiku.",
        [], "stop", "STOP", (20, 54, 74, 12, 40), id="thoughts-signed-first",
    ),
    pytest.param(
        "thoughts-signed-last.sse", "There are three r's.", "Counting the letters of strawberry.",
        [], "stop", "STOP", (11, 32, 43, None, 25), id="thoughts-signed-last",
    ),
    pytest.param(
        "function-calls.sse", "", "",
        [("get_weather", {"city": "Paris", "unit": "celsius"}),
         ("get_time", {"timezone": "Europe/Paris"})],
        "tool_calls", "STOP", (30, 18, 48, None, None), id="function-calls",
    ),
    pytest.param(
        "function-call-partial-args.sse", "", "",
        [("book_flight", {
            "passenger": {"name": "Ada Lovelace"},
            "seats": 2,
            "legs": [{"from": "LHR", "to": "JFK"}, {"from": "JFK", "to": "SFO"}],
            "refundable": True,
            "notes": None,
        })],
        "tool_calls", "STOP", (40, 95, 135, None, 60), id="function-call-partial-args",
    ),
    pytest.param(
        "code-execution.sse", "Let me compute that.The sum is 45.", "", [], "stop", "STOP",
        (15, 30, 45, None, None), id="code-execution",
    ),
    pytest.param(
        "two-candidates.sse", "Red apple", "", [], "length", "MAX_TOKENS",
        (5, 4, 9, None, None), id="two-candidates",
    ),
    pytest.param(
        "max-tokens.sse", "Once upon a time, in a land far away", "", [], "length", "MAX_TOKENS",
        (4, 8, 12, None, None), id="max-tokens",
    ),
    pytest.param(
        "safety-midstream.sse", "Step one is to", "", [], "content_filter", "SAFETY",
        (9, 4, 13, None, None), id="safety-midstream",
    ),
    pytest.param(
        "grounding.sse", "The Burj Khalifa is the tallest.", "", [], "stop", "STOP",
        (10, 8, 68, None, None), id="grounding",
    ),
    pytest.param(
        "inline-data.sse", "Here is a red dot:", "", [], "stop", "STOP",
        (8, 1290, 1298, None, None), id="inline-data",
    ),
    pytest.param(
        "array.json", "The Nile is about 6,650 km long [\"citation\"] {x}.",
        "Thinking about rivers", [], "stop", "STOP", (9, 17, 26, None, 5), id="json-array",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "text", "reasoning", "calls", "finish", "raw_finish", "usage"), FOLDED
)
def test_fixture_folds_to_the_unified_view(
    name: str,
    text: str,
    reasoning: str,
    calls: list[tuple[str, Any]],
    finish: str,
    raw_finish: str,
    usage: tuple[int | None, ...],
) -> None:
    result = fold(fixture(name))
    unified = result.unified
    assert result.complete and result.error is None and result.warnings == ()
    assert (unified.text, unified.reasoning) == (text, reasoning)
    assert [(c.name, json.loads(c.arguments)) for c in unified.tool_calls] == calls
    assert (unified.finish_reason, unified.raw_finish_reason) == (finish, raw_finish)
    assert result.usage is not None
    got = result.usage
    assert (
        got.input_tokens,
        got.output_tokens,
        got.total_tokens,
        got.cache_read_tokens,
        got.reasoning_tokens,
    ) == usage
    assert got.cache_write_tokens is None


# -- parts: merging and signatures -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        pytest.param(
            "thoughts-signed-first.sse",
            [
                {"text": "**Planning**\n\nThe user wants a haiku.", "thought": True},
                {
                    "text": "Autumn moonlight—\na worm digs silently\ninto the chestnut.",
                    "thoughtSignature": "U0lHLTI1LWZpcnN0",
                },
            ],
            id="gemini-2.5-signs-the-first-chunk",
        ),
        pytest.param(
            "thoughts-signed-last.sse",
            [
                {
                    "text": "Counting the letters of strawberry.",
                    "thought": True,
                    "thoughtSignature": "U0lHLXRob3VnaHQ=",
                },
                {"text": "There are three r's.", "thoughtSignature": "U0lHLWFuc3dlcg=="},
            ],
            id="gemini-3-signs-an-empty-last-part",
        ),
        pytest.param(
            "code-execution.sse",
            [
                {"text": "Let me compute that."},
                {"executableCode": {"language": "PYTHON", "code": "print(sum(range(10)))\n"}},
                {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "45\n"}},
                {"text": "The sum is 45."},
            ],
            id="code-execution-kept-in-order",
        ),
        pytest.param(
            "inline-data.sse",
            [
                {"text": "Here is a red dot:"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgoAAAANSUhEUg=="}},
            ],
            id="inline-data-kept",
        ),
        pytest.param(
            "function-calls.sse",
            [
                {
                    "functionCall": {
                        "name": "get_weather",
                        "args": {"city": "Paris", "unit": "celsius"},
                    },
                    "thoughtSignature": "U0lHLWZj",
                },
                {"functionCall": {"name": "get_time", "args": {"timezone": "Europe/Paris"}}},
            ],
            id="whole-calls-kept-and-final-empty-text-dropped",
        ),
    ],
)
def test_native_parts(name: str, parts: list[dict[str, Any]]) -> None:
    candidate = fold(fixture(name)).response["candidates"][0]
    assert candidate["content"] == {"parts": parts, "role": "model"}


@pytest.mark.parametrize(
    ("parts", "merged"),
    [
        pytest.param(
            [{"text": "a", "thoughtSignature": "S1"}, {"text": "b", "thoughtSignature": "S2"}],
            [{"text": "a", "thoughtSignature": "S1"}, {"text": "b", "thoughtSignature": "S2"}],
            id="two-signatures-never-share-a-part",
        ),
        pytest.param(
            [{"text": "a"}, {"text": "b", "thoughtSignature": "S"}, {"text": "c"}],
            [{"text": "abc", "thoughtSignature": "S"}],
            id="one-signature-stays-on-the-merged-part",
        ),
        pytest.param(
            [{"text": "t", "thought": True}, {"text": "a"}, {"text": "u", "thought": True}],
            [{"text": "t", "thought": True}, {"text": "a"}, {"text": "u", "thought": True}],
            id="kinds-alternate",
        ),
        pytest.param(
            [{"text": "a"}, {"text": ""}, {"text": "b"}],
            [{"text": "ab"}],
            id="empty-text-dropped",
        ),
        pytest.param(
            [{"text": "", "thought": True, "thoughtSignature": "S"}],
            [{"text": "", "thought": True, "thoughtSignature": "S"}],
            id="signature-only-thought",
        ),
        pytest.param(
            [{"text": "a", "partMetadata": {"k": 1}}, {"text": "b"}],
            [{"text": "ab", "partMetadata": {"k": 1}}],
            id="other-fields-kept",
        ),
    ],
)
def test_adjacent_text_parts_merge(
    parts: list[dict[str, Any]], merged: list[dict[str, Any]]
) -> None:
    # One part per chunk, as Gemini streams them.
    stream = sse(*[chunk(part) for part in parts], chunk(finish="STOP"))
    assert fold(stream).response["candidates"][0]["content"]["parts"] == merged


def test_events_follow_the_merged_parts() -> None:
    events = events_of(fixture("thoughts-signed-last.sse"))
    done = [e for e in events if isinstance(e, (ReasoningDone, TextDone))]
    assert [(type(e), e.text) for e in done] == [
        (ReasoningDone, "Counting the letters of strawberry."),
        (TextDone, "There are three r's."),
    ]
    reasoning = done[0]
    assert isinstance(reasoning, ReasoningDone) and reasoning.signature == "U0lHLXRob3VnaHQ="
    # The reasoning part ends when the answer begins, before any answer text.
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert events.index(reasoning) < first_text
    assert isinstance(events[0], ResponseStarted) and isinstance(events[-1], ResponseFinished)


def test_two_signed_thought_parts_keep_their_own_signatures() -> None:
    stream = sse(
        chunk({"text": "one", "thought": True, "thoughtSignature": "S1"}),
        chunk({"text": "two", "thought": True, "thoughtSignature": "S2"}),
        chunk({"text": "answer"}, finish="STOP"),
    )
    done = [e for e in events_of(stream) if isinstance(e, ReasoningDone)]
    assert [(e.text, e.signature) for e in done] == [("one", "S1"), ("two", "S2")]


def test_unknown_parts_become_unknown_events() -> None:
    unknown = [e for e in events_of(fixture("code-execution.sse")) if isinstance(e, Unknown)]
    assert [e.event for e in unknown] == ["executableCode", "codeExecutionResult"]
    assert unknown[1].raw == {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "45\n"}}


# -- function calls ---------------------------------------------------------------------


def test_whole_function_calls() -> None:
    events = events_of(fixture("function-calls.sse"))
    done = [e for e in events if isinstance(e, ToolCallDone)]
    assert [(e.index, e.name, e.value, e.complete, e.id) for e in done] == [
        (0, "get_weather", {"city": "Paris", "unit": "celsius"}, True, None),
        (1, "get_time", {"timezone": "Europe/Paris"}, True, None),
    ]
    # One documented text format: json.dumps, default separators, non-ASCII kept.
    assert done[0].arguments == '{"city": "Paris", "unit": "celsius"}'


@pytest.mark.parametrize(
    ("function_call", "arguments", "call_id"),
    [
        pytest.param({"name": "now"}, "{}", None, id="no-args-is-empty-object"),
        pytest.param({"name": "now", "args": None}, "{}", None, id="null-args"),
        pytest.param({"name": "f", "args": {"q": "naïve"}}, '{"q": "naïve"}', None, id="unicode"),
        pytest.param({"name": "f", "id": "call-7", "args": {}}, "{}", "call-7", id="with-id"),
    ],
)
def test_whole_function_call_arguments(
    function_call: dict[str, Any], arguments: str, call_id: str | None
) -> None:
    result = fold(sse(chunk({"functionCall": function_call}, finish="STOP")))
    [tool] = result.unified.tool_calls
    assert (tool.arguments, tool.id) == (arguments, call_id)
    assert result.response["candidates"][0]["content"]["parts"] == [{"functionCall": function_call}]


def test_streamed_arguments_arrive_as_deltas_that_join_to_the_arguments() -> None:
    events = events_of(fixture("function-call-partial-args.sse"))
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    deltas = [e.delta for e in events if isinstance(e, ToolCallArgumentsDelta)]
    [done] = [e for e in events if isinstance(e, ToolCallDone)]
    assert [(e.name, e.index) for e in started] == [("book_flight", 0)]
    assert len(deltas) > 5  # streamed as the pieces came, not in one block at the end
    expected = {
        "passenger": {"name": "Ada Lovelace"},
        "seats": 2,
        "legs": [{"from": "LHR", "to": "JFK"}, {"from": "JFK", "to": "SFO"}],
        "refundable": True,
        "notes": None,
    }
    assert "".join(deltas) == done.arguments == json.dumps(expected, ensure_ascii=False)
    assert done.value == expected and done.complete and done.parse_error is None
    part = fold(fixture("function-call-partial-args.sse")).response["candidates"][0]
    assert part["content"]["parts"] == [
        {
            "functionCall": {"name": "book_flight", "args": expected},
            "thoughtSignature": "U0lHLXZlcnRleA==",
        }
    ]


# Each case: the partialArgs pieces of one streamed call, the args they make, and
# whether the pieces came in document order (then the deltas are the whole text).
PARTIAL = [
    pytest.param(
        [piece("$.a.b[0].c", stringValue="1"), piece("$.a.b[0].d", stringValue="2"),
         piece("$.a.b[1].c", stringValue="3"), piece("$.a.e", numberValue=4),
         piece("$.f", boolValue=True)],
        {"a": {"b": [{"c": "1", "d": "2"}, {"c": "3"}], "e": 4}, "f": True}, True,
        id="nested-in-order",
    ),
    pytest.param(
        [piece("$.q", stringValue='say "hi"\n\\'), piece("$.q", stringValue=" é😀")],
        {"q": 'say "hi"\n\\ é😀'}, True, id="escapes-across-pieces",
    ),
    pytest.param(
        [piece("$['a.b']", boolValue=False), piece('$["c"][0]', nullValue="NULL_VALUE")],
        {"a.b": False, "c": [None]}, True, id="bracket-notation",
    ),
    pytest.param(
        [piece("$.a", stringValue="x"), {"jsonPath": "$.b"}, piece("$.c", numberValue=0)],
        {"a": "x", "c": 0}, True, id="piece-without-value-ignored",
    ),
    pytest.param(
        [piece("$.a", stringValue="x"), piece("$.b", numberValue=1.5),
         piece("$.a", stringValue="y")],
        {"a": "xy", "b": 1.5}, False, id="string-resumed-after-another-path",
    ),
    pytest.param(
        [piece("$.b", numberValue=1), piece("$.a", numberValue=2), piece("$.b", numberValue=3)],
        {"b": 3, "a": 2}, False, id="scalar-set-again-replaces",
    ),
    pytest.param(
        [piece("$.xs[2]", numberValue=7)], {"xs": [None, None, 7]}, False,
        id="index-past-the-end",
    ),
    pytest.param(
        [piece("$.xs[1]", stringValue="b"), piece("$.xs[0]", stringValue="a")],
        {"xs": ["a", "b"]}, False, id="elements-out-of-order",
    ),
    pytest.param(
        [piece("$.a", numberValue=1), piece("$.a.b", numberValue=2)],
        {"a": {"b": 2}}, False, id="path-through-a-scalar",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("pieces", "args", "in_order"), PARTIAL)
def test_partial_args_assembly(
    pieces: list[dict[str, Any]], args: dict[str, Any], in_order: bool
) -> None:
    stream = sse(
        chunk(call(name="f", willContinue=True)),
        *[chunk(call(partialArgs=[p], willContinue=True)) for p in pieces],
        chunk(call(), finish="STOP"),
    )
    result = fold(stream)
    [tool] = result.unified.tool_calls
    # Whatever the order, the final arguments are the assembled args, in the
    # documented text format.
    assert tool.arguments == json.dumps(args, ensure_ascii=False)
    part = result.response["candidates"][0]["content"]["parts"][0]
    assert part == {"functionCall": {"name": "f", "args": args}}
    events = events_of(stream)
    deltas = "".join(e.delta for e in events if isinstance(e, ToolCallArgumentsDelta))
    [done] = [e for e in events if isinstance(e, ToolCallDone)]
    assert done.value == args and done.complete and done.arguments == tool.arguments
    # In document order the deltas are the text itself; out of order they stop
    # at the first piece that breaks it, and tool_call.done carries the truth.
    assert (deltas == tool.arguments) is in_order


def test_unreadable_json_path_keeps_the_value_with_a_warning() -> None:
    stream = sse(
        chunk(call(name="f", partialArgs=[piece("$..odd", numberValue=1)], willContinue=True)),
        chunk(call(), finish="STOP"),
    )
    result = fold(stream)
    assert json.loads(result.unified.tool_calls[0].arguments) == {".odd": 1}
    assert any("unreadable jsonPath" in warning for warning in result.warnings)


def test_hostile_array_index_is_a_protocol_error() -> None:
    stream = sse(
        chunk(call(name="f", willContinue=True)),
        chunk(call(partialArgs=[piece("$.xs[99999999]", numberValue=1)], willContinue=True)),
    )
    with pytest.raises(ProtocolError, match="array element 99999999") as caught:
        fold(stream)
    assert caught.value.position == 1
    assert "server-sent event #1: partialArgs jsonPath '$.xs[99999999]'" in str(caught.value)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("$.xs[1026]", id="past-the-end-of-a-new-array"),
        pytest.param("$.xs[1027]", id="past-the-end-of-the-array"),
        pytest.param("$.xs[0].more[5000]", id="past-the-end-below"),
    ],
)
def test_a_refused_partial_args_piece_leaves_the_arguments_as_they_were(path: str) -> None:
    stream = sse(
        chunk(call(name="f", willContinue=True)),
        chunk(call(partialArgs=[piece("$.xs[0]", stringValue="a")], willContinue=True)),
        chunk(call(partialArgs=[piece(path, stringValue="!")], willContinue=True)),
        chunk(call(partialArgs=[piece("$.xs[0]", stringValue="b")], willContinue=True)),
        chunk(call(partialArgs=[piece("$.n", numberValue=1)], willContinue=True)),
        chunk(call(), finish="STOP"),
    )
    events, result, error = fold_pieces([stream], Gemini)
    assert isinstance(error, ProtocolError) and error.position == 2
    assert result is not None and "partialArgs jsonPath" in str(error)
    assert result.unified.tool_calls[0].arguments == '{"xs": ["a'  # as far as it came
    # Lenient: the piece is skipped with a warning, the call goes on in order.
    events, result, error = fold_pieces([stream], Gemini, strict=False)
    assert error is None and result is not None
    (tool,) = result.unified.tool_calls
    assert json.loads(tool.arguments) == {"xs": ["ab"], "n": 1}
    deltas = "".join(e.delta for e in events if isinstance(e, ToolCallArgumentsDelta))
    assert deltas == tool.arguments
    assert any(w.startswith("skipped") and "array element" in w for w in result.warnings)


def test_an_index_too_long_for_int_is_an_unreadable_path() -> None:
    raw = "$.xs[" + "1" * 5000 + "]"
    stream = sse(
        chunk(call(name="f", partialArgs=[piece("$.a", numberValue=1)], willContinue=True)),
        chunk(call(partialArgs=[piece(raw, numberValue=2)], willContinue=True)),
        chunk(call(), finish="STOP"),
    )
    for result in (fold(stream), fold_pieces([stream], Gemini, parse_arguments=True)[1]):
        assert result is not None and result.complete
        assert json.loads(result.unified.tool_calls[0].arguments) == {"a": 1, raw[2:]: 2}
        assert any("unreadable jsonPath" in warning for warning in result.warnings)


def test_whole_args_nested_too_deeply_to_write_only_raise_protocol_errors() -> None:
    # A value just under msgspec's decoding limit may be too deep for json.dumps
    # on the deeper stack: whatever the depth, only streamfold's errors.
    template = sse(
        chunk({"text": "Calling."}), chunk(call(name="f", args=[])), chunk(finish="STOP")
    )
    for depth in range(900, 1001):
        deep = b"[" * depth + b"]" * depth
        stream = template.replace(b'"args": []', b'"args": ' + deep)
        for strict in (True, False):
            _, result, error = fold_pieces([stream], Gemini, strict=strict)
            assert error is None or isinstance(error, ProtocolError)
            assert result is not None and result.text == "Calling."


@pytest.mark.parametrize(
    ("after", "finish", "warning"),
    [
        pytest.param(
            [], "MAX_TOKENS", "still streaming its arguments", id="finish-before-the-final-part"
        ),
        pytest.param(
            [call(name="g", willContinue=True), call()],
            "STOP",
            "got no final part",
            id="next-call-before-the-final-part",
        ),
    ],
)
def test_streamed_call_without_its_final_part_is_incomplete(
    after: list[dict[str, Any]], finish: str, warning: str
) -> None:
    stream = sse(
        chunk(call(name="f", willContinue=True)),
        chunk(call(partialArgs=[piece("$.city", stringValue="Par")], willContinue=True)),
        *[chunk(part) for part in after],
        chunk(finish=finish),
    )
    result = fold(stream)
    done = [e for e in events_of(stream) if isinstance(e, ToolCallDone)]
    assert (done[0].name, done[0].complete) == ("f", False)
    assert all(e.complete for e in done[1:])
    assert any(warning in w for w in result.warnings)


# -- candidates, metadata, response fields ------------------------------------------------


def test_two_candidates_fold_apart() -> None:
    data = fixture("two-candidates.sse")
    candidates = fold(data).response["candidates"]
    assert [(c["index"], c["content"]["parts"], c["finishReason"]) for c in candidates] == [
        (0, [{"text": "Red apple"}], "MAX_TOKENS"),
        (1, [{"text": "Blue sky"}], "STOP"),
    ]
    finished = [e for e in events_of(data) if isinstance(e, ResponseFinished)]
    assert [(e.choice, e.finish_reason) for e in finished] == [(0, "length"), (1, "stop")]


def test_candidates_without_index_are_taken_by_position() -> None:
    stream = sse(
        {"candidates": [{"content": {"parts": [{"text": "a"}]}},
                        {"content": {"parts": [{"text": "b"}]}, "index": 1}]},
        {"candidates": [{"finishReason": "STOP"}, {"finishReason": "STOP", "index": 1}]},
    )  # fmt: skip
    candidates = fold(stream).response["candidates"]
    assert candidates == [
        {"content": {"parts": [{"text": "a"}], "role": "model"}, "finishReason": "STOP"},
        {
            "content": {"parts": [{"text": "b"}], "role": "model"},
            "finishReason": "STOP",
            "index": 1,
        },
    ]


def test_candidate_metadata_last_non_empty_wins() -> None:
    candidate = fold(fixture("grounding.sse")).response["candidates"][0]
    # groundingMetadata is {} on the first chunks and whole on the last.
    assert candidate["groundingMetadata"]["groundingChunks"] == [
        {"web": {"uri": "https://example.com/burj", "title": "example.com"}}
    ]
    assert candidate["citationMetadata"]["citationSources"][0]["endIndex"] == 16
    assert candidate["urlContextMetadata"]["urlMetadata"][0]["retrievedUrl"] == (
        "https://example.com/burj"
    )
    stream = sse(
        {"candidates": [
            {"content": {"parts": [{"text": "a"}]}, "safetyRatings": [{"probability": "LOW"}]}]},
        {"candidates": [{"content": {"parts": [{"text": "b"}]}, "safetyRatings": []}]},
        {"candidates": [{"finishReason": "STOP", "safetyRatings": None}]},
    )  # fmt: skip
    assert fold(stream).response["candidates"][0]["safetyRatings"] == [{"probability": "LOW"}]


def test_logprobs_lists_are_appended() -> None:
    token = {"token": "a", "logProbability": -0.1}
    stream = sse(
        {"candidates": [{"content": {"parts": [{"text": "a"}]},
                         "logprobsResult": {"chosenCandidates": [token], "topCandidates": [{}]}}]},
        {"candidates": [{"content": {"parts": [{"text": "b"}]}, "finishReason": "STOP",
                         "logprobsResult": {"chosenCandidates": [token], "topCandidates": [{}],
                                            "logProbabilitySum": -0.2}}]},
    )  # fmt: skip
    logprobs = fold(stream).response["candidates"][0]["logprobsResult"]
    assert logprobs == {
        "chosenCandidates": [token, token],
        "topCandidates": [{}, {}],
        "logProbabilitySum": -0.2,
    }


def test_response_fields_and_start_event() -> None:
    data = fixture("function-call-partial-args.sse")
    response = fold(data).response
    assert (response["modelVersion"], response["responseId"], response["createTime"]) == (
        "gemini-3.1-pro-preview",
        "fx-vertex",
        "2026-04-02T17:03:50.399550Z",
    )
    started = events_of(data)[0]
    created = int(datetime(2026, 4, 2, 17, 3, 50, tzinfo=timezone.utc).timestamp())
    assert started == ResponseStarted(
        id="fx-vertex", model="gemini-3.1-pro-preview", created=created
    )


def test_usage_without_counts_never_replaces_a_report() -> None:
    counted = {"promptTokenCount": 3, "candidatesTokenCount": 1, "totalTokenCount": 4}
    stream = sse(
        chunk({"text": "a"}, usageMetadata={"trafficType": "ON_DEMAND"}),
        chunk({"text": "b"}, usageMetadata=counted),
        chunk(finish="STOP", usageMetadata={"trafficType": "ON_DEMAND"}),
    )
    result = fold(stream)
    assert result.response["usageMetadata"] == counted
    assert result.usage is not None and result.usage.total_tokens == 4
    only = fold(sse(chunk({"text": "a"}, finish="STOP", usageMetadata={"trafficType": "X"})))
    assert only.usage is None and only.response["usageMetadata"] == {"trafficType": "X"}


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        pytest.param(
            {"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 7,
             "cachedContentTokenCount": 4, "totalTokenCount": 22},
            (10, 12, 22, 4, 7), id="thoughts-billed-as-output",
        ),
        pytest.param(
            {"promptTokenCount": 10, "totalTokenCount": 10}, (10, None, 10, None, None),
            id="no-output-yet-is-none",
        ),
        pytest.param(
            {"promptTokenCount": 87, "thoughtsTokenCount": 78, "totalTokenCount": 165},
            (87, 78, 165, None, 78), id="zero-candidates-omitted",
        ),
        pytest.param(
            {"promptTokenCount": 17, "candidatesTokenCount": 241, "toolUsePromptTokenCount": 102,
             "thoughtsTokenCount": 412, "totalTokenCount": 772},
            (17, 653, 772, None, 412), id="tool-use-prompt-only-in-total",
        ),
    ],
)  # fmt: skip
def test_normalise_usage(usage: dict[str, Any], expected: tuple[int | None, ...]) -> None:
    got = normalise_usage(usage)
    assert (
        got.input_tokens,
        got.output_tokens,
        got.total_tokens,
        got.cache_read_tokens,
        got.reasoning_tokens,
    ) == expected
    assert got.cache_write_tokens is None and got.raw is usage


@pytest.mark.parametrize(
    ("raw", "has_calls", "unified"),
    [
        pytest.param("STOP", False, "stop", id="stop"),
        pytest.param("STOP", True, "tool_calls", id="stop-with-calls"),
        pytest.param("MAX_TOKENS", True, "length", id="max-tokens"),
        *[
            pytest.param(raw, False, "content_filter", id=raw.lower())
            for raw in ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
                        "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT")
        ],
        *[
            pytest.param(raw, True, "error", id=raw.lower())
            for raw in ("MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS")
        ],
        *[
            pytest.param(raw, False, "other", id=raw.lower())
            for raw in ("OTHER", "LANGUAGE", "FINISH_REASON_UNSPECIFIED", "SOMETHING_NEW")
        ],
    ],
)  # fmt: skip
def test_finish_reasons(raw: str, has_calls: bool, unified: str) -> None:
    assert unified_finish_reason(raw, has_calls) == unified


def test_malformed_function_call_is_a_complete_error_finish() -> None:
    result = fold(sse(chunk({"text": "a"}), chunk(finish="MALFORMED_FUNCTION_CALL")))
    assert result.complete
    assert (result.finish_reason, result.unified.raw_finish_reason) == (
        "error",
        "MALFORMED_FUNCTION_CALL",
    )


@pytest.mark.parametrize(
    ("path", "segments"),
    [
        pytest.param("$.location", ("location",), id="member"),
        pytest.param("$.recipe.steps[10]", ("recipe", "steps", 10), id="nested-index"),
        pytest.param("$['a.b'][0]", ("a.b", 0), id="single-quoted"),
        pytest.param('$["it\'s"]', ("it's",), id="double-quoted"),
        pytest.param("$['it\\'s \\u00e9']", ("it's é",), id="escapes"),
        pytest.param("$.my-key", ("my-key",), id="lenient-member-name"),
        pytest.param("$", None, id="root"),
        pytest.param("$[0]", None, id="root-array"),
        pytest.param("location", None, id="no-dollar"),
        pytest.param("$.a[01]", None, id="leading-zero"),
        pytest.param("$.a[", None, id="unclosed"),
        pytest.param("$" + ".a" * 65, None, id="too-deep"),
        pytest.param("$.a[" + "9" * 18 + "]", ("a", 10**18 - 1), id="index-of-18-digits"),
        pytest.param("$.a[" + "1" * 19 + "]", None, id="index-of-19-digits"),
        pytest.param("$.a[" + "1" * 5000 + "]", None, id="index-beyond-int-digits"),
    ],
)
def test_parse_json_path(path: str, segments: tuple[Any, ...] | None) -> None:
    assert parse_json_path(path) == segments


# -- errors and completion -----------------------------------------------------------------


def test_prompt_blocked_is_a_whole_response_filtered() -> None:
    # Without streaming, Gemini answers a blocked prompt with HTTP 200 and this
    # very object: the fold is that response, finished by the content filter.
    result = fold(fixture("prompt-blocked.sse"))
    assert result.complete and result.error is None
    assert (result.finish_reason, result.unified.raw_finish_reason) == (
        "content_filter",
        "PROHIBITED_CONTENT",
    )
    assert result.response == {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "fx-blocked",
    }
    assert result.usage is not None and result.usage.input_tokens == 7


def test_a_checked_result_never_passes_a_blocked_prompt() -> None:
    feedback = {"blockReason": "OTHER", "blockReasonMessage": "Unsupported language."}
    with pytest.raises(
        TruncatedResponseError, match=r"filtered \(finish reason 'OTHER'\)"
    ) as caught:
        fold(sse({"promptFeedback": feedback, "modelVersion": "m"}), checked=True)
    assert caught.value.reason == "content_filter"
    assert caught.value.partial is not None
    assert caught.value.partial.response["promptFeedback"] == feedback


def test_events_after_a_blocked_prompt_are_ignored() -> None:
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}, "modelVersion": "m"}
    late = {"candidates": [{"content": {"parts": [{"text": "late"}]}, "finishReason": "STOP"}]}
    events, result, error = fold_pieces([sse(blocked, late)])
    assert error is None and result is not None
    assert result.text == "" and result.unified.raw_finish_reason == "SAFETY"
    assert [e.type for e in events][-1] == "response.finished"
    assert any("after the end of the stream" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("error", "code", "retryable"),
    [
        pytest.param({"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}, "503", True,
                     id="unavailable"),
        pytest.param({"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}, "429", True,
                     id="resource-exhausted"),
        pytest.param({"code": 500, "message": "boom", "status": "INTERNAL"}, "500", True,
                     id="internal"),
        pytest.param({"message": "boom", "status": "INTERNAL"}, "INTERNAL", True,
                     id="status-without-code"),
        pytest.param({"code": 504, "message": "slow", "status": "DEADLINE_EXCEEDED"}, "504", True,
                     id="deadline"),
        pytest.param({"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}, "400", False,
                     id="invalid-argument"),
        pytest.param({"code": 403, "message": "no", "status": "PERMISSION_DENIED"}, "403", False,
                     id="permission-denied"),
    ],
)  # fmt: skip
def test_error_envelope_midstream(error: dict[str, Any], code: str, retryable: bool) -> None:
    stream = sse(chunk({"text": "partial"}), {"error": error})
    with pytest.raises(ProviderError) as caught:
        fold(stream)
    raised = caught.value
    assert (raised.code, raised.retryable, raised.provider_message) == (
        code,
        retryable,
        error["message"],
    )
    assert raised.error_type == error["status"]
    assert raised.position == 1
    assert raised.partial is not None and raised.partial.text == "partial"


@pytest.mark.parametrize(
    ("error", "code", "retryable"),
    [
        pytest.param({"code": 503, "status": ["UNAVAILABLE"]}, "503", True, id="status-list"),
        pytest.param({"code": 400, "status": {"a": 1}}, "400", False, id="status-object"),
        pytest.param({"code": [503], "status": "UNAVAILABLE"}, "UNAVAILABLE", True,
                     id="code-list"),
        pytest.param({"code": True, "status": 7}, "7", False, id="code-bool-status-number"),
    ],
)  # fmt: skip
def test_error_envelope_of_the_wrong_types(
    error: dict[str, Any], code: str, retryable: bool
) -> None:
    stream = sse(chunk({"text": "partial"}), {"error": {"message": "boom", **error}})
    with pytest.raises(ProviderError) as caught:
        fold(stream)
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert caught.value.partial is not None and caught.value.partial.text == "partial"


def test_error_fixture_keeps_the_partial_and_is_retryable() -> None:
    with pytest.raises(ProviderError) as caught:
        fold(fixture("error-midstream.sse"))
    assert caught.value.retryable
    assert caught.value.partial is not None and caught.value.partial.text == "The answer"


QUOTA = {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(json.dumps(QUOTA).encode(), id="json-body"),
        pytest.param(json.dumps([QUOTA]).encode(), id="json-array"),
        pytest.param(sse(QUOTA), id="sse"),
    ],
)
def test_error_as_the_whole_answer(body: bytes) -> None:
    # Google answers a failed request with its error envelope, in whichever
    # form the request asked for; detection knows it by its "status".
    assert Gemini.detect(ServerSentEvent(b""), QUOTA)
    with pytest.raises(ProviderError) as caught:
        fold(body)
    assert (caught.value.code, caught.value.error_type, caught.value.retryable) == (
        "429",
        "RESOURCE_EXHAUSTED",
        True,
    )
    assert caught.value.position == 0


def test_stream_without_finish_reason_is_incomplete() -> None:
    data = fixture("incomplete.sse")
    with pytest.raises(IncompleteStreamError) as caught:
        fold(data)
    assert caught.value.partial is not None and caught.value.partial.text == "Half an answer"
    done = [e for e in events_of(data) if isinstance(e, TextDone)]
    assert [(e.text, e.complete) for e in done] == [("Half an answer", False)]


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(sse({"usageMetadata": {"promptTokenCount": 1}, "modelVersion": "m"}),
                     id="no-candidates"),
        pytest.param(sse({"candidates": [{"content": {"parts": [{"text": "a"}]}, "index": 0},
                                         {"content": {"parts": [{"text": "b"}]}, "index": 1}]},
                         {"candidates": [{"finishReason": "STOP", "index": 0}]}),
                     id="one-candidate-unfinished"),
        pytest.param(b"[" + json.dumps(chunk({"text": "a"})).encode() + b"]",
                     id="closed-array-without-finish"),
    ],
)  # fmt: skip
def test_incomplete_when_a_candidate_lacks_a_finish_reason(stream: bytes) -> None:
    with pytest.raises(IncompleteStreamError):
        fold(stream)


def test_checked_fold_raises_for_a_safety_finish() -> None:
    with pytest.raises(TruncatedResponseError) as caught:
        fold(fixture("safety-midstream.sse"), checked=True)
    assert caught.value.reason == "content_filter"
    candidate = fold(fixture("safety-midstream.sse")).response["candidates"][0]
    assert candidate["safetyRatings"][1]["blocked"] is True


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        pytest.param(b"data: [1, 2]\r\n\r\n", "not a JSON object", id="not-an-object"),
        pytest.param(b'data: {"candidates": {}}\r\n\r\n', "'candidates' is not a list",
                     id="candidates-not-a-list"),
        pytest.param(b'data: {"candidates": [\r\n\r\n', "not valid JSON", id="bad-json"),
        pytest.param(b"data: " + b"[" * 5000 + b"]" * 5000 + b"\r\n\r\n", "nested too deeply",
                     id="nested-too-deep"),
    ],
)  # fmt: skip
def test_malformed_chunks_are_protocol_errors(stream: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message) as caught:
        fold(stream)
    assert caught.value.position == 0


# -- detection ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "detected"),
    [
        pytest.param({"candidates": []}, True, id="candidates"),
        pytest.param({"usageMetadata": {"promptTokenCount": 1}}, True, id="usage-only"),
        pytest.param({"promptFeedback": {"blockReason": "SAFETY"}}, True, id="prompt-feedback"),
        pytest.param({"modelVersion": "gemini-2.5-pro"}, True, id="model-version"),
        pytest.param({"error": {"code": 503, "status": "UNAVAILABLE"}}, True, id="google-error"),
        pytest.param({"error": {"message": "x", "type": "server_error"}}, False, id="openai-error"),
        pytest.param({"choices": [], "candidates": []}, False, id="chat-chunk"),
        pytest.param({"type": "message_start", "usageMetadata": {}}, False, id="typed-event"),
        pytest.param({"object": "chat.completion.chunk", "modelVersion": "m"}, False,
                     id="object-field"),
        pytest.param({"interaction": {}, "event_type": "interaction.created"}, False,
                     id="interactions-api"),
        pytest.param([{"candidates": []}], False, id="not-an-object"),
    ],
)  # fmt: skip
def test_detect(payload: Any, detected: bool) -> None:
    assert Gemini.detect(ServerSentEvent(b""), payload) is detected


# -- framing: CRLF and the JSON array --------------------------------------------------------


def test_crlf_and_lf_fold_alike() -> None:
    assert folded(fixture("text-crlf.sse")) == folded(fixture("text.sse"))


def test_json_array_fixture_folds_like_its_sse_twin() -> None:
    elements = json.loads(fixture("array.json"))
    twin = sse(*elements)
    assert folded(fixture("array.json")) == folded(twin)


@pytest.mark.parametrize("name", SSE_FIXTURES)
def test_fixture_in_json_array_form_folds_alike(name: str) -> None:
    data = fixture(name)
    assert folded(as_json_array(data)) == folded(data)


# -- the shared corpus ------------------------------------------------------------------------

# What each recorded stream folds to, read off the stream itself: the unified
# finish reason, the tool calls (name, arguments), a prefix of the text, and
# the error code when the stream carries one.
CORPUS_EXPECTED: dict[str, dict[str, Any]] = {
    "google-vertex__gemini__nested-function-call-args.sse": {
        "finish": "tool_calls", "tools": ["cookRecipe"], "text": "",
    },
    "google-vertex__gemini__service-tier-flex.sse": {"finish": "stop", "text": "OK"},
    "google__gemini__function-call-gemini3.sse": {
        "finish": "tool_calls", "tools": [("weather", {"location": "San Francisco"})],
    },
    "google__gemini__function-call-no-args.sse": {
        "finish": "tool_calls",
        "tools": [("read_theme", {}), ("read_screen", {"id": "A"}), ("read_screen", {"id": "B"}),
                  ("read_screen", {"id": "C"})],
        "reasoning": "**Processing User Requests**",
    },
    "google__gemini__google-search-grounding.sse": {
        "finish": "stop", "text": "### Weather in San Francisco",
    },
    "google__gemini__handwritten-prompt-blocked.sse": {"finish": "content_filter", "text": ""},
    "google__gemini__handwritten-safety-finish-midstream.sse": {
        "finish": "content_filter", "text": "Sure, here is an overview of the chemistry involved",
    },
    "google__gemini__native-structured-output-grounding.sse": {
        "finish": "stop", "text": '{\n  "city": "Mexico City"',
    },
    "google__gemini__streaming-function-call-args.sse": {
        "finish": "tool_calls",
        "tools": [("getWeather", {"location": "Boston"}),
                  ("getWeather", {"location": "San Francisco"})],
    },
    "google__gemini__text-crlf.sse": {
        "finish": "stop", "text": "The capital of France is Paris.\n",
    },
    "google__gemini__text.sse": {"finish": "stop", "text": 'There are **3** "r"s in strawberry.'},
    "google__gemini__thinking-thought-parts.sse": {
        "finish": "stop", "text": "This is a great question!", "reasoning": "**Clarifying",
    },
    "google__gemini__thought-signature-text.sse": {
        "finish": "stop", "text": 'There are **3** "r"s in strawberry.\n\nSt**r**awbe**rr**y',
    },
}  # fmt: skip


@pytest.mark.parametrize("path", corpus_files("gemini"))
def test_corpus_stream_folds(path: Path) -> None:
    data = path.read_bytes()
    expected = CORPUS_EXPECTED.get(path.name)
    if expected is None:
        # A stream added to the corpus later: it must fold or fail with our own error.
        with contextlib.suppress(streamfold.StreamfoldError):
            fold(data)
        return
    if "error" in expected:
        with pytest.raises(ProviderError) as caught:
            fold(data)
        assert caught.value.code == expected["error"]
        return
    result = fold(data)
    assert result.complete and result.warnings == ()
    assert result.finish_reason == expected["finish"]
    assert result.text.startswith(expected.get("text", ""))
    assert result.unified.reasoning.startswith(expected.get("reasoning", ""))
    if "tools" in expected:
        got = [(c.name, json.loads(c.arguments)) for c in result.unified.tool_calls]
        wanted = expected["tools"]
        if wanted and isinstance(wanted[0], str):
            assert [name for name, _ in got] == wanted
        else:
            assert got == wanted


def test_corpus_nested_partial_args_assemble() -> None:
    path = CORPUS / "google-vertex__gemini__nested-function-call-args.sse"
    if not path.exists():
        pytest.skip("the shared corpus is absent")
    result = fold(path.read_bytes())
    args = json.loads(result.unified.tool_calls[0].arguments)["recipe"]
    assert args["name"] == "Lasagna"
    assert [i["name"] for i in args["ingredients"]][:2] == ["Lasagna noodles", "Ground beef"]
    assert len(args["ingredients"]) == 10 and len(args["steps"]) == 10
    # Steps streamed as several string pieces are joined.
    assert args["steps"][1] == (
        "Cook lasagna noodles according to package directions, drain and set aside."
    )
    assert args["steps"][4] == "In a 9x13 baking dish, spread a thin layer of meat sauce."
    part = result.response["candidates"][0]["content"]["parts"][0]
    assert part["functionCall"]["args"]["recipe"] == args and "thoughtSignature" in part


def test_corpus_signed_text_keeps_its_signature_on_the_merged_part() -> None:
    path = CORPUS / "google__gemini__thinking-thought-parts.sse"
    if not path.exists():
        pytest.skip("the shared corpus is absent")
    parts = fold(path.read_bytes()).response["candidates"][0]["content"]["parts"]
    assert [(p.get("thought", False), "thoughtSignature" in p) for p in parts] == [
        (True, False),
        (False, True),
    ]


@pytest.mark.parametrize("path", corpus_files("gemini"))
def test_corpus_in_json_array_form_folds_alike(path: Path) -> None:
    data = path.read_bytes()
    assert folded(as_json_array(data)) == folded(data)


def test_streamed_arguments_parse_incrementally() -> None:
    events, _, _ = fold_pieces(
        bytewise(fixture("function-call-partial-args.sse")), Gemini, parse_arguments=True
    )
    updates = [u for e in events if isinstance(e, ToolCallArgumentsDelta) for u in e.updates]
    [done] = [e for e in events if isinstance(e, ToolCallDone)]
    assert updates and done.parse_error is None
    assert done.value["passenger"] == {"name": "Ada Lovelace"}


# -- the typed path gives what the dict path gives ------------------------------------------


def _chunk(**fields: Any) -> dict[str, Any]:
    return {"modelVersion": "gemini-2.5-flash", "responseId": "r1", **fields}


def _text(text: Any, thought: Any = None, index: Any = 0, **extra: Any) -> dict[str, Any]:
    part: dict[str, Any] = {"text": text}
    if thought is not None:
        part["thought"] = thought
    return {"content": {"parts": [part], "role": "model"}, "index": index, **extra}


_FIRST = _chunk(candidates=[_text("Hi")])
_THINKING = _chunk(candidates=[_text("hm", thought=True)])


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param([_chunk(candidates=[_text(" there")])], id="text"),
        pytest.param([_chunk(candidates=[_text("")])], id="empty-text"),
        pytest.param([_chunk(candidates=[_text("x", thought=True)])], id="thought-after-text"),
        pytest.param([_THINKING, _chunk(candidates=[_text("a")])], id="text-after-thought"),
        pytest.param([_chunk(candidates=[_text("x", index=1)])], id="new-candidate"),
        pytest.param([_chunk(candidates=[_text("x", index=None)])], id="null-index"),
        pytest.param([_chunk(candidates=[{"index": 0}])], id="no-content"),
        pytest.param([_chunk(candidates=[{"content": {"role": "model"}}])], id="no-parts"),
        pytest.param([_chunk(candidates=[])], id="no-candidates"),
        pytest.param([_chunk(candidates=[_text("a"), _text("b", index=1)])], id="two-candidates"),
        pytest.param(
            [_chunk(candidates=[{"content": {"parts": [{"text": "a"}, {"text": "b"}]}}])],
            id="two-parts",
        ),
        pytest.param(
            [_chunk(candidates=[_text("a")], createTime="2026-01-01T00:00:00Z")],
            id="create-time-first-seen",
        ),
        pytest.param([_chunk(candidates=[_text("a")], createTime=5)], id="create-time-a-number"),
        pytest.param([_chunk(candidates=[_text("a")], modelVersion="other")], id="model-again"),
        pytest.param(
            [_chunk(candidates=[_text("a")], usageMetadata={"promptTokenCount": 3})], id="usage"
        ),
        pytest.param([_chunk(candidates=[_text("a", finishReason="STOP")])], id="finish"),
        pytest.param([_chunk(candidates=[_text("a")], extra=1)], id="unknown-field"),
        pytest.param([_chunk(candidates=[_text(5)])], id="text-a-number"),
    ],
)
@pytest.mark.parametrize(
    "first",
    [
        _FIRST,
        _chunk(candidates=[_text("Hi")], createTime="2026-01-01T00:00:00Z"),
        {"candidates": [_text("Hi")]},
    ],
    ids=["usual", "create-time", "bare"],
)
def test_the_typed_path_folds_what_the_dict_path_folds(
    chunks: list[dict[str, Any]], first: dict[str, Any]
) -> None:
    # The chunks after the first, well formed or not: the same events,
    # response, warnings and error with the typed path as without it.
    raw = b"".join(
        b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n"
        for chunk in (
            first,
            *chunks,
            *chunks,
            _chunk(candidates=[{"content": {"parts": [{"text": "!"}]}, "finishReason": "STOP"}]),
        )
    )
    assert_same_as_dict_path(raw, Gemini)


test_the_typed_path_folds_hostile_input_as_the_dict_path = hostile_test(
    Gemini, sorted(GEMINI_FIXTURES.glob("*.sse"))
)
