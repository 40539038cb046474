"""Events to Google Gemini ``streamGenerateContent`` streams.

Each chunk is a ``GenerateContentResponse``: one candidate's part (``text``,
``text`` with ``thought: true``, or a whole ``functionCall``), with
``modelVersion`` and ``responseId``; the last chunk carries every candidate's
``finishReason`` and the ``usageMetadata``. A thinking part's signature rides
on an empty thought part at its end, as Gemini 3 sends it. Server-sent events
(``?alt=sse``, CRLF-framed like Google's) by default, or one JSON array
(``json_array=True``). An in-band error is Google's ``{"error": {...}}``
envelope; a failed stream has no ``finishReason``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..dialects.gemini import NATIVE_FINISH, native_usage
from ..errors import ErrorInfo
from ..events import ReasoningDone, RefusalDone, TextDone, ToolCallDone
from .base import REASONING, Call, Encoder, Part, error_code, finish_value, json

__all__ = ["GeminiEncoder"]

# Google sends no SSE comments, and google-genai takes every line that is not
# empty and not ``data: `` for a piece of a JSON error body: its readers skip
# only blank lines. A JSON array gets none: only SSE has frames meant to be skipped.
_BLANK_LINE = b"\r\n"


class GeminiEncoder(Encoder):
    """Encode events as a Gemini stream (``"gemini"``).

    Args:
        json_array: write one JSON array (the form without ``?alt=sse``)
            instead of server-sent events.
    """

    dialect = "gemini"
    multi_choice: ClassVar[bool] = True

    def __init__(self, *, json_array: bool = False) -> None:
        super().__init__()
        self.json_array = json_array
        self.media_type = "application/json" if json_array else "text/event-stream"
        self.keepalive = None if json_array else _BLANK_LINE
        self._tail = b"}"
        self._array_open = False  # the JSON array's "[" was written

    def _frame(self, chunk: bytes) -> bytes:
        before, after = self._frame_ends()
        return before + chunk + after

    def _frame_ends(self) -> tuple[bytes, bytes]:
        # What goes before and after the next chunk: an SSE event's, or the
        # JSON array's element (the first one opens the array).
        if not self.json_array:
            return b"data: ", b"\r\n\r\n"
        if self._array_open:
            return b",\r\n", b""
        self._array_open = True
        return b"[", b""

    def _start(self) -> bytes:
        fields = {}
        if self.model is not None:
            fields["modelVersion"] = self.model
        if self.id is not None:
            fields["responseId"] = self.id
        self._tail = b"," + json(fields)[1:] if fields else b"}"
        return b""

    def _part_chunk(self, choice: int, part: bytes) -> bytes:
        head = (
            b'{"candidates":[{"content":{"parts":['
            + part
            + b'],"role":"model"},"index":'
            + str(choice).encode()
            + b"}]"
        )
        return self._frame(head + self._tail)

    def _part_delta(self, part: Part, delta: str) -> bytes:
        if part.frame is not None:
            return self._framed(part.frame, delta)
        # A refusal has no part of its own in Gemini: it is answer text here.
        thought = b'"thought":true,' if part.kind == REASONING else b""
        head = b'{"candidates":[{"content":{"parts":[{' + thought + b'"text":'
        tail = b'}],"role":"model"},"index":' + str(part.choice).encode() + b"}]" + self._tail
        before, after = self._frame_ends()
        out = b"".join((before, head, json(delta), tail, after))
        before, after = self._frame_ends()  # those of the chunks after this one
        part.frame = (before + head, tail + after)
        return out

    def _part_done(self, part: Part, event: TextDone | ReasoningDone | RefusalDone) -> bytes:
        if isinstance(event, ReasoningDone) and event.signature:
            signed = {"text": "", "thought": True, "thoughtSignature": event.signature}
            return self._part_chunk(part.choice, json(signed))
        return b""

    def _call_start(self, call: Call) -> bytes:
        call.frame = ()  # Gemini sends a call whole, when its arguments are complete
        return b""

    def _call_delta(self, call: Call, delta: str) -> bytes:
        return b""

    def _call_done(self, call: Call, event: ToolCallDone) -> bytes:
        function: dict[str, Any] = {"name": call.name or ""}
        if call.id is not None:
            function["id"] = call.id
        value = event.value
        if event.parse_error is not None:
            value = event.arguments
        # Gemini's args is an object: other input (a custom tool's text, a
        # value that is not an object) is wrapped.
        function["args"] = value if isinstance(value, dict) else {"input": value}
        return self._part_chunk(call.choice, json({"functionCall": function}))

    def _candidates(self, finishing: bool) -> list[dict[str, Any]]:
        out = []
        for choice in sorted(self.finishes) if finishing else ():
            value = finish_value(self.finishes[choice], NATIVE_FINISH) or "STOP"
            out.append({"finishReason": value, "index": choice})
        return out

    def _last_chunk(self, candidates: list[dict[str, Any]]) -> bytes:
        chunk: dict[str, Any] = {}
        if candidates:
            chunk["candidates"] = candidates
        if self.usage is not None:
            usage = native_usage(self.usage)
            if usage:
                chunk["usageMetadata"] = usage
        if not chunk:
            return b""
        return self._frame(json(chunk)[:-1] + self._tail)

    def _finish(self) -> bytes:
        out = self._last_chunk(self._candidates(True))
        if self.json_array:
            out += b"]" if self._array_open else b"[]"
        return out

    def _interrupt(self, error: ErrorInfo, cut: bool) -> bytes:
        # The usage so far, without a finishReason: the stream reads as unfinished.
        out = self._last_chunk([]) if self.started else b""
        if cut:
            return out
        body: dict[str, Any] = {"message": error.message, "status": error_code(error)}
        if error.code is not None and error.code.isdigit():
            body["code"] = int(error.code)
        out += self._frame(json({"error": body}))
        if self.json_array:
            out += b"]"
        return out
