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
    "ChatStream",
    "chat_streams",
    "code_edit_arguments",
    "content_stream",
    "parallel_tool_calls_stream",
    "reasoning_stream",
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


def text_stream(chunks: int = 10_000, name: str | None = None) -> ChatStream:
    """A plain answer: a role chunk, ``chunks`` content deltas, a finish chunk."""
    writer = _Writer(1, openai_style=True, usage_null=False)
    writer.choice({"role": "assistant", "content": "", "refusal": None})
    words = _words(writer.random, chunks)
    for word in words:
        writer.choice({"content": word})
    writer.choice({}, "stop")
    return ChatStream(
        name=name or f"text-{_count(chunks)}",
        description=f"{chunks:,} text chunks",
        body=writer.body(),
        chunks=writer.chunks,
        text="".join(words),
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
