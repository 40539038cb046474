"""The OpenAI Chat Completions family: ``chat.completion.chunk`` streams.

Spoken by OpenAI, Azure, DeepSeek, Qwen/DashScope, Moonshot, Zhipu GLM,
OpenRouter, Mistral, Groq, xAI, Perplexity, Cerebras, vLLM and llama.cpp
servers, GitHub Copilot, and the OpenAI-compatible endpoints of Anthropic and
Gemini. Each provider's departure from OpenAI's format is a named function
below, with the behaviour it handles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any, Final, NamedTuple

import msgspec

from ..errors import ProtocolError, ProviderError, shorten
from ..events import Usage
from ..fold import (
    NO_SINK,
    REASONING,
    TEXT,
    Accumulator,
    ChoiceView,
    PartKind,
    PartView,
    ToolCallView,
)
from ..sse import ServerSentEvent
from .base import (
    TYPED_REJECTED,
    Dialect,
    arguments_text,
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
    "NATIVE_FINISH",
    "OpenAIChat",
    "native_usage",
    "normalise_usage",
    "unified_finish_reason",
]

_decode = msgspec.json.Decoder().decode


# The common chunk shapes, typed: a text, reasoning or argument piece of a known
# choice and call, nothing else. Decoding straight into these Structs is much
# cheaper than building dicts; any chunk with another field or value (a new
# call, a finish reason, usage, logprobs, a provider's extra field) fails
# validation and takes the general dict path, which gives the same result.
class _TypedArguments(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    arguments: str


class _TypedToolCall(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    index: int
    function: _TypedArguments


class _TypedDelta(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    # UNSET when absent: a field sent as null is part of the stream's shape.
    content: str | msgspec.UnsetType | None = msgspec.UNSET
    reasoning_content: str | msgspec.UnsetType | None = msgspec.UNSET
    tool_calls: list[_TypedToolCall] | msgspec.UnsetType | None = msgspec.UNSET


class _TypedChoice(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    index: int
    delta: _TypedDelta
    logprobs: None = None
    finish_reason: None = None


class _TypedChunk(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    choices: list[_TypedChoice]
    id: Any = msgspec.UNSET
    object: Any = msgspec.UNSET
    created: Any = msgspec.UNSET
    model: Any = msgspec.UNSET
    service_tier: Any = msgspec.UNSET
    system_fingerprint: Any = msgspec.UNSET
    usage: None = None
    obfuscation: Any = msgspec.UNSET


# Past this many rejections, outnumbering the accepted chunks, a stream whose
# every chunk carries an extra field (Azure's content_filter_results) stops
# paying for two decodes per chunk.
_TYPED_GIVE_UP = 16
# A call with no kept sink yet (see _ChoiceExtras.sinks): never the epoch.
_NO_KEPT: Final[tuple[int, Callable[[str], object]]] = (-1, NO_SINK)

_RESPONSE_FIELDS: Final = ("id", "model", "created", "system_fingerprint", "service_tier")
# Fields read on every chunk; any other key (error, x_groq, provider fields)
# sends the chunk through the slower path.
_KNOWN_TOP: Final = frozenset(
    {
        "id",
        "object",
        "created",
        "model",
        "system_fingerprint",
        "service_tier",
        "choices",
        "usage",
        "obfuscation",
    }
)
_KNOWN_CHOICE: Final = frozenset({"index", "delta", "logprobs", "finish_reason"})
_KNOWN_DELTA: Final = frozenset(
    {"role", "content", "refusal", "reasoning_content", "reasoning", "tool_calls", "function_call"}
)

_FINISH: Final = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "error": "error",
    # DeepSeek: generation cut short because the service ran out of capacity.
    "insufficient_system_resource": "error",
    # vLLM, llama.cpp and compatible servers.
    "eos": "stop",
    "stop_sequence": "stop",
    "end_turn": "stop",
    "max_tokens": "length",
    "model_length": "length",  # Mistral
    "tool_use": "tool_calls",
    # Zhipu GLM.
    "sensitive": "content_filter",
    "network_error": "error",
}


#: The other way, for encoders: each unified finish reason's Chat Completions value,
#: the first raw value above that means it ("other" has none).
NATIVE_FINISH: Final = {unified: raw for raw, unified in reversed(_FINISH.items())}


def unified_finish_reason(raw: str) -> str:
    """Map a provider's finish reason to stop, length, tool_calls, content_filter,
    error or other."""
    return _FINISH.get(raw, "other")


def normalise_usage(raw: dict[str, Any]) -> Usage:
    """Normalise a chat ``usage`` object; counts not reported stay ``None``."""
    prompt_details = raw.get("prompt_tokens_details")
    completion_details = raw.get("completion_tokens_details")
    cache_read = _deepseek_cache_hit(raw)
    cache_write = None
    if isinstance(prompt_details, dict):
        if cache_read is None:
            cache_read = int_or_none(prompt_details.get("cached_tokens"))
        cache_write = int_or_none(prompt_details.get("cache_write_tokens"))
    reasoning = None
    if isinstance(completion_details, dict):
        reasoning = int_or_none(completion_details.get("reasoning_tokens"))
    return Usage(
        input_tokens=int_or_none(raw.get("prompt_tokens")),
        output_tokens=int_or_none(raw.get("completion_tokens")),
        total_tokens=int_or_none(raw.get("total_tokens")),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=reasoning,
        raw=raw,
    )


def native_usage(usage: Usage) -> dict[str, Any]:
    """The chat ``usage`` object of normalised ``usage``, the inverse of
    ``normalise_usage``: only the counts that are known (never a fake 0)."""
    out: dict[str, Any] = {}
    for key, value in (
        ("prompt_tokens", usage.input_tokens),
        ("completion_tokens", usage.output_tokens),
        ("total_tokens", usage.total_tokens),
    ):
        if value is not None:
            out[key] = value
    prompt_details = {}
    if usage.cache_read_tokens is not None:
        prompt_details["cached_tokens"] = usage.cache_read_tokens
    if usage.cache_write_tokens is not None:
        prompt_details["cache_write_tokens"] = usage.cache_write_tokens
    if prompt_details:
        out["prompt_tokens_details"] = prompt_details
    if usage.reasoning_tokens is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return out


def _deepseek_cache_hit(raw: dict[str, Any]) -> int | None:
    # DeepSeek reports prompt caching as prompt_cache_hit_tokens /
    # prompt_cache_miss_tokens beside the OpenAI fields.
    return int_or_none(raw.get("prompt_cache_hit_tokens"))


def _groq_usage(chunk: dict[str, Any]) -> Any:
    # Groq sends usage in the last chunk under x_groq.usage, not top-level usage.
    x_groq = chunk.get("x_groq")
    return x_groq.get("usage") if isinstance(x_groq, dict) else None


def _reasoning_details_text(details: Any) -> str:
    # OpenRouter sends reasoning twice: as `reasoning` text and as structured
    # `reasoning_details`; Snowflake Cortex sends only `reasoning_details`.
    # The text is taken from the details only when no `reasoning` key exists,
    # so it is never counted twice.
    texts = []
    for item in objects(details):
        text = item.get("text") if item.get("type") == "reasoning.text" else item.get("summary")
        if isinstance(text, str):
            texts.append(text)
    return "".join(texts)


def _chunk_id(chunk: dict[str, Any]) -> str | None:
    value = chunk.get("id")
    return None if _is_blank_response_field(value) else str_or_none(value)


def _is_blank_response_field(value: Any) -> bool:
    # Azure's prompt_filter_results chunks (and content-filter chunks) carry
    # id "", model "" and created 0; Snowflake and Anthropic's compatible
    # endpoint send created 0 and empty ids throughout. None of those may blank
    # out a value already seen, nor count as one.
    return value is None or value == "" or value == 0


class _ReasoningDetails:
    """``reasoning_details`` fragments merged by ``index`` (OpenRouter, Doubleword).

    The stream sends one fragment per delta, each naming the block it belongs
    to by ``index``; the non-streaming message has one entry per block, its
    ``text`` (or ``summary``) joined and its ``signature`` (sent in a fragment
    of its own), ``id``, ``data`` and ``format`` set once. A fragment without
    an ``index`` is an entry of its own. Each entry is built again only when a
    fragment reached it, its text extended with the pieces since (a snapshot
    costs what changed).
    """

    __slots__ = ("entries",)

    _JOINED = ("text", "summary")

    def __init__(self) -> None:
        self.entries: dict[Any, _DetailEntry] = {}

    def add(self, fragments: list[Any]) -> None:
        for fragment in objects(fragments):
            index = index_or_none(fragment.get("index"))
            key: Any = index if index is not None else ("position", len(self.entries))
            entry = self.entries.get(key)
            if entry is None:
                entry = self.entries[key] = _DetailEntry()
            entry.built = None
            fields, pieces = entry.fields, entry.pieces
            for name, value in fragment.items():
                if name in self._JOINED and type(value) is str:
                    pieces.setdefault(name, []).append(value)
                    fields.setdefault(name, "")
                elif fields.get(name) is None:
                    fields[name] = value

    def native(self) -> list[dict[str, Any]]:
        return [entry.native() for entry in self.entries.values()]


class _DetailEntry:
    """One entry of ``reasoning_details``: its fields, and its text pieces by field."""

    __slots__ = ("built", "fields", "pieces")

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}  # set once
        self.pieces: dict[str, list[str]] = {}  # joined on demand, then kept joined
        self.built: dict[str, Any] | None = None  # the native entry, until a fragment comes

    def native(self) -> dict[str, Any]:
        built = self.built
        if built is not None:
            return built
        out = dict(self.fields)
        for name, texts in self.pieces.items():
            if len(texts) > 1:
                # Extend the text joined before: in place once no snapshot holds it.
                tail = texts[1] if len(texts) == 2 else "".join(texts[1:])
                text = texts[0]
                texts.clear()
                text += tail
                texts.append(text)
            out[name] = texts[0]
        self.built = out
        return out


class _ChoiceExtras:
    """What the chat dialect keeps per choice beside the accumulator's parts."""

    __slots__ = (
        "by_index",
        "call_index",
        "choice_keys",
        "delta_fields",
        "delta_keys",
        "empty_content",
        "fields",
        "function_call",
        "last_delta",
        "logprobs_keys",
        "logprobs_more",
        "reasoning_details",
        "reasoning_key",
        "revision",
        "role",
        "sinks",
    )

    def __init__(self) -> None:
        self.role: str | None = None
        self.reasoning_key = "reasoning_content"
        self.fields: dict[str, Any] = {}  # unknown choice fields: last non-null wins
        self.delta_fields: dict[str, Any] = {}  # unknown delta fields: lists extend
        self.choice_keys: set[str] = set()  # every choice key seen, null or not
        self.delta_keys: set[str] = set()  # every delta key seen, null or not
        self.empty_content = False  # a delta carried content ""
        self.by_index: dict[Any, Any] = {}  # tool-call index -> current accumulator key
        # tool-call index -> (the accumulator's epoch, its call's sink or NO_SINK)
        self.sinks: dict[Any, tuple[int, Callable[[str], object]]] = {}
        self.call_index: dict[ToolCallView, int] = {}  # a call -> the provider's index
        self.function_call: bool = False
        self.reasoning_details: _ReasoningDetails | None = None
        # logprobs keys in the order streamed (content, refusal, DeepSeek's
        # reasoning_content...), and the lists of those the accumulator does not keep
        self.logprobs_keys: dict[str, None] = {}
        self.logprobs_more: dict[str, list[Any]] = {}
        self.last_delta: dict[str, Any] | None = None  # Perplexity (see _perplexity_delta)
        self.revision = 0  # grows whenever anything above may have changed


class _NativeChoice:
    """A choice of the native response as last built, and what it was built from."""

    __slots__ = ("calls", "key", "value")

    def __init__(self) -> None:
        self.key: tuple[Any, ...] = ()
        self.value: dict[str, Any] | None = None
        # Each call's `function` object, by call, with what it was built from.
        self.calls: dict[int, tuple[tuple[Any, ...], dict[str, Any]]] = {}


class OpenAIChat(Dialect):
    """The Chat Completions family (``"openai-chat"``)."""

    name = "openai-chat"

    def __init__(self, acc: Accumulator) -> None:
        super().__init__(acc)
        self._decode_typed: Callable[[bytes], _TypedChunk] = typed_decoder(_TypedChunk)
        self.fields: dict[str, Any] = {}
        self._missing: tuple[str, ...] = ()
        self._missing_values: Callable[[_TypedChunk], Any] | None = None
        self._missing_unset: Any = None
        self._set_missing(_RESPONSE_FIELDS)
        # unknown top-level fields: the last non-null value wins, objects merge key by key
        self.extra: dict[str, Any] = {}
        self.null_fields: set[str] = set()  # top-level keys the stream sent as null
        self.padding: set[str] = set()  # padding fields seen (identity signals; dropped)
        self._noted: dict[str, set[int]] = {  # choices per delta field (see _seen_empty)
            "content": set(),
            "reasoning_content": set(),
            "tool_calls": set(),
        }
        self.choices: dict[int, _ChoiceExtras] = {}
        self.usage_raw: dict[str, Any] | None = None
        # Try the typed path (see _TypedChunk) once the response has started
        # (the first chunks take the dict path), until a choice finishes or it
        # stops paying.
        self._typed = False
        self._typed_hits = 0
        # The typed path's kept parts (see _keep_sink): none yet.
        self._text_sink: Callable[[str], object] = NO_SINK
        self._reasoning_sink: Callable[[str], object] = NO_SINK
        self._text_epoch = self._text_index = self._reasoning_epoch = self._reasoning_index = -1
        self._typed_misses = 0
        self._finish_seen = False  # a choice has finished (see _next_completion)
        self._finish_ids: set[str] = set()  # ids of the chunks from the first finish on
        self._native: dict[int, _NativeChoice] = {}  # what response() built, per choice
        # Writes to `extra` and to a choice's keys (signals of provider()).
        self._signal_writes = 0
        self._provider: tuple[tuple[Any, ...], str | None] = ((), None)  # its last answer
        # The last response's top level (see response()), its key and usage.
        self._top: tuple[dict[str, Any], tuple[Any, ...], Any] = ({}, (), None)

    @classmethod
    def detect(cls, event: ServerSentEvent, payload: Any) -> bool:
        """A chunk with ``choices``, or an object ``chat.completion.chunk``; not
        the legacy Completions API (``text_completion``), whose choices carry
        ``text`` instead of a delta and would fold to an empty answer."""
        if not isinstance(payload, dict) or payload.get("object") == "text_completion":
            return False
        return payload.get("object") == "chat.completion.chunk" or isinstance(
            payload.get("choices"), list
        )

    def handle(self, event: ServerSentEvent) -> bool:
        """Fold one chunk (or the ``[DONE]`` marker, or an error payload).

        Returns:
            ``True`` at ``[DONE]``, or at the first chunk of another completion.

        Raises:
            ProviderError: an error payload, or DeepSeek's
                ``insufficient_system_resource`` finish at the end.
            ProtocolError: the chunk is not a JSON object.
        """
        if self.fast(event):
            return False
        return self._handle_dict(event)

    def fast_run(self, events: list[ServerSentEvent], i: int) -> int:
        # fast() on each event in turn, with the common chunk in line: one
        # more piece of the text, reasoning or call the last one went to, and
        # nothing else in it that _fold_chunk's loops would note. Its state
        # (the kept sinks) lives in locals, read again after any other chunk,
        # which _fold_chunk folds. Every check comes before any side effect.
        # 10,000 text chunks: 178 -> 152 bytecodes each, fold/floor 1.34x -> 1.25x.
        if not self._typed:  # only a rejected chunk switches it off: it ends the run
            return i
        start, count = i, len(events)
        decode = self._decode_typed
        acc = self.acc
        extras = self.choices
        noted_reasoning = self._noted["reasoning_content"]
        unset = msgspec.UNSET
        missing_values, missing_unset = self._missing_values, self._missing_unset
        text_sink, text_index, text_epoch = self._text_sink, self._text_index, self._text_epoch
        reasoning_sink, reasoning_index = self._reasoning_sink, self._reasoning_index
        reasoning_epoch = self._reasoning_epoch
        for i in range(start, count):  # after a break, i is the first event not folded
            event = events[i]
            if event.event_set:
                break
            try:
                chunk = decode(event.raw)
            except TYPED_REJECTED:
                self._typed_hits += i - start  # counted before the rejection weighs them
                self._typed_rejected()
                return i
            if (
                missing_values is not None
                and missing_values(chunk) != missing_unset
                and not self._fields_typed(chunk)
            ):
                break
            choices = chunk.choices
            if len(choices) == 1:
                choice = choices[0]
                delta = choice.delta
                if delta.tool_calls is unset:
                    content = delta.content
                    reasoning = delta.reasoning_content
                    if content:
                        if (
                            choice.index == text_index
                            and acc.epoch == text_epoch
                            and not reasoning
                            and (reasoning is unset or text_index in noted_reasoning)
                        ):
                            text_sink(content)
                            continue
                    elif (
                        reasoning
                        and choice.index == reasoning_index
                        and acc.epoch == reasoning_epoch
                        and content != ""
                    ):
                        reasoning_sink(reasoning)
                        continue
                elif delta.content is unset and delta.reasoning_content is unset:
                    # One piece of one known call's arguments, and nothing else.
                    only = delta.tool_calls
                    if only is not None and len(only) == 1:
                        call = only[0]
                        state = extras.get(choice.index)
                        if state is not None:
                            # The call's sink while the epoch holds (parallel
                            # calls switching on every piece included; kept, the
                            # call is known), asked for by its second piece;
                            # else the lookups.
                            epoch, sink = state.sinks.get(call.index, _NO_KEPT)
                            arguments = call.function.arguments
                            if epoch == acc.epoch:
                                if arguments:
                                    if sink is NO_SINK:
                                        sink = acc.arguments_sink(
                                            choice.index, state.by_index[call.index]
                                        )
                                        state.sinks[call.index] = (epoch, sink)
                                    sink(arguments)
                                continue
                            if call.index in state.by_index:
                                if arguments:
                                    key = state.by_index[call.index]
                                    acc.tool_arguments(choice.index, key, arguments)
                                    state.sinks[call.index] = (acc.epoch, NO_SINK)
                                continue
            if not self._fold_chunk(chunk):
                break
            missing_values, missing_unset = self._missing_values, self._missing_unset
            text_sink, text_index, text_epoch = self._text_sink, self._text_index, self._text_epoch
            reasoning_sink, reasoning_index = self._reasoning_sink, self._reasoning_index
            reasoning_epoch = self._reasoning_epoch
        else:
            i = count
        self._typed_hits += i - start
        return i

    def fast(self, event: ServerSentEvent) -> bool:
        # The typed path for one event (see fast_run, which the parser calls
        # on the events after each one the dict path took).
        return self.fast_run([event], 0) == 1

    def _set_missing(self, keys: tuple[str, ...]) -> None:
        # The response fields no chunk has brought yet, and a getter of their
        # values in a typed chunk: UNSET for each when the chunk has none.
        self._missing = keys
        self._missing_values = attrgetter(*keys) if keys else None
        self._missing_unset = (msgspec.UNSET,) * len(keys) if len(keys) > 1 else msgspec.UNSET

    def _fields_typed(self, chunk: _TypedChunk) -> bool:
        # The response fields still missing: a chunk that brings one takes the
        # dict path, which keeps them (nulls are noted here: idempotent).
        for key in self._missing:
            value = getattr(chunk, key)
            if value is None:
                self.null_fields.add(key)
            elif value is not msgspec.UNSET and value != "" and value != 0:
                return False
        return True

    def _fold_chunk(self, chunk: _TypedChunk) -> bool:
        # A typed chunk that brings no response field, of any shape fast_run
        # does not fold in line: False when a choice or call is not known yet.
        acc = self.acc
        choices = chunk.choices
        extras = self.choices
        for choice in choices:
            calls = choice.delta.tool_calls
            if calls:
                state = extras.get(choice.index)
                if state is None:
                    return False
                for call in calls:
                    if call.index not in state.by_index:
                        return False
            elif choice.index not in acc.choices:
                return False
        noted = self._noted
        for choice in choices:
            index = choice.index
            delta = choice.delta
            content = delta.content
            if content:
                if acc.epoch == self._text_epoch and index == self._text_index:
                    self._text_sink(content)
                else:
                    self._keep_sink(TEXT, index, acc.text(index, content))
            elif content == "" and index not in noted["content"]:
                self._seen_empty(index, "content", content)
            reasoning = delta.reasoning_content
            if reasoning:
                if acc.epoch == self._reasoning_epoch and index == self._reasoning_index:
                    self._reasoning_sink(reasoning)
                else:
                    self._keep_sink(REASONING, index, acc.reasoning(index, reasoning))
            elif reasoning is not msgspec.UNSET and index not in noted["reasoning_content"]:
                self._seen_empty(index, "reasoning_content", reasoning)
            calls = delta.tool_calls
            if calls:
                by_index = extras[index].by_index
                for call in calls:
                    if call.function.arguments:
                        acc.tool_arguments(index, by_index[call.index], call.function.arguments)
            elif calls is not msgspec.UNSET and index not in noted["tool_calls"]:
                self._seen_empty(index, "tool_calls", calls)
        return True

    def _keep_sink(self, kind: PartKind, index: int, part: PartView) -> None:
        # The part a typed delta just went to, kept so the next ones append to
        # it without a call (Accumulator.sink), until the accumulator's epoch moves.
        # With events, the sink is the call itself: the shortcut in fast()
        # still skips the loops, whose checks the kept part proves.
        sink = self.acc.sink(part)
        if kind is TEXT:
            self._text_sink, self._text_epoch, self._text_index = sink, self.acc.epoch, index
        else:
            self._reasoning_sink, self._reasoning_epoch = sink, self.acc.epoch
            self._reasoning_index = index

    def _typed_rejected(self) -> bool:
        # A chunk of another shape than the typed path's: False, and the path
        # is switched off once such chunks outnumber the others.
        self._typed_misses += 1
        if self._typed_misses > _TYPED_GIVE_UP and self._typed_misses > self._typed_hits:
            self._typed = False
        return False

    def _seen_empty(self, index: int, key: str, value: Any) -> None:
        # A delta field sent empty or null on the typed path: part of the shape
        # of the non-streaming message (see _native_choice). Noted once per
        # choice: DeepSeek sends reasoning_content null beside every text delta
        # (a null content needs no note: without text, content is null anyway).
        self._noted[key].add(index)
        extras = self._extras(index)
        extras.revision += 1
        extras.delta_keys.add(key)
        if key == "content" and value == "":
            extras.empty_content = True

    def _handle_dict(self, event: ServerSentEvent) -> bool:
        if event.raw == b"[DONE]":
            self._deepseek_check()
            return True
        try:
            chunk = _decode(event.raw)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            chunk = decode_json(event)  # raises the precise ProtocolError, or repairs UTF-8
        if type(chunk) is not dict:
            if event.event == "error":
                raise provider_error(chunk, event.index)
            raise ProtocolError(
                f"server-sent event #{event.index} is not a JSON object: {shorten(event.raw)!r}",
                excerpt=shorten(event.raw),
                position=event.index,
            )
        if self._finish_seen and self._next_completion(chunk, event):
            self._deepseek_check()
            return True
        if None in chunk.values():
            self.null_fields.update(key for key, value in chunk.items() if value is None)
        if "obfuscation" in chunk:
            self.padding.add("obfuscation")
        for key in self._missing:
            value = chunk.get(key)
            if value is not None and value != "" and value != 0:
                self._response_fields(chunk)
                break
        choices = chunk.get("choices")
        if choices:
            if not self.acc.started:
                self._start()
            if type(choices) is not list:
                raise ProtocolError(
                    f"server-sent event #{event.index}: 'choices' is not a list",
                    excerpt=shorten(event.raw),
                    position=event.index,
                )
            for choice in objects(choices):
                self._choice(choice, event)
        if self._finish_seen:
            chunk_id = _chunk_id(chunk)
            if chunk_id is not None:
                self._finish_ids.add(chunk_id)
        usage = chunk.get("usage")
        if usage and type(usage) is dict:
            self._usage(usage)
        if not chunk.keys() <= _KNOWN_TOP or event.event == "error":
            self._rare_top_fields(chunk, event)
        return False

    def _usage(self, usage: dict[str, Any]) -> None:
        if usage is not self.usage_raw and usage != self.usage_raw:
            self.usage_raw = usage
            self.acc.set_usage(normalise_usage(usage))

    def _rare_top_fields(self, chunk: dict[str, Any], event: ServerSentEvent) -> None:
        # Unknown top-level fields: the last non-null value wins; an object
        # merges into the one before it, key by key (Groq's x_groq carries id
        # and seed in the first chunk, id and usage in the last).
        extra = self.extra
        for key in chunk.keys() - _KNOWN_TOP:
            value = chunk[key]
            if value is None:
                continue
            if _is_padding(key):
                self.padding.add(key)
                continue
            known = extra.get(key)
            if type(value) is dict and type(known) is dict:
                extra[key] = {**known, **value}
            else:
                extra[key] = value
            self._signal_writes += 1
        usage = _groq_usage(chunk)
        if usage and type(usage) is dict and not chunk.get("usage"):
            self._usage(usage)
        if chunk.get("error") is not None or event.event == "error":
            # An in-band error: OpenAI {"error": ...} mid-stream, OpenRouter's
            # {"error": {"code": 502, ...}} beside finish_reason "error", Groq's
            # "event: error" with code tool_use_failed.
            raise provider_error(chunk, event.index)

    def close(self) -> bool:
        """Without ``[DONE]``: complete when every choice has a finish reason.

        Raises:
            ProviderError: DeepSeek's ``insufficient_system_resource`` finish.
        """
        self._deepseek_check()
        choices = self.acc.choices
        return bool(choices) and all(s.raw_finish_reason is not None for s in choices.values())

    def _deepseek_check(self) -> None:
        # At the end of the stream, whichever way it ends.
        for state in self.acc.choices.values():
            if state.raw_finish_reason == "insufficient_system_resource":
                raise _deepseek_insufficient_resource()

    # -- per chunk -----------------------------------------------------------------

    def _response_fields(self, chunk: dict[str, Any]) -> None:
        found = []
        for key in self._missing:
            value = chunk.get(key)
            if not _is_blank_response_field(value):
                # The first value wins; one of the wrong type (an id that is a
                # list) counts as that value, and is dropped.
                typed = int_or_none(value) if key == "created" else str_or_none(value)
                if typed is not None:
                    self.fields[key] = typed
                found.append(key)
        if found:
            self._set_missing(tuple(k for k in self._missing if k not in found))
        if not self.acc.started and ("id" in self.fields or "model" in self.fields):
            self._start()

    def _start(self) -> None:
        fields = self.fields
        self.acc.start(fields.get("id"), fields.get("model"), fields.get("created"))
        self._typed = True

    def _choice(self, choice: dict[str, Any], event: ServerSentEvent) -> None:
        index = index_or_none(choice.get("index"))
        if index is None:
            index = 0
        extras = self._extras(index)
        if not choice.keys() <= extras.choice_keys:
            extras.choice_keys.update(choice)
            extras.revision += 1
            self._signal_writes += 1
        delta = choice.get("delta")
        if "message" in choice and type(delta) is dict:
            extras.last_delta = delta  # Perplexity (see _perplexity_delta)
            extras.revision += 1
        if delta and type(delta) is dict:
            content = delta.get("content")
            if content and type(content) is str:
                self.acc.text(index, content)
                if len(delta) > 1:
                    self._delta(index, delta, event)
            else:
                if content:
                    self._mistral_content_parts(index, content)
                self._delta(index, delta, event)
        logprobs = choice.get("logprobs")
        if logprobs and type(logprobs) is dict:
            self._logprobs(index, extras, logprobs)
        finish = choice.get("finish_reason")
        if finish and type(finish) is str:
            self.acc.finish(index, finish, unified_finish_reason(finish))
            # From here chunks take the dict path, which watches for the next
            # completion (_next_completion).
            self._finish_seen = True
            self._typed = False
        if not choice.keys() <= _KNOWN_CHOICE:
            extras.revision += 1
            fields = extras.fields
            for key in choice.keys() - _KNOWN_CHOICE:
                value = choice[key]
                if value is not None:
                    fields[key] = value

    def _logprobs(self, index: int, extras: _ChoiceExtras, logprobs: dict[str, Any]) -> None:
        # Every list of a choice's logprobs is appended in order, under the key
        # it came in: content and refusal (kept by the accumulator, for the
        # events) and any other (DeepSeek's reasoning_content: the logprobs of
        # the reasoning tokens). A key sent only as null stays null.
        content = refusal = None
        extras.revision += 1
        for key, value in logprobs.items():
            extras.logprobs_keys[key] = None
            if type(value) is not list:
                continue
            if key == "content":
                content = value
            elif key == "refusal":
                refusal = value
            else:
                extras.logprobs_more.setdefault(key, []).extend(value)
        if content is not None or refusal is not None:
            self.acc.logprobs(index, content, refusal)

    def _extras(self, index: int) -> _ChoiceExtras:
        extras = self.choices.get(index)
        if extras is None:
            extras = self.choices[index] = _ChoiceExtras()
            self.acc.choice(index)
        return extras

    def _delta(self, index: int, delta: dict[str, Any], event: ServerSentEvent) -> None:
        # Everything in a delta but string content: rarer, so off the text path.
        acc = self.acc
        extras = self._extras(index)
        extras.revision += 1
        extras.delta_keys.update(delta)
        if delta.get("content") == "":
            extras.empty_content = True
        reasoning = delta.get("reasoning_content")
        if reasoning is None:
            if delta.get("reasoning") is not None:
                reasoning = delta["reasoning"]
                extras.reasoning_key = "reasoning"
            elif "reasoning" not in delta and delta.get("reasoning_details"):
                reasoning = _reasoning_details_text(delta["reasoning_details"])
                extras.reasoning_key = "reasoning"
        if reasoning and type(reasoning) is str:
            acc.reasoning(index, reasoning)
        refusal = delta.get("refusal")
        if refusal and type(refusal) is str:
            acc.refusal(index, refusal)
        tool_calls = delta.get("tool_calls")
        if tool_calls and type(tool_calls) is list:
            self._tool_calls(index, extras, tool_calls, event)
        function_call = delta.get("function_call")
        if function_call and type(function_call) is dict:
            self._legacy_function_call(index, extras, function_call)
        if extras.role is None:
            extras.role = tag_or_none(delta.get("role"))
        if not delta.keys() <= _KNOWN_DELTA:
            self._delta_fields(extras, delta, delta.keys() - _KNOWN_DELTA)

    def _delta_fields(self, extras: _ChoiceExtras, delta: dict[str, Any], keys: Any) -> None:
        # Unknown delta fields: `reasoning_details` fragments merge by index
        # (_ReasoningDetails); other lists (annotations) are appended to the
        # list before; anything else (or a list after a value that is not one)
        # replaces it: the last non-null value wins.
        fields = extras.delta_fields
        for key in keys:
            value = delta[key]
            if value is None:
                continue
            if key == "reasoning_details" and type(value) is list:
                if extras.reasoning_details is None:
                    extras.reasoning_details = _ReasoningDetails()
                extras.reasoning_details.add(value)
                continue
            known = fields.get(key)
            if type(value) is list and type(known) is list:
                known.extend(value)
            elif type(value) is list:
                fields[key] = list(value)
            else:
                fields[key] = value

    def _mistral_content_parts(self, index: int, content: Any) -> None:
        # Mistral (magistral) sends content as a list of typed parts:
        # {"type": "text", "text": ...} and {"type": "thinking", "thinking":
        # [{"type": "text", "text": ...}]}.
        for part in objects(content):
            kind = tag_or_none(part.get("type"))
            if kind == "text" and isinstance(part.get("text"), str):
                if part["text"]:
                    self.acc.text(index, part["text"])
            elif kind == "thinking":
                thinking = part.get("thinking")
                pieces = thinking if type(thinking) is list else [thinking]
                for piece in pieces:
                    text = piece.get("text") if type(piece) is dict else piece
                    if isinstance(text, str) and text:
                        self.acc.reasoning(index, text)

    def _tool_calls(
        self, index: int, extras: _ChoiceExtras, calls: list[Any], event: ServerSentEvent
    ) -> None:
        for position, call in enumerate(calls):
            if type(call) is not dict:
                continue
            function = call.get("function")
            name = arguments = None
            if type(function) is dict:
                name = str_or_none(function.get("name"))
                arguments = function.get("arguments")
            if arguments is not None and type(arguments) is not str:
                # Some servers send already-parsed arguments; keep them as JSON text.
                arguments = arguments_text(arguments, event, "tool_calls.function.arguments")
            key = self._tool_call_key(index, extras, call, position)
            state = self.acc.tool_call(
                index,
                key,
                id=str_or_none(call.get("id")),
                name=name,
                kind=tag_or_none(call.get("type")) or "function",
                arguments=arguments or "",
            )
            provider_index = index_or_none(call.get("index"))
            if provider_index is not None:
                extras.call_index.setdefault(state, provider_index)

    def _tool_call_key(
        self, choice: int, extras: _ChoiceExtras, call: dict[str, Any], position: int
    ) -> Any:
        # Keyed by index. Mistral (whole calls in one chunk) and Gemini's
        # compatible endpoint send no index: keyed by id, then by position.
        # GitHub Copilot and Anthropic's compatible endpoint start at index 1:
        # any index works as a key. Some servers reuse one index for several
        # calls with different ids: a new non-empty id at a known index starts
        # a new call instead of merging two calls into one.
        call_id = str_or_none(call.get("id"))
        index = index_or_none(call.get("index"))
        if index is None:
            return ("id", call_id) if call_id else ("position", position)
        key = extras.by_index.get(index)
        if key is None:
            key = extras.by_index[index] = index
        elif call_id:
            known = self.acc.choice(choice).tool_call(key)
            if known is not None and known.id and known.id != call_id:
                key = extras.by_index[index] = (index, call_id)
        return key

    def _next_completion(self, chunk: dict[str, Any], event: ServerSentEvent) -> bool:
        # Cerebras, in a multi-step capture, streams the next completion of the
        # exchange in the same body: chunks with a new id after every choice of
        # the first one finished. Folding them in would merge two responses and
        # reopen finished parts. As the other dialects do after their terminal
        # event, the first completion is the response and the rest is ignored,
        # with a warning. An id is new when neither the response nor a chunk
        # from the first finish on had it (Perplexity's finish chunk carries
        # another id than the chunks before it).
        new_id = _chunk_id(chunk)
        known = self.fields.get("id")
        if new_id is None or known is None or new_id == known or new_id in self._finish_ids:
            return False
        if not all(s.raw_finish_reason is not None for s in self.acc.choices.values()):
            return False
        self.acc.warn(
            f"server-sent event #{event.index}: a chunk of another completion "
            f"({shorten(new_id, 60)!r}) after every choice of {shorten(known, 60)!r} "
            "finished; the stream ends with the first completion, the rest is ignored"
        )
        return True

    def _legacy_function_call(
        self, index: int, extras: _ChoiceExtras, function_call: dict[str, Any]
    ) -> None:
        # The deprecated single `function_call` of the old functions API.
        extras.function_call = True
        arguments = function_call.get("arguments")
        self.acc.tool_call(
            index,
            "function_call",
            name=str_or_none(function_call.get("name")),
            arguments=arguments if type(arguments) is str else "",
        )

    # -- the native response -----------------------------------------------------

    def response(self) -> dict[str, Any]:
        """The ``chat.completion`` object a non-streaming call would have returned,
        in the shape of the provider that sent the stream (``provider()``)."""
        shape = _SHAPES.get(self.provider() or "", _DEFAULT_SHAPE)
        choices = [self._native_choice(i, shape) for i in sorted(self.acc.choices)]
        # Everything but the choices, built again only when something in it may
        # have changed (a snapshot after every chunk mostly changes a choice):
        # fields are set once, extra counts in _signal_writes, usage is replaced
        # whole, null_fields only grows. An `adjust` may read the choices: no reuse.
        key = (shape, len(self.fields), self._signal_writes, len(self.null_fields))
        top, known, usage = self._top
        if known == key and usage is self.usage_raw and shape.adjust is None:
            out = top.copy()  # in the same key order, "choices" included
            out["choices"] = choices
            return out
        out = self._build_response(shape, choices)
        if shape.adjust is None:
            top = out.copy()
            top["choices"] = None  # never the choices: their texts may then grow in place
            self._top = (top, key, self.usage_raw)
        return out

    def _build_response(self, shape: _Shape, choices: list[dict[str, Any]]) -> dict[str, Any]:
        fields = self.fields
        out: dict[str, Any] = {
            "id": fields.get("id", ""),
            "object": "chat.completion",
            "created": fields.get("created", 0),
            "model": fields.get("model", ""),
        }
        for key in ("system_fingerprint", "service_tier"):
            if key in fields:
                out[key] = fields[key]
        out["choices"] = choices
        if self.usage_raw is not None:
            out["usage"] = self.usage_raw
        for key, value in self.extra.items():
            out.setdefault(key, value)
        for key in self.null_fields:
            out.setdefault(key, None)
        _defaults(out, shape.response)
        if shape.adjust is not None:
            shape.adjust(self, out)
        return out

    def provider(self) -> str | None:
        """Who sent the stream, told from the stream alone (an id of ``_SHAPES``,
        or ``None``): the signals are listed in ``docs/semantics.md``."""
        # Told again only when a signal may have changed (a snapshot after
        # every chunk asks each time): what it reads, by count or by value.
        key = (
            self._signal_writes,
            self.fields.get("model"),
            self.usage_raw,
            len(self.null_fields),
            len(self.padding),
        )
        known, provider = self._provider
        if known == key:
            return provider
        provider = self._tell_provider()
        self._provider = (key, provider)
        return provider

    def _tell_provider(self) -> str | None:
        extra = self.extra
        model = self.fields.get("model", "")
        usage = self.usage_raw or {}
        if "x_groq" in extra:
            return "groq"
        if isinstance(extra.get("provider"), str) or self._choice_key("native_finish_reason"):
            return "openrouter"
        if "citations" in extra or "search_results" in extra or self._choice_key("message"):
            return "perplexity"
        if "timings" in extra or model.endswith(".gguf"):
            return "llama.cpp"
        if "prompt_token_ids" in extra or "prompt_token_ids" in self.null_fields:
            return "vllm"
        if self._choice_key("token_ids"):
            return "vllm"
        if type(usage.get("cache_creation")) is dict:
            return "doubleword"
        cost = extra.get("cost")
        if type(cost) is dict and "diem" in cost:
            return "venice"
        if "obfuscation" in self.padding or (model.startswith(_OPENAI_MODELS) and "/" not in model):
            return "openai"
        if "p" in self.padding or (model.startswith(_MISTRAL_MODELS) and "/" not in model):
            return "mistral"
        if (model.startswith("deepseek-") and "/" not in model) or (
            "prompt_cache_hit_tokens" in usage
        ):
            return "deepseek"
        return None

    def _choice_key(self, key: str) -> bool:
        return any(key in extras.choice_keys for extras in self.choices.values())

    def _native_choice(self, index: int, shape: _Shape) -> dict[str, Any]:
        # Built again only when something in it changed (the key); each call's
        # object only when that call changed.
        state = self.acc.choices[index]
        extras = self.choices.get(index) or _ChoiceExtras()
        native = self._native.get(index)
        if native is None:
            native = self._native[index] = _NativeChoice()
        calls = state.tool_calls
        key = (
            state.content_key(),
            tuple([(c.version, c.id, c.name) for c in calls]),
            extras.revision,
            shape,
        )
        value = native.value
        if value is not None and key == native.key:
            return value
        # Let go of the old one first: the texts it holds may then grow in place.
        native.value = None
        old = native.key
        if value is not None and key[0][0] and key[0][2:] == old[0][2:] and key[1:] == old[1:]:
            # Only the answer text changed (the snapshot after a text delta):
            # the choice as it was, with its new content. Copied without the
            # old text, so the text grows in place when nothing else holds it.
            message = value["message"]
            choice = {**value, "message": None}
            message = {**message, "content": None}
            del value
            message["content"] = state.joined(PartKind.TEXT)
            choice["message"] = message
        elif (
            value is not None
            and key[0] == old[0]
            and key[2:] == old[2:]
            and not extras.function_call
            and (grown := _grown_calls(old[1], key[1]))
        ):
            # Only arguments changed (the snapshot after an argument delta):
            # each changed call copied with its new `function`, the others shared.
            old_calls = value["message"]["tool_calls"]
            choice = {**value, "message": None}
            message = {**value["message"], "tool_calls": None}
            del value
            natives = list(old_calls)
            for i in grown:
                natives[i] = {**old_calls[i], "function": None}
            del old_calls  # the old arguments let go of, so they may grow in place
            for i in grown:
                natives[i]["function"] = _function(native, calls[i])
            message["tool_calls"] = natives
            choice["message"] = message
        else:
            del value
            choice = self._build_choice(index, state, extras, native, shape)
        native.value = choice
        native.key = key
        return choice

    def _build_choice(
        self,
        index: int,
        state: ChoiceView,
        extras: _ChoiceExtras,
        native: _NativeChoice,
        shape: _Shape,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"role": extras.role or "assistant"}
        text = state.joined(PartKind.TEXT)
        if text is not None:
            message["content"] = text
        elif shape.empty_content is _MIRROR:
            # What the stream said: "" when a delta carried content "", else null.
            message["content"] = "" if extras.empty_content else None
        elif shape.empty_content is not _OMIT:
            message["content"] = shape.empty_content
        refusal = state.joined(PartKind.REFUSAL)
        if refusal is not None:
            message["refusal"] = refusal
        reasoning = state.joined(PartKind.REASONING)
        if reasoning is not None:
            message[extras.reasoning_key] = reasoning
        calls = []
        function_call = state.tool_call("function_call") if extras.function_call else None
        for position, call in enumerate(state.tool_calls):
            function = _function(native, call)
            if function_call is not None and call is function_call:
                message["function_call"] = function
                continue
            native_call: dict[str, Any] = {"id": call.id or "", "type": call.kind}
            if shape.tool_call_index:
                native_call = {"index": extras.call_index.get(call, position), **native_call}
            native_call["function"] = function
            calls.append(native_call)
        if calls:
            message["tool_calls"] = calls
        for key, value in extras.delta_fields.items():
            # A list grows in later chunks: the response gets it as it is now.
            message.setdefault(key, list(value) if type(value) is list else value)
        if extras.reasoning_details is not None:
            message.setdefault("reasoning_details", extras.reasoning_details.native())
        for key in extras.delta_keys:
            # A field the stream sent only as null (or empty) is null here too.
            if key != "content" and key != "role":
                message.setdefault(key, None)
        _defaults(message, shape.message)
        for key in shape.stream_only:
            message.pop(key, None)
        out: dict[str, Any] = {"index": index, "message": message}
        if extras.logprobs_keys:
            out["logprobs"] = {
                key: _logprobs_list(state, extras, key) for key in extras.logprobs_keys
            }
        elif "logprobs" in extras.choice_keys:
            out["logprobs"] = None
        out["finish_reason"] = state.raw_finish_reason
        for key, value in extras.fields.items():
            out.setdefault(key, value)
        for key in extras.choice_keys:
            if key != "delta":  # the streaming field itself
                out.setdefault(key, None)
        _defaults(out, shape.choice)
        return out


def _logprobs_list(state: ChoiceView, extras: _ChoiceExtras, key: str) -> Any:
    if key == "content":
        return state.logprobs_content
    if key == "refusal":
        return state.logprobs_refusal
    more = extras.logprobs_more.get(key)
    # A list the dialect keeps growing: the response gets it as it is now.
    return None if more is None else list(more)


def _grown_calls(old: tuple[Any, ...], new: tuple[Any, ...]) -> list[int]:
    # The positions of the calls whose arguments alone changed, when the calls
    # are the same, with the same ids and names (each key is (version, id, name));
    # else none.
    if len(old) != len(new):
        return []
    grown = []
    for i, (a, b) in enumerate(zip(old, new, strict=True)):
        if a != b:
            if a[1:] != b[1:]:
                return []
            grown.append(i)
    return grown


def _function(native: _NativeChoice, call: ToolCallView) -> dict[str, Any]:
    # A call's `function` object, built again only when the call changed.
    key = (call.version, call.name)
    known = native.calls.get(call.index)
    if known is not None and known[0] == key:
        return known[1]
    # Let go of the old arguments first: they may then grow in place.
    known = None
    native.calls.pop(call.index, None)
    function = {"name": call.name or "", "arguments": call.arguments}
    native.calls[call.index] = (key, function)
    return function


# -- the non-streaming shape of each provider -------------------------------------------
#
# The builder above gives what the stream shows: a field the stream sent (even only
# as null) is in the response, one it never sent is not, and `content` without text
# is "" when a delta carried content "" (else null). Where a provider's own
# non-streaming response differs, its row below says how; each is checked against
# the recorded pairs of ../shared/pairs (tests/test_parity.py) and documented in
# docs/semantics.md ("The final response, per provider").

_MIRROR: Final = object()  # content without text: what the stream said ("" or null)
_OMIT: Final = object()  # content without text: no `content` key at all
# Model ids of the providers' own APIs (a gateway's "vendor/model" ids have a slash).
_OPENAI_MODELS: Final = ("gpt-", "chatgpt-", "o1", "o3", "o4", "ft:gpt-")
_MISTRAL_MODELS: Final = (
    "mistral-",
    "magistral-",
    "codestral-",
    "devstral-",
    "ministral-",
    "pixtral-",
    "voxtral-",
    "open-mistral-",
    "open-mixtral-",
    "open-codestral-",
)


class _Shape(NamedTuple):
    """How one provider's non-streaming response differs from what its stream shows."""

    #: ``content`` of a message without text: _MIRROR, None, "" or _OMIT.
    empty_content: Any = _MIRROR
    #: fields always present, with their value when the stream gave none
    response: Mapping[str, Any] = {}
    choice: Mapping[str, Any] = {}
    message: Mapping[str, Any] = {}
    #: tool calls keep the provider's ``index``
    tool_call_index: bool = False
    #: message fields that only streams carry (dropped)
    stream_only: frozenset[str] = frozenset()
    #: a quirk no field default expresses (a named function below)
    adjust: Callable[[OpenAIChat, dict[str, Any]], None] | None = None


def _defaults(target: dict[str, Any], defaults: Mapping[str, Any]) -> None:
    # Each default is a fresh value: a response never shares a list with the table.
    for key, value in defaults.items():
        if key not in target:
            target[key] = list(value) if type(value) is list else value


def _groq_x_groq(dialect: OpenAIChat, out: dict[str, Any]) -> None:
    # Groq: x_groq is merged over the stream (id and seed from the first chunk);
    # its `usage`, sent only in the last chunk of a stream, is the top-level
    # usage again: no non-streaming response has it.
    x_groq = out.get("x_groq")
    if type(x_groq) is dict and "usage" in x_groq:
        out["x_groq"] = {key: value for key, value in x_groq.items() if key != "usage"}


def _perplexity_delta(dialect: OpenAIChat, out: dict[str, Any]) -> None:
    # Perplexity: the non-streaming choice also carries a `delta`, the one of
    # the stream's last chunk ({"role": "assistant", "content": ""}).
    for choice in out["choices"]:
        extras = dialect.choices.get(choice["index"])
        if extras is not None and extras.last_delta is not None:
            choice.setdefault("delta", extras.last_delta)


def _doubleword_refusal(dialect: OpenAIChat, out: dict[str, Any]) -> None:
    # Doubleword: a message with reasoning_details also has `refusal: null`
    # (its other messages have no refusal key).
    for choice in out["choices"]:
        message = choice["message"]
        if "reasoning_details" in message:
            message.setdefault("refusal", None)


_DEFAULT_SHAPE: Final = _Shape()
_SHAPES: Final[dict[str, _Shape]] = {
    # OpenAI: every message has `refusal` and `annotations` ([] without
    # url citations), tool-call turns included.
    "openai": _Shape(message={"refusal": None, "annotations": []}),
    # DeepSeek: tool calls keep their `index`.
    "deepseek": _Shape(tool_call_index=True),
    # Mistral: `tool_calls: null` in a message without calls; calls keep `index`.
    "mistral": _Shape(message={"tool_calls": None}, tool_call_index=True),
    # Groq: no `content` in a message without text (a tool-call turn);
    # `channel` (gpt-oss's harmony channel) exists only in deltas.
    "groq": _Shape(empty_content=_OMIT, stream_only=frozenset({"channel"}), adjust=_groq_x_groq),
    # OpenRouter: `content: null` without text although the stream sends "";
    # `reasoning`, `refusal`, `logprobs`, `system_fingerprint` and
    # `service_tier` always there (null when absent); calls keep `index`.
    "openrouter": _Shape(
        empty_content=None,
        response={"system_fingerprint": None, "service_tier": None},
        choice={"logprobs": None},
        message={"refusal": None, "reasoning": None},
        tool_call_index=True,
    ),
    # llama.cpp's server: `content: ""` without text although the stream sends null.
    "llama.cpp": _Shape(empty_content=""),
    # vLLM (and the gateways on it, Venice's among them): the defaults of its
    # ChatCompletionResponse, ChatCompletionResponseChoice and ChatMessage
    # models, which its non-streaming response serialises whole.
    "vllm": _Shape(
        response={
            "service_tier": None,
            "prompt_logprobs": None,
            "prompt_token_ids": None,
            "kv_transfer_params": None,
        },
        choice={"logprobs": None, "stop_reason": None, "token_ids": None},
        message={
            "refusal": None,
            "annotations": None,
            "audio": None,
            "function_call": None,
            "tool_calls": [],
            "reasoning_content": None,
        },
    ),
    # Doubleword: no `content` in a message without text.
    "doubleword": _Shape(empty_content=_OMIT, adjust=_doubleword_refusal),
    "perplexity": _Shape(adjust=_perplexity_delta),
    # Venice, on models it does not serve through vLLM: what the stream shows.
    "venice": _Shape(),
}


def _is_padding(key: str) -> bool:
    # Stream-only padding against length side channels, in no non-streaming
    # response: OpenAI's `obfuscation`, Mistral's `p`.
    return key in ("obfuscation", "p")


def _deepseek_insufficient_resource() -> ProviderError:
    # DeepSeek ends a generation that its servers could not finish with
    # finish_reason "insufficient_system_resource": the answer is cut short
    # by the provider, a retryable failure rather than a normal stop.
    return ProviderError(
        "the provider stopped the generation: insufficient system resource",
        code="insufficient_system_resource",
        error_type="insufficient_system_resource",
        retryable=True,
    )
