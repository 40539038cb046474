"""The legacy OpenAI Completions API: ``text_completion`` chunks from ``/v1/completions``.

Still served by OpenAI (``gpt-3.5-turbo-instruct``, ``davinci-002``), vLLM,
llama.cpp, TGI and most self-hosted servers. A chunk is a Chat Completions
chunk whose choices carry ``text`` instead of a ``delta``, and the legacy
log probabilities (parallel ``tokens``, ``token_logprobs``, ``top_logprobs``
and ``text_offset`` arrays) instead of ``logprobs.content``. Everything else
is the chat family's: the first non-empty ``id``, ``model`` and ``created``,
usage in a last chunk without choices (``stream_options.include_usage``), an
in-band ``{"error": ...}`` chunk, ``data: [DONE]``; so the dialect is the chat
dialect with its own choices, and the chat dialect refuses these chunks.

What every field of the final ``text_completion`` comes from, and which value
wins, is in ``docs/dialects/openai-completions.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgspec

from ..fold import TEXT, Accumulator, PartKind
from ..sse import ServerSentEvent
from .base import (
    TYPED_REJECTED,
    index_or_none,
    objects,
    str_or_none,
    typed_decoder,
    unset_getter,
)
from .openai_chat import OpenAIChat, unified_finish_reason

__all__ = ["OpenAICompletions", "legacy_logprobs_entries"]

_KNOWN_CHOICE: Final = frozenset({"index", "text", "logprobs", "finish_reason"})
_LOGPROB_KEYS: Final = ("tokens", "token_logprobs", "top_logprobs", "text_offset")


# The common chunk, typed: text for known choices, nothing else. Decoded
# straight into these Structs it costs less than a dict and its gets; any
# other field or value (logprobs, a finish reason, usage) fails validation and
# the chunk takes the chat dialect's dict path, which folds it the same. The
# chat dialect's typed-path switch (its _typed) drives it.
class _TypedTextChoice(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    index: int
    text: str
    logprobs: None = None
    finish_reason: None = None


class _TypedTextChunk(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    choices: list[_TypedTextChoice]
    id: Any = msgspec.UNSET
    object: Any = msgspec.UNSET
    created: Any = msgspec.UNSET
    model: Any = msgspec.UNSET
    system_fingerprint: Any = msgspec.UNSET
    service_tier: Any = msgspec.UNSET
    usage: msgspec.UnsetType | None = msgspec.UNSET
    obfuscation: Any = msgspec.UNSET


class _Choice:
    """What the dialect keeps of one choice for the native response (its text is
    the accumulator's)."""

    __slots__ = ("built", "built_at", "fields", "finish", "logprobs", "revision")

    def __init__(self) -> None:
        self.revision = 0  # grows with every chunk that reaches the choice
        self.built: dict[str, Any] | None = None  # the native choice as last built
        self.built_at: tuple[int, int] = (-1, -1)  # (revision, text version) it was built at
        self.finish: str | None = None  # the last finish_reason
        self.logprobs: dict[str, list[Any]] | None = None  # the legacy arrays, extended
        self.fields: dict[str, Any] = {}  # other choice fields: the last non-null wins


class OpenAICompletions(OpenAIChat):
    """Legacy Completions streams (``"openai-completions"``)."""

    name = "openai-completions"

    def __init__(self, acc: Accumulator) -> None:
        super().__init__(acc)
        self._decode_text_chunk: Callable[[bytes], _TypedTextChunk] = typed_decoder(_TypedTextChunk)
        self._typed = False  # the chat dialect's typed fast path reads deltas only
        self.legacy: dict[int, _Choice] = {}
        self._keep_unseen()

    @classmethod
    def detect(cls, event: ServerSentEvent, payload: Any) -> bool:
        """A chunk with ``object: "text_completion"``, or (servers that send no
        ``object``) choices whose first one has ``text`` and no ``delta``."""
        if type(payload) is not dict:
            return False
        kind = payload.get("object")
        if kind == "text_completion":
            return True
        if kind is not None:
            return False
        choices = objects(payload.get("choices"))
        return bool(choices) and _text_choice(choices[0])

    def fast_run(self, events: list[ServerSentEvent], i: int) -> int:
        # The typed path (see _TypedTextChunk) on each chunk in turn, the
        # common chunk in line: one choice, one more piece of the text the
        # last one went to. Any other typed chunk goes to _text_chunk; every
        # check comes before any side effect, so a chunk turned down is left
        # to the dict path (as the chat dialect's own fast_run). In line, not
        # a call to fast per chunk: 10,000 chunks, 151 -> 120 bytecodes each.
        if self._finish_seen or not self._typed:
            return i  # a next completion may begin: the dict path watches
        acc, decode, start, count = self.acc, self._decode_text_chunk, i, len(events)
        # A response field not seen yet (a first value wins) takes the dict
        # path: all still absent in one call (servers that never send some,
        # as system_fingerprint, pay it on every chunk), else a test each.
        unseen, absent = self._unseen, self._unseen_absent
        sink, text_index, text_epoch = self._text_sink, self._text_index, self._text_epoch
        for i in range(start, count):  # after a break, i is the first chunk not folded
            event = events[i]
            if event.event_set:
                break
            try:
                chunk = decode(event.raw)
            except TYPED_REJECTED:
                self._typed_hits += i - start  # counted before the rejection weighs them
                self._typed_rejected()
                return i
            if unseen is not None and unseen(chunk) != absent and self._sets_unseen(chunk):
                break
            choices = chunk.choices
            if len(choices) == 1:
                # The common chunk. Its choice is in `legacy` (kept only after
                # _text_chunk found it there; never removed), and its growing
                # version, not the revision, is what the native choice's
                # cache reads.
                choice = choices[0]
                text = choice.text
                if text and choice.index == text_index and acc.epoch == text_epoch:
                    sink(text)
                    continue
            if not self._text_chunk(chunk):
                break
            sink, text_index, text_epoch = self._text_sink, self._text_index, self._text_epoch
        else:
            i = count
        self._typed_hits += i - start
        return i

    def fast(self, event: ServerSentEvent) -> bool:
        # The typed path for one chunk (see fast_run).
        return self.fast_run([event], 0) == 1

    def _sets_unseen(self, chunk: _TypedTextChunk) -> bool:
        # Whether the chunk sets a response field not seen yet.
        for key in self._missing:
            value = getattr(chunk, key)
            if value is not msgspec.UNSET and value is not None and value != "" and value != 0:
                return True
        return False

    def _text_chunk(self, chunk: _TypedTextChunk) -> bool:
        # A typed chunk fast_run did not fold in line: True when folded here.
        # No null field or padding is noted (the chat dialect's null_fields
        # and padding): they are provider() signals, and this dialect's
        # response() reads neither.
        legacy = self.legacy
        choices = chunk.choices
        for choice in choices:
            if choice.index not in legacy:
                return False
        acc = self.acc
        for choice in choices:
            index = choice.index
            text = choice.text
            if text:
                # To the part the last piece went to while the epoch holds (see
                # OpenAIChat._keep_sink).
                if index == self._text_index and acc.epoch == self._text_epoch:
                    self._text_sink(text)
                    continue
                legacy[index].revision += 1
                self._keep_sink(TEXT, index, acc.text(index, text))
            else:
                legacy[index].revision += 1
        return True

    def _response_fields(self, chunk: dict[str, Any]) -> None:
        super()._response_fields(chunk)
        self._keep_unseen()

    def _keep_unseen(self) -> None:
        # What fast() reads of the response fields not seen yet (_missing, which
        # only _response_fields shrinks; a getter of more fields than missing
        # is only slower).
        self._unseen, self._unseen_absent = unset_getter(self._missing)

    def _choice(self, choice: dict[str, Any], event: ServerSentEvent) -> None:
        index = index_or_none(choice.get("index"))
        if index is None:
            index = 0
        state = self.legacy.get(index)
        if state is None:
            state = self.legacy[index] = _Choice()
        state.revision += 1
        acc = self.acc
        text = choice.get("text")
        if type(text) is str and text:
            acc.text(index, text)
        logprobs = choice.get("logprobs")
        if type(logprobs) is dict:
            self._legacy_logprobs(index, state, logprobs)
        finish = choice.get("finish_reason")
        if type(finish) is str and finish:
            state.finish = finish
            acc.finish(index, finish, unified_finish_reason(finish))
            self._finish_seen = True  # the chat dialect then watches for a next completion
        if not choice.keys() <= _KNOWN_CHOICE:
            for key in choice.keys() - _KNOWN_CHOICE:
                value = choice[key]
                if value is not None:
                    state.fields[key] = value

    def _legacy_logprobs(self, index: int, state: _Choice, logprobs: dict[str, Any]) -> None:
        # The legacy arrays of a chunk cover its tokens: each is appended to the
        # choice's own (the native response keeps this shape), and the tokens go
        # to the events in the chat shape every dialect's logprobs share.
        arrays = state.logprobs
        for key in _LOGPROB_KEYS:
            value = logprobs.get(key)
            if type(value) is list:
                if arrays is None:
                    arrays = state.logprobs = {}
                arrays.setdefault(key, []).extend(value)
        entries = legacy_logprobs_entries(logprobs)
        if entries:
            self.acc.logprobs(index, entries)

    def response(self) -> dict[str, Any]:
        """The ``text_completion`` object a non-streaming call would have returned."""
        fields = self.fields
        out: dict[str, Any] = {
            "id": fields.get("id", ""),
            "object": "text_completion",
            "created": fields.get("created", 0),
            "model": fields.get("model", ""),
        }
        for key in ("system_fingerprint", "service_tier"):
            if key in fields:
                out[key] = fields[key]
        out["choices"] = [self._native_text_choice(i) for i in sorted(self.legacy)]
        if self.usage_raw is not None:
            out["usage"] = self.usage_raw
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    def _native_text_choice(self, index: int) -> dict[str, Any]:
        # Built again only when a chunk reached the choice or its text grew.
        state = self.legacy[index]
        choice = self.acc.choices.get(index)
        parts = choice.parts(PartKind.TEXT) if choice is not None else ()
        at = (state.revision, parts[-1].version if parts else -1)
        if state.built is not None and at == state.built_at:
            return state.built
        # Let go of the old one first: its text may then grow in place.
        state.built = None
        logprobs = state.logprobs
        native: dict[str, Any] = {
            "text": (choice.joined(PartKind.TEXT) if choice is not None else None) or "",
            "index": index,
            # The arrays grow with later chunks: the response gets them as they are now.
            "logprobs": None
            if logprobs is None
            else {key: list(value) for key, value in logprobs.items()},
            "finish_reason": state.finish,
        }
        for key, value in state.fields.items():
            native.setdefault(key, value)
        state.built, state.built_at = native, at
        return native


def _text_choice(choice: dict[str, Any]) -> bool:
    # A Completions choice: text, never the delta (chunks) or message (bodies) of chat.
    return isinstance(choice.get("text"), str) and "delta" not in choice and "message" not in choice


def legacy_logprobs_entries(logprobs: dict[str, Any]) -> list[dict[str, Any]]:
    """The legacy parallel arrays as one entry per token, in the chat shape
    (``token``, ``logprob``, ``top_logprobs`` as a list of ``token`` and
    ``logprob``), each with its ``text_offset``; values of the wrong type are
    ``None`` (and top candidates that are not numbers are left out)."""
    tokens = logprobs.get("tokens")
    if type(tokens) is not list:
        return []
    values = _list(logprobs.get("token_logprobs"))
    tops = _list(logprobs.get("top_logprobs"))
    offsets = _list(logprobs.get("text_offset"))
    entries = []
    for position, token in enumerate(tokens):
        top = tops[position] if position < len(tops) else None
        entries.append(
            {
                "token": str_or_none(token) if token != "" else "",
                "logprob": _number(values[position] if position < len(values) else None),
                "top_logprobs": [
                    {"token": candidate, "logprob": value}
                    for candidate, value in (top.items() if type(top) is dict else ())
                    if _number(value) is not None
                ],
                "text_offset": _offset(offsets[position] if position < len(offsets) else None),
            }
        )
    return entries


def _list(value: Any) -> list[Any]:
    return value if type(value) is list else []


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def _offset(value: Any) -> int | None:
    return value if type(value) is int else None
