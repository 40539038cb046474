"""The Anthropic Messages dialect: Anthropic's documented stream format (the
fixtures here), every ``anthropic`` stream of the shared corpus, and the
``anthropic`` SDK's own accumulation of the same bytes."""

from __future__ import annotations

import importlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest

import streamfold
from streamfold import StreamfoldError, StreamParser, samples, server
from streamfold.dialects.anthropic import AnthropicMessages
from streamfold.errors import IncompleteStreamError, ProtocolError, ProviderError
from streamfold.events import (
    Event,
    ReasoningDone,
    TextDone,
    ToolCallArgumentsDelta,
    ToolCallDone,
    ToolCallStarted,
    Unknown,
)
from streamfold.result import Result
from streamfold.sse import ServerSentEvent, SSEDecoder

from ..corpus import CORPUS, FIXTURES, check_order, corpus_files, fold_pieces
from .typed_path import assert_same_as_dict_path, hostile_test, typed_path_counts

# By their module names: the package re-exports a function called ``fold``.
anthropic_dialect = importlib.import_module("streamfold.dialects.anthropic")
fold_module = importlib.import_module("streamfold.fold")

HERE = FIXTURES / "anthropic"


def fixture_files() -> list[Any]:
    return [pytest.param(path, id=f"fixture-{path.stem}") for path in sorted(HERE.glob("*.sse"))]


def every_stream() -> list[Any]:
    return [*corpus_files("anthropic"), *fixture_files()]


def fold(data: bytes, **options: Any) -> tuple[list[Event], Result, BaseException | None]:
    events, result, error = fold_pieces([data], AnthropicMessages, **options)
    assert result is not None
    return events, result, error


def sse(*payloads: Any) -> bytes:
    """A stream of events named after their ``type``, as Anthropic sends them."""
    out = []
    for payload in payloads:
        out.append(f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n")
    return "".join(out).encode()


def message_start(id: str = "msg_1", **usage: int) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {
            "id": id,
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": "claude-test",
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage or {"input_tokens": 10, "output_tokens": 1},
        },
    }


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def block_delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def block_stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def message_delta(stop: str | None, **usage: Any) -> dict[str, Any]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop, "stop_sequence": None},
        "usage": usage or {"output_tokens": 5},
    }


STOP = {"type": "message_stop"}
TEXT = [
    block_start(0, {"type": "text", "text": ""}),
    block_delta(0, {"type": "text_delta", "text": "Hi"}),
    block_stop(0),
]


def at(value: Any, path: str) -> Any:
    """``value`` at a dotted path; numbers index lists (``content.1.input``)."""
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


# -- expectations, read off each stream ---------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What a stream must fold to. ``tools`` are the client tool calls as
    (name, parsed value, complete); ``server_tools`` the server-executed ones
    as (kind, name, parsed value); ``native`` pairs of (path, value) in the
    Message (the partial one when the stream fails)."""

    error: type[StreamfoldError] | None = None
    code: str | None = None
    retryable: bool | None = None
    finish: str | None = None
    raw_finish: str | None = None
    text: str | None = None
    text_start: str | None = None
    reasoning_start: str | None = None
    tools: tuple[tuple[str, Any, bool], ...] = ()
    server_tools: tuple[tuple[str, str, Any], ...] = ()
    usage: dict[str, int | None] = field(default_factory=dict)
    native: tuple[tuple[str, Any], ...] = ()
    warnings: int = 0
    # The client calls' names in the unified view, when not those of ``tools``.
    unified_tools: tuple[str, ...] | None = None


def check(events: list[Event], result: Result, error: BaseException | None, want: Expect) -> None:
    if want.error is None:
        assert error is None, error
        assert result.complete
    else:
        assert isinstance(error, want.error), error
        assert result.error == error.info
    if want.code is not None:
        assert isinstance(error, ProviderError)
        assert error.code == want.code
        assert error.retryable is want.retryable
    unified = result.unified
    assert unified.finish_reason == want.finish
    assert unified.raw_finish_reason == want.raw_finish
    if want.text is not None:
        assert unified.text == want.text
    if want.text_start is not None:
        assert unified.text.startswith(want.text_start)
    if want.reasoning_start is not None:
        assert unified.reasoning.startswith(want.reasoning_start)
    done = [e for e in events if isinstance(e, ToolCallDone)]
    client = [(e.name, e.value, e.complete) for e in done if e.kind == "function"]
    server = [(e.kind, e.name, e.value) for e in done if e.kind != "function"]
    assert client == list(want.tools)
    assert server == list(want.server_tools)
    # The unified view lists the calls the caller must execute, nothing else.
    expected_names = (
        list(want.unified_tools)
        if want.unified_tools is not None
        else [name for name, _, _ in want.tools]
    )
    assert [c.name for c in unified.tool_calls] == expected_names
    for key, value in want.usage.items():
        assert unified.usage is not None
        assert getattr(unified.usage, key) == value, key
    for path, value in want.native:
        assert at(result.response, path) == value, path
    assert len(result.warnings) == want.warnings, result.warnings


REDACTED_DATA = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"

FIXTURE_CASES = [
    pytest.param(
        "text.sse",
        Expect(
            finish="stop",
            raw_finish="end_turn",
            text="Hello, wörld 👋",
            # Anthropic's input_tokens excludes the cache: the prompt is 25 + 100 + 2000.
            usage={
                "input_tokens": 2125,
                "output_tokens": 15,
                "total_tokens": 2140,
                "cache_read_tokens": 2000,
                "cache_write_tokens": 100,
            },
            native=(
                ("id", "msg_fx_text"),
                ("content.0.text", "Hello, wörld 👋"),
                ("usage.input_tokens", 25),
                ("usage.output_tokens", 15),
                ("usage.cache_read_input_tokens", 2000),
            ),
        ),
        id="text",
    ),
    pytest.param(
        "thinking.sse",
        Expect(
            finish="stop",
            raw_finish="end_turn",
            text="The greatest common divisor is **21**.",
            reasoning_start="I need the GCD of 1071 and 462.\n\n1071 = 2 \u00d7 462 + 147\n462",
            native=(
                ("content.0.type", "thinking"),
                ("content.0.signature", "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"),
                ("content.1.text", "The greatest common divisor is **21**."),
            ),
        ),
        id="thinking",
    ),
    pytest.param(
        "redacted-thinking.sse",
        Expect(
            finish="stop",
            raw_finish="end_turn",
            text="Done.",
            reasoning_start="",
            native=(("content.0", {"type": "redacted_thinking", "data": REDACTED_DATA}),),
        ),
        id="redacted-thinking",
    ),
    pytest.param(
        "tool-use.sse",
        Expect(
            finish="tool_calls",
            raw_finish="tool_use",
            text="Okay, let's check the weather for San Francisco, CA:",
            tools=(("get_weather", {"location": "San Francisco, CA", "unit": "fahrenheit"}, True),),
            native=(
                ("content.1.input", {"location": "San Francisco, CA", "unit": "fahrenheit"}),
                ("content.1.id", "toolu_01T1x1fJ34qAmk2tNTrN7Up6"),
            ),
        ),
        id="tool-use",
    ),
    pytest.param(
        "tool-use-no-deltas.sse",
        Expect(
            finish="tool_calls",
            raw_finish="tool_use",
            text="",
            tools=(("get_time", {}, True),),
            native=(("content.0.input", {}),),
        ),
        id="tool-use-no-deltas",
    ),
    pytest.param(
        "web-search.sse",
        Expect(
            finish="stop",
            raw_finish="end_turn",
            text="It is sunny in New York today, with a high of 75°F.",
            server_tools=(("server_tool_use", "web_search", {"query": "weather NYC today"}),),
            # input_tokens only in message_delta replaces message_start's 2679.
            usage={"input_tokens": 10682, "output_tokens": 510},
            native=(
                ("content.0.input", {"query": "weather NYC today"}),
                ("content.1.type", "web_search_tool_result"),
                (
                    "content.1.content.0.url",
                    "https://world-weather.info/forecast/usa/new_york/may-2025/",
                ),
                ("content.2.citations.0.cited_text", "Today: sunny, high of 75°F."),
                ("usage.server_tool_use", {"web_search_requests": 1, "web_fetch_requests": 0}),
            ),
        ),
        id="web-search",
    ),
    pytest.param(
        "citations.sse",
        Expect(
            finish="stop",
            raw_finish="end_turn",
            text="According to the document, the grass is green and the sky is blue.",
            native=(
                ("content.0.citations.0.cited_text", "The grass is green. "),
                ("content.0.citations.1.start_char_index", 20),
            ),
        ),
        id="citations",
    ),
    pytest.param(
        "stop-sequence.sse",
        Expect(
            finish="stop",
            raw_finish="stop_sequence",
            text="1, 2, 3, 4, ",
            native=(("stop_reason", "stop_sequence"), ("stop_sequence", "5")),
        ),
        id="stop-sequence",
    ),
    pytest.param(
        "max-tokens-tool.sse",
        Expect(
            finish="length",
            raw_finish="max_tokens",
            text="I'll write the note.",
            # Cut mid-arguments, with no content_block_stop: reported incomplete.
            tools=(("write_file", None, False),),
            native=(
                ("content.1.input", {"path": "notes.txt", "content": "Dear team,\nThe plan for"}),
                ("stop_reason", "max_tokens"),
            ),
        ),
        id="max-tokens-tool",
    ),
    pytest.param(
        "refusal.sse",
        Expect(
            finish="content_filter",
            raw_finish="refusal",
            text="Here is how to",
            native=(("stop_details.category", "cyber"),),
        ),
        id="refusal",
    ),
    pytest.param(
        "pause-turn.sse",
        Expect(
            finish="other",
            raw_finish="pause_turn",
            server_tools=(("server_tool_use", "web_search", {"query": "latest rust release"}),),
            native=(("stop_reason", "pause_turn"),),
        ),
        id="pause-turn",
    ),
    pytest.param(
        "overloaded-error.sse",
        Expect(
            error=ProviderError,
            code="overloaded_error",
            retryable=True,
            text="Photosynthesis converts light energy into",
            native=(
                ("content.0.text", "Photosynthesis converts light energy into"),
                ("stop_reason", None),
            ),
        ),
        id="overloaded-error",
    ),
    pytest.param(
        "cut.sse",
        Expect(
            error=IncompleteStreamError,
            text="The first part",
            native=(("content.0.text", "The first part"),),
        ),
        id="cut",
    ),
]


@pytest.mark.parametrize(("name", "want"), FIXTURE_CASES)
def test_fixture(name: str, want: Expect) -> None:
    events, result, error = fold((HERE / name).read_bytes())
    check(events, result, error, want)


def test_every_fixture_has_expectations() -> None:
    named = {p.values[0] for p in FIXTURE_CASES}
    assert named == {path.name for path in HERE.glob("*.sse")}


CORPUS_CASES: dict[str, Expect] = {
    "anthropic-compatible__anthropic__usage-input-tokens-in-message-delta": Expect(
        finish="stop",
        raw_finish="end_turn",
        text="pong",
        usage={"input_tokens": 61, "output_tokens": 2},
        native=(("usage.input_tokens", 61),),
    ),
    "anthropic__anthropic__clear-thinking-context-management": Expect(
        finish="stop",
        raw_finish="end_turn",
        text="925 ÷ 5 = 185",
        reasoning_start="The previous result was 925. Now I need to divide that by 5.",
        native=(("context_management", {"applied_edits": []}),),
    ),
    "anthropic__anthropic__code-execution-server-tool": Expect(
        finish="stop",
        raw_finish="end_turn",
        text_start="I'll create a Python script to calculate Fibonacci numbers",
        server_tools=(
            ("server_tool_use", "text_editor_code_execution", ANY),
            ("server_tool_use", "bash_code_execution", {"command": "python /tmp/fibonacci.py"}),
        ),
        native=(
            ("container.id", "container_011CU6pTr2hLT47seQ5Xs4yj"),
            ("content.1.input.path", "/tmp/fibonacci.py"),
            ("content.5.content.return_code", 0),
            ("content.3.text", "Now let's execute the script to find the 10th Fibonacci number:"),
            ("content.6.text", ANY),
        ),
    ),
    "anthropic__anthropic__duplicate-message-start": Expect(
        finish="stop",
        raw_finish="end_turn",
        text="Hello, World!",
        usage={"input_tokens": 17, "output_tokens": 227},
        warnings=1,
    ),
    "anthropic__anthropic__handwritten-midstream-overloaded-error": Expect(
        error=ProviderError,
        code="overloaded_error",
        retryable=True,
        text="Photosynthesis converts light energy into chemical",
    ),
    "anthropic__anthropic__json-output-format": Expect(
        finish="stop",
        raw_finish="end_turn",
        text_start='{"characters":[{"name":"Theron Ironheart"',
    ),
    "anthropic__anthropic__max-tokens-incomplete-tool-json": Expect(
        finish="length",
        raw_finish="max_tokens",
        text_start="I'll create a comprehensive tax guide",
        tools=(("make_file", None, False),),
        native=(("content.1.input.filename", "taxes.txt"),),
    ),
    "anthropic__anthropic__mcp-tool-use": Expect(
        finish="stop",
        raw_finish="end_turn",
        text_start="The echo tool responded back with",
        server_tools=(("mcp_tool_use", "echo", {"message": "hello world"}),),
        native=(("content.0.server_name", "echo"), ("content.1.type", "mcp_tool_result")),
    ),
    "anthropic__anthropic__midstream-error-event": Expect(
        error=ProviderError,
        code="api_error",
        retryable=True,
        text="",
    ),
    "anthropic__anthropic__parallel-tool-use-with-thinking": Expect(
        finish="tool_calls",
        raw_finish="tool_use",
        reasoning_start="The user wants me to read two files",
        tools=(
            ("Read", {"file_path": "/tmp/blah/foo"}, True),
            ("Read", {"file_path": "/tmp/blah/bar"}, True),
        ),
        usage={
            "input_tokens": 2 + 22 + 13993,
            "cache_read_tokens": 13993,
            "cache_write_tokens": 22,
        },
    ),
    "anthropic__anthropic__redacted-thinking": Expect(
        finish="stop",
        raw_finish="end_turn",
        reasoning_start="",
        text_start="I notice that you've sent what appears to be",
        native=(("content.0.type", "redacted_thinking"), ("content.1.type", "redacted_thinking")),
    ),
    "anthropic__anthropic__refusal-stop-details": Expect(
        finish="content_filter",
        raw_finish="refusal",
        text="",
        native=(("content", []), ("stop_details.category", "cyber")),
    ),
    "anthropic__anthropic__server-tool-refusal": Expect(
        finish="content_filter",
        raw_finish="refusal",
        text="Here's a summary of this year's solar eclipses and how",
        server_tools=(
            ("server_tool_use", "web_search", {"query": "solar eclipse viewing safety news 2026"}),
        ),
        usage={"reasoning_tokens": 67},
        native=(("stop_details.fallback_credit_token", "tok_synthetic_fixture_a"),),
    ),
    "anthropic__anthropic__spliced-message-start": Expect(
        # A retry spliced in: the fold restarts, the result is the retried message.
        finish="tool_calls",
        raw_finish="tool_use",
        reasoning_start="Let me call the tool.",
        # Events: the abandoned attempt's call ends incomplete, then the retry's.
        tools=(("test-tool", None, False), ("test-tool", {"value": "Sparkle Day"}, True)),
        unified_tools=("test-tool",),
        native=(("id", "msg_second"), ("content.1.input", {"value": "Sparkle Day"})),
        warnings=1,
    ),
    "anthropic__anthropic__text": Expect(
        finish="stop",
        raw_finish="end_turn",
        text="Hello! I'm doing well, thank you for asking. How are you doing today? "
        "Is there anything I can help you with?",
    ),
    "anthropic__anthropic__thinking-refusal-fallback-credit": Expect(
        finish="content_filter",
        raw_finish="refusal",
        text="Hi",
        reasoning_start="Simple educational question",
        usage={"reasoning_tokens": 67},
        native=(("usage.iterations.0.output_tokens", 106),),
    ),
    "anthropic__anthropic__thinking-signature": Expect(
        finish="stop",
        raw_finish="end_turn",
        reasoning_start="This is a straightforward question about pedestrian safety.",
        text_start="Here are the basic steps for safely crossing the street",
    ),
    # Three responses recorded back to back: the first message_stop ends the
    # stream, and the parser ignores (and reports) the other two.
    "anthropic__anthropic__tool-search-parallel-tool-use": Expect(
        finish="tool_calls",
        raw_finish="tool_use",
        text_start="I'll help you with this task.",
        tools=(("readNoteTree", {"noteId": "d10aa585-982b-4bd9-984e-420f9b3717f7"}, True),),
        server_tools=(
            (
                "server_tool_use",
                "tool_search_tool_bm25",
                {"query": "add bullet point insert text editor", "limit": 5},
            ),
        ),
        warnings=82,
    ),
    "anthropic__anthropic__tool-use-no-args": Expect(
        finish="tool_calls",
        raw_finish="tool_use",
        text="I'll update the issue list for you.",
        tools=(("updateIssueList", {}, True),),
    ),
    "anthropic__anthropic__tool-use-text-then-tool": Expect(
        finish="tool_calls",
        raw_finish="tool_use",
        text="I'll check the current weather in Paris for you.",
        tools=(("get_weather", {"location": "Paris"}, True),),
        native=(("content.1.caller", {"type": "direct"}),),
    ),
    "anthropic__anthropic__web-search-citations": Expect(
        finish="stop",
        raw_finish="end_turn",
        text_start="Based on my search results, here are the key tech news",
        server_tools=(
            ("server_tool_use", "web_search", {"query": "tech news today September 26 2025"}),
        ),
    ),
}


@pytest.mark.parametrize("path", corpus_files("anthropic"))
def test_corpus_stream(path: Path) -> None:
    want = CORPUS_CASES.get(path.stem)
    assert want is not None, f"{path.name}: read the stream and add its expectations"
    events, result, error = fold(path.read_bytes())
    check(events, result, error, want)


def test_corpus_citations_are_all_kept() -> None:
    path = CORPUS / "anthropic__anthropic__web-search-citations.sse"
    if not path.exists():
        pytest.skip("the shared corpus is absent")
    data = path.read_bytes()
    _, result, _ = fold(data)
    kept = sum(len(b.get("citations") or []) for b in result.response["content"])
    assert kept == data.count(b'"citations_delta"') > 0


# -- events ------------------------------------------------------------------------


def test_server_tool_calls_are_events_with_their_kind_but_not_unified() -> None:
    events, result, _ = fold((HERE / "web-search.sse").read_bytes())
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    assert [(e.kind, e.name, e.id) for e in started] == [
        ("server_tool_use", "web_search", "srvtoolu_014hJH82Qum7Td6UV8gDXThB")
    ]
    assert result.unified.tool_calls == ()
    # The result block and the citation have no event type of their own.
    unknown = [
        e.raw["content_block"]["type"]
        if e.event == "content_block_start"
        else e.raw["delta"]["type"]
        for e in events
        if isinstance(e, Unknown)
    ]
    assert unknown == ["web_search_tool_result", "citations_delta"]


def test_thinking_ends_with_its_signature_and_redacted_with_its_data() -> None:
    events, _, _ = fold((HERE / "thinking.sse").read_bytes())
    (thinking,) = [e for e in events if isinstance(e, ReasoningDone)]
    assert thinking.signature == "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"
    assert thinking.complete
    events, _, _ = fold((HERE / "redacted-thinking.sse").read_bytes())
    (redacted,) = [e for e in events if isinstance(e, ReasoningDone)]
    assert (redacted.text, redacted.encrypted_content) == ("", REDACTED_DATA)


def test_each_text_block_is_its_own_part() -> None:
    events, _, _ = fold((HERE / "thinking.sse").read_bytes())
    assert [e.text for e in events if isinstance(e, TextDone)] == [
        "The greatest common divisor is **21**."
    ]
    stream = sse(
        message_start(),
        *TEXT,
        block_start(1, {"type": "text", "text": ""}),
        block_delta(1, {"type": "text_delta", "text": " there"}),
        block_stop(1),
        message_delta("end_turn"),
        STOP,
    )
    events, result, _ = fold(stream)
    assert [e.text for e in events if isinstance(e, TextDone)] == ["Hi", " there"]
    assert [b["text"] for b in result.response["content"]] == ["Hi", " there"]


def test_interleaved_blocks_are_never_merged() -> None:
    # Two text blocks open at once (a gateway interleaving two streams): each
    # block keeps its own text, and the events never merge them into one part.
    stream = sse(
        message_start(),
        block_start(0, {"type": "text", "text": ""}),
        block_start(1, {"type": "text", "text": ""}),
        block_delta(0, {"type": "text_delta", "text": "A1"}),
        block_delta(1, {"type": "text_delta", "text": "B1"}),
        block_stop(0),
        block_delta(1, {"type": "text_delta", "text": "B2"}),
        block_stop(1),
        message_delta("end_turn"),
        STOP,
    )
    events, result, error = fold(stream)
    assert error is None
    assert [b["text"] for b in result.response["content"]] == ["A1", "B1B2"]
    assert [e.text for e in events if isinstance(e, TextDone)] == ["A1", "B1B2"]
    assert result.text == "A1B1B2"
    check_order(events, failed=False)


def test_a_stream_error_ends_open_parts_incomplete_before_the_error() -> None:
    events, _, error = fold((HERE / "overloaded-error.sse").read_bytes())
    assert isinstance(error, ProviderError)
    assert error.partial is not None
    text = "Photosynthesis converts light energy into"
    assert error.partial.response["content"][0]["text"] == text
    assert [type(e).__name__ for e in events[-2:]] == ["TextDone", "ErrorOccurred"]
    assert events[-2] == TextDone(text=text, complete=False)


def test_cut_tool_call_is_done_incomplete_before_the_finish() -> None:
    events, _, _ = fold((HERE / "max-tokens-tool.sse").read_bytes())
    names = [type(e).__name__ for e in events]
    assert names.index("ToolCallDone") < names.index("ResponseFinished")
    (done,) = [e for e in events if isinstance(e, ToolCallDone)]
    assert done.arguments == '{"path": "notes.txt", "content": "Dear team,\\nThe plan for'
    assert not done.complete


# -- error events ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_type", "retryable"),
    [
        pytest.param("overloaded_error", True, id="overloaded-529"),
        pytest.param("api_error", True, id="api-500"),
        pytest.param("rate_limit_error", True, id="rate-limit-429"),
        pytest.param("timeout_error", True, id="timeout-504"),
        pytest.param("invalid_request_error", False, id="invalid-request-400"),
        pytest.param("authentication_error", False, id="authentication-401"),
        pytest.param("billing_error", False, id="billing-402"),
        pytest.param("permission_error", False, id="permission-403"),
        pytest.param("not_found_error", False, id="not-found-404"),
        pytest.param("request_too_large", False, id="too-large-413"),
    ],
)
def test_error_event_retryable_as_documented(error_type: str, retryable: bool) -> None:
    error_event = {
        "type": "error",
        "error": {"type": error_type, "message": "boom"},
        "request_id": "req_1",
    }
    for stream in (sse(error_event), sse(message_start(), *TEXT[:2], error_event)):
        _, result, error = fold(stream)
        assert isinstance(error, ProviderError)
        assert (error.code, error.error_type) == (error_type, error_type)
        assert error.retryable is retryable
        assert error.provider_message == "boom"
        assert result.unified.error is not None


@pytest.mark.parametrize(
    ("stream", "position", "words"),
    [
        pytest.param(
            sse(message_start()) + b"event: content_block_start\ndata: {oops\n\n",
            1,
            "not valid JSON",
            id="malformed-json",
        ),
        pytest.param(
            sse(message_start(), block_delta(3, {"type": "text_delta", "text": "x"})),
            1,
            "never started",
            id="delta-for-unknown-block",
        ),
        pytest.param(sse(TEXT[0]), 0, "before message_start", id="block-before-message-start"),
        pytest.param(sse(message_start(), *TEXT, TEXT[0]), 4, "started twice", id="block-twice"),
        pytest.param(
            sse(message_start(), *TEXT, TEXT[1]), 4, "after it ended", id="delta-after-stop"
        ),
    ],
)
def test_protocol_errors(stream: bytes, position: int, words: str) -> None:
    _, _, error = fold(stream)
    assert isinstance(error, ProtocolError)
    assert error.position == position
    assert words in str(error)


@pytest.mark.parametrize("strict", [True, False])
def test_spliced_retry_replaces_the_message(strict: bool) -> None:
    path = CORPUS / "anthropic__anthropic__spliced-message-start.sse"
    if not path.exists():
        pytest.skip("the shared corpus is absent")
    events, result, error = fold(path.read_bytes(), strict=strict)
    assert error is None and result.complete
    message = result.response
    assert message["id"] == "msg_second"
    assert [b["type"] for b in message["content"]] == ["thinking", "tool_use"]
    assert message["content"][0]["signature"] == "sig-second"
    assert message["content"][1]["input"] == {"value": "Sparkle Day"}
    # The abandoned attempt's call ends incomplete: never executed.
    done = [(e.id, e.complete) for e in events if isinstance(e, ToolCallDone)]
    assert done == [("toolu_first", False), ("toolu_second", True)]
    # The result is the retry alone.
    assert [c.id for c in result.unified.tool_calls] == ["toolu_second"]
    assert result.unified.reasoning == "Let me call the tool."
    assert any("spliced a retry" in w for w in result.warnings)


def test_duplicate_message_start_after_content_is_ignored() -> None:
    stream = sse(
        message_start("msg_1", input_tokens=10, output_tokens=1),
        *TEXT,
        message_start("msg_1", input_tokens=99, output_tokens=1),
        message_delta("end_turn", output_tokens=7),
        STOP,
    )
    _, result, error = fold(stream)
    assert error is None
    assert result.response["content"] == [{"type": "text", "text": "Hi"}]
    assert result.response["usage"] == {"input_tokens": 10, "output_tokens": 7}
    assert len(result.warnings) == 1


# -- usage and message fields ---------------------------------------------------------


def test_usage_is_cumulative_and_merged_field_by_field() -> None:
    stream = sse(
        message_start(input_tokens=40, cache_read_input_tokens=8, output_tokens=1),
        *TEXT,
        message_delta(None, output_tokens=10),
        # A second report replaces the first (cumulative), and a null keeps the old count.
        message_delta("end_turn", output_tokens=25, cache_read_input_tokens=None),
        STOP,
    )
    _, result, _ = fold(stream)
    assert result.response["usage"] == {
        "input_tokens": 40,
        "cache_read_input_tokens": 8,
        "output_tokens": 25,
    }
    usage = result.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (48, 25, 73)
    assert (usage.cache_read_tokens, usage.cache_write_tokens, usage.reasoning_tokens) == (
        8,
        None,
        None,
    )


def test_a_later_usage_only_delta_keeps_the_stop_reason() -> None:
    stream = sse(
        message_start(),
        *TEXT,
        message_delta("end_turn", output_tokens=5),
        message_delta(None, output_tokens=9),
        STOP,
    )
    _, result, _ = fold(stream)
    assert result.response["stop_reason"] == "end_turn"
    assert result.response["usage"]["output_tokens"] == 9
    assert result.finish_reason == "stop"


def test_message_delta_fields_reach_the_message() -> None:
    delta = {
        "type": "message_delta",
        "delta": {
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "container": {"id": "container_1", "expires_at": "2025-10-14T10:02:00Z"},
            "future_field": 1,
        },
        "usage": {"output_tokens": 3},
        "context_management": {"applied_edits": []},
    }
    _, result, _ = fold(sse(message_start(), *TEXT, delta, STOP))
    message = result.response
    assert message["container"]["id"] == "container_1"
    assert message["future_field"] == 1
    assert message["context_management"] == {"applied_edits": []}
    assert message["stop_reason"] == "end_turn"


def test_message_stop_without_stop_reason_completes_with_a_warning() -> None:
    _, result, error = fold(sse(message_start(), *TEXT, STOP))
    assert error is None
    assert result.complete
    assert result.finish_reason is None
    assert len(result.warnings) == 1


@pytest.mark.parametrize(
    ("raw", "unified"),
    [
        pytest.param("end_turn", "stop", id="end-turn"),
        pytest.param("stop_sequence", "stop", id="stop-sequence"),
        pytest.param("max_tokens", "length", id="max-tokens"),
        pytest.param("model_context_window_exceeded", "length", id="context-window"),
        pytest.param("tool_use", "tool_calls", id="tool-use"),
        pytest.param("refusal", "content_filter", id="refusal"),
        pytest.param("pause_turn", "other", id="pause-turn"),
        pytest.param("a_future_reason", "other", id="unknown"),
    ],
)
def test_stop_reasons(raw: str, unified: str) -> None:
    _, result, _ = fold(sse(message_start(), *TEXT, message_delta(raw), STOP))
    assert (result.unified.finish_reason, result.unified.raw_finish_reason) == (unified, raw)
    assert result.response["stop_reason"] == raw


# -- what the event model does not know ------------------------------------------------


def test_unknown_events_and_blocks_are_kept_raw() -> None:
    stream = sse(
        message_start(),
        {"type": "message_annotation", "note": 1},
        block_start(0, {"type": "hologram", "frames": []}),
        block_delta(0, {"type": "frame_delta", "frame": "f1"}),
        block_stop(0),
        *[dict(e, index=1) for e in TEXT],
        message_delta("end_turn"),
        STOP,
    )
    events, result, error = fold(stream)
    assert error is None
    assert result.response["content"] == [
        {"type": "hologram", "frames": []},
        {"type": "text", "text": "Hi"},
    ]
    assert [e.event for e in events if isinstance(e, Unknown)] == [
        "message_annotation",
        "content_block_start",
        "content_block_delta",
    ]


def test_fallback_block_names_the_serving_model() -> None:
    # Anthropic's model fallbacks (beta): the fallback block names the model
    # that produced what follows, as the non-streaming Message reports it.
    fallback = {
        "type": "fallback",
        "from": {"model": "claude-test"},
        "to": {"model": "claude-other"},
        "trigger": {"type": "refusal"},
    }
    stream = sse(
        message_start(),
        block_start(0, fallback),
        block_stop(0),
        *[dict(e, index=1) for e in TEXT],
        message_delta("end_turn"),
        STOP,
    )
    _, result, _ = fold(stream)
    assert result.response["model"] == "claude-other"
    assert result.response["content"][0] == fallback


def test_compaction_delta_replaces_the_block_content() -> None:
    stream = sse(
        message_start(),
        block_start(0, {"type": "compaction", "content": None}),
        block_delta(
            0, {"type": "compaction_delta", "content": "Summary.", "encrypted_content": "enc"}
        ),
        block_stop(0),
        message_delta("end_turn"),
        STOP,
    )
    _, result, _ = fold(stream)
    assert result.response["content"] == [
        {"type": "compaction", "content": "Summary.", "encrypted_content": "enc"}
    ]


def test_input_sent_whole_in_the_block_start() -> None:
    stream = sse(
        message_start(),
        block_start(0, {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}),
        block_stop(0),
        message_delta("tool_use"),
        STOP,
    )
    events, result, _ = fold(stream)
    (done,) = [e for e in events if isinstance(e, ToolCallDone)]
    assert (done.value, json.loads(done.arguments)) == ({"a": 1}, {"a": 1})
    assert result.response["content"][0]["input"] == {"a": 1}


def test_invalid_tool_input_keeps_the_part_that_parses() -> None:
    stream = sse(
        message_start(),
        block_start(0, {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}),
        block_delta(0, {"type": "input_json_delta", "partial_json": '{"a": 1, "b": [2,, 3]}'}),
        block_stop(0),
        message_delta("tool_use"),
        STOP,
    )
    events, result, error = fold(stream)
    assert error is None
    assert result.response["content"][0]["input"] == {"a": 1, "b": [2]}
    (done,) = [e for e in events if isinstance(e, ToolCallDone)]
    assert done.parse_error is not None
    assert done.parse_error.position == 17  # the second comma
    assert len(result.warnings) == 1


def test_data_only_stream_without_event_lines() -> None:
    body = b"".join(
        b"data: " + json.dumps(p).encode() + b"\n\n"
        for p in (message_start(), *TEXT, message_delta("end_turn"), STOP)
    )
    _, result, error = fold(body)
    assert error is None
    assert result.text == "Hi"


# -- untrusted values ----------------------------------------------------------------

# A 3,000-deep JSON array: deeper than msgspec can decode on the default stack.
DEEP_ARRAY = "[" * 3000 + "]" * 3000


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        pytest.param({**TEXT[1], "index": [0]}, "'index' is an array", id="delta-index-list"),
        pytest.param({**TEXT[1], "index": {"0": 0}}, "'index' is an object", id="delta-index-dict"),
        pytest.param({**TEXT[1], "index": True}, "'index' is a boolean", id="delta-index-bool"),
        pytest.param({**TEXT[1], "index": None}, "'index' is null", id="delta-index-null"),
        pytest.param(
            {k: v for k, v in TEXT[1].items() if k != "index"},
            "'index' is missing",
            id="delta-index-missing",
        ),
        pytest.param({**TEXT[2], "index": [0]}, "'index' is an array", id="stop-index-list"),
        pytest.param({**TEXT[2], "index": {}}, "'index' is an object", id="stop-index-dict"),
        pytest.param({**TEXT[0], "index": [1]}, "'index' is an array", id="start-index-list"),
    ],
)
def test_a_block_index_of_the_wrong_type_is_a_protocol_error(bad: Any, field: str) -> None:
    stream = sse(message_start(), *TEXT[:2], bad, TEXT[2], message_delta("end_turn"), STOP)
    _, result, error = fold(stream)
    assert isinstance(error, ProtocolError)
    assert error.position == 3 and field in str(error) and "#3" in str(error)
    assert result.text == "Hi" and not result.complete  # what came before is kept
    # Lenient: the event is skipped with a warning, the stream folds on.
    _, result, error = fold(stream, strict=False)
    assert error is None and result.complete and result.text == "Hi"
    assert [w for w in result.warnings if field in w and w.startswith("skipped")]


def tool_stream(*pieces: str) -> bytes:
    return sse(
        message_start(),
        *TEXT,
        block_start(1, {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}),
        *[block_delta(1, {"type": "input_json_delta", "partial_json": p}) for p in pieces],
        block_stop(1),
        message_delta("tool_use"),
        STOP,
    )


@pytest.mark.parametrize(
    "pieces",
    [
        pytest.param([DEEP_ARRAY], id="deep-array"),
        pytest.param(['{"a": ', DEEP_ARRAY, "}"], id="deep-array-in-object"),
        pytest.param(['{"a": ' + "1" * 5000 + "}"], id="integer-of-5000-digits"),
    ],
)
@pytest.mark.parametrize("parse_arguments", [False, True])
def test_tool_input_too_deep_or_too_big_is_a_parse_error(
    pieces: list[str], parse_arguments: bool
) -> None:
    stream = tool_stream(*pieces)
    events, result, error = fold(stream, parse_arguments=parse_arguments)
    assert error is None and result.complete and result.text == "Hi"
    (done,) = [e for e in events if isinstance(e, ToolCallDone)]
    assert done.value is None and done.parse_error is not None
    assert done.arguments == "".join(pieces)
    assert [w for w in result.warnings if "the input is not valid JSON" in w]
    # The plain fold (the Message's input is parsed once, at the block's end) too.
    folded = streamfold.fold(stream)
    assert folded.unified.tool_calls[0].arguments == "".join(pieces)
    assert folded.response["content"][1]["type"] == "tool_use"


def test_a_data_only_error_payload_is_a_provider_error() -> None:
    # OpenRouter's in-band error, as the replay server sends it into an
    # Anthropic stream (provider=openrouter, error-after=2): no type, no event line.
    error_chunk = {
        "id": "gen-replay",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "replay",
        "provider": "replay",
        "error": {"code": "server_error", "message": "Provider disconnected unexpectedly"},
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
    }
    stream = sse(message_start(), *TEXT[:2]) + b"data: " + json.dumps(error_chunk).encode()
    for strict in (True, False):
        events, result, error = fold(stream + b"\n\n", strict=strict)
        assert isinstance(error, ProviderError)
        assert error.code == "server_error" and error.retryable
        assert error.provider_message == "Provider disconnected unexpectedly"
        assert error.position == 3
        assert result.text == "Hi"
        (text_done,) = [e for e in events if isinstance(e, TextDone)]
        assert not text_done.complete


@pytest.mark.parametrize(
    ("provider", "code"),
    [
        pytest.param("anthropic", "overloaded_error", id="anthropic"),
        pytest.param("openrouter", "server_error", id="openrouter"),
        pytest.param("openai", "server_error", id="openai"),
        pytest.param("gemini", "503", id="gemini"),
    ],
)
def test_every_replay_server_in_band_error_is_a_provider_error(provider: str, code: str) -> None:
    # What the replay server sends on /v1/messages with `error-after=2,
    # provider=...`: each provider's in-band error, after two events.
    recording = server.Recording("anthropic-thinking", samples.read("anthropic-thinking"))
    faults = server.parse_faults(f"error-after=2, provider={provider}")
    steps = server.plan(recording, faults, server.Pace(), provider=provider, api="anthropic")
    body = b"".join(step.data for step in steps if isinstance(step.data, bytes))
    _, result, error = fold(body)
    assert isinstance(error, ProviderError) and error.position == 2
    assert (error.code, error.retryable) == (code, True)
    assert error.provider_message and result.unified.error is not None


@pytest.mark.parametrize(
    ("error", "code", "retryable"),
    [
        pytest.param({"code": 502, "message": "Provider returned error"}, "502", True, id="502"),
        pytest.param({"code": 400, "message": "bad"}, "400", False, id="400"),
        pytest.param("a bare message", None, False, id="string"),
    ],
)
def test_a_data_only_error_keeps_the_gateway_code(error: Any, code: Any, retryable: bool) -> None:
    stream = sse(message_start(), *TEXT[:2]) + f"data: {json.dumps({'error': error})}\n\n".encode()
    _, _, raised = fold(stream)
    assert isinstance(raised, ProviderError)
    assert (raised.code, raised.retryable) == (code, retryable)


# -- detection ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"type": "response.created"}, id="responses"),
        pytest.param({"type": "error", "code": "x", "message": "m"}, id="responses-error"),
        pytest.param({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}, id="gemini-error"),
        pytest.param({"type": ["message_start"]}, id="type-not-a-string"),
        pytest.param([1, 2], id="not-an-object"),
    ],
)
def test_detect_rejects(payload: Any) -> None:
    assert not AnthropicMessages.detect(ServerSentEvent(json.dumps(payload).encode()), payload)


# -- differential: the anthropic SDK's own accumulation ----------------------------------
#
# The same bytes go through the SDK's real client (a mock transport answers the
# request), and its final Message snapshot (``current_message_snapshot``, also
# after an error event) is compared with ours, field by field. A field absent
# on one side and null on the other counts as equal. Every difference is
# listed here with its reason; any other difference fails.

_CUT_STRING = (
    "a tool call cut mid-string by max_tokens: the SDK parses the partial input "
    "with jiter partial_mode=True, which drops the unfinished string; we keep the "
    "characters received (what jiter's trailing-strings mode, which the SDK uses "
    "with fine-grained tool streaming, also does)"
)
_SPLICED = (
    "a retry spliced into the stream: the SDK ignores the second message_start and "
    "merges both generations into one message (the retry's deltas land on the first "
    "message's blocks by index, keeping the first id); we restart the fold: the "
    "result is the retried message alone"
)
_CONCATENATED = (
    "three responses recorded back to back: the SDK folds all three into the first "
    "Message; we end at the first message_stop and report the rest as ignored"
)
_ITERATIONS = (
    "the GA accumulator copies only the usage fields it models from message_delta "
    "and drops usage.iterations (the beta accumulator keeps it, as we do)"
)

DIVERGENCES: dict[tuple[str, str], tuple[frozenset[str], str]] = {
    ("anthropic__anthropic__clear-thinking-context-management", "ga"): (
        frozenset({"context_management"}),
        "the GA accumulator drops message_delta's context_management (beta keeps it)",
    ),
    ("anthropic__anthropic__max-tokens-incomplete-tool-json", "ga"): (
        frozenset({"content.1.input.lines_of_text"}),
        _CUT_STRING,
    ),
    ("anthropic__anthropic__max-tokens-incomplete-tool-json", "beta"): (
        frozenset({"content.1.input.lines_of_text"}),
        _CUT_STRING,
    ),
    ("max-tokens-tool", "ga"): (frozenset({"content.1.input.content"}), _CUT_STRING),
    ("max-tokens-tool", "beta"): (frozenset({"content.1.input.content"}), _CUT_STRING),
    ("anthropic__anthropic__mcp-tool-use", "ga"): (
        frozenset({"content.0.input.message"}),
        "the GA accumulator knows no mcp_tool_use block and never applies its "
        "input_json_delta: its input stays {} (beta applies it, as we do)",
    ),
    ("anthropic__anthropic__server-tool-refusal", "ga"): (
        frozenset({"usage.iterations"}),
        _ITERATIONS,
    ),
    ("anthropic__anthropic__thinking-refusal-fallback-credit", "ga"): (
        frozenset({"usage.iterations"}),
        _ITERATIONS,
    ),
    ("anthropic__anthropic__spliced-message-start", "ga"): (frozenset({"content", "id"}), _SPLICED),
    ("anthropic__anthropic__spliced-message-start", "beta"): (
        frozenset({"content", "id"}),
        _SPLICED,
    ),
    ("anthropic__anthropic__tool-search-parallel-tool-use", "ga"): (
        frozenset(
            {
                "content",
                "stop_reason",
                "usage.input_tokens",
                "usage.output_tokens",
                "usage.server_tool_use",
            }
        ),
        _CONCATENATED,
    ),
    ("anthropic__anthropic__tool-search-parallel-tool-use", "beta"): (
        frozenset(
            {
                "content",
                "stop_reason",
                "usage.input_tokens",
                "usage.output_tokens",
                "usage.server_tool_use",
            }
        ),
        _CONCATENATED,
    ),
}


def sdk_message(data: bytes, accumulator: str) -> Any:
    anthropic = pytest.importorskip("anthropic")
    import httpx2  # the HTTP client the anthropic SDK depends on

    def answer(request: Any) -> Any:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=data)

    client = anthropic.Anthropic(
        api_key="test",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(answer)),
    )
    messages = client.beta.messages if accumulator == "beta" else client.messages
    request = {
        "model": "claude-test",
        "max_tokens": 1,
        "messages": [{"role": "user", "content": "hi"}],
    }
    with messages.stream(**request) as stream:
        try:
            for _ in stream:
                pass
        except anthropic.APIStatusError:  # an error event: the snapshot so far
            pass
        with warnings.catch_warnings():
            # The GA models serialise blocks they do not know with a warning.
            warnings.simplefilter("ignore")
            return stream.current_message_snapshot.to_dict(mode="json")


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def differences(ours: Any, theirs: Any, path: str = "") -> set[str]:
    """Dotted paths where two JSON values differ (a list of another length is one
    difference)."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        found: set[str] = set()
        for key in ours.keys() | theirs.keys():
            if key not in ours or key not in theirs:
                found.add(path + key)
            else:
                found |= differences(ours[key], theirs[key], f"{path}{key}.")
        return found
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        found = set()
        for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            found |= differences(a, b, f"{path}{index}.")
        return found
    return set() if ours == theirs else {path.rstrip(".")}


@pytest.mark.parametrize("accumulator", ["ga", "beta"])
@pytest.mark.parametrize("path", every_stream())
def test_same_message_as_the_anthropic_sdk(path: Path, accumulator: str) -> None:
    data = path.read_bytes()
    _, result, _ = fold(data)
    found = differences(
        without_nulls(result.response), without_nulls(sdk_message(data, accumulator))
    )
    expected, reason = DIVERGENCES.get((path.stem, accumulator), (frozenset(), ""))
    assert found == expected, reason or "a difference from the SDK that is not documented"


# -- cost ----------------------------------------------------------------------------


@pytest.mark.parametrize("parse_arguments", [False, True])
def test_tool_input_is_parsed_once_not_per_delta(
    monkeypatch: pytest.MonkeyPatch, parse_arguments: bool
) -> None:
    calls = {"dialect": 0, "partial": 0, "fold": 0}
    decode, partial, fold_parse = (
        anthropic_dialect.parse_arguments,
        anthropic_dialect.parse_partial,
        fold_module.parse_arguments,
    )

    def counting(name: str, function: Any) -> Any:
        def wrapper(*args: Any) -> Any:
            calls[name] += 1
            return function(*args)

        return wrapper

    monkeypatch.setattr(anthropic_dialect, "parse_arguments", counting("dialect", decode))
    monkeypatch.setattr(anthropic_dialect, "parse_partial", counting("partial", partial))
    monkeypatch.setattr(fold_module, "parse_arguments", counting("fold", fold_parse))
    text = json.dumps({"lines": [f"line {i}" for i in range(2000)]})
    pieces = [text[i : i + 7] for i in range(0, len(text), 7)]
    stream = sse(
        message_start(),
        block_start(0, {"type": "tool_use", "id": "t", "name": "f", "input": {}}),
        *[block_delta(0, {"type": "input_json_delta", "partial_json": p}) for p in pieces],
        block_stop(0),
        message_delta("tool_use"),
        STOP,
    )
    parser = StreamParser(AnthropicMessages, parse_arguments=parse_arguments)
    events = parser.feed(stream) + parser.close()
    for _ in range(3):
        assert parser.snapshot.response["content"][0]["input"]["lines"][1999] == "line 1999"
    assert len([e for e in events if isinstance(e, ToolCallArgumentsDelta)]) == len(pieces)
    # The Message's input once, the event's value once (by the incremental
    # parser instead when it was asked for), nothing per delta or per snapshot.
    assert calls == {"dialect": 1, "partial": 0, "fold": 0 if parse_arguments else 1}


# -- the typed path ------------------------------------------------------------------


def _data_only(stream: bytes) -> bytes:
    # The same events without their event: lines (Claude on Bedrock, gateways).
    return b"".join(line + b"\n" for line in stream.split(b"\n") if not line.startswith(b"event:"))


def _typed(index: int, kind: str, piece: str) -> dict[str, Any]:
    field = {"text_delta": "text", "thinking_delta": "thinking"}.get(kind, "partial_json")
    return block_delta(index, {"type": kind, field: piece})


# Streams that reach each rule of the typed path: a delta of the block's kind,
# of another kind, empty, for a block that ended or never started, for
# interleaved blocks, after a spliced retry reused the indexes, with a field
# the typed shape does not take.
TYPED_PATH_STREAMS = {
    "kinds": sse(
        message_start(),
        block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
        _typed(0, "thinking_delta", "Let"),
        _typed(0, "thinking_delta", ""),
        _typed(0, "thinking_delta", " me"),
        block_delta(0, {"type": "signature_delta", "signature": "sig"}),
        block_stop(0),
        block_start(1, {"type": "text", "text": ""}),
        _typed(1, "text_delta", "Hi"),
        _typed(1, "text_delta", ""),
        _typed(1, "thinking_delta", "misplaced"),
        _typed(1, "input_json_delta", "{}"),
        block_delta(1, {"type": "text_delta", "text": " there", "extra": 1}),
        _typed(1, "text_delta", "!"),
        block_stop(1),
        block_start(2, {"type": "tool_use", "id": "t", "name": "f", "input": {}}),
        _typed(2, "input_json_delta", '{"a"'),
        _typed(2, "input_json_delta", ""),
        _typed(2, "text_delta", "misplaced"),
        _typed(2, "input_json_delta", ": 1}"),
        block_stop(2),
        block_start(3, {"type": "mystery", "input": {}}),
        _typed(3, "input_json_delta", '{"b": 2}'),
        _typed(3, "text_delta", "?"),
        block_stop(3),
        message_delta("tool_use"),
        STOP,
    ),
    "interleaved": sse(
        message_start(),
        block_start(0, {"type": "text", "text": ""}),
        block_start(1, {"type": "thinking", "thinking": ""}),
        block_start(2, {"type": "tool_use", "id": "t", "name": "f", "input": {}}),
        *[
            _typed(index, kind, piece)
            for i in range(3)
            for index, kind, piece in (
                (0, "text_delta", f"t{i} "),
                (2, "input_json_delta", "[" if i == 0 else "1," if i == 1 else "2]"),
                (1, "thinking_delta", f"r{i} "),
                (0, "text_delta", f"u{i} "),
            )
        ],
        block_stop(1),
        block_stop(0),
        block_stop(2),
        message_delta("end_turn"),
        STOP,
    ),
    "ended-or-unknown-block": sse(
        message_start(),
        *TEXT,
        _typed(0, "text_delta", "late"),
        _typed(5, "text_delta", "never started"),
        block_start(1, {"type": "text", "text": ""}),
        _typed(1, "text_delta", "ok"),
        block_stop(1),
        message_delta("end_turn"),
        STOP,
    ),
    # Parts that change owner under the typed path (a plain fold keeps each
    # block's sink while the accumulator's epoch holds): two text blocks and two
    # thinking blocks that take turns, each turn a new part; thinking that a
    # tool call ends while its block is open, then resumes as a new part.
    "owners": sse(
        message_start(),
        *[block_start(i, {"type": "text", "text": ""}) for i in (0, 1)],
        *[block_start(i, {"type": "thinking", "thinking": ""}) for i in (2, 3)],
        *[
            _typed(index, kind, f"{index}.{i} ")
            for i in range(2)
            for index, kind in (
                *((0, "text_delta"),) * 2,
                *((1, "text_delta"),) * 2,
                *((2, "thinking_delta"),) * 2,
                *((3, "thinking_delta"),) * 2,
                (0, "text_delta"),
            )
        ],
        block_start(4, {"type": "tool_use", "id": "t", "name": "f", "input": {}}),
        _typed(3, "thinking_delta", "after the call"),
        _typed(4, "input_json_delta", "{}"),
        _typed(3, "thinking_delta", " and more"),
        *[block_stop(i) for i in range(5)],
        message_delta("tool_use"),
        STOP,
    ),
    "splice": sse(
        message_start("msg_1"),
        block_start(0, {"type": "text", "text": ""}),
        _typed(0, "text_delta", "first try"),
        message_start("msg_2"),
        _typed(0, "text_delta", "lost"),
        block_start(0, {"type": "text", "text": ""}),
        _typed(0, "text_delta", "second try"),
        block_stop(0),
        message_delta("end_turn"),
        STOP,
    ),
}


def _typed_path_sources() -> list[Any]:
    streams = [
        pytest.param(data, id=name)
        for stream_name, stream in TYPED_PATH_STREAMS.items()
        for name, data in ((stream_name, stream), (f"{stream_name}-data-only", _data_only(stream)))
    ]
    recorded = [
        pytest.param(p.values[0].read_bytes(), id=p.id)
        for p in every_stream()
        if p.values[0] is not None
    ]
    return streams + recorded


@pytest.mark.parametrize("data", _typed_path_sources())
def test_the_typed_path_folds_as_the_dict_path(data: bytes) -> None:
    assert_same_as_dict_path(data, AnthropicMessages)


@pytest.mark.parametrize(
    ("name", "taken", "refused"),
    [
        pytest.param("kinds", 9, 7, id="kinds"),
        pytest.param("interleaved", 12, 0, id="interleaved"),
        pytest.param("ended-or-unknown-block", 2, 2, id="ended-or-unknown-block"),
        pytest.param("owners", 21, 0, id="owners"),
        pytest.param("splice", 2, 1, id="splice"),
    ],
)
def test_the_typed_path_streams_reach_each_rule(name: str, taken: int, refused: int) -> None:
    # The deltas the typed path folds, and those it leaves to handle (which
    # folds them otherwise, warns or raises): the streams above reach both.
    counts = typed_path_counts(
        AnthropicMessages(fold_module.Accumulator()),
        SSEDecoder().feed(TYPED_PATH_STREAMS[name]),
        ("content_block_delta",),
    )
    assert counts == {True: taken, False: refused}


test_hostile_streams_fold_as_the_dict_path = hostile_test(
    AnthropicMessages,
    [*TYPED_PATH_STREAMS.values(), *sorted(HERE.glob("*.sse"))],
)
