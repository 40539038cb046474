"""Differential test: the `openai` package's ChatCompletionStreamState as an oracle.

The SDK folds the same chunks; wherever it accepts a stream, its final
completion must agree with ours, except at the documented divergences below
(also in docs/semantics.md), each a known SDK shortcoming we do not copy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamfold.sse import SSEDecoder

from ..corpus import corpus_files, fold_pieces

openai_streaming = pytest.importorskip("openai.lib.streaming.chat")
openai_models = pytest.importorskip("openai._models")
from openai.types.chat import ChatCompletionChunk  # noqa: E402

# stream -> (fields not compared, why), or SDK_FAILS when the SDK cannot fold it.
SDK_FAILS = "sdk_fails"
_INDEX_AS_POSITION = (
    "the SDK uses a tool call's `index` as a list position: a first call at index 1 "
    "raises IndexError"
)
DIVERGENCES: dict[str, tuple[str | frozenset[str], str]] = {
    "azure__chat__model-router-prompt-filter-results.sse": (
        frozenset({"id", "model"}),
        "the SDK takes id and model from the first chunk, Azure's prompt_filter_results "
        "chunk with id '' and model '': it blanks them; we keep the first non-empty value",
    ),
    "azure__chat__handwritten-async-content-filter.sse": (
        SDK_FAILS,
        "a content-filter chunk whose choice has no delta: AttributeError",
    ),
    "mistral__chat__tool-call-single-chunk-no-index.sse": (
        SDK_FAILS,
        "Mistral sends whole tool calls without `index`: KeyError",
    ),
    "mistral__chat__reasoning-content-array.sse": (
        SDK_FAILS,
        "Mistral's content as a list of typed parts: RuntimeError",
    ),
    "openrouter__chat__web-search-url-citations.sse": (
        SDK_FAILS,
        "annotations without `index`: the SDK's list merge raises RuntimeError",
    ),
    "anthropic__chat__openai-compat-tool-index-1.sse": (SDK_FAILS, _INDEX_AS_POSITION),
    "github-copilot__chat__tool-call-index-1-no-object.sse": (SDK_FAILS, _INDEX_AS_POSITION),
    "cerebras__chat__structured-output-parallel-tools.sse": (
        frozenset({"tool_calls", "content", "usage"}),
        "a multi-step capture: a second completion (a new id) follows the first one's "
        "finish; the SDK merges both into one (the two calls at index 0 into one call, "
        "ids, names and arguments concatenated); we keep the first completion",
    ),
    "openai__chat__moderation-trailing-chunk.sse": (
        frozenset({"usage"}),
        "a trailing moderation chunk with usage null follows the usage chunk: the SDK "
        "wipes the usage, we keep the last reported one",
    ),
    "openrouter__chat__midstream-error-token-limit.sse": (
        frozenset({"usage"}),
        "the error chunk carries the usage; the SDK's Stream stops at the error chunk "
        "without folding it, we fold it and then raise",
    ),
    "openrouter__chat__handwritten-midstream-error-provider-disconnected.sse": (
        frozenset({"finish_reason"}),
        "the error chunk carries finish_reason 'error'; the SDK's Stream stops before "
        "folding it, we keep it",
    ),
}


def sdk_fold(data: bytes) -> Any:
    """Fold with the SDK the way its Stream does: skip [DONE], stop at an error."""
    state = openai_streaming.ChatCompletionStreamState()
    decoder = SSEDecoder()
    for event in [*decoder.feed(data), *decoder.close()]:
        if event.data.startswith("[DONE]"):
            break
        payload = json.loads(event.data)
        if event.event == "error" or (isinstance(payload, dict) and payload.get("error")):
            break
        chunk = openai_models.construct_type(type_=ChatCompletionChunk, value=payload)
        state.handle_chunk(chunk)
    return state.current_completion_snapshot


def view_of_sdk(snapshot: Any) -> dict[str, Any]:
    choices = {}
    for choice in snapshot.choices:
        message = choice.message
        choices[choice.index] = {
            "content": message.content or None,
            "refusal": message.refusal or None,
            "tool_calls": [
                (c.id or None, c.type, c.function.name, c.function.arguments)
                for c in (message.tool_calls or [])
            ],
            "finish_reason": choice.finish_reason,
        }
    usage = snapshot.usage
    return {
        "id": snapshot.id,
        "model": snapshot.model,
        "choices": choices,
        "usage": None
        if usage is None
        else (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens),
    }


def view_of_ours(response: dict[str, Any]) -> dict[str, Any]:
    choices = {}
    for choice in response["choices"]:
        message = choice["message"]
        choices[choice["index"]] = {
            "content": message.get("content") or None,
            "refusal": message.get("refusal") or None,
            "tool_calls": [
                (c["id"] or None, c["type"], c["function"]["name"], c["function"]["arguments"])
                for c in message.get("tool_calls") or []
            ],
            "finish_reason": choice["finish_reason"],
        }
    usage = response.get("usage")
    return {
        "id": response["id"],
        "model": response["model"],
        "choices": choices,
        "usage": None
        if usage is None
        else (
            usage.get("prompt_tokens"),
            usage.get("completion_tokens"),
            usage.get("total_tokens"),
        ),
    }


@pytest.mark.parametrize("path", corpus_files("chat"))
def test_agrees_with_the_openai_sdk(path: Path) -> None:
    data = path.read_bytes()
    excluded, _why = DIVERGENCES.get(path.name, (frozenset(), ""))
    _, result, _ = fold_pieces([data])
    assert result is not None
    if excluded == SDK_FAILS:
        with pytest.raises(Exception):  # noqa: B017 - the SDK's own failure, any type
            sdk_fold(data)
        return
    ours = view_of_ours(result.response)
    theirs = view_of_sdk(sdk_fold(data))
    for view in (ours, theirs):
        for field in excluded:
            view.pop(field, None)
            for choice in view["choices"].values():
                choice.pop(field, None)
    assert ours == theirs
