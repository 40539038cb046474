"""The fold is the non-streaming response: the fold of a stream has the shape of
what the same provider returns without streaming, field for field.

Ground truth: ``../shared/pairs`` (each a streamed ``.sse`` and the non-streaming
``.json`` of the same request, recorded from the real services). In the repository,
the Chat Completions fixtures show one rule each of docs/semantics.md ("The final
response, per provider"), and their golden ``<name>.response.json`` (checked by
``test_conformance.py``) is the response the provider's reference documents.
The two answers of a pair were sampled separately, so the comparison is of
shapes: the keys, and the kind of each value (null, empty string, text, number,
boolean, empty or filled list, object). Content (text, arguments, ids, token
counts, timestamps) is not compared; list items are matched by their type.
Every difference the comparison may find is named below, with its reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamfold.dialects.openai_chat import OpenAIChat

from .corpus import FIXTURES, fold_pieces, pair_files
from .dialects.typed_path import dict_only

# -- the comparison -------------------------------------------------------------------

#: String fields whose value is the answer itself or an identifier: only whether
#: they are null (or absent) or a string is their shape, never empty against not.
CONTENT_KEYS = frozenset(
    {
        "arguments",
        "call_id",
        "content",
        "created",
        "createTime",
        "data",
        "encrypted_content",
        "finishReason",
        "finish_reason",
        "id",
        "model",
        "modelVersion",
        "name",
        "reasoning",
        "reasoning_content",
        "refusal",
        "responseId",
        "signature",
        "status",
        "stop_reason",
        "stop_sequence",
        "summary",
        "system_fingerprint",
        "text",
        "thinking",
        "thoughtSignature",
        "type",
    }
)
# Gemini's parts have no `type`: the field holding their data names their kind.
_PART_KINDS = (
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
    "inlineData",
    "fileData",
    "text",
)


def kind(value: Any, key: str | None) -> str:
    """The kind of a JSON value, as the shape comparison sees it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string" if value or key in CONTENT_KEYS else "empty string"
    if isinstance(value, list):
        return "list" if value else "empty list"
    return "object"


def item_kind(item: Any) -> str:
    """What a list item is, to match the items of two lists: its ``type``, else
    (Gemini parts) the field that holds its data."""
    if not isinstance(item, dict):
        return kind(item, None)
    tag = item.get("type")
    if isinstance(tag, str):
        return tag
    if item.get("thought"):
        return "thought"
    return next((key for key in _PART_KINDS if key in item), "")


def shape_differences(
    fold: Any, native: Any, path: str = "", key: str | None = None
) -> list[tuple[str, str]]:
    """Where ``fold`` and ``native`` differ in shape: ``(path, what)`` pairs.

    Paths name list items by their kind (``.choices[].message.tool_calls[function]``).
    Items of the two lists are matched by kind and order; a list whose items have
    an ``index`` must have each index once in the fold (fragments merged)."""
    ours, theirs = kind(fold, key), kind(native, key)
    if ours != theirs:
        return [(path, f"{ours} in the fold, {theirs} without streaming")]
    out: list[tuple[str, str]] = []
    if isinstance(fold, dict):
        for name in sorted(fold.keys() | native.keys()):
            where = f"{path}.{name}"
            if name not in native:
                out.append((where, "only in the fold"))
            elif name not in fold:
                out.append((where, "only without streaming"))
            else:
                out += shape_differences(fold[name], native[name], where, name)
    elif isinstance(fold, list):
        indexes = [i.get("index") for i in fold if isinstance(i, dict) and "index" in i]
        if len(indexes) != len(set(map(repr, indexes))):
            out.append((path, "entries share an index in the fold (fragments not merged)"))
        ours_by_kind: dict[str, list[Any]] = {}
        theirs_by_kind: dict[str, list[Any]] = {}
        for item in fold:
            ours_by_kind.setdefault(item_kind(item), []).append(item)
        for item in native:
            theirs_by_kind.setdefault(item_kind(item), []).append(item)
        for name in sorted(ours_by_kind.keys() & theirs_by_kind.keys()):
            for mine, other in zip(ours_by_kind[name], theirs_by_kind[name], strict=False):
                out += shape_differences(mine, other, f"{path}[{name}]", key)
    return sorted(set(out))


def test_the_comparison_sees_what_it_must() -> None:
    fold = {
        "content": None,
        "refusal": None,
        "details": [{"index": 0, "text": "a"}, {"index": 0, "text": "b"}],
        "calls": [{"type": "function", "index": 0}],
        "text": "",
    }
    native = {
        "content": "",
        "details": [{"index": 0, "text": "ab"}],
        "calls": [{"type": "function"}],
        "text": "an answer",
        "annotations": [],
    }
    assert shape_differences(fold, native) == [
        (".annotations", "only without streaming"),
        (".calls[function].index", "only in the fold"),
        (".content", "null in the fold, string without streaming"),
        (".details", "entries share an index in the fold (fragments not merged)"),
        (".refusal", "only in the fold"),
    ]


# -- what may differ, and why ------------------------------------------------------------

#: Fields only the non-streaming response has: no event of the stream carries them
#: (docs/semantics.md lists them). By provider, then path.
CANNOT_CARRY: dict[tuple[str, str], str] = {
    ("groq", ".usage_breakdown"): "Groq's usage breakdown (compound models) is never streamed",
    ("openai", ".billing"): "Responses: `billing` (the payer) is in no streamed response object",
    ("venice", ".venice_parameters"): "Venice echoes its request parameters only without streaming",
    ("venice", ".choices[].message.name"): (
        "Venice's non-vLLM models answer `name: null` without streaming; deltas carry no name"
    ),
    (
        "xai",
        ".reasoning.effort",
    ): "xAI's streamed response object says null; its other says the request's",
    (
        "xai",
        ".reasoning.summary",
    ): "xAI's streamed response object says null; its other says the request's",
    ("xai", ".tools[function].strict"): (
        "xAI's streamed response object says null; its other says the request's"
    ),
}

#: One pair's differences that come from its two answers, sampled separately.
SAMPLED: dict[str, dict[str, str]] = {
    "anthropic__opus_4_7__messages_adaptive_thinking_streaming_smoke": {
        ".usage.output_tokens_details": "the other answer reported no thinking-token detail",
    },
    "deepseek__prompt_caching__streaming_probe__1": {
        ".choices[].message.reasoning_content": "the streamed answer did not reason, the other did",
    },
    "doubleword__finish_reason_matrix__streaming_tool_calls": {
        ".choices[].message.reasoning_content": "the streamed answer reasoned, the other did not",
        ".choices[].message.reasoning_details": "the streamed answer reasoned, the other did not",
    },
    "openrouter__reasoning_tool_roundtrip__streaming": {
        ".choices[].message.reasoning_details": "only the streamed answer has reasoning details",
    },
    "venice__prompt_caching__streaming_probe__1": {
        ".usage.cache_read_input_tokens": "only the streamed request hit the cache",
    },
    "venice__raw_stream_capture_matrix__stream_raw_exposes_terminal_cost": {
        ".usage.cache_read_input_tokens": "only the other request hit the cache",
    },
}


def _allowed(provider: str, name: str, path: str) -> bool:
    return (provider, path) in CANNOT_CARRY or path in SAMPLED.get(name, {})


def _fold_pair(sse: Path, provider: str) -> tuple[dict[str, Any], dict[str, Any]]:
    _, result, error = fold_pieces([sse.read_bytes()])
    assert error is None, f"the stream did not fold: {error!r}"
    assert result is not None
    native = json.loads(sse.with_suffix(".json").read_text(encoding="utf-8"))
    return result.response, native


@pytest.mark.parametrize(("sse", "provider"), pair_files())
def test_the_fold_has_the_shape_of_the_non_streaming_response(sse: Path, provider: str) -> None:
    fold, native = _fold_pair(sse, provider)
    unexplained = [
        f"{path}: {what}"
        for path, what in shape_differences(fold, native)
        if not _allowed(provider, sse.stem, path)
    ]
    assert unexplained == []


def test_every_named_difference_still_occurs() -> None:
    """The tables above stay true: each entry is seen on the pairs (a fix that
    removes a difference removes its entry)."""
    seen: set[tuple[str, str]] = set()
    for param in pair_files():
        sse, provider = param.values
        if sse is None:
            pytest.skip("the shared pairs are absent")
        _, result, error = fold_pieces([sse.read_bytes()])
        if result is None or error is not None:
            continue
        native = json.loads(sse.with_suffix(".json").read_text(encoding="utf-8"))
        for path, _ in shape_differences(result.response, native):
            seen.add((provider, path))
            seen.add((sse.stem, path))
    assert sorted(set(CANNOT_CARRY) - seen) == []
    stale = [(name, path) for name, paths in SAMPLED.items() for path in paths]
    assert sorted(set(stale) - seen) == []


# The chat dialect without its typed fast path (see ``_TypedChunk``).
_DictPathOnly = dict_only(OpenAIChat)


_CHAT_STREAMS = [
    *(param.values[0] for param in pair_files() if param.values[0] is not None),
    *sorted((FIXTURES / "openai_chat").glob("*.sse")),
]


@pytest.mark.parametrize("sse", [pytest.param(path, id=path.stem) for path in _CHAT_STREAMS])
def test_the_typed_path_keeps_the_shape_of_the_general_one(sse: Path) -> None:
    # What the stream shows (a field sent as null, content "") is noted on both
    # paths: a chunk folds to the same response whichever decodes it.
    data = sse.read_bytes()
    _, result, _ = fold_pieces([data])
    if result is None or result.dialect != "openai-chat":
        pytest.skip("not a Chat Completions stream")
    general = fold_pieces([data], _DictPathOnly)[1]
    assert general is not None and general.response == result.response


def test_fields_sent_empty_on_the_typed_path_are_noted() -> None:
    # The first chunk takes the general path; the second, with only content ""
    # and reasoning_content null, the typed one: both fields are in the shape.
    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        body = {"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [choice]}
        return f"data: {json.dumps(body)}\n\n"

    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f"}}
    data = (
        chunk(
            {
                "role": "assistant",
                "tool_calls": [{**call, "function": {"name": "f", "arguments": ""}}],
            }
        )
        + chunk({"content": "", "reasoning_content": None})
        + chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]})
        + chunk({}, "tool_calls")
        + "data: [DONE]\n\n"
    ).encode()
    for dialect in (OpenAIChat, _DictPathOnly):
        result = fold_pieces([data], dialect)[1]
        assert result is not None
        message = result.response["choices"][0]["message"]
        assert (message["content"], message["reasoning_content"]) == ("", None), dialect
