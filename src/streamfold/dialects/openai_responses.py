"""The OpenAI Responses API: a stream of typed ``response.*`` events.

Spoken by OpenAI and Azure, and by xAI, OpenRouter, LM Studio, GitHub Copilot,
DeepSeek and Amazon Bedrock (Mantle) among others. Unlike Chat Completions,
every event names what it changes: an output item (``output_index``), a
content or summary part of it, or the response's lifecycle. The fold keeps each
item's pieces in lists and builds the ``Response`` object only on demand; the
server's own objects (``*.done`` events, ``output_item.done`` items, the
terminal event's ``response``) win over what the deltas built, and every
difference is reported as a warning. The contract is in
``docs/dialects/openai-responses.md``; each provider's departure is a named
function below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, cast

import msgspec

from ..errors import ProtocolError, ProviderError, shorten
from ..events import Usage
from ..fold import NO_SINK, Accumulator, PartKind, PartView, ToolCallView
from ..sse import ServerSentEvent
from .base import (
    TYPED_REJECTED,
    Dialect,
    decode_json,
    index_or_none,
    int_or_none,
    objects,
    provider_error,
    str_or_none,
    tag_or_none,
    typed_decoder,
)

__all__ = [
    "NATIVE_INCOMPLETE",
    "OpenAIResponses",
    "native_usage",
    "normalise_usage",
    "resume_position",
]

_CHOICE: Final = 0  # the Responses API has one output list: choice 0 of the unified view

# Output item types that are tool calls in the unified view, and their kind.
_CALL_KINDS: Final = {"function_call": "function", "custom_tool_call": "custom"}

# Streamed string fields of output items: event prefix -> (item type, field).
_FIELD_EVENTS: Final = {
    "response.function_call_arguments": ("function_call", "arguments"),
    "response.custom_tool_call_input": ("custom_tool_call", "input"),
    "response.code_interpreter_call_code": ("code_interpreter_call", "code"),
    "response.mcp_call_arguments": ("mcp_call", "arguments"),
}
_ITEM_FIELDS: Final = {item_type: field for item_type, field in _FIELD_EVENTS.values()}


# The hot events, typed: a text delta of a known part, a reasoning summary
# delta of a known part, an arguments delta of a known call, and nothing else.
# Decoded straight into these Structs they cost less than a dict and its gets;
# a value of another type fails validation and the event takes the dict path,
# which folds it the same. Only the fields the dict path reads are declared:
# the others (item_id, obfuscation...) it ignores for these events (the output
# index, required here, is what finds the item), so they are skipped unbuilt.
class _TypedTextDelta(msgspec.Struct, tag_field="type", tag="response.output_text.delta", gc=False):
    output_index: int
    content_index: int
    delta: str
    sequence_number: int | msgspec.UnsetType = msgspec.UNSET
    logprobs: list[Any] | msgspec.UnsetType = msgspec.UNSET


class _TypedSummaryDelta(
    msgspec.Struct, tag_field="type", tag="response.reasoning_summary_text.delta", gc=False
):
    output_index: int
    summary_index: int
    delta: str
    sequence_number: int | msgspec.UnsetType = msgspec.UNSET


class _TypedArgumentsDelta(
    msgspec.Struct, tag_field="type", tag="response.function_call_arguments.delta", gc=False
):
    output_index: int
    delta: str
    sequence_number: int | msgspec.UnsetType = msgspec.UNSET


_TypedDelta = _TypedTextDelta | _TypedSummaryDelta | _TypedArgumentsDelta
_TEXT_DELTA: Final = "response.output_text.delta"
_SUMMARY_DELTA: Final = "response.reasoning_summary_text.delta"
_ARGUMENTS_DELTA: Final = "response.function_call_arguments.delta"
_UNNAMED: Final = "message"  # an event without an event line: the data's type decides
_UNSET: Final = msgspec.UNSET

# An item whose content arrives before its output_item.added gets the fields its
# added event would have had (what OpenAI sends there, a valid ResponseOutputMessage
# or ResponseReasoningItem): the response stays in the non-streaming shape.
_INFERRED_ITEM: Final[dict[str, dict[str, Any]]] = {
    "message": {"role": "assistant", "status": "in_progress", "content": []},
    "reasoning": {"summary": []},
}

# `response.<item type>.<status>` progress events of hosted tools: they only
# move the item's status until its output_item.done arrives.
_STATUS_ITEMS: Final = frozenset(
    {
        "web_search_call",
        "file_search_call",
        "code_interpreter_call",
        "image_generation_call",
        "mcp_call",
        "mcp_list_tools",
    }
)
_STATUSES: Final = frozenset(
    {"in_progress", "searching", "interpreting", "generating", "calling", "completed", "failed"}
)

# Content part type -> the accumulator's part kind.
_UNIFIED_KIND: Final = {
    "output_text": PartKind.TEXT,
    "refusal": PartKind.REFUSAL,
    "reasoning_text": PartKind.REASONING,
    "summary_text": PartKind.REASONING,
}

_INCOMPLETE: Final = {"max_output_tokens": "length", "content_filter": "content_filter"}
#: The other way, for encoders: the ``incomplete_details.reason`` of a unified finish reason.
NATIVE_INCOMPLETE: Final = {unified: reason for reason, unified in _INCOMPLETE.items()}

# Error codes of `response.failed` that OpenAI documents as transient, beside the
# shared ones (server_error, rate_limit_exceeded) that `provider_error` knows.
_RETRYABLE: Final = frozenset({"vector_store_timeout"})


def normalise_usage(raw: dict[str, Any]) -> Usage:
    """Normalise a Responses ``usage`` object; counts not reported stay ``None``."""
    input_details = raw.get("input_tokens_details")
    output_details = raw.get("output_tokens_details")
    cache_read = cache_write = reasoning = None
    if isinstance(input_details, dict):
        cache_read = int_or_none(input_details.get("cached_tokens"))
        cache_write = _bedrock_cache_write(input_details)
    if isinstance(output_details, dict):
        reasoning = int_or_none(output_details.get("reasoning_tokens"))
    return Usage(
        input_tokens=int_or_none(raw.get("input_tokens")),
        output_tokens=int_or_none(raw.get("output_tokens")),
        total_tokens=int_or_none(raw.get("total_tokens")),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=reasoning,
        raw=raw,
    )


def native_usage(usage: Usage) -> dict[str, Any]:
    """The Responses ``usage`` object of normalised ``usage``, the inverse of
    ``normalise_usage``: only the counts that are known (never a fake 0)."""
    out: dict[str, Any] = {}
    for key, value in (
        ("input_tokens", usage.input_tokens),
        ("output_tokens", usage.output_tokens),
        ("total_tokens", usage.total_tokens),
    ):
        if value is not None:
            out[key] = value
    input_details = {}
    if usage.cache_read_tokens is not None:
        input_details["cached_tokens"] = usage.cache_read_tokens
    if usage.cache_write_tokens is not None:
        input_details["cache_write_tokens"] = usage.cache_write_tokens
    if input_details:
        out["input_tokens_details"] = input_details
    if usage.reasoning_tokens is not None:
        out["output_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return out


def _bedrock_cache_write(input_details: dict[str, Any]) -> int | None:
    # Amazon Bedrock Mantle and GitHub Copilot report prompt-cache writes as
    # input_tokens_details.cache_write_tokens, a field OpenAI does not send.
    return int_or_none(input_details.get("cache_write_tokens"))


class _Part:
    """One content part (output_text, refusal, reasoning_text) or summary part."""

    __slots__ = (
        "annotations",
        "base",
        "built",
        "built_at",
        "key",
        "kind",
        "logprobs",
        "revision",
        "segments",
    )

    def __init__(self, kind: str, base: dict[str, Any] | None, key: tuple[int, str, int]) -> None:
        self.kind = kind
        self.key = key  # (output index, section, number): the owner of its accumulator parts
        # Grows with every event that reaches the part (see _part): the native
        # part is built again only then.
        self.revision = 0
        self.built: dict[str, Any] | None = None
        self.built_at = -1
        self.base = base  # the part object the server sent last (added, then done)
        # Its text, in order: the accumulator's parts that hold it (one, unless
        # the provider interleaved it with another part of its kind), the
        # server's final text when it replaced the deltas, and the pieces of a
        # part type that reaches no accumulator part.
        self.segments: list[PartView | str] = []
        self.annotations: dict[int, Any] = {}
        self.logprobs: list[Any] = []

    def text(self) -> str:
        segments = self.segments
        if len(segments) == 1:
            only = segments[0]
            return only if isinstance(only, str) else only.text
        return "".join([s if isinstance(s, str) else s.text for s in segments])

    def native(self) -> dict[str, Any]:
        if self.built is not None and self.built_at == self.revision:
            return self.built
        self.built = None  # let go of the old text first: it may then grow in place
        out: dict[str, Any] = dict(self.base) if self.base else {"type": self.kind}
        out["refusal" if self.kind == "refusal" else "text"] = self.text()
        if self.kind == "output_text":
            if self.annotations:
                out["annotations"] = [self.annotations[i] for i in sorted(self.annotations)]
            else:
                out.setdefault("annotations", [])
            if self.logprobs:
                out["logprobs"] = list(self.logprobs)  # it grows in later events
        self.built, self.built_at = out, self.revision
        return out


class _Item:
    """One output item being folded, keyed by its ``output_index``."""

    __slots__ = (
        "added",
        "built",
        "built_at",
        "call",
        "call_ended",
        "content",
        "done",
        "epoch",
        "field",
        "field_deltas",
        "index",
        "revision",
        "sink",
        "status",
        "summary",
        "type",
    )

    def __init__(self, index: int, added: dict[str, Any]) -> None:
        self.index = index
        self.added: dict[str, Any] = added
        self.add(added)
        self.done: dict[str, Any] | None = None  # the server's final item
        self.content: dict[int, _Part] = {}
        self.summary: dict[int, _Part] = {}
        self.field = _ITEM_FIELDS.get(self.type)
        # A call item's arguments are the accumulator's call; the streamed field
        # of any other item (a code_interpreter_call's code, an mcp_call's
        # arguments), and pieces after a call ended, are the dialect's own.
        self.call: ToolCallView | None = None
        self.field_deltas: list[str] = []
        self.status: str | None = None
        self.call_ended = False
        # A function call's kept state (see OpenAIResponses._typed_arguments):
        # its arguments sink, valid while the accumulator's epoch is
        # ``epoch`` (-1: none kept).
        self.epoch = -1
        self.sink: Callable[[str], object] = NO_SINK
        # Grows with every event that reaches the item (see _item): the native
        # item is built again only then.
        self.revision = 0
        self.built: dict[str, Any] | None = None
        self.built_at = -1

    def field_text(self) -> str:
        """The streamed field (arguments, input, code) so far."""
        own = "".join(self.field_deltas) if self.field_deltas else ""
        if self.call is None:
            return own
        return self.call.arguments + own if own else self.call.arguments

    def add(self, added: dict[str, Any]) -> None:
        """The item as its added event gave it (and its type, read per delta)."""
        self.added = added
        self.type = tag_or_none(added.get("type")) or ""

    def label(self) -> str:
        return f"output[{self.index}] ({self.type or 'item'})"

    def native(self) -> dict[str, Any]:
        if self.done is not None:
            return self.done
        if self.built is not None and self.built_at == self.revision:
            return self.built
        self.built = None  # let go of the old text first: it may then grow in place
        out = dict(self.added)
        if self.content:
            out["content"] = [self.content[i].native() for i in sorted(self.content)]
        if self.summary:
            out["summary"] = [self.summary[i].native() for i in sorted(self.summary)]
        if self.field is not None:
            text = self.field_text()
            if text or self.field not in out:
                out[self.field] = text
        if self.status is not None:
            out["status"] = self.status
        self.built, self.built_at = out, self.revision
        return out


_NO_PART: Final = _Part("", None, (-1, "", -1))  # a kept state's part before it has one


class _Kept:
    """The part of ``output[output]`` numbered ``number`` that the typed path's
    last text (or summary) delta went to, with the append to its accumulator
    part (``Accumulator.sink``; with events, the accumulator's call bound to
    it): valid while the accumulator's epoch is ``epoch`` and no event took
    the dict path (which may change the item or part). A call's kept state is
    its item's own (``_Item.epoch``, ``_Item.sink``)."""

    __slots__ = ("epoch", "item", "number", "output", "part", "sink")

    def __init__(self) -> None:
        self.epoch = self.output = self.number = -1  # none yet
        self.sink: Callable[[str], object] = NO_SINK
        self.item = _Item(-1, {})
        self.part = _NO_PART  # a call's has none


# A handler returns True at the stream's terminal point.
_Handler = Callable[["OpenAIResponses", ServerSentEvent, dict[str, Any]], bool | None]


class OpenAIResponses(Dialect):
    """The Responses API (``"openai-responses"``)."""

    name = "openai-responses"

    def __init__(self, acc: Accumulator) -> None:
        super().__init__(acc)
        # One decoder per hot event line (a Struct decoded alone checks its tag
        # when the data has one, as the dict path then reads it), and the union
        # for events without one.
        self._decode_text: Callable[[bytes], _TypedTextDelta] = typed_decoder(_TypedTextDelta)
        self._decode_summary: Callable[[bytes], _TypedSummaryDelta] = typed_decoder(
            _TypedSummaryDelta
        )
        self._decode_arguments: Callable[[bytes], _TypedArgumentsDelta] = typed_decoder(
            _TypedArgumentsDelta
        )
        self._decode_delta: Callable[[bytes], _TypedDelta] = typed_decoder(_TypedDelta)
        # The response object's fields, merged over the lifecycle events: the
        # latest event's value of each field wins; `output` is rebuilt.
        self.fields: dict[str, Any] = {}
        self.items: dict[int, _Item] = {}
        self.final_output: list[Any] | None = None  # the terminal event's output, when it wins
        self._by_id: dict[str, int] = {}
        self._last_index: int | None = None
        self._sequence: int | None = None
        self._replayed_through: int | None = None  # a resumed stream's seam: see resumed()
        self._noted: set[Any] = set()  # warnings given once per kind
        self._order: list[int] = []  # the output indexes, sorted (see response)
        # The typed path's kept parts and call (see _keep), one per delta type.
        self._text_kept = _Kept()
        self._summary_kept = _Kept()
        # The items whose call has a kept state (epoch not -1): the dict path
        # and resumed() drop them all (see _drop_kept).
        self._kept_calls: list[_Item] = []

    @classmethod
    def detect(cls, event: ServerSentEvent, payload: Any) -> bool:
        """A ``response.*`` event, a Responses ``error`` event, or a whole
        ``Response`` object (a gateway that answered without streaming)."""
        if not isinstance(payload, dict):
            return False
        kind = payload.get("type")
        if isinstance(kind, str):
            if kind.startswith("response."):
                return True
            # Anthropic's error event is {"type": "error", "error": {...}}: never
            # a sequence number nor a top-level code.
            return kind == "error" and ("sequence_number" in payload or "code" in payload)
        if payload.get("object") == "response":
            return True
        return event.event_set and event.event.startswith("response.")

    def handle(self, event: ServerSentEvent) -> bool:
        """Fold one event.

        Returns:
            ``True`` at ``response.completed`` or ``response.incomplete``.

        Raises:
            ProviderError: an ``error`` event or ``response.failed``.
            ProtocolError: the data is not a JSON object.
        """
        if self.fast(event):
            return False
        # The dict path may change a kept item or part (its type, its segments).
        self._drop_kept()
        if event.raw == b"[DONE]":
            self._openrouter_done_marker(event)
            return False
        payload = decode_json(event)
        if type(payload) is not dict:
            raise ProtocolError(
                f"server-sent event #{event.index} is not a JSON object: {shorten(event.raw)!r}",
                excerpt=shorten(event.raw),
                position=event.index,
            )
        kind = self._event_type(event, payload)
        if self._check_sequence(event, payload):
            return False
        handler = _HANDLERS.get(kind)
        if handler is not None:
            return handler(self, event, payload) is True
        prefix, _, suffix = kind.rpartition(".")
        if prefix in _FIELD_EVENTS and suffix in ("delta", "done"):
            self._field_event(prefix, suffix, payload)
        elif prefix.removeprefix("response.") in _STATUS_ITEMS and suffix in _STATUSES:
            self._status_event(prefix.removeprefix("response."), suffix, payload)
            self.acc.unknown(kind, payload)
        else:
            self.acc.unknown(kind or None, payload)
        return False

    # -- the response object --------------------------------------------------------

    def response(self) -> dict[str, Any]:
        """The ``Response`` object a non-streaming call would have returned."""
        out = dict(self.fields)
        out.setdefault("id", "")
        out.setdefault("object", "response")
        out.setdefault("status", "in_progress")
        if self.final_output is not None:
            out["output"] = self.final_output
        else:
            items = self.items
            if len(self._order) != len(items):
                self._order = sorted(items)
            out["output"] = [items[i].native() for i in self._order]
        return out

    # -- dispatch helpers -------------------------------------------------------------

    def _event_type(self, event: ServerSentEvent, payload: dict[str, Any]) -> str:
        # The JSON `type` is the event's type, as in OpenAI's SDK; the `event:`
        # line only stands in when the JSON has none.
        kind = tag_or_none(payload.get("type"))
        named = event.event if event.event_set and event.event != "message" else None
        if kind is not None:
            if named is not None and named != kind:
                self._note(
                    ("event", named, kind),
                    f"server-sent event #{event.index}: the event line says {named!r}, the "
                    f"data's type {kind!r}; the data's type is used",
                )
            return kind
        if payload.get("object") == "response":
            return "response"
        if named is not None:
            return named
        return "error" if "error" in payload else ""

    @property
    def sequence_number(self) -> int | None:
        """The last ``sequence_number`` folded, or ``None`` before any."""
        return self._sequence

    def resumed(self) -> None:
        """A re-attached background stream (``starting_after``) may send again
        events it had sent before the cut, the one at the cursor at least:
        those numbered up to the last one folded are skipped, until the first
        new one."""
        self._replayed_through = self._sequence
        # Kept only when nothing is being replayed:
        self._drop_kept()

    def _drop_kept(self) -> None:
        self._text_kept.epoch = self._summary_kept.epoch = -1
        kept_calls = self._kept_calls
        if kept_calls:
            for item in kept_calls:
                item.epoch = -1
            kept_calls.clear()

    def fast_run(self, events: list[ServerSentEvent], i: int) -> int:
        # fast() on each event in turn, with the common delta in line: the
        # next piece of the text, summary or call the last one of its kind
        # went to (its kept state, see _keep), with the next sequence number.
        # Any other event of the three goes to _typed_event, which folds it or
        # turns it down; every check comes before any side effect. In line,
        # not a call to _typed_event: parallel calls 228 -> 186 bytecodes per
        # event, text 203 -> 184.
        start, count = i, len(events)
        acc = self.acc
        items_get = self.items.get
        text_kept, summary_kept = self._text_kept, self._summary_kept
        decode_text, decode_summary = self._decode_text, self._decode_summary
        decode_arguments = self._decode_arguments
        unset = _UNSET
        following = None if self._sequence is None else self._sequence + 1
        for i in range(start, count):  # after a break, i is the first event not folded
            event = events[i]
            name = event.event
            typed: _TypedDelta
            try:
                if name == _ARGUMENTS_DELTA:
                    typed = decode_arguments(event.raw)
                    item = items_get(typed.output_index)
                    sequence = typed.sequence_number
                    if (
                        item is not None
                        and item.epoch == acc.epoch
                        and (sequence == following or sequence is unset)
                    ):
                        # A call a piece went to since the epoch last moved
                        # (see _typed_arguments).
                        if sequence is not unset:
                            self._sequence = sequence
                            following = sequence + 1
                        item.built = None
                        delta = typed.delta
                        if delta:
                            item.sink(delta)
                        continue
                elif name in (_TEXT_DELTA, _SUMMARY_DELTA):
                    if name == _TEXT_DELTA:
                        typed = decode_text(event.raw)
                        kept, number, logprobs = text_kept, typed.content_index, typed.logprobs
                    else:
                        typed = decode_summary(event.raw)
                        kept, number, logprobs = summary_kept, typed.summary_index, unset
                    sequence = typed.sequence_number
                    if (
                        number == kept.number
                        and typed.output_index == kept.output
                        and acc.epoch == kept.epoch
                        and (sequence == following or sequence is unset)
                        and not logprobs  # UNSET or none: else _typed_event keeps them
                    ):
                        # The next delta of the part the last one of its kind
                        # went to: its item and part are still what they were.
                        if sequence is not unset:
                            self._sequence = sequence
                            following = sequence + 1
                        kept.item.built = None  # built again: a revision bump, for less
                        kept.part.built = None
                        if typed.delta:
                            kept.sink(typed.delta)
                        continue
                elif name == _UNNAMED:
                    typed = self._decode_delta(event.raw)
                else:
                    break
            except TYPED_REJECTED:
                break
            if not self._typed_event(typed, event):
                break
            following = None if self._sequence is None else self._sequence + 1
        else:
            i = count
        return i

    def fast(self, event: ServerSentEvent) -> bool:
        # The typed path for one event (see fast_run, which the parser calls
        # on the events after each one the dict path took).
        return self.fast_run([event], 0) == 1

    def _typed_event(self, typed: _TypedDelta, event: ServerSentEvent) -> bool:
        # A decoded hot event fast_run did not fold in line: True when folded
        # here. Every check comes before any side effect, so a False leaves the
        # event to the dict path.
        # Its kind, and what the rest reads of it whatever its type (one check).
        if type(typed) is _TypedTextDelta:
            kept = self._text_kept
            number = typed.content_index
            logprobs = typed.logprobs
        elif type(typed) is _TypedSummaryDelta:
            kept = self._summary_kept
            number = typed.summary_index
            logprobs = _UNSET
        else:
            return self._typed_arguments(cast(_TypedArgumentsDelta, typed), event)
        if (
            number == kept.number
            and typed.output_index == kept.output
            and self.acc.epoch == kept.epoch
        ):
            # The next delta of the part the last one of its kind went to: its
            # item and part exist and are still what they were (_keep), so the
            # delta needs only its sequence check and the append.
            sequence = typed.sequence_number
            if sequence is not _UNSET:
                last = self._sequence
                if last is not None and sequence == last + 1:
                    self._sequence = sequence
                elif self._sequence_at(event, sequence):
                    return True
            kept.item.built = None  # built again: a revision bump, for less
            part = kept.part
            part.built = None
            if typed.delta:
                kept.sink(typed.delta)
            if logprobs:
                part.logprobs.extend(logprobs)
                self.acc.logprobs(_CHOICE, logprobs)
            return True
        item = self.items.get(typed.output_index)
        if item is None:
            return False
        found = (item.content if kept is self._text_kept else item.summary).get(number)
        if found is None:
            return False
        part = found
        sequence = typed.sequence_number
        if sequence is not _UNSET:
            last = self._sequence
            # The next number, as nearly every event has it: _sequence_at's first case.
            if last is not None and sequence == last + 1 and self._replayed_through is None:
                self._sequence = sequence
            elif self._sequence_at(event, sequence):
                return True
        item.revision += 1
        part.revision += 1
        delta = typed.delta
        if delta:
            # _feed, inlined for the part kinds these events reach.
            kind = part.kind
            if kind == "output_text":
                handle = self.acc.text(_CHOICE, delta, part.key)
            elif kind == "summary_text":
                handle = self.acc.reasoning(_CHOICE, delta, part.key)
            else:
                handle = None
                self._feed(part.key, part, delta)
            if handle is not None:
                segments = part.segments
                if not segments or segments[-1] is not handle:
                    segments.append(handle)
                self._keep(kept, item, part, number, self.acc.sink(handle))
        if logprobs:
            part.logprobs.extend(logprobs)
            self.acc.logprobs(_CHOICE, logprobs)
        return True

    def _typed_arguments(self, typed: _TypedArgumentsDelta, event: ServerSentEvent) -> bool:
        # fast() for a call's arguments delta, named or not: its own method, so
        # that a piece reads no part's fields. Each call keeps its own state on
        # its item, as the accumulator's epoch holds across switches between
        # interleaved calls: parallel calls, which change call on every piece,
        # take the kept path from each call's second piece on.
        item = self.items.get(typed.output_index)
        if item is None:
            return False
        acc = self.acc
        if item.epoch == acc.epoch:
            # A call a piece went to since the epoch last moved and no event
            # took the dict path: still a function call, not ended (its end
            # moves the epoch) and no replay pending.
            sequence = typed.sequence_number
            if sequence is not _UNSET:
                last = self._sequence
                if last is not None and sequence == last + 1:
                    self._sequence = sequence
                elif self._sequence_at(event, sequence):
                    return True
            item.built = None  # built again: a revision bump, for less
            delta = typed.delta
            if delta:
                item.sink(delta)
            return True
        if item.type != "function_call":
            return False
        sequence = typed.sequence_number
        if sequence is not _UNSET:
            last = self._sequence
            # The next number, as nearly every event has it: _sequence_at's first case.
            if last is not None and sequence == last + 1 and self._replayed_through is None:
                self._sequence = sequence
            elif self._sequence_at(event, sequence):
                return True
        item.built = None  # built again: a revision bump, for less
        if item.field is None:
            item.field = "arguments"
        delta = typed.delta
        if item.call_ended:
            if delta:
                item.field_deltas.append(delta)
        else:
            if delta:
                # _field_delta, inlined: the item is a function call.
                item.call = acc.tool_arguments(_CHOICE, item.index, delta)
            if item.call is not None and self._replayed_through is None:
                # Kept (see _keep) after the piece, with its call's sink:
                # tool_arguments may move the epoch.
                if item.epoch == -1:
                    self._kept_calls.append(item)
                item.epoch, item.sink = acc.epoch, acc.arguments_sink(_CHOICE, item.index)
        return True

    def _keep(
        self, kept: _Kept, item: _Item, part: _Part, number: int, sink: Callable[[str], object]
    ) -> None:
        # The part a typed delta just went to (its accumulator part's append:
        # now its last segment), kept so that the next delta of its kind goes
        # straight to it, until the epoch moves or an event takes the dict path
        # (which may change the item or part). Not while a resumed stream's
        # replay is pending: the kept path's sequence check does not look for
        # one. (The arguments' kept call is set inline, the same way.)
        if self._replayed_through is None:
            kept.item, kept.part, kept.sink = item, part, sink
            kept.output, kept.number, kept.epoch = item.index, number, self.acc.epoch

    def _check_sequence(self, event: ServerSentEvent, payload: dict[str, Any]) -> bool:
        # True for an event a re-attached stream replayed (skipped).
        return self._sequence_at(event, index_or_none(payload.get("sequence_number")))

    def _sequence_at(self, event: ServerSentEvent, sequence: int | None) -> bool:
        if sequence is None:
            return False
        replayed = self._replayed_through
        if replayed is not None:
            if sequence <= replayed:
                return True
            self._replayed_through = None
        last = self._sequence
        self._sequence = sequence
        if last is None or sequence == last + 1:
            return False
        if sequence > last:
            self.acc.warn(
                f"server-sent event #{event.index}: sequence_number jumps from {last} to "
                f"{sequence} ({sequence - last - 1} events missing)"
            )
        else:
            self.acc.warn(
                f"server-sent event #{event.index}: sequence_number goes from {last} back "
                f"to {sequence}"
            )
        return False

    def _note(self, key: Any, message: str) -> None:
        if key not in self._noted:
            self._noted.add(key)
            self.acc.warn(message)

    def _openrouter_done_marker(self, event: ServerSentEvent) -> None:
        # OpenRouter ends its Responses stream with the Chat Completions marker
        # `data: [DONE]` after response.completed (the parser ignores it there).
        # Before a terminal event it proves nothing: the stream stays incomplete.
        self.acc.warn(
            f"server-sent event #{event.index}: [DONE] before any terminal response event"
        )

    def _index(self, payload: dict[str, Any]) -> int:
        index = index_or_none(payload.get("output_index"))
        if index is not None:
            return index
        item_id = payload.get("item_id")
        if isinstance(item_id, str) and item_id in self._by_id:
            return self._by_id[item_id]
        return self._last_index if self._last_index is not None else 0

    def _item(self, payload: dict[str, Any], inferred: str) -> _Item:
        """The item an event refers to; created when its output_item.added never came."""
        index = self._index(payload)
        item = self.items.get(index)
        if item is not None:
            item.revision += 1
        else:
            if not self.acc.started:
                self.acc.start(None, None, None)
            self.acc.warn(
                f"output[{index}]: a {tag_or_none(payload.get('type')) or 'content'} event before "
                "the item's output_item.added; the item is assumed to be a " + inferred
            )
            added: dict[str, Any] = {"type": inferred}
            item_id = str_or_none(payload.get("item_id"))
            if item_id is not None:
                added["id"] = item_id
            for key, value in _INFERRED_ITEM.get(inferred, {}).items():
                added[key] = list(value) if type(value) is list else value
            item = self._new_item(index, added)
            if inferred in _CALL_KINDS:
                item.call = self.acc.tool_call(_CHOICE, index, kind=_CALL_KINDS[inferred])
        return item

    def _new_item(self, index: int, added: dict[str, Any]) -> _Item:
        item = self.items[index] = _Item(index, added)
        self._last_index = index
        item_id = added.get("id")
        if isinstance(item_id, str):
            self._by_id[item_id] = index
        return item

    # -- parts: native lists and the accumulator ----------------------------------------

    def _feed(self, key: tuple[int, str, int], part: _Part, delta: str) -> None:
        # The accumulator's part is owned by the Responses part's key: a delta
        # for another Responses part of the kind ends the one before (never
        # merged into it).
        kind = _UNIFIED_KIND.get(part.kind)
        segments = part.segments
        if kind is None:
            segments.append(delta)
            return
        if kind is PartKind.TEXT:
            handle = self.acc.text(_CHOICE, delta, key)
        elif kind is PartKind.REASONING:
            handle = self.acc.reasoning(_CHOICE, delta, key)
        else:
            handle = self.acc.refusal(_CHOICE, delta, key)
        if not segments or segments[-1] is not handle:
            segments.append(handle)

    def _end(self, key: tuple[int, str, int], part: _Part) -> None:
        kind = _UNIFIED_KIND.get(part.kind)
        if kind is not None:
            self.acc.end_part(_CHOICE, kind, owner=key)

    def _open_part_of(self, kind: PartKind, index: int) -> PartView | None:
        # The accumulator's open part of ``kind``, when it is one of output[index]'s.
        part = self.acc.choice(_CHOICE).open_part(kind)
        owner = part.owner if part is not None else None
        return part if type(owner) is tuple and owner[0] == index else None

    def _settle(self, key: tuple[int, str, int], part: _Part, final: Any, where: str) -> None:
        """The server's final text of a part: it wins over the deltas."""
        if not isinstance(final, str):
            return
        current = part.text()
        if final == current:
            return
        if final.startswith(current):
            # Deltas missing at the end (or none at all: LM Studio sends some
            # arguments only in the done event): the rest becomes one delta.
            if current:
                self.acc.warn(
                    f"{where}: the deltas hold {len(current)} of the {len(final)} characters "
                    "the done event gives; the rest is added"
                )
            self._feed(key, part, final[len(current) :])
            return
        if not final:
            self.acc.warn(f"{where}: the done event's text is empty; the streamed text is kept")
            return
        self.acc.warn(f"{where}: the done event's text differs from the deltas; it wins")
        kind = _UNIFIED_KIND.get(part.kind)
        open_part = self.acc.choice(_CHOICE).open_part(kind) if kind is not None else None
        if kind is not None and open_part is not None and open_part.owner == key:
            # Still open: the accumulator's part takes the final text.
            self.acc.replace_part(_CHOICE, kind, final, key)
            part.segments = [open_part]
        else:
            part.segments = [final]

    def _part(
        self, item: _Item, section: str, payload: dict[str, Any], kind: str, index_key: str
    ) -> tuple[tuple[int, str, int], _Part]:
        parts = item.summary if section == "summary" else item.content
        number = index_or_none(payload.get(index_key))
        if number is None:
            number = max(parts) if parts else 0
        part = parts.get(number)
        if part is None:
            part = parts[number] = _Part(kind, None, (item.index, section, number))
        part.revision += 1
        return part.key, part

    # -- lifecycle -------------------------------------------------------------------

    def _lifecycle(self, event: ServerSentEvent, payload: dict[str, Any]) -> dict[str, Any]:
        response = payload.get("response")
        if type(response) is not dict:
            return {}
        self._copilot_rotating_response_id(response)
        self.fields.update(response)
        if not self.acc.started:
            self.acc.start(
                str_or_none(response.get("id")),
                str_or_none(response.get("model")),
                int_or_none(response.get("created_at")),
            )
        usage = response.get("usage")
        if type(usage) is dict:
            self.acc.set_usage(normalise_usage(usage))
        return response

    def _copilot_rotating_response_id(self, response: dict[str, Any]) -> None:
        # GitHub Copilot rotates the response id (and every item id) on each
        # event. The latest id wins; OpenAI's SDK rejects such a stream.
        known = str_or_none(self.fields.get("id"))
        new = str_or_none(response.get("id"))
        if known is not None and new is not None and known != new:
            self._note(
                "response-id",
                f"the response id changed from {known!r} to {new!r} between lifecycle "
                "events; the latest id wins",
            )

    def _created(self, event: ServerSentEvent, payload: dict[str, Any]) -> None:
        self._lifecycle(event, payload)

    def _completed(self, event: ServerSentEvent, payload: dict[str, Any]) -> bool:
        response = self._lifecycle(event, payload)
        self._reconcile("response.completed", response)
        status = str_or_none(response.get("status")) or "completed"
        self.acc.finish(_CHOICE, status, "tool_calls" if self._has_calls() else "stop")
        return True

    def _incomplete(self, event: ServerSentEvent, payload: dict[str, Any]) -> bool:
        response = self._lifecycle(event, payload)
        self._reconcile("response.incomplete", response)
        details = response.get("incomplete_details")
        reason = str_or_none(details.get("reason")) if isinstance(details, dict) else None
        self.acc.finish(_CHOICE, reason or "incomplete", _INCOMPLETE.get(reason or "", "other"))
        return True

    def _failed(self, event: ServerSentEvent, payload: dict[str, Any]) -> None:
        response = self._lifecycle(event, payload)
        self._reconcile("response.failed", response)
        error = response.get("error")
        if not isinstance(error, dict):
            error = _perplexity_failed_error(payload)
        code = str_or_none(error.get("code"))
        message = error.get("message")
        text = message if isinstance(message, str) and message else ""
        if code and text:
            text = f"{code}: {text}"
        elif code:
            text = f"{code}: the response failed"
        else:
            text = text or "the response failed"
        self.acc.finish(_CHOICE, "failed", "error", close=False)
        raise _error(text, code, str_or_none(error.get("type")), error, event.index)

    def _whole_response(self, event: ServerSentEvent, payload: dict[str, Any]) -> bool | None:
        # A gateway that answered without streaming, or a body that is one
        # Response object: fold it as its terminal event.
        status = payload.get("status")
        wrapped = {"type": f"response.{status}", "response": payload}
        handler = {
            "completed": OpenAIResponses._completed,
            "incomplete": OpenAIResponses._incomplete,
            "failed": OpenAIResponses._failed,
        }.get(status if isinstance(status, str) else "", OpenAIResponses._created)
        return handler(self, event, wrapped)

    def _error(self, event: ServerSentEvent, payload: dict[str, Any]) -> None:
        # OpenAI documents {"type": "error", "code", "message", "param"}; OpenAI's
        # own servers also send the error nested as {"error": {...}}.
        nested = payload.get("error")
        error = nested if isinstance(nested, dict) else payload
        message = error.get("message")
        text = message if isinstance(message, str) and message else "the provider reported an error"
        kind = str_or_none(error.get("type")) if error is nested else None
        raise _error(text, str_or_none(error.get("code")), kind, payload, event.index)

    def _has_calls(self) -> bool:
        if self.final_output is not None:
            return any(
                tag_or_none(item.get("type")) in _CALL_KINDS for item in objects(self.final_output)
            )
        return any(item.type in _CALL_KINDS for item in self.items.values())

    def _reconcile(self, kind: str, response: dict[str, Any]) -> None:
        """The terminal event's output against the streamed items: the server wins."""
        output = response.get("output")
        if type(output) is not list:
            return
        streamed = [self.items[i] for i in sorted(self.items)]
        if not output and streamed:
            self.acc.warn(
                f"{kind} carries an empty output; the {len(streamed)} streamed items are kept"
            )
            return
        self.final_output = output
        if len(output) != len(streamed):
            self.acc.warn(
                f"{kind} has {len(output)} output items, the stream built {len(streamed)}; "
                "the server's output wins"
            )
        for position, (item, final) in enumerate(zip(streamed, output, strict=False)):
            built = item.native()
            if built == final:
                # The same item: the response keeps the streamed one, whose
                # texts are the accumulator's, not the server's second copy.
                output[position] = built
                continue
            if type(final) is not dict:
                continue
            keys = sorted(
                k
                for k in built.keys() | final.keys()
                if built.get(k) != final.get(k) and not _openai_reencrypted_reasoning(k)
            )
            if not keys:
                continue
            self.acc.warn(
                f"{kind}: output[{position}] ({tag_or_none(final.get('type'))}) differs from the "
                f"streamed {item.label()} in {', '.join(keys)}; the server's item wins"
            )
        # Items only the terminal event has (a gateway that streams nothing but
        # response.completed) are folded now, so the unified view shows them.
        next_index = max(self.items, default=-1) + 1
        for final in output[len(streamed) :]:
            if type(final) is dict:
                self._fold_done_item(next_index, final)
                next_index += 1

    # -- output items ------------------------------------------------------------------

    def _item_added(self, event: ServerSentEvent, payload: dict[str, Any]) -> None:
        added = payload.get("item")
        if type(added) is not dict:
            return  # an empty added event: OpenAI's SDK tolerates it as a gap
        index = self._index(payload)
        item = self.items.get(index)
        if item is not None:
            if item.done is not None or item.type != added.get("type"):
                self.acc.warn(f"output[{index}] was added twice; the later item replaces it")
            item.add(dict(added))
            item.revision += 1
            item_id = added.get("id")
            if isinstance(item_id, str):
                self._by_id[item_id] = index
            return
        if not self.acc.started:
            self.acc.start(None, None, None)
        item = self._new_item(index, dict(added))
        kind = _CALL_KINDS.get(item.type)
        if kind is not None:
            initial = added.get(item.field or "")
            item.call = self.acc.tool_call(
                _CHOICE,
                index,
                id=str_or_none(added.get("call_id")),
                name=str_or_none(added.get("name")),
                kind=kind,
            )
            if isinstance(initial, str) and initial:
                # The SDK treats arguments in the added item as the first piece.
                self._field_delta(item, initial)
        elif item.type not in ("message", "reasoning"):
            self.acc.unknown("response.output_item.added", payload)

    def _item_done(self, event: ServerSentEvent, payload: dict[str, Any]) -> None:
        done = payload.get("item")
        if type(done) is not dict:
            return
        self._fold_done_item(self._index(payload), done, payload)

    def _fold_done_item(
        self, index: int, done: dict[str, Any], payload: dict[str, Any] | None = None
    ) -> None:
        item = self.items.get(index)
        if item is None:
            if not self.acc.started:
                self.acc.start(None, None, None)
            item = self._new_item(index, dict(done))
            if item.type in _CALL_KINDS:
                item.call = self.acc.tool_call(
                    _CHOICE,
                    index,
                    id=str_or_none(done.get("call_id")),
                    name=str_or_none(done.get("name")),
                    kind=_CALL_KINDS[item.type],
                )
        item_id = done.get("id")
        if isinstance(item_id, str):
            self._by_id[item_id] = index
        kind = tag_or_none(done.get("type")) or item.type
        if kind == "message":
            self._settle_parts(item, "content", done.get("content"))
            for unified in (PartKind.TEXT, PartKind.REFUSAL):
                open_part = self._open_part_of(unified, index)
                if open_part is not None:
                    self.acc.end_part(_CHOICE, unified, owner=open_part.owner)
        elif kind == "reasoning":
            self._settle_parts(item, "summary", done.get("summary"))
            self._settle_parts(item, "content", done.get("content"))
            self._end_reasoning(item, done.get("encrypted_content"))
        elif kind in _CALL_KINDS:
            self._done_call(item, done)
        elif payload is not None:
            self.acc.unknown("response.output_item.done", payload)
        item.done = done

    def _settle_parts(self, item: _Item, section: str, parts: Any) -> None:
        if type(parts) is not list:
            return
        store = item.summary if section == "summary" else item.content
        for number, final in enumerate(parts):
            if type(final) is not dict:
                continue
            part_type = tag_or_none(final.get("type"))
            if part_type is None:
                continue
            part = store.get(number)
            if part is None:
                part = store[number] = _Part(part_type, final, (item.index, section, number))
            part.revision += 1
            key = part.key
            text = final.get("refusal" if part_type == "refusal" else "text")
            self._settle(key, part, text, f"{item.label()} {section}[{number}]")
            self._server_part(part, final)
            if part.kind != "summary_text" and part.kind != "reasoning_text":
                self._end(key, part)

    def _server_part(self, part: _Part, final: dict[str, Any]) -> None:
        part.base = final
        field = "refusal" if part.kind == "refusal" else "text"
        text = final.get(field)
        if type(text) is str and text:
            # The done event repeats the text whole (and so does the final
            # item): kept, it holds the stream's string, not a second copy (a
            # 100,000-delta answer: result 2.0x -> 1.0x of its text).
            streamed = part.text()
            if streamed == text:
                final[field] = streamed
        annotations = final.get("annotations")
        if type(annotations) is list and annotations:
            part.annotations = dict(enumerate(annotations))
        logprobs = final.get("logprobs")
        if type(logprobs) is list and logprobs:
            part.logprobs = logprobs

    def _end_reasoning(self, item: _Item, encrypted_content: Any) -> None:
        # A reasoning part ends with its item, not at its text's done event, so
        # that the item's encrypted_content (sent only now) rides on its
        # reasoning.done event.
        # The accumulator ends reasoning itself when answer text or a tool call
        # starts (OpenRouter streams the message before the reasoning item is
        # done): the content then has no part to ride on, and must not be left
        # for the next one.
        open_part = self._open_part_of(PartKind.REASONING, item.index)
        if open_part is None:
            return
        if isinstance(encrypted_content, str) and encrypted_content:
            self.acc.reasoning_signature(
                _CHOICE, encrypted_content=encrypted_content, owner=open_part.owner
            )
        self.acc.end_part(_CHOICE, PartKind.REASONING, owner=open_part.owner)

    def _done_call(self, item: _Item, done: dict[str, Any]) -> None:
        if item.call is not None:
            # The call id or name may come only with the final item.
            self.acc.tool_call(
                _CHOICE,
                item.index,
                id=str_or_none(done.get("call_id")),
                name=str_or_none(done.get("name")),
            )
        final = done.get(item.field or "")
        self._settle_field(item, final, f"{item.label()} {item.field}")
        if item.field and type(final) is str:
            # The final item repeats the arguments whole: the response keeps
            # the accumulator's string (the same text) instead of a second copy.
            text = item.field_text()
            if text == final:
                done[item.field] = text
        if not item.call_ended:
            item.call_ended = True
            self.acc.end_tool_call(_CHOICE, item.index)

    # -- streamed item fields: arguments, input, code ---------------------------------------

    def _field_event(self, prefix: str, suffix: str, payload: dict[str, Any]) -> None:
        item_type, field = _FIELD_EVENTS[prefix]
        item = self._item(payload, item_type)
        if item.field is None:
            item.field = field
        if suffix == "delta":
            delta = payload.get("delta")
            if isinstance(delta, str) and delta:
                self._field_delta(item, delta)
        else:
            self._settle_field(item, payload.get(field), f"{item.label()} {field}")
        if item.type not in _CALL_KINDS:
            self.acc.unknown(f"{prefix}.{suffix}", payload)

    def _field_delta(self, item: _Item, delta: str) -> None:
        if item.type in _CALL_KINDS and not item.call_ended:
            item.call = self.acc.tool_arguments(_CHOICE, item.index, delta)
        else:
            item.field_deltas.append(delta)

    def _settle_field(self, item: _Item, final: Any, where: str) -> None:
        if not isinstance(final, str):
            return
        current = item.field_text()
        if final == current:
            return
        if final.startswith(current):
            if current:
                self.acc.warn(
                    f"{where}: the deltas hold {len(current)} of the {len(final)} characters "
                    "the done event gives; the rest is added"
                )
            self._field_delta(item, final[len(current) :])
            return
        if not final:
            self.acc.warn(f"{where}: the done event's value is empty; the streamed value is kept")
            return
        self.acc.warn(f"{where}: the done event's value differs from the deltas; it wins")
        if item.call is not None:
            self.acc.replace_arguments(_CHOICE, item.index, final)
            item.field_deltas = []
        else:
            item.field_deltas = [final]

    def _status_event(self, item_type: str, status: str, payload: dict[str, Any]) -> None:
        self._item(payload, item_type).status = status

    # -- content and summary parts ---------------------------------------------------------

    def _content_part_added(self, event: ServerSentEvent, payload: dict[str, Any]) -> None:
        part_dict = payload.get("part")
        part_type = tag_or_none(part_dict.get("type")) if type(part_dict) is dict else None
        inferred = "reasoning" if part_type == "reasoning_text" else "message"
        item = self._item(payload, inferred)
        key, part = self._part(
            item, "content", payload, part_type or "output_text", "content_index"
        )
        if type(part_dict) is dict:
            if part_type is not None:
                part.kind = part_type
            part.base = part_dict
            # The SDK treats text in the added part as its first piece.
            initial = part_dict.get("refusal" if part.kind == "refusal" else "text")
            if isinstance(initial, str) and initial and not part.segments:
                self._feed(key, part, initial)

    def _content_part_done(self, event: ServerSentEvent, payload: dict[str, Any]) -> None:
        final = payload.get("part")
        if type(final) is not dict:
            return
        kind = tag_or_none(final.get("type")) or "output_text"
        item = self._item(payload, "reasoning" if kind == "reasoning_text" else "message")
        key, part = self._part(item, "content", payload, kind, "content_index")
        text = final.get("refusal" if part.kind == "refusal" else "text")
        self._settle(key, part, text, f"{item.label()} content[{key[2]}]")
        self._server_part(part, final)
        if part.kind != "reasoning_text":
            self._end(key, part)

    def _text_delta(self, event: ServerSentEvent, payload: dict[str, Any]) -> None:
        item = self._item(payload, "message")
        key, part = self._part(item, "content", payload, "output_text", "content_index")
        delta = payload.get("delta")
        if isinstance(delta, str) and delta:
            self._feed(key, part, delta)
        logprobs = payload.get("logprobs")
        if type(logprobs) is list and logprobs:
            part.logprobs.extend(logprobs)
            self.acc.logprobs(_CHOICE, logprobs)

    def _text_done(self, event: ServerSentEvent, payload: dict[str, Any]) -> None:
        item = self._item(payload, "message")
        key, part = self._part(item, "content", payload, "output_text", "content_index")
        self._settle(key, part, payload.get("text"), f"{item.label()} content[{key[2]}]")
        logprobs = payload.get("logprobs")
        if type(logprobs) is list and logprobs:
            if not part.logprobs:
                self.acc.logprobs(_CHOICE, logprobs)
            part.logprobs = logprobs
        self._end(key, part)

    def _annotation_added(self, event: ServerSentEvent, payload: dict[str, Any]) -> None:
        item = self._item(payload, "message")
        _, part = self._part(item, "content", payload, "output_text", "content_index")
        number = index_or_none(payload.get("annotation_index"))
        if number is None:
            number = len(part.annotations)
        part.annotations[number] = payload.get("annotation")
        self.acc.unknown("response.output_text.annotation.added", payload)

    def _summary_part_added(self, event: ServerSentEvent, payload: dict[str, Any]) -> None:
        item = self._item(payload, "reasoning")
        key, part = self._part(item, "summary", payload, "summary_text", "summary_index")
        part_dict = payload.get("part")
        if type(part_dict) is dict:
            part.base = part_dict
            initial = part_dict.get("text")
            if isinstance(initial, str) and initial and not part.segments:
                self._feed(key, part, initial)

    def _summary_part_done(self, event: ServerSentEvent, payload: dict[str, Any]) -> None:
        item = self._item(payload, "reasoning")
        key, part = self._part(item, "summary", payload, "summary_text", "summary_index")
        final = payload.get("part")
        if type(final) is dict:
            self._settle(key, part, final.get("text"), f"{item.label()} summary[{key[2]}]")
            part.base = final


def _streamed_delta(item_type: str, section: str, kind: str, index_key: str) -> _Handler:
    # A text delta of one part: refusal, summary or reasoning text alike.
    def handle(self: OpenAIResponses, event: ServerSentEvent, payload: dict[str, Any]) -> None:
        item = self._item(payload, item_type)
        key, part = self._part(item, section, payload, kind, index_key)
        delta = payload.get("delta")
        if isinstance(delta, str) and delta:
            self._feed(key, part, delta)

    return handle


def _streamed_done(
    item_type: str, section: str, kind: str, index_key: str, field: str, end: bool
) -> _Handler:
    # A part's final text: it settles the deltas; a refusal part also ends here
    # (summary and reasoning parts end with their item).
    def handle(self: OpenAIResponses, event: ServerSentEvent, payload: dict[str, Any]) -> None:
        item = self._item(payload, item_type)
        key, part = self._part(item, section, payload, kind, index_key)
        self._settle(key, part, payload.get(field), f"{item.label()} {section}[{key[2]}]")
        if end:
            self._end(key, part)

    return handle


_HANDLERS: Final[dict[str, _Handler]] = {
    "response.created": OpenAIResponses._created,
    "response.queued": OpenAIResponses._created,
    "response.in_progress": OpenAIResponses._created,
    "response.completed": OpenAIResponses._completed,
    "response.incomplete": OpenAIResponses._incomplete,
    "response.failed": OpenAIResponses._failed,
    "response": OpenAIResponses._whole_response,
    "error": OpenAIResponses._error,
    "response.output_item.added": OpenAIResponses._item_added,
    "response.output_item.done": OpenAIResponses._item_done,
    "response.content_part.added": OpenAIResponses._content_part_added,
    "response.content_part.done": OpenAIResponses._content_part_done,
    "response.output_text.delta": OpenAIResponses._text_delta,
    "response.output_text.done": OpenAIResponses._text_done,
    "response.output_text.annotation.added": OpenAIResponses._annotation_added,
    "response.refusal.delta": _streamed_delta("message", "content", "refusal", "content_index"),
    "response.refusal.done": _streamed_done(
        "message", "content", "refusal", "content_index", "refusal", end=True
    ),
    "response.reasoning_summary_part.added": OpenAIResponses._summary_part_added,
    "response.reasoning_summary_part.done": OpenAIResponses._summary_part_done,
    "response.reasoning_summary_text.delta": _streamed_delta(
        "reasoning", "summary", "summary_text", "summary_index"
    ),
    "response.reasoning_summary_text.done": _streamed_done(
        "reasoning", "summary", "summary_text", "summary_index", "text", end=False
    ),
    "response.reasoning_text.delta": _streamed_delta(
        "reasoning", "content", "reasoning_text", "content_index"
    ),
    "response.reasoning_text.done": _streamed_done(
        "reasoning", "content", "reasoning_text", "content_index", "text", end=False
    ),
}


def _error(
    message: str, code: str | None, kind: str | None, raw: Any, position: int
) -> ProviderError:
    shared = provider_error({"code": code, "type": kind})
    return ProviderError(
        message,
        code=code or kind,
        error_type=kind,
        raw=raw,
        retryable=shared.retryable or code in _RETRYABLE,
        position=position,
    )


def _openai_reencrypted_reasoning(key: str) -> bool:
    # OpenAI encrypts a reasoning item's encrypted_content anew for every event
    # that carries it (output_item.added, .done, response.completed): the blobs
    # differ without the reasoning differing, so that difference is not reported.
    return key == "encrypted_content"


def _perplexity_failed_error(payload: dict[str, Any]) -> dict[str, Any]:
    # Perplexity's response.failed carries the error beside the response, as
    # a top-level `error`, instead of inside it.
    error = payload.get("error")
    return error if isinstance(error, dict) else {}


def resume_position(dialect: Dialect) -> tuple[str, str] | None:
    """Where a cut Responses stream is re-attached: ``GET /responses/{id}
    ?stream=true&starting_after={sequence_number}`` (background responses
    only) takes the response's id and the last sequence number folded;
    ``None`` until both are known."""
    if not isinstance(dialect, OpenAIResponses) or dialect.sequence_number is None:
        return None
    response_id = str_or_none(dialect.fields.get("id"))
    return (response_id, str(dialect.sequence_number)) if response_id else None
