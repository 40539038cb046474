"""The OpenAI Chat Completions family: ``chat.completion.chunk`` streams.

Spoken by OpenAI, Azure, DeepSeek, Qwen/DashScope, Moonshot, Zhipu GLM,
OpenRouter, Mistral, Groq, xAI, Perplexity, Cerebras, vLLM and llama.cpp
servers, GitHub Copilot, and the OpenAI-compatible endpoints of Anthropic and
Gemini. Each provider's departure from OpenAI's format is a named function
below, with the behaviour it handles.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from ..errors import ProtocolError, ProviderError, shorten
from ..events import Usage
from ..fold import Accumulator, ChoiceView, PartKind, ToolCallView
from ..sse import ServerSentEvent
from .base import (
    Dialect,
    arguments_text,
    decode_json,
    index_or_none,
    int_or_none,
    objects,
    provider_error,
    str_or_none,
    tag_or_none,
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
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[_TypedToolCall] | None = None


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


_decode_typed = msgspec.json.Decoder(_TypedChunk).decode
_REJECTED = (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError)
# Past this many rejections, outnumbering the accepted chunks, a stream whose
# every chunk carries an extra field (Azure's content_filter_results) stops
# paying for two decodes per chunk.
_TYPED_GIVE_UP = 16

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


class _ChoiceExtras:
    """What the chat dialect keeps per choice beside the accumulator's parts."""

    __slots__ = (
        "by_index",
        "delta_fields",
        "fields",
        "function_call",
        "reasoning_key",
        "revision",
        "role",
    )

    def __init__(self) -> None:
        self.role: str | None = None
        self.reasoning_key = "reasoning_content"
        self.fields: dict[str, Any] = {}  # unknown choice fields: last non-null wins
        self.delta_fields: dict[str, Any] = {}  # unknown delta fields: lists extend
        self.by_index: dict[Any, Any] = {}  # tool-call index -> current accumulator key
        self.function_call: bool = False
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
        self.fields: dict[str, Any] = {}
        self._missing: tuple[str, ...] = _RESPONSE_FIELDS
        self.extra: dict[str, Any] = {}  # unknown top-level fields: last non-null wins
        self.choices: dict[int, _ChoiceExtras] = {}
        self.usage_raw: dict[str, Any] | None = None
        # Try the typed path (see _TypedChunk) once the response has started
        # (the first chunks take the dict path), until a choice finishes or it
        # stops paying.
        self._typed = False
        self._typed_hits = 0
        self._typed_misses = 0
        self._finish_seen = False  # a choice has finished (see _next_completion)
        self._finish_ids: set[str] = set()  # ids of the chunks from the first finish on
        self._native: dict[int, _NativeChoice] = {}  # what response() built, per choice

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
        if self._typed and not event.event_set and self._fast(event):
            return False
        return self._handle_dict(event)

    def _fast(self, event: ServerSentEvent) -> bool:
        # The typed path: True when the chunk was folded here. Every check comes
        # before any side effect, so a False leaves the chunk to the dict path.
        try:
            chunk = _decode_typed(event.raw)
        except _REJECTED:
            self._typed_misses += 1
            if self._typed_misses > _TYPED_GIVE_UP and self._typed_misses > self._typed_hits:
                self._typed = False
            return False
        for key in self._missing:
            value = getattr(chunk, key)
            if value is not msgspec.UNSET and value is not None and value != "" and value != 0:
                return False
        extras = self.choices
        acc = self.acc
        for choice in chunk.choices:
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
        for choice in chunk.choices:
            index = choice.index
            delta = choice.delta
            if delta.content:
                acc.text(index, delta.content)
            if delta.reasoning_content:
                acc.reasoning(index, delta.reasoning_content)
            calls = delta.tool_calls
            if calls:
                by_index = extras[index].by_index
                for call in calls:
                    if call.function.arguments:
                        acc.tool_call(
                            index, by_index[call.index], arguments=call.function.arguments
                        )
        self._typed_hits += 1
        return True

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
        # Unknown top-level fields: the last non-null value wins.
        for key in chunk.keys() - _KNOWN_TOP:
            value = chunk[key]
            if value is not None:
                self.extra[key] = value
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
            self._missing = tuple(k for k in self._missing if k not in found)
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
        delta = choice.get("delta")
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
        elif index not in self.choices:
            self._extras(index)
        logprobs = choice.get("logprobs")
        if logprobs and type(logprobs) is dict:
            content_lp = logprobs.get("content")
            refusal_lp = logprobs.get("refusal")
            self.acc.logprobs(
                index,
                content_lp if type(content_lp) is list else None,
                refusal_lp if type(refusal_lp) is list else None,
            )
        finish = choice.get("finish_reason")
        if finish and type(finish) is str:
            self.acc.finish(index, finish, unified_finish_reason(finish))
            # From here chunks take the dict path, which watches for the next
            # completion (_next_completion).
            self._finish_seen = True
            self._typed = False
        if not choice.keys() <= _KNOWN_CHOICE:
            extras = self._extras(index)
            extras.revision += 1
            fields = extras.fields
            for key in choice.keys() - _KNOWN_CHOICE:
                value = choice[key]
                if value is not None:
                    fields[key] = value

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
        # Unknown delta fields: lists (OpenRouter reasoning_details, annotations)
        # are appended to the list before; anything else (or a list after a
        # value that is not one) replaces it: the last non-null value wins.
        fields = extras.delta_fields
        for key in keys:
            value = delta[key]
            if value is None:
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
            self.acc.tool_call(
                index,
                key,
                id=str_or_none(call.get("id")),
                name=name,
                kind=tag_or_none(call.get("type")) or "function",
                arguments=arguments or "",
            )

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
        """The ``chat.completion`` object a non-streaming call would have returned."""
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
        out["choices"] = [self._native_choice(i) for i in sorted(self.acc.choices)]
        if self.usage_raw is not None:
            out["usage"] = self.usage_raw
        for key, value in self.extra.items():
            if key not in out and key != "x_groq":
                out[key] = value
        if "x_groq" in self.extra:
            out["x_groq"] = self.extra["x_groq"]
        return out

    def _native_choice(self, index: int) -> dict[str, Any]:
        # Built again only when something in it changed (the key); each call's
        # object only when that call changed.
        state = self.acc.choices[index]
        extras = self.choices.get(index) or _ChoiceExtras()
        native = self._native.get(index)
        if native is None:
            native = self._native[index] = _NativeChoice()
        calls = state.tool_calls
        key = (
            _text_key(state, PartKind.TEXT),
            _text_key(state, PartKind.REFUSAL),
            _text_key(state, PartKind.REASONING),
            tuple([(c.version, c.id, c.name) for c in calls]),
            _length(state.logprobs_content),
            _length(state.logprobs_refusal),
            state.raw_finish_reason,
            extras.revision,
        )
        if native.value is not None and key == native.key:
            return native.value
        # Let go of the old one first: the texts it holds may then grow in place.
        native.value = None
        value = native.value = self._build_choice(index, state, extras, native)
        native.key = key
        return value

    def _build_choice(
        self, index: int, state: ChoiceView, extras: _ChoiceExtras, native: _NativeChoice
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": extras.role or "assistant",
            "content": state.joined(PartKind.TEXT),
            "refusal": state.joined(PartKind.REFUSAL),
        }
        reasoning = state.joined(PartKind.REASONING)
        if reasoning is not None:
            message[extras.reasoning_key] = reasoning
        calls = []
        function_call = state.tool_call("function_call") if extras.function_call else None
        for call in state.tool_calls:
            function = _function(native, call)
            if function_call is not None and call is function_call:
                message["function_call"] = function
                continue
            calls.append({"id": call.id or "", "type": call.kind, "function": function})
        if calls:
            message["tool_calls"] = calls
        for key, value in extras.delta_fields.items():
            # A list grows in later chunks: the response gets it as it is now.
            message.setdefault(key, list(value) if type(value) is list else value)
        logprobs = None
        if state.logprobs_content is not None or state.logprobs_refusal is not None:
            logprobs = {"content": state.logprobs_content, "refusal": state.logprobs_refusal}
        out: dict[str, Any] = {
            "index": index,
            "message": message,
            "logprobs": logprobs,
            "finish_reason": state.raw_finish_reason,
        }
        for key, value in extras.fields.items():
            out.setdefault(key, value)
        return out


def _text_key(state: ChoiceView, kind: PartKind) -> tuple[int, int]:
    # What the text of every part of a kind depends on: the parts, and the last one's version.
    parts = state.parts(kind)
    return (len(parts), parts[-1].version) if parts else (0, 0)


def _length(items: Any) -> int:
    return -1 if items is None else len(items)


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
