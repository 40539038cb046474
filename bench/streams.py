"""Synthetic Chat Completions streams for the benchmarks, with what they must fold to.

Each stream is SSE exactly as the API frames it (``data: <json>`` then a blank
line, ``data: [DONE]`` last), its chunks written the way real ones are:
compact JSON, non-ASCII characters raw in UTF-8, the keys OpenAI sends (``id``,
``object``, ``created``, ``model``, ``service_tier``, ``system_fingerprint``,
``choices[index, delta, logprobs, finish_reason]``, ``obfuscation`` padding),
or, for the reasoning stream, the keys DeepSeek sends (``reasoning_content``,
``"usage": null`` on every chunk, then a usage-only chunk with ``choices: []``).
Generation is deterministic (seeded), so every run folds the same bytes.

Use from another benchmark::

    from streams import chat_streams

    for stream in chat_streams():
        pieces = stream.pieces(4096)  # network-like reads
        ...
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DIALECTS",
    "SHAPES",
    "ChatStream",
    "DialectStream",
    "chat_streams",
    "code_edit_arguments",
    "content_stream",
    "dialect_streams",
    "parallel_tool_calls_stream",
    "reasoning_stream",
    "shape_stream",
    "split_deltas",
    "text_stream",
    "tool_call_stream",
]

_CREATED = 1767225600
_WORDS = (
    "the",
    " quick",
    " brown",
    " fox",
    " jumps",
    " over",
    " a",
    " lazy",
    " dog",
    ",",
    " and",
    " then",
    " writes",
    " caf\u00e9",
    " na\u00efve",
    " r\u00e9sum\u00e9s",
    ".",
    "\n\n",
    " It",
    " said",
    ' "hello',
    '"',
    " \u2013",
    " \U0001f600",
    " \u4f60\u597d",
    " code",
    ":",
    " `x",
    " =",
    " 1`",
    " with",
    " back\\slash",
    " and",
    " tab\t",
    "end",
)
_CODE_LINES = (
    "def render(path: str) -> str:\n",
    '    """Render the template at ``path``."""\n',
    '    with open(path, encoding="utf-8") as handle:\n',
    '        text = handle.read().replace("\\\\n", "\\n")\n',
    '    return f"caf\u00e9 \u2713 {text!r} \\\\ done \U0001f600"\n',
    "\tif x < 10 and y > 20: print('tab\\there')\n",
    "\n",
)


@dataclass(frozen=True)
class ChatStream:
    """One synthetic stream and the final response it must fold to.

    Attributes:
        name: a short id for tables (``text-10k``, ``tool-args-1m``...).
        description: what the stream holds, in words.
        body: the whole SSE body.
        chunks: the number of JSON chunks (``[DONE]`` not counted).
        text: the expected answer text.
        reasoning: the expected reasoning text.
        tool_arguments: the expected arguments of each tool call, in call order.
        finish_reason: the expected raw finish reason.
        usage: the expected usage object, or ``None``.
        argument_bytes: the UTF-8 size of all tool-call arguments.
    """

    name: str
    description: str
    body: bytes
    chunks: int
    text: str = ""
    reasoning: str = ""
    tool_arguments: tuple[str, ...] = ()
    finish_reason: str = "stop"
    usage: dict[str, Any] | None = None
    argument_bytes: int = field(default=0)

    def pieces(self, size: int = 4096) -> list[bytes]:
        """The body cut into reads of ``size`` bytes, as a socket would hand them over."""
        body = self.body
        return [body[i : i + size] for i in range(0, len(body), size)]


class _Writer:
    """Frames chunks as an OpenAI-style (or DeepSeek-style) server would."""

    def __init__(self, seed: int, *, openai_style: bool, usage_null: bool) -> None:
        self.random = random.Random(seed)
        self.openai_style = openai_style
        self.usage_null = usage_null
        self.lines: list[str] = []
        self.chunks = 0
        if openai_style:
            self.head: dict[str, Any] = {
                "id": "chatcmpl-" + _token(self.random, 29),
                "object": "chat.completion.chunk",
                "created": _CREATED,
                "model": "gpt-4.1-2025-04-14",
                "service_tier": "default",
                "system_fingerprint": "fp_" + _token(self.random, 10).lower(),
            }
        else:
            self.head = {
                "id": "0c6a7a8e-5f1b-4c57-9a1e-3b2f3c9d8e71",
                "object": "chat.completion.chunk",
                "created": _CREATED,
                "model": "deepseek-reasoner",
                "system_fingerprint": "fp_8802369eaa_prod0623_fp8_kvcache",
            }

    def choice(self, delta: dict[str, Any], finish_reason: str | None = None) -> None:
        self.chunk([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}])

    def chunk(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> None:
        chunk: dict[str, Any] = {**self.head, "choices": choices}
        if self.usage_null or usage is not None:
            chunk["usage"] = usage
        if self.openai_style:
            # OpenAI pads every chunk with a random string (stream_options
            # include_obfuscation, on by default) so sizes do not leak tokens.
            chunk["obfuscation"] = _token(self.random, self.random.randint(2, 14))
        self.lines.append("data: " + json.dumps(chunk, ensure_ascii=False, separators=(",", ":")))
        self.chunks += 1

    def body(self) -> bytes:
        self.lines.append("data: [DONE]")
        return ("\n\n".join(self.lines) + "\n\n").encode()


def _token(rng: random.Random, length: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(rng.choice(alphabet) for _ in range(length))


def _words(rng: random.Random, count: int) -> list[str]:
    return [rng.choice(_WORDS) for _ in range(count)]


def split_deltas(text: str, average: int = 6, seed: int = 0) -> list[str]:
    """Cut ``text`` into deltas of 3 to ``2 * average - 3`` characters (mean ``average``)."""
    rng = random.Random(seed)
    low, high = 3, 2 * average - 3
    out: list[str] = []
    i = 0
    while i < len(text):
        step = rng.randint(low, high)
        out.append(text[i : i + step])
        i += step
    return out


def code_edit_arguments(size: int) -> str:
    """Tool-call arguments of about ``size`` UTF-8 bytes: a code edit whose long
    string is full of escapes and non-ASCII characters."""
    lines: list[str] = []
    total = len('{"path":"src/app/render.py","content":""}')
    k = 0
    while total < size:
        line = _CODE_LINES[k % len(_CODE_LINES)]
        lines.append(line)
        total += len(json.dumps(line, ensure_ascii=False).encode()) - 2
        k += 1
    return json.dumps(
        {"path": "src/app/render.py", "content": "".join(lines)},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def text_stream(chunks: int = 10_000, name: str | None = None, usage: bool = False) -> ChatStream:
    """A plain answer: a role chunk, ``chunks`` content deltas, a finish chunk;
    with ``usage``, a usage-only last chunk (``stream_options.include_usage``)."""
    writer = _Writer(1, openai_style=True, usage_null=False)
    writer.choice({"role": "assistant", "content": "", "refusal": None})
    words = _words(writer.random, chunks)
    for word in words:
        writer.choice({"content": word})
    writer.choice({}, "stop")
    counts = None
    if usage:
        counts = {
            "prompt_tokens": 12,
            "completion_tokens": chunks,
            "total_tokens": 12 + chunks,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }
        writer.chunk([], counts)
    return ChatStream(
        name=name or f"{'usage' if usage else 'text'}-{_count(chunks)}",
        description=f"{chunks:,} text chunks" + (", usage-only final" if usage else ""),
        body=writer.body(),
        chunks=writer.chunks,
        text="".join(words),
        usage=counts,
    )


def content_stream(content: str, delta: int = 6, name: str | None = None) -> ChatStream:
    """An answer whose text is ``content`` (JSON mode, structured output), in deltas of
    about ``delta`` characters."""
    writer = _Writer(6, openai_style=True, usage_null=False)
    writer.choice({"role": "assistant", "content": "", "refusal": None})
    for piece in split_deltas(content, delta, seed=5):
        writer.choice({"content": piece})
    writer.choice({}, "stop")
    return ChatStream(
        name=name or f"content-{_size(len(content.encode()))}",
        description=f"{len(content.encode()):,} B of answer text in ~{delta} B deltas",
        body=writer.body(),
        chunks=writer.chunks,
        text=content,
    )


def nested_arguments(size: int) -> str:
    """Tool-call arguments of about ``size`` UTF-8 bytes: nested objects and arrays
    of short strings, numbers, booleans and nulls (a structured-output shape)."""
    rng = random.Random(7)
    rows: list[dict[str, Any]] = []
    total = 0
    while total < size:
        row = {
            "id": len(rows),
            "name": _token(rng, 8),
            "score": round(rng.random() * 100, 3),
            "tags": [_token(rng, 5) for _ in range(3)],
            "active": rng.random() < 0.5,
            "parent": None,
            "position": {"x": rng.randint(-999, 999), "y": rng.randint(-999, 999)},
        }
        rows.append(row)
        total += len(json.dumps(row, separators=(",", ":"))) + 1
    return json.dumps({"rows": rows, "count": len(rows)}, separators=(",", ":"))


def tool_call_stream(
    argument_size: int,
    delta: int = 6,
    name: str | None = None,
    arguments: str | None = None,
) -> ChatStream:
    """One tool call whose arguments reach ``argument_size`` bytes, in ~``delta``-byte
    deltas: a code edit, or the given ``arguments`` text."""
    writer = _Writer(2, openai_style=True, usage_null=False)
    if arguments is None:
        arguments = code_edit_arguments(argument_size)
    writer.choice(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_" + _token(writer.random, 24),
                    "type": "function",
                    "function": {"name": "edit_file", "arguments": ""},
                }
            ],
            "refusal": None,
        }
    )
    for piece in split_deltas(arguments, delta, seed=3):
        writer.choice({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
    writer.choice({}, "tool_calls")
    size = len(arguments.encode())
    return ChatStream(
        name=name or f"tool-args-{_size(argument_size)}",
        description=f"1 tool call, {size:,} B of arguments in ~{delta} B deltas",
        body=writer.body(),
        chunks=writer.chunks,
        tool_arguments=(arguments,),
        finish_reason="tool_calls",
        argument_bytes=size,
    )


def parallel_tool_calls_stream(
    calls: int = 8, deltas_per_call: int = 1_250, delta: int = 6, name: str | None = None
) -> ChatStream:
    """``calls`` parallel tool calls whose argument deltas arrive interleaved
    (round robin), each call's first chunk carrying its id and name."""
    writer = _Writer(4, openai_style=True, usage_null=False)
    per_call: list[list[str]] = []
    documents: list[str] = []
    for k in range(calls):
        # Grow each call's arguments until it splits into deltas_per_call deltas.
        document = code_edit_arguments(deltas_per_call * delta)
        pieces = split_deltas(document, delta, seed=10 + k)
        while len(pieces) < deltas_per_call:
            document = code_edit_arguments(len(document.encode()) + 8 * delta)
            pieces = split_deltas(document, delta, seed=10 + k)
        documents.append(document)
        per_call.append(pieces)
    writer.choice({"role": "assistant", "content": None, "refusal": None})
    for k in range(calls):
        header = {
            "index": k,
            "id": "call_" + _token(writer.random, 24),
            "type": "function",
            "function": {"name": f"edit_file_{k}", "arguments": ""},
        }
        writer.choice({"tool_calls": [header]})
    longest = max(len(p) for p in per_call)
    for step in range(longest):
        for k, pieces in enumerate(per_call):
            if step < len(pieces):
                writer.choice(
                    {"tool_calls": [{"index": k, "function": {"arguments": pieces[step]}}]}
                )
    writer.choice({}, "tool_calls")
    return ChatStream(
        name=name or f"parallel-{calls}-tools",
        description=(
            f"{calls} parallel tool calls interleaved, "
            f"{sum(len(p) for p in per_call):,} argument deltas"
        ),
        body=writer.body(),
        chunks=writer.chunks,
        tool_arguments=tuple(documents),
        finish_reason="tool_calls",
        argument_bytes=sum(len(d.encode()) for d in documents),
    )


def reasoning_stream(
    reasoning_chunks: int = 5_000, text_chunks: int = 5_000, name: str | None = None
) -> ChatStream:
    """DeepSeek-style reasoning then content, ``"usage": null`` on every chunk
    and a usage-only final chunk (``stream_options.include_usage``)."""
    writer = _Writer(5, openai_style=False, usage_null=True)
    writer.choice({"role": "assistant", "content": None, "reasoning_content": ""})
    thoughts = _words(writer.random, reasoning_chunks)
    for word in thoughts:
        writer.choice({"content": None, "reasoning_content": word})
    words = _words(writer.random, text_chunks)
    for word in words:
        writer.choice({"content": word, "reasoning_content": None})
    writer.choice({"content": "", "reasoning_content": None}, "stop")
    usage = {
        "prompt_tokens": 18,
        "completion_tokens": reasoning_chunks + text_chunks,
        "total_tokens": 18 + reasoning_chunks + text_chunks,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning_chunks},
        "prompt_cache_hit_tokens": 0,
        "prompt_cache_miss_tokens": 18,
    }
    writer.chunk([], usage)
    return ChatStream(
        name=name or f"reasoning-{_count(reasoning_chunks + text_chunks)}",
        description=(
            f"{reasoning_chunks:,} reasoning then {text_chunks:,} text chunks, usage-only final"
        ),
        body=writer.body(),
        chunks=writer.chunks,
        text="".join(words),
        reasoning="".join(thoughts),
        usage=usage,
    )


def chat_streams(scale: float = 1.0) -> Iterator[ChatStream]:
    """The benchmark's streams; ``scale`` shrinks them for a smoke run."""

    def n(value: int) -> int:
        return max(1, int(value * scale))

    yield text_stream(n(10_000))
    yield tool_call_stream(n(100_000))
    yield tool_call_stream(n(1_000_000))
    yield parallel_tool_calls_stream(8, n(1_250))
    yield reasoning_stream(n(5_000), n(5_000))


def _count(value: int) -> str:
    return f"{value // 1000}k" if value >= 1000 and value % 1000 == 0 else str(value)


def _size(value: int) -> str:
    if value >= 1_000_000 and value % 1_000_000 == 0:
        return f"{value // 1_000_000}m"
    if value >= 1000:
        return f"{value // 1000}k"
    return str(value)


# -- every dialect: the chat streams written in each wire format -------------------------

#: The five shapes of issue 13, each a chat stream (10,000 events at scale 1).
SHAPES = ("text", "reasoning", "tool", "parallel", "usage")


def shape_stream(shape: str, scale: float = 1.0) -> ChatStream:
    """The chat stream of one of ``SHAPES``; ``scale`` shrinks (or grows) it."""

    def n(value: int) -> int:
        return max(1, int(value * scale))

    if shape == "text":
        return text_stream(n(10_000))
    if shape == "reasoning":
        return reasoning_stream(n(5_000), n(5_000))
    if shape == "tool":
        return tool_call_stream(n(100_000))
    if shape == "parallel":
        return parallel_tool_calls_stream(8, n(1_250))
    return text_stream(n(10_000), usage=True)


@dataclass(frozen=True)
class DialectStream:
    """One shape written in one dialect's wire format.

    Attributes:
        dialect: the dialect id.
        shape: one of ``SHAPES``.
        source: the chat stream it was written from (what it must fold to).
        body: the bytes as the API sends them (SSE, NDJSON or event-stream frames).
        framing: ``"sse"``, ``"ndjson"`` or ``"event-stream"``.
    """

    dialect: str
    shape: str
    source: ChatStream
    body: bytes
    framing: str

    def pieces(self, size: int = 4096) -> list[bytes]:
        """The body cut into reads of ``size`` bytes."""
        body = self.body
        return [body[i : i + size] for i in range(0, len(body), size)]


# What each dialect can carry: Completions has no reasoning nor tools; Gemini
# and Ollama send tool calls whole (no argument deltas to fold).
_SUPPORTED: dict[str, tuple[str, ...]] = {
    "openai-chat": SHAPES,
    "openai-responses": SHAPES,
    "anthropic": SHAPES,
    # Gemini sends a function call whole, its arguments an object in one chunk.
    "gemini": ("text", "reasoning", "usage"),
    "cohere-chat": SHAPES,
    "gemini-interactions": SHAPES,
    "openai-completions": ("text", "usage"),
    "bedrock-converse": SHAPES,
    "bedrock-anthropic": SHAPES,
    "ollama": ("text", "reasoning", "usage"),
    "ollama-generate": ("text", "reasoning", "usage"),
    "ai-sdk-ui": SHAPES,
}
DIALECTS = tuple(_SUPPORTED)
_FRAMING = {"bedrock-converse": "event-stream", "bedrock-anthropic": "event-stream"}
_FRAMING.update({"ollama": "ndjson", "ollama-generate": "ndjson"})


def dialect_streams(
    scale: float = 1.0, dialects: tuple[str, ...] = DIALECTS, shapes: tuple[str, ...] = SHAPES
) -> Iterator[DialectStream]:
    """Every supported (dialect, shape) pair, the shape's chat stream written in the
    dialect: through streamfold's encoder where there is one, else by a writer here
    that frames the pieces as the provider does."""
    from streamfold import StreamParser
    from streamfold.encode import ENCODERS

    for shape in shapes:
        source = shape_stream(shape, scale)
        parser = StreamParser("openai-chat")
        steps = parser.feed(source.body) + parser.close()
        for dialect in dialects:
            if shape not in _SUPPORTED[dialect]:
                continue
            if dialect == "openai-chat":
                body = source.body
            elif dialect in ENCODERS:
                encoder = ENCODERS[dialect]()
                body = encoder.encode_all(steps) + encoder.close()
            elif dialect == "bedrock-anthropic":
                encoder = ENCODERS["anthropic"]()
                body = _bedrock_invoke(encoder.encode_all(steps) + encoder.close())
            else:
                body = _WRITERS[dialect](_Plan.of(steps))
            yield DialectStream(dialect, shape, source, body, _FRAMING.get(dialect, "sse"))


@dataclass
class _Plan:
    """The provider-neutral pieces of a stream, in order: ``("text", s)``,
    ``("reasoning", s)``, ``("call", k, id, name)``, ``("arguments", k, s)``; and the usage."""

    steps: list[tuple[Any, ...]]
    input_tokens: int = 12
    output_tokens: int | None = None

    @classmethod
    def of(cls, events: list[Any]) -> _Plan:
        from streamfold import events as ev

        steps: list[tuple[Any, ...]] = []
        plan = cls(steps)
        for event in events:
            if isinstance(event, ev.TextDelta):
                steps.append(("text", event.delta))
            elif isinstance(event, ev.ReasoningDelta):
                steps.append(("reasoning", event.delta))
            elif isinstance(event, ev.ToolCallStarted):
                steps.append(("call", event.index, event.id, event.name))
            elif isinstance(event, ev.ToolCallArgumentsDelta):
                steps.append(("arguments", event.index, event.delta))
            elif isinstance(event, ev.UsageUpdated):
                plan.input_tokens = event.usage.input_tokens or 0
                plan.output_tokens = event.usage.output_tokens
        return plan

    def blocks(self) -> list[tuple[str, Any, list[str]]]:
        """The pieces grouped as block-based APIs send them: one block per run of
        text or reasoning, one per call (a call's deltas gathered, in call order)."""
        out: list[tuple[str, Any, list[str]]] = []
        calls: dict[int, list[str]] = {}
        for step in self.steps:
            kind = step[0]
            if kind == "call":
                calls[step[1]] = []
                out.append(("call", (step[2], step[3]), calls[step[1]]))
            elif kind == "arguments":
                calls[step[1]].append(step[2])
            elif out and out[-1][0] == kind:
                out[-1][2].append(step[1])
            else:
                out.append((kind, None, [step[1]]))
        return out


def _sse(events: list[tuple[str | None, dict[str, Any]]], done: bool = False) -> bytes:
    lines = []
    for name, value in events:
        data = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        lines.append(f"event: {name}\ndata: {data}\n\n" if name else f"data: {data}\n\n")
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def _cohere(plan: _Plan) -> bytes:
    message = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": []}
    out: list[tuple[str | None, dict[str, Any]]] = [
        (
            "message-start",
            {
                "id": "c0ffee00-1234-4bcd-9abc-def012345678",
                "type": "message-start",
                "delta": {"message": message},
            },
        )
    ]
    content = calls = 0
    for kind, head, pieces in plan.blocks():
        if kind == "call":
            call_id, name = head
            function = {"name": name, "arguments": ""}
            start = {"id": call_id, "type": "function", "function": function}
            out.append(("tool-call-start", _cohere_call("tool-call-start", calls, start)))
            for piece in pieces:
                delta = {"function": {"arguments": piece}}
                out.append(("tool-call-delta", _cohere_call("tool-call-delta", calls, delta)))
            out.append(("tool-call-end", {"type": "tool-call-end", "index": calls}))
            calls += 1
            continue
        field = "thinking" if kind == "reasoning" else "text"
        start = {"message": {"content": {"type": field, field: ""}}}
        out.append(("content-start", {"type": "content-start", "index": content, "delta": start}))
        for piece in pieces:
            delta = {"message": {"content": {field: piece}}}
            out.append(
                ("content-delta", {"type": "content-delta", "index": content, "delta": delta})
            )
        out.append(("content-end", {"type": "content-end", "index": content}))
        content += 1
    end: dict[str, Any] = {"finish_reason": "TOOL_CALL" if calls else "COMPLETE"}
    if plan.output_tokens is not None:
        tokens = {"input_tokens": plan.input_tokens, "output_tokens": plan.output_tokens}
        end["usage"] = {"billed_units": tokens, "tokens": tokens}
    out.append(("message-end", {"type": "message-end", "delta": end}))
    return _sse(out, done=True)


def _cohere_call(kind: str, index: int, call: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "index": index, "delta": {"message": {"tool_calls": call}}}


def _interactions(plan: _Plan) -> bytes:
    interaction = {"id": "v1_bench", "status": "in_progress", "object": "interaction"}
    out: list[tuple[str | None, dict[str, Any]]] = [
        ("interaction.created", {"interaction": interaction, "event_type": "interaction.created"})
    ]
    calls = False
    for index, (kind, head, pieces) in enumerate(plan.blocks()):
        if kind == "call":
            calls = True
            call_id, name = head
            step = {"id": call_id, "type": "function_call", "name": name, "arguments": {}}
            deltas = [{"type": "arguments_delta", "arguments": piece} for piece in pieces]
        elif kind == "reasoning":
            step = {"type": "thought"}
            deltas = [
                {"type": "thought_summary", "content": {"type": "text", "text": piece}}
                for piece in pieces
            ]
        else:
            step = {"type": "model_output"}
            deltas = [{"type": "text", "text": piece} for piece in pieces]
        out.append(("step.start", {"index": index, "step": step, "event_type": "step.start"}))
        for delta in deltas:
            out.append(("step.delta", {"index": index, "delta": delta, "event_type": "step.delta"}))
        out.append(("step.stop", {"index": index, "event_type": "step.stop"}))
    done: dict[str, Any] = {**interaction, "status": "requires_action" if calls else "completed"}
    if plan.output_tokens is not None:
        done["usage"] = {
            "total_input_tokens": plan.input_tokens,
            "total_output_tokens": plan.output_tokens,
            "total_tokens": plan.input_tokens + plan.output_tokens,
        }
    out.append(
        ("interaction.completed", {"interaction": done, "event_type": "interaction.completed"})
    )
    return _sse(out)


def _completions(plan: _Plan) -> bytes:
    head = {"id": "cmpl-bench", "object": "text_completion", "created": _CREATED}
    model = "gpt-3.5-turbo-instruct"
    out: list[tuple[str | None, dict[str, Any]]] = []
    for _, piece in plan.steps:
        choice = {"text": piece, "index": 0, "logprobs": None, "finish_reason": None}
        out.append((None, {**head, "choices": [choice], "model": model}))
    last = {"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}
    out.append((None, {**head, "choices": [last], "model": model}))
    if plan.output_tokens is not None:
        usage = {
            "prompt_tokens": plan.input_tokens,
            "completion_tokens": plan.output_tokens,
            "total_tokens": plan.input_tokens + plan.output_tokens,
        }
        out.append((None, {**head, "choices": [], "model": model, "usage": usage}))
    return _sse(out, done=True)


def _converse(plan: _Plan) -> bytes:
    from streamfold.eventstream import encode_event

    members: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    calls = False
    for index, (kind, head, pieces) in enumerate(plan.blocks()):
        if kind == "call":
            calls = True
            start = {"toolUse": {"toolUseId": head[0], "name": head[1]}}
            members.append(("contentBlockStart", {"contentBlockIndex": index, "start": start}))
        for piece in pieces:
            if kind == "call":
                delta: dict[str, Any] = {"toolUse": {"input": piece}}
            elif kind == "reasoning":
                delta = {"reasoningContent": {"text": piece}}
            else:
                delta = {"text": piece}
            members.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
        members.append(("contentBlockStop", {"contentBlockIndex": index}))
    members.append(("messageStop", {"stopReason": "tool_use" if calls else "end_turn"}))
    output = plan.output_tokens or 0
    usage = {"inputTokens": plan.input_tokens, "outputTokens": output}
    usage["totalTokens"] = plan.input_tokens + output
    members.append(("metadata", {"usage": usage, "metrics": {"latencyMs": 1830}}))
    frames = []
    for i, (name, value) in enumerate(members):
        # Bedrock pads every event with a "p" field so sizes do not leak tokens.
        padded = {
            **value,
            "p": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"[: 1 + i % 50],
        }
        frames.append(encode_event(name, json.dumps(padded, separators=(",", ":")).encode()))
    return b"".join(frames)


def _bedrock_invoke(anthropic_sse: bytes) -> bytes:
    """Anthropic's events as InvokeModelWithResponseStream sends them: each event's
    JSON, base64 in a ``chunk`` member's ``bytes``, one event-stream frame each."""
    import base64

    from streamfold.eventstream import encode_event

    frames = []
    for line in anthropic_sse.split(b"\n"):
        if line.startswith(b"data: "):
            inner = base64.b64encode(line[6:]).decode()
            frames.append(encode_event("chunk", json.dumps({"bytes": inner}).encode()))
    return b"".join(frames)


def _ollama(plan: _Plan, generate: bool = False) -> bytes:
    head = {"model": "qwen3:8b", "created_at": "2026-01-01T00:00:00.000000Z"}
    lines = []
    for kind, piece in plan.steps:
        field = "thinking" if kind == "reasoning" else ("response" if generate else "content")
        if generate:
            line: dict[str, Any] = {**head, "response": "", field: piece, "done": False}
        else:
            message = {"role": "assistant", "content": "", field: piece}
            line = {**head, "message": message, "done": False}
        lines.append(line)
    last: dict[str, Any] = {**head, "done": True, "done_reason": "stop"}
    if generate:
        last["response"] = ""
    else:
        last["message"] = {"role": "assistant", "content": ""}
    last.update(
        total_duration=912000000,
        load_duration=21000000,
        prompt_eval_count=plan.input_tokens,
        prompt_eval_duration=64000000,
        eval_count=plan.output_tokens or len(plan.steps),
        eval_duration=802000000,
    )
    lines.append(last)
    return b"".join(
        json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        for line in lines
    )


_WRITERS = {
    "cohere-chat": _cohere,
    "gemini-interactions": _interactions,
    "openai-completions": _completions,
    "bedrock-converse": _converse,
    "ollama": _ollama,
    "ollama-generate": lambda plan: _ollama(plan, generate=True),
}
