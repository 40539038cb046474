"""Events to the Vercel AI SDK UI message stream (what ``useChat`` reads).

``start`` (the message id: the response id; ``messageMetadata.model``) and
``start-step``; every part with an id: ``text-start``/``text-delta``/
``text-end``, ``reasoning-start``/``reasoning-delta``/``reasoning-end`` (a
signature or encrypted content in ``providerMetadata.streamfold``); every
call keyed by its ``toolCallId``: ``tool-input-start``, ``tool-input-delta``,
then ``tool-input-available`` with the parsed input (``tool-input-error`` when
the arguments are not valid JSON); ``finish-step``, ``finish`` (its
``finishReason``, the usage in ``messageMetadata.usage`` as the AI SDK's
``LanguageModelUsage``) and ``data: [DONE]``. A failure is an ``error`` chunk
with nothing after it. Serve it with ``headers`` (``x-vercel-ai-ui-message-stream: v1``).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from ..dialects.ai_sdk_ui import HEADERS, METADATA_KEY, NATIVE_FINISH, native_usage
from ..errors import ErrorInfo
from ..events import ReasoningDone, RefusalDone, TextDone, ToolCallDone
from ..fold import FREE_TEXT_KIND
from .base import REASONING, Call, Encoder, Part, finish_value, json, sse

__all__ = ["UIMessageStreamEncoder"]

_END = b"}\n\n"


class UIMessageStreamEncoder(Encoder):
    """Encode events as an AI SDK UI message stream (``"ai-sdk-ui"``).

    Args:
        message_id: the assistant message's id (``start.messageId``); the
            response id when ``None``.
    """

    dialect = "ai-sdk-ui"
    headers = MappingProxyType(HEADERS)

    def __init__(self, *, message_id: str | None = None) -> None:
        super().__init__()
        self.message_id = message_id
        self._part_count = 0
        self._generated = 0

    def _chunk(self, body: dict[str, Any]) -> bytes:
        return sse(json(body))

    def _start(self) -> bytes:
        start: dict[str, Any] = {"type": "start"}
        message_id = self.message_id if self.message_id is not None else self.id
        if message_id:
            start["messageId"] = message_id
        if self.model:
            start["messageMetadata"] = {"model": self.model}
        return self._chunk(start) + b'data: {"type":"start-step"}\n\n'

    def _part_delta(self, part: Part, delta: str) -> bytes:
        out = b""
        if part.frame is None:
            # A refusal has no part of its own in the UI message: it is answer text here.
            kind = "reasoning" if part.kind == REASONING else "text"
            part_id = f"{kind}-{self._part_count}"
            self._part_count += 1
            out = self._chunk({"type": f"{kind}-start", "id": part_id})
            start = b'data: {"type":"' + kind.encode() + b'-delta","id":' + json(part_id)
            part.slot = (kind, part_id)
            part.frame = (start + b',"delta":', _END)
        return out + self._framed(part.frame, delta)

    def _part_done(self, part: Part, event: TextDone | ReasoningDone | RefusalDone) -> bytes:
        out = b""
        if part.slot is None:
            if not isinstance(event, ReasoningDone):
                return b""
            # Reasoning without text (redacted, or only signed): an empty part.
            part_id = f"reasoning-{self._part_count}"
            self._part_count += 1
            out = self._chunk({"type": "reasoning-start", "id": part_id})
            kind = "reasoning"
        else:
            kind, part_id = part.slot
        end: dict[str, Any] = {"type": f"{kind}-end", "id": part_id}
        if isinstance(event, ReasoningDone):
            metadata = {}
            if event.signature:
                metadata["signature"] = event.signature
            if event.encrypted_content:
                metadata["encryptedContent"] = event.encrypted_content
            if metadata:
                end["providerMetadata"] = {METADATA_KEY: metadata}
        return out + self._chunk(end)

    def _call_start(self, call: Call) -> bytes:
        if call.id is None:
            # The UI message keys calls by toolCallId; the source gave none.
            call.id = f"call_{self._generated}"
            self._generated += 1
        start: dict[str, Any] = {
            "type": "tool-input-start",
            "toolCallId": call.id,
            "toolName": call.name or "",
        }
        if call.kind == FREE_TEXT_KIND:
            start["inputEncoding"] = "text"
        head = b'data: {"type":"tool-input-delta","toolCallId":' + json(call.id)
        call.frame = (head + b',"inputTextDelta":', _END)
        return self._chunk(start)

    def _call_delta(self, call: Call, delta: str) -> bytes:
        assert call.frame is not None  # set by _call_start
        return self._framed(call.frame, delta)

    def _call_done(self, call: Call, event: ToolCallDone) -> bytes:
        body: dict[str, Any] = {"toolCallId": call.id, "toolName": call.name or ""}
        if event.parse_error is not None:
            body = {"type": "tool-input-error", **body, "input": event.arguments}
            body["errorText"] = f"the arguments are not valid JSON: {event.parse_error.message}"
        else:
            body = {"type": "tool-input-available", **body, "input": event.value}
        return self._chunk(body)

    def _usage_metadata(self) -> dict[str, Any] | None:
        if self.usage is None:
            return None
        return {"usage": native_usage(self.usage)}

    def _finish(self) -> bytes:
        finish = next(iter(self.finishes.values()))
        body: dict[str, Any] = {"type": "finish"}
        value = finish_value(finish, NATIVE_FINISH)
        if value is not None:
            body["finishReason"] = value if value in _REASONS else "other"
        metadata = self._usage_metadata()
        if metadata is not None:
            body["messageMetadata"] = metadata
        return b'data: {"type":"finish-step"}\n\n' + self._chunk(body) + b"data: [DONE]\n\n"

    def _interrupt(self, error: ErrorInfo, cut: bool) -> bytes:
        # The usage so far (as message metadata), then the error; never `finish`.
        out = b""
        metadata = self._usage_metadata()
        if metadata is not None and self.started:
            out = self._chunk({"type": "message-metadata", "messageMetadata": metadata})
        if cut:
            return out
        return out + self._chunk({"type": "error", "errorText": error.message})


# The finish reasons uiMessageChunkSchema accepts: a raw reason of another
# dialect would fail its validation.
_REASONS = frozenset(NATIVE_FINISH.values())
