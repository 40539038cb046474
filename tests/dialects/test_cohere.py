"""Cohere v2 chat (docs/dialects/cohere-chat.md): content and thinking parts, the
tool plan, tool calls, citations, finish reasons, usage, errors, and the corpus.

The fixtures in tests/fixtures/cohere_chat/ are written from Cohere's streaming
reference (docs.cohere.com, "Streaming", "Streaming for tool use", "RAG
streaming") and its Python SDK's stream event types: every event type, every
finish reason of the reference.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import streamfold
from streamfold import ProviderError, StreamParser
from streamfold.dialects import detect
from streamfold.dialects.cohere import CohereChat, normalise_usage, unified_finish_reason
from streamfold.fold import Accumulator
from streamfold.sse import ServerSentEvent, SSEDecoder

from ..corpus import CORPUS, FIXTURES, ROOT, usage_counts
from .typed_path import assert_same_as_dict_path, hostile_test, typed_path_counts

FIXTURE_DIR = FIXTURES / "cohere_chat"
PATHS = sorted(FIXTURE_DIR.glob("*.sse"))
PAIRS = ROOT.parent / "shared" / "pairs"


def fold(data: bytes | list[bytes], **options: Any) -> StreamParser:
    parser = StreamParser(**options)
    for piece in [data] if isinstance(data, bytes) else data:
        parser.feed(piece)
    parser.close()
    return parser


def sse(*events: Any) -> bytes:
    return b"".join(
        b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n\n"
        for e in events
    )


def message_start(id: str = "m1") -> dict[str, Any]:
    return {"id": id, "type": "message-start", "delta": {"message": {"role": "assistant"}}}


def message_end(finish: str = "COMPLETE", **delta: Any) -> dict[str, Any]:
    return {"type": "message-end", "delta": {"finish_reason": finish, **delta}}


def text_part(index: int, *pieces: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "content-start",
            "index": index,
            "delta": {"message": {"content": {"type": "text", "text": ""}}},
        },
        *(
            {
                "type": "content-delta",
                "index": index,
                "delta": {"message": {"content": {"text": p}}},
            }
            for p in pieces
        ),
        {"type": "content-end", "index": index},
    ]


# -- what each fixture folds to ---------------------------------------------------------

# name -> (complete, error (type, code), unified view: text, reasoning, tool calls as
# (id, name, arguments), finish, raw finish, usage (input, output, total, cache read,
# reasoning))
EXPECTED: dict[str, tuple[bool, tuple[str, str | None] | None, dict[str, Any]]] = {
    "text": (
        True,
        None,
        {
            "text": "Grüße aus Köln 👋, bis bald.",
            "finish_reason": "stop",
            "raw_finish_reason": "COMPLETE",
            "usage": (210, 9, 219, None, None),
        },
    ),
    "thinking": (
        True,
        None,
        {
            "text": "17 * 3 = 51.",
            "reasoning": "The user asks for 17 * 3. 17 * 3 = 51.",
            "finish_reason": "stop",
            "usage": (1420, 34, 1454, 1376, None),
        },
    ),
    "tool-plan-calls": (
        True,
        None,
        {
            "text": "",
            "reasoning": "I will look up the weather in Paris, the time, and the news.",
            "tool_calls": [
                ("get_weather_a1b2c3", "get_weather", '{"city": "Paris", "unit": "celsius"}'),
                ("current_time_d4e5f6", "current_time", "{}"),
                ("latest_news_g7h8i9", "latest_news", "null"),
            ],
            "finish_reason": "tool_calls",
            "raw_finish_reason": "TOOL_CALL",
            "usage": (1549, 95, 1644, 1504, None),
        },
    ),
    "citations": (
        True,
        None,
        {
            "text": "Two: automation of tasks and cost reduction.",
            "finish_reason": "stop",
            "usage": (1683, 62, 1745, 992, None),
        },
    ),
    "max-tokens-logprobs": (
        True,
        None,
        {
            "text": "The sky is blue",
            "finish_reason": "length",
            "raw_finish_reason": "MAX_TOKENS",
            "usage": (500, 4, 504, 448, None),
        },
    ),
    "stop-sequence": (
        True,
        None,
        {"text": "1, 2, 3", "finish_reason": "stop", "raw_finish_reason": "STOP_SEQUENCE"},
    ),
    "error-finish": (
        False,
        ("provider_error", "ERROR"),
        {
            "text": "The history of the Eiffel Tower",
            "finish_reason": "error",
            "raw_finish_reason": "ERROR",
            "usage": (60, 4, 64, None, None),
        },
    ),
    "cut": (
        False,
        ("incomplete_stream", None),
        {
            "reasoning": "I will search.",
            "tool_calls": [("search_j1k2l3", "search", '{"query": "wea')],
            "finish_reason": None,
        },
    ),
}


def unified_of(result: streamfold.Result) -> dict[str, Any]:
    found = result.unified.to_dict()
    found["usage"] = usage_counts(found["usage"])
    found["tool_calls"] = [(c["id"], c["name"], c["arguments"]) for c in found["tool_calls"]]
    return found


def test_every_fixture_has_its_expectation() -> None:
    assert sorted(p.stem for p in PATHS) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_folds_to(name: str) -> None:
    complete, error, unified = EXPECTED[name]
    result = fold((FIXTURE_DIR / f"{name}.sse").read_bytes()).snapshot
    assert result.dialect == "cohere-chat"
    assert result.complete is complete
    assert (None if result.error is None else (result.error.type, result.error.code)) == error
    found = unified_of(result)
    for key, value in unified.items():
        assert found[key] == value, key


def test_the_native_response_has_cohere_s_shape() -> None:
    response = fold((FIXTURE_DIR / "tool-plan-calls.sse").read_bytes()).final().response
    assert response["id"] == "7d0e3f4a-2222-4b3c-9d4e-5f6071829304"
    assert response["finish_reason"] == "TOOL_CALL"
    message = response["message"]
    # As the non-streaming response: no content when none streamed, the plan whole.
    assert sorted(message) == ["role", "tool_calls", "tool_plan"]
    assert message["tool_plan"] == "I will look up the weather in Paris, the time, and the news."
    assert message["tool_calls"][1] == {
        "id": "current_time_d4e5f6",
        "type": "function",
        "function": {"name": "current_time", "arguments": "{}"},
    }
    assert response["usage"]["billed_units"] == {"input_tokens": 119, "output_tokens": 44}


def test_parts_keep_their_kind_and_order() -> None:
    message = fold((FIXTURE_DIR / "thinking.sse").read_bytes()).final().response["message"]
    assert message["content"] == [
        {"type": "thinking", "thinking": "The user asks for 17 * 3. 17 * 3 = 51."},
        {"type": "text", "text": "17 * 3 = 51."},
    ]


def test_citations_are_kept_in_the_message_and_streamed_raw() -> None:
    data = (FIXTURE_DIR / "citations.sse").read_bytes()
    parser = StreamParser()
    events = parser.feed(data) + parser.close()
    citations = parser.final().response["message"]["citations"]
    assert [c["text"] for c in citations] == ["automation of tasks", "cost reduction"]
    assert citations[0]["sources"][0]["document"]["title"] == "benefits.txt"
    raw = [e for e in events if e.type == "unknown"]
    assert [e.event for e in raw] == ["citation-start", "citation-end"] * 2  # type: ignore[union-attr]


def test_logprobs_are_streamed_and_kept() -> None:
    data = (FIXTURE_DIR / "max-tokens-logprobs.sse").read_bytes()
    parser = StreamParser()
    events = parser.feed(data) + parser.close()
    (done,) = [e for e in events if e.type == "logprobs.done"]
    assert [item["text"] for item in done.content] == ["The", " sky is", " blue"]  # type: ignore[union-attr]
    assert parser.final().response["logprobs"][1]["token_ids"] == [13180, 374]


def test_checked_results_raise_for_max_tokens() -> None:
    with pytest.raises(streamfold.TruncatedResponseError):
        streamfold.fold((FIXTURE_DIR / "max-tokens-logprobs.sse").read_bytes(), checked=True)


def test_a_failed_generation_is_a_retryable_provider_error_with_the_message_kept() -> None:
    parser = fold((FIXTURE_DIR / "error-finish.sse").read_bytes())
    error = parser.error
    assert isinstance(error, ProviderError)
    assert (error.code, error.retryable) == ("ERROR", True)
    assert str(error) == "internal server error, please try again"
    assert error.partial is not None
    assert error.partial.response["message"]["content"][0]["text"] == (
        "The history of the Eiffel Tower"
    )
    timeout = fold(sse(message_start(), *text_part(0, "Hi"), message_end("TIMEOUT"))).error
    assert isinstance(timeout, ProviderError) and timeout.code == "TIMEOUT" and timeout.retryable


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"id": "e1", "message": "invalid api token"}, id="cohere-error-body"),
        pytest.param(
            {"error": {"message": "upstream failed", "type": "server_error"}}, id="gateway"
        ),
    ],
)
def test_an_error_payload_mid_stream_is_a_provider_error(payload: dict[str, Any]) -> None:
    parser = fold(sse(message_start(), *text_part(0, "Hi")[:2], payload))
    assert isinstance(parser.error, ProviderError)
    assert parser.snapshot.text == "Hi"


def test_done_after_message_end_is_silent_and_events_after_it_are_ignored() -> None:
    data = sse(message_start(), *text_part(0, "Hi"), message_end(), b"[DONE]")
    assert fold(data).final().warnings == ()
    late = sse(message_start(), *text_part(0, "Hi"), message_end(), *text_part(1, "late"))
    result = fold(late).final()
    assert result.text == "Hi" and any("after the end" in w for w in result.warnings)


def test_a_stream_without_message_start_still_folds() -> None:
    result = fold(sse(*text_part(0, "Hi"), message_end())).final()
    assert (result.text, result.response["id"]) == ("Hi", "")


def test_event_names_stand_in_for_a_missing_type() -> None:
    body = b"".join(
        f"event: {event['type']}\ndata: ".encode()
        + json.dumps({k: v for k, v in event.items() if k != "type"}).encode()
        + b"\n\n"
        for event in [*text_part(0, "Hi", "!"), message_end()]
    )
    result = fold(sse(message_start()) + body, dialect="cohere").final()
    assert (result.text, result.finish_reason) == ("Hi!", "stop")


@pytest.mark.parametrize(
    "event, what",
    [
        pytest.param(
            {"type": "content-delta", "index": 5, "delta": {}}, "never started", id="unstarted"
        ),
        pytest.param({"type": "content-end", "delta": {}}, "'index' is missing", id="no-index"),
        pytest.param(
            {"type": "tool-call-delta", "index": 0, "delta": {}}, "never started", id="no-call"
        ),
    ],
)
def test_malformed_events_are_protocol_errors(event: dict[str, Any], what: str) -> None:
    parser = fold(sse(message_start(), event, message_end()))
    assert isinstance(parser.error, streamfold.ProtocolError) and what in str(parser.error)
    lenient = fold(sse(message_start(), event, message_end()), strict=False).final()
    assert lenient.complete and any(what in w for w in lenient.warnings)


def test_usage_prefers_tokens_and_falls_back_to_billed_units() -> None:
    both = normalise_usage(
        {
            "billed_units": {"input_tokens": 8, "output_tokens": 50},
            "tokens": {"input_tokens": 1394, "output_tokens": 54},
            "cached_tokens": 1360,
        }
    )
    assert (both.input_tokens, both.output_tokens, both.total_tokens) == (1394, 54, 1448)
    assert (both.cache_read_tokens, both.reasoning_tokens) == (1360, None)
    billed = normalise_usage({"billed_units": {"input_tokens": 8.0, "output_tokens": 50.0}})
    assert (billed.input_tokens, billed.output_tokens, billed.total_tokens) == (8, 50, 58)
    nothing = normalise_usage({"tokens": "many"})
    assert (nothing.input_tokens, nothing.total_tokens) == (None, None)


@pytest.mark.parametrize(
    "raw, unified",
    [
        ("COMPLETE", "stop"),
        ("STOP_SEQUENCE", "stop"),
        ("MAX_TOKENS", "length"),
        ("TOOL_CALL", "tool_calls"),
        ("ERROR", "error"),
        ("TIMEOUT", "error"),
        ("SOMETHING_NEW", "other"),
    ],
)
def test_finish_reasons(raw: str, unified: str) -> None:
    assert unified_finish_reason(raw) == unified


# -- detection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(message_start(), id="message-start"),
        pytest.param(text_part(0, "x")[1], id="content-delta"),
        pytest.param({"type": "tool-plan-delta", "delta": {}}, id="tool-plan-delta"),
        pytest.param(message_end(), id="message-end"),
    ],
)
def test_detected_from_its_first_event(payload: dict[str, Any]) -> None:
    assert detect(ServerSentEvent(json.dumps(payload).encode()), payload) is CohereChat


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"type": "message_start", "message": {}}, id="anthropic"),
        pytest.param({"type": "text-delta", "id": "t", "delta": "x"}, id="ai-sdk"),
        pytest.param({"type": "response.created"}, id="responses"),
        pytest.param({"message": "invalid api token"}, id="error-body"),
        pytest.param({"type": ["message-start"]}, id="type-a-list"),
        pytest.param({"type": {"message-start": 1}}, id="type-an-object"),
    ],
)
def test_not_taken_for_another_dialect(payload: dict[str, Any]) -> None:
    assert not CohereChat.detect(ServerSentEvent(json.dumps(payload).encode()), payload)


# -- the shared recordings -------------------------------------------------------------------

_CORPUS = {
    # name -> (text, reasoning starts with, tool calls (name, arguments), finish, usage)
    "cohere__other__v2-chat-reasoning": (
        "The answer to 2 + 2 is 4.",
        "The user is asking for the sum of 2 and 2.",
        [],
        ("stop", "COMPLETE"),
        (1394, 54, 1448, 1360, None),
    ),
    "cohere__other__v2-chat-tool-call": (
        "",
        "I will use the weather tool to find the weather in San Francisco",
        [
            ("weather", '{"location": "San Francisco"}'),
            ("cityAttractions", '{"city": "San Francisco"}'),
        ],
        ("tool_calls", "TOOL_CALL"),
        (1549, 95, 1644, 1504, None),
    ),
}


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"the shared corpus is absent ({CORPUS})")
@pytest.mark.parametrize("name", sorted(_CORPUS))
def test_corpus_recordings_fold_to_what_the_reference_says(name: str) -> None:
    text, reasoning, calls, finish, usage = _CORPUS[name]
    result = fold((CORPUS / f"{name}.sse").read_bytes()).final()
    assert result.dialect == "cohere-chat" and result.complete
    found = unified_of(result)
    assert found["text"] == text and found["reasoning"].startswith(reasoning)
    assert [(c[1], c[2]) for c in found["tool_calls"]] == calls
    assert (found["finish_reason"], found["raw_finish_reason"]) == finish
    assert found["usage"] == usage


def shape(value: Any) -> Any:
    """The shape of a JSON value: the keys of objects, the kinds of the rest."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


_PAIR_NAMES = sorted(p.stem for p in PAIRS.glob("cohere__*.sse")) if PAIRS.is_dir() else []


@pytest.mark.skipif(not _PAIR_NAMES, reason=f"the shared pairs are absent ({PAIRS})")
@pytest.mark.parametrize("name", _PAIR_NAMES)
def test_the_fold_has_the_shape_of_the_non_streaming_response(name: str) -> None:
    folded = fold((PAIRS / f"{name}.sse").read_bytes()).final().response
    expected = json.loads((PAIRS / f"{name}.json").read_text(encoding="utf-8"))
    assert shape(folded) == shape(expected)


# -- the typed path -----------------------------------------------------------------------


def _piece(index: int, **content: Any) -> dict[str, Any]:
    return {"type": "content-delta", "index": index, "delta": {"message": {"content": content}}}


def _arguments(index: int, piece: str) -> dict[str, Any]:
    call = {"function": {"arguments": piece}}
    return {"type": "tool-call-delta", "index": index, "delta": {"message": {"tool_calls": call}}}


def _named(*events: dict[str, Any]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


# A stream that reaches each rule of the typed path: pieces of the part's
# kind, of the other kind, empty, with logprobs, for a part or call that ended
# or never started, for a part of another type.
TYPED_PATH_STREAM = _named(
    {"type": "message-start", "id": "m1", "delta": {"message": {"role": "assistant"}}},
    {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "thinking"}}}},
    _piece(0, thinking="Let"),
    _piece(0, text="ignored"),
    _piece(0, thinking=""),
    {**_piece(0, thinking=" me"), "logprobs": {"token_ids": [1]}},
    {"type": "content-end", "index": 0},
    _piece(0, thinking="late"),
    {"type": "content-start", "index": 1, "delta": {"message": {"content": {"type": "text"}}}},
    _piece(1, text="Hi"),
    _piece(1, thinking="ignored", text=" there"),
    _piece(2, text="never started"),
    {"type": "content-start", "index": 2, "delta": {"message": {"content": {"type": "image"}}}},
    _piece(2, text="not text"),
    {"type": "content-end", "index": 1},
    {
        "type": "tool-call-start",
        "index": 0,
        "delta": {"message": {"tool_calls": {"id": "c", "function": {"name": "f"}}}},
    },
    _arguments(0, '{"a"'),
    _arguments(0, ""),
    _arguments(1, "{}"),
    _arguments(0, ": 1}"),
    {"type": "tool-call-end", "index": 0},
    _arguments(0, "late"),
    {"type": "message-end", "delta": {"finish_reason": "TOOL_CALL"}},
)


def _start(index: int, kind: str) -> dict[str, Any]:
    return {
        "type": "content-start",
        "index": index,
        "delta": {"message": {"content": {"type": kind}}},
    }


# Parts that change owner under the typed path (a plain fold keeps each content
# part's sink while the accumulator's epoch holds): two text parts and two
# thinking parts that take turns, each turn a new part of the events; thinking
# that the tool plan and then a tool call interrupt while it is open.
OWNERS_STREAM = _named(
    {"type": "message-start", "id": "m1", "delta": {"message": {"role": "assistant"}}},
    *[_start(i, "text") for i in (0, 1)],
    *[_start(i, "thinking") for i in (2, 3)],
    *[
        _piece(index, text=f"{index}.{i} ")
        if index < 2
        else _piece(index, thinking=f"{index}.{i} ")
        for i in range(3)
        for index in (0, 0, 1, 1, 2, 2, 3, 3, 0)
    ],
    {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "plan"}}},
    _piece(3, thinking="after the plan"),
    {
        "type": "tool-call-start",
        "index": 0,
        "delta": {"message": {"tool_calls": {"id": "c", "function": {"name": "f"}}}},
    },
    _piece(3, thinking="after the call"),
    _arguments(0, "{}"),
    _piece(3, thinking=" and more"),
    {"type": "tool-call-end", "index": 0},
    *[{"type": "content-end", "index": i} for i in range(4)],
    {"type": "message-end", "delta": {"finish_reason": "TOOL_CALL"}},
)


def _call_start(index: int) -> dict[str, Any]:
    call = {"id": f"c{index}", "function": {"name": "f"}}
    return {"type": "tool-call-start", "index": index, "delta": {"message": {"tool_calls": call}}}


# A call's arguments sink (kept from its second piece in a row): a call that
# the next one's start ended (its JSON whole), whose late piece the accumulator
# warns about; calls that take turns.
CALLS_STREAM = _named(
    {"type": "message-start", "id": "m1", "delta": {"message": {"role": "assistant"}}},
    _call_start(0),
    *[_arguments(0, piece) for piece in ("{", '"a": 1', "}")],
    _call_start(1),
    _arguments(0, " late"),
    _arguments(1, "["),
    _arguments(1, "1"),
    _call_start(2),
    _arguments(2, "{"),
    _arguments(1, ", 2"),
    _arguments(1, "]"),
    _arguments(2, "}"),
    *[{"type": "tool-call-end", "index": i} for i in range(3)],
    {"type": "message-end", "delta": {"finish_reason": "TOOL_CALL"}},
)


def _typed_path_sources() -> list[Any]:
    out = [pytest.param(TYPED_PATH_STREAM, id="typed-path-stream")]
    out += [pytest.param(OWNERS_STREAM, id="owners-stream")]
    out += [pytest.param(CALLS_STREAM, id="calls-stream")]
    out += [pytest.param(path.read_bytes(), id=path.stem) for path in PATHS]
    for folder, pattern in ((CORPUS, "cohere__*.sse"), (PAIRS, "cohere__*.sse")):
        if folder.is_dir():
            out += [pytest.param(p.read_bytes(), id=p.stem) for p in sorted(folder.glob(pattern))]
    return out


@pytest.mark.parametrize("data", _typed_path_sources())
def test_the_typed_path_folds_as_the_dict_path(data: bytes) -> None:
    assert_same_as_dict_path(data, CohereChat)


@pytest.mark.parametrize(
    ("stream", "taken", "refused"),
    [
        pytest.param(TYPED_PATH_STREAM, 8, 6, id="typed-path-stream"),
        pytest.param(OWNERS_STREAM, 31, 0, id="owners-stream"),
        pytest.param(CALLS_STREAM, 10, 0, id="calls-stream"),
    ],
)
def test_the_typed_path_streams_reach_each_rule(stream: bytes, taken: int, refused: int) -> None:
    counts = typed_path_counts(
        CohereChat(Accumulator()), SSEDecoder().feed(stream), ("content-delta", "tool-call-delta")
    )
    assert counts == {True: taken, False: refused}


test_hostile_streams_fold_as_the_dict_path = hostile_test(
    CohereChat, [TYPED_PATH_STREAM, OWNERS_STREAM, CALLS_STREAM, *PATHS]
)
