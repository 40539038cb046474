"""Events to OpenAI Chat Completions ``chat.completion.chunk`` streams.

Each chunk is one choice's delta, as OpenAI frames it: a first chunk per choice
with the role, then ``content``, ``reasoning_content`` (DeepSeek's key, which
most compatible servers use), ``refusal`` and ``tool_calls`` deltas, a chunk
with the ``finish_reason``, a last chunk with ``choices: []`` and the
``usage``, and ``data: [DONE]``. An in-band error is ``{"error": {...}}``, as
OpenAI sends it mid-stream, with no ``[DONE]`` after it.
"""

from __future__ import annotations

from typing import ClassVar

from ..dialects.openai_chat import NATIVE_FINISH, native_usage
from ..errors import ErrorInfo
from ..events import LogprobsDelta, ResponseFinished, ToolCallDone
from .base import Call, Encoder, Part, error_code, finish_value, json, sse

__all__ = ["ChatEncoder"]

# The delta key of each kind of part.
_KEYS = {"text": b'"content":', "reasoning": b'"reasoning_content":', "refusal": b'"refusal":'}
_OPEN = b'{"index":'
_CLOSE = b'},"logprobs":null,"finish_reason":null}]}\n\n'


class ChatEncoder(Encoder):
    """Encode events as a Chat Completions stream (``"openai-chat"``)."""

    dialect = "openai-chat"
    multi_choice: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self._head = b""  # b'data: {"id":...,"choices":[' : the same on every chunk
        self._roles: set[int] = set()

    def _start(self) -> bytes:
        head = {
            "id": self.id or "",
            "object": "chat.completion.chunk",
            "created": self.created or 0,
            "model": self.model or "",
        }
        self._head = b"data: " + json(head)[:-1] + b',"choices":['
        return b""

    def _role(self, choice: int) -> bytes:
        # OpenAI's first chunk of a choice carries the role (and empty content).
        if choice in self._roles:
            return b""
        self._roles.add(choice)
        return self._choice_chunk(choice, b'{"role":"assistant","content":""', _CLOSE)

    def _choice_chunk(self, choice: int, delta: bytes, rest: bytes) -> bytes:
        # ``delta`` is the delta object without its closing brace, which ``rest`` holds.
        return b"".join((self._head, _OPEN, str(choice).encode(), b',"delta":', delta, rest))

    def _part_delta(self, part: Part, delta: str) -> bytes:
        out = b""
        if part.frame is None:
            out = self._role(part.choice)
            head = b"".join(
                (self._head, _OPEN, str(part.choice).encode(), b',"delta":{', _KEYS[part.kind])
            )
            part.frame = (head, _CLOSE)
        return out + self._framed(part.frame, delta)

    def _tool_chunk(self, call: Call, entry: dict[str, object]) -> bytes:
        return self._choice_chunk(call.choice, json({"tool_calls": [entry]})[:-1], _CLOSE)

    def _call_start(self, call: Call) -> bytes:
        # slot: whether the id and the name were sent (they may come only at the end).
        head = b"".join(
            (
                self._head,
                _OPEN,
                str(call.choice).encode(),
                b',"delta":{"tool_calls":[{"index":',
                str(call.position).encode(),
                b',"function":{"arguments":',
            )
        )
        call.slot = (call.id is not None, call.name is not None)
        call.frame = (head, b"}}]" + _CLOSE)
        entry: dict[str, object] = {"index": call.position}
        if call.id is not None:
            entry["id"] = call.id
        entry["type"] = "function"
        entry["function"] = {"name": call.name or "", "arguments": ""}
        return self._role(call.choice) + self._tool_chunk(call, entry)

    def _call_delta(self, call: Call, delta: str) -> bytes:
        assert call.frame is not None  # set by _call_start
        return self._framed(call.frame, delta)

    def _call_done(self, call: Call, event: ToolCallDone) -> bytes:
        id_sent, name_sent = call.slot
        entry: dict[str, object] = {"index": call.position}
        if not id_sent and call.id is not None:
            entry["id"] = call.id
        if not name_sent and call.name is not None:
            entry["function"] = {"name": call.name}
        return self._tool_chunk(call, entry) if len(entry) > 1 else b""

    def _logprobs(self, event: LogprobsDelta) -> bytes:
        logprobs = json({"content": event.content, "refusal": event.refusal})
        rest = b'},"logprobs":' + logprobs + b',"finish_reason":null}]}\n\n'
        return (
            self._start_once()
            + self._role(event.choice)
            + self._choice_chunk(event.choice, b"{", rest)
        )

    def _finished(self, event: ResponseFinished) -> bytes:
        value = finish_value(event, NATIVE_FINISH)
        if value is None:
            return b""
        rest = b'},"logprobs":null,"finish_reason":' + json(value) + b"}]}\n\n"
        return self._start_once() + self._choice_chunk(event.choice, b"{", rest)

    def _finish(self) -> bytes:
        return self._usage_chunk() + b"data: [DONE]\n\n"

    def _usage_chunk(self) -> bytes:
        if self.usage is None or not self.started:
            return b""
        return self._head[:-1] + b'[],"usage":' + json(native_usage(self.usage)) + b"}\n\n"

    def _interrupt(self, error: ErrorInfo, cut: bool) -> bytes:
        # The usage so far (no [DONE] follows: the stream reads as cut or failed).
        out = self._usage_chunk()
        if cut:
            return out
        body = {"message": error.message, "type": error_code(error), "code": error.code}
        return out + sse(json({"error": body}))
