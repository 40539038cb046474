"""``parser.snapshot`` read after every chunk: what a caller sees is what a parser
that never took a snapshot would show, and a snapshot never changes afterwards.

A snapshot reuses what did not change since the previous one (docs/semantics.md,
"Snapshots"). These tests hold that reuse to the result built from scratch: at
every chunk (each one event) of every recording, the snapshot of a parser read
after every chunk equals the first snapshot of a fresh parser fed the same
chunks; and every snapshot taken on the way still encodes to the same JSON at
the end of the stream.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from streamfold import StreamParser
from streamfold.result import Result

from .corpus import CORPUS, FIXTURES, cut

_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
# Longer recordings are checked at this many chunks (the first ones, then spread
# out): a fresh parser per chunk costs time quadratic in the recording.
_CHECKPOINTS = 48


def chunks_of(data: bytes) -> list[bytes]:
    """The recording cut after every event (a JSON array or body: in 64-byte reads)."""
    ends = [m.end() for m in _EVENT_END.finditer(data)]
    return cut(data, ends or range(64, len(data), 64))


def _recordings() -> list[Any]:
    paths = sorted(FIXTURES.rglob("*.sse")) + sorted(FIXTURES.rglob("*.json"))
    if CORPUS.is_dir():
        paths += sorted(CORPUS.glob("*.sse"))
    return [pytest.param(path, id=f"{path.parent.name}-{path.stem}") for path in paths]


def _checkpoints(count: int) -> set[int]:
    if count <= _CHECKPOINTS:
        return set(range(count))
    first = set(range(_CHECKPOINTS // 2))
    step = count / (_CHECKPOINTS // 2)
    return first | {int(i * step) for i in range(_CHECKPOINTS // 2)} | {count - 1}


def _fresh(chunks: list[bytes], options: dict[str, Any], close: bool) -> Result:
    parser = StreamParser(**options)
    for chunk in chunks:
        parser.feed(chunk)
    if close:
        parser.close()
    return parser.snapshot


_OPTIONS = [
    pytest.param({"events": False}, id="fold"),
    pytest.param({"parse_arguments": True, "parse_content": False}, id="events"),
]


def _chat(*deltas: dict[str, Any]) -> bytes:
    return _chunks(
        *({"id": "c", "model": "m", "choices": [{"index": 0, "delta": delta}]} for delta in deltas)
    )


def _chunks(*chunks: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + msgspec.json.encode(c) + b"\n\n" for c in chunks)


def _named(*events: tuple[str, dict[str, Any]]) -> bytes:
    return b"".join(
        b"event: " + name.encode() + b"\ndata: " + msgspec.json.encode(data) + b"\n\n"
        for name, data in events
    )


_MESSAGE: dict[str, Any] = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "m",
    "content": [],
    "stop_reason": None,
    "stop_sequence": None,
    "usage": {"input_tokens": 2, "output_tokens": 1},
}


def _block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def _text_delta(index: int, text: str) -> dict[str, Any]:
    delta = {"type": "text_delta", "text": text}
    return {"type": "content_block_delta", "index": index, "delta": delta}


def _message_delta(delta: dict[str, Any], usage: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message_delta", "delta": delta, "usage": usage}


def _call(**fields: Any) -> dict[str, Any]:
    return {"tool_calls": [{"index": 0, **fields}]}


# Streams the recordings lack: a call whose id and then name come after its
# first arguments (its native object is rebuilt, not copied with new arguments).
_BUILT = [
    pytest.param(
        _chat(
            _call(function={"arguments": '{"a"'}),
            _call(id="call_1", function={"arguments": ": 1"}),
            _call(function={"name": "f", "arguments": "}"}),
            {"content": "after"},
        ),
        id="chat-late-id-and-name",
    ),
    pytest.param(
        _chunks(
            {"choices": [{"index": 0, "delta": {"content": "a"}}]},
            {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": "b"}}]},
            {"id": "c", "system_fingerprint": None, "choices": [{"index": 0, "delta": {}}]},
            {"id": "c", "created": 7, "choices": [{"index": 0, "delta": {"content": "c"}}]},
        ),
        id="chat-late-top-level-fields",  # the response's top level, built again
    ),
    pytest.param(
        _named(
            ("message_start", {"type": "message_start", "message": _MESSAGE}),
            ("content_block_start", _block_start(0, {"type": "text", "text": ""})),
            ("content_block_delta", _text_delta(0, "a")),
            ("ping", {"type": "ping"}),
            ("content_block_delta", _text_delta(0, "b")),
            ("content_block_start", _block_start(1, {"type": "fallback", "to": {"model": "n"}})),
            ("content_block_delta", _text_delta(0, "c")),
            ("message_delta", _message_delta({"stop_reason": "end_turn"}, {"output_tokens": 3})),
            ("message_delta", _message_delta({}, {"output_tokens": 4})),
            ("message_stop", {"type": "message_stop"}),
        ),
        id="anthropic-late-top-level-fields",  # the Message's top level, built again
    ),
    pytest.param(
        _named(
            ("messageStart", {"role": "assistant"}),
            ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "a"}}),
            ("metadata", {"usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}}),
            ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "b"}}),
            ("contentBlockStop", {"contentBlockIndex": 0}),
            ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "c"}}),
            ("messageStop", {"stopReason": "end_turn"}),
        ),
        id="converse-late-top-level-fields",  # the response's top level, built again
    ),
    # AI SDK UI calls whose parts keep what frames their input while it streams:
    # then the input is whole, and the tool's output (preliminary, then final).
    pytest.param(
        _chunks(
            {"type": "start", "messageId": "m"},
            {
                "type": "tool-input-start",
                "toolCallId": "c1",
                "toolName": "get",
                "dynamic": True,
                "title": "Get",
                "providerExecuted": True,
                "providerMetadata": {"p": {"k": 1}},
            },
            {"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": '{"a"'},
            {"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": ": 1}"},
            {
                "type": "tool-input-available",
                "toolCallId": "c1",
                "toolName": "get",
                "input": {"a": 1},
                "toolMetadata": {"m": 2},
            },
            {
                "type": "tool-output-available",
                "toolCallId": "c1",
                "output": 1,
                "preliminary": True,
            },
            {"type": "tool-output-available", "toolCallId": "c1", "output": 2},
            {"type": "tool-input-start", "toolCallId": "c2", "toolName": "sh"},
            {"type": "tool-input-delta", "toolCallId": "c2", "inputTextDelta": "x"},
            {"type": "tool-output-error", "toolCallId": "c2", "errorText": "no"},
            {"type": "tool-input-delta", "toolCallId": "c2", "inputTextDelta": "y"},
            {"type": "finish", "finishReason": "tool-calls"},
        ),
        id="ai-sdk-ui-tool-states",
    ),
    pytest.param(
        _chunks(
            {"type": "start", "messageId": "m"},
            {
                "type": "tool-input-start",
                "toolCallId": "c1",
                "toolName": "apply_patch",
                "inputEncoding": "text",
            },
            {"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": "*** Begin"},
            {"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": " Patch"},
            {
                "type": "tool-input-error",
                "toolCallId": "c1",
                "toolName": "apply_patch",
                "input": "*** Begin Patch",
                "errorText": "bad",
            },
        ),
        id="ai-sdk-ui-text-input",
    ),
]


@pytest.mark.parametrize("options", _OPTIONS)
@pytest.mark.parametrize("data", _BUILT)
def test_a_snapshot_of_built_streams_is_the_one_built_from_scratch(
    data: bytes, options: dict[str, Any]
) -> None:
    _assert_every_snapshot_fresh(data, options)


@pytest.mark.parametrize("options", _OPTIONS)
@pytest.mark.parametrize("path", _recordings())
def test_a_snapshot_after_every_chunk_is_the_one_built_from_scratch(
    path: Path, options: dict[str, Any]
) -> None:
    _assert_every_snapshot_fresh(path.read_bytes(), options)


def _assert_every_snapshot_fresh(data: bytes, options: dict[str, Any]) -> None:
    chunks = chunks_of(data)
    checked = _checkpoints(len(chunks))
    parser = StreamParser(**options)
    for position, chunk in enumerate(chunks):
        parser.feed(chunk)
        snapshot = parser.snapshot
        if position in checked:
            assert snapshot == _fresh(chunks[: position + 1], options, close=False), position
        assert parser.snapshot is snapshot  # nothing happened: the same result
        del snapshot  # let go, as a caller that looks once per chunk does
    parser.close()
    assert parser.snapshot == _fresh(chunks, options, close=True)


@pytest.mark.parametrize("path", _recordings())
def test_a_snapshot_never_changes_after_later_chunks(path: Path) -> None:
    # Every snapshot is kept: the texts it shares can then never grow in place,
    # and what the next ones reuse or copy must leave it as it was.
    chunks = chunks_of(path.read_bytes())
    parser = StreamParser(parse_arguments=True)
    taken: list[tuple[Result, bytes]] = []
    for chunk in chunks:
        parser.feed(chunk)
        snapshot = parser.snapshot
        taken.append((snapshot, msgspec.json.encode(snapshot)))
    parser.close()
    final = parser.snapshot
    taken.append((final, msgspec.json.encode(final)))
    for position, (snapshot, encoded) in enumerate(taken):
        assert msgspec.json.encode(snapshot) == encoded, position


def test_a_snapshot_shares_what_did_not_change() -> None:
    # Text, then a tool call: while the call streams, the text (a string of the
    # unified view and of the native message alike) is the very same object.
    head = b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":'
    parser = StreamParser()
    parser.feed(head + b'{"content":"Hello"}}]}\n\n')
    first = parser.snapshot
    call = b'{"tool_calls":[{"index":0,"id":"t","function":{"name":"f","arguments":"{\\"a"}}]}'
    parser.feed(head + call + b"}]}\n\n")
    second = parser.snapshot
    assert second is not first
    assert second.unified.text is first.unified.text
    assert second.response["choices"][0]["message"]["content"] is first.unified.text
    more = b'{"tool_calls":[{"index":0,"function":{"arguments":"\\": 1}"}}]}'
    parser.feed(head + more + b"}]}\n\n")
    third = parser.snapshot
    assert third.unified.text is first.unified.text
    assert third.unified.tool_calls[0].arguments == '{"a": 1}'
    assert second.unified.tool_calls[0].arguments == '{"a'
    assert third.warnings is second.warnings
