"""Cohere v2 chat: ``POST /v2/chat`` with ``stream: true``.

Spoken by Cohere's API (and the deployments of its models on Azure, Bedrock
and Oracle that keep the v2 wire format, and vLLM's ``/cohere/v2/chat``). A
stream is one message, every event a JSON object named by its ``type``:
``message-start`` carries the id; each content part (text, or a reasoning
model's ``thinking``) arrives as ``content-start``, ``content-delta`` pieces
and ``content-end``, numbered by ``index``; before it calls tools the model
streams its plan (``tool-plan-delta``: reasoning); each tool call is
``tool-call-start`` (id and name), ``tool-call-delta`` argument pieces and
``tool-call-end``; a grounded answer's citations come whole in
``citation-start`` (``citation-end`` closes them); ``message-end`` carries
the finish reason and the usage, and a ``data: [DONE]`` may follow.

What every field of the final response comes from, and which value wins, is in
``docs/dialects/cohere-chat.md``. Each departure from Cohere's documented format
is a named function below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgspec

from ..errors import ProviderError
from ..events import Usage
from ..fold import NO_SINK, Accumulator, PartKind, PartView, ToolCallView
from ..sse import ServerSentEvent
from .base import (
    TYPED_REJECTED,
    UNKEPT,
    Dialect,
    NativePart,
    decode_json,
    int_or_none,
    object_or_none,
    protocol_error,
    provider_error,
    required_index,
    str_or_none,
    tag_or_none,
    typed_decoder,
)

__all__ = ["CohereChat", "normalise_usage", "unified_finish_reason"]

_EVENT_TYPES: Final = frozenset(
    {
        "message-start",
        "content-start",
        "content-delta",
        "content-end",
        "tool-plan-delta",
        "tool-call-start",
        "tool-call-delta",
        "tool-call-end",
        "citation-start",
        "citation-end",
        "message-end",
        "debug",
    }
)

_FINISH: Final = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
    # The generation failed (delta.error says why) or ran out of time: the
    # message ended, but not as an answer.
    "ERROR": "error",
    "TIMEOUT": "error",
}
# Finish reasons that are a failure of the provider: a ProviderError once the
# message is folded. Both are transient per Cohere (an internal error, a timeout).
_FAILED: Final = frozenset({"ERROR", "TIMEOUT"})

_TEXT, _THINKING = "text", "thinking"
_PART_KIND: Final = {_TEXT: PartKind.TEXT, _THINKING: PartKind.REASONING}
_TOOL_PLAN: Final = "tool_plan"  # the owner of the tool plan's reasoning parts
# Fields of message-start's message that the stream fills in itself.
_STREAMED_FIELDS: Final = frozenset({"content", "tool_plan", "tool_calls", "citations"})


# The hot events, typed: a text or thinking piece, an arguments piece, and
# nothing else. Decoded straight into these Structs they cost less than a dict
# and its gets; any other field or value (logprobs, an extra key, a wrong type)
# fails validation and the event takes the dict path, which folds it the same.
class _TypedPiece(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    text: str | msgspec.UnsetType = msgspec.UNSET
    thinking: str | msgspec.UnsetType = msgspec.UNSET


class _TypedContentMessage(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    content: _TypedPiece


class _TypedContentBody(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    message: _TypedContentMessage


class _TypedContentDelta(
    msgspec.Struct, tag_field="type", tag="content-delta", forbid_unknown_fields=True, gc=False
):
    index: int
    delta: _TypedContentBody


class _TypedArguments(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    arguments: str


class _TypedFunction(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    function: _TypedArguments


class _TypedCallMessage(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    tool_calls: _TypedFunction


class _TypedCallBody(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    message: _TypedCallMessage


class _TypedCallDelta(
    msgspec.Struct, tag_field="type", tag="tool-call-delta", forbid_unknown_fields=True, gc=False
):
    index: int
    delta: _TypedCallBody


_TYPED_EVENTS: Final = frozenset({"content-delta", "tool-call-delta"})


def unified_finish_reason(raw: str) -> str:
    """Map a Cohere ``finish_reason`` to stop, length, tool_calls, error or other."""
    return _FINISH.get(raw, "other")


def normalise_usage(raw: dict[str, Any]) -> Usage:
    """Normalise a Cohere ``usage`` object; counts not reported stay ``None``.

    ``tokens`` holds what the model read and wrote (the prompt with its cached
    part and the template, the answer with its thinking): it wins.
    ``billed_units`` (what is billed: no cached nor template tokens) stands in
    only for a count ``tokens`` lacks. ``cached_tokens`` is the cached part of
    the prompt. Cohere does not report reasoning tokens apart: they are inside
    ``output_tokens``, and ``reasoning_tokens`` is ``None``.
    """
    tokens = object_or_none(raw.get("tokens")) or {}
    billed = object_or_none(raw.get("billed_units")) or {}
    prompt = int_or_none(tokens.get("input_tokens"))
    if prompt is None:
        prompt = int_or_none(billed.get("input_tokens"))
    output = int_or_none(tokens.get("output_tokens"))
    if output is None:
        output = int_or_none(billed.get("output_tokens"))
    return Usage(
        input_tokens=prompt,
        output_tokens=output,
        total_tokens=None if prompt is None or output is None else prompt + output,
        cache_read_tokens=int_or_none(raw.get("cached_tokens")),
        raw=raw,
    )


class _Content(NativePart):
    """One content part: its type, its start fields, and the accumulator's parts
    that hold its text (one, unless another part interrupted it)."""

    __slots__ = ("epoch", "fields", "fold", "key", "sink", "type")

    def __init__(self, index: int, kind: str, fields: dict[str, Any]) -> None:
        super().__init__()
        self.type = kind
        self.key = ("content", index)  # the owner of its accumulator parts
        self.fields = fields  # the start's content object, its text aside
        # The accumulator's method that takes its pieces (a text or thinking part).
        self.fold: Callable[[int, str, Any], PartView] | None = None
        # The fold of the next piece of its open part (Accumulator.sink: in a
        # plain fold its append), valid while the accumulator's epoch is this one.
        self.sink: Callable[[str], object] = NO_SINK
        self.epoch = UNKEPT

    def _native(self) -> dict[str, Any]:
        out = {"type": self.type, **self.fields}
        if self.type in _PART_KIND:
            out[self.type] = self.text()
        return out


class _ToolCall:
    """One tool call: its start fields and the accumulator's call (its arguments)."""

    __slots__ = ("built", "built_at", "call", "done", "epoch", "fields", "function", "key", "sink")

    def __init__(self, index: int, fields: dict[str, Any], function: dict[str, Any]) -> None:
        self.key = ("tool", index)  # the accumulator's key
        self.fields = fields
        self.function = function
        self.call: ToolCallView | None = None
        self.done = False
        self.built: dict[str, Any] | None = None
        self.built_at: tuple[int, bool] = (-1, False)
        # The fold of the next piece of its arguments (Accumulator.arguments_sink,
        # NO_SINK until asked for), valid while the accumulator's epoch is this one.
        self.sink: Callable[[str], object] = NO_SINK
        self.epoch = UNKEPT

    def arguments(self) -> str:
        return self.call.arguments if self.call is not None else ""

    def native(self) -> dict[str, Any]:
        # Built again only when its arguments changed (or it ended).
        at = (self.call.version if self.call is not None else -1, self.done)
        if self.built is not None and self.built_at == at:
            return self.built
        self.built = None  # let go of the old arguments first: they may then grow in place
        out = dict(self.fields)
        out.setdefault("type", "function")
        function = dict(self.function)
        function["arguments"] = self.arguments()
        out["function"] = function
        self.built, self.built_at = out, at
        return out


def _joined(parts: list[PartView]) -> str:
    if len(parts) == 1:
        return parts[0].text
    return "".join([part.text for part in parts])


class CohereChat(Dialect):
    """Cohere v2 chat streams (``"cohere-chat"``)."""

    name = "cohere-chat"

    def __init__(self, acc: Accumulator) -> None:
        super().__init__(acc)
        self._decode_typed: Callable[[bytes], _TypedContentDelta | _TypedCallDelta] = typed_decoder(
            _TypedContentDelta | _TypedCallDelta
        )
        self.id: str | None = None
        self.message: dict[str, Any] = {}  # message-start's message, streamed fields aside
        self.contents: dict[int, _Content] = {}
        self.tool_plan: list[PartView] = []  # the accumulator's parts of the tool plan
        self.calls: dict[int, _ToolCall] = {}
        self.citations: dict[int, Any] = {}
        self.finish: str | None = None
        self.usage: dict[str, Any] | None = None
        self.extra: dict[str, Any] = {}  # other fields of message-end's delta

    @classmethod
    def detect(cls, event: ServerSentEvent, payload: Any) -> bool:
        """An event whose ``type`` is one of Cohere's v2 chat stream events."""
        return type(payload) is dict and tag_or_none(payload.get("type")) in _EVENT_TYPES

    def handle(self, event: ServerSentEvent) -> bool:
        """Fold one event (or the ``[DONE]`` marker).

        Returns:
            ``True`` at ``message-end`` (or ``[DONE]``): the end of the message.

        Raises:
            ProviderError: an error payload, or ``message-end`` with the finish
                reason ``ERROR`` or ``TIMEOUT``.
            ProtocolError: malformed JSON, a required ``index`` missing, or a
                delta for a part or call that never started.
        """
        if self.fast(event):
            return False
        if event.raw == b"[DONE]":
            return True
        payload = decode_json(event)
        if type(payload) is not dict:
            if event.event == "error":
                raise provider_error(payload, event.index)
            raise protocol_error(event, "is not a JSON object")
        kind = tag_or_none(payload.get("type"))
        if kind is None:
            if event.event == "error" or _error_payload(payload):
                raise _cohere_error(payload, event)
            kind = event.event
        if not self.acc.started and kind != "message-start":
            self._start(None)  # no message-start: an unnamed message
        if kind == "content-delta":
            self._content_delta(payload, event)
        elif kind == "tool-call-delta":
            self._tool_call_delta(payload, event)
        elif kind == "tool-plan-delta":
            self._tool_plan_delta(payload)
        elif kind == "content-start":
            self._content_start(payload, event)
        elif kind == "content-end":
            self._content_end(payload, event)
        elif kind == "tool-call-start":
            self._tool_call_start(payload, event)
        elif kind == "tool-call-end":
            self._tool_call_end(payload, event)
        elif kind == "citation-start":
            self._citation_start(payload, event)
        elif kind == "message-start":
            self._message_start(payload)
        elif kind == "message-end":
            self._message_end(payload, event)
            return True
        elif kind == "error" or event.event == "error":
            raise _cohere_error(payload, event)
        else:
            # citation-end (the citation came whole at its start), debug, and
            # event types added after this dialect.
            self.acc.unknown(kind, payload)
        return False

    # -- events ------------------------------------------------------------------

    def _start(self, id: str | None) -> None:
        self.id = self.id or id
        self.acc.start(self.id, None, None)

    def _message_start(self, payload: dict[str, Any]) -> None:
        id = str_or_none(payload.get("id"))
        message = object_or_none(_message(payload)) or {}
        for key, value in message.items():
            if key not in _STREAMED_FIELDS and value is not None:
                self.message[key] = value
        if self.acc.started:
            self.id = self.id or id
            return
        self._start(id)

    def _content_start(self, payload: dict[str, Any], event: ServerSentEvent) -> None:
        index = required_index(payload, "index", event)
        if index in self.contents:
            raise protocol_error(event, f"content part {index} started twice")
        fields = dict(object_or_none(_message_field(payload, "content")) or {})
        kind = tag_or_none(fields.pop("type", None)) or _content_kind(fields)
        first = fields.pop(kind, None) if kind in _PART_KIND else None
        content = self.contents[index] = _Content(index, kind, fields)
        part = _PART_KIND.get(kind)
        if part is None:
            self.acc.unknown("content-start", payload)
            return
        # Each content part is one part of the events, even one without text.
        content.add(self.acc.begin_part(0, part, content.key))
        content.fold = self.acc.reasoning if part is PartKind.REASONING else self.acc.text
        if type(first) is str and first:
            self._piece(content, part, first)

    def fast(self, event: ServerSentEvent) -> bool:
        # The typed path (see _TypedContentDelta): True when the event was
        # folded here. Every check comes before any side effect, so a False
        # leaves the event to the dict path (which raises the precise error). A
        # part or call exists only once handle started the message.
        if event.event not in _TYPED_EVENTS:
            return False
        decode = self._decode_typed  # an attribute, not a method: no LOAD_METHOD
        try:
            typed = decode(event.raw)
        except TYPED_REJECTED:
            return False
        # By the type itself: isinstance() on a Struct type costs a call.
        if type(typed) is _TypedContentDelta:
            content = self.contents.get(typed.index)
            if content is None:
                return False
            fields = typed.delta.message.content
            text = fields.text if content.type == _TEXT else fields.thinking
            if content.epoch == self.acc.epoch:
                # The common delta: more of the part the content's last one went
                # to. The epoch held, so that part is still open and the content's
                # (and the content not ended: its end ends the part): the sink
                # folds the piece as content.fold would.
                content.built = None
                if text:  # UNSET is false
                    content.sink(text)
                return True
            fold = content.fold
            if fold is None or content.done:  # not a text nor a thinking part, or ended
                return False
            content.built = None  # built again: what a revision bump does, for less
            if text:
                acc = self.acc
                part = fold(0, text, content.key)
                parts = content.parts  # NativePart.add, inline
                if not parts or parts[-1] is not part:
                    parts.append(part)
                content.sink, content.epoch = acc.sink(part), acc.epoch
            return True
        if type(typed) is _TypedCallDelta:
            call = self.calls.get(typed.index)
            if call is None or call.done:
                return False
            piece = typed.delta.message.tool_calls.function.arguments
            if piece:
                acc = self.acc
                if call.epoch == acc.epoch:
                    # The call's last piece went to it and it is still the
                    # current one (a call ending, or another's piece, moves the
                    # epoch): its sink, asked for by this second piece in a row
                    # (parallel calls, which switch on every piece, never ask).
                    sink = call.sink
                    if sink is NO_SINK:
                        sink = call.sink = acc.arguments_sink(0, call.key)
                    sink(piece)
                else:
                    acc.tool_arguments(0, call.key, piece)
                    call.sink, call.epoch = NO_SINK, acc.epoch
            return True
        return False  # never: the decoder gives one of the two

    def _content_delta(self, payload: dict[str, Any], event: ServerSentEvent) -> None:
        index = required_index(payload, "index", event)
        content = self.contents.get(index)
        if content is None:
            raise protocol_error(event, f"content-delta for content part {index}, never started")
        if content.done:
            raise protocol_error(event, f"content-delta for content part {index} after its end")
        content.revision += 1
        delta = object_or_none(_message_field(payload, "content")) or {}
        part = _PART_KIND.get(content.type)
        piece = delta.get(content.type) if part is not None else None
        if part is not None and type(piece) is str and piece:
            self._piece(content, part, piece)
        elif part is None:
            self.acc.unknown("content-delta", payload)
        logprobs = object_or_none(payload.get("logprobs"))
        if logprobs is not None:
            self.acc.logprobs(0, [logprobs])

    def _piece(self, content: _Content, part: PartKind, piece: str) -> None:
        if part is PartKind.REASONING:
            content.add(self.acc.reasoning(0, piece, content.key))
        else:
            content.add(self.acc.text(0, piece, content.key))

    def _content_end(self, payload: dict[str, Any], event: ServerSentEvent) -> None:
        index = required_index(payload, "index", event)
        content = self.contents.get(index)
        if content is None:
            raise protocol_error(event, f"content-end for content part {index}, never started")
        if content.done:
            raise protocol_error(event, f"content-end for content part {index} twice")
        content.done = True
        content.revision += 1
        part = _PART_KIND.get(content.type)
        if part is not None:
            self.acc.end_part(0, part, owner=content.key)

    def _tool_plan_delta(self, payload: dict[str, Any]) -> None:
        # The plan the model writes before its tool calls: its reasoning.
        piece = _message_field(payload, "tool_plan")
        if type(piece) is str and piece:
            handle = self.acc.reasoning(0, piece, _TOOL_PLAN)
            plan = self.tool_plan
            if not plan or plan[-1] is not handle:
                plan.append(handle)

    def _tool_call_start(self, payload: dict[str, Any], event: ServerSentEvent) -> None:
        index = required_index(payload, "index", event)
        if index in self.calls:
            raise protocol_error(event, f"tool call {index} started twice")
        fields = dict(object_or_none(_message_field(payload, "tool_calls")) or {})
        function = dict(object_or_none(fields.pop("function", None)) or {})
        first = function.pop("arguments", None)
        call = self.calls[index] = _ToolCall(index, fields, function)
        arguments = first if type(first) is str else ""
        call.call = self.acc.tool_call(
            0,
            call.key,
            id=str_or_none(fields.get("id")),
            name=str_or_none(function.get("name")),
            kind=tag_or_none(fields.get("type")) or "function",
            arguments=arguments,
        )

    def _tool_call_delta(self, payload: dict[str, Any], event: ServerSentEvent) -> None:
        index = required_index(payload, "index", event)
        call = self.calls.get(index)
        if call is None:
            raise protocol_error(event, f"tool-call-delta for tool call {index}, never started")
        if call.done:
            raise protocol_error(event, f"tool-call-delta for tool call {index} after its end")
        fields = object_or_none(_message_field(payload, "tool_calls")) or {}
        function = object_or_none(fields.get("function")) or {}
        piece = function.get("arguments")
        if type(piece) is str and piece:
            self.acc.tool_call(0, call.key, arguments=piece)

    def _tool_call_end(self, payload: dict[str, Any], event: ServerSentEvent) -> None:
        index = required_index(payload, "index", event)
        call = self.calls.get(index)
        if call is None:
            raise protocol_error(event, f"tool-call-end for tool call {index}, never started")
        if call.done:
            raise protocol_error(event, f"tool-call-end for tool call {index} twice")
        call.done = True
        _no_arguments(self.acc, call)
        self.acc.end_tool_call(0, call.key)

    def _citation_start(self, payload: dict[str, Any], event: ServerSentEvent) -> None:
        # A citation comes whole: kept in the message, streamed as raw (the
        # event model has no citation event).
        index = required_index(payload, "index", event)
        citation = _message_field(payload, "citations")
        if citation is not None:
            self.citations[index] = citation
        self.acc.unknown("citation-start", payload)

    def _message_end(self, payload: dict[str, Any], event: ServerSentEvent) -> None:
        delta = object_or_none(payload.get("delta")) or {}
        self.id = self.id or str_or_none(payload.get("id"))
        for key, value in delta.items():
            if key not in ("finish_reason", "usage") and value is not None:
                self.extra[key] = value
        usage = object_or_none(delta.get("usage"))
        if usage:
            self.usage = usage
            self.acc.set_usage(normalise_usage(usage))
        finish = tag_or_none(delta.get("finish_reason"))
        if finish is None:
            self.acc.warn(f"server-sent event #{event.index}: message-end without a finish_reason")
        else:
            self.finish = finish
            failed = finish in _FAILED
            self.acc.finish(0, finish, unified_finish_reason(finish), close=not failed)
            if failed:
                raise _failed_generation(finish, delta, payload, event.index)

    # -- the native response -----------------------------------------------------

    def response(self) -> dict[str, Any]:
        """The chat response a non-streaming call would have returned."""
        message: dict[str, Any] = {"role": "assistant", **self.message}
        if self.contents:
            message["content"] = [self.contents[i].native() for i in sorted(self.contents)]
        if self.tool_plan:
            message["tool_plan"] = _joined(self.tool_plan)
        if self.calls:
            message["tool_calls"] = [self.calls[i].native() for i in sorted(self.calls)]
        if self.citations:
            message["citations"] = [self.citations[i] for i in sorted(self.citations)]
        out: dict[str, Any] = {
            "id": self.id or "",
            "finish_reason": self.finish,
            "message": message,
        }
        if self.usage is not None:
            out["usage"] = self.usage
        choice = self.acc.choices.get(0)
        logprobs = choice.logprobs_content if choice is not None else None
        if logprobs:
            out["logprobs"] = logprobs
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out


def _message(payload: dict[str, Any]) -> Any:
    # Every Cohere event carries its data as delta.message.
    delta = payload.get("delta")
    return delta.get("message") if type(delta) is dict else None


def _message_field(payload: dict[str, Any], key: str) -> Any:
    message = _message(payload)
    return message.get(key) if type(message) is dict else None


def _content_kind(fields: dict[str, Any]) -> str:
    # A content-start without its type: the key it carries says what it is.
    return _THINKING if isinstance(fields.get(_THINKING), str) else _TEXT


def _no_arguments(acc: Accumulator, call: _ToolCall) -> None:
    # Cohere streams no argument delta for a tool without parameters (the
    # non-streaming response has "{}" there): the arguments are {}. Arguments
    # streamed as "null" (Cohere sends them for some such tools) stay as sent:
    # they are valid JSON, and the deltas already said them.
    if not call.arguments().strip():
        acc.replace_arguments(0, call.key, "{}")


def _error_payload(payload: dict[str, Any]) -> bool:
    # Cohere's error body ({"id": ..., "message": ...}, no "type") or a
    # gateway's {"error": {...}} envelope, sent in place of an event.
    if payload.get("error") is not None:
        return True
    return isinstance(payload.get("message"), str)


def _cohere_error(payload: Any, event: ServerSentEvent) -> ProviderError:
    error = provider_error(payload, event.index)
    # Cohere's 5xx answers and its rate limit are transient.
    error.retryable = error.retryable or error.code in ("500", "502", "503", "504", "429")
    return error


def _failed_generation(
    finish: str, delta: dict[str, Any], payload: dict[str, Any], position: int
) -> ProviderError:
    # Cohere ends a generation that failed with finish_reason ERROR (delta.error
    # says why) or TIMEOUT: the message so far is kept, and the provider's
    # failure is raised, retryable (an internal error or a timeout).
    detail = delta.get("error")
    message = detail if isinstance(detail, str) and detail else None
    return ProviderError(
        message or f"the generation ended with finish_reason {finish}",
        code=finish,
        error_type="generation_failed",
        raw=payload,
        retryable=True,
        position=position,
    )
