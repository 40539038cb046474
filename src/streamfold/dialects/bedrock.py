"""Amazon Bedrock: ``ConverseStream`` (``bedrock-converse``), and Anthropic's
Claude on ``InvokeModelWithResponseStream`` (``bedrock-anthropic``).

Both stream the binary AWS event-stream (``streamfold.eventstream``): each
message is one member of the operation's output union, named by its
``:event-type`` (or ``:exception-type``) header, its payload the member's JSON.

``ConverseStream``'s union (``ConverseStreamOutput``): ``messageStart``
(``role``), ``contentBlockStart`` (a ``toolUse`` with its ``toolUseId`` and
``name``; a server tool's ``toolResult``; an ``image``), ``contentBlockDelta``
(``text``; ``reasoningContent`` with ``text``, ``signature`` or
``redactedContent``; ``toolUse.input``, JSON text in pieces; ``citation``;
``toolResult``; ``image``), ``contentBlockStop``, ``messageStop``
(``stopReason``, ``additionalModelResponseFields``), ``metadata`` (``usage``,
``metrics``, ``trace``, ``performanceConfig``, ``serviceTier``), and the
exceptions ``internalServerException``, ``modelStreamErrorException``,
``validationException``, ``throttlingException`` and
``serviceUnavailableException``. Blocks are numbered by ``contentBlockIndex``;
a text or reasoning block has no ``contentBlockStart``. There is no terminal
marker: ``messageStop`` ends the message, and ``metadata`` (before or after
it) carries the usage.

An event is read in either shape it comes in:

- named: a message whose header names the member, its payload the member's
  value (the binary frames; an event a source names);
- wrapped: a JSON object whose one key is the member (``{"messageStart":
  {...}}``), as boto3's ``converse_stream()`` yields them and as recordings
  keep them.

``InvokeModelWithResponseStream`` streams ``chunk`` members whose ``bytes``
are, base64-encoded, the events of the model's own streaming format; for
Claude, Anthropic Messages events, folded by the Anthropic dialect unchanged.

The contracts are ``docs/dialects/bedrock-converse.md`` and
``docs/dialects/bedrock-anthropic.md``; each departure from the reference is a
named function below.
"""

from __future__ import annotations

import base64
import binascii
import functools
import sys
from collections.abc import Callable
from typing import Any, Final

import msgspec
from msgspec import UNSET

from ..errors import ProtocolError, ProviderError
from ..events import Usage
from ..eventstream import EventStreamMessage
from ..fold import NO_SINK, Accumulator, PartKind, ToolCallView, parse_arguments
from ..partial_json import MISSING, PartialJSONError, parse_partial
from ..sse import ServerSentEvent
from .anthropic import AnthropicMessages
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
    objects,
    protocol_error,
    provider_error,
    required_index,
    str_or_none,
    tag_or_none,
    typed_decoder,
)

__all__ = [
    "NATIVE_STOP_REASONS",
    "BedrockAnthropic",
    "BedrockConverse",
    "native_usage",
    "normalise_usage",
    "unified_stop_reason",
]

_EVENTS: Final = frozenset(
    {
        "messageStart",
        "contentBlockStart",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    }
)

# The exceptions of the output unions, and whether the reference says to retry:
# internal (500) and stream errors, throttling (429), unavailability (503) and
# timeouts (408) pass; a request that fails validation (400) fails again.
_EXCEPTIONS: Final = {
    "internalServerException": True,
    "modelStreamErrorException": True,
    "throttlingException": True,
    "serviceUnavailableException": True,
    "modelTimeoutException": True,
    "validationException": False,
}

_STOP_REASONS: Final = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    # The request plus the answer reached the model's context window: cut, as by max_tokens.
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    # A guardrail or the model's own content filter stopped the answer.
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    # The model's output could not be read as an answer or a tool call.
    "malformed_model_output": "error",
    "malformed_tool_use": "error",
}

#: The other way, for encoders: each unified finish reason's stopReason, the first above.
NATIVE_STOP_REASONS: Final = {unified: raw for raw, unified in reversed(_STOP_REASONS.items())}

# Block kinds (a text or reasoning block's kind is known from its first delta).
_TEXT, _REASONING, _TOOL, _RESULT, _IMAGE = "text", "reasoning", "toolUse", "toolResult", "image"
_SERVER_TOOL: Final = "server_tool_use"  # ToolUseBlockStart.type of a tool the service runs
# The message fields a messageStop or metadata event carries, copied as sent.
_STOP_FIELDS: Final = ("additionalModelResponseFields",)
_METADATA_FIELDS: Final = ("metrics", "trace", "performanceConfig", "serviceTier")


def unified_stop_reason(raw: str, has_tool_calls: bool = False) -> str:
    """Map a Bedrock ``stopReason`` to stop, length, tool_calls,
    content_filter, error or other (``has_tool_calls``: see ``_end_turn_with_tools``)."""
    unified = _STOP_REASONS.get(raw, "other")
    if unified == "stop" and raw == "end_turn" and has_tool_calls:
        return _end_turn_with_tools()
    return unified


def _end_turn_with_tools() -> str:
    # Some models on Converse (Llama, Mistral, Kimi) end a turn that asks for
    # tools with end_turn, not tool_use; the calls are there to run all the
    # same (AWS's Strands agents treat it as tool_use too).
    return "tool_calls"


def normalise_usage(raw: dict[str, Any]) -> Usage:
    """Normalise a Converse ``usage`` (``TokenUsage``); counts not reported stay ``None``.

    ``inputTokens`` excludes the prompt's cached tokens: the normalised
    ``input_tokens`` is the whole prompt (``inputTokens`` +
    ``cacheReadInputTokens`` + ``cacheWriteInputTokens``), as the other dialects
    count it; ``total_tokens`` is that plus ``outputTokens`` (``totalTokens``
    when a count is missing). ``outputTokens`` includes any reasoning, which
    Bedrock does not count apart.
    """
    uncached = int_or_none(raw.get("inputTokens"))
    cache_read = int_or_none(raw.get("cacheReadInputTokens"))
    cache_write = int_or_none(raw.get("cacheWriteInputTokens"))
    output = int_or_none(raw.get("outputTokens"))
    prompt = None if uncached is None else uncached + (cache_read or 0) + (cache_write or 0)
    total = (
        prompt + output
        if prompt is not None and output is not None
        else int_or_none(raw.get("totalTokens"))
    )
    return Usage(
        input_tokens=prompt,
        output_tokens=output,
        total_tokens=total,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        raw=raw,
    )


def native_usage(usage: Usage) -> dict[str, Any]:
    """The Converse ``usage`` of normalised ``usage``, the inverse of
    ``normalise_usage``: only the counts that are known."""
    out: dict[str, Any] = {}
    read, write = usage.cache_read_tokens, usage.cache_write_tokens
    if usage.input_tokens is not None:
        out["inputTokens"] = max(0, usage.input_tokens - (read or 0) - (write or 0))
    if usage.output_tokens is not None:
        out["outputTokens"] = usage.output_tokens
    if usage.total_tokens is not None:
        out["totalTokens"] = usage.total_tokens
    if read is not None:
        out["cacheReadInputTokens"] = read
    if write is not None:
        out["cacheWriteInputTokens"] = write
    return out


def _without_padding(value: dict[str, Any]) -> dict[str, Any]:
    # Bedrock pads every event payload of its binary frames with a "p" field of
    # random length (letters and digits), so that sizes do not reveal content;
    # it is not part of the member, and is dropped wherever a member is kept.
    if "p" in value:
        value = dict(value)
        del value["p"]
    return value


def _member(event: ServerSentEvent, known: frozenset[str]) -> tuple[str, Any, bool]:
    """The union member an event carries: its name, its value, and whether it
    is an exception or error message.

    Raises:
        ProtocolError: the event is not JSON, or is neither named nor a wrapped member.
    """
    framed = isinstance(event, EventStreamMessage)
    failed = isinstance(event, EventStreamMessage) and event.message_type in ("exception", "error")
    if event.event_set and (framed or event.event in known or event.event in _EXCEPTIONS):
        return event.event, decode_json(event), failed or event.event in _EXCEPTIONS
    payload = decode_json(event)
    if type(payload) is dict:
        keys = [key for key in payload if key != "p"]
        if len(keys) == 1:
            name = keys[0]
            return name, payload[name], name in _EXCEPTIONS
    raise protocol_error(event, "is not an event of the stream (one member, named or wrapped)")


def _is_member(event: ServerSentEvent, payload: Any, known: frozenset[str]) -> bool:
    # Detection: a message of the event-stream that is an exception or error,
    # an event named as a member, or an object wrapping one member.
    if isinstance(event, EventStreamMessage) and event.message_type in ("exception", "error"):
        return True
    if event.event_set and (event.event in known or event.event in _EXCEPTIONS):
        return True
    if type(payload) is not dict:
        return False
    keys = [key for key in payload if key != "p"]
    return len(keys) == 1 and (keys[0] in known or keys[0] in _EXCEPTIONS)


def _failure(name: str, value: Any, event: ServerSentEvent) -> ProviderError:
    # An exception member ({"message": ...}; modelStreamErrorException adds the
    # model's originalStatusCode and originalMessage), or an error message
    # (the framing gives {"code", "message"}).
    body = object_or_none(value) or {}
    message = body.get("message")
    code = name if name != "message" else str_or_none(body.get("code"))
    text = message if type(message) is str and message else f"Bedrock reported {code or 'an error'}"
    retryable = _EXCEPTIONS.get(name)
    if retryable is None:
        retryable = _retryable_code(code)
    return ProviderError(
        text,
        code=code,
        error_type=code,
        raw=_without_padding(body) if body else value,
        retryable=retryable,
        position=event.index,
    )


def _error_envelope(value: Any, event: ServerSentEvent) -> ProviderError:
    # {"error": ...} is no member of the union: an error envelope in the shape
    # every provider's takes (the parser reads one before any dialect is known;
    # here it comes mid-stream, from whatever relays the stream).
    return provider_error({"error": value}, event.index)


def _retryable_code(code: str | None) -> bool:
    # An error message's code (or an exception this module does not list): the
    # AWS naming says whether it is the service's fault or a throttle.
    lowered = (code or "").lower()
    return any(word in lowered for word in ("internal", "unavailable", "throttl", "timeout"))


class _Block(NativePart):
    """One content block of a Converse message, as its events built it: its
    start fields, and the accumulator's parts and call that hold its text,
    reasoning or tool input."""

    __slots__ = (
        "call",
        "citations",
        "epoch",
        "fields",
        "has_text",
        "index",
        "input",
        "kind",
        "redacted",
        "results",
        "signature",
        "sink",
    )

    def __init__(self, index: int, kind: str | None, fields: dict[str, Any] | None = None) -> None:
        self.index = index
        self.kind = kind  # None until its start or first delta says
        self.fields = fields or {}  # the start's toolUse, toolResult or image
        super().__init__()  # the accumulator's parts of its text or reasoning
        self.has_text = False
        self.call: ToolCallView | None = None  # the accumulator's call of a toolUse block
        self.signature: list[str] = []
        self.redacted: list[str] = []  # base64 pieces of redactedContent
        self.citations: list[Any] = []
        self.results: list[dict[str, Any]] = []  # a server tool result's content
        self.input: Any = None  # the parsed tool input, once the block ended
        # The fold of the next piece of its open text or reasoning part
        # (Accumulator.sink: in a plain fold its append), or of its call's
        # arguments (Accumulator.arguments_sink, NO_SINK until asked for),
        # valid while the accumulator's epoch is this one.
        self.sink: Callable[[str], object] = NO_SINK
        self.epoch = UNKEPT

    def arguments(self) -> str:
        """The tool input received, as JSON text."""
        return self.call.arguments if self.call is not None else ""

    def _native(self) -> dict[str, Any]:
        if self.kind == _REASONING:
            if self.redacted and not self.has_text:
                return {"reasoningContent": {"redactedContent": _joined_base64(self.redacted)}}
            reasoning: dict[str, Any] = {"text": self.text()}
            if self.signature:
                reasoning["signature"] = "".join(self.signature)
            return {"reasoningContent": {"reasoningText": reasoning}}
        if self.kind == _TOOL:
            tool = dict(self.fields)
            tool["input"] = self.input if self.done else _streaming_input(self)
            return {"toolUse": tool}
        if self.kind == _RESULT:
            return {"toolResult": {**self.fields, "content": list(self.results)}}
        if self.kind == _IMAGE:
            return {"image": dict(self.fields)}
        text = self.text()
        if self.citations:
            # A text block that cited sources is a citationsContent block.
            return {
                "citationsContent": {"content": [{"text": text}], "citations": list(self.citations)}
            }
        return {"text": text}


def _joined_base64(pieces: list[str]) -> str:
    # redactedContent is a blob, base64 in JSON; pieces sent apart are joined
    # as bytes (each piece is padded on its own).
    if len(pieces) == 1:
        return pieces[0]
    try:
        return base64.b64encode(b"".join(base64.b64decode(p) for p in pieces)).decode()
    except (binascii.Error, ValueError):
        return "".join(pieces)


def _streaming_input(block: _Block) -> Any:
    # The input of a tool block still streaming (a snapshot's): its call's
    # value so far, without the arguments joined for _partial_input's checks
    # first (a value means they are neither empty nor blank).
    value = call_value(block.call)
    return value if value is not MISSING else _partial_input(block.arguments(), block.call)


def _partial_input(arguments: str, call: ToolCallView | None = None) -> Any:
    # A tool block cut before its stop: the input parsed as far as it goes
    # (with the accumulator's call, incrementally, snapshot after snapshot).
    if not arguments or arguments.isspace():
        return {}
    try:
        value = call.partial_arguments() if call is not None else parse_partial(arguments)
    except PartialJSONError as exc:
        try:
            value = parse_partial(arguments[: exc.position])
        except PartialJSONError:
            return {}
    return {} if value is MISSING else value


# The hot event, typed: a contentBlockDelta of text, reasoning text or tool
# input, nothing else. Decoded straight into these Structs it costs less than
# a dict and its gets; any other field or value (a signature, a citation, two
# kinds at once) fails validation or a check and the event takes the dict
# path, which folds it the same.
class _TypedToolInput(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    input: str


class _TypedReasoning(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    text: str


class _TypedDeltaBody(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    text: str | msgspec.UnsetType = msgspec.UNSET
    toolUse: _TypedToolInput | msgspec.UnsetType = msgspec.UNSET
    reasoningContent: _TypedReasoning | msgspec.UnsetType = msgspec.UNSET


class _TypedBlockDelta(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    contentBlockIndex: int
    delta: _TypedDeltaBody
    p: Any = msgspec.UNSET  # padding


class BedrockConverse(Dialect):
    """Amazon Bedrock ``ConverseStream`` (``"bedrock-converse"``)."""

    name = "bedrock-converse"

    def __init__(self, acc: Accumulator) -> None:
        super().__init__(acc)
        self._decode_block_delta: Callable[[bytes], _TypedBlockDelta] = typed_decoder(
            _TypedBlockDelta
        )
        self.role: str | None = None
        self.blocks: dict[int, _Block] = {}
        self.stop_reason: str | None = None
        self.stop_fields: dict[str, Any] = {}
        self.usage: dict[str, Any] | None = None
        self.metadata: dict[str, Any] = {}
        self.stopped = False  # messageStop arrived
        self.described = False  # metadata arrived
        self._sorted: list[_Block] = []  # the blocks, by index
        self._top = KeptTop("output")  # response()'s top level (see handle)

    @classmethod
    def detect(cls, event: ServerSentEvent, payload: Any) -> bool:
        """A ConverseStream member, named or wrapped, or an exception message."""
        return _is_member(event, payload, _EVENTS)

    def handle(self, event: ServerSentEvent) -> bool:
        """Fold one event.

        Returns:
            ``True`` once both ``messageStop`` and ``metadata`` arrived.

        Raises:
            ProviderError: an exception member or error message.
            ProtocolError: the event is not a member, or is out of place.
        """
        if self.fast(event):
            return False
        self._top.stale = True  # the one path that changes the response's top level
        name, value, failed = _member(event, _EVENTS)
        if failed:
            self._end_open_blocks(complete=False)
            raise _failure(name, value, event)
        if name == "error" and not event.event_set:
            self._end_open_blocks(complete=False)
            raise _error_envelope(value, event)
        body = object_or_none(value)
        if body is None:
            raise protocol_error(event, f"{name} is not a JSON object")
        self.acc.start(None, None, None)
        if name == "contentBlockDelta":
            self._delta(body, event)
        elif name == "contentBlockStart":
            self._start(body, event)
        elif name == "contentBlockStop":
            self._stop(body, event)
        elif name == "messageStart":
            self.role = str_or_none(body.get("role")) or self.role
        elif name == "messageStop":
            self._message_stop(body, event)
            return self.described
        elif name == "metadata":
            self._metadata(body)
            return self.stopped
        else:
            self.acc.unknown(name, _without_padding(body))
        return False

    def close(self) -> bool:
        """Complete when ``messageStop`` arrived (``metadata`` may be missing:
        then the usage is unknown, with a warning). Blocks still open end incomplete."""
        self._end_open_blocks(complete=False)
        if self.stopped and not self.described:
            self.acc.warn("the stream ended without its metadata event: the usage is not known")
        return self.stopped

    # -- events ------------------------------------------------------------------

    def _block(self, body: dict[str, Any], event: ServerSentEvent, what: str) -> _Block:
        index = required_index(body, "contentBlockIndex", event)
        block = self.blocks.get(index)
        if block is None:
            block = self.blocks[index] = _Block(index, None)
        elif block.done:
            raise protocol_error(event, f"{what} for content block {index} after it stopped")
        block.revision += 1
        return block

    def _start(self, body: dict[str, Any], event: ServerSentEvent) -> None:
        index = required_index(body, "contentBlockIndex", event)
        if index in self.blocks:
            raise protocol_error(event, f"content block {index} started twice")
        start = object_or_none(body.get("start")) or {}
        tool = object_or_none(start.get("toolUse"))
        result = object_or_none(start.get("toolResult"))
        image = object_or_none(start.get("image"))
        if tool is not None:
            block = self.blocks[index] = _Block(index, _TOOL, dict(tool))
            server = tag_or_none(tool.get("type")) == _SERVER_TOOL
            block.call = self.acc.tool_call(
                0,
                index,
                id=str_or_none(tool.get("toolUseId")),
                name=str_or_none(tool.get("name")),
                kind=_SERVER_TOOL if server else "function",
                server=server,
            )
        elif result is not None:
            self.blocks[index] = _Block(index, _RESULT, dict(result))
            self.acc.unknown("contentBlockStart", _without_padding(body))
        elif image is not None:
            self.blocks[index] = _Block(index, _IMAGE, dict(image))
            self.acc.unknown("contentBlockStart", _without_padding(body))
        else:
            self.blocks[index] = _Block(index, None)

    def fast(self, event: ServerSentEvent) -> bool:
        # The typed path (see _TypedBlockDelta): True when the event was folded
        # here. Every check comes before any side effect, so a False leaves the
        # event to the dict path (which raises the precise error). A block
        # exists only once handle started the response.
        if (
            event.event != "contentBlockDelta"
            or not event.event_set
            or (isinstance(event, EventStreamMessage) and event.message_type != "event")
        ):
            return False
        decode = self._decode_block_delta  # an attribute, not a method: no LOAD_METHOD
        try:
            typed = decode(event.raw)
        except TYPED_REJECTED:
            return False
        block = self.blocks.get(typed.contentBlockIndex)
        if block is None:
            return False
        delta = typed.delta
        text, tool, reasoning = delta.text, delta.toolUse, delta.reasoningContent
        kind = block.kind
        # One kind of piece, of the block's kind (or the first of a block
        # without a start: text and reasoning blocks have none).
        if text is not UNSET:
            if tool is not UNSET or reasoning is not UNSET or (kind is not None and kind != _TEXT):
                return False
        elif reasoning is not UNSET:
            if tool is not UNSET or (kind is not None and kind != _REASONING):
                return False
            text = reasoning.text
        else:
            if tool is UNSET or kind != _TOOL or block.done:
                return False
            block.built = None  # built again: what a revision bump does, for less
            piece = tool.input
            if piece:
                acc = self.acc
                if block.epoch == acc.epoch:
                    # Nothing moved the epoch since the block's last piece (a
                    # call starting or ending does; other calls' pieces only
                    # when the calls first interleave): its call's sink, asked
                    # for by its second piece (parallel blocks ask too).
                    sink = block.sink
                    if sink is NO_SINK:
                        sink = block.sink = acc.arguments_sink(0, block.index)
                    sink(piece)
                else:
                    block.call = acc.tool_arguments(0, block.index, piece)
                    block.sink, block.epoch = NO_SINK, acc.epoch
            return True
        if block.epoch == self.acc.epoch:
            # The common delta: more of the part the block's last one went to.
            # The epoch held, so that part is still open and the block's (and
            # the block not stopped: its stop ends the part): the sink folds
            # the piece as acc.text or acc.reasoning would.
            block.built = None
            if text:
                block.sink(text)
            return True
        if block.done:
            return False
        block.built = None
        acc = self.acc
        if text:
            block.has_text = True
            if reasoning is UNSET:
                block.kind = _TEXT
                part = acc.text(0, text, block.index)
            else:
                block.kind = _REASONING
                part = acc.reasoning(0, text, block.index)
            parts = block.parts  # NativePart.add, inline
            if not parts or parts[-1] is not part:
                parts.append(part)
            block.sink, block.epoch = acc.sink(part), acc.epoch
        else:
            block.kind = _TEXT if reasoning is UNSET else _REASONING
        return True

    def _delta(self, body: dict[str, Any], event: ServerSentEvent) -> None:
        block = self._block(body, event, "contentBlockDelta")
        delta = object_or_none(body.get("delta"))
        if delta is None:
            raise protocol_error(event, "contentBlockDelta without a delta object")
        acc = self.acc
        kind = block.kind
        if "text" in delta and kind in (None, _TEXT):
            block.kind = _TEXT
            text = delta.get("text")
            if type(text) is str and text:
                block.has_text = True
                block.add(acc.text(0, text, block.index))
        elif "reasoningContent" in delta and kind in (None, _REASONING):
            block.kind = _REASONING
            self._reasoning(block, object_or_none(delta.get("reasoningContent")) or {})
        elif "toolUse" in delta and kind in (None, _TOOL):
            if kind is None:
                _tool_input_without_start(block, acc)
            tool = object_or_none(delta.get("toolUse")) or {}
            piece = tool.get("input")
            if type(piece) is str and piece:
                block.call = acc.tool_call(0, block.index, arguments=piece)
        elif "citation" in delta and kind in (None, _TEXT):
            block.kind = _TEXT
            block.citations.append(delta.get("citation"))
            # The event model has no citation event: streamed as raw.
            acc.unknown("contentBlockDelta", _without_padding(body))
        elif "toolResult" in delta and kind == _RESULT:
            block.results.extend(objects(delta.get("toolResult")))
            acc.unknown("contentBlockDelta", _without_padding(body))
        elif "image" in delta and kind == _IMAGE:
            image = object_or_none(delta.get("image")) or {}
            block.fields.update(image)
            acc.unknown("contentBlockDelta", _without_padding(body))
        else:
            acc.unknown("contentBlockDelta", _without_padding(body))

    def _reasoning(self, block: _Block, reasoning: dict[str, Any]) -> None:
        acc = self.acc
        text = reasoning.get("text")
        signature = reasoning.get("signature")
        redacted = reasoning.get("redactedContent")
        if type(text) is str and text:
            block.has_text = True
            block.add(acc.reasoning(0, text, block.index))
        if type(signature) is str and signature:
            block.add(acc.begin_part(0, PartKind.REASONING, block.index))
            block.signature.append(signature)
        if type(redacted) is str and redacted:
            # redacted reasoning has no text
            block.add(acc.begin_part(0, PartKind.REASONING, block.index))
            block.redacted.append(redacted)

    def _stop(self, body: dict[str, Any], event: ServerSentEvent) -> None:
        index = required_index(body, "contentBlockIndex", event)
        block = self.blocks.get(index)
        if block is None:
            # A block that had no event before its stop (an empty text block).
            block = self.blocks[index] = _Block(index, _TEXT)
        elif block.done:
            raise protocol_error(event, f"contentBlockStop for content block {index} twice")
        self._end_block(block, complete=True)

    def _message_stop(self, body: dict[str, Any], event: ServerSentEvent) -> None:
        # No block continues after messageStop. A text or reasoning block still
        # open ends with the message; a tool call still open was cut (stopped
        # by max_tokens mid-input, it gets no contentBlockStop): never run it.
        for block in self.blocks.values():
            if not block.done and block.kind is not None:
                self._end_block(block, complete=block.kind != _TOOL)
        for key in _STOP_FIELDS:
            if body.get(key) is not None:
                self.stop_fields[key] = body[key]
        stop = body.get("stopReason")
        if type(stop) is str and stop:
            self.stop_reason = stop
            calls = any(b.kind == _TOOL and not _server(b) for b in self.blocks.values())
            self.acc.finish(0, stop, unified_stop_reason(stop, calls))
        else:
            self.acc.warn(f"server-sent event #{event.index}: messageStop without a stopReason")
        self.stopped = True

    def _metadata(self, body: dict[str, Any]) -> None:
        usage = object_or_none(body.get("usage"))
        if usage is not None:
            self.usage = dict(usage)
            self.acc.set_usage(normalise_usage(self.usage))
        for key in _METADATA_FIELDS:
            if body.get(key) is not None:
                self.metadata[key] = body[key]
        self.described = True

    # -- blocks ------------------------------------------------------------------

    def _end_block(self, block: _Block, complete: bool) -> None:
        block.done = True
        block.revision += 1
        acc = self.acc
        if block.kind == _TEXT:
            acc.end_part(0, PartKind.TEXT, complete, owner=block.index)
        elif block.kind == _REASONING:
            block.add(acc.begin_part(0, PartKind.REASONING, block.index))
            acc.reasoning_signature(
                0,
                signature="".join(block.signature) or None,
                encrypted_content=_joined_base64(block.redacted) if block.redacted else None,
                owner=block.index,
            )
            acc.end_part(0, PartKind.REASONING, complete, owner=block.index)
        elif block.kind == _TOOL:
            block.input = self._final_input(block, complete)
            acc.end_tool_call(0, block.index, complete)

    def _final_input(self, block: _Block, complete: bool) -> Any:
        # Parsed once, when the block ends.
        arguments = block.arguments()
        if not arguments or arguments.isspace():
            if complete:
                # No input deltas: a tool that takes no input (its input is {}).
                self.acc.replace_arguments(0, block.index, "{}")
            return {}
        if not complete:
            return _partial_input(arguments)
        value, error = parse_arguments(arguments)
        if error is None:
            return value
        self.acc.warn(
            f"content block {block.index} (toolUse): the input is not valid JSON "
            f"({error.message}); the message holds the part that parses"
        )
        return _partial_input(arguments)

    def _end_open_blocks(self, complete: bool) -> None:
        for block in self.blocks.values():
            if not block.done and block.kind is not None:
                self._end_block(block, complete)

    # -- the native response -------------------------------------------------------

    def response(self) -> dict[str, Any]:
        """The ``ConverseResponse`` a non-streaming ``Converse`` call would have returned."""
        # Blocks are only ever added: sorted again when one was.
        if len(self._sorted) != len(self.blocks):
            self._sorted = sorted(self.blocks.values(), key=_block_index)
        content = [b.native() for b in self._sorted if b.kind is not None]
        output = {"message": {"role": self.role or "assistant", "content": content}}
        # Everything but the output is built again only when handle's dict path
        # folded an event since: a snapshot after every delta mostly changes a block.
        return self._top.response(output, self._build_response)

    def _build_response(self, output: dict[str, Any]) -> dict[str, Any]:
        out = {"output": output, "stopReason": self.stop_reason}
        if self.usage is not None:
            out["usage"] = _without_padding(self.usage)
        out.update(self.stop_fields)
        out.update(self.metadata)
        return out


def _block_index(block: _Block) -> int:
    return block.index


def _server(block: _Block) -> bool:
    return tag_or_none(block.fields.get("type")) == _SERVER_TOOL


def _tool_input_without_start(block: _Block, acc: Accumulator) -> None:
    # A toolUse input delta for a block that had no contentBlockStart: the
    # reference always starts a tool block (with its id and name); a proxy
    # that dropped the start still streams the call, which is kept without them.
    block.kind = _TOOL
    block.call = acc.tool_call(0, block.index)


class BedrockAnthropic(AnthropicMessages):
    """Anthropic's Claude on Bedrock ``InvokeModelWithResponseStream``
    (``"bedrock-anthropic"``): each ``chunk`` member's ``bytes`` is one
    Anthropic Messages event, base64-encoded, folded by the Anthropic dialect;
    the response is Anthropic's Message."""

    name = "bedrock-anthropic"

    def __init__(self, acc: Accumulator) -> None:
        super().__init__(acc)
        self._decode_chunk: Callable[[bytes], _TypedChunk] = typed_decoder(_TypedChunk)
        self._decode_wrapped_chunk: Callable[[bytes], _TypedWrappedChunk] = typed_decoder(
            _TypedWrappedChunk
        )

    @classmethod
    def detect(cls, event: ServerSentEvent, payload: Any) -> bool:
        """A ``chunk`` member (named or wrapped) holding an Anthropic event."""
        if not _is_member(event, payload, _INVOKE_EVENTS):
            return False
        try:
            name, value, failed = _member(event, _INVOKE_EVENTS)
            if failed:
                return False
            inner = _chunk_event(value, event) if name == "chunk" else None
        except ProtocolError:
            return False
        return inner is not None and AnthropicMessages.detect(inner, _decoded(inner))

    def handle(self, event: ServerSentEvent) -> bool:
        """Fold one ``chunk`` (its Anthropic event).

        Returns:
            ``True`` at the Anthropic stream's end (``message_stop``).

        Raises:
            ProviderError: an exception member or error message, or an
                Anthropic ``error`` event inside a chunk.
            ProtocolError: a chunk whose bytes are not base64, or an Anthropic
                event out of place.
        """
        if self.fast(event):
            return False
        name, value, failed = _member(event, _INVOKE_EVENTS)
        if failed:
            self._end_open_blocks()
            raise _failure(name, value, event)
        if name != "chunk":
            self.acc.unknown(name, _without_padding(value) if type(value) is dict else value)
            return False
        inner = _chunk_event(value, event)
        if inner is None:
            raise protocol_error(event, "chunk without its bytes")
        # Its typed path was tried (fast, with the same bytes): the dict path.
        return self._handle_dict(inner)

    def fast_run(self, events: list[ServerSentEvent], i: int) -> int:
        # The typed path: a chunk, named (the frames) or wrapped (a recording,
        # boto3's dicts), whose bytes are an Anthropic event that the Anthropic
        # typed path folds: its run over the frames' events, each unwrapped
        # when it reads it (a frame it would not fold is never unwrapped).
        # Every check comes before any side effect, so an event not folded is
        # left to handle (which raises the precise error).
        return i + AnthropicMessages.fast_run(self, _Unwrapped(self, events, i), 0)  # type: ignore[arg-type]

    def fast(self, event: ServerSentEvent) -> bool:
        # The typed path for one event (see fast_run).
        return self.fast_run([event], 0) == 1

    def _unwrap(self, event: ServerSentEvent) -> ServerSentEvent:
        # The Anthropic event a chunk's bytes hold, or _NOT_A_CHUNK.
        if event.event_set:
            if event.event != "chunk" or (
                isinstance(event, EventStreamMessage) and event.message_type != "event"
            ):
                return _NOT_A_CHUNK
            decode_named = self._decode_chunk
            try:
                data = decode_named(event.raw).data
            except TYPED_REJECTED:
                return _NOT_A_CHUNK
        else:
            decode_wrapped = self._decode_wrapped_chunk
            try:
                data = decode_wrapped(event.raw).chunk.data
            except TYPED_REJECTED:
                return _NOT_A_CHUNK
        try:
            raw = _strict_base64(data)  # _chunk_bytes, its common case inline: a call less
        except (binascii.Error, ValueError):
            text = _chunk_bytes(data)  # the event's JSON text itself, or not base64
            if text is None:
                return _NOT_A_CHUNK
            raw = text
        return ServerSentEvent(raw)


# What _Unwrapped reads for an event that is no chunk: named, and not an
# Anthropic delta, the Anthropic run stops at it.
_NOT_A_CHUNK: Final = ServerSentEvent(b"", "chunk", event_set=True)


class _Unwrapped:
    # The events[start:] of a Bedrock stream as the Anthropic events their
    # chunks carry, each unwrapped when read: what the Anthropic dialect's
    # run reads of its list (len and an index).
    __slots__ = ("_events", "_start", "_unwrap")

    def __init__(
        self, dialect: BedrockAnthropic, events: list[ServerSentEvent], start: int
    ) -> None:
        self._unwrap, self._events, self._start = dialect._unwrap, events, start

    def __len__(self) -> int:
        return len(self._events) - self._start

    def __getitem__(self, index: int) -> ServerSentEvent:
        return self._unwrap(self._events[self._start + index])


# A chunk, typed: its bytes (and Bedrock's padding), nothing else; any other
# field fails validation and the chunk takes the dict path.
class _TypedChunk(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    data: str = msgspec.field(name="bytes")
    p: Any = msgspec.UNSET  # padding


class _TypedWrappedChunk(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    chunk: _TypedChunk
    p: Any = msgspec.UNSET  # padding


_INVOKE_EVENTS: Final = frozenset({"chunk"})

#: ``base64.b64decode(data, validate=True)``: on Python 3.11 and later its
#: binascii call itself, without the two Python calls around it (a chunk's
#: bytes are decoded on the typed path, once per event).
if sys.version_info >= (3, 11):
    _strict_base64: Callable[[str], bytes] = functools.partial(
        binascii.a2b_base64, strict_mode=True
    )
else:
    _strict_base64 = functools.partial(base64.b64decode, validate=True)


def _chunk_event(value: Any, event: ServerSentEvent) -> ServerSentEvent | None:
    """The event a ``chunk``'s ``bytes`` holds, as the Anthropic dialect reads
    one (numbered as the chunk), or ``None`` when it has no ``bytes``.

    Raises:
        ProtocolError: the bytes are neither base64 nor an event's JSON text.
    """
    body = object_or_none(value)
    data = body.get("bytes") if body is not None else None
    if type(data) is not str:
        return None
    raw = _chunk_bytes(data)
    if raw is None:
        raise protocol_error(event, "chunk.bytes is not base64")
    return ServerSentEvent(raw, index=event.index, terminated=event.terminated)


def _chunk_bytes(data: str) -> bytes | None:
    """A chunk's ``bytes``: its event's JSON text, or ``None`` when they are
    neither base64 nor that text itself."""
    if data.startswith("{"):
        return _bytes_as_text(data)
    try:
        return _strict_base64(data)
    except (binascii.Error, ValueError):
        return None


def _bytes_as_text(data: str) -> bytes:
    # boto3 hands chunk.bytes over decoded (bytes); a recording written from
    # those dicts may hold the event's JSON text itself instead of base64. "{"
    # is not a base64 character, so the two cannot be mistaken for each other.
    return data.encode()


def _decoded(event: ServerSentEvent) -> Any:
    try:
        return decode_json(event)
    except ProtocolError:
        return None
