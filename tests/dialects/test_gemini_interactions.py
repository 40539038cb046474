"""The Gemini Interactions API (docs/dialects/gemini-interactions.md): steps and
their deltas, the content-block form before steps, statuses, usage, errors, and
the corpus.

The fixtures in tests/fixtures/gemini_interactions/ are written from Google's
Interactions API reference (ai.google.dev, "Streaming interactions") and the
stream event types of google-genai (``InteractionSSEEvent``, ``StepDelta``):
every event type and every step delta the reference lists for text, thoughts,
function calls, built-in tools and media, and every final status.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import streamfold
from streamfold import ProviderError, StreamParser
from streamfold.dialects import detect
from streamfold.dialects.gemini_interactions import (
    GeminiInteractions,
    normalise_usage,
    unified_status,
)
from streamfold.fold import Accumulator
from streamfold.sse import ServerSentEvent, SSEDecoder

from ..corpus import CORPUS, FIXTURES, usage_counts
from .typed_path import assert_same_as_dict_path, hostile_test, typed_path_counts

FIXTURE_DIR = FIXTURES / "gemini_interactions"
PATHS = sorted(FIXTURE_DIR.glob("*.sse"))
SIGNATURE = "CiQBDDnWx0fixtureSignatureAAAABBBBCCCC+/=="


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


CREATED = {
    "interaction": {"id": "v1_x", "status": "in_progress", "model": "gemini-test"},
    "event_type": "interaction.created",
}


def step(index: int, step_type: str, *deltas: dict[str, Any], **fields: Any) -> list[Any]:
    return [
        {"index": index, "step": {"type": step_type, **fields}, "event_type": "step.start"},
        *({"index": index, "delta": d, "event_type": "step.delta"} for d in deltas),
        {"index": index, "event_type": "step.stop"},
    ]


def completed(status: str = "completed", **fields: Any) -> dict[str, Any]:
    return {
        "interaction": {"id": "v1_x", "status": status, **fields},
        "event_type": "interaction.completed",
    }


# name -> (complete, error (type, code), unified view: text, reasoning, tool calls as
# (id, name, arguments), finish, raw finish, usage (input, output, total, cache read,
# reasoning))
EXPECTED: dict[str, tuple[bool, tuple[str, str | None] | None, dict[str, Any]]] = {
    "thought-summary-text": (
        True,
        None,
        {
            "text": "1, 2, 3, 4, 5 — fertig ✅",
            "reasoning": "**Counting**\n\nThe user wants 1 to 5.",
            "finish_reason": "stop",
            "raw_finish_reason": "completed",
            "usage": (12, 54, 66, 4, 40),
        },
    ),
    "function-calls": (
        True,
        None,
        {
            "text": "",
            "tool_calls": [
                ("61nzpsv4", "get_weather", '{"location":"San Francisco","unit":"celsius"}'),
                ("k2m4p6q8", "current_time", "{}"),
            ],
            "finish_reason": "tool_calls",
            "raw_finish_reason": "requires_action",
            "usage": (53, 80, 133, 0, 65),
        },
    ),
    "google-search": (
        True,
        None,
        {
            "text": "Llama 4 was released this week.",
            # The search ran on Google's side: not a call for the caller to run.
            "tool_calls": [],
            "finish_reason": "stop",
            "usage": (30, 105, 255, 0, 80),
        },
    ),
    "legacy-content-blocks": (
        True,
        None,
        {
            "text": "Let me check the weather.",
            "tool_calls": [("r7b1dyif", "get_weather", '{"location": "San Francisco"}')],
            "finish_reason": "tool_calls",
            "raw_finish_reason": "requires_action",
            "usage": (54, 58, 112, 0, 43),
        },
    ),
    "image-output": (
        True,
        None,
        {"text": "Here is a red square:", "finish_reason": "stop", "usage": (9, 1300, 1309, 0, 0)},
    ),
    "incomplete": (
        True,
        None,
        {
            "text": "Once upon a time, in a",
            "finish_reason": "length",
            "raw_finish_reason": "incomplete",
        },
    ),
    "error-event": (
        False,
        ("provider_error", "UNAVAILABLE"),
        {"text": "The history of", "finish_reason": None},
    ),
    "failed": (
        False,
        ("provider_error", "INTERNAL"),
        {"text": "Partial", "finish_reason": "error", "raw_finish_reason": "failed"},
    ),
    "cut": (
        False,
        ("incomplete_stream", None),
        {"tool_calls": [("c1", "search", '{"query":"wea')], "finish_reason": None},
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
    assert result.dialect == "gemini-interactions"
    assert result.complete is complete
    assert (None if result.error is None else (result.error.type, result.error.code)) == error
    found = unified_of(result)
    for key, value in unified.items():
        assert found[key] == value, key


def test_the_native_response_is_the_interaction_with_its_steps() -> None:
    response = fold((FIXTURE_DIR / "thought-summary-text.sse").read_bytes()).final().response
    assert (response["id"], response["status"], response["object"]) == (
        "v1_fixture_interaction_0001",
        "completed",
        "interaction",
    )
    assert response["usage"]["total_thought_tokens"] == 40
    assert response["steps"] == [
        {
            "type": "thought",
            "signature": SIGNATURE,
            "summary": [{"type": "text", "text": "**Counting**\n\nThe user wants 1 to 5."}],
        },
        {
            "type": "model_output",
            "content": [{"type": "text", "text": "1, 2, 3, 4, 5 — fertig ✅"}],
        },
    ]


def test_function_call_steps_hold_their_arguments_as_objects() -> None:
    steps = fold((FIXTURE_DIR / "function-calls.sse").read_bytes()).final().response["steps"]
    assert steps[1] == {
        "type": "function_call",
        "id": "61nzpsv4",
        "name": "get_weather",
        "arguments": {"location": "San Francisco", "unit": "celsius"},
    }
    assert steps[2]["arguments"] == {}


def test_the_thought_signature_rides_on_the_reasoning_part() -> None:
    events = list(streamfold.iter_events((FIXTURE_DIR / "function-calls.sse").read_bytes()))
    (done,) = [e for e in events if e.type == "reasoning.done"]
    assert (done.text, done.signature) == ("", SIGNATURE)  # type: ignore[union-attr]


def test_built_in_tools_are_server_calls_kept_in_the_steps() -> None:
    data = (FIXTURE_DIR / "google-search.sse").read_bytes()
    events = list(streamfold.iter_events(data))
    (call,) = [e for e in events if e.type == "tool_call.done"]
    assert (call.kind, call.name, call.value) == (  # type: ignore[union-attr]
        "server_tool_use",
        "google_search",
        {"queries": ["AI news this week"]},
    )
    steps = streamfold.fold(data).response["steps"]
    assert [s["type"] for s in steps] == [
        "thought",
        "model_output",
        "google_search_call",
        "google_search_result",
    ]
    assert steps[1]["content"][0]["annotations"][0]["type"] == "url_citation"
    assert steps[3]["result"][0]["url"] == "https://example.com/a"


def test_the_content_block_form_folds_to_outputs() -> None:
    data = (FIXTURE_DIR / "legacy-content-blocks.sse").read_bytes()
    # The call's block starts bare; its delta names it: the call starts there.
    (started,) = [e for e in streamfold.iter_events(data) if e.type == "tool_call.started"]
    assert (started.id, started.name) == ("r7b1dyif", "get_weather")  # type: ignore[union-attr]
    response = fold(data).final().response
    assert response["id"] == "" and response["role"] == "model"
    assert "steps" not in response
    assert [o["type"] for o in response["outputs"]] == ["thought", "text", "function_call"]
    assert response["outputs"][2]["arguments"] == {"location": "San Francisco"}


def test_media_stays_in_the_model_output() -> None:
    content = streamfold.fold((FIXTURE_DIR / "image-output.sse").read_bytes()).response["steps"][0]
    assert [c["type"] for c in content["content"]] == ["text", "image"]
    assert content["content"][1]["mime_type"] == "image/png"


def test_errors_carry_their_code_and_retryability() -> None:
    event = fold((FIXTURE_DIR / "error-event.sse").read_bytes()).error
    assert isinstance(event, ProviderError) and event.retryable
    assert str(event) == "The model is overloaded. Please try again later."
    failed = fold((FIXTURE_DIR / "failed.sse").read_bytes()).error
    assert isinstance(failed, ProviderError)
    assert (failed.code, failed.retryable, str(failed)) == (
        "INTERNAL",
        True,
        "An internal error has occurred.",
    )
    assert failed.partial is not None and failed.partial.text == "Partial"
    bad_request = fold(
        sse(CREATED, {"event_type": "error", "error": {"code": "INVALID_ARGUMENT", "message": "x"}})
    ).error
    assert isinstance(bad_request, ProviderError) and not bad_request.retryable
    google = fold(
        sse(CREATED, {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}})
    ).error
    assert isinstance(google, ProviderError)
    assert (google.code, google.retryable) == ("RESOURCE_EXHAUSTED", True)


def test_the_done_sentinel_and_a_status_update_are_no_content() -> None:
    data = sse(
        CREATED,
        {
            "interaction_id": "v1_x",
            "status": "in_progress",
            "event_type": "interaction.status_update",
        },
        *step(0, "model_output", {"type": "text", "text": "Hi"}),
        completed(),
        b"[DONE]",
    )
    result = fold(data).final()
    assert (result.text, result.finish_reason, result.warnings) == ("Hi", "stop", ())


def test_a_completed_event_without_a_final_status_warns() -> None:
    data = sse(
        CREATED, *step(0, "model_output", {"type": "text", "text": "Hi"}), completed("queued")
    )
    result = fold(data).final()
    assert result.finish_reason is None and any("final status" in w for w in result.warnings)


def test_usage_in_delta_metadata_and_step_stop() -> None:
    usage = {"total_input_tokens": 3, "total_output_tokens": 2}
    data = sse(
        CREATED,
        {"index": 0, "step": {"type": "model_output"}, "event_type": "step.start"},
        {
            "index": 0,
            "delta": {"type": "text", "text": "Hi"},
            "metadata": {"total_usage": usage},
            "event_type": "step.delta",
        },
        {"index": 0, "event_type": "step.stop", "usage": {**usage, "total_output_tokens": 4}},
        completed(),
    )
    result = fold(data).final()
    assert result.usage is not None and (result.usage.output_tokens, result.usage.total_tokens) == (
        4,
        7,
    )


@pytest.mark.parametrize(
    "event, what",
    [
        pytest.param(
            {"index": 3, "delta": {"type": "text", "text": "x"}, "event_type": "step.delta"},
            "never started",
            id="unstarted",
        ),
        pytest.param({"event_type": "step.stop"}, "'index' is missing", id="no-index"),
    ],
)
def test_malformed_events_are_protocol_errors(event: dict[str, Any], what: str) -> None:
    parser = fold(sse(CREATED, event, completed()))
    assert isinstance(parser.error, streamfold.ProtocolError) and what in str(parser.error)
    lenient = fold(sse(CREATED, event, completed()), strict=False).final()
    assert lenient.complete and any(what in w for w in lenient.warnings)


def test_usage_counts_thoughts_inside_the_output() -> None:
    usage = normalise_usage(
        {
            "total_tokens": 148,
            "total_input_tokens": 7,
            "total_cached_tokens": 2,
            "total_output_tokens": 26,
            "total_tool_use_tokens": 0,
            "total_thought_tokens": 115,
        }
    )
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (7, 141, 148)
    assert (usage.cache_read_tokens, usage.reasoning_tokens) == (2, 115)
    partial = normalise_usage({"total_input_tokens": 7, "total_output_tokens": 3})
    assert (partial.output_tokens, partial.total_tokens, partial.reasoning_tokens) == (3, 10, None)


@pytest.mark.parametrize(
    "status, calls, unified",
    [
        ("completed", False, "stop"),
        ("completed", True, "tool_calls"),
        ("requires_action", True, "tool_calls"),
        ("incomplete", False, "length"),
        ("budget_exceeded", False, "length"),
        ("failed", False, "error"),
        ("cancelled", False, "other"),
        ("something_new", False, "other"),
    ],
)
def test_statuses(status: str, calls: bool, unified: str) -> None:
    assert unified_status(status, calls) == unified


# -- detection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(CREATED, id="created"),
        pytest.param(step(0, "thought")[0], id="step-start"),
        pytest.param({"interaction": {}, "event_type": "interaction.start"}, id="legacy-start"),
        pytest.param({"index": 0, "content": {}, "event_type": "content.start"}, id="content"),
        pytest.param({"event_type": "error", "error": {"message": "x"}}, id="error"),
    ],
)
def test_detected_from_its_first_event(payload: dict[str, Any]) -> None:
    assert detect(ServerSentEvent(json.dumps(payload).encode()), payload) is GeminiInteractions


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"candidates": []}, id="gemini"),
        pytest.param({"type": "message-start"}, id="cohere"),
        pytest.param({"event_type": "something.else"}, id="unknown-event-type"),
        pytest.param({"event_type": ["step.start"]}, id="event-type-a-list"),
        pytest.param({"event_type": {"error": 1}, "error": {}}, id="event-type-an-object"),
    ],
)
def test_not_taken_for_another_dialect(payload: dict[str, Any]) -> None:
    event = ServerSentEvent(json.dumps(payload).encode())
    assert not GeminiInteractions.detect(event, payload)


# -- the shared recording --------------------------------------------------------------------


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"the shared corpus is absent ({CORPUS})")
def test_the_corpus_recording_folds_to_what_the_reference_says() -> None:
    path = CORPUS / "google__other__interactions-basic.sse"
    result = fold(path.read_bytes()).final()
    assert result.dialect == "gemini-interactions" and result.complete
    found = unified_of(result)
    assert found["text"].startswith("I'm doing great, thank you for asking!")
    assert (found["reasoning"], found["tool_calls"]) == ("", [])
    assert (found["finish_reason"], found["raw_finish_reason"]) == ("stop", "completed")
    # 26 answer tokens and 115 thought tokens are the output.
    assert found["usage"] == (7, 141, 148, 0, 115)
    assert [s["type"] for s in result.response["steps"]] == ["thought", "model_output"]


# -- the typed path -----------------------------------------------------------------------


def _step_delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"event_type": "step.delta", "index": index, "delta": delta}


def _named(*events: dict[str, Any]) -> bytes:
    return b"".join(f"event: {e['event_type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


_SUMMARY = {"type": "thought_summary", "content": {"type": "text", "text": "Let"}}
# A stream that reaches each rule of the typed path: pieces of the step's kind,
# of another kind, empty (an empty summary item is an item), for a step that
# stopped or never started, with a field the typed shape does not take.
TYPED_PATH_STREAM = _named(
    {"event_type": "interaction.created", "interaction": {"id": "i1", "model": "m"}},
    {"event_type": "step.start", "index": 0, "step": {"type": "thought"}},
    _step_delta(0, _SUMMARY),
    _step_delta(0, {**_SUMMARY, "content": {"type": "text", "text": ""}}),
    _step_delta(0, {"type": "text", "text": "misplaced"}),
    _step_delta(0, {"type": "thought_signature", "signature": "sig"}),
    _step_delta(0, {**_SUMMARY, "content": {"type": "text", "text": " me"}}),
    {"event_type": "step.stop", "index": 0},
    _step_delta(0, _SUMMARY),
    {"event_type": "step.start", "index": 1, "step": {"type": "model_output"}},
    _step_delta(1, {"type": "text", "text": "Hi"}),
    _step_delta(1, {"type": "text", "text": ""}),
    _step_delta(1, {"type": "text", "text": " there", "extra": 1}),
    _step_delta(1, {"type": "arguments_delta", "arguments": "{}"}),
    _step_delta(2, {"type": "text", "text": "never started"}),
    {"event_type": "step.stop", "index": 1},
    {"event_type": "step.start", "index": 2, "step": {"type": "function_call", "name": "f"}},
    _step_delta(2, {"type": "arguments_delta", "arguments": '{"a"'}),
    _step_delta(2, {"type": "arguments_delta", "arguments": ""}),
    _step_delta(2, {"type": "text", "text": "misplaced"}),
    _step_delta(2, {"type": "arguments_delta", "arguments": ": 1}"}),
    {"event_type": "step.stop", "index": 2},
    {"event_type": "interaction.completed", "interaction": {"status": "requires_action"}},
)


def _arguments(index: int, piece: str) -> dict[str, Any]:
    return _step_delta(index, {"type": "arguments_delta", "arguments": piece})


def _call_start(index: int, name: str) -> dict[str, Any]:
    return {
        "event_type": "step.start",
        "index": index,
        "step": {"type": "function_call", "name": name},
    }


# A call's arguments sink (the kept part's, from the call's second piece in a
# row): a call that the next one's start ended (its JSON whole), whose late
# piece the accumulator warns about; a call and a text step that take turns.
CALLS_STREAM = _named(
    {"event_type": "interaction.created", "interaction": {"id": "i1", "model": "m"}},
    _call_start(0, "f"),
    *[_arguments(0, piece) for piece in ("{", '"a": 1', "}")],
    _call_start(1, "g"),
    _arguments(0, " late"),
    {"event_type": "step.start", "index": 2, "step": {"type": "model_output"}},
    _arguments(1, "["),
    _arguments(1, "1"),
    _step_delta(2, {"type": "text", "text": "Hi"}),
    _arguments(1, ", 2"),
    _arguments(1, "]"),
    _step_delta(2, {"type": "text", "text": "!"}),
    *[{"event_type": "step.stop", "index": i} for i in range(3)],
    {"event_type": "interaction.completed", "interaction": {"status": "requires_action"}},
)


def _typed_path_sources() -> list[Any]:
    out = [pytest.param(TYPED_PATH_STREAM, id="typed-path-stream")]
    out += [pytest.param(CALLS_STREAM, id="calls-stream")]
    out += [pytest.param(path.read_bytes(), id=path.stem) for path in PATHS]
    if CORPUS.is_dir():
        out += [
            pytest.param(p.read_bytes(), id=p.stem)
            for p in sorted(CORPUS.glob("google__*interactions*.sse"))
        ]
    return out


@pytest.mark.parametrize("data", _typed_path_sources())
def test_the_typed_path_folds_as_the_dict_path(data: bytes) -> None:
    assert_same_as_dict_path(data, GeminiInteractions)


def test_the_typed_path_stream_reaches_each_rule() -> None:
    counts = typed_path_counts(
        GeminiInteractions(Accumulator()), SSEDecoder().feed(TYPED_PATH_STREAM), ("step.delta",)
    )
    assert counts == {True: 7, False: 8}
    counts = typed_path_counts(
        GeminiInteractions(Accumulator()), SSEDecoder().feed(CALLS_STREAM), ("step.delta",)
    )
    assert counts == {True: 10, False: 0}


test_hostile_streams_fold_as_the_dict_path = hostile_test(
    GeminiInteractions, [TYPED_PATH_STREAM, CALLS_STREAM, *PATHS]
)
