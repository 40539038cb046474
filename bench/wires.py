"""Neutral events written in the wire formats that have no encoder in
``streamfold.encode``, for the benchmarks: one chunk per wire event (what a
client reading a live stream gets).

Each writer takes the events of a folded stream (``StreamParser`` with events)
and returns its chunks: Cohere v2 chat, the Gemini Interactions API, legacy
Completions (text only), Bedrock ConverseStream and Claude on Bedrock (as
recordings keep them: ``data:`` lines of the members), Ollama chat and
generate (NDJSON). Tool calls go as each format streams them: argument pieces
(Cohere, Interactions, Bedrock), or whole in one line (Ollama).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import msgspec

from streamfold import events as ev

_encode = msgspec.json.encode


def _sse(payload: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + _encode(payload) + b"\n\n"


def _line(payload: Any) -> bytes:
    return _encode(payload) + b"\n"


def _runs(events: list[ev.Event]) -> list[tuple[str, Any]]:
    # The stream as runs: ("reasoning" | "text", [pieces]) and ("call", index)
    # starts, ("args", (index, piece)) pieces, in order.
    out: list[tuple[str, Any]] = []
    for event in events:
        if isinstance(event, ev.ReasoningDelta):
            out.append(("reasoning", event.delta))
        elif isinstance(event, ev.TextDelta):
            out.append(("text", event.delta))
        elif isinstance(event, ev.ToolCallStarted):
            out.append(("call", (event.index, event.id, event.name)))
        elif isinstance(event, ev.ToolCallArgumentsDelta):
            out.append(("args", (event.index, event.delta)))
    return out


def _calls(events: list[ev.Event]) -> list[ev.ToolCallDone]:
    return [e for e in events if isinstance(e, ev.ToolCallDone)]


def cohere(events: list[ev.Event]) -> list[bytes]:
    out = [_sse({"type": "message-start", "id": "m1", "delta": {"message": {"role": "assistant"}}})]
    part: str | None = None
    index = 0
    calls: dict[int, int] = {}

    def end() -> None:
        nonlocal part, index
        if part is not None:
            out.append(_sse({"type": "content-end", "index": index}))
            index += 1
            part = None

    for kind, value in _runs(events):
        if kind in ("text", "reasoning"):
            field = "thinking" if kind == "reasoning" else "text"
            if part != field:
                end()
                part = field
                content = {"type": field, field: ""}
                start = {"type": "content-start", "index": index}
                out.append(_sse({**start, "delta": {"message": {"content": content}}}))
            delta = {"message": {"content": {field: value}}}
            out.append(_sse({"type": "content-delta", "index": index, "delta": delta}))
        elif kind == "call":
            end()
            position, call_id, name = value
            calls[position] = len(calls)
            call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
            start = {"type": "tool-call-start", "index": calls[position]}
            out.append(_sse({**start, "delta": {"message": {"tool_calls": call}}}))
        else:
            position, piece = value
            delta = {"message": {"tool_calls": {"function": {"arguments": piece}}}}
            out.append(_sse({"type": "tool-call-delta", "index": calls[position], "delta": delta}))
    end()
    for number in calls.values():
        out.append(_sse({"type": "tool-call-end", "index": number}))
    finish = "TOOL_CALL" if calls else "COMPLETE"
    usage = {"tokens": {"input_tokens": 10, "output_tokens": 20}}
    out.append(_sse({"type": "message-end", "delta": {"finish_reason": finish, "usage": usage}}))
    return out


def interactions(events: list[ev.Event]) -> list[bytes]:
    def event(payload: dict[str, Any]) -> bytes:
        return _sse(payload, payload["event_type"])

    created = {"id": "i1", "model": "gemini-3-pro", "status": "in_progress"}
    out = [event({"event_type": "interaction.created", "interaction": created})]
    step: str | None = None
    index = 0
    steps: dict[int, int] = {}

    def end() -> None:
        nonlocal step, index
        if step is not None:
            out.append(event({"event_type": "step.stop", "index": index}))
            index += 1
            step = None

    for kind, value in _runs(events):
        if kind in ("text", "reasoning"):
            wanted = "thought" if kind == "reasoning" else "model_output"
            if step != wanted:
                end()
                step = wanted
                out.append(
                    event({"event_type": "step.start", "index": index, "step": {"type": step}})
                )
            if kind == "reasoning":
                delta = {"type": "thought_summary", "content": {"type": "text", "text": value}}
            else:
                delta = {"type": "text", "text": value}
            out.append(event({"event_type": "step.delta", "index": index, "delta": delta}))
        elif kind == "call":
            end()
            position, call_id, name = value
            steps[position] = index + len(steps)
            shape = {"type": "function_call", "id": call_id, "name": name}
            out.append(event({"event_type": "step.start", "index": steps[position], "step": shape}))
        else:
            position, piece = value
            delta = {"type": "arguments_delta", "arguments": piece}
            out.append(
                event({"event_type": "step.delta", "index": steps[position], "delta": delta})
            )
    end()
    for number in steps.values():
        out.append(event({"event_type": "step.stop", "index": number}))
    usage = {"total_input_tokens": 10, "total_output_tokens": 20}
    status = "requires_action" if steps else "completed"
    done = {"id": "i1", "status": status, "usage": usage}
    out.append(event({"event_type": "interaction.completed", "interaction": done}))
    return out


def completions(events: list[ev.Event]) -> list[bytes]:
    def chunk(text: str, finish: str | None) -> bytes:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        fields = {"id": "cmpl-1", "object": "text_completion", "created": 0, "model": "m"}
        return _sse({**fields, "choices": [choice]})

    out = [chunk(value, None) for kind, value in _runs(events) if kind == "text"]
    return [*out, chunk("", "stop"), b"data: [DONE]\n\n"]


def bedrock(events: list[ev.Event]) -> list[bytes]:
    out = [_sse({"messageStart": {"role": "assistant"}})]
    block: str | None = None
    index = 0
    blocks: dict[int, int] = {}

    def member(name: str, body: dict[str, Any]) -> None:
        out.append(_sse({name: body}))

    def end() -> None:
        nonlocal block, index
        if block is not None:
            member("contentBlockStop", {"contentBlockIndex": index})
            index += 1
            block = None

    for kind, value in _runs(events):
        if kind in ("text", "reasoning"):
            if block != kind:
                end()
                block = kind
            delta = (
                {"reasoningContent": {"text": value}} if kind == "reasoning" else {"text": value}
            )
            member("contentBlockDelta", {"contentBlockIndex": index, "delta": delta})
        elif kind == "call":
            end()
            position, call_id, name = value
            blocks[position] = index + len(blocks)
            start = {"toolUse": {"toolUseId": call_id, "name": name}}
            member("contentBlockStart", {"contentBlockIndex": blocks[position], "start": start})
        else:
            position, piece = value
            delta = {"toolUse": {"input": piece}}
            member("contentBlockDelta", {"contentBlockIndex": blocks[position], "delta": delta})
    end()
    for number in blocks.values():
        member("contentBlockStop", {"contentBlockIndex": number})
    member("messageStop", {"stopReason": "tool_use" if blocks else "end_turn"})
    member("metadata", {"usage": {"inputTokens": 10, "outputTokens": 20, "totalTokens": 30}})
    return out


def bedrock_anthropic(anthropic: list[bytes]) -> list[bytes]:
    """Anthropic's events (one SSE event per chunk), each in a Bedrock ``chunk``."""
    out = []
    for chunk in anthropic:
        data = b"".join(
            line[5:].strip() for line in chunk.splitlines() if line.startswith(b"data:")
        )
        if data:
            out.append(_sse({"chunk": {"bytes": base64.b64encode(data).decode()}}))
    return out


def _ollama(events: list[ev.Event], nested: bool) -> list[bytes]:
    head = {"model": "qwen3", "created_at": "2026-01-01T00:00:00Z"}
    text_field = "content" if nested else "response"

    def line(fields: dict[str, Any], **top: Any) -> bytes:
        if nested:
            return _line({**head, "message": {"role": "assistant", **fields}, "done": False, **top})
        return _line({**head, **fields, "done": False, **top})

    out = []
    for kind, value in _runs(events):
        if kind == "reasoning":
            out.append(line({text_field: "", "thinking": value}))
        elif kind == "text":
            out.append(line({text_field: value}))
    calls = [{"function": {"name": call.name, "arguments": call.value}} for call in _calls(events)]
    if calls:
        out.append(line({text_field: "", "tool_calls": calls}))
    metrics = {"prompt_eval_count": 10, "eval_count": 20}
    out.append(line({text_field: ""}, done=True, done_reason="stop", **metrics))
    return out


def ollama(events: list[ev.Event]) -> list[bytes]:
    return _ollama(events, nested=True)


def ollama_generate(events: list[ev.Event]) -> list[bytes]:
    return _ollama(events, nested=False)


#: Dialect id -> writer of the chunks.
WRITERS: dict[str, Callable[[list[ev.Event]], list[bytes]]] = {
    "cohere-chat": cohere,
    "gemini-interactions": interactions,
    "openai-completions": completions,
    "bedrock-converse": bedrock,
    "ollama": ollama,
    "ollama-generate": ollama_generate,
}
