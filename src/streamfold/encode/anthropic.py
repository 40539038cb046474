"""Events to Anthropic Messages streams.

``message_start`` (the message shell, with the usage known so far), one
content block per part or call (``content_block_start``, its deltas,
``content_block_stop``), ``message_delta`` (the stop reason and the whole
usage) and ``message_stop``; every event named by an ``event:`` line, as
Anthropic sends them. Blocks follow one another: a text or thinking block
ends when another block starts. An in-band error is Anthropic's ``error``
event, with no ``message_stop`` after it.
"""

from __future__ import annotations

from typing import Any

from ..dialects.anthropic import NATIVE_STOP_REASONS, native_usage
from ..errors import ErrorInfo
from ..events import ReasoningDone, RefusalDone, TextDone, ToolCallDone
from ..fold import FREE_TEXT_KIND
from .base import REASONING, Call, Encoder, Part, error_code, finish_value, json, sse

__all__ = ["AnthropicEncoder"]

_DELTA = b"content_block_delta"
# A content_block_delta event, up to its index, and its end after the delta's string.
_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
_DELTA_END = b"}}\n\n"


class AnthropicEncoder(Encoder):
    """Encode events as an Anthropic Messages stream (``"anthropic"``)."""

    dialect = "anthropic"

    def __init__(self) -> None:
        super().__init__()
        self._blocks = 0  # blocks started
        self._open_text: Part | None = None  # the open text or thinking block's part
        self._generated = 0

    def _start(self) -> bytes:
        # Anthropic's message_start carries the usage known so far; the format
        # requires input and output counts (unknown ones are 0 here; the whole
        # usage follows in message_delta).
        usage: dict[str, Any] = {"input_tokens": 0, "output_tokens": 0}
        if self.usage is not None:
            usage.update(native_usage(self.usage))
        message: dict[str, Any] = {
            "id": self.id or "",
            "type": "message",
            "role": "assistant",
            "model": self.model or "",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        return sse(json({"type": "message_start", "message": message}), b"message_start")

    def _block_start(self, block: dict[str, Any]) -> tuple[int, bytes]:
        out = self._end_text_block()
        index = self._blocks
        self._blocks += 1
        event = {"type": "content_block_start", "index": index, "content_block": block}
        return index, out + sse(json(event), b"content_block_start")

    def _block_stop(self, index: int) -> bytes:
        event = b'{"type":"content_block_stop","index":' + str(index).encode() + b"}"
        return sse(event, b"content_block_stop")

    def _end_text_block(self) -> bytes:
        part = self._open_text
        if part is None:
            return b""
        self._open_text = None
        index = part.slot
        part.slot = part.frame = None  # the part goes on in a new block, if it goes on
        return self._block_stop(index)

    def _part_delta(self, part: Part, delta: str) -> bytes:
        out = b""
        if part.frame is None:  # no block open for it
            if part.kind == REASONING:
                block: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
                key = b'"thinking_delta","thinking":'
            else:
                # Anthropic has no refusal block: a refusal is answer text here.
                block, key = {"type": "text", "text": ""}, b'"text_delta","text":'
            index, out = self._block_start(block)
            part.slot = index
            part.frame = (
                _DELTA_HEAD + str(index).encode() + b',"delta":{"type":' + key,
                _DELTA_END,
            )
            self._open_text = part
        return out + self._framed(part.frame, delta)

    def _part_done(self, part: Part, event: TextDone | ReasoningDone | RefusalDone) -> bytes:
        out = b""
        if part.slot is None and isinstance(event, ReasoningDone):
            # Reasoning without text: Anthropic's redacted thinking (its data is the
            # encrypted content), or a thinking block that carries only its signature.
            if event.encrypted_content and not event.signature:
                block = {"type": "redacted_thinking", "data": event.encrypted_content}
                index, out = self._block_start(block)
                return out + self._block_stop(index)
            block = {"type": "thinking", "thinking": "", "signature": ""}
            index, out = self._block_start(block)
            part.slot = index
            self._open_text = part
        if part.slot is None:
            return b""
        index = part.slot
        if isinstance(event, ReasoningDone) and event.signature:
            delta = {"type": "signature_delta", "signature": event.signature}
            out += sse(
                json({"type": "content_block_delta", "index": index, "delta": delta}), _DELTA
            )
        if self._open_text is part:
            self._open_text = None
        return out + self._block_stop(index)

    def _call_start(self, call: Call) -> bytes:
        if call.id is None:
            # Anthropic requires a tool_use id; the source gave none.
            call.id = f"toolu_{self._generated:02d}"
            self._generated += 1
        block = {"type": "tool_use", "id": call.id, "name": call.name or "", "input": {}}
        index, out = self._block_start(block)
        head = _DELTA_HEAD + str(index).encode() + b',"delta":{"type":"input_json_delta"'
        frame = (head + b',"partial_json":', _DELTA_END)
        call.slot = (index, frame)
        if call.kind == FREE_TEXT_KIND:
            # A tool_use input is a JSON object: free text (a custom tool's
            # input) goes in {"input": "..."}, streamed as it comes.
            out += self._json_delta(call, '{"input":"')
        else:
            call.frame = frame  # the deltas are the input's JSON as they come
        return out

    def _json_delta(self, call: Call, piece: str) -> bytes:
        return self._framed(call.slot[1], piece)

    def _call_delta(self, call: Call, delta: str) -> bytes:
        if call.kind == FREE_TEXT_KIND:
            delta = json(delta)[1:-1].decode()  # the text's JSON escapes, inside the string
        return self._json_delta(call, delta)

    def _call_done(self, call: Call, event: ToolCallDone) -> bytes:
        out = self._json_delta(call, '"}') if call.kind == FREE_TEXT_KIND else b""
        return out + self._block_stop(call.slot[0])

    def _usage_frame(self, stop_reason: str | None) -> bytes:
        usage: dict[str, Any] = {"output_tokens": 0}
        if self.usage is not None:
            usage.update(native_usage(self.usage))
        delta = {"stop_reason": stop_reason, "stop_sequence": None}
        return sse(
            json({"type": "message_delta", "delta": delta, "usage": usage}), b"message_delta"
        )

    def _finish(self) -> bytes:
        finish = self.finishes.get(self._choice) if self._choice is not None else None
        if finish is None:
            finish = next(iter(self.finishes.values()))
        out = self._end_text_block()
        out += self._usage_frame(finish_value(finish, NATIVE_STOP_REASONS))
        return out + sse(b'{"type":"message_stop"}', b"message_stop")

    def _interrupt(self, error: ErrorInfo, cut: bool) -> bytes:
        out = b""
        if self.started and self.usage is not None:
            # The usage so far (no stop reason, no message_stop: the message is not over).
            out = self._usage_frame(None)
        if cut:
            return out
        body = {"type": "error", "error": {"type": error_code(error), "message": error.message}}
        return out + sse(json(body), b"error")
