"""Events to OpenAI Responses streams.

``response.created`` and ``response.in_progress``, then one output item per
run of answer text (a ``message`` with ``output_text`` and ``refusal`` content
parts), per reasoning part (a ``reasoning`` item with one ``summary_text``
part and its ``encrypted_content``) and per tool call (``function_call``, or
``custom_tool_call`` for free-text input): each item added, its parts added,
their deltas, their done events with the whole text, the item done; and last
``response.completed`` (or ``response.incomplete``) with the whole ``Response``
object: its output, status and usage. Every event has its ``sequence_number``.
A failure is ``response.failed`` with the error, as OpenAI ends a failed
response.

Item ids are made from the response id and the item's position (the events
carry none).
"""

from __future__ import annotations

from typing import Any

from ..dialects.openai_responses import NATIVE_INCOMPLETE, native_usage
from ..errors import ErrorInfo
from ..events import ReasoningDone, RefusalDone, TextDone, ToolCallDone
from ..fold import FREE_TEXT_KIND
from .base import REASONING, REFUSAL, Call, Encoder, Frame, Part, error_code, json, sse

__all__ = ["ResponsesEncoder"]


class _Message:
    """The open ``message`` item and its content parts."""

    __slots__ = ("content", "id", "index", "open")

    def __init__(self, index: int, id: str) -> None:
        self.index = index
        self.id = id
        self.content: list[dict[str, Any]] = []
        self.open: list[Part] = []  # its parts not done yet


class ResponsesEncoder(Encoder):
    """Encode events as an OpenAI Responses stream (``"openai-responses"``)."""

    dialect = "openai-responses"

    def __init__(self) -> None:
        super().__init__()
        self._output: list[dict[str, Any]] = []  # done items, by output index
        self._next_index = 0
        self._message: _Message | None = None
        self._generated = 0
        self._open_items: dict[int, Part | Call] = {}  # items added, not done

    # -- frames -------------------------------------------------------------------------

    def _event(self, kind: str, fields: dict[str, Any]) -> bytes:
        body = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return sse(json(body), kind.encode())

    def _response(self, status: str, **fields: Any) -> dict[str, Any]:
        response: dict[str, Any] = {"id": self.id or "", "object": "response"}
        if self.created is not None:
            response["created_at"] = self.created
        response["status"] = status
        response["model"] = self.model or ""
        response["output"] = [item for item in self._output if item is not None]
        response.update(fields)
        return response

    def _item_id(self, prefix: str, index: int) -> str:
        return f"{prefix}_{self.id}_{index}" if self.id else f"{prefix}_{index}"

    def _new_index(self) -> int:
        index = self._next_index
        self._next_index += 1
        self._output.append(None)  # type: ignore[arg-type]
        return index

    def _start(self) -> bytes:
        response = {"response": self._response("in_progress")}
        return self._event("response.created", response) + self._event(
            "response.in_progress", response
        )

    # -- the message item ---------------------------------------------------------------

    def _open_message(self) -> tuple[_Message, bytes]:
        message = self._message
        if message is not None:
            return message, b""
        index = self._new_index()
        message = self._message = _Message(index, self._item_id("msg", index))
        item = {
            "id": message.id,
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        return message, self._event(
            "response.output_item.added", {"output_index": index, "item": item}
        )

    def _close_message(self) -> bytes:
        # Items follow one another: another item starting ends the message, and
        # its parts end with the text they have (the rest, if more comes, goes
        # to a new message).
        message = self._message
        if message is None:
            return b""
        out = b""
        for part in list(message.open):
            out += self._end_part(part, part.sent())
            part.slot = part.frame = None
        self._message = None
        item = {
            "id": message.id,
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": message.content,
        }
        self._output[message.index] = item
        return out + self._event(
            "response.output_item.done", {"output_index": message.index, "item": item}
        )

    def _part_delta(self, part: Part, delta: str) -> bytes:
        out = b""
        if part.frame is None:  # no item open for it
            if part.kind == REASONING:
                out = self._close_message()
                index = self._new_index()
                item_id = self._item_id("rs", index)
                item = {"id": item_id, "type": "reasoning", "summary": []}
                out += self._event(
                    "response.output_item.added", {"output_index": index, "item": item}
                )
                where = {"item_id": item_id, "output_index": index, "summary_index": 0}
                out += self._event(
                    "response.reasoning_summary_part.added",
                    {**where, "part": {"type": "summary_text", "text": ""}},
                )
                part.slot = where
                part.frame = self._delta_frame("response.reasoning_summary_text.delta", where)
                self._open_items[index] = part
            else:
                message, out = self._open_message()
                where = {
                    "item_id": message.id,
                    "output_index": message.index,
                    "content_index": len(message.content),
                }
                message.content.append({})  # its place, filled when the part is done
                message.open.append(part)
                if part.kind == REFUSAL:
                    added: dict[str, Any] = {"type": "refusal", "refusal": ""}
                    kind = "response.refusal.delta"
                else:
                    added = {"type": "output_text", "text": "", "annotations": []}
                    kind = "response.output_text.delta"
                out += self._event("response.content_part.added", {**where, "part": added})
                part.slot = where
                part.frame = self._delta_frame(kind, where)
        return out + self._framed(part.frame, delta)

    def _delta_frame(self, kind: str, where: dict[str, Any]) -> Frame:
        # A part's delta events differ only by their sequence number and delta:
        # their bytes around those two are made once.
        head = b"event: " + kind.encode() + b'\ndata: {"type":"' + kind.encode()
        head += b'","sequence_number":'
        middle = b"," + json(where)[1:-1] + b',"delta":'
        tail = b',"logprobs":[]}\n\n' if kind == "response.output_text.delta" else b"}\n\n"
        return (head, middle, tail)

    def _part_done(self, part: Part, event: TextDone | ReasoningDone | RefusalDone) -> bytes:
        if isinstance(event, ReasoningDone):
            return self._reasoning_done(part, event)
        if part.slot is None:
            return b""  # its message ended before it (another item started)
        return self._end_part(part, event.text)

    def _end_part(self, part: Part, text: str) -> bytes:
        where = part.slot
        message = self._message
        if part.kind == REFUSAL:
            final: dict[str, Any] = {"type": "refusal", "refusal": text}
            out = self._event("response.refusal.done", {**where, "refusal": text})
        else:
            final = {"type": "output_text", "text": text, "annotations": []}
            out = self._event("response.output_text.done", {**where, "text": text, "logprobs": []})
        if message is not None and message.id == where["item_id"]:
            message.content[where["content_index"]] = final
            message.open.remove(part)
        return out + self._event("response.content_part.done", {**where, "part": final})

    def _reasoning_done(self, part: Part, event: ReasoningDone) -> bytes:
        out = b""
        summary: list[dict[str, Any]] = []
        if part.slot is None:
            # Reasoning without text (only encrypted content): an item without summary.
            out = self._close_message()
            index = self._new_index()
            item_id = self._item_id("rs", index)
            added = {"id": item_id, "type": "reasoning", "summary": []}
            out += self._event("response.output_item.added", {"output_index": index, "item": added})
        else:
            where = part.slot
            index, item_id = where["output_index"], where["item_id"]
            final = {"type": "summary_text", "text": event.text}
            summary.append(final)
            out += self._event(
                "response.reasoning_summary_text.done", {**where, "text": event.text}
            )
            out += self._event("response.reasoning_summary_part.done", {**where, "part": final})
        item: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": summary}
        if event.encrypted_content:
            item["encrypted_content"] = event.encrypted_content
        self._output[index] = item
        self._open_items.pop(index, None)
        return out + self._event("response.output_item.done", {"output_index": index, "item": item})

    # -- calls --------------------------------------------------------------------------

    def _call_item(self, call: Call, status: str, value: str) -> dict[str, Any]:
        item_id = call.slot[1]
        if call.kind == FREE_TEXT_KIND:
            item_type, field = "custom_tool_call", "input"
        else:
            item_type, field = "function_call", "arguments"
        return {
            "id": item_id,
            "type": item_type,
            "status": status,
            field: value,
            "call_id": call.id or "",
            "name": call.name or "",
        }

    def _call_start(self, call: Call) -> bytes:
        if call.id is None:
            # Responses requires a call_id (the SDK tells calls apart by it).
            call.id = f"call_{self._generated}"
            self._generated += 1
        out = self._close_message()
        index = self._new_index()
        item_id = self._item_id("fc", index)
        kind = (
            "response.custom_tool_call_input.delta"
            if call.kind == FREE_TEXT_KIND
            else "response.function_call_arguments.delta"
        )
        where = {"item_id": item_id, "output_index": index}
        call.slot = (index, item_id)
        call.frame = self._delta_frame(kind, where)
        self._open_items[index] = call
        item = self._call_item(call, "in_progress", "")
        return out + self._event(
            "response.output_item.added", {"output_index": index, "item": item}
        )

    def _call_delta(self, call: Call, delta: str) -> bytes:
        assert call.frame is not None  # set by _call_start
        return self._framed(call.frame, delta)

    def _call_done(self, call: Call, event: ToolCallDone) -> bytes:
        index, item_id = call.slot
        where = {"item_id": item_id, "output_index": index}
        # The done events carry the whole arguments: they win over the deltas.
        if call.kind == FREE_TEXT_KIND:
            out = self._event(
                "response.custom_tool_call_input.done", {**where, "input": event.arguments}
            )
        else:
            out = self._event(
                "response.function_call_arguments.done", {**where, "arguments": event.arguments}
            )
        item = self._call_item(call, "completed", event.arguments)
        self._output[index] = item
        del self._open_items[index]
        return out + self._event("response.output_item.done", {"output_index": index, "item": item})

    # -- the end ------------------------------------------------------------------------

    def _usage(self) -> Any:
        return None if self.usage is None else native_usage(self.usage)

    def _abandoned(self) -> bytes:
        # Items a restart abandoned (their parts ended incomplete, then the
        # stream went on): done as they are, incomplete, so the response ends
        # with every item done.
        out = b""
        for index, source in sorted(self._open_items.items()):
            text = source.sent()
            if isinstance(source, Call):
                item = self._call_item(source, "incomplete", text)
            else:
                item_id = source.slot["item_id"]
                summary = [{"type": "summary_text", "text": text}]
                item = {"id": item_id, "type": "reasoning", "summary": summary}
            self._output[index] = item
            out += self._event("response.output_item.done", {"output_index": index, "item": item})
        self._open_items.clear()
        return out

    def _finish(self) -> bytes:
        out = self._close_message() + self._abandoned()
        finish = next(iter(self.finishes.values()))
        unified = finish.finish_reason
        if unified is None or unified in ("stop", "tool_calls"):
            # Responses has no finish reason: a completed response that made
            # function calls is read as tool_calls, else as stop.
            response = self._response("completed", usage=self._usage())
            return out + self._event("response.completed", {"response": response})
        reason = NATIVE_INCOMPLETE.get(unified) or finish.raw_finish_reason or unified
        response = self._response(
            "incomplete", incomplete_details={"reason": reason}, usage=self._usage()
        )
        return out + self._event("response.incomplete", {"response": response})

    def _interrupt(self, error: ErrorInfo, cut: bool) -> bytes:
        # A cut has nothing to write: Responses carries the usage only in the
        # terminal events.
        if cut:
            return b""
        out = self._start_once()
        failure = {"code": error_code(error), "message": error.message}
        response = self._response("failed", error=failure, usage=self._usage())
        return out + self._event("response.failed", {"response": response})
