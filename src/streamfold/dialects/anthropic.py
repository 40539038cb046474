"""Anthropic Messages: ``message_start`` ... ``message_stop`` event streams.

Spoken by Anthropic's API, Google Vertex AI and Amazon Bedrock's Messages
endpoints for Claude, and the Anthropic-compatible endpoints of other
providers and gateways. A stream is one message: ``message_start`` carries the
message shell, each content block arrives as ``content_block_start``, deltas
and ``content_block_stop`` (blocks are numbered by ``index``),
``message_delta`` carries the stop reason and cumulative usage, and
``message_stop`` ends it. ``ping`` keeps the connection alive; ``error``
reports a failure on an HTTP 200 stream.

What every field of the final Message comes from, and which value wins, is in
``docs/dialects/anthropic.md``. Each departure from Anthropic's documented
format is a named function below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgspec

from ..errors import ProviderError
from ..events import Usage
from ..fold import NO_SINK, Accumulator, PartKind, PartView, ToolCallView, parse_arguments
from ..partial_json import MISSING, PartialJSONError, parse_partial
from ..sse import ServerSentEvent
from .base import (
    TYPED_REJECTED,
    UNKEPT,
    Dialect,
    KeptTop,
    NativePart,
    call_value,
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

__all__ = [
    "NATIVE_STOP_REASONS",
    "SERVER_TOOL_KINDS",
    "AnthropicMessages",
    "native_usage",
    "normalise_usage",
    "unified_stop_reason",
]

_encode_input = msgspec.json.Encoder().encode

_EVENT_TYPES: Final = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
    }
)

_STOP_REASONS: Final = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    # The request plus the answer reached the model's context window: the
    # answer was cut, like max_tokens.
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    # Streaming classifiers stopped the answer (details in stop_details).
    "refusal": "content_filter",
    # A long-running server-tool turn was paused; send the message back to continue.
    "pause_turn": "other",
}

#: The other way, for encoders: each unified finish reason's stop_reason, the first
#: above that means it. "other" has none of its own (pause_turn means more than that),
#: nor has "error".
NATIVE_STOP_REASONS: Final = {
    unified: raw for raw, unified in reversed(_STOP_REASONS.items()) if unified != "other"
}

# Error types Anthropic documents as transient (https://docs.claude.com/en/api/errors):
# 429 rate_limit_error, 500 api_error, 504 timeout_error, 529 overloaded_error.
_RETRYABLE_ERRORS: Final = frozenset(
    {"rate_limit_error", "api_error", "timeout_error", "overloaded_error"}
)

# Block types the event model represents; any other block is kept in the
# native Message as sent and reported as an ``unknown`` event.
_TEXT, _THINKING, _REDACTED = "text", "thinking", "redacted_thinking"


# The hot event, typed: a text, thinking or tool-input piece and nothing else.
# Decoded straight into these Structs it costs less than a dict and its gets;
# any other field or value (citations, an extra key, a wrong type) fails
# validation and the event takes the dict path, which folds it the same. Each
# kind's piece is ``piece``, whatever its wire name: a block reads it alike.
class _TypedText(
    msgspec.Struct, tag_field="type", tag="text_delta", forbid_unknown_fields=True, gc=False
):
    piece: str = msgspec.field(name="text")


class _TypedThinking(
    msgspec.Struct, tag_field="type", tag="thinking_delta", forbid_unknown_fields=True, gc=False
):
    piece: str = msgspec.field(name="thinking")


class _TypedInput(
    msgspec.Struct, tag_field="type", tag="input_json_delta", forbid_unknown_fields=True, gc=False
):
    piece: str = msgspec.field(name="partial_json")


class _TypedBlockDelta(
    msgspec.Struct,
    tag_field="type",
    tag="content_block_delta",
    forbid_unknown_fields=True,
    gc=False,
):
    index: int
    delta: _TypedText | _TypedThinking | _TypedInput


_TYPED_DELTAS: Final[dict[str, type]] = {_TEXT: _TypedText, _THINKING: _TypedThinking}


# Tool-use blocks and the ``kind`` of their tool_call events. Only ``tool_use``
# is executed by the caller; the server runs the others itself.
_TOOL_KINDS: Final = {
    "tool_use": "function",
    "server_tool_use": "server_tool_use",
    "mcp_tool_use": "mcp_tool_use",
}
_CLIENT_KIND: Final = "function"
#: The ``kind`` of tool calls that the provider runs itself (not the caller's to run).
SERVER_TOOL_KINDS: Final = frozenset(kind for kind in _TOOL_KINDS.values() if kind != _CLIENT_KIND)

# message_delta fields set as a group with the stop reason (see _message_delta);
# every other delta field is kept when not null.
_STOP_FIELDS: Final = ("stop_reason", "stop_sequence", "stop_details")
# Message fields a message_delta never sets directly.
_OWN_FIELDS: Final = frozenset({"type", "content", "usage"})


def unified_stop_reason(raw: str) -> str:
    """Map an Anthropic ``stop_reason`` to stop, length, tool_calls,
    content_filter, error or other."""
    return _STOP_REASONS.get(raw, "other")


def normalise_usage(raw: dict[str, Any]) -> Usage:
    """Normalise an Anthropic ``usage`` object; counts not reported stay ``None``.

    Anthropic's ``input_tokens`` excludes cached tokens; the normalised
    ``input_tokens`` is the whole prompt (``input_tokens`` +
    ``cache_creation_input_tokens`` + ``cache_read_input_tokens``), as the other
    dialects count it.
    """
    uncached = int_or_none(raw.get("input_tokens"))
    cache_write = int_or_none(raw.get("cache_creation_input_tokens"))
    cache_read = int_or_none(raw.get("cache_read_input_tokens"))
    output = int_or_none(raw.get("output_tokens"))
    prompt = None if uncached is None else uncached + (cache_write or 0) + (cache_read or 0)
    details = raw.get("output_tokens_details")
    reasoning = int_or_none(details.get("thinking_tokens")) if type(details) is dict else None
    return Usage(
        input_tokens=prompt,
        output_tokens=output,
        total_tokens=None if prompt is None or output is None else prompt + output,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=reasoning,
        raw=raw,
    )


def native_usage(usage: Usage) -> dict[str, Any]:
    """The Anthropic ``usage`` object of normalised ``usage``, the inverse of
    ``normalise_usage``: ``input_tokens`` is the prompt less its cached tokens.
    Only the counts that are known (never a fake 0); the caller adds what the
    format requires. ``total_tokens`` has no field: it is input plus output."""
    out: dict[str, Any] = {}
    cache_write, cache_read = usage.cache_write_tokens, usage.cache_read_tokens
    if usage.input_tokens is not None:
        out["input_tokens"] = max(0, usage.input_tokens - (cache_write or 0) - (cache_read or 0))
    if cache_write is not None:
        out["cache_creation_input_tokens"] = cache_write
    if cache_read is not None:
        out["cache_read_input_tokens"] = cache_read
    if usage.output_tokens is not None:
        out["output_tokens"] = usage.output_tokens
    if usage.reasoning_tokens is not None:
        out["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return out


class _Block(NativePart):
    """One content block: its start fields, and the handles of what the
    accumulator holds for it (its text, its tool call)."""

    __slots__ = (
        "call",
        "citations",
        "epoch",
        "fields",
        "fold",
        "index",
        "input",
        "json",
        "key",
        "kind",
        "signature",
        "sink",
        "type",
        "typed",
    )

    def __init__(self, segment: int, index: int, fields: dict[str, Any]) -> None:
        self.index = index
        self.key = (segment, index)  # the accumulator's key: unique across a splice
        self.fields = fields
        self.type = tag_or_none(fields.get("type")) or ""
        self.kind = _TOOL_KINDS.get(self.type)
        # The typed delta that the typed path folds into this block (the one
        # that the dict path folds as a text, thinking or tool-input piece).
        self.typed: type | None = _TYPED_DELTAS.get(self.type)
        if self.kind is not None:
            self.typed = _TypedInput
        # The accumulator's method that takes the pieces of a text or thinking block.
        self.fold: Callable[[int, str, Any], PartView] | None = None
        # The fold of the next piece of the block's open part (Accumulator.sink:
        # in a plain fold its append), valid while the accumulator's epoch is this one.
        self.sink: Callable[[str], object] = NO_SINK
        self.epoch = UNKEPT
        # The accumulator's parts that hold the text of a text block or the
        # thinking of a thinking block (one, unless blocks were interleaved),
        # and the call of a tool block.
        super().__init__()
        self.call: ToolCallView | None = None
        self.signature: list[str] = []
        self.citations: list[Any] | None = None
        # A block of an unknown type with an input: its input_json_delta pieces
        # (they reach no accumulator call), joined and parsed once.
        self.json: list[str] = []
        self.input: Any = MISSING  # the parsed input, once the block ended

    def arguments(self) -> str:
        """The tool input received as JSON text."""
        if self.call is not None:
            return self.call.arguments
        pieces = self.json
        if len(pieces) > 1:
            pieces[:] = ["".join(pieces)]
        return pieces[0] if pieces else ""

    def _native(self) -> dict[str, Any]:
        out = dict(self.fields)
        if self.type == _TEXT:
            out["text"] = self.text()
            if self.citations is not None:
                out["citations"] = list(self.citations)
        elif self.type == _THINKING:
            out["thinking"] = self.text()
            if self.signature:
                out["signature"] = "".join(self.signature)
        if "input" in out or self.kind is not None:
            value = self.input if self.done else _streaming_input(self)
            if value is not MISSING:
                out["input"] = value
            elif "input" not in out:
                out["input"] = {}
        return out


def _streaming_input(block: _Block) -> Any:
    # The input of a tool block still streaming (a snapshot's): its call's
    # value so far, without the arguments joined for _partial_input's checks
    # first (a value means they are neither empty nor blank).
    value = call_value(block.call)
    return value if value is not MISSING else _partial_input(block.arguments(), block.call)


def _partial_input(arguments: str, call: ToolCallView | None = None) -> Any:
    # A tool block cut before its end (or not valid JSON): the input parsed as
    # far as it goes, strings kept as received; MISSING keeps the start's input.
    # With the accumulator's call, parsed incrementally (snapshot after snapshot);
    # never strip() the arguments, a copy of them each time.
    if not arguments or arguments.isspace():
        return MISSING
    try:
        value = call.partial_arguments() if call is not None else parse_partial(arguments)
    except PartialJSONError as exc:
        try:
            value = parse_partial(arguments[: exc.position])
        except PartialJSONError:
            value = MISSING
    return {} if value is MISSING else value


class AnthropicMessages(Dialect):
    """Anthropic Messages streams (``"anthropic"``)."""

    name = "anthropic"

    def __init__(self, acc: Accumulator) -> None:
        super().__init__(acc)
        self._decode_block_delta: Callable[[bytes], _TypedBlockDelta] = typed_decoder(
            _TypedBlockDelta
        )
        self.message: dict[str, Any] | None = None  # message_start's message, content aside
        self.message_id: str | None = None
        self.open = False  # between message_start and message_stop
        self.segment = 0  # counts spliced message_starts (see _splice)
        # The current message's blocks by index (a spliced retry starts anew).
        self.blocks: dict[int, _Block] = {}
        self.open_blocks: dict[tuple[int, int], _Block] = {}  # started, not ended
        self.usage: dict[str, Any] | None = None
        self.delta_fields: dict[str, Any] = {}  # message_delta's delta and top-level extras
        self.stop_reason: str | None = None
        self._sorted: list[_Block] = []  # the current message's blocks, by index
        self._sorted_at: tuple[int, int] = (0, 0)
        self._top = KeptTop("content")  # response()'s top level (see _handle_dict)

    @classmethod
    def detect(cls, event: ServerSentEvent, payload: Any) -> bool:
        """An event whose ``type`` is one of the Messages stream events, or an
        Anthropic error envelope (``{"type": "error", "error": {...}}``)."""
        if type(payload) is not dict:
            return False
        kind = payload.get("type")
        if type(kind) is not str:
            return False
        if kind in _EVENT_TYPES:
            return True
        return kind == "error" and type(payload.get("error")) is dict

    def handle(self, event: ServerSentEvent) -> bool:
        """Fold one event.

        Returns:
            ``True`` at ``message_stop``.

        Raises:
            ProviderError: an ``error`` event.
            ProtocolError: malformed JSON, or an event out of place.
        """
        if self.fast(event):
            return False
        return self._handle_dict(event)

    def _handle_dict(self, event: ServerSentEvent) -> bool:
        # handle's dict path: every event, decoded as a dict (see fast). The
        # only path that changes the Message's top level (response).
        self._top.stale = True
        payload = decode_json(event)
        if type(payload) is not dict:
            if event.event == "error":
                raise self._error(payload, event)
            raise protocol_error(event, "is not a JSON object")
        kind = tag_or_none(payload.get("type"))
        if kind is None:
            if _data_only_error(payload):
                raise self._error(payload, event)
            kind = event.event
        if kind == "content_block_delta":
            self._delta(payload, event)
        elif kind == "content_block_start":
            self._block_start(payload, event)
        elif kind == "content_block_stop":
            self._block_stop(payload, event)
        elif kind == "message_delta":
            self._message_delta(payload, event)
        elif kind == "message_start":
            self._message_start(payload, event)
        elif kind == "message_stop":
            self._message_stop(event)
            return True
        elif kind == "ping":
            pass
        elif kind == "error" or event.event == "error":
            raise self._error(payload, event)
        else:
            self.acc.unknown(kind, payload)
        return False

    def close(self) -> bool:
        """Without ``message_stop`` the stream is cut: blocks still open end
        incomplete."""
        self._end_open_blocks()
        return False

    # -- events ------------------------------------------------------------------

    def _message_start(self, payload: dict[str, Any], event: ServerSentEvent) -> None:
        message = payload.get("message")
        if type(message) is not dict:
            raise protocol_error(event, "message_start without a message object")
        if self.open:
            new_id = str_or_none(message.get("id"))
            if new_id == self.message_id:
                _duplicate_message_start(self.acc, event)
                return
            self._splice(message, new_id)
            return
        self._begin(message)

    def _begin(self, message: dict[str, Any]) -> None:
        shell = dict(message)
        shell.pop("content", None)
        self.message = shell
        self.message_id = str_or_none(message.get("id"))
        self.open = True
        self.delta_fields = {}
        self.stop_reason = None
        usage = message.get("usage")
        self.usage = dict(usage) if type(usage) is dict else None
        acc = self.acc
        acc.start(self.message_id, str_or_none(message.get("model")), None)
        if self.usage is not None:
            acc.set_usage(normalise_usage(self.usage))

    def _block_start(self, payload: dict[str, Any], event: ServerSentEvent) -> None:
        index = required_index(payload, "index", event)
        fields = object_or_none(payload.get("content_block"))
        if fields is None:
            raise protocol_error(event, "content_block_start without a content_block object")
        if self.message is None:
            raise protocol_error(event, "content_block_start before message_start")
        if index in self.blocks:
            raise protocol_error(event, f"content block {index} started twice")
        block = _Block(self.segment, index, dict(fields))
        self.blocks[index] = block
        self.open_blocks[block.key] = block
        acc = self.acc
        if block.type == _TEXT:
            block.fold = acc.text
            _start_text(block, acc, fields.get("text"))
            citations = fields.get("citations")
            if type(citations) is list:
                block.citations = list(citations)
        elif block.type == _THINKING:
            block.fold = acc.reasoning
            _start_thinking(block, acc, fields.get("thinking"), fields.get("signature"))
        elif block.type == _REDACTED:
            data = fields.get("data")
            acc.begin_part(0, PartKind.REASONING, block.key)  # redacted thinking has no text
            acc.reasoning_signature(
                0, encrypted_content=data if type(data) is str else None, owner=block.key
            )
        elif block.kind is not None:
            block.call = acc.tool_call(
                0,
                block.key,
                id=str_or_none(fields.get("id")),
                name=str_or_none(fields.get("name")),
                kind=block.kind,
                server=block.kind != _CLIENT_KIND,
            )
        else:
            if block.type == "fallback":
                self._fallback_model(fields)
            acc.unknown("content_block_start", payload)

    def fast_run(self, events: list[ServerSentEvent], i: int) -> int:
        # fast() on each event in turn, the common delta in line: more of the
        # part the block's last one went to. Any other typed delta goes to
        # _typed_delta, which folds it or turns it down; every check comes
        # before any side effect, so an event not folded is left to the dict
        # path (which raises the precise error, if any). Named streams try it
        # on their deltas only; unnamed ones (data lines alone, Claude on
        # Bedrock) on every event. 10,000 text deltas: 155 -> 138 bytecodes
        # each, parallel calls 179 -> 163.
        start, count = i, len(events)
        acc = self.acc
        decode, blocks_get = self._decode_block_delta, self.blocks.get
        for i in range(start, count):  # after a break, i is the first event not folded
            event = events[i]
            if event.event != "content_block_delta" and event.event_set:
                break
            try:
                chunk = decode(event.raw)
            except TYPED_REJECTED:
                break
            # Looked up by its index every time: parallel blocks switch on every
            # delta, and a kept "last block" costs them a miss and a store each.
            block = blocks_get(chunk.index)
            if block is None:
                break
            delta = chunk.delta
            # Of the block's kind (text to a text block...).
            if type(delta) is not block.typed:
                break
            piece = delta.piece
            if block.epoch == acc.epoch:
                # More of the part the block's last one went to. The epoch
                # held, so that part is still open and the block's (and the
                # block not ended: its end ends the part): the sink folds the
                # piece as fold() would, and the part is the last of
                # block.parts (a tool block's sink is its call's:
                # Accumulator.arguments_sink).
                block.built = None  # built again: what a revision bump does, for less
                if piece:
                    block.sink(piece)
                continue
            if not self._typed_delta(block, piece):
                break
        else:
            i = count
        return i

    def fast(self, event: ServerSentEvent) -> bool:
        # The typed path for one event (see fast_run, which the parser calls
        # on the events after each one the dict path took).
        return self.fast_run([event], 0) == 1

    def _typed_delta(self, block: _Block, piece: str) -> bool:
        # A typed delta of the block's kind that fast_run did not fold in
        # line (the block's epoch moved since its last piece): True when folded here.
        if block.done:
            return False
        block.built = None
        if piece:
            fold = block.fold
            if fold is None:  # a tool block's input: its call's sink kept for the next pieces
                # (parallel blocks too: the epoch moves once, when their calls first
                # interleave, so each block's sink holds across the others' pieces).
                acc = self.acc
                acc.tool_arguments(0, block.key, piece)
                block.sink, block.epoch = acc.arguments_sink(0, block.key), acc.epoch
                return True
            part = fold(0, piece, block.key)
            parts = block.parts  # NativePart.add, inline
            if not parts or parts[-1] is not part:
                parts.append(part)
            acc = self.acc
            block.sink, block.epoch = acc.sink(part), acc.epoch
        return True

    def _delta(self, payload: dict[str, Any], event: ServerSentEvent) -> None:
        delta = payload.get("delta")
        index = required_index(payload, "index", event)
        block = self.blocks.get(index)
        if block is None:
            raise protocol_error(event, "content_block_delta for a block that never started")
        if type(delta) is not dict:
            raise protocol_error(event, "content_block_delta without a delta object")
        if block.done:
            raise protocol_error(
                event, f"content_block_delta for block {block.index} after it ended"
            )
        block.revision += 1
        kind = tag_or_none(delta.get("type"))
        if kind == "text_delta" and block.type == _TEXT:
            text = delta.get("text")
            if type(text) is str and text:
                block.add(self.acc.text(0, text, block.key))
        elif kind == "input_json_delta" and ("input" in block.fields or block.kind is not None):
            piece = delta.get("partial_json")
            if type(piece) is str and piece:
                if block.kind is not None:
                    self.acc.tool_call(0, block.key, arguments=piece)
                else:
                    block.json.append(piece)
                    self.acc.unknown("content_block_delta", payload)
        elif kind == "thinking_delta" and block.type == _THINKING:
            text = delta.get("thinking")
            if type(text) is str and text:
                block.add(self.acc.reasoning(0, text, block.key))
        elif kind == "signature_delta" and block.type == _THINKING:
            signature = delta.get("signature")
            if type(signature) is str:
                block.signature.append(signature)
        elif kind == "citations_delta" and block.type == _TEXT:
            if block.citations is None:
                block.citations = []
            block.citations.append(delta.get("citation"))
            # The event model has no citation event: streamed as raw.
            self.acc.unknown("content_block_delta", payload)
        elif kind == "compaction_delta" and block.type == "compaction":
            _compaction_delta(block, delta)
            self.acc.unknown("content_block_delta", payload)
        else:
            self.acc.unknown("content_block_delta", payload)

    def _block_stop(self, payload: dict[str, Any], event: ServerSentEvent) -> None:
        index = required_index(payload, "index", event)
        block = self.blocks.get(index)
        if block is None:
            raise protocol_error(event, "content_block_stop for a block that never started")
        if block.done:
            raise protocol_error(event, f"content_block_stop for block {block.index} twice")
        self._end_block(block, complete=True)

    def _message_delta(self, payload: dict[str, Any], event: ServerSentEvent) -> None:
        if self.message is None:
            raise protocol_error(event, "message_delta before message_start")
        # No block continues after message_delta: a block it finds open was cut
        # (a tool_use stopped by max_tokens mid-input gets no content_block_stop).
        self._end_open_blocks()
        delta = payload.get("delta")
        fields = self.delta_fields
        if type(delta) is dict:
            # The stop fields come as a group with a stop_reason: a delta that
            # has one sets all three (a null clears a value); a later delta
            # without one (usage only) never wipes them.
            stopping = delta.get("stop_reason") is not None
            for key, value in delta.items():
                if key in _STOP_FIELDS:
                    if stopping or value is not None:
                        fields[key] = value
                elif value is not None and key not in _OWN_FIELDS:
                    fields[key] = value
        for key, value in payload.items():
            if value is not None and key not in _OWN_FIELDS and key != "delta":
                fields[key] = value
        usage = payload.get("usage")
        if type(usage) is dict and usage:
            # Counts are cumulative: a reported count replaces the earlier one;
            # one not reported (or null) keeps message_start's. Some
            # Anthropic-compatible providers send the real input_tokens only
            # here, message_start's being an estimate: this one wins too.
            merged = dict(self.usage or {})
            for key, value in usage.items():
                if value is not None:
                    merged[key] = value
            self.usage = merged
            self.acc.set_usage(normalise_usage(merged))
        stop = fields.get("stop_reason")
        if type(stop) is str and stop:
            self.stop_reason = stop
            self.acc.finish(0, stop, unified_stop_reason(stop))

    def _message_stop(self, event: ServerSentEvent) -> None:
        if self.message is None:
            raise protocol_error(event, "message_stop before message_start")
        self._end_open_blocks()
        if self.stop_reason is None:
            self.acc.warn(f"server-sent event #{event.index}: message_stop without a stop_reason")
        self.open = False

    def _error(self, payload: Any, event: ServerSentEvent) -> ProviderError:
        # An error on an HTTP 200 stream, after output may have begun
        # ({"type": "error", "error": {"type": "overloaded_error", ...}}): the
        # open blocks end incomplete and the partial message is kept.
        self._end_open_blocks()
        error = provider_error(payload, event.index)
        # Anthropic's own error types say whether to retry (timeout_error too);
        # a gateway's envelope (OpenRouter's code) keeps what its code says.
        error.retryable = error.retryable or error.error_type in _RETRYABLE_ERRORS
        return error

    # -- blocks ------------------------------------------------------------------

    def _end_block(self, block: _Block, complete: bool) -> None:
        del self.open_blocks[block.key]
        block.done = True
        block.revision += 1
        acc = self.acc
        key = block.key
        if block.type == _TEXT:
            acc.end_part(0, PartKind.TEXT, complete, key)
        elif block.type == _THINKING:
            # A thinking block without text still ends.
            block.add(acc.begin_part(0, PartKind.REASONING, key))
            if block.signature:
                acc.reasoning_signature(0, signature="".join(block.signature), owner=key)
            acc.end_part(0, PartKind.REASONING, complete, key)
        elif block.type == _REDACTED:
            acc.end_part(0, PartKind.REASONING, complete, key)
        if "input" in block.fields or block.kind is not None:
            block.input = self._final_input(block, complete)
        if block.kind is not None:
            acc.end_tool_call(0, block.key, complete)

    def _final_input(self, block: _Block, complete: bool) -> Any:
        # Parsed once, when the block ends.
        arguments = block.arguments()
        if not arguments.strip():
            if block.kind is not None and complete:
                # No input_json_delta (or only ""): the start's input, which
                # Anthropic sends as {}, is the whole input and the arguments.
                start_input = block.fields.get("input")
                whole = start_input if type(start_input) is dict else {}
                self.acc.replace_arguments(0, block.key, _encode_input(whole).decode())
            return MISSING
        if not complete:
            return _partial_input(arguments)
        value, error = parse_arguments(arguments)
        if error is None:
            return value
        self.acc.warn(
            f"content block {block.index} ({block.type}): the input is not valid JSON "
            f"({error.message}); the Message holds the part that parses"
        )
        return _partial_input(arguments)

    def _end_open_blocks(self) -> None:
        for block in list(self.open_blocks.values()):
            self._end_block(block, complete=False)

    def _splice(self, message: dict[str, Any], new_id: str | None) -> None:
        # An intermediary (seen behind Google Vertex) that lost its upstream
        # mid-generation and retried can splice the retry into the same body: a
        # message_start for another message while the first is open. Merging
        # the two would mix the signed thinking blocks of two generations, which
        # Anthropic then refuses to replay. The abandoned message's open blocks
        # end incomplete, and the fold restarts: the result is the retried
        # message alone, its block indexes in a new segment.
        self._end_open_blocks()
        self.acc.restart()
        self.segment += 1
        self.blocks = {}
        self.acc.warn(
            f"message {self.message_id!r} was abandoned and replaced by the retried message "
            f"{new_id!r} (an intermediary spliced a retry into the stream)"
        )
        self._begin(message)

    def _fallback_model(self, fields: dict[str, Any]) -> None:
        # Anthropic (beta model fallbacks): a "fallback" block marks where one
        # model gave way to another; its "to.model" names the model that serves
        # the rest of the response, and the non-streaming Message reports it.
        target = fields.get("to")
        model = target.get("model") if type(target) is dict else None
        if type(model) is str and model:
            self.delta_fields["model"] = model

    # -- the native response -------------------------------------------------------

    def response(self) -> dict[str, Any]:
        """The Message a non-streaming call would have returned."""
        # Everything but the content is built again only when the dict path
        # folded an event since: a snapshot after every delta mostly changes a block.
        return self._top.response([b.native() for b in self._blocks()], self._build_response)

    def _build_response(self, content: list[dict[str, Any]]) -> dict[str, Any]:
        message = self.message
        out: dict[str, Any] = {
            "id": "",
            "type": "message",
            "role": "assistant",
            "model": "",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
        }
        if message is not None:
            out.update(message)
        out["content"] = content
        out.update(self.delta_fields)
        if self.usage is not None:
            out["usage"] = dict(self.usage)
        return out

    def _blocks(self) -> list[_Block]:
        # The current message's blocks by index, sorted again only when one was added.
        at = (len(self.blocks), self.segment)
        if at != self._sorted_at:
            self._sorted = sorted(self.blocks.values(), key=_block_index)
            self._sorted_at = at
        return self._sorted


def _block_index(block: _Block) -> int:
    return block.index


def _start_text(block: _Block, acc: Accumulator, text: Any) -> None:
    # Anthropic starts a text block with text ""; text in the start would be
    # the block's beginning, so it counts as the first delta.
    if type(text) is str and text:
        block.add(acc.text(0, text, block.key))


def _start_thinking(block: _Block, acc: Accumulator, text: Any, signature: Any) -> None:
    # As _start_text; the start's signature (Anthropic sends "") comes before
    # any signature_delta.
    if type(text) is str and text:
        block.add(acc.reasoning(0, text, block.key))
    if type(signature) is str and signature:
        block.signature.append(signature)


def _compaction_delta(block: _Block, delta: dict[str, Any]) -> None:
    # Anthropic (beta context compaction): a compaction_delta carries the
    # block's content and encrypted_content whole; they replace the start's.
    for key, value in delta.items():
        if key != "type":
            block.fields[key] = value


def _data_only_error(payload: dict[str, Any]) -> bool:
    # OpenRouter, relaying a provider's failure into an Anthropic stream, sends
    # a data-only {"error": {...}} payload: no "type": "error", no "event:
    # error" line. It is the provider's error, with its code and message, not
    # an unknown event to drop (the stream would end incomplete, its cause lost).
    return payload.get("error") is not None


def _duplicate_message_start(acc: Accumulator, event: ServerSentEvent) -> None:
    # Some Anthropic-compatible gateways (LiteLLM, Bifrost) send the
    # message_start of one response twice, with the same message id: the copy
    # is ignored, so it neither resets the blocks nor the usage.
    acc.warn(f"server-sent event #{event.index}: a repeated message_start was ignored")


def error_request_id(raw: Any) -> str | None:
    """The request id inside an Anthropic error body, or ``None``.

    Anthropic repeats the request id in its error envelope
    (``{"type": "error", "error": {...}, "request_id": "req_..."}``), so it
    survives a proxy that drops the ``request-id`` header.
    """
    value = raw.get("request_id") if type(raw) is dict else None
    return value if isinstance(value, str) and value else None
