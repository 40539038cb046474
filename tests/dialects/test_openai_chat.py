"""The Chat Completions family: provider quirks, the fold contract, the corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import streamfold
from streamfold import (
    IncompleteStreamError,
    ProtocolError,
    ProviderError,
    StreamParser,
    TruncatedResponseError,
)
from streamfold.dialects.openai_chat import OpenAIChat
from streamfold.events import Event

from ..corpus import CORPUS, corpus_files, features, fold_pieces
from .typed_path import assert_same_as_dict_path, dict_only, hostile_test


def sse(*payloads: Any, done: bool = True) -> bytes:
    """A chat stream from chunk objects (dicts are JSON-encoded)."""
    out = []
    for payload in payloads:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        out.append(f"data: {data}\n\n")
    if done:
        out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def chunk(
    delta: dict[str, Any] | None = None, finish: str | None = None, index: int = 0, **top: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-test",
        "choices": [
            {"index": index, "delta": delta or {}, "logprobs": None, "finish_reason": finish}
        ],
    }
    body.update(top)
    return body


def fold(stream: bytes, **options: Any) -> streamfold.Result:
    return streamfold.fold(stream, **options)


# -- the fold contract ----------------------------------------------------------------


def test_text_role_and_finish() -> None:
    result = fold(
        sse(
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hel"}),
            chunk({"role": "assistant", "content": "lo"}),
            chunk({}, "stop"),
        )
    )
    message = result.response["choices"][0]["message"]
    assert message["content"] == "Hello"
    assert message["role"] == "assistant"  # set, never concatenated
    assert result.response["object"] == "chat.completion"
    assert result.finish_reason == "stop" and result.complete


def test_usage_is_never_wiped_by_a_later_chunk_without_it() -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    result = fold(
        sse(chunk({"content": "a"}), chunk({}, "stop", usage=usage), chunk({}, usage=None))
    )
    assert result.usage is not None and result.usage.total_tokens == 7
    assert result.response["usage"] == usage


def test_usage_not_reported_is_none_not_zero() -> None:
    result = fold(sse(chunk({"content": "a"}), chunk({}, "stop")))
    assert result.usage is None
    assert "usage" not in result.response
    partial = fold(sse(chunk({}, "stop", usage={"prompt_tokens": 3})))
    assert partial.usage is not None
    assert (partial.usage.input_tokens, partial.usage.output_tokens) == (3, None)


def test_usage_only_final_chunk_with_empty_choices() -> None:
    usage = {
        "prompt_tokens": 9,
        "completion_tokens": 1,
        "total_tokens": 10,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    result = fold(
        sse(
            chunk({"content": "a"}),
            chunk({}, "stop"),
            {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "gpt-test",
                "choices": [],
                "usage": usage,
            },
        )
    )
    assert result.usage is not None
    assert (
        result.usage.input_tokens,
        result.usage.cache_read_tokens,
        result.usage.reasoning_tokens,
    ) == (9, 4, 0)
    assert result.usage.raw == usage


def test_azure_prompt_filter_chunk_does_not_blank_id_and_model() -> None:
    filters = {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
    }
    late_filter = {
        "choices": [
            {
                "index": 0,
                "finish_reason": None,
                "content_filter_results": {"hate": {"filtered": False}},
            }
        ],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
    }
    result = fold(sse(filters, chunk({"content": "hi"}), late_filter, chunk({}, "stop")))
    response = result.response
    assert (response["id"], response["model"], response["created"]) == (
        "chatcmpl-1",
        "gpt-test",
        1700000000,
    )
    assert response["prompt_filter_results"] == filters["prompt_filter_results"]
    assert response["choices"][0]["content_filter_results"] == {"hate": {"filtered": False}}


def test_first_non_empty_response_fields_win() -> None:
    result = fold(
        sse(
            chunk({"content": "a"}, system_fingerprint=None, service_tier="default"),
            chunk({}, "stop", id="other", model="other", system_fingerprint="fp_1"),
        )
    )
    response = result.response
    assert (response["id"], response["model"]) == ("chatcmpl-1", "gpt-test")
    assert (response["system_fingerprint"], response["service_tier"]) == ("fp_1", "default")


def test_obfuscation_padding_dropped_unknown_fields_kept() -> None:
    result = fold(
        sse(
            chunk({"content": "a"}, obfuscation="xyz", citations=["u1"]),
            chunk({}, "stop", obfuscation="q", citations=["u1", "u2"]),
        )
    )
    assert "obfuscation" not in result.response
    assert result.response["citations"] == ["u1", "u2"]  # last non-null wins


def test_parallel_tool_calls_keyed_by_index() -> None:
    result = fold(
        sse(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "get", "arguments": ""},
                        }
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x":'}}]}),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "put", "arguments": "{}"},
                        }
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]}),
            chunk({}, "tool_calls"),
        )
    )
    calls = result.response["choices"][0]["message"]["tool_calls"]
    assert calls == [
        {"id": "call_a", "type": "function", "function": {"name": "get", "arguments": '{"x": 1}'}},
        {"id": "call_b", "type": "function", "function": {"name": "put", "arguments": "{}"}},
    ]
    assert result.response["choices"][0]["message"]["content"] is None
    assert result.finish_reason == "tool_calls"


def test_id_and_name_set_once_never_concatenated() -> None:
    # Qwen continuation deltas repeat id "" and type; some servers repeat the name.
    result = fold(
        sse(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{"},
                        }
                    ]
                }
            ),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "",
                            "type": "function",
                            "function": {"name": "f", "arguments": "}"},
                        }
                    ]
                }
            ),
            chunk({}, "tool_calls"),
        )
    )
    (call,) = result.unified.tool_calls
    assert (call.id, call.name, call.arguments) == ("call_1", "f", "{}")


def test_tool_call_index_starting_at_one() -> None:
    # GitHub Copilot and Anthropic's compatible endpoint number calls from 1.
    result = fold(
        sse(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "t1",
                            "type": "function",
                            "function": {"name": "f", "arguments": ""},
                        }
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
            chunk({}, "tool_calls"),
        )
    )
    assert [(c.id, c.arguments) for c in result.unified.tool_calls] == [("t1", "{}")]


def test_tool_calls_without_index_keyed_by_id_then_position() -> None:
    # Mistral: whole calls in one chunk without index; Gemini's compatible
    # endpoint: no index either.
    result = fold(
        sse(
            chunk(
                {
                    "tool_calls": [
                        {"id": "a", "function": {"name": "f", "arguments": '{"q": 1}'}},
                        {"id": "b", "function": {"name": "g", "arguments": '{"q": 2}'}},
                    ]
                },
                "tool_calls",
            ),
        )
    )
    assert [(c.id, c.name, c.arguments) for c in result.unified.tool_calls] == [
        ("a", "f", '{"q": 1}'),
        ("b", "g", '{"q": 2}'),
    ]


def test_reused_index_with_a_new_id_is_a_new_call() -> None:
    result = fold(
        sse(
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}
                    ]
                }
            ),
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "b", "function": {"name": "g", "arguments": "{}"}}
                    ]
                }
            ),
            chunk({}, "tool_calls"),
        )
    )
    assert [c.id for c in result.unified.tool_calls] == ["a", "b"]


def test_legacy_function_call() -> None:
    result = fold(
        sse(
            chunk({"role": "assistant", "function_call": {"name": "f", "arguments": ""}}),
            chunk({"function_call": {"arguments": '{"a": 1}'}}),
            chunk({}, "function_call"),
        )
    )
    message = result.response["choices"][0]["message"]
    assert message["function_call"] == {"name": "f", "arguments": '{"a": 1}'}
    assert "tool_calls" not in message
    assert result.finish_reason == "tool_calls"
    assert result.unified.tool_calls[0].name == "f"


def test_logprobs_appended_in_order() -> None:
    tok = [{"token": "a", "logprob": -0.1, "bytes": [97], "top_logprobs": []}]
    tok2 = [{"token": "b", "logprob": -0.2, "bytes": [98], "top_logprobs": []}]
    first, second = chunk({"content": "a"}), chunk({"content": "b"}, "stop")
    first["choices"][0]["logprobs"] = {"content": tok, "refusal": None}
    second["choices"][0]["logprobs"] = {"content": tok2, "refusal": None}
    result = fold(sse(first, second))
    assert result.response["choices"][0]["logprobs"] == {"content": tok + tok2, "refusal": None}


def test_n_choices_each_folded_apart() -> None:
    result = fold(
        sse(
            chunk({"content": "a"}, index=0),
            chunk({"content": "b"}, index=1),
            chunk({"content": "c"}, index=0),
            chunk({}, "stop", index=1),
            chunk({}, "length", index=0),
        )
    )
    choices = result.response["choices"]
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in choices] == [
        (0, "ac", "length"),
        (1, "b", "stop"),
    ]


def test_last_non_null_finish_reason_wins() -> None:
    # Azure's asynchronous content filter can turn a finished answer into
    # content_filter after the fact.
    result = fold(sse(chunk({"content": "a"}), chunk({}, "stop"), chunk({}, "content_filter")))
    assert result.unified.raw_finish_reason == "content_filter"
    assert result.finish_reason == "content_filter"


@pytest.mark.parametrize(
    ("raw", "unified"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        ("content_filter", "content_filter"),
        ("model_length", "length"),
        ("eos", "stop"),
        ("sensitive", "content_filter"),
        ("something_new", "other"),
    ],
)
def test_finish_reason_mapping(raw: str, unified: str) -> None:
    result = fold(sse(chunk({"content": "a"}, raw)))
    assert (result.unified.raw_finish_reason, result.finish_reason) == (raw, unified)


@pytest.mark.parametrize(
    ("delta", "key"),
    [
        pytest.param({"reasoning_content": "think"}, "reasoning_content", id="deepseek-qwen"),
        pytest.param(
            {
                "reasoning": "think",
                "reasoning_details": [{"type": "reasoning.text", "text": "think"}],
            },
            "reasoning",
            id="openrouter-both",
        ),
        pytest.param(
            {"reasoning_details": [{"type": "reasoning.text", "text": "think"}]},
            "reasoning",
            id="snowflake-details-only",
        ),
    ],
)
def test_reasoning_dialects(delta: dict[str, Any], key: str) -> None:
    result = fold(sse(chunk(delta), chunk({"content": "answer"}, "stop")))
    assert result.unified.reasoning == "think"  # never counted twice
    assert result.response["choices"][0]["message"][key] == "think"


def test_mistral_content_parts() -> None:
    result = fold(
        sse(
            chunk(
                {"content": [{"type": "thinking", "thinking": [{"type": "text", "text": "hm"}]}]}
            ),
            chunk({"content": [{"type": "text", "text": "4"}]}, "stop"),
        )
    )
    assert (result.unified.reasoning, result.unified.text) == ("hm", "4")


def test_zhipu_numeric_id_and_usage_in_finish_chunk() -> None:
    result = fold(
        sse(
            chunk({"content": "a"}, id=8123456789),
            chunk(
                {},
                "stop",
                id=8123456789,
                usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            ),
        )
    )
    assert result.response["id"] == "8123456789"
    assert result.usage is not None and result.usage.total_tokens == 2


def test_deepseek_cache_tokens() -> None:
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 2,
        "total_tokens": 12,
        "prompt_cache_hit_tokens": 8,
        "prompt_cache_miss_tokens": 2,
    }
    result = fold(sse(chunk({"content": "a"}, "stop", usage=usage)))
    assert result.usage is not None and result.usage.cache_read_tokens == 8


def test_groq_x_groq_usage() -> None:
    result = fold(
        sse(
            chunk({"content": "a"}),
            chunk(
                {},
                "stop",
                x_groq={
                    "id": "req_1",
                    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
                },
            ),
        )
    )
    assert result.usage is not None and result.usage.total_tokens == 7


def test_created_zero_and_empty_ids() -> None:
    result = fold(sse(chunk({"content": "4"}, id="", created=0), chunk({}, id="", created=0)))
    assert (result.response["id"], result.response["created"]) == ("", 0)
    assert result.text == "4" and result.complete  # [DONE] without a finish reason


# -- errors --------------------------------------------------------------------------


def test_midstream_error_payload_is_a_provider_error_with_the_partial() -> None:
    stream = sse(
        chunk({"content": "The"}),
        {"error": {"message": "boom", "type": "server_error"}},
        done=False,
    )
    with pytest.raises(ProviderError) as info:
        fold(stream)
    error = info.value
    assert (error.code, error.message, error.retryable) == ("server_error", "boom", True)
    assert error.partial is not None and error.partial.text == "The"
    assert error.partial.unified.error is not None
    assert error.position == 1


def test_openrouter_error_chunk_with_finish_reason_error() -> None:
    stream = sse(
        chunk({"content": "a"}),
        chunk({"content": ""}, "error", error={"code": 502, "message": "Provider disconnected"}),
        done=False,
    )
    with pytest.raises(ProviderError) as info:
        fold(stream)
    assert (info.value.code, info.value.message, info.value.retryable) == (
        "502",
        "Provider disconnected",
        True,
    )
    assert info.value.partial is not None and info.value.partial.finish_reason == "error"


def test_groq_error_event() -> None:
    stream = sse(chunk({"reasoning": "x"}), done=False) + (
        b'event: error\ndata: {"error":{"message":"bad call","type":"invalid_request_error",'
        b'"code":"tool_use_failed"}}\n\n'
    )
    with pytest.raises(ProviderError) as info:
        fold(stream)
    assert (info.value.code, info.value.retryable) == ("tool_use_failed", False)


def test_deepseek_insufficient_system_resource_is_a_retryable_provider_error() -> None:
    with pytest.raises(ProviderError) as info:
        fold(sse(chunk({"content": "a"}), chunk({}, "insufficient_system_resource")))
    assert info.value.retryable and info.value.code == "insufficient_system_resource"
    assert info.value.partial is not None and info.value.partial.text == "a"


def test_stream_cut_without_finish_or_done_is_incomplete() -> None:
    with pytest.raises(IncompleteStreamError) as info:
        fold(sse(chunk({"content": "a"}), chunk({"content": "b"}), done=False))
    assert info.value.partial is not None and info.value.partial.text == "ab"
    assert not info.value.partial.complete


def test_truncated_tool_call_is_never_presented_as_complete() -> None:
    stream = sse(
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "c", "function": {"name": "f", "arguments": '{"a": 1'}}
                ]
            }
        ),
        done=False,
    )
    events: list[Event] = []
    with pytest.raises(IncompleteStreamError):
        events.extend(streamfold.iter_events(stream))
    done = [e for e in events if isinstance(e, streamfold.ToolCallDone)]
    assert len(done) == 1 and done[0].complete is False
    assert isinstance(events[-1], streamfold.ErrorOccurred)


def test_malformed_json_names_the_event_and_shows_the_bytes() -> None:
    stream = sse(chunk({"content": "a"}), '{"choices": [', chunk({}, "stop"))
    with pytest.raises(ProtocolError) as info:
        fold(stream)
    assert "event #1" in str(info.value)
    assert '{"choices": [' in str(info.value) and info.value.excerpt == '{"choices": ['
    assert info.value.position == 1
    assert info.value.partial is not None and info.value.partial.text == "a"


def test_lenient_mode_skips_malformed_events_with_a_warning() -> None:
    stream = sse(chunk({"content": "a"}), "not json", chunk({"content": "b"}, "stop"))
    result = fold(stream, strict=False)
    assert result.text == "ab"
    assert len(result.warnings) == 1 and "#1" in result.warnings[0]


def test_checked_result_raises_on_length() -> None:
    stream = sse(chunk({"content": "a"}, "length"))
    assert fold(stream).finish_reason == "length"
    with pytest.raises(TruncatedResponseError) as info:
        fold(stream, checked=True)
    assert info.value.reason == "length" and info.value.partial is not None


def test_json_error_body_instead_of_a_stream() -> None:
    body = (
        b'{"error": {"message": "Invalid API key", "type": "invalid_request_error", '
        b'"code": "invalid_api_key"}}'
    )
    with pytest.raises(ProviderError) as info:
        fold(body)
    assert info.value.code == "invalid_api_key"


def test_empty_stream_is_incomplete() -> None:
    with pytest.raises(IncompleteStreamError):
        fold(b"")
    with pytest.raises(IncompleteStreamError):
        fold(b": keep-alive\n\n")


def test_events_after_done_are_ignored_with_a_warning() -> None:
    result = fold(sse(chunk({"content": "a"}, "stop")) + sse(chunk({"content": "zzz"}), done=False))
    assert result.text == "a"
    assert any("after the end" in w for w in result.warnings)


def test_explicit_dialect() -> None:
    result = fold(sse(chunk({"content": "a"}, "stop")), dialect="openai-chat")
    assert result.dialect == "openai-chat"
    with pytest.raises(streamfold.UsageError):
        fold(b"", dialect="nope")


# -- the corpus ----------------------------------------------------------------------

_EXPECTED_ERRORS = {
    # stream -> the typed error it must end in (read from the stream itself)
    "deepseek__chat__handwritten-insufficient-system-resource.sse": ProviderError,
    "groq__chat__midstream-error-tool-use-failed-after-text.sse": ProviderError,
    "groq__chat__midstream-error-tool-use-failed.sse": ProviderError,
    "openai__chat__midstream-server-error.sse": ProviderError,
    "openrouter__chat__handwritten-midstream-error-provider-disconnected.sse": ProviderError,
    "openrouter__chat__midstream-error-token-limit.sse": ProviderError,
}


# stream -> features the manifest lists that only a later completion in the
# same capture has (the fold keeps the first completion, see _next_completion).
_LATER_COMPLETION_FEATURES = {
    "cerebras__chat__structured-output-parallel-tools.sse": {"text", "structured_output"},
}


@pytest.mark.parametrize("path", corpus_files("chat"))
def test_corpus_stream_folds(path: Path) -> None:
    data = path.read_bytes()
    expected = _EXPECTED_ERRORS.get(path.name)
    events, result, error = fold_pieces([data])
    assert result is not None
    if expected is None:
        assert error is None, f"{path.name}: {error!r}"
        assert result.complete
        has = features(path) - _LATER_COMPLETION_FEATURES.get(path.name, set())
        if "tool_calls" in has:
            assert result.unified.tool_calls
            for call in result.unified.tool_calls:
                assert call.id is None or call.id
                json.loads(call.arguments or "{}")
        if "text" in has or ("structured_output" in has and "refusal" not in has):
            assert result.text or any(c["message"]["content"] for c in result.response["choices"])
        if "reasoning" in has:
            assert result.unified.reasoning
        if "refusal" in has and "azure" not in path.name:
            assert result.unified.refusal
        if "usage" in has:
            assert result.usage is not None
    else:
        assert isinstance(error, expected), f"{path.name}: {error!r}"
        assert isinstance(events[-1], streamfold.ErrorOccurred)
    assert result.dialect == "openai-chat"


def test_detect_rejects_other_shapes() -> None:
    from streamfold.sse import ServerSentEvent

    event = ServerSentEvent(b"{}")
    assert OpenAIChat.detect(event, {"choices": []})
    assert not OpenAIChat.detect(event, {"type": "message_start"})
    assert not OpenAIChat.detect(event, {"candidates": []})
    assert not OpenAIChat.detect(event, [])


_DictOnly = dict_only(OpenAIChat)


def _call_start(index: int, id: str) -> dict[str, Any]:
    return chunk(
        {"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": "f"}}]}
    )


def _call_piece(index: int, arguments: str) -> dict[str, Any]:
    return chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]})


_SYNTHETIC = [
    sse(
        chunk({"role": "assistant", "content": ""}),
        *[chunk({"reasoning_content": f"r{i} "}) for i in range(5)],
        *[chunk({"content": f"t{i} "}) for i in range(5)],
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "a",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    }
                ]
            }
        ),
        *[
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]})
            for p in ['{"x"', ": 1", "}"]
        ],
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
        chunk({}, "tool_calls"),
        chunk({"content": "late"}, index=1),
    ),
    # Parts that end or change under the typed path: text after the choice's
    # finish (a closed part is never appended to), text around a tool call,
    # reasoning and text alternating, DeepSeek's null beside each piece.
    sse(
        *[chunk({"content": f"a{i}"}) for i in range(3)],
        chunk({}, "stop"),
        *[chunk({"content": f"b{i}"}) for i in range(3)],
        *[chunk({"reasoning_content": f"r{i}"}) for i in range(3)],
    ),
    sse(
        *[chunk({"content": f"a{i}"}) for i in range(3)],
        chunk(
            {"tool_calls": [{"index": 0, "id": "c", "type": "function", "function": {"name": "f"}}]}
        ),
        *[chunk({"content": f"b{i}"}) for i in range(3)],
        *[chunk({"reasoning_content": f"r{i}", "content": None}) for i in range(3)],
        *[chunk({"content": f"c{i}", "reasoning_content": None}) for i in range(3)],
        *[chunk({"reasoning_content": f"s{i}", "content": ""}) for i in range(3)],
        *[chunk({"content": f"d{i}"}, index=1) for i in range(3)],
        *[chunk({"content": f"e{i}"}) for i in range(3)],
    ),
    # A field sent null or empty for the first time beside a piece of the part
    # the last delta went to: noted (it shapes the native message).
    sse(
        *[chunk({"content": f"a{i}"}) for i in range(3)],
        chunk({"content": "b", "reasoning_content": None}),
        *[chunk({"reasoning_content": f"r{i}"}) for i in range(3)],
        chunk({"reasoning_content": "s", "content": ""}),
        chunk({"reasoning_content": "t", "tool_calls": []}),
    ),
    sse(
        *[chunk({"reasoning_content": f"r{i}"}) for i in range(3)],
        chunk({"reasoning_content": "s", "content": ""}),
        chunk({}, "stop"),
    ),
    # A call that ended (its JSON whole when the next one started) gets a
    # piece again: the kept call of the last pieces is not the current one.
    sse(
        _call_start(0, "a"),
        *[_call_piece(0, p) for p in ['{"x"', ": 1", "}"]],
        _call_start(1, "b"),
        *[_call_piece(0, p) for p in [" late", " more"]],
        *[_call_piece(1, p) for p in ['{"y"', ": 2}"]],
        chunk({}, "tool_calls"),
    ),
    # Text or an empty field beside a known call's arguments.
    sse(
        chunk(
            {"tool_calls": [{"index": 0, "id": "c", "type": "function", "function": {"name": "f"}}]}
        ),
        *[
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}], **extra})
            for p, extra in [
                ('{"a"', {}),
                (": ", {"content": "beside"}),
                ("1", {"reasoning_content": ""}),
                ("}", {"content": ""}),
            ]
        ],
        chunk({}, "tool_calls"),
    ),
]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(p.values[0].read_bytes(), id=p.id)
        for p in corpus_files("chat")
        if p.values[0] is not None
    ]
    + [pytest.param(d, id=f"synthetic-{i}") for i, d in enumerate(_SYNTHETIC)],
)
def test_typed_fast_path_gives_the_dict_path_results(data: bytes) -> None:
    assert_same_as_dict_path(data, OpenAIChat)


test_the_typed_path_folds_hostile_input_as_the_dict_path = hostile_test(
    OpenAIChat,
    [*_SYNTHETIC, *(p.values[0] for p in corpus_files("chat") if p.values[0] is not None)],
)


def test_the_typed_fast_path_is_taken_for_common_chunks() -> None:
    parser = StreamParser(OpenAIChat)
    parser.feed(_SYNTHETIC[0])
    parser.close()
    assert isinstance(parser.dialect, OpenAIChat)
    # 4 of the 5 reasoning pieces, the 5 text pieces, 3 argument pieces.
    assert parser.dialect._typed_hits >= 12


def test_deep_nesting_is_a_protocol_error_not_a_recursion_error() -> None:
    deep = b"data: " + b"[" * 100_000 + b"]" * 100_000 + b"\n\n"
    with pytest.raises(ProtocolError, match="nested too deeply"):
        fold(sse(chunk({"content": "a"})).replace(b"data: [DONE]\n\n", b"") + deep)
    with pytest.raises(ProtocolError):
        fold(deep)


# -- untrusted values ----------------------------------------------------------------

# A 3,000-deep JSON array: deeper than msgspec can decode on the default stack.
DEEP_ARRAY = "[" * 3000 + "]" * 3000


@pytest.mark.parametrize(
    ("values", "kept"),
    [
        pytest.param([1, [1]], [1], id="scalar-then-list"),
        pytest.param([[1], 2], 2, id="list-then-scalar"),
        pytest.param([[1], [2, 3]], [1, 2, 3], id="lists-extend"),
        pytest.param([{"a": 1}, [1], [2]], [1, 2], id="object-then-lists"),
        pytest.param([[1], None, [2]], [1, 2], id="null-skipped"),
    ],
)
def test_unknown_delta_fields_lists_extend_other_values_replace(
    values: list[Any], kept: Any
) -> None:
    stream = sse(
        *[chunk({"content": "a", "annotations": value}) for value in values],
        chunk({}, "stop"),
    )
    for result in (fold(stream), fold_pieces([stream])[1]):
        assert result is not None and result.text == "a" * len(values)
        assert result.response["choices"][0]["message"]["annotations"] == kept


def tool_arguments_stream(arguments: Any) -> bytes:
    return sse(
        chunk({"content": "Calling."}),
        chunk(
            {"tool_calls": [{"index": 0, "id": "c", "type": "function", "function": {"name": "f"}}]}
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]}),
        chunk({}, "tool_calls"),
    )


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param(DEEP_ARRAY, id="deep-array"),
        pytest.param('{"a": ' + DEEP_ARRAY + "}", id="deep-array-in-object"),
        pytest.param('{"a": ' + "1" * 5000 + "}", id="integer-of-5000-digits"),
    ],
)
@pytest.mark.parametrize("parse_arguments", [False, True])
def test_arguments_too_deep_or_too_big_are_a_parse_error(
    arguments: str, parse_arguments: bool
) -> None:
    stream = tool_arguments_stream(arguments)
    events = list(streamfold.iter_events(stream, parse_arguments=parse_arguments))
    (done,) = [e for e in events if isinstance(e, streamfold.events.ToolCallDone)]
    assert done.complete and done.arguments == arguments
    assert done.value is None and done.parse_error is not None
    result = fold(stream)
    assert result.text == "Calling." and result.unified.tool_calls[0].arguments == arguments


def test_parsed_arguments_nested_too_deeply_to_write_only_raise_protocol_errors() -> None:
    # Some servers send arguments as a JSON value, which is written back as
    # text. A value just under msgspec's decoding limit may be too deep to
    # write on the deeper stack: whatever the depth, only streamfold's errors.
    template = tool_arguments_stream([])
    for depth in range(900, 1001):
        deep = b"[" * depth + b"]" * depth
        stream = template.replace(b'"arguments": []', b'"arguments": ' + deep)
        for strict in (True, False):
            parser = StreamParser(OpenAIChat, strict=strict)
            parser.feed(stream)
            parser.close()
            assert parser.error is None or isinstance(parser.error, ProtocolError)
            assert parser.snapshot.unified.text == "Calling."


# -- a second completion in the same stream --------------------------------------------


def completion(id: str, text: str, *, role: bool = True) -> list[dict[str, Any]]:
    first = {"role": "assistant", "content": text[:1]} if role else {"content": text[:1]}
    return [
        chunk(first, id=id),
        *[chunk({"content": piece}, id=id) for piece in text[1:]],
        chunk({}, "stop", id=id, usage={"prompt_tokens": 1, "completion_tokens": len(text)}),
    ]


@pytest.mark.parametrize(
    "second",
    [
        pytest.param(completion("chatcmpl-2", "later"), id="with-role"),
        pytest.param(completion("chatcmpl-2", "later", role=False), id="text-only"),
    ],
)
@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("dialect", [OpenAIChat, _DictOnly])
def test_a_second_completion_after_every_choice_finished_is_ignored(
    second: list[dict[str, Any]], strict: bool, dialect: type[OpenAIChat]
) -> None:
    stream = sse(*completion("chatcmpl-1", "first"), *second, done=False)
    events, result, error = fold_pieces([stream], dialect, strict=strict)
    assert error is None and result is not None and result.complete
    assert (result.text, result.response["id"]) == ("first", "chatcmpl-1")
    assert result.usage is not None and result.usage.output_tokens == 5
    assert [e.type for e in events][-2:] == ["usage", "response.finished"]
    warning = result.warnings[0]
    assert "'chatcmpl-2'" in warning and "another completion" in warning
    assert all("after the end of the stream ignored" in w for w in result.warnings[1:])


def test_a_new_id_before_the_finish_or_a_late_chunk_of_the_same_id_is_folded() -> None:
    # Perplexity's finish chunk carries another id than the chunks before it;
    # Azure's asynchronous content filter sends a late chunk of the same id.
    stream = sse(
        chunk({"content": "a"}, id="req_REDACTED_1"),
        chunk({"content": "b"}, "stop", id="e0efe646"),
        chunk({}, "content_filter", id="req_REDACTED_1"),
        chunk({}, id="e0efe646", usage={"prompt_tokens": 1, "completion_tokens": 2}),
        done=False,
    )
    result = fold(stream)
    assert result.text == "ab" and result.unified.raw_finish_reason == "content_filter"
    assert result.usage is not None and result.usage.output_tokens == 2
    assert not result.warnings


def test_the_cerebras_capture_folds_its_first_completion() -> None:
    path = CORPUS / "cerebras__chat__structured-output-parallel-tools.sse"
    if not path.exists():
        pytest.skip("the shared corpus is absent")
    events, result, error = fold_pieces([path.read_bytes()], parse_arguments=True)
    assert error is None and result is not None and result.complete
    assert result.response["id"] == "chatcmpl-9e97f9ca-9626-4ef8-8543-6e3ee7cef659"
    assert result.unified.reasoning.startswith("The user is asking about a")
    assert [(c.id, c.arguments) for c in result.unified.tool_calls] == [("bbd2b9d98", "{}")]
    assert (result.text, result.finish_reason) == ("", "tool_calls")
    assert result.usage is not None and result.usage.total_tokens == 426
    assert [e.type for e in events].count("reasoning.done") == 1
    assert "another completion" in result.warnings[0]
