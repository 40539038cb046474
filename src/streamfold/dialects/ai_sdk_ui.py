"""The Vercel AI SDK UI message stream (``x-vercel-ai-ui-message-stream: v1``).

What a JavaScript backend built on the AI SDK (``createUIMessageStreamResponse``)
or a compatible Python one sends to ``useChat``: server-sent events, each
``data:`` a JSON chunk with a ``type``, ended by ``data: [DONE]``. A stream is
one assistant message: ``start`` (its id and metadata), steps
(``start-step``/``finish-step``), parts with ids (``text-start``,
``text-delta``, ``text-end``; ``reasoning-*``), tool calls keyed by
``toolCallId`` (``tool-input-start``, ``tool-input-delta``,
``tool-input-available``, or ``tool-input-error``; their outputs when the
backend ran the tool), sources, files, ``data-*`` parts, and ``finish``
(its ``finishReason``, message metadata). ``error`` reports a failure,
``abort`` an aborted stream.

The chunk schemas are the AI SDK's ``uiMessageChunkSchema``
(``packages/ai/src/ui-message-stream/ui-message-chunks.ts``); the native
response is the ``UIMessage`` that the SDK's ``readUIMessageStream`` builds
from the same chunks. Usage, model and creation time are not part of the
protocol: they travel in the message metadata, read here where they are
(``docs/dialects/ai-sdk-ui.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgspec

from ..errors import ProtocolError, ProviderError, shorten
from ..events import Usage
from ..fold import FREE_TEXT_KIND, NO_SINK, Accumulator, PartKind, ToolCallView
from ..partial_json import MISSING, PartialJSONError
from ..sse import ServerSentEvent
from .base import (
    TYPED_REJECTED,
    UNKEPT,
    Dialect,
    NativePart,
    decode_json,
    int_or_none,
    str_or_none,
    typed_decoder,
)

__all__ = [
    "HEADERS",
    "METADATA_KEY",
    "NATIVE_FINISH",
    "AISDKUIMessageStream",
    "native_usage",
    "normalise_usage",
    "unified_finish_reason",
]

_CHOICE: Final = 0  # one message: choice 0 of the unified view
_TEXT: Final = PartKind.TEXT
_REASONING: Final = PartKind.REASONING

#: The response headers of a UI message stream (the AI SDK's ``UI_MESSAGE_STREAM_HEADERS``
#: less ``content-type`` and the hop-by-hop ``connection``).
HEADERS: Final = {
    "x-vercel-ai-ui-message-stream": "v1",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
}

#: The ``providerMetadata`` key under which streamfold puts a reasoning part's
#: ``signature`` and ``encryptedContent`` (like pydantic-ai's ``pydantic_ai`` key).
METADATA_KEY: Final = "streamfold"

_FINISH: Final = {
    "stop": "stop",
    "length": "length",
    "content-filter": "content_filter",
    "tool-calls": "tool_calls",
    "error": "error",
    # The stream ended without the provider's completion signal (AI SDK 7).
    "interrupted": "other",
    "other": "other",
}
#: The other way, for encoders: each unified finish reason's ``finishReason``.
NATIVE_FINISH: Final = {
    unified: raw for raw, unified in reversed(_FINISH.items()) if raw != "interrupted"
}

# The chunk types of uiMessageChunkSchema (and data-*), for detection.
_CHUNK_TYPES: Final = frozenset(
    {
        "start",
        "finish",
        "abort",
        "message-metadata",
        "start-step",
        "finish-step",
        "reset-step",
        "text-start",
        "text-delta",
        "text-end",
        "reasoning-start",
        "reasoning-delta",
        "reasoning-end",
        "tool-input-start",
        "tool-input-delta",
        "tool-input-available",
        "tool-input-error",
        "tool-output-available",
        "tool-output-error",
        "tool-output-denied",
        "tool-approval-request",
        "tool-approval-response",
        "source-url",
        "source-document",
        "file",
        "reasoning-file",
        "custom",
        "steering-message",
    }
)
# Chunks that may come before `start` without starting the message.
_BEFORE_START: Final = frozenset({"start", "error", "abort", "message-metadata"})

# providerMetadata of a reasoning part: where each AI SDK provider keeps the
# signature or the encrypted content (anthropic, openai, google and vertex), and ours.
_SIGNATURES: Final = (
    (METADATA_KEY, "signature"),
    ("anthropic", "signature"),
    ("google", "thoughtSignature"),
    ("vertex", "thoughtSignature"),
)
_ENCRYPTED: Final = (
    (METADATA_KEY, "encryptedContent"),
    ("anthropic", "redactedData"),
    ("openai", "reasoningEncryptedContent"),
)

_encode_json = msgspec.json.Encoder().encode


def unified_finish_reason(raw: str) -> str:
    """Map a ``finishReason`` to stop, length, tool_calls, content_filter, error or other."""
    return _FINISH.get(raw, "other")


def normalise_usage(raw: dict[str, Any]) -> Usage:
    """Normalise a usage object from the message metadata: the AI SDK's
    ``LanguageModelUsage`` (``inputTokens``, ``inputTokenDetails``,
    ``outputTokens``, ``outputTokenDetails``, ``totalTokens``), or its AI SDK 5
    form (``cachedInputTokens``, ``reasoningTokens``). Counts not reported stay
    ``None``."""
    input_details = raw.get("inputTokenDetails")
    output_details = raw.get("outputTokenDetails")
    cache_read = cache_write = reasoning = None
    if type(input_details) is dict:
        cache_read = int_or_none(input_details.get("cacheReadTokens"))
        cache_write = int_or_none(input_details.get("cacheWriteTokens"))
    if type(output_details) is dict:
        reasoning = int_or_none(output_details.get("reasoningTokens"))
    if cache_read is None:
        cache_read = _sdk5_count(raw, "cachedInputTokens")
    if reasoning is None:
        reasoning = _sdk5_count(raw, "reasoningTokens")
    return Usage(
        input_tokens=int_or_none(raw.get("inputTokens")),
        output_tokens=int_or_none(raw.get("outputTokens")),
        total_tokens=int_or_none(raw.get("totalTokens")),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=reasoning,
        raw=raw,
    )


def native_usage(usage: Usage) -> dict[str, Any]:
    """The ``LanguageModelUsage`` of normalised ``usage``, the inverse of
    ``normalise_usage``: only the counts that are known."""
    out: dict[str, Any] = {}
    if usage.input_tokens is not None:
        out["inputTokens"] = usage.input_tokens
    details = {}
    if usage.cache_read_tokens is not None:
        details["cacheReadTokens"] = usage.cache_read_tokens
    if usage.cache_write_tokens is not None:
        details["cacheWriteTokens"] = usage.cache_write_tokens
    if details:
        out["inputTokenDetails"] = details
    if usage.output_tokens is not None:
        out["outputTokens"] = usage.output_tokens
    if usage.reasoning_tokens is not None:
        out["outputTokenDetails"] = {"reasoningTokens": usage.reasoning_tokens}
    if usage.total_tokens is not None:
        out["totalTokens"] = usage.total_tokens
    return out


def _sdk5_count(raw: dict[str, Any], key: str) -> int | None:
    # AI SDK 5's LanguageModelUsage had cachedInputTokens and reasoningTokens at
    # the top level; applications still forward it as message metadata.
    return int_or_none(raw.get(key))


def _merge(base: Any, update: Any) -> Any:
    # The AI SDK's mergeObjects: objects merge key by key, anything else replaces.
    if type(base) is dict and type(update) is dict:
        merged = dict(base)
        for key, value in update.items():
            merged[key] = _merge(merged.get(key), value)
        return merged
    return update


def _metadata_value(metadata: Any, pairs: tuple[tuple[str, str], ...]) -> str | None:
    if type(metadata) is not dict:
        return None
    for provider, key in pairs:
        entry = metadata.get(provider)
        if type(entry) is dict:
            value = entry.get(key)
            if isinstance(value, str) and value:
                return value
    return None


# The hot chunks, typed: a text, reasoning or tool-input piece, nothing else.
# Decoded straight into these Structs they cost less than a dict and its gets;
# any other chunk, field or value (providerMetadata, a numeric id) fails
# validation and takes the dict path, which folds it the same.
class _TypedTextDelta(
    msgspec.Struct, tag_field="type", tag="text-delta", forbid_unknown_fields=True, gc=False
):
    id: str
    delta: str


class _TypedReasoningDelta(
    msgspec.Struct, tag_field="type", tag="reasoning-delta", forbid_unknown_fields=True, gc=False
):
    id: str
    delta: str


class _TypedToolDelta(
    msgspec.Struct, tag_field="type", tag="tool-input-delta", forbid_unknown_fields=True, gc=False
):
    # Named as the text and reasoning deltas' fields: one shape to read.
    id: str = msgspec.field(name="toolCallId")
    delta: str = msgspec.field(name="inputTextDelta")


class _TextPart(NativePart):
    """A text or reasoning part of the message: the owner of its accumulator parts."""

    __slots__ = ("id", "kind", "metadata")

    def __init__(self, kind: PartKind, id: str, metadata: Any) -> None:
        super().__init__()
        self.kind = kind
        self.id = id
        self.metadata = metadata

    def _native(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.kind.value}
        if self.kind is PartKind.REASONING:
            out["id"] = self.id
        out["text"] = self.text()
        if self.metadata is not None:
            out["providerMetadata"] = self.metadata
        out["state"] = "done" if self.done else "streaming"
        return out


class _ToolPart:
    """A tool call of the message (``tool-<name>``, or ``dynamic-tool``)."""

    __slots__ = (
        "built",
        "built_at",
        "call",
        "call_id",
        "chunk",
        "epoch",
        "fields",
        "frame",
        "input",
        "revision",
        "sink",
        "state",
    )

    def __init__(self, chunk: dict[str, Any], call: ToolCallView, call_id: str) -> None:
        self.chunk = chunk  # the chunk that introduced it
        self.call_id = call_id  # its key, in _tools and the accumulator
        self.call = call  # the accumulator's call: its input as JSON text
        # Grows with every chunk that reaches the call: the native part is built
        # again only then.
        self.revision = 0
        self.built: dict[str, Any] | None = None
        self.built_at = -1
        self.state = "input-streaming"
        self.input: Any = MISSING
        self.fields: dict[str, Any] = {}  # output, errorText, ... as the later chunks set them
        self.frame: tuple[dict[str, Any], bool, dict[str, Any]] | None = None  # see _native
        # The fold of the next piece of its input (Accumulator.arguments_sink),
        # valid while the accumulator's epoch is this one and its input streams.
        self.sink: Callable[[str], object] = NO_SINK
        self.epoch = UNKEPT

    def native(self) -> dict[str, Any]:
        if self.built is not None and self.built_at == self.revision:
            return self.built
        self.built = None  # let go of the old input first: it may then grow in place
        self.built, self.built_at = self._native(), self.revision
        return self.built

    def _native(self) -> dict[str, Any]:
        streaming = self.state == "input-streaming"
        # While its input streams, only the input changes: the rest of the
        # part, framed once, is shared by every build (a snapshot after every
        # piece builds it each time).
        frame = self.frame if streaming else None
        if frame is None:
            frame = self._frame()
            if streaming:
                self.frame = frame
        head, text, tail = frame
        out = head.copy()
        value = self.input
        if value is MISSING and streaming:
            call = self.call
            arguments = call.arguments
            value = _partial(call, arguments, text)
            if arguments:
                out["rawInput"] = arguments
        if value is not MISSING:
            out["input"] = value
        if tail:
            out.update(tail)
        return out

    def _frame(self) -> tuple[dict[str, Any], bool, dict[str, Any]]:
        # What comes before the input (in the SDK's key order), whether the
        # input is text, and what comes after it. Its chunk is replaced, and its
        # fields set, only as its state leaves input-streaming.
        chunk = self.chunk
        name = chunk.get("toolName")
        name = name if isinstance(name, str) else ""
        head: dict[str, Any]
        if chunk.get("dynamic") is True:
            head = {"type": "dynamic-tool", "toolName": name}
        else:
            head = {"type": f"tool-{name}"}
        head["toolCallId"] = chunk.get("toolCallId")
        head["state"] = self.state
        for key in ("title", "toolMetadata", "providerExecuted"):
            if chunk.get(key) is not None:
                head[key] = chunk[key]
        tail: dict[str, Any] = {}
        encoding = chunk.get("inputEncoding")
        if encoding is not None and self.state == "input-streaming":
            tail["inputEncoding"] = encoding  # the SDK drops it once the input is whole
        metadata = chunk.get("providerMetadata")
        if metadata is not None:
            tail["callProviderMetadata"] = metadata
        tail.update(self.fields)
        return head, encoding == "text", tail


def _partial(call: ToolCallView, arguments: str, text: bool) -> Any:
    # The input of a call still streaming (its arguments so far): the partial
    # JSON (parsed incrementally, snapshot after snapshot).
    if text:
        return arguments if arguments else MISSING
    if not arguments or arguments.isspace():  # never strip(): a copy per snapshot
        return MISSING
    try:
        return call.partial_arguments()
    except PartialJSONError:
        return MISSING


_Part = Any  # _TextPart | _ToolPart | dict (a step boundary, a source, a file, data)


class AISDKUIMessageStream(Dialect):
    """The AI SDK UI message stream (``"ai-sdk-ui"``)."""

    name = "ai-sdk-ui"

    def __init__(self, acc: Accumulator) -> None:
        super().__init__(acc)
        self._decode_typed: Callable[
            [bytes], _TypedTextDelta | _TypedReasoningDelta | _TypedToolDelta
        ] = typed_decoder(_TypedTextDelta | _TypedReasoningDelta | _TypedToolDelta)
        self.message_id: str | None = None
        self.metadata: Any = None
        self.parts: list[_Part] = []
        self.finish_reason: str | None = None
        self._text: dict[tuple[PartKind, str], _TextPart] = {}  # open parts by (kind, id)
        self._tools: dict[str, _ToolPart] = {}
        self._usage_raw: Any = None
        self._started = False  # the accumulator's started, as the typed path reads it
        # The typed path's last text or reasoning part (see _typed_event).
        self._hot_part: _TextPart | None = None
        # The sink (Accumulator.sink) of the part a typed delta went to last,
        # for deltas of its chunk type and id while the accumulator's epoch is
        # _hot_epoch (-1: none kept).
        self._hot_sink: Callable[[str], object] = NO_SINK
        self._sink_part = _TextPart(_TEXT, "", None)  # its part (a placeholder until then)
        self._hot_type: type[msgspec.Struct] = _TypedTextDelta
        self._hot_id = ""
        self._hot_epoch = -1

    @classmethod
    def detect(cls, event: ServerSentEvent, payload: Any) -> bool:
        """A chunk of the UI message stream: a ``type`` of the AI SDK's chunk
        schema (or ``data-*``); its ``error`` chunk has an ``errorText``."""
        if type(payload) is not dict:
            return False
        kind = payload.get("type")
        if type(kind) is not str:
            return False
        if kind == "error":
            return isinstance(payload.get("errorText"), str)
        return kind in _CHUNK_TYPES or (kind.startswith("data-") and "data" in payload)

    def handle(self, event: ServerSentEvent) -> bool:
        """Fold one chunk (or the ``[DONE]`` marker).

        Returns:
            ``True`` at ``finish`` or ``[DONE]``.

        Raises:
            ProviderError: an ``error`` or ``abort`` chunk.
            ProtocolError: the data is not a JSON object with a ``type``, or a
                delta for a part that never started.
        """
        if self.fast(event):
            return False
        if event.raw == b"[DONE]":
            self._done_marker(event)
            return True
        chunk = decode_json(event)
        kind = chunk.get("type") if type(chunk) is dict else None
        if type(kind) is not str:
            raise _protocol(event, "is not a chunk (a JSON object with a type)")
        if not self.acc.started and kind not in _BEFORE_START:
            self.acc.start(None, None, None)  # no `start` chunk: a nameless message
            self._started = True
        handler = _HANDLERS.get(kind)
        if handler is not None:
            return handler(self, chunk, event) is True
        if kind.startswith("data-"):
            self._data(chunk)
        else:
            self.acc.unknown(kind, chunk)
        return False

    def fast_run(self, events: list[ServerSentEvent], i: int) -> int:
        # fast() on each chunk in turn, with the common delta in line: the
        # next piece of a call whose input streams to its kept sink, or the
        # next delta of the text or reasoning part the last one went to. Any
        # other typed chunk goes to _typed_event, which folds it or turns it
        # down; every check comes before any side effect. In line, not a
        # call to _typed_event: parallel calls 152 -> 122 bytecodes per event.
        start, count = i, len(events)
        acc = self.acc
        decode, tools_get = self._decode_typed, self._tools.get
        hot_type, hot_id, hot_epoch = self._hot_type, self._hot_id, self._hot_epoch
        hot_sink, sink_part = self._hot_sink, self._sink_part
        for i in range(start, count):  # after a break, i is the first chunk not folded
            try:
                typed = decode(events[i].raw)
            except TYPED_REJECTED:
                break
            kind_of = type(typed)
            if kind_of is _TypedToolDelta:
                tool = tools_get(typed.id)
                if tool is not None and tool.epoch == acc.epoch:
                    # Its kept sink: its input still streams (a tool output
                    # unkeeps it) and its call is not ended, typed or replaced
                    # since (each moves the epoch, as the calls' first
                    # interleaving does).
                    tool.built = None  # built again: what a revision bump does, for less
                    if typed.delta:
                        tool.sink(typed.delta)
                    continue
            elif kind_of is hot_type and typed.id == hot_id and acc.epoch == hot_epoch:
                # The next delta of the part the last one went to (never a
                # call's: _hot_type is a text or reasoning delta). The epoch
                # proves what _typed_event checks: the message started, the
                # part is still open (its end, or a new part of its id, moves
                # it) and it holds the accumulator's open part of its kind.
                sink_part.built = None  # built again: what a revision bump does, for less
                if typed.delta:
                    hot_sink(typed.delta)
                continue
            if not self._typed_event(typed):
                break
            hot_type, hot_id, hot_epoch = self._hot_type, self._hot_id, self._hot_epoch
            hot_sink, sink_part = self._hot_sink, self._sink_part
        else:
            i = count
        return i

    def fast(self, event: ServerSentEvent) -> bool:
        # The typed path for one chunk (see fast_run, which the parser calls
        # on the chunks after each one the dict path took).
        return self.fast_run([event], 0) == 1

    def _typed_event(self, typed: _TypedTextDelta | _TypedReasoningDelta | _TypedToolDelta) -> bool:
        # A decoded delta fast_run did not fold in line: True when folded
        # here. Every check comes before any side effect, so a False leaves the
        # chunk to the dict path (which raises the precise error).
        kind_of = type(typed)
        if kind_of is _TypedToolDelta:
            # A call found by its id (a message with calls has started, and no
            # call has an empty id), its first kept piece or one after the
            # epoch moved.
            tool = self._tools.get(typed.id)
            if tool is None:
                return False
            tool.built = None  # built again: what a revision bump does, for less
            delta = typed.delta
            acc = self.acc
            if tool.epoch == acc.epoch:
                if delta:
                    tool.sink(delta)
                return True
            if delta and tool.state == "input-streaming":
                acc.tool_arguments(_CHOICE, tool.call_id, delta)  # its hash is known
                tool.sink, tool.epoch = acc.arguments_sink(_CHOICE, tool.call_id), acc.epoch
            return True
        if not self._started:
            return False
        kind = _TEXT if kind_of is _TypedTextDelta else _REASONING
        part = self._hot_part
        if part is None or part.done or part.kind is not kind or part.id != typed.id:
            part = self._text.get((kind, typed.id)) if typed.id else None
            if part is None or part.done:
                return False
            self._hot_part = part
        part.revision += 1
        delta = typed.delta
        if delta:
            acc = self.acc
            if kind is _TEXT:
                handle = acc.text(_CHOICE, delta, part)
            else:
                handle = acc.reasoning(_CHOICE, delta, part)
            held = part.parts  # part.add(handle), inlined
            if not held or held[-1] is not handle:
                held.append(handle)
            # Kept for the next deltas of this part (see fast_run).
            self._hot_sink, self._sink_part, self._hot_epoch = acc.sink(handle), part, acc.epoch
            self._hot_type, self._hot_id = kind_of, typed.id
        return True

    # -- the message -------------------------------------------------------------------

    def response(self) -> dict[str, Any]:
        """The ``UIMessage`` the AI SDK's ``readUIMessageStream`` builds from the chunks."""
        out: dict[str, Any] = {"id": self.message_id or "", "role": "assistant"}
        if self.metadata is not None:
            out["metadata"] = self.metadata
        out["parts"] = [p if type(p) is dict else p.native() for p in self.parts]
        return out

    # -- chunks --------------------------------------------------------------------------

    def _start(self, chunk: dict[str, Any], event: ServerSentEvent) -> None:
        message_id = str_or_none(chunk.get("messageId"))
        if message_id is not None:
            self.message_id = message_id
        self._metadata(chunk.get("messageMetadata"))
        # The message's id, and the model where the metadata names one (the
        # protocol has no field for it; streamfold's encoder puts it there).
        metadata = self.metadata if type(self.metadata) is dict else {}
        self.acc.start(message_id, str_or_none(metadata.get("model")), None)
        self._started = True

    def _metadata(self, metadata: Any) -> None:
        if metadata is None:
            return
        self.metadata = metadata if self.metadata is None else _merge(self.metadata, metadata)
        if type(metadata) is not dict:
            return
        usage = metadata.get("usage")
        if type(usage) is not dict:
            usage = metadata.get("totalUsage")
        if type(usage) is dict and usage != self._usage_raw:
            self._usage_raw = usage
            self.acc.set_usage(normalise_usage(usage))

    def _message_metadata(self, chunk: dict[str, Any], event: ServerSentEvent) -> None:
        self._metadata(chunk.get("messageMetadata"))

    def _finish(self, chunk: dict[str, Any], event: ServerSentEvent) -> bool:
        self._metadata(chunk.get("messageMetadata"))
        raw = chunk.get("finishReason")
        if isinstance(raw, str) and raw:
            self.finish_reason = raw
            self.acc.finish(_CHOICE, raw, unified_finish_reason(raw))
        return True

    def _done_marker(self, event: ServerSentEvent) -> None:
        # The AI SDK ends every stream it closes normally with [DONE] (after
        # `finish` when the stream sends one): the end of the message.
        if not self.acc.started:
            self.acc.start(None, None, None)

    def _step(self, chunk: dict[str, Any], event: ServerSentEvent) -> None:
        if chunk.get("type") == "start-step":
            self.parts.append({"type": "step-start"})

    def _reset_step(self, chunk: dict[str, Any], event: ServerSentEvent) -> None:
        # The backend retried a step: its parts so far are void. The fold keeps
        # streamed text in order and cannot take a step's part back.
        self.acc.warn(
            f"server-sent event #{event.index}: reset-step: the parts of the step it voids are kept"
        )
        self.acc.unknown("reset-step", chunk)

    def _error(self, chunk: dict[str, Any], event: ServerSentEvent) -> None:
        text = chunk.get("errorText")
        message = text if isinstance(text, str) and text else "the stream reported an error"
        raise ProviderError(message, raw=chunk, position=event.index)

    def _abort(self, chunk: dict[str, Any], event: ServerSentEvent) -> None:
        # The backend aborted the stream (the user stopped it, or a timeout):
        # the message is not complete.
        reason = str_or_none(chunk.get("reason"))
        message = "the stream was aborted" + (f": {reason}" if reason else "")
        raise ProviderError(
            message, code="abort", error_type="abort", raw=chunk, position=event.index
        )

    # -- text and reasoning ------------------------------------------------------------

    def _part_start(self, chunk: dict[str, Any], event: ServerSentEvent) -> None:
        kind = PartKind.REASONING if chunk["type"] == "reasoning-start" else PartKind.TEXT
        part_id = _part_id(chunk, event)
        part = _TextPart(kind, part_id, chunk.get("providerMetadata"))
        self._text[(kind, part_id)] = part
        self._hot_part = None  # it may have been the part of this id
        self._hot_epoch = -1  # and its sink with it
        self.parts.append(part)
        if kind is PartKind.REASONING:
            # A reasoning part may carry no text (redacted): it still gets its done.
            part.add(self.acc.begin_part(_CHOICE, kind, part))

    def _part_delta(self, chunk: dict[str, Any], event: ServerSentEvent) -> None:
        kind = PartKind.REASONING if chunk["type"] == "reasoning-delta" else PartKind.TEXT
        part = self._text.get((kind, _part_id(chunk, event)))
        if part is None or part.done:
            raise _protocol(event, f"a {chunk['type']} for a part that never started")
        part.revision += 1
        metadata = chunk.get("providerMetadata")
        if metadata is not None:
            part.metadata = metadata
        delta = chunk.get("delta")
        if isinstance(delta, str) and delta:
            # The part owns what the accumulator holds of it: a delta for
            # another part of its kind ends the one before (never merged).
            if kind is PartKind.TEXT:
                part.add(self.acc.text(_CHOICE, delta, part))
            else:
                part.add(self.acc.reasoning(_CHOICE, delta, part))

    def _part_end(self, chunk: dict[str, Any], event: ServerSentEvent) -> None:
        kind = PartKind.REASONING if chunk["type"] == "reasoning-end" else PartKind.TEXT
        part_id = _part_id(chunk, event)
        part = self._text.pop((kind, part_id), None)
        if part is None:
            raise _protocol(event, f"a {chunk['type']} for a part that never started")
        part.revision += 1
        part.done = True
        metadata = chunk.get("providerMetadata")
        if metadata is not None:
            part.metadata = metadata
        if kind is PartKind.REASONING:
            self.acc.reasoning_signature(
                _CHOICE,
                signature=_metadata_value(part.metadata, _SIGNATURES),
                encrypted_content=_metadata_value(part.metadata, _ENCRYPTED),
                owner=part,
            )
        self.acc.end_part(_CHOICE, kind, owner=part)

    # -- tool calls --------------------------------------------------------------------

    def _tool(self, chunk: dict[str, Any], event: ServerSentEvent) -> _ToolPart:
        call_id = str_or_none(chunk.get("toolCallId"))
        if call_id is None:
            raise _protocol(event, f"a {chunk.get('type')} without a toolCallId")
        part = self._tools.get(call_id)
        if part is None:
            text = chunk.get("inputEncoding") == "text"
            call = self.acc.tool_call(
                _CHOICE,
                call_id,
                id=call_id,
                name=str_or_none(chunk.get("toolName")),
                kind=FREE_TEXT_KIND if text else "function",
                server=chunk.get("providerExecuted") is True,
            )
            part = self._tools[call_id] = _ToolPart(chunk, call, call_id)
            self.parts.append(part)
        part.revision += 1
        return part

    def _tool_start(self, chunk: dict[str, Any], event: ServerSentEvent) -> None:
        self._tool(chunk, event)

    def _tool_delta(self, chunk: dict[str, Any], event: ServerSentEvent) -> None:
        call_id = str_or_none(chunk.get("toolCallId"))
        part = self._tools.get(call_id) if call_id is not None else None
        if part is None:
            raise _protocol(event, "a tool-input-delta for a call that never started")
        part.revision += 1
        delta = chunk.get("inputTextDelta")
        if isinstance(delta, str) and delta and part.state == "input-streaming":
            self.acc.tool_call(_CHOICE, call_id, arguments=delta)

    def _tool_input(self, chunk: dict[str, Any], event: ServerSentEvent) -> None:
        # tool-input-available (or -error): the input is whole. When no delta
        # streamed it, the input sent whole is the arguments.
        part = self._tool(chunk, event)
        call_id = str_or_none(chunk.get("toolCallId"))
        for key in ("title", "toolMetadata", "providerExecuted", "dynamic", "providerMetadata"):
            if chunk.get(key) is not None:
                part.chunk = {**part.chunk, key: chunk[key]}
        value = chunk.get("input")
        part.input = value
        part.epoch = UNKEPT  # its input is whole: no sink (its end moves the epoch too)
        if chunk["type"] == "tool-input-error":
            part.state = "output-error"
            part.fields["errorText"] = chunk.get("errorText")
        else:
            part.state = "input-available"
        if not part.call.arguments and value is not None:
            text = part.chunk.get("inputEncoding") == "text" and isinstance(value, str)
            arguments = value if text else _json_text(value)
            self.acc.tool_call(_CHOICE, call_id, arguments=arguments)
        self.acc.end_tool_call(_CHOICE, call_id)

    def _tool_result(self, chunk: dict[str, Any], event: ServerSentEvent) -> None:
        # The backend ran the tool (tool-output-*): the call is not the caller's
        # to run any more.
        call_id = str_or_none(chunk.get("toolCallId"))
        part = self._tools.get(call_id) if call_id is not None else None
        if part is not None:
            part.revision += 1
            part.epoch = UNKEPT  # its input no longer streams: no sink
            kind = chunk["type"]
            if kind == "tool-output-available":
                part.state = "output-available"
                part.fields["output"] = chunk.get("output")
                if chunk.get("preliminary") is not None:
                    part.fields["preliminary"] = chunk["preliminary"]
            elif kind == "tool-output-error":
                part.state = "output-error"
                part.fields["errorText"] = chunk.get("errorText")
            else:
                part.state = "output-denied"
            self.acc.tool_call(_CHOICE, call_id, server=True)
        self.acc.unknown(chunk["type"], chunk)

    # -- other parts -------------------------------------------------------------------

    def _kept(self, chunk: dict[str, Any], event: ServerSentEvent) -> None:
        self.parts.append(chunk)
        self.acc.unknown(chunk["type"], chunk)

    def _data(self, chunk: dict[str, Any]) -> None:
        # data-* parts: transient ones are not kept; one with a known id replaces it.
        if chunk.get("transient") is not True:
            data_id = chunk.get("id")
            for position, part in enumerate(self.parts):
                if (
                    data_id is not None
                    and type(part) is dict
                    and part.get("type") == chunk["type"]
                    and part.get("id") == data_id
                ):
                    self.parts[position] = {**part, "data": chunk.get("data")}
                    break
            else:
                self.parts.append(chunk)
        self.acc.unknown(chunk["type"], chunk)


def _json_text(value: Any) -> str:
    # A tool input sent whole (no deltas), as compact JSON text.
    try:
        return _encode_json(value).decode()
    except (TypeError, ValueError, OverflowError):
        return ""


def _part_id(chunk: dict[str, Any], event: ServerSentEvent) -> str:
    part_id = str_or_none(chunk.get("id"))
    if part_id is None:
        raise _protocol(event, f"a {chunk.get('type')} without an id")
    return part_id


def _protocol(event: ServerSentEvent, what: str) -> ProtocolError:
    return ProtocolError(
        f"server-sent event #{event.index}: {what}: {shorten(event.raw)!r}",
        excerpt=shorten(event.raw),
        position=event.index,
    )


_Handler = Any

_HANDLERS: Final[dict[str, _Handler]] = {
    "start": AISDKUIMessageStream._start,
    "finish": AISDKUIMessageStream._finish,
    "message-metadata": AISDKUIMessageStream._message_metadata,
    "start-step": AISDKUIMessageStream._step,
    "finish-step": AISDKUIMessageStream._step,
    "reset-step": AISDKUIMessageStream._reset_step,
    "error": AISDKUIMessageStream._error,
    "abort": AISDKUIMessageStream._abort,
    "text-start": AISDKUIMessageStream._part_start,
    "reasoning-start": AISDKUIMessageStream._part_start,
    "text-delta": AISDKUIMessageStream._part_delta,
    "reasoning-delta": AISDKUIMessageStream._part_delta,
    "text-end": AISDKUIMessageStream._part_end,
    "reasoning-end": AISDKUIMessageStream._part_end,
    "tool-input-start": AISDKUIMessageStream._tool_start,
    "tool-input-delta": AISDKUIMessageStream._tool_delta,
    "tool-input-available": AISDKUIMessageStream._tool_input,
    "tool-input-error": AISDKUIMessageStream._tool_input,
    "tool-output-available": AISDKUIMessageStream._tool_result,
    "tool-output-error": AISDKUIMessageStream._tool_result,
    "tool-output-denied": AISDKUIMessageStream._tool_result,
    "source-url": AISDKUIMessageStream._kept,
    "source-document": AISDKUIMessageStream._kept,
    "file": AISDKUIMessageStream._kept,
    "reasoning-file": AISDKUIMessageStream._kept,
    "custom": AISDKUIMessageStream._kept,
    "steering-message": AISDKUIMessageStream._kept,
}
