"""The Vercel AI SDK UI message stream as a dialect (docs/dialects/ai-sdk-ui.md).

The fixtures in tests/fixtures/ai_sdk_ui/ are the AI SDK's own server output
(tests/node/make_fixtures.mjs: streamText over a mock model,
toUIMessageStream, createUIMessageStreamResponse) and streams written from its
stream-protocol page; test_encode_ai_sdk.py checks that the SDK's reader builds
from them the message this dialect builds.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamfold import StreamParser
from streamfold.dialects import detect
from streamfold.dialects.ai_sdk_ui import AISDKUIMessageStream, normalise_usage
from streamfold.events import ReasoningDone, ResponseStarted
from streamfold.sse import ServerSentEvent

from ..corpus import FIXTURES
from .typed_path import assert_same_as_dict_path, hostile_test

FIXTURE_DIR = FIXTURES / "ai_sdk_ui"
PATHS = sorted(FIXTURE_DIR.glob("*.sse"))


def fold(data: bytes | list[bytes], **options: Any) -> StreamParser:
    parser = StreamParser(**options)
    for piece in [data] if isinstance(data, bytes) else data:
        parser.feed(piece)
    parser.close()
    return parser


def sse(*chunks: Any) -> bytes:
    return b"".join(
        b"data: " + (c if isinstance(c, bytes) else json.dumps(c).encode()) + b"\n\n"
        for c in chunks
    )


# name -> (complete, error type, unified view)
EXPECTED: dict[str, tuple[bool, str | None, dict[str, Any]]] = {
    "text": (
        True,
        None,
        {"text": "Hello, wörld! 👋", "finish_reason": "stop", "raw_finish_reason": "stop"},
    ),
    "reasoning-tool-call": (
        True,
        None,
        {
            "text": "Let me check.",
            "reasoning": "The user wants the weather. I will call the tool.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "name": "get_weather",
                    "arguments": '{"city":"Paris"}',
                    "complete": True,
                },
                {
                    "id": "call_2",
                    "name": "get_time",
                    "arguments": '{"zone":"CET"}',
                    "complete": True,
                },
            ],
            "finish_reason": "tool_calls",
        },
    ),
    "tool-executed-two-steps": (
        True,
        None,
        # The backend ran the call (a tool output followed): not the caller's to run.
        {"text": "1 + 2 = 3", "tool_calls": [], "finish_reason": "stop"},
    ),
    "error-midstream": (False, "provider_error", {"text": "Partial ", "finish_reason": None}),
    "abort": (False, "provider_error", {"text": "Stopped by the user"}),
    "cut": (
        False,
        "incomplete_stream",
        {
            "text": "The stream stops ",
            "tool_calls": [
                {
                    "id": "call_1",
                    "name": "search",
                    "arguments": '{"query":"weath',
                    "complete": False,
                }
            ],
        },
    ),
    "docs-parts": (
        True,
        None,
        {
            "text": "Hello",
            "tool_calls": [
                {
                    "id": "call_fJdQDqnXeGxTmr4E3YPSR7Ar",
                    "name": "getWeatherInformation",
                    "arguments": '{"city":"San Francisco"}',
                    "complete": True,
                }
            ],
            "finish_reason": "tool_calls",
        },
    ),
    "sdk5-usage-no-finish-reason": (
        True,
        None,
        {"text": "Done.", "reasoning": "Thinking briefly.", "finish_reason": None},
    ),
    "tool-input-error-text-encoding": (
        True,
        None,
        {
            "tool_calls": [
                {
                    "id": "call_sql",
                    "name": "run_sql",
                    "arguments": "SELECT name FROM users;",
                    "complete": True,
                },
                {"id": "call_bad", "name": "lookup", "arguments": '{"id": 12,,}', "complete": True},
            ],
        },
    ),
}


def test_every_fixture_has_its_expectation() -> None:
    assert sorted(p.stem for p in PATHS) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_folds_to(name: str) -> None:
    complete, error, unified = EXPECTED[name]
    parser = fold((FIXTURE_DIR / f"{name}.sse").read_bytes())
    result = parser.snapshot
    assert result.dialect == "ai-sdk-ui"
    assert result.complete is complete
    assert (result.error.type if result.error else None) == error
    found = result.unified.to_dict()
    for key, value in unified.items():
        assert found[key] == value, key


def test_usage_from_the_message_metadata_in_either_shape() -> None:
    now = fold((FIXTURE_DIR / "text.sse").read_bytes()).snapshot.usage
    assert now is not None
    assert (now.input_tokens, now.output_tokens, now.total_tokens, now.cache_read_tokens) == (
        12,
        5,
        17,
        4,
    )
    old = fold((FIXTURE_DIR / "sdk5-usage-no-finish-reason.sse").read_bytes()).snapshot.usage
    assert old is not None
    assert (old.cache_read_tokens, old.reasoning_tokens) == (2, 10)
    assert normalise_usage({}).input_tokens is None


def test_identity_and_reasoning_metadata() -> None:
    parser = fold((FIXTURE_DIR / "reasoning-tool-call.sse").read_bytes())
    events = StreamParser().feed((FIXTURE_DIR / "reasoning-tool-call.sse").read_bytes())
    started = [e for e in events if isinstance(e, ResponseStarted)]
    assert [(e.id, e.model) for e in started] == [("msg_fixture_1", "mock-model")]
    done = [e for e in events if isinstance(e, ReasoningDone)]
    assert [(d.signature, d.encrypted_content) for d in done] == [
        ("sig-abc", None),
        (None, "redacted-xyz"),
    ]
    assert parser.snapshot.response["metadata"]["model"] == "mock-model"


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"type": "start"}, id="start"),
        pytest.param({"type": "text-delta", "id": "t", "delta": "x"}, id="text-delta"),
        pytest.param({"type": "error", "errorText": "boom"}, id="error"),
        pytest.param({"type": "data-weather", "data": {}}, id="data"),
    ],
)
def test_detected_from_its_first_chunk(payload: Any) -> None:
    event = ServerSentEvent(json.dumps(payload).encode())
    assert detect(event, payload) is AISDKUIMessageStream


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(
            {"type": "error", "error": {"type": "overloaded_error"}}, id="anthropic-error"
        ),
        pytest.param({"type": "message_start", "message": {}}, id="anthropic"),
        pytest.param({"type": "response.created"}, id="responses"),
        pytest.param({"type": "error", "code": "x", "sequence_number": 1}, id="responses-error"),
        pytest.param({"type": "data-x"}, id="data-without-data"),
        pytest.param({"type": "nope"}, id="unknown-type"),
    ],
)
def test_not_taken_for_another_dialect(payload: Any) -> None:
    assert not AISDKUIMessageStream.detect(ServerSentEvent(json.dumps(payload).encode()), payload)


def test_a_delta_for_a_part_that_never_started_is_a_protocol_error() -> None:
    data = sse({"type": "start"}, {"type": "text-delta", "id": "t", "delta": "x"})
    error = fold(data).snapshot.error
    assert error is not None and error.type == "protocol_error"
    lenient = fold(data, strict=False).snapshot
    assert any("never started" in w for w in lenient.warnings)


def test_done_marker_alone_completes_a_stream_without_finish() -> None:
    data = sse(
        {"type": "text-start", "id": "t"},
        {"type": "text-delta", "id": "t", "delta": "hi"},
        {"type": "text-end", "id": "t"},
        b"[DONE]",
    )
    result = fold(data).final()
    assert (result.text, result.finish_reason, result.complete) == ("hi", None, True)


def test_interleaved_parts_stay_apart() -> None:
    data = sse(
        {"type": "text-start", "id": "a"},
        {"type": "text-start", "id": "b"},
        {"type": "text-delta", "id": "a", "delta": "A1"},
        {"type": "text-delta", "id": "b", "delta": "B1"},
        {"type": "text-delta", "id": "a", "delta": "A2"},
        {"type": "text-end", "id": "a"},
        {"type": "text-end", "id": "b"},
        {"type": "finish", "finishReason": "stop"},
    )
    parser = fold(data)
    texts = [p["text"] for p in parser.snapshot.response["parts"]]
    assert texts == ["A1A2", "B1"]
    assert parser.snapshot.text == "A1B1A2"


# -- the typed path gives what the dict path gives ------------------------------------------

_START = [
    {"type": "start", "messageId": "m1"},
    {"type": "text-start", "id": "t1"},
    {"type": "reasoning-start", "id": "r1"},
    {"type": "tool-input-start", "toolCallId": "c1", "toolName": "get"},
]


@pytest.mark.parametrize(
    "hot",
    [
        pytest.param([{"type": "text-delta", "id": "t1", "delta": "a"}], id="text"),
        pytest.param([{"type": "text-delta", "id": "t1", "delta": ""}], id="empty"),
        pytest.param([{"type": "reasoning-delta", "id": "r1", "delta": "b"}], id="reasoning"),
        pytest.param(
            [
                {"type": "text-delta", "id": "t1", "delta": "a"},
                {"type": "reasoning-delta", "id": "r1", "delta": "b"},
                {"type": "text-delta", "id": "t1", "delta": "c"},
            ],
            id="interleaved",
        ),
        pytest.param(
            [
                {"type": "text-delta", "id": "t1", "delta": "a"},
                {"type": "reasoning-delta", "id": "r1", "delta": ""},
                {"type": "text-delta", "id": "t1", "delta": "c"},
            ],
            id="an-empty-delta-between",
        ),
        pytest.param(
            [
                {"type": "reasoning-delta", "id": "r1", "delta": "a"},
                {"type": "text-start", "id": "t2"},
                {"type": "reasoning-delta", "id": "r1", "delta": "b"},
                {"type": "text-delta", "id": "t2", "delta": "c"},
                {"type": "reasoning-delta", "id": "r1", "delta": "d"},
                {"type": "text-end", "id": "t2"},
                {"type": "reasoning-delta", "id": "r1", "delta": "e"},
            ],
            id="another-part-between",
        ),
        pytest.param([{"type": "reasoning-delta", "id": "t1", "delta": "b"}], id="other-kind"),
        pytest.param([{"type": "text-delta", "id": "t9", "delta": "a"}], id="no-part"),
        pytest.param(
            [
                {"type": "text-delta", "id": "t1", "delta": "a"},
                {"type": "text-end", "id": "t1"},
                {"type": "text-delta", "id": "t1", "delta": "late"},
            ],
            id="after-the-end",
        ),
        pytest.param(
            [
                {"type": "text-delta", "id": "t1", "delta": "a"},
                {"type": "text-start", "id": "t1"},
                {"type": "text-delta", "id": "t1", "delta": "b"},
            ],
            id="started-again",
        ),
        pytest.param(
            [{"type": "text-delta", "id": "t1", "delta": "a", "providerMetadata": {"x": 1}}],
            id="metadata",
        ),
        pytest.param(
            [{"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": "{"}], id="tool"
        ),
        pytest.param(
            [{"type": "tool-input-delta", "toolCallId": "c9", "inputTextDelta": "{"}], id="no-call"
        ),
        pytest.param(
            [{"type": "tool-input-delta", "toolCallId": "", "inputTextDelta": "{"}],
            id="empty-call-id",
        ),
        pytest.param(
            [
                {"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": "{"},
                {
                    "type": "tool-input-available",
                    "toolCallId": "c1",
                    "toolName": "get",
                    "input": {},
                },
                {"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": "}"},
            ],
            id="tool-after-input",
        ),
        # A call's arguments sink (kept from its third piece in a row): a call
        # that the next one's start ended (its JSON whole), whose late piece the
        # accumulator warns about; calls that take turns; a tool's output
        # between its pieces.
        pytest.param(
            [
                *[
                    {"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": piece}
                    for piece in ("{", '"a"', ": 1", "}")
                ],
                {"type": "tool-input-start", "toolCallId": "c2", "toolName": "get"},
                {"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": " late"},
                *[
                    {"type": "tool-input-delta", "toolCallId": call, "inputTextDelta": piece}
                    for call, piece in (("c2", "["), ("c2", "1"), ("c2", ","), ("c1", " "))
                ],
                {"type": "tool-output-available", "toolCallId": "c2", "output": 1},
                {"type": "tool-input-delta", "toolCallId": "c2", "inputTextDelta": "2]"},
            ],
            id="calls",
        ),
    ],
)
def test_the_typed_path_folds_what_the_dict_path_folds(hot: list[dict[str, Any]]) -> None:
    # The same events, message, warnings and error with the typed path as
    # without it, strict or lenient.
    raw = sse(*_START, *hot, *hot, {"type": "finish"})
    assert_same_as_dict_path(raw, AISDKUIMessageStream)


test_the_typed_path_folds_hostile_input_as_the_dict_path = hostile_test(AISDKUIMessageStream, PATHS)
