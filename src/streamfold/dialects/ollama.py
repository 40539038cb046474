"""Ollama's native API: ``/api/chat`` (``ollama``) and ``/api/generate``
(``ollama-generate``).

Ollama streams newline-delimited JSON (``application/x-ndjson``; read by
``framing.JSONSequenceDecoder``), one object per line. A chat line is a
``ChatResponse``: ``model``, ``created_at``, ``message`` (``role``, a piece of
``content``, a piece of ``thinking``, whole ``tool_calls``), ``done``; a
generate line is a ``GenerateResponse``, the same with ``response``,
``thinking`` and ``tool_calls`` at the top level. The last line has ``done:
true``, the ``done_reason`` (``stop``, ``length``, ``load``, ``unload``) and the
metrics: ``prompt_eval_count`` and ``eval_count`` (tokens), ``total_duration``,
``load_duration``, ``prompt_eval_duration`` and ``eval_duration``
(nanoseconds); a generate stream also sends ``context``. A failure after the
stream began is a line ``{"error": "..."}``. ``logprobs``, when asked for,
come per line.

The contract is ``docs/dialects/ollama.md``; each departure from the
reference is a named function below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Final

import msgspec

from ..errors import ProviderError
from ..events import Usage
from ..fold import NO_SINK, Accumulator, PartKind, PartView
from ..sse import ServerSentEvent
from .base import (
    TYPED_REJECTED,
    Dialect,
    arguments_text,
    decode_json,
    int_or_none,
    object_or_none,
    objects,
    protocol_error,
    str_or_none,
    typed_decoder,
)

__all__ = [
    "NATIVE_DONE_REASONS",
    "OllamaChat",
    "OllamaGenerate",
    "native_usage",
    "normalise_usage",
    "unified_done_reason",
]

_DONE_REASONS: Final = {
    "stop": "stop",
    "length": "length",
    # The request only loaded (or unloaded) the model: no answer was asked for.
    "load": "other",
    "unload": "other",
}

#: The other way, for encoders: each unified finish reason's done_reason.
NATIVE_DONE_REASONS: Final = {"stop": "stop", "tool_calls": "stop", "length": "length"}

#: The metrics of the last line: its token counts and durations (nanoseconds).
_METRICS: Final = (
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
)
# Fields folded from every line into the response's own (not copied as sent).
_STREAMED: Final = frozenset({"message", "response", "thinking", "tool_calls", "logprobs"})


# The lines between the first and the last, typed: text or thinking and
# nothing else. Decoded straight into these Structs they cost less than a dict,
# its gets and the copy of its fields; any other field or value (a tool call,
# logprobs, a null) fails validation and the line takes the dict path, which
# folds it the same.
class _TypedMessage(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    role: str = ""
    content: str = ""
    thinking: str = ""


class _TypedChatLine(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    model: str
    created_at: str
    message: _TypedMessage
    done: bool


class _TypedGenerateLine(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    model: str
    created_at: str
    done: bool
    response: str = ""
    thinking: str = ""


def unified_done_reason(raw: str, has_tool_calls: bool = False) -> str:
    """Map a ``done_reason`` to stop, tool_calls, length or other."""
    unified = _DONE_REASONS.get(raw, "other")
    if unified == "stop" and has_tool_calls:
        return _stop_with_tool_calls()
    return unified


def _stop_with_tool_calls() -> str:
    # Ollama ends a turn that calls tools with done_reason "stop" (it has no
    # reason of its own for it): the turn asks for the calls to be run.
    return "tool_calls"


def normalise_usage(raw: dict[str, Any]) -> Usage | None:
    """The usage of the last line's metrics, or ``None`` when it has no count.

    ``prompt_eval_count`` is the prompt's tokens, ``eval_count`` the answer's
    (thinking included: Ollama does not count it apart). A count Ollama left
    out stays ``None``: it omits a count of 0, and counts only the prompt
    tokens it evaluated (a prompt served from its cache may count 0), so an
    absent count is not known to be the prompt's size.
    """
    prompt = int_or_none(raw.get("prompt_eval_count"))
    output = int_or_none(raw.get("eval_count"))
    if prompt is None and output is None:
        return None
    return Usage(
        input_tokens=prompt,
        output_tokens=output,
        total_tokens=None if prompt is None or output is None else prompt + output,
        raw=raw,
    )


def native_usage(usage: Usage) -> dict[str, Any]:
    """The metrics of normalised ``usage``: the counts that are known."""
    out: dict[str, Any] = {}
    if usage.input_tokens is not None:
        out["prompt_eval_count"] = usage.input_tokens
    if usage.output_tokens is not None:
        out["eval_count"] = usage.output_tokens
    return out


class OllamaChat(Dialect):
    """Ollama ``/api/chat`` (``"ollama"``)."""

    name = "ollama"
    #: Where a line's streamed fields are: in its ``message`` (chat) or at its top level.
    _nested: ClassVar[bool] = True
    #: The field of the answer's text.
    _text_field: ClassVar[str] = "content"

    def __init__(self, acc: Accumulator) -> None:
        super().__init__(acc)
        if self._nested:
            self._decode_chat: Callable[[bytes], _TypedChatLine] = typed_decoder(_TypedChatLine)
        else:
            self._decode_generate: Callable[[bytes], _TypedGenerateLine] = typed_decoder(
                _TypedGenerateLine
            )
        self._fields: dict[str, Any] = {}  # the top-level fields, the last value winning
        # Whether the typed path may fold a line: the stream started, and the
        # fields a typed line sets are known (model, created_at) or hold what
        # it would set (done: false).
        self._typed_ready = False
        self._role: str | None = None
        # The last line the typed path folded, whose model, created_at and
        # role are not copied to the fields yet (see _settle).
        self._pending: _TypedChatLine | _TypedGenerateLine | None = None
        # Ollama sends each call whole: kept as sent (never mutated), shared
        # with every snapshot. The streamed text and thinking are the accumulator's.
        self.tool_calls: list[dict[str, Any]] = []
        self.done_reason: str | None = None
        # The typed path's kept parts (see _keep_sink): none yet.
        self._text_sink: Callable[[str], object] = NO_SINK
        self._reasoning_sink: Callable[[str], object] = NO_SINK
        self._text_epoch = self._reasoning_epoch = -1

    @property
    def fields(self) -> dict[str, Any]:
        """The top-level fields of the lines (the streamed ones aside), the
        last value of each winning."""
        if self._pending is not None:
            self._settle()
        return self._fields

    @property
    def role(self) -> str | None:
        """The last role a line's message named."""
        if self._pending is not None:
            self._settle()
        return self._role

    def _settle(self) -> None:
        # The typed path keeps its last line (one store per line instead of
        # three; 12% of its instructions) and its fields are copied when read:
        # every typed line sets the same keys, so only the last one counts.
        line = self._pending
        self._pending = None
        if line is not None:
            fields = self._fields
            fields["model"] = line.model
            fields["created_at"] = line.created_at
            if isinstance(line, _TypedChatLine):
                self._role = line.message.role

    @classmethod
    def detect(cls, event: ServerSentEvent, payload: Any) -> bool:
        """A line with ``model``, ``created_at``, a boolean ``done`` and (chat)
        a ``message`` object or (generate) a ``response`` string."""
        if type(payload) is not dict:
            return False
        if type(payload.get("model")) is not str or type(payload.get("done")) is not bool:
            return False
        if type(payload.get("created_at")) is not str:
            return False
        if cls._nested:
            return type(payload.get("message")) is dict
        return type(payload.get("response")) is str

    def handle(self, event: ServerSentEvent) -> bool:
        """Fold one line.

        Returns:
            ``True`` at the last line (``done: true``).

        Raises:
            ProviderError: an ``{"error": ...}`` line.
            ProtocolError: a line that is not a JSON object.
        """
        if self.fast(event):
            return False
        payload = decode_json(event)
        if type(payload) is not dict:
            raise protocol_error(event, "is not a JSON object")
        if payload.get("error") is not None:
            raise self._error(payload, event)
        acc = self.acc
        model = str_or_none(payload.get("model"))
        acc.start(None, model, None)
        fields = self.fields
        for key, value in payload.items():
            if key not in _STREAMED and value is not None:
                if key == "model" and not model:
                    continue
                fields[key] = value
        self._typed_ready = (
            "model" in fields and "created_at" in fields and fields.get("done") is False
        )
        parts = object_or_none(payload.get("message")) if self._nested else payload
        if parts is not None:
            self._parts(parts, event)
        logprobs = payload.get("logprobs")
        if type(logprobs) is list and logprobs:
            acc.logprobs(0, logprobs)
        if payload.get("done") is True:
            self._done(payload)
            return True
        return False

    def fast_run(self, events: list[ServerSentEvent], i: int) -> int:
        # The typed path (see _TypedChatLine) on each line in turn, the common
        # line in line: one more piece of the text the last one went to (its
        # kept sink, while the epoch holds). Every check comes before any side
        # effect, so a line turned down is left to the dict path. Taken once
        # the dict path has set the fields a typed line sets (_typed_ready),
        # so their order stays the dict path's. In line, not a call to fast
        # per line: 10,000 lines, 89 -> 70 bytecodes each (generate: 75 -> 55).
        if not self._typed_ready:
            return i
        acc, decode, start, count = self.acc, self._decode_chat, i, len(events)
        text_sink, text_epoch = self._text_sink, self._text_epoch
        for i in range(start, count):  # after a return, i is the first line not folded
            try:
                line = decode(events[i].raw)
            except TYPED_REJECTED:
                return i
            message = line.message
            if line.done or not line.model or not message.role:
                return i  # the last line, or one that leaves a field as it was
            self._pending = line  # its fields, copied when read (see _settle)
            content = message.content
            if content and acc.epoch == text_epoch and not message.thinking:
                text_sink(content)
                continue
            self._pieces(message.thinking, content)
            text_sink, text_epoch = self._text_sink, self._text_epoch
        return count

    def fast(self, event: ServerSentEvent) -> bool:
        # The typed path for one line (see fast_run).
        return self.fast_run([event], 0) == 1

    def _pieces(self, thinking: str, content: str) -> None:
        # A typed line's thinking, then its text (the dict path's order), each
        # to its kept part while the accumulator's epoch holds (see _keep_sink).
        acc = self.acc
        if thinking:
            if acc.epoch == self._reasoning_epoch:
                self._reasoning_sink(thinking)
            else:
                self._keep_sink(PartKind.REASONING, acc.reasoning(0, thinking))
        if content:
            if acc.epoch == self._text_epoch:
                self._text_sink(content)
            else:
                self._keep_sink(PartKind.TEXT, acc.text(0, content))

    def _keep_sink(self, kind: PartKind, part: PartView) -> None:
        # The part a typed piece just went to, kept so the next ones append to
        # it without a call (Accumulator.sink) until the accumulator's epoch
        # moves: one choice and no owner, so the epoch is all that can change.
        sink = self.acc.sink(part)
        if kind is PartKind.TEXT:
            self._text_sink, self._text_epoch = sink, self.acc.epoch
        else:
            self._reasoning_sink, self._reasoning_epoch = sink, self.acc.epoch

    def _parts(self, parts: dict[str, Any], event: ServerSentEvent) -> None:
        acc = self.acc
        role = str_or_none(parts.get("role"))
        if role:
            self._role = role
        thinking = parts.get("thinking")
        if type(thinking) is str and thinking:
            acc.reasoning(0, thinking)
        content = parts.get(self._text_field)
        if type(content) is str and content:
            acc.text(0, content)
        for call in objects(parts.get("tool_calls")):
            self._tool_call(call, event)

    def _tool_call(self, call: dict[str, Any], event: ServerSentEvent) -> None:
        # Ollama sends each call whole: started, its arguments, done.
        function = object_or_none(call.get("function")) or {}
        arguments = function.get("arguments")
        if type(arguments) is str:
            text = _arguments_as_text(arguments)
        elif arguments is None:
            text = "{}"
        else:
            text = arguments_text(arguments, event, "function.arguments")
        key = len(self.tool_calls)
        self.tool_calls.append(call)
        self.acc.tool_call(
            0,
            key,
            id=str_or_none(call.get("id")),
            name=str_or_none(function.get("name")),
            arguments=text,
        )
        self.acc.end_tool_call(0, key)

    def _done(self, payload: dict[str, Any]) -> None:
        acc = self.acc
        metrics: dict[str, Any] = {key: payload[key] for key in _METRICS if key in payload}
        usage = normalise_usage(metrics)
        if usage is not None:
            acc.set_usage(usage)
        reason = payload.get("done_reason")
        # Older Ollama versions end a stream with done: true and no done_reason:
        # complete, its finish reason unknown.
        if type(reason) is str and reason:
            self.done_reason = reason
            acc.finish(0, reason, unified_done_reason(reason, bool(self.tool_calls)))

    def _error(self, payload: dict[str, Any], event: ServerSentEvent) -> ProviderError:
        # {"error": "..."}: Ollama's errors are a message, with no code; whether
        # to retry is not said.
        error = payload.get("error")
        message = error if type(error) is str and error else None
        if message is None:
            body = object_or_none(error) or {}
            text = body.get("message")
            message = text if type(text) is str and text else "Ollama reported an error"
        return ProviderError(message, raw=payload, position=event.index)

    # -- the native response -------------------------------------------------------

    def response(self) -> dict[str, Any]:
        """The ``ChatResponse`` a call with ``stream: false`` would have returned."""
        text, thinking, logprobs = self._streamed()
        message: dict[str, Any] = {"role": self.role or "assistant", "content": text}
        if thinking:
            message["thinking"] = thinking
        if self.tool_calls:
            message["tool_calls"] = list(self.tool_calls)
        out: dict[str, Any] = {"model": "", "created_at": "", "message": message, "done": False}
        out.update(self.fields)
        if logprobs:
            out["logprobs"] = logprobs
        return out

    def _streamed(self) -> tuple[str, str | None, Sequence[Any] | None]:
        # The answer, the thinking and the log probabilities, as the accumulator has them.
        choice = self.acc.choices.get(0)
        if choice is None:
            return "", None, None
        text = choice.joined(PartKind.TEXT) or ""
        return text, choice.joined(PartKind.REASONING), choice.logprobs_content


class OllamaGenerate(OllamaChat):
    """Ollama ``/api/generate`` (``"ollama-generate"``): the answer's pieces in
    ``response`` (and ``thinking``, ``tool_calls``) at each line's top level."""

    name = "ollama-generate"
    _nested = False
    _text_field = "response"

    def fast_run(self, events: list[ServerSentEvent], i: int) -> int:
        # OllamaChat.fast_run, for the generate line's shape (see
        # _TypedGenerateLine): its loop written again, a shared one would
        # cost a call per line (the line is all there is).
        if not self._typed_ready:
            return i
        acc, decode, start, count = self.acc, self._decode_generate, i, len(events)
        text_sink, text_epoch = self._text_sink, self._text_epoch
        for i in range(start, count):  # after a return, i is the first line not folded
            try:
                line = decode(events[i].raw)
            except TYPED_REJECTED:
                return i
            if line.done or not line.model:
                return i
            self._pending = line
            content = line.response
            if content and acc.epoch == text_epoch and not line.thinking:
                text_sink(content)
                continue
            self._pieces(line.thinking, content)
            text_sink, text_epoch = self._text_sink, self._text_epoch
        return count

    def response(self) -> dict[str, Any]:
        """The ``GenerateResponse`` a call with ``stream: false`` would have returned."""
        text, thinking, logprobs = self._streamed()
        out: dict[str, Any] = {"model": "", "created_at": "", "response": text}
        if thinking:
            out["thinking"] = thinking
        out["done"] = False
        out.update(self.fields)
        if self.tool_calls:
            out["tool_calls"] = list(self.tool_calls)
        if logprobs:
            out["logprobs"] = logprobs
        return out


def _arguments_as_text(arguments: str) -> str:
    # Ollama sends a call's arguments as a JSON object; a server imitating its
    # API may send their JSON text instead, which is taken as it was sent.
    return arguments
