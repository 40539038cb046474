"""The OpenAI Responses dialect: the fold contract, errors one by one, provider
quirks, the corpus, split invariance, and the `openai` package's
ResponseStreamState as a differential oracle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import streamfold
from streamfold import (
    ErrorOccurred,
    IncompleteStreamError,
    ProtocolError,
    ProviderError,
    ReasoningDone,
    StreamParser,
    TextDone,
    ToolCallArgumentsDelta,
    ToolCallDone,
    ToolCallStarted,
    TruncatedResponseError,
    Unknown,
)
from streamfold.dialects.base import Dialect
from streamfold.dialects.openai_responses import OpenAIResponses, normalise_usage
from streamfold.events import Event
from streamfold.fold import Accumulator, PartKind
from streamfold.result import Result
from streamfold.sse import ServerSentEvent, SSEDecoder

from ..corpus import (
    FIXTURES,
    check_order,
    corpus_files,
    features,
    fold_pieces,
)
from .typed_path import assert_same_as_dict_path, dict_only, hostile_test

FIXTURE_DIR = FIXTURES / "openai_responses"
FIXTURE_FILES = sorted(FIXTURE_DIR.glob("*.sse"))
_CORPUS = [p.values[0] for p in corpus_files("responses") if p.values[0] is not None]
ALL_STREAMS = [pytest.param(p, id=f"fixture-{p.stem}") for p in FIXTURE_FILES] + corpus_files(
    "responses"
)
TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def fixture(name: str) -> bytes:
    return (FIXTURE_DIR / name).read_bytes()


def fold(data: bytes) -> tuple[list[Event], Result, BaseException | None]:
    events, result, error = fold_pieces([data], OpenAIResponses)
    assert result is not None
    return events, result, error


def sse(*payloads: Any, event_lines: bool = True) -> bytes:
    """A Responses stream from event objects; each gets its sequence number."""
    out = []
    for number, payload in enumerate(payloads):
        if isinstance(payload, str):
            out.append(payload)
            continue
        body = {**payload, "sequence_number": payload.get("sequence_number", number)}
        if event_lines:
            out.append(f"event: {body['type']}\n")
        out.append(f"data: {json.dumps(body)}\n\n")
    return "".join(out).encode()


def response(status: str = "in_progress", output: Any = (), **fields: Any) -> dict[str, Any]:
    body = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1741290958,
        "status": status,
        "model": "gpt-test",
        "output": list(output),
        "usage": None,
    }
    body.update(fields)
    return body


def created(**fields: Any) -> dict[str, Any]:
    return {"type": "response.created", "response": response(**fields)}


def completed(output: Any = (), **fields: Any) -> dict[str, Any]:
    return {"type": "response.completed", "response": response("completed", output, **fields)}


def message(text: str, status: str = "completed", id: str = "msg_1") -> dict[str, Any]:
    return {
        "id": id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "annotations": [], "text": text}],
    }


def function_call(arguments: str, id: str = "fc_1", call_id: str = "call_1") -> dict[str, Any]:
    return {
        "id": id,
        "type": "function_call",
        "status": "completed",
        "arguments": arguments,
        "call_id": call_id,
        "name": "get_weather",
    }


def added(index: int, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "response.output_item.added", "output_index": index, "item": item}


def item_done(index: int, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "response.output_item.done", "output_index": index, "item": item}


def text_delta(delta: str, index: int = 0, item_id: str = "msg_1") -> dict[str, Any]:
    return {
        "type": "response.output_text.delta",
        "item_id": item_id,
        "output_index": index,
        "content_index": 0,
        "delta": delta,
    }


def text_done(text: str, index: int = 0) -> dict[str, Any]:
    return {
        "type": "response.output_text.done",
        "item_id": "msg_1",
        "output_index": index,
        "content_index": 0,
        "text": text,
    }


def arguments_delta(delta: str, index: int = 0, item_id: str = "fc_1") -> dict[str, Any]:
    return {
        "type": "response.function_call_arguments.delta",
        "item_id": item_id,
        "output_index": index,
        "delta": delta,
    }


def empty_message() -> dict[str, Any]:
    return {**message(""), "status": "in_progress", "content": []}


def empty_call(id: str = "fc_1") -> dict[str, Any]:
    return {**function_call("", id=id), "status": "in_progress"}


# -- the fixtures, one by one ----------------------------------------------------------------

_WEATHER_ARGS = '{"city":"Paris","unit":"celsius"}'
_SQL = "SELECT name FROM users WHERE age > 30;"
_RATE = "Rate limit reached for gpt-4.1 on tokens per min."
_SERVER = "server_error: The server had an error while processing your request."


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param(
            "text-annotation-logprobs.sse",
            {
                "text": "Paris is the capital of France.",
                "finish": ("stop", "completed"),
                "usage": (12, 7, 19, 4, 0),
            },
            id="text",
        ),
        pytest.param(
            "reasoning-summary-function-call.sse",
            {
                "reasoning": "**Planning**\n\nThe user wants the weather in Paris."
                "**Calling the tool**",
                "calls": [("call_fixture_weather", "get_weather", _WEATHER_ARGS)],
                "finish": ("tool_calls", "completed"),
                "usage": (50, 30, 80, 0, 18),
            },
            id="reasoning-function-call",
        ),
        pytest.param(
            "custom-tool-call.sse",
            {
                "calls": [("call_fixture_sql", "run_sql", _SQL)],
                "finish": ("tool_calls", "completed"),
                "usage": (40, 12, 52, 0, 0),
            },
            id="custom-tool-call",
        ),
        pytest.param(
            "data-only-refusal.sse",
            {
                "refusal": "I'm sorry, I can't help with that.",
                "finish": ("stop", "completed"),
                "usage": (15, 10, 25, 0, 0),
            },
            id="data-only-refusal",
        ),
        pytest.param(
            "web-search-call.sse",
            {
                "text": "It is sunny in Paris today.",
                "finish": ("stop", "completed"),
                "usage": (300, 20, 320, 0, 0),
            },
            id="hosted-tool-is-not-a-tool-call",
        ),
        pytest.param(
            "incomplete-content-filter.sse",
            {
                "text": "Here is how to pick",
                "finish": ("content_filter", "content_filter"),
                "usage": (20, 5, 25, 0, 0),
            },
            id="incomplete",
        ),
        pytest.param(
            "failed.sse",
            {
                "text": "The answer is",
                "finish": ("error", "failed"),
                "error": (ProviderError, _SERVER, "server_error", True),
            },
            id="failed",
        ),
        pytest.param(
            "error-event.sse",
            {
                "text": "Partial answer",
                "finish": (None, None),
                "error": (ProviderError, _RATE, "rate_limit_exceeded", True),
            },
            id="error-event",
        ),
        pytest.param(
            "cut-before-completed.sse",
            {
                "calls": [("call_fixture_search", "search", '{"query": "weather in')],
                "finish": (None, None),
                "error": (IncompleteStreamError, None, None, False),
            },
            id="cut",
        ),
    ],
)
def test_fixture_folds(name: str, expected: dict[str, Any]) -> None:
    events, result, error = fold(fixture(name))
    unified = result.unified
    assert unified.text == expected.get("text", "")
    assert unified.reasoning == expected.get("reasoning", "")
    assert unified.refusal == expected.get("refusal", "")
    assert [(c.id, c.name, c.arguments) for c in unified.tool_calls] == expected.get("calls", [])
    assert (unified.finish_reason, unified.raw_finish_reason) == expected["finish"]
    usage = expected.get("usage")
    if usage is None:
        assert unified.usage is None
    else:
        assert unified.usage is not None
        assert (
            unified.usage.input_tokens,
            unified.usage.output_tokens,
            unified.usage.total_tokens,
            unified.usage.cache_read_tokens,
            unified.usage.reasoning_tokens,
        ) == usage
    failure = expected.get("error")
    if failure is None:
        assert error is None and result.complete
        assert result.response["status"] in ("completed", "incomplete")
    else:
        kind, message, code, retryable = failure
        assert isinstance(error, kind)
        if message is not None:
            assert str(error) == message
        if isinstance(error, ProviderError):
            assert (error.code, error.retryable) == (code, retryable)
        assert error.partial is not None and error.partial.unified == unified
        assert not result.complete
    assert result.warnings == ()
    check_order(events, failed=error is not None)


def test_text_keeps_annotations_and_logprobs() -> None:
    events, result, _ = fold(fixture("text-annotation-logprobs.sse"))
    part = result.response["output"][0]["content"][0]
    assert part["annotations"][0]["url"] == "https://en.wikipedia.org/wiki/Paris"
    assert [p["token"] for p in part["logprobs"]] == ["Paris", " is the capital", " of France."]
    streamed = [e for e in events if isinstance(e, streamfold.LogprobsDelta)]
    assert [len(e.content or []) for e in streamed] == [1, 1, 1]
    annotation = [e for e in events if isinstance(e, Unknown)]
    assert [e.event for e in annotation] == ["response.output_text.annotation.added"]
    # the citation arrives before the text ends, as on the wire
    assert events.index(annotation[0]) < next(
        i for i, e in enumerate(events) if isinstance(e, TextDone)
    )


def test_reasoning_parts_and_encrypted_content() -> None:
    events, result, _ = fold(fixture("reasoning-summary-function-call.sse"))
    done = [e for e in events if isinstance(e, ReasoningDone)]
    assert [e.text for e in done] == [
        "**Planning**\n\nThe user wants the weather in Paris.",
        "**Calling the tool**",
    ]
    # the item's encrypted content comes with output_item.done: on its last part
    assert [e.encrypted_content for e in done] == [None, "gAAAA-fixture-done"]
    reasoning = result.response["output"][0]
    assert [s["text"] for s in reasoning["summary"]] == [e.text for e in done]
    # the server's final object wins; re-encryption is not reported as a difference
    assert reasoning["encrypted_content"] == "gAAAA-fixture-final"
    call = result.response["output"][1]
    assert (call["id"], call["call_id"], call["arguments"]) == (
        "fc_fixture_1",
        "call_fixture_weather",
        _WEATHER_ARGS,
    )
    started = next(e for e in events if isinstance(e, ToolCallStarted))
    assert (started.id, started.name, started.kind) == (
        "call_fixture_weather",
        "get_weather",
        "function",
    )


def test_custom_tool_call_is_a_custom_call() -> None:
    events, result, _ = fold(fixture("custom-tool-call.sse"))
    done = next(e for e in events if isinstance(e, ToolCallDone))
    assert (done.kind, done.id, done.arguments, done.complete) == (
        "custom",
        "call_fixture_sql",
        _SQL,
        True,
    )
    assert result.response["output"][0]["input"] == _SQL


def test_hosted_tool_events_are_kept_raw() -> None:
    events, result, _ = fold(fixture("web-search-call.sse"))
    raw = [e.event for e in events if isinstance(e, Unknown)]
    assert raw == [
        "response.output_item.added",
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
        "response.output_item.done",
    ]
    assert [i["type"] for i in result.response["output"]] == ["web_search_call", "message"]
    assert not any(isinstance(e, ToolCallStarted) for e in events)


def test_hosted_tool_status_events_move_the_partial_item() -> None:
    stream = sse(
        created(),
        added(0, {"id": "ws_1", "type": "web_search_call", "status": "in_progress"}),
        {"type": "response.web_search_call.searching", "item_id": "ws_1", "output_index": 0},
    )
    _, result, error = fold(stream)
    assert isinstance(error, IncompleteStreamError)
    assert result.response["output"] == [
        {"id": "ws_1", "type": "web_search_call", "status": "searching"}
    ]


# -- errors, one by one --------------------------------------------------------------------


def test_failed_raises_code_and_message_and_keeps_the_partial() -> None:
    events, _, error = fold(fixture("failed.sse"))
    assert isinstance(error, ProviderError)
    assert str(error) == _SERVER
    assert error.raw == {
        "code": "server_error",
        "message": "The server had an error while processing your request.",
    }
    assert error.partial is not None
    assert error.partial.response["status"] == "failed"
    assert error.partial.response["output"][0]["content"][0]["text"] == "The answer is"
    text_done = next(e for e in events if isinstance(e, TextDone))
    assert (text_done.text, text_done.complete) == ("The answer is", False)
    assert isinstance(events[-1], ErrorOccurred)
    assert events[-1].error.code == "server_error"
    with pytest.raises(ProviderError):
        streamfold.fold(fixture("failed.sse"), dialect=OpenAIResponses)


@pytest.mark.parametrize(
    ("error", "message", "code"),
    [
        pytest.param(
            {"code": "invalid_prompt", "message": "Bad prompt."},
            "invalid_prompt: Bad prompt.",
            "invalid_prompt",
            id="code-and-message",
        ),
        pytest.param({"code": "", "message": "Bad prompt."}, "Bad prompt.", None, id="empty-code"),
        pytest.param({"code": None, "message": "Bad prompt."}, "Bad prompt.", None, id="null-code"),
        pytest.param(None, "the response failed", None, id="no-error-object"),
    ],
)
def test_failed_message_format(error: Any, message: str, code: str | None) -> None:
    stream = sse(
        created(),
        {"type": "response.failed", "response": response("failed", error=error)},
    )
    _, _, raised = fold(stream)
    assert isinstance(raised, ProviderError)
    assert (str(raised), raised.code) == (message, code)


def test_error_event_stops_the_stream_and_nothing_follows() -> None:
    data = fixture("error-event.sse")
    parser = StreamParser(OpenAIResponses)
    events = parser.feed(data)
    # the response.failed after the error event is never folded
    assert isinstance(events[-1], ErrorOccurred)
    assert sum(isinstance(e, ErrorOccurred) for e in events) == 1
    assert parser.feed(sse(text_delta("more"))) == []
    assert parser.close() == []
    assert isinstance(parser.error, ProviderError)
    assert parser.error.provider_message == _RATE
    assert parser.error.partial is not None
    assert parser.error.partial.response["output"][0]["content"][0]["text"] == "Partial answer"
    assert parser.error.partial.response["status"] == "in_progress"


@pytest.mark.parametrize(
    ("payload", "message", "code", "error_type", "retryable"),
    [
        pytest.param(
            {
                "type": "error",
                "code": "ERR_SOMETHING",
                "message": "Something went wrong",
                "param": None,
            },
            "Something went wrong",
            "ERR_SOMETHING",
            None,
            False,
            id="documented-shape",
        ),
        pytest.param(
            {
                "type": "error",
                "error": {
                    "type": "insufficient_quota",
                    "code": "insufficient_quota",
                    "message": "You exceeded your quota.",
                    "param": None,
                },
            },
            "You exceeded your quota.",
            "insufficient_quota",
            "insufficient_quota",
            False,
            id="nested-error-object",
        ),
        pytest.param(
            {"type": "error", "code": "server_error", "message": "", "param": None},
            "the provider reported an error",
            "server_error",
            None,
            True,
            id="empty-message",
        ),
        pytest.param(
            {"type": "error", "code": None, "message": "Overloaded", "param": None},
            "Overloaded",
            None,
            None,
            False,
            id="null-code",
        ),
    ],
)
def test_error_event(
    payload: dict[str, Any],
    message: str,
    code: str | None,
    error_type: str | None,
    retryable: bool,
) -> None:
    _, _, error = fold(sse(created(), payload))
    assert isinstance(error, ProviderError)
    assert (str(error), error.code, error.error_type, error.retryable) == (
        message,
        code,
        error_type,
        retryable,
    )


def test_error_named_only_by_the_event_line() -> None:
    stream = sse(created()) + b'event: error\ndata: {"error": {"message": "boom", "code": "x"}}\n\n'
    _, _, error = fold(stream)
    assert isinstance(error, ProviderError)
    assert (str(error), error.code) == ("boom", "x")


def test_incomplete_is_complete_but_truncated() -> None:
    parser = StreamParser(OpenAIResponses)
    parser.feed(fixture("incomplete-content-filter.sse"))
    parser.close()
    result = parser.final()
    assert result.complete and result.response["status"] == "incomplete"
    assert result.response["incomplete_details"] == {"reason": "content_filter"}
    with pytest.raises(TruncatedResponseError) as caught:
        parser.final(checked=True)
    assert caught.value.reason == "content_filter"


@pytest.mark.parametrize(
    ("reason", "unified", "raw"),
    [
        pytest.param("max_output_tokens", "length", "max_output_tokens", id="max-output-tokens"),
        pytest.param("content_filter", "content_filter", "content_filter", id="content-filter"),
        pytest.param("something_new", "other", "something_new", id="unknown-reason"),
        pytest.param(None, "other", "incomplete", id="no-reason"),
    ],
)
def test_incomplete_reasons(reason: str | None, unified: str, raw: str) -> None:
    details = {"reason": reason} if reason else None
    stream = sse(
        created(),
        {
            "type": "response.incomplete",
            "response": response("incomplete", incomplete_details=details),
        },
    )
    _, result, error = fold(stream)
    assert error is None and result.complete
    assert (result.finish_reason, result.unified.raw_finish_reason) == (unified, raw)


def test_cut_stream_is_incomplete_and_the_call_is_never_complete() -> None:
    events, result, error = fold(fixture("cut-before-completed.sse"))
    assert isinstance(error, IncompleteStreamError)
    done = next(e for e in events if isinstance(e, ToolCallDone))
    assert (done.arguments, done.complete) == ('{"query": "weather in', False)
    item = result.response["output"][0]
    assert (item["status"], item["arguments"], item["call_id"]) == (
        "in_progress",
        '{"query": "weather in',
        "call_fixture_search",
    )


def test_done_marker_without_a_terminal_event_is_incomplete() -> None:
    _, result, error = fold(sse(created(), text_delta("hi")) + b"data: [DONE]\n\n")
    assert isinstance(error, IncompleteStreamError)
    assert any("[DONE] before any terminal" in w for w in result.warnings)


def test_malformed_json_is_a_protocol_error_naming_the_event() -> None:
    _, _, error = fold(sse(created()) + b"data: {not json\n\n")
    assert isinstance(error, ProtocolError)
    assert error.position == 1
    _, _, error = fold(sse(created()) + b"data: [1, 2]\n\n")
    assert isinstance(error, ProtocolError) and "not a JSON object" in str(error)


# -- the fold: identity, reconciliation, quirks -------------------------------------------------


def test_copilot_rotating_item_ids_keep_one_call() -> None:
    # GitHub Copilot rotates item ids (and the response id) on every event;
    # output_index stays the same.
    stream = sse(
        created(id="capture-1"),
        {"type": "response.in_progress", "response": response(id="capture-2")},
        added(0, empty_call(id="id-3")),
        arguments_delta('{"city":', item_id="id-4"),
        arguments_delta('"Oslo"}', item_id="id-5"),
        item_done(0, function_call('{"city":"Oslo"}', id="id-6")),
        completed([function_call('{"city":"Oslo"}', id="id-7")], id="capture-8"),
        event_lines=False,
    )
    events, result, error = fold(stream)
    assert error is None
    assert [(c.id, c.arguments) for c in result.unified.tool_calls] == [
        ("call_1", '{"city":"Oslo"}')
    ]
    assert sum(isinstance(e, ToolCallStarted) for e in events) == 1
    assert result.response["id"] == "capture-8"
    assert result.response["output"][0]["id"] == "id-7"
    id_warnings = [w for w in result.warnings if "response id changed" in w]
    assert len(id_warnings) == 1  # once, not per event
    assert any("output[0] (function_call) differs" in w and "in id;" in w for w in result.warnings)


def test_final_arguments_win_over_the_deltas() -> None:
    stream = sse(
        created(),
        added(0, empty_call()),
        arguments_delta('{"city":"Osl'),
        {
            "type": "response.function_call_arguments.done",
            "item_id": "fc_1",
            "output_index": 0,
            "arguments": '{"city":"Oslo"}',
        },
        arguments_delta("garbage after done"),
        item_done(0, function_call('{"city":"Bergen"}')),
        completed([function_call('{"city":"Bergen"}')]),
    )
    events, result, _ = fold(stream)
    done = next(e for e in events if isinstance(e, ToolCallDone))
    assert done.arguments == '{"city":"Bergen"}'
    assert done.value == {"city": "Bergen"}
    assert result.unified.tool_calls[0].arguments == '{"city":"Bergen"}'
    assert result.response["output"][0]["arguments"] == '{"city":"Bergen"}'
    assert any("the deltas hold 12 of the 15 characters" in w for w in result.warnings)
    assert any("differs from the deltas; it wins" in w for w in result.warnings)


def test_arguments_only_in_the_done_event() -> None:
    # LM Studio sends a function call's arguments only in ...arguments.done.
    stream = sse(
        created(),
        added(0, empty_call()),
        {
            "type": "response.function_call_arguments.done",
            "item_id": "fc_1",
            "output_index": 0,
            "arguments": '{"city":"Oslo"}',
        },
        item_done(0, function_call('{"city":"Oslo"}')),
        completed([function_call('{"city":"Oslo"}')]),
        event_lines=False,
    )
    events, result, _ = fold(stream)
    deltas = [e.delta for e in events if isinstance(e, ToolCallArgumentsDelta)]
    assert deltas == ['{"city":"Oslo"}']
    assert result.warnings == ()


@pytest.mark.parametrize(
    ("deltas", "final", "warning"),
    [
        pytest.param(["Hel", "lo"], "Hello", None, id="equal"),
        pytest.param(["Hel"], "Hello", "the deltas hold 3 of the 5 characters", id="missing-end"),
        pytest.param([], "Hello", None, id="no-deltas"),
        pytest.param(["Help"], "Hello", "differs from the deltas; it wins", id="different"),
        pytest.param(["Hello"], "", "the done event's text is empty", id="empty-done"),
    ],
)
def test_done_text_against_the_deltas(deltas: list[str], final: str, warning: str | None) -> None:
    stream = sse(
        created(),
        added(0, empty_message()),
        *[text_delta(d) for d in deltas],
        text_done(final),
    )
    events, result, error = fold(stream)
    assert isinstance(error, IncompleteStreamError)
    expected = final or "".join(deltas)
    assert result.unified.text == expected
    assert result.response["output"][0]["content"][0]["text"] == expected
    assert [e.text for e in events if isinstance(e, TextDone)] == [expected]
    if warning is None:
        assert result.warnings == ()
    else:
        assert any(warning in w for w in result.warnings), result.warnings


def test_a_replaced_open_part_takes_later_deltas_once() -> None:
    # A reasoning part stays open after its text's done event: when that text
    # differs, it replaces the deltas, and a later delta extends it once.
    reasoning = {"id": "rs_1", "type": "reasoning", "summary": []}
    where = {"item_id": "rs_1", "output_index": 0, "summary_index": 0}
    stream = sse(
        created(),
        added(0, reasoning),
        {"type": "response.reasoning_summary_text.delta", **where, "delta": "Thinkng"},
        {"type": "response.reasoning_summary_text.done", **where, "text": "Thinking"},
        {"type": "response.reasoning_summary_text.delta", **where, "delta": "!"},
    )
    events, result, _ = fold(stream)
    assert result.unified.reasoning == "Thinking!"
    assert result.response["output"][0]["summary"][0]["text"] == "Thinking!"
    assert [e.text for e in events if isinstance(e, ReasoningDone)] == ["Thinking!"]


def test_server_output_wins_and_each_difference_is_reported() -> None:
    stream = sse(
        created(),
        added(0, empty_message()),
        text_delta("Hi there"),
        item_done(0, message("Hi there")),
        completed([{**message("Hi there!"), "id": "msg_final"}]),
    )
    _, result, _ = fold(stream)
    assert result.response["output"][0]["content"][0]["text"] == "Hi there!"
    assert result.response["output"][0]["id"] == "msg_final"
    differences = [w for w in result.warnings if "differs from the streamed" in w]
    assert differences == [
        "response.completed: output[0] (message) differs from the streamed output[0] "
        "(message) in content, id; the server's item wins"
    ]


def test_terminal_event_with_an_empty_output_keeps_the_streamed_items() -> None:
    stream = sse(created(), added(0, empty_message()), text_delta("Hi"), completed([]))
    _, result, _ = fold(stream)
    assert result.response["output"][0]["content"][0]["text"] == "Hi"
    assert any("carries an empty output" in w for w in result.warnings)


def test_only_a_terminal_event_still_gives_the_unified_view() -> None:
    # Some gateways stream nothing but response.completed.
    stream = sse(completed([message("All at once"), function_call("{}")]))
    events, result, error = fold(stream)
    assert error is None
    assert result.unified.text == "All at once"
    assert [(c.id, c.arguments) for c in result.unified.tool_calls] == [("call_1", "{}")]
    started = next(e for e in events if isinstance(e, ToolCallStarted))
    assert (started.id, started.name) == ("call_1", "get_weather")
    assert result.finish_reason == "tool_calls"
    check_order(events, failed=error is not None)


def test_a_whole_response_object_as_the_body() -> None:
    # A gateway that answered without streaming: the body is one Response object.
    body = json.dumps(response("completed", [message("Not streamed")]))
    events, result, error = fold(body.encode())
    assert error is None and result.complete
    assert result.unified.text == "Not streamed"
    assert result.response["output"] == [message("Not streamed")]
    check_order(events, failed=error is not None)


def test_data_only_stream_takes_the_type_from_the_json() -> None:
    stream = sse(
        created(),
        added(0, empty_message()),
        text_delta("Hi"),
        item_done(0, message("Hi")),
        completed([message("Hi")]),
        event_lines=False,
    )
    _, result, error = fold(stream)
    assert error is None and result.text == "Hi" and result.warnings == ()


def test_event_line_disagreeing_with_the_data_is_reported_once() -> None:
    delta = json.dumps(text_delta("Hi"))
    stream = (
        sse(created(), added(0, empty_message()))
        + f"event: response.refusal.delta\ndata: {delta}\n\n".encode() * 2
        + sse(completed([message("HiHi")]))
    )
    _, result, _ = fold(stream)
    assert result.unified.text == "HiHi" and result.unified.refusal == ""
    disagreements = [w for w in result.warnings if "the event line says" in w]
    assert len(disagreements) == 1


def test_data_before_event_line_and_an_event_line_alone() -> None:
    # Amazon Bedrock Mantle writes `data:` before `event:` in each event; an
    # `event:` line with no data is dropped by the SSE rules.
    first = json.dumps(created())
    stream = (
        f"data: {first}\nevent: response.created\n\n".encode()
        + b"event: response.in_progress\n\n"
        + sse(added(0, empty_message()), text_delta("Hi"), completed([message("Hi")]))
    )
    _, result, error = fold(stream)
    assert error is None and result.text == "Hi"


@pytest.mark.parametrize(
    ("numbers", "warning"),
    [
        pytest.param([0, 1, 2, 3], None, id="in-order"),
        pytest.param([0, 1, 5, 6], "jumps from 1 to 5 (3 events missing)", id="gap"),
        pytest.param([0, 1, 1, 2], "goes from 1 back to 1", id="repeat"),
    ],
)
def test_sequence_number_gaps(numbers: list[int], warning: str | None) -> None:
    payloads = [created(), added(0, empty_message()), text_delta("Hi"), completed([message("Hi")])]
    stream = sse(*[{**p, "sequence_number": n} for p, n in zip(payloads, numbers, strict=True)])
    _, result, error = fold(stream)
    assert error is None and result.text == "Hi"
    gaps = [w for w in result.warnings if "sequence_number" in w]
    assert gaps == ([] if warning is None else [gaps[0]])
    if warning is not None:
        assert warning in gaps[0]


def test_delta_before_its_item_is_folded_with_a_warning() -> None:
    stream = sse(created(), text_delta("Hi"), completed([message("Hi")]))
    _, result, error = fold(stream)
    assert error is None and result.text == "Hi"
    assert any("before the item's output_item.added" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("delta", "model"),
    [
        pytest.param(text_delta("Hi"), "ResponseOutputMessage", id="message"),
        pytest.param(
            {
                "type": "response.reasoning_summary_text.delta",
                "item_id": "rs_1",
                "output_index": 0,
                "summary_index": 0,
                "delta": "Hm",
            },
            "ResponseReasoningItem",
            id="reasoning",
        ),
    ],
)
def test_an_item_inferred_from_its_content_is_a_valid_output_item(
    delta: dict[str, Any], model: str
) -> None:
    # Seen in error partials: the content's event came before the item's
    # output_item.added. The item still has the fields an added event gives
    # (a message's role and status), so the partial stays a valid Response.
    from openai.types import responses

    error_event = {"type": "error", "code": "server_error", "message": "boom"}
    _, result, error = fold(sse(created(), delta, error_event))
    assert error is not None
    item = result.response["output"][0]
    getattr(responses, model).model_validate(item)


def test_interleaved_parts_are_never_merged() -> None:
    # OpenRouter streams a message while its reasoning item is still open; two
    # text parts of one message must stay two parts.
    reasoning = {"id": "rs_1", "type": "reasoning", "summary": []}
    stream = sse(
        created(),
        added(0, reasoning),
        {
            "type": "response.reasoning_text.delta",
            "item_id": "rs_1",
            "output_index": 0,
            "content_index": 0,
            "delta": "think",
        },
        added(1, empty_message()),
        text_delta("one", index=1),
        {**text_delta("two", index=1), "content_index": 1},
        {
            "type": "response.reasoning_text.done",
            "item_id": "rs_1",
            "output_index": 0,
            "content_index": 0,
            "text": "think",
        },
        item_done(0, {**reasoning, "content": [{"type": "reasoning_text", "text": "think"}]}),
        completed(),
    )
    events, result, error = fold(stream)
    assert [e.text for e in events if isinstance(e, TextDone)] == ["one", "two"]
    assert [e.text for e in events if isinstance(e, ReasoningDone)] == ["think"]
    assert [p["text"] for p in result.response["output"][1]["content"]] == ["one", "two"]
    check_order(events, failed=error is not None)


# -- usage and finish reasons -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            {
                "input_tokens": 10,
                "output_tokens": 5,
                "total_tokens": 15,
                "input_tokens_details": {"cached_tokens": 3},
                "output_tokens_details": {"reasoning_tokens": 2},
            },
            (10, 5, 15, 3, None, 2),
            id="openai",
        ),
        pytest.param(
            {
                "input_tokens": 88,
                "output_tokens": 14,
                "total_tokens": 102,
                "input_tokens_details": {"cache_write_tokens": 7, "cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
            (88, 14, 102, 0, 7, 0),
            id="bedrock-cache-write",
        ),
        pytest.param({"input_tokens": 4}, (4, None, None, None, None, None), id="partial"),
        pytest.param(
            {"input_tokens": "4", "output_tokens": True, "input_tokens_details": None},
            (None, None, None, None, None, None),
            id="garbage-is-not-a-count",
        ),
    ],
)
def test_usage_normalised(raw: dict[str, Any], expected: tuple[Any, ...]) -> None:
    usage = normalise_usage(raw)
    assert (
        usage.input_tokens,
        usage.output_tokens,
        usage.total_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        usage.reasoning_tokens,
    ) == expected
    assert usage.raw is raw


def test_usage_never_reported_is_none() -> None:
    _, result, _ = fold(sse(created(), completed()))
    assert result.usage is None and result.response["usage"] is None


@pytest.mark.parametrize(
    ("output", "unified"),
    [
        pytest.param([message("hi")], "stop", id="text"),
        pytest.param([message("hi"), function_call("{}")], "tool_calls", id="function-call"),
        pytest.param(
            [{"id": "c", "type": "custom_tool_call", "call_id": "c1", "name": "n", "input": "x"}],
            "tool_calls",
            id="custom-call",
        ),
        pytest.param(
            [{"id": "ws", "type": "web_search_call", "status": "completed"}, message("hi")],
            "stop",
            id="hosted-tool",
        ),
        pytest.param([], "stop", id="empty"),
    ],
)
def test_completed_finish_reason(output: list[Any], unified: str) -> None:
    _, result, _ = fold(sse(created(), completed(output)))
    assert (result.finish_reason, result.unified.raw_finish_reason) == (unified, "completed")


# -- detection --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "event", "expected"),
    [
        pytest.param({"type": "response.created", "response": {}}, "message", True, id="created"),
        pytest.param({"type": "response.output_text.delta"}, "message", True, id="mid-stream"),
        pytest.param(
            {"type": "error", "code": "x", "message": "m", "sequence_number": 0},
            "message",
            True,
            id="responses-error",
        ),
        pytest.param(
            {"object": "response", "status": "completed"}, "message", True, id="whole-response"
        ),
        pytest.param({"data": 1}, "response.created", True, id="event-line-only"),
        pytest.param(
            {"type": "error", "error": {"type": "overloaded_error"}},
            "error",
            False,
            id="anthropic-error",
        ),
        pytest.param(
            {"type": "message_start", "message": {}}, "message_start", False, id="anthropic"
        ),
        pytest.param(
            {"object": "chat.completion.chunk", "choices": []}, "message", False, id="chat"
        ),
        pytest.param({"candidates": []}, "message", False, id="gemini"),
        pytest.param([], "message", False, id="not-an-object"),
    ],
)
def test_detect(payload: Any, event: str, expected: bool) -> None:
    sse_event = ServerSentEvent(b"{}", event=event, event_set=event != "message")
    assert OpenAIResponses.detect(sse_event, payload) is expected


def _first_event(path: Path) -> tuple[ServerSentEvent, Any]:
    decoder = SSEDecoder()
    for event in decoder.feed(path.read_bytes()) + decoder.close():
        if event.data != "[DONE]":
            return event, json.loads(event.data)
    raise AssertionError(f"{path.name} has no event")


# -- the corpus -------------------------------------------------------------------------------

# Read from each stream's end: the error it carries, and its message.
_EXPECTED_ERRORS: dict[str, tuple[type[BaseException], str]] = {
    "openai__responses__error-insufficient-quota-failed.sse": (ProviderError, "You exceeded"),
    "openai__responses__midstream-error-after-output.sse": (
        ProviderError,
        "Conversation with id",
    ),
    "openai__responses__stream-error-event.sse": (ProviderError, "Something went wrong"),
    "openai__responses__stream-failed-event.sse": (
        ProviderError,
        "server_error: The model failed to generate a response.",
    ),
}
# Captures of several HTTP responses concatenated (vercel multi-step): the first
# response.completed ends the stream, the rest is ignored with warnings.
_CONCATENATED = {
    "azure__responses__reasoning-encrypted-three-parallel-calls.sse",
    "openai__responses__reasoning-encrypted-parallel-function-calls.sse",
}


@pytest.mark.parametrize("path", corpus_files("responses"))
def test_corpus_stream_folds(path: Path) -> None:
    events, result, error = fold(path.read_bytes())
    assert result.dialect == "openai-responses"
    expected = _EXPECTED_ERRORS.get(path.name)
    if expected is not None:
        kind, message = expected
        assert isinstance(error, kind) and isinstance(error, streamfold.StreamfoldError)
        assert str(error).startswith(message)
        assert isinstance(events[-1], ErrorOccurred)
        assert error.partial is not None
        return
    assert error is None, f"{path.name}: {error!r}"
    assert result.complete
    has = features(path)
    if path.name in _CONCATENATED:
        # the manifest's features describe all the captured responses, the
        # fold only the first: its reasoning and one function call
        assert result.response["id"] == _first_event(path)[1]["response"]["id"]
        assert any("after the end of the stream ignored" in w for w in result.warnings)
        has -= {"text", "parallel_tool_calls"}
    output = result.response["output"]
    assert output and result.response["status"] in ("completed", "incomplete")
    if "incomplete" in has:
        assert result.finish_reason == "length"
    if "text" in has:
        assert result.text
    if "tool_calls" in has:
        hosted = {i["type"] for i in output} - {"message", "reasoning"}
        assert result.unified.tool_calls or hosted
        for call in result.unified.tool_calls:
            assert call.id and call.name
            if "custom" not in path.name:
                json.loads(call.arguments or "{}")
    if "reasoning" in has:
        assert result.unified.reasoning or any(i["type"] == "reasoning" for i in output)
    if "usage" in has:
        assert result.usage is not None and result.usage.total_tokens
    if "parallel_tool_calls" in has:
        assert len(result.unified.tool_calls) > 1
    check_order(events, failed=error is not None)


@pytest.mark.skipif(not _CORPUS, reason="the shared corpus is absent")
def test_corpus_copilot_rotating_ids_fold_to_one_message() -> None:
    path = next(p for p in _CORPUS if p.name.startswith("github-copilot__responses__"))
    events, result, error = fold(path.read_bytes())
    assert error is None
    message_items = [i for i in result.response["output"] if i["type"] == "message"]
    assert len(message_items) == 1
    assert result.text == message_items[0]["content"][0]["text"]
    assert sum(isinstance(e, TextDone) for e in events) == 1


@pytest.mark.skipif(not _CORPUS, reason="the shared corpus is absent")
def test_corpus_openrouter_done_marker_after_completed() -> None:
    path = next(p for p in _CORPUS if p.name.startswith("openrouter__responses__"))
    _, result, error = fold(path.read_bytes())
    assert error is None and result.complete
    # OpenRouter ends even Responses streams with [DONE]: ignored without a warning.
    assert not any("[DONE]" in warning for warning in result.warnings)


# -- differential: the openai package's ResponseStreamState ------------------------------------

# Keys the SDK's ParsedResponse adds to what the server sent.
_SDK_ONLY_KEYS = frozenset({"parsed", "parsed_arguments"})

# stream -> why the SDK gives no final Response for it (we do, or raise our error).
SDK_REJECTS: dict[str, str] = {
    "github-copilot__responses__rotating-item-ids.sse": (
        "Copilot rotates the response id between lifecycle events: the SDK raises "
        "RuntimeError('Lifecycle response identity changed.'); we keep the latest id"
    ),
    "openai__responses__stream-error-event.sse": (
        "a delta before any output_item.added: the SDK raises RuntimeError; we fold the "
        "text into an assumed message item (with a warning), then raise the error event"
    ),
    "openai__responses__stream-failed-event.sse": (
        "a delta before any output_item.added: the SDK raises RuntimeError; we fold it, "
        "then raise ProviderError for response.failed"
    ),
    "openai__responses__error-insufficient-quota-failed.sse": (
        "an error event with an `error` object: the SDK's Stream raises APIError; so do we "
        "(ProviderError)"
    ),
    "openai__responses__midstream-error-after-output.sse": (
        "an error event with an `error` object: the SDK's Stream raises APIError; so do we"
    ),
    "openai__responses__handwritten-incomplete-max-output-tokens.sse": (
        "response.incomplete: get_final_response() needs response.completed; we end with "
        "a truncated result (finish 'length')"
    ),
    "fixture-incomplete-content-filter.sse": (
        "response.incomplete: no final Response from the SDK; we end truncated"
    ),
    "fixture-failed.sse": "response.failed: no final Response from the SDK; we raise ProviderError",
    "fixture-error-event.sse": (
        "the documented error event (top-level code/message, no `error` object) passes the "
        "SDK's Stream as an ordinary event and the stream goes on; we raise ProviderError"
    ),
    "fixture-cut-before-completed.sse": "cut before response.completed: no final Response",
}

# stream -> (the field in which the items built from the deltas alone differ from
# the SDK's final Response, why). Elsewhere they are equal.
DELTAS_DIVERGE: dict[str, tuple[str, str]] = {
    "lmstudio__responses__tool-call-logprobs-reasoning.sse": (
        "arguments",
        "LM Studio sends the function call's arguments only in "
        "function_call_arguments.done, never as deltas; with the done events we match",
    ),
    "openai__responses__phase-commentary.sse": (
        "texts",
        "the capture lost most text deltas (sequence_number gaps); the output_text.done "
        "event completes the text, and with the done events we match",
    ),
    "openrouter__responses__reasoning-text-with-done-marker.sse": (
        "id",
        "OpenRouter's temporary reasoning item id (rs_tmp_...) changes in "
        "response.completed, whose id the final response (ours and the SDK's) takes",
    ),
}


def sdk_final(data: bytes) -> tuple[Any, str | None]:
    """Fold with the SDK as its Stream does: stop at [DONE] or an `error` key;
    stop after the first terminal event (one HTTP response carries one Response)."""
    sdk = pytest.importorskip("openai.lib.streaming.responses._responses")
    omit = pytest.importorskip("openai").omit
    models = pytest.importorskip("openai._models")
    types = pytest.importorskip("openai.types.responses")
    decoder = SSEDecoder()
    state = sdk.ResponseStreamState(input_tools=omit, text_format=omit)
    try:
        for sse_event in decoder.feed(data) + decoder.close():
            if sse_event.data.startswith("[DONE]"):
                break
            payload = json.loads(sse_event.data)
            if payload.get("error"):
                return None, "APIError"
            event = models.construct_type(type_=types.ResponseStreamEvent, value=payload)
            state.handle_event(event)
            if payload.get("type") in TERMINAL:
                break
    except RuntimeError as exc:
        return None, f"RuntimeError: {exc}"
    final = state._completed_response
    return final, None if final is not None else "no response.completed"


def deltas_only(data: bytes) -> dict[str, Any]:
    """Our response built from the deltas alone: no `*.done`, no terminal event."""
    decoder = SSEDecoder()
    dialect = OpenAIResponses(Accumulator(emit=False))
    for sse_event in decoder.feed(data) + decoder.close():
        if sse_event.raw == b"[DONE]":
            break
        kind = json.loads(sse_event.raw).get("type")
        if kind in TERMINAL:
            break
        if not kind.endswith(".done"):
            dialect.handle(sse_event)
    return dialect.response()


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in _SDK_ONLY_KEYS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _essentials(item: dict[str, Any]) -> dict[str, Any]:
    texts = [
        p.get("text", p.get("refusal"))
        for p in [*(item.get("summary") or []), *(item.get("content") or [])]
        if isinstance(p, dict)
    ]
    keys = ("type", "id", "call_id", "name", "arguments", "input")
    return {"texts": texts, **{k: item.get(k) for k in keys}}


def _sdk_reasoning(final: Any) -> str:
    parts = []
    for item in final.output:
        if item.type == "reasoning":
            parts += [s.text for s in item.summary] + [c.text for c in item.content or []]
    return "".join(parts)


@pytest.mark.parametrize("path", ALL_STREAMS)
def test_differential_against_the_sdk(path: Path) -> None:
    data = path.read_bytes()
    name = path.name if path.parent != FIXTURE_DIR else f"fixture-{path.name}"
    final, rejected = sdk_final(data)
    _, result, error = fold(data)
    if rejected is not None:
        assert name in SDK_REJECTS, f"the SDK rejects {name}: {rejected}"
        return
    assert name not in SDK_REJECTS, f"the SDK now accepts {name}"
    assert error is None
    sdk = _strip(final.to_dict())
    assert sdk == result.response
    assert result.unified.text == final.output_text
    assert result.unified.reasoning == _sdk_reasoning(final)
    sdk_calls = [
        (i.call_id, i.name, i.arguments if i.type == "function_call" else i.input)
        for i in final.output
        if i.type in ("function_call", "custom_tool_call")
    ]
    assert [(c.id, c.name, c.arguments) for c in result.unified.tool_calls] == sdk_calls
    usage = final.usage
    assert result.usage is not None and usage is not None
    assert (
        result.usage.input_tokens,
        result.usage.output_tokens,
        result.usage.total_tokens,
        result.usage.cache_read_tokens,
        result.usage.reasoning_tokens,
    ) == (
        usage.input_tokens,
        usage.output_tokens,
        usage.total_tokens,
        usage.input_tokens_details.cached_tokens,
        usage.output_tokens_details.reasoning_tokens,
    )
    # The deltas alone build the same items (where the stream has them all).
    ours = [_essentials(i) for i in deltas_only(data)["output"]]
    theirs = [_essentials(i) for i in sdk["output"]]
    divergence = DELTAS_DIVERGE.get(name)
    if divergence is None:
        assert ours == theirs
    else:
        field, _why = divergence
        assert [{**i, field: None} for i in ours] == [{**i, field: None} for i in theirs]
        assert ours != theirs, f"{name} no longer diverges in {field}"


# -- untrusted values ---------------------------------------------------------------------


def text_stream() -> list[dict[str, Any]]:
    shell = {**message(""), "status": "in_progress", "content": []}
    part = {"type": "output_text", "annotations": [], "text": ""}
    where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    return [
        created(),
        added(0, shell),
        {"type": "response.content_part.added", **where, "part": part},
        {"type": "response.output_text.delta", **where, "delta": "Hi"},
        {
            "type": "response.output_text.annotation.added",
            **where,
            "annotation_index": 0,
            "annotation": {"type": "url_citation", "url": "https://example.com"},
        },
        {"type": "response.output_text.done", **where, "text": "Hi"},
        {"type": "response.content_part.done", **where, "part": {**part, "text": "Hi"}},
        item_done(0, message("Hi")),
        completed([message("Hi")]),
    ]


def with_value(events: list[dict[str, Any]], number: int, path: str, value: Any) -> bytes:
    """The stream with ``value`` at a dotted ``path`` of event ``number``."""
    events = json.loads(json.dumps(events))
    node: Any = events[number]
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value
    return sse(*events)


# Optional fields of the wrong type are absent (the wire models are tolerant):
# no exception, no error, the text folded.
@pytest.mark.parametrize(
    ("number", "path"),
    [
        pytest.param(8, "response.output.0.type", id="completed-item-type"),
        pytest.param(2, "part.type", id="part-added-type"),
        pytest.param(6, "part.type", id="part-done-type"),
        pytest.param(1, "item.type", id="item-added-type"),
        pytest.param(7, "item.type", id="item-done-type"),
        pytest.param(3, "output_index", id="delta-output-index"),
        pytest.param(3, "content_index", id="delta-content-index"),
        pytest.param(4, "annotation_index", id="annotation-index"),
        pytest.param(3, "sequence_number", id="sequence-number"),
        pytest.param(8, "response.id", id="response-id"),
        pytest.param(8, "response.status", id="response-status"),
    ],
)
@pytest.mark.parametrize(
    "value", [[1], {"a": 1}, True, 1.5], ids=["list", "object", "bool", "float"]
)
def test_a_wrong_type_in_an_optional_field_is_tolerated(number: int, path: str, value: Any) -> None:
    stream = with_value(text_stream(), number, path, value)
    for strict in (True, False):
        events, result, error = fold_pieces([stream], OpenAIResponses, strict=strict)
        assert error is None and result is not None and result.complete
        assert result.text == "Hi" and result.finish_reason == "stop"
        assert [e.type for e in events].count("text.done") == 1


# -- the typed path gives what the dict path gives ------------------------------------------


def _hot_stream(*hot: dict[str, Any], event_lines: bool = True) -> bytes:
    """A message, a reasoning item and a function call opened, then ``hot``
    events, then the items' ends: each hot event reaches a known part."""
    text = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    summary = {"item_id": "rs_1", "output_index": 1, "summary_index": 0}
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": []}
    refusal = {"type": "refusal", "refusal": ""}
    return sse(
        created(),
        added(0, {**message(""), "status": "in_progress", "content": []}),
        {"type": "response.content_part.added", **text, "part": {"type": "output_text"}},
        {"type": "response.content_part.added", **text, "content_index": 1, "part": refusal},
        added(1, reasoning),
        {"type": "response.reasoning_summary_part.added", **summary, "part": {}},
        added(2, {**function_call(""), "status": "in_progress"}),
        added(3, {"type": "web_search_call", "id": "ws_1"}),
        *hot,
        item_done(2, function_call('{"a": 1}')),
        {"type": "response.function_call_arguments.delta", "output_index": 2, "delta": "x"},
        completed(),
        event_lines=event_lines,
    )


_TEXT = {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0}
_SUMMARY = {"type": "response.reasoning_summary_text.delta", "output_index": 1}
_ARGUMENTS = {"type": "response.function_call_arguments.delta", "output_index": 2}


@pytest.mark.parametrize(
    "hot",
    [
        pytest.param([{**_TEXT, "content_index": 0, "delta": "Hi"}], id="text"),
        pytest.param([{**_TEXT, "content_index": 0, "delta": ""}], id="empty-text"),
        pytest.param([{**_TEXT, "content_index": 1, "delta": "No"}], id="text-of-a-refusal"),
        pytest.param([{**_TEXT, "content_index": 5, "delta": "x"}], id="text-of-no-part"),
        pytest.param(
            [{**_TEXT, "output_index": 9, "content_index": 0, "delta": "x"}], id="no-item"
        ),
        pytest.param(
            [{**_TEXT, "content_index": 0, "delta": "a", "logprobs": [{"token": "a"}]}],
            id="logprobs",
        ),
        pytest.param(
            [{**_TEXT, "content_index": 0, "delta": "a", "obfuscation": "xyz", "new": [1]}],
            id="unknown-fields",
        ),
        pytest.param([{**_TEXT, "content_index": 0, "delta": 5}], id="delta-a-number"),
        pytest.param([{**_TEXT, "content_index": 0, "delta": "a", "logprobs": None}], id="null"),
        pytest.param([{**_SUMMARY, "summary_index": 0, "delta": "th"}], id="summary"),
        pytest.param([{**_SUMMARY, "summary_index": 3, "delta": "th"}], id="summary-no-part"),
        pytest.param(
            # Summary, text and refusal deltas in turn: each opens or ends a
            # part while the others' are kept.
            [
                {**_SUMMARY, "summary_index": 0, "delta": "a"},
                {**_SUMMARY, "summary_index": 0, "delta": "b"},
                {**_TEXT, "content_index": 0, "delta": "Hi"},
                {**_SUMMARY, "summary_index": 0, "delta": "c"},
                {**_TEXT, "content_index": 1, "delta": "No"},
                {**_TEXT, "content_index": 0, "delta": "d"},
            ],
            id="summary-text-summary",
        ),
        pytest.param([{**_SUMMARY, "output_index": 0, "summary_index": 0}], id="no-delta"),
        pytest.param([{**_ARGUMENTS, "delta": '{"a"'}], id="arguments"),
        pytest.param(
            # Two calls' arguments in runs, with no other event between: the
            # kept call (and its sink) is the run's.
            [
                added(4, {**function_call("", "fc_2", "call_2"), "status": "in_progress"}),
                {**_ARGUMENTS, "delta": '{"a"'},
                {**_ARGUMENTS, "delta": ": 1"},
                {**_ARGUMENTS, "output_index": 4, "delta": '{"b"'},
                {**_ARGUMENTS, "output_index": 4, "delta": ": 2"},
                {**_ARGUMENTS, "delta": "}"},
            ],
            id="arguments-of-two-calls-in-runs",
        ),
        pytest.param(
            # Parallel calls, a piece each in turn: each call keeps its own
            # sink across the others' pieces; a dict-path event between them
            # (a status event here, the call re-added as a message there)
            # drops every kept call.
            [
                added(4, {**function_call("", "fc_2", "call_2"), "status": "in_progress"}),
                {**_ARGUMENTS, "delta": '{"a"'},
                {**_ARGUMENTS, "output_index": 4, "delta": '{"b"'},
                {**_ARGUMENTS, "delta": ": 1"},
                {**_ARGUMENTS, "output_index": 4, "delta": ": 2"},
                {**_ARGUMENTS, "delta": ", "},
                {"type": "response.web_search_call.searching", "output_index": 3},
                {**_ARGUMENTS, "output_index": 4, "delta": "}"},
                {**_ARGUMENTS, "delta": '"c"'},
                added(4, {**message(""), "id": "msg_4"}),
                {**_ARGUMENTS, "output_index": 4, "delta": "x"},
                {**_ARGUMENTS, "delta": ": 3}"},
            ],
            id="arguments-of-interleaved-calls",
        ),
        pytest.param([{**_ARGUMENTS, "output_index": 3, "delta": "q"}], id="arguments-of-a-search"),
        pytest.param(
            [{**_ARGUMENTS, "output_index": 0, "delta": "q"}], id="arguments-of-a-message"
        ),
        pytest.param(
            [{**_TEXT, "content_index": 0, "delta": "a", "sequence_number": 40}], id="jump"
        ),
        pytest.param(
            [{**_TEXT, "content_index": 0, "delta": "a", "sequence_number": 2}], id="back"
        ),
        pytest.param(
            [{**_TEXT, "content_index": 0, "delta": "a", "sequence_number": True}], id="bool"
        ),
        pytest.param(
            [
                "event: response.output_text.delta\n"
                'data: {"output_index": 0, "content_index": 0, "delta": "untyped"}\n\n'
            ],
            id="type-from-the-event-line",
        ),
        pytest.param(
            [
                "event: response.output_text.delta\n"
                'data: {"type": "response.refusal.delta", "output_index": 0, "content_index": 1, '
                '"delta": "No"}\n\n'
            ],
            id="event-line-disagrees",
        ),
        pytest.param(
            [
                "event: response.output_text.delta\n"
                'data: {"type": "response.output_text.delta", "type": "response.refusal.delta", '
                '"output_index": 0, "content_index": 1, "delta": "No"}\n\n'
            ],
            id="type-twice",
        ),
    ],
)
@pytest.mark.parametrize("event_lines", [True, False], ids=["event-lines", "data-only"])
def test_the_typed_path_folds_what_the_dict_path_folds(hot: list[Any], event_lines: bool) -> None:
    # Each hot event (text, summary and argument deltas), well formed or not:
    # the same events, response, warnings and error with the typed path as
    # without it.
    raw = _hot_stream(*hot, *hot, event_lines=event_lines)
    assert_same_as_dict_path(raw, OpenAIResponses)


test_the_typed_path_folds_hostile_input_as_the_dict_path = hostile_test(
    OpenAIResponses, FIXTURE_FILES
)


def _parts(data: bytes, dialect: type[Dialect]) -> list[Any]:
    parser = StreamParser(dialect, events=False)
    parser.feed(data)
    parser.close()
    choice = parser.acc.choice(0)
    return [(p.kind, p.owner, p.text, p.done) for k in PartKind for p in choice.parts(k)]


def _parallel_calls(pieces: int) -> list[dict[str, Any]]:
    # Two calls whose pieces alternate, numbered from 0.
    calls = [
        added(index, {**function_call("", f"fc_{index}", f"call_{index}"), "status": "in_progress"})
        for index in (0, 1)
    ]
    deltas = [
        {**_ARGUMENTS, "output_index": number % 2, "delta": f"{number},"}
        for number in range(pieces)
    ]
    return [created(), *calls, *deltas, completed()]


@pytest.mark.parametrize(
    ("replayed", "back"),
    [(0, False), (1, False), (4, False), (7, False), (0, True)],
    ids=["replays-0", "replays-1", "replays-4", "replays-7", "new-then-back"],
)
def test_a_resumed_stream_skips_the_replayed_pieces_of_parallel_calls(
    replayed: int, back: bool
) -> None:
    # The kept calls' path checks only for the next number: a reconnect drops
    # them, so that the replayed pieces (up to the last one folded) are skipped,
    # and the first new one ends the replay (an older number after it is
    # folded, with a warning, as the dict path does).
    events = _parallel_calls(12)
    numbered = [{**event, "sequence_number": n} for n, event in enumerate(events)]
    cut_at = 10
    before, after = numbered[:cut_at], numbered[cut_at - replayed :]
    if back:
        after = [*after[:2], numbered[cut_at - 3], *after[2:]]
    folds = []
    for dialect in (OpenAIResponses, dict_only(OpenAIResponses)):
        option_sets: tuple[dict[str, Any], ...] = ({"events": False}, {"parse_arguments": True})
        for options in option_sets:
            parser = StreamParser(dialect, **options)
            parser.feed(sse(*before))
            parser.reconnect()
            parser.feed(sse(*after))
            parser.close()
            result = parser.final()
            folds.append(([call.arguments for call in result.unified.tool_calls], result.warnings))
    if not back:
        expected = ["".join(f"{n}," for n in range(first, 12, 2)) for first in (0, 1)]
        assert folds[0][0] == expected
    assert all(f == folds[0] for f in folds)


def test_a_kept_sink_appends_to_the_part_the_call_would() -> None:
    # A plain fold's parts are not in its result, but they are its events'
    # order (reasoning.done per part): text ends the reasoning part, so the
    # summary delta after it opens a new one; a sink kept for the first part
    # must not append to it (the accumulator's epoch moved).
    summary = [{**_SUMMARY, "summary_index": 0, "delta": d} for d in "ab"]
    raw = _hot_stream(
        *summary,
        {**_TEXT, "content_index": 0, "delta": "Hi"},
        *summary,
        {**_TEXT, "content_index": 0, "delta": "!"},
    )
    typed = _parts(raw, OpenAIResponses)
    assert typed == _parts(raw, dict_only(OpenAIResponses))
    assert [text for kind, _, text, _ in typed if kind is PartKind.REASONING] == ["ab", "ab"]


def test_the_response_shares_the_streamed_text_with_the_unified_view() -> None:
    # output_text.done, content_part.done, output_item.done and
    # response.completed repeat the answer whole: when they agree with the
    # deltas, the response holds the one string the accumulator joined
    # (memory: one copy of a long answer, not two).
    _, result, _ = fold(fixture("text-annotation-logprobs.sse"))
    ((part,),) = [item["content"] for item in result.response["output"]]
    assert part["text"] == result.unified.text
    assert part["text"] is result.unified.text


def test_the_response_shares_the_streamed_arguments_with_the_unified_view() -> None:
    # output_item.done and response.completed repeat the arguments whole: when
    # they agree with the deltas, the response holds the one string the
    # accumulator joined (memory: one copy of a large call, not three).
    _, result, _ = fold(fixture("reasoning-summary-function-call.sse"))
    (call,) = [item for item in result.response["output"] if item["type"] == "function_call"]
    (unified,) = result.unified.tool_calls
    assert call["arguments"] == unified.arguments
    assert call["arguments"] is unified.arguments
