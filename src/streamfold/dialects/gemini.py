"""Google Gemini ``streamGenerateContent``: every event is one ``GenerateContentResponse``.

Spoken by the Gemini API (``generativelanguage.googleapis.com``) and Vertex AI,
with ``?alt=sse`` (server-sent events, CRLF-framed) or without it (one JSON
array streamed element by element; ``streamfold.framing`` turns each element
into an event). Gemini has no terminal marker: a stream is complete when every
candidate it showed has a ``finishReason``.

The fold contract for this dialect (which field of the final response comes
from where, and what wins) is ``docs/dialects/gemini.md``. Each departure from
the plain format is a named function below, with the behaviour it handles.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final, Union

import msgspec

from ..errors import ProtocolError, ProviderError, shorten
from ..events import Usage
from ..fold import NO_SINK, Accumulator, PartKind, PartView
from ..sse import ServerSentEvent
from .base import (
    TYPED_REJECTED,
    Dialect,
    NativePart,
    arguments_text,
    decode_json,
    index_or_none,
    int_or_none,
    json_text,
    protocol_error,
    provider_error,
    rfc3339_seconds,
    str_or_none,
    tag_or_none,
    typed_decoder,
    unset_getter,
)

__all__ = [
    "NATIVE_FINISH",
    "Gemini",
    "PartialArguments",
    "native_usage",
    "normalise_usage",
    "parse_json_path",
    "unified_finish_reason",
]

Segment = Union[str, int]  # noqa: UP007 - a runtime alias, usable on Python 3.10

_FINISH: Final = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    # The candidate was cut by a filter: Google's safety, recitation, blocklist
    # and PII filters, and their image-generation twins.
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    # The generation failed at a tool call or in the model's own output: the
    # candidate ended, but not with an answer a caller can use as one.
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
    "TOO_MANY_TOOL_CALLS": "error",
    "MISSING_THOUGHT_SIGNATURE": "error",
    "MALFORMED_RESPONSE": "error",
}

#: The other way, for encoders: each unified finish reason's finishReason, the first
#: above that means it; "error" has no generic one (each names a failure), and a turn
#: that calls functions ends with STOP (see ``unified_finish_reason``).
NATIVE_FINISH: Final = {
    **{unified: raw for raw, unified in reversed(_FINISH.items()) if unified != "error"},
    "tool_calls": "STOP",
}

_USAGE_COUNTS: Final = (
    "promptTokenCount",
    "candidatesTokenCount",
    "totalTokenCount",
    "cachedContentTokenCount",
    "thoughtsTokenCount",
    "toolUsePromptTokenCount",
)
_RESPONSE_FIELDS: Final = ("modelVersion", "responseId", "createTime")
_KNOWN_TOP: Final = frozenset(
    {"candidates", "usageMetadata", "promptFeedback", "error", *_RESPONSE_FIELDS}
)
_KNOWN_CANDIDATE: Final = frozenset({"content", "index", "finishReason", "logprobsResult"})
_TEXT_KEYS: Final = frozenset({"text", "thought", "thoughtSignature"})
_CALL_KEYS: Final = frozenset({"name", "id", "args", "partialArgs", "willContinue"})
# Keys a part may carry beside its data (the one key that says what the part is).
_PART_META: Final = frozenset(
    {"thought", "thoughtSignature", "partMetadata", "videoMetadata", "mediaResolution"}
)
# Google's error statuses (google.rpc.Code) and HTTP codes that its docs say to retry.
_RETRYABLE_STATUS: Final = frozenset(
    {"UNAVAILABLE", "RESOURCE_EXHAUSTED", "INTERNAL", "DEADLINE_EXCEEDED"}
)
_RETRYABLE_CODES: Final = frozenset({429, 500, 503, 504})


# The common chunk, typed: text or thought parts of known candidates (and
# usage), nothing else. Decoded straight into these Structs it costs less than
# a dict and its gets and key differences; any other field or value (a call,
# a signature, a finish reason, a provider's extra field) fails validation and
# the chunk takes the dict path, which folds it the same.
class _TypedPart(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    text: str
    thought: bool = False


class _TypedContent(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    parts: list[_TypedPart] | msgspec.UnsetType = msgspec.UNSET
    role: str = ""


class _TypedCandidate(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    content: _TypedContent | msgspec.UnsetType = msgspec.UNSET
    index: int | msgspec.UnsetType = msgspec.UNSET


class _TypedChunk(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    candidates: list[_TypedCandidate]
    usageMetadata: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    modelVersion: Any = msgspec.UNSET
    responseId: Any = msgspec.UNSET
    createTime: Any = msgspec.UNSET


_UNSET: Final = msgspec.UNSET
_PATH_NAME: Final = re.compile(r"[^.\[\]]+")
# An index of more than 18 digits is past the end of any array that can exist
# (and int() refuses more than 4,300): such a path is not accepted.
_PATH_INDEX: Final = re.compile(r"\[(0|[1-9][0-9]{0,17})\]")
_PATH_QUOTED: Final = re.compile(r"""\[(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\]""")
_MAX_PATH_DEPTH: Final = 64
_MAX_INDEX_GAP: Final = 1024


def unified_finish_reason(raw: str, has_tool_calls: bool = False) -> str:
    """Map a Gemini ``finishReason`` to stop, length, tool_calls, content_filter,
    error or other.

    Gemini ends a turn that calls functions with ``STOP``; it becomes
    ``tool_calls`` when the candidate made function calls, so a caller knows to
    run them.
    """
    unified = _FINISH.get(raw, "other")
    if unified == "stop" and has_tool_calls:
        return "tool_calls"
    return unified


def normalise_usage(raw: dict[str, Any]) -> Usage:
    """Normalise ``usageMetadata``; counts not reported stay ``None``.

    ``output_tokens`` is what Google bills as output: the candidates' tokens plus
    the thinking tokens, which Gemini reports apart (``thoughtsTokenCount``).
    ``input_tokens`` is ``promptTokenCount``, which includes the cached tokens;
    ``toolUsePromptTokenCount`` stays in ``raw`` (it is counted in
    ``totalTokenCount`` but not in ``promptTokenCount``).
    """
    candidates = int_or_none(raw.get("candidatesTokenCount"))
    thoughts = int_or_none(raw.get("thoughtsTokenCount"))
    output = None
    if candidates is not None or thoughts is not None:
        # proto3 JSON omits a zero count: beside a reported one, absent means 0.
        output = (candidates or 0) + (thoughts or 0)
    return Usage(
        input_tokens=int_or_none(raw.get("promptTokenCount")),
        output_tokens=output,
        total_tokens=int_or_none(raw.get("totalTokenCount")),
        cache_read_tokens=int_or_none(raw.get("cachedContentTokenCount")),
        cache_write_tokens=None,
        reasoning_tokens=thoughts,
        raw=raw,
    )


def native_usage(usage: Usage) -> dict[str, Any]:
    """The ``usageMetadata`` of normalised ``usage``, the inverse of
    ``normalise_usage``: ``candidatesTokenCount`` is the output less the thinking
    tokens. Only the counts that are known (never a fake 0)."""
    out: dict[str, Any] = {}
    if usage.input_tokens is not None:
        out["promptTokenCount"] = usage.input_tokens
    if usage.output_tokens is not None:
        out["candidatesTokenCount"] = max(0, usage.output_tokens - (usage.reasoning_tokens or 0))
    if usage.total_tokens is not None:
        out["totalTokenCount"] = usage.total_tokens
    if usage.cache_read_tokens is not None:
        out["cachedContentTokenCount"] = usage.cache_read_tokens
    if usage.reasoning_tokens is not None:
        out["thoughtsTokenCount"] = usage.reasoning_tokens
    return out


def parse_json_path(path: str) -> tuple[Segment, ...] | None:
    """The segments of a singular JSON path (RFC 9535) such as ``$.a.b[0]`` or
    ``$['a'][0]``: object keys as ``str``, array indices as ``int``.

    Returns:
        The segments, or ``None`` when the path is not one this parser accepts
        (it must start with ``$.`` or ``$[``, name an object member first, be
        at most 64 segments deep, and have array indices of at most 18 digits).
    """
    if not path.startswith("$"):
        return None
    segments: list[Segment] = []
    pos, end = 1, len(path)
    while pos < end:
        if path[pos] == ".":
            match = _PATH_NAME.match(path, pos + 1)
            if match is None:
                return None
            segments.append(match.group())
            pos = match.end()
        elif path[pos] == "[":
            match = _PATH_INDEX.match(path, pos)
            if match is not None:
                segments.append(int(match.group(1)))
                pos = match.end()
                continue
            match = _PATH_QUOTED.match(path, pos)
            if match is None:
                return None
            single, double = match.group(1), match.group(2)
            name = _unquote(single, "'") if single is not None else _unquote(double, '"')
            if name is None:
                return None
            segments.append(name)
            pos = match.end()
        else:
            return None
    if not segments or type(segments[0]) is not str or len(segments) > _MAX_PATH_DEPTH:
        return None
    return tuple(segments)


def _unquote(body: str, quote: str) -> str | None:
    if quote == "'":
        body = body.replace("\\'", "'").replace('"', '\\"')
    try:
        import json  # rare: a quoted JSONPath segment

        value = json.loads(f'"{body}"')
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or (type(value) in (dict, list) and not value)


class _Text:
    """A streamed string argument, the fragments joined on demand (and kept
    joined: extended in place when nothing else holds it, as fold._Pieces)."""

    __slots__ = ("pieces",)

    def __init__(self, first: str) -> None:
        self.pieces = [first]

    def joined(self) -> str:
        pieces = self.pieces
        if len(pieces) == 1:
            return pieces[0]
        tail = "".join(pieces[1:])
        text = pieces[0]
        pieces.clear()
        text += tail
        pieces.append(text)
        return text


def _materialise(node: Any) -> Any:
    # Streamed strings become plain strings (depth is bounded by _MAX_PATH_DEPTH).
    if type(node) is _Text:
        return node.joined()
    if type(node) is dict:
        return {key: _materialise(value) for key, value in node.items()}
    if type(node) is list:
        return [_materialise(value) for value in node]
    return node


class PartialArguments:
    """Vertex's streamed function-call arguments (``partialArgs``), assembled.

    Each piece sets one scalar at a JSON path; string pieces at the same path
    append. The pieces build a tree (the ``args`` of the native response), and,
    while the paths arrive in document order (each new path a new key, or the
    next array element, after the last one), the JSON text of that tree is
    written incrementally, so the deltas join to exactly
    ``json.dumps(args, ensure_ascii=False)``. A piece out of that order stops the
    deltas; the call's final arguments are then written from the tree.
    """

    __slots__ = ("in_order", "last", "open_string", "root")

    def __init__(self) -> None:
        self.root: dict[str, Any] = {}
        self.last: tuple[Segment, ...] | None = None
        self.open_string = False
        self.in_order = True

    def add(self, path: tuple[Segment, ...], value: Any) -> str:
        """Set ``value`` at ``path``.

        Returns:
            The next piece of the arguments' JSON text (empty when there is none).

        Raises:
            ProtocolError: an array index far past the end of its array (the
                arguments are left as they were).
        """
        far = self._far_index(path)
        if far is not None:
            index, length = far
            raise ProtocolError(
                f"a streamed function-call argument names array element {index} "
                f"of an array of {length}",
                excerpt=str(index),
            )
        delta = self._text(path, value) if self.in_order else ""
        self._set(path, value)
        self.last = path
        return delta

    def finish(self) -> str:
        """The text that closes the arguments (``{}`` when no piece came)."""
        if not self.in_order:
            return ""
        last = self.last
        if last is None:
            return "{}"
        out = ['"'] if self.open_string else []
        self.open_string = False
        for depth in range(len(last) - 1, 0, -1):
            out.append("}" if type(last[depth]) is str else "]")
        out.append("}")
        return "".join(out)

    def value(self) -> dict[str, Any]:
        """The arguments received so far, as plain JSON values."""
        value: dict[str, Any] = _materialise(self.root)
        return value

    def json(self) -> str:
        """The arguments received so far, as JSON text."""
        return json_text(self.value())

    # -- the JSON text -------------------------------------------------------------

    def _text(self, path: tuple[Segment, ...], value: Any) -> str:
        last = self.last
        if last is None:
            first = self._open(path, 0)
            if first is None:
                return self._out_of_order()
            return "".join(["{", *first, self._scalar(value)])
        if path == last:
            if type(value) is str and self.open_string:
                return json_text(value)[1:-1]
            return self._out_of_order()
        common = 0
        limit = min(len(last), len(path))
        while common < limit and last[common] == path[common]:
            common += 1
        if common == len(last) or common == len(path):
            return self._out_of_order()
        before, after = last[common], path[common]
        if isinstance(before, int) and isinstance(after, int):
            if after != before + 1:
                return self._out_of_order()
        elif (
            isinstance(before, int)
            or isinstance(after, int)
            or after in self._container(path[:common])
        ):
            return self._out_of_order()
        opened = self._open(path, common)
        if opened is None:
            return self._out_of_order()
        out = ['"'] if self.open_string else []
        self.open_string = False
        for depth in range(len(last) - 1, common, -1):
            out.append("}" if type(last[depth]) is str else "]")
        out.append(", ")
        out.extend(opened)
        out.append(self._scalar(value))
        return "".join(out)

    def _open(self, path: tuple[Segment, ...], start: int) -> list[str] | None:
        # The entry at depth ``start`` and the new containers below it.
        out: list[str] = []
        for depth in range(start, len(path)):
            segment = path[depth]
            if type(segment) is str:
                out.append(json_text(segment) + ": ")
            elif depth > start and segment != 0:
                return None  # a new array must start at element 0
            if depth + 1 < len(path):
                out.append("{" if type(path[depth + 1]) is str else "[")
        return out

    def _scalar(self, value: Any) -> str:
        if type(value) is str:
            self.open_string = True
            return json_text(value)[:-1]
        return json_text(value)

    def _out_of_order(self) -> str:
        self.in_order = False
        self.open_string = False
        return ""

    def _container(self, path: tuple[Segment, ...]) -> Any:
        node: Any = self.root
        for segment in path:
            node = node[segment]
        return node

    # -- the tree --------------------------------------------------------------------

    def _set(self, path: tuple[Segment, ...], value: Any) -> None:
        node: Any = self.root
        for depth in range(len(path) - 1):
            kind = dict if type(path[depth + 1]) is str else list
            node = self._child(node, path[depth], kind)
        leaf = path[-1]
        if type(node) is list:
            self._reach(node, leaf)
            current = node[leaf]  # type: ignore[index]
        else:
            current = node.get(leaf)
        if type(value) is str:
            if type(current) is _Text:
                current.pieces.append(value)
                return
            value = _Text(value)
        node[leaf] = value

    def _child(self, node: Any, segment: Segment, kind: type) -> Any:
        if type(node) is list:
            self._reach(node, segment)
            child = node[segment]  # type: ignore[index]
        else:
            child = node.get(segment)
        if type(child) is not kind:
            # A path through what an earlier piece made a scalar (or the other
            # kind of container): the later piece wins, as any JSON-path setter does.
            child = kind()
            node[segment] = child
        return child

    def _far_index(self, path: tuple[Segment, ...]) -> tuple[int, int] | None:
        # A JSON path may name an element past the end (nulls fill the gap, see
        # _reach), within a bound, so a hostile index cannot exhaust memory.
        # Checked before anything changes: the first index too far past the end
        # of its array, and that array's length (0 for one _set would create).
        node: Any = self.root
        for segment in path:
            if type(segment) is int:
                items = node if type(node) is list else []
                if segment - len(items) > _MAX_INDEX_GAP:
                    return segment, len(items)
                node = items[segment] if segment < len(items) else None
            else:
                node = node.get(segment) if type(node) is dict else None
        return None

    def _reach(self, array: list[Any], index: Segment) -> None:
        # Nulls fill the gap up to an element past the end (bounded by _far_index).
        if type(index) is int and index >= len(array):
            array.extend([None] * (index - len(array) + 1))


class _TextPart(NativePart):
    """Adjacent text parts of one kind, merged into one native part."""

    __slots__ = ("extra", "signature", "sink", "sink_epoch", "thought")

    def __init__(self, thought: bool, signature: str | None) -> None:
        super().__init__()
        self.thought = thought
        self.signature = signature
        self.extra: dict[str, Any] | None = None
        # The typed path's append to the accumulator's part this part's text
        # goes to (Accumulator.sink; with events, the accumulator's call),
        # valid while the accumulator's epoch is sink_epoch: none yet.
        self.sink: Callable[[str], object] = NO_SINK
        self.sink_epoch = -1

    def keep_sink(self, acc: Accumulator, index: int, part: PartView) -> None:
        """``part`` (of candidate ``index``), where a typed piece just went, is
        where the next ones go while the accumulator's epoch holds."""
        self.sink, self.sink_epoch = acc.sink(part), acc.epoch

    def _native(self) -> dict[str, Any]:
        part: dict[str, Any] = {"text": self.text()}
        if self.thought:
            part["thought"] = True
        if self.signature is not None:
            part["thoughtSignature"] = self.signature
        if self.extra:
            for key, value in self.extra.items():
                part.setdefault(key, value)
        return part


class _StreamedCall:
    """A function call whose arguments Vertex streams (``willContinue``)."""

    __slots__ = (
        "arguments",
        "built",
        "built_at",
        "call_extra",
        "id",
        "key",
        "name",
        "part_extra",
        "revision",
        "signature",
    )

    def __init__(self, key: Any, name: str | None, id: str | None) -> None:
        self.key = key
        self.name = name
        self.id = id
        self.signature: str | None = None
        self.arguments = PartialArguments()
        self.part_extra: dict[str, Any] = {}
        self.call_extra: dict[str, Any] = {}
        # Grows with every part of the call: the native part is built again only then.
        self.revision = 0
        self.built: dict[str, Any] | None = None
        self.built_at = -1

    def native(self) -> dict[str, Any]:
        if self.built is not None and self.built_at == self.revision:
            return self.built
        self.built = None
        self.built, self.built_at = self._native(), self.revision
        return self.built

    def _native(self) -> dict[str, Any]:
        call: dict[str, Any] = {}
        if self.id is not None:
            call["id"] = self.id
        call["name"] = self.name or ""
        if self.arguments.last is not None:
            call["args"] = self.arguments.value()
        for key, value in self.call_extra.items():
            call.setdefault(key, value)
        part: dict[str, Any] = {"functionCall": call}
        if self.signature is not None:
            part["thoughtSignature"] = self.signature
        for key, value in self.part_extra.items():
            part.setdefault(key, value)
        return part


_Part = Union[_TextPart, _StreamedCall, dict[str, Any]]  # noqa: UP007


class _Candidate:
    """What the dialect keeps per candidate beside the accumulator's parts."""

    __slots__ = (
        "calls",
        "content_seen",
        "current_text",
        "fields",
        "finish",
        "index",
        "index_seen",
        "logprobs",
        "logprobs_view",
        "parts",
        "role",
        "streamed",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.index_seen = False
        self.content_seen = False
        self.role: str | None = None
        self.parts: list[_Part] = []
        self.current_text: _TextPart | None = None  # the last part, while text may join it
        self.streamed: _StreamedCall | None = None  # the call still streaming its arguments
        self.calls = 0
        self.fields: dict[str, Any] = {}  # candidate metadata: the last non-empty wins
        self.logprobs: dict[str, Any] | None = None
        # logprobs as the native response shows it: a copy, made again when it grew.
        self.logprobs_view: dict[str, Any] | None = None
        self.finish: str | None = None


class Gemini(Dialect):
    """Google Gemini ``streamGenerateContent``, SSE and JSON-array forms (``"gemini"``)."""

    name = "gemini"

    def __init__(self, acc: Accumulator) -> None:
        super().__init__(acc)
        self._decode_typed: Callable[[bytes], _TypedChunk] = typed_decoder(_TypedChunk)
        self.fields: dict[str, str] = {}
        self.extra: dict[str, Any] = {}  # unknown top-level fields: the last non-null wins
        self._fields_missing: tuple[str, ...] | None = None  # set once started
        # What fast() reads of them (see unset_getter): none yet.
        self._unseen: Callable[[Any], Any] | None = None
        self._unseen_absent: Any = msgspec.UNSET
        self.candidates: dict[int, _Candidate] = {}
        self.prompt_feedback: dict[str, Any] | None = None
        self.usage_raw: dict[str, Any] | None = None  # the last report with token counts
        self.usage_uncounted: dict[str, Any] | None = None

    @classmethod
    def detect(cls, event: ServerSentEvent, payload: Any) -> bool:
        """A ``GenerateContentResponse`` (``candidates``, ``usageMetadata``,
        ``promptFeedback`` or ``modelVersion``, and none of the other dialects'
        ``choices``, ``type`` or ``object``), or Google's error envelope."""
        if type(payload) is not dict:
            return False
        if "choices" in payload or "type" in payload or "object" in payload:
            return False
        return (
            type(payload.get("candidates")) is list
            or type(payload.get("usageMetadata")) is dict
            or type(payload.get("promptFeedback")) is dict
            or isinstance(payload.get("modelVersion"), str)
            or _is_google_error(payload)
        )

    def handle(self, event: ServerSentEvent) -> bool:
        """Fold one ``GenerateContentResponse`` chunk.

        Returns:
            ``True`` at a blocked prompt (a whole response; Gemini has no
            terminal marker otherwise).

        Raises:
            ProviderError: Google's error envelope.
            ProtocolError: the chunk is not a JSON object, or malformed.
        """
        if self.fast(event):
            return False
        chunk = decode_json(event)
        if type(chunk) is not dict:
            raise ProtocolError(
                f"event #{event.index} is not a JSON object: {shorten(event.data)!r}",
                excerpt=shorten(event.data),
                position=event.index,
            )
        if chunk.get("error") is not None:
            raise _google_error(chunk, event.index)
        self._response_fields(chunk)
        candidates = chunk.get("candidates")
        if candidates is not None:
            if type(candidates) is not list:
                raise ProtocolError(
                    f"event #{event.index}: 'candidates' is not a list",
                    excerpt=shorten(event.data),
                    position=event.index,
                )
            for position, candidate in enumerate(candidates):
                if type(candidate) is dict:
                    self._candidate(candidate, position, event)
        usage = chunk.get("usageMetadata")
        if type(usage) is dict:
            self._usage(usage)
        feedback = chunk.get("promptFeedback")
        if type(feedback) is dict and feedback:
            self.prompt_feedback = feedback
            reason = feedback.get("blockReason")
            if isinstance(reason, str) and reason:
                self._prompt_blocked(reason)
                return True
        return False

    def close(self) -> bool:
        """Complete when every candidate seen has a ``finishReason``."""
        candidates = self.candidates.values()
        return bool(candidates) and all(state.finish is not None for state in candidates)

    def fast_run(self, events: list[ServerSentEvent], i: int) -> int:
        # fast() on each chunk in turn, once the response started, with the
        # common chunk in line: one candidate, one more text piece of the part
        # the last one went to (its kept sink). Any other typed chunk goes to
        # _typed_chunk, which folds it or turns it down; every check comes
        # before any side effect, so a chunk not folded is left to the dict
        # path (a response field seen first, a text part of another kind than
        # the open one). 10,000 text chunks: 278 -> 258 bytecodes each.
        missing = self._fields_missing
        if missing is None:
            return i  # not started
        start, count = i, len(events)
        acc = self.acc
        decode, candidates_get = self._decode_typed, self.candidates.get
        # A response field not seen yet (its first value is the dict path's):
        # all still absent in one call (a server that never sends one, as
        # createTime, pays it on every chunk), else a test each. Only the
        # dict path sees a field first: these hold for the run.
        unseen, absent = self._unseen, self._unseen_absent
        unset = _UNSET
        for i in range(start, count):  # after a break, i is the first chunk not folded
            try:
                chunk = decode(events[i].raw)
            except TYPED_REJECTED:
                break
            if unseen is not None and unseen(chunk) != absent and _new_field(chunk, missing):
                break
            raws = chunk.candidates
            if len(raws) == 1:
                raw = raws[0]
                index, content = raw.index, raw.content
                state = candidates_get(0 if index is unset else index)
                if (
                    state is not None
                    and (current := state.current_text) is not None
                    and current.sink_epoch == acc.epoch
                    and content is not unset
                    and (parts := content.parts) is not unset
                    and len(parts) == 1
                    and (not parts[0].text or parts[0].thought == current.thought)
                ):
                    # One more piece of the text part the last one went to:
                    # straight to its sink. (content_seen is set already: the
                    # dict path set it before it opened the part.)
                    text = parts[0].text
                    if text:
                        current.built = None  # built again: a revision bump, for less
                        current.sink(text)
                    if index is not unset:
                        state.index_seen = True
                    if content.role:
                        state.role = content.role
                    usage = chunk.usageMetadata
                    if usage is not unset:
                        self._usage(usage)
                    continue
            if not self._typed_chunk(chunk):
                break
        else:
            i = count
        return i

    def fast(self, event: ServerSentEvent) -> bool:
        # The typed path for one chunk (see fast_run, which the parser calls
        # on the chunks after each one the dict path took).
        return self.fast_run([event], 0) == 1

    def _typed_chunk(self, chunk: _TypedChunk) -> bool:
        # A typed chunk fast_run did not fold in line (its response fields
        # checked): True when folded here.
        raws = chunk.candidates
        if len(raws) != 1:
            return self._fast_candidates(chunk)
        raw = raws[0]
        index = raw.index
        state = self.candidates.get(0 if index is _UNSET else index)
        if state is None:
            return False
        content = raw.content
        current = state.current_text
        if content is not _UNSET:
            parts = content.parts
            if parts is not _UNSET:
                for part in parts:
                    if part.text and (current is None or current.thought != part.thought):
                        return False
        if index is not _UNSET:
            state.index_seen = True
        if content is not _UNSET:
            state.content_seen = True
            if content.role:
                state.role = content.role
            parts = content.parts
            if parts is not _UNSET and current is not None:
                acc = self.acc
                for part in parts:
                    text = part.text
                    if not text:
                        continue  # an empty text part carries nothing (_is_closing_empty_text)
                    current.revision += 1
                    if part.thought:
                        handle = acc.reasoning(state.index, text)
                    else:
                        handle = acc.text(state.index, text)
                    held = current.parts  # current.add(handle), inlined
                    if not held or held[-1] is not handle:
                        held.append(handle)
                    current.keep_sink(acc, state.index, handle)
        usage = chunk.usageMetadata
        if usage is not _UNSET:
            self._usage(usage)
        return True

    def _fast_candidates(self, chunk: _TypedChunk) -> bool:
        # _typed_chunk for a chunk of any number of candidates.
        candidates = self.candidates
        for position, raw in enumerate(chunk.candidates):
            state = candidates.get(position if raw.index is _UNSET else raw.index)
            if state is None:
                return False
            content = raw.content
            if content is not _UNSET and content.parts is not _UNSET:
                current = state.current_text
                for part in content.parts:
                    if part.text and (current is None or current.thought != part.thought):
                        return False
        acc = self.acc
        for position, raw in enumerate(chunk.candidates):
            state = candidates[position if raw.index is _UNSET else raw.index]
            if raw.index is not _UNSET:
                state.index_seen = True
            content = raw.content
            if content is _UNSET:
                continue
            state.content_seen = True
            if content.role:
                state.role = content.role
            if content.parts is _UNSET:
                continue
            current = state.current_text
            for part in content.parts:
                text = part.text
                if not text or current is None:
                    continue  # an empty text part carries nothing (_is_closing_empty_text)
                current.revision += 1
                if part.thought:
                    current.add(acc.reasoning(state.index, text))
                else:
                    current.add(acc.text(state.index, text))
        if chunk.usageMetadata is not _UNSET:
            self._usage(chunk.usageMetadata)
        return True

    def _prompt_blocked(self, reason: str) -> None:
        # Gemini answers a blocked prompt with promptFeedback.blockReason and no
        # candidates, on HTTP 200 without streaming too: a whole response, not an
        # error (google-genai returns it). Its finish is the block reason, which
        # unifies to content_filter, so a checked result raises
        # TruncatedResponseError like any other filtered answer.
        self.acc.finish(0, reason, "content_filter")

    # -- per chunk -----------------------------------------------------------------

    def _response_fields(self, chunk: dict[str, Any]) -> None:
        fields = self.fields
        if len(fields) < len(_RESPONSE_FIELDS):
            for key in _RESPONSE_FIELDS:
                value = chunk.get(key)
                if key not in fields and isinstance(value, str) and value:
                    fields[key] = value
        if not self.acc.started:
            self.acc.start(
                fields.get("responseId"),
                fields.get("modelVersion"),
                rfc3339_seconds(fields.get("createTime")),
            )
        # The response fields a typed chunk may not carry (its first one is
        # the dict path's), once started.
        self._fields_missing = tuple(key for key in _RESPONSE_FIELDS if key not in fields)
        self._unseen, self._unseen_absent = unset_getter(self._fields_missing)
        extra = chunk.keys() - _KNOWN_TOP
        if extra:
            for key in extra:
                if chunk[key] is not None:
                    self.extra[key] = chunk[key]

    def _candidate(self, raw: dict[str, Any], position: int, event: ServerSentEvent) -> None:
        index = _candidate_index(raw, position)
        state = self.candidates.get(index)
        if state is None:
            state = self.candidates[index] = _Candidate(index)
            self.acc.choice(index)
        if "index" in raw:
            state.index_seen = True
        content = raw.get("content")
        if type(content) is dict:
            state.content_seen = True
            role = content.get("role")
            if isinstance(role, str) and role:
                state.role = role
            parts = content.get("parts")
            if type(parts) is list:
                for part in parts:
                    if type(part) is dict:
                        self._part(state, part, event)
        for key, value in raw.items():
            if key not in _KNOWN_CANDIDATE and not _is_empty(value):
                state.fields[key] = value
        logprobs = raw.get("logprobsResult")
        if type(logprobs) is dict and logprobs:
            self._logprobs(state, logprobs)
        finish = raw.get("finishReason")
        if isinstance(finish, str) and finish:
            self._finish(state, finish)

    def _part(self, state: _Candidate, part: dict[str, Any], event: ServerSentEvent) -> None:
        text = part.get("text")
        if isinstance(text, str):
            self._text_part(state, part, text)
            return
        call = part.get("functionCall")
        if type(call) is dict:
            self._function_call(state, part, call, event)
            return
        # executableCode, codeExecutionResult, inlineData, fileData, and the
        # server-side toolCall/toolResponse of Gemini 3: kept whole, in order.
        self._end_text(state)
        state.parts.append(part)
        self.acc.unknown(_part_kind(part), part)

    def _text_part(self, state: _Candidate, part: dict[str, Any], text: str) -> None:
        thought = part.get("thought") is True
        signature = part.get("thoughtSignature")
        if not isinstance(signature, str) or not signature:
            signature = None
        extra = part.keys() - _TEXT_KEYS
        if _is_closing_empty_text(text, signature, extra):
            return
        current = state.current_text
        if current is not None and _joins(current, thought, signature):
            current.revision += 1
            if signature is not None:
                current.signature = signature
        else:
            self._end_text(state)
            current = state.current_text = _TextPart(thought, signature)
            state.parts.append(current)
            if thought:
                # Open the reasoning part even for a signature alone, so the
                # signature lands on its own reasoning.done.
                current.add(self.acc.reasoning(state.index, text))
                text = ""
        if extra:
            if current.extra is None:
                current.extra = {}
            for key in extra:
                current.extra[key] = part[key]
        if thought:
            if text:
                current.add(self.acc.reasoning(state.index, text))
            if signature is not None:
                self.acc.reasoning_signature(state.index, signature=signature)
        elif text:
            handle = self.acc.text(state.index, text)
            parts = current.parts
            if not parts or parts[-1] is not handle:  # current.add, inline: every chunk
                parts.append(handle)

    def _end_text(self, state: _Candidate) -> None:
        current = state.current_text
        if current is not None:
            state.current_text = None
            self.acc.end_part(state.index, PartKind.REASONING if current.thought else PartKind.TEXT)

    def _function_call(
        self,
        state: _Candidate,
        part: dict[str, Any],
        call: dict[str, Any],
        event: ServerSentEvent,
    ) -> None:
        name = str_or_none(call.get("name"))
        call_id = str_or_none(call.get("id"))
        pieces = call.get("partialArgs")
        if type(pieces) is not list:
            pieces = []
        will_continue = call.get("willContinue") is True
        self._end_text(state)
        streamed = state.streamed
        if streamed is not None and not _continues(streamed, call, name, call_id):
            self.acc.warn(
                f"candidate {state.index}: function call {streamed.name!r} got no final "
                "part (willContinue false) before the next call began"
            )
            self._end_streamed(state, complete=False)
            streamed = None
        if streamed is None:
            if not pieces and not will_continue:
                self._whole_call(state, part, call, name, call_id, event)
                return
            streamed = self._start_streamed(state, part, call, name, call_id)
        streamed.revision += 1
        if name and not streamed.name:
            streamed.name = name
            self.acc.tool_call(state.index, streamed.key, name=name)
        if streamed.signature is None:
            signature = part.get("thoughtSignature")
            if isinstance(signature, str) and signature:
                streamed.signature = signature
        for piece in pieces:
            if type(piece) is dict:
                self._partial_argument(state, streamed, piece, event)
        if not will_continue:
            self._end_streamed(state, complete=True)

    def _whole_call(
        self,
        state: _Candidate,
        part: dict[str, Any],
        call: dict[str, Any],
        name: str | None,
        call_id: str | None,
        event: ServerSentEvent,
    ) -> None:
        args = call.get("args")
        if name is None and args is None:
            self.acc.warn(f"candidate {state.index}: an empty functionCall part was ignored")
            return
        arguments = "{}" if args is None else arguments_text(args, event, "functionCall.args")
        key = ("call", state.calls)
        state.calls += 1
        state.parts.append(part)
        self.acc.tool_call(
            state.index,
            key,
            id=call_id,
            name=name,
            arguments=arguments,
        )
        self.acc.end_tool_call(state.index, key)

    def _start_streamed(
        self,
        state: _Candidate,
        part: dict[str, Any],
        call: dict[str, Any],
        name: str | None,
        call_id: str | None,
    ) -> _StreamedCall:
        streamed = _StreamedCall(("call", state.calls), name, call_id)
        state.calls += 1
        for key in part.keys() - {"functionCall", "thoughtSignature"}:
            streamed.part_extra[key] = part[key]
        for key in call.keys() - _CALL_KEYS:
            streamed.call_extra[key] = call[key]
        state.streamed = streamed
        state.parts.append(streamed)
        self.acc.tool_call(state.index, streamed.key, id=call_id, name=name)
        return streamed

    def _partial_argument(
        self,
        state: _Candidate,
        streamed: _StreamedCall,
        piece: dict[str, Any],
        event: ServerSentEvent,
    ) -> None:
        raw_path = piece.get("jsonPath")
        if not isinstance(raw_path, str) or not raw_path:
            self.acc.warn(f"candidate {state.index}: a partialArgs piece without jsonPath ignored")
            return
        if type(piece.get("stringValue")) is str:
            value: Any = piece["stringValue"]
        elif type(piece.get("boolValue")) is bool:
            value = piece["boolValue"]
        elif type(piece.get("numberValue")) in (int, float):
            value = piece["numberValue"]
        elif "nullValue" in piece:
            value = None
        else:
            return  # a piece without a value carries nothing
        path = parse_json_path(raw_path)
        if path is None:
            self.acc.warn(
                f"candidate {state.index}: unreadable jsonPath {shorten(raw_path, 60)!r}; "
                "its value is kept under that name"
            )
            path = (raw_path[2:] if raw_path.startswith("$.") else raw_path,)
        try:
            delta = streamed.arguments.add(path, value)
        except ProtocolError as exc:
            raise protocol_error(
                event, f"partialArgs jsonPath {shorten(raw_path, 60)!r}: {exc}"
            ) from None
        if delta:
            self.acc.tool_call(state.index, streamed.key, arguments=delta)

    def _end_streamed(self, state: _Candidate, complete: bool) -> None:
        streamed = state.streamed
        if streamed is None:
            return
        state.streamed = None
        if complete:
            closing = streamed.arguments.finish()
            if closing:
                self.acc.tool_call(state.index, streamed.key, arguments=closing)
            if not streamed.arguments.in_order:
                self.acc.replace_arguments(state.index, streamed.key, streamed.arguments.json())
        self.acc.end_tool_call(state.index, streamed.key, complete=complete)

    def _logprobs(self, state: _Candidate, raw: dict[str, Any]) -> None:
        # Each chunk carries the log probabilities of its own tokens: the token
        # lists are appended; other fields (logProbabilitySum) are the last chunk's.
        merged = state.logprobs
        if merged is None:
            merged = state.logprobs = {}
        state.logprobs_view = None
        for key, value in raw.items():
            if type(value) is list:
                known = merged.get(key)
                if type(known) is list:
                    known.extend(value)
                else:
                    merged[key] = list(value)
            elif value is not None:
                merged[key] = value
        chosen = raw.get("chosenCandidates")
        if type(chosen) is list and chosen:
            self.acc.logprobs(state.index, chosen)

    def _finish(self, state: _Candidate, raw: str) -> None:
        if state.streamed is not None:
            self.acc.warn(
                f"candidate {state.index} finished ({raw}) while function call "
                f"{state.streamed.name!r} was still streaming its arguments"
            )
            self._end_streamed(state, complete=False)
        self._end_text(state)
        state.finish = raw
        self.acc.finish(state.index, raw, unified_finish_reason(raw, state.calls > 0))

    def _usage(self, raw: dict[str, Any]) -> None:
        if _has_token_counts(raw):
            self.usage_raw = raw
            self.acc.set_usage(normalise_usage(raw))
        else:
            self.usage_uncounted = raw

    # -- the native response -----------------------------------------------------

    def response(self) -> dict[str, Any]:
        """The ``GenerateContentResponse`` a non-streaming call would have returned."""
        out: dict[str, Any] = {}
        if self.candidates:
            out["candidates"] = [
                self._native_candidate(self.candidates[index]) for index in sorted(self.candidates)
            ]
        if self.prompt_feedback is not None:
            out["promptFeedback"] = self.prompt_feedback
        usage = self.usage_raw if self.usage_raw is not None else self.usage_uncounted
        if usage is not None:
            out["usageMetadata"] = usage
        for key in _RESPONSE_FIELDS:
            if key in self.fields:
                out[key] = self.fields[key]
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    def _native_candidate(self, state: _Candidate) -> dict[str, Any]:
        candidate: dict[str, Any] = {}
        if state.content_seen or state.parts:
            content: dict[str, Any] = {}
            if state.parts:
                content["parts"] = [
                    part if isinstance(part, dict) else part.native() for part in state.parts
                ]
            content["role"] = state.role or "model"
            candidate["content"] = content
        if state.finish is not None:
            candidate["finishReason"] = state.finish
        for key, value in state.fields.items():
            candidate[key] = value
        if state.logprobs is not None:
            view = state.logprobs_view
            if view is None:
                # The token lists grow in later chunks: the response gets them as they are now.
                view = state.logprobs_view = {
                    key: list(value) if type(value) is list else value
                    for key, value in state.logprobs.items()
                }
            candidate["logprobsResult"] = view
        if state.index_seen:
            candidate["index"] = state.index
        return candidate


def _new_field(chunk: _TypedChunk, missing: tuple[str, ...]) -> bool:
    # Whether a typed chunk sets a response field the response has not got
    # (the dict path keeps the first non-empty string of each).
    for key in missing:
        value = getattr(chunk, key)
        if isinstance(value, str) and value:
            return True
    return False


def _candidate_index(raw: dict[str, Any], position: int) -> int:
    # Gemini omits a zero index (proto3 JSON leaves default values out), so a
    # candidate without one is taken by its position in the list, as Google's
    # SDKs do.
    index = index_or_none(raw.get("index"))
    return position if index is None else index


def _is_closing_empty_text(text: str, signature: str | None, extra: Any) -> bool:
    # Gemini 3 ends many streams with {"text": ""} (beside finishReason): a part
    # that carries nothing. With a thoughtSignature it is kept (it carries the
    # signature of the turn).
    return not text and signature is None and not extra


def _has_token_counts(usage: dict[str, Any]) -> bool:
    # Vertex sends usageMetadata {"trafficType": "ON_DEMAND"} alone on early
    # chunks: not a usage report, and it must not replace one.
    return any(key in usage for key in _USAGE_COUNTS)


def _joins(current: _TextPart, thought: bool, signature: str | None) -> bool:
    # Gemini streams one text part as many chunks. Gemini 2.5 signs the first
    # chunk of a part, Gemini 3 the last (often an empty text part): a signature
    # stays on the merged part either way. Two signatures are never merged
    # into one part; Google's docs forbid concatenating signed parts.
    return current.thought == thought and not (signature is not None and current.signature)


def _continues(
    streamed: _StreamedCall, call: dict[str, Any], name: str | None, call_id: str | None
) -> bool:
    # Vertex streams one call as a first part with its name, parts with
    # partialArgs, keep-alive parts with willContinue alone, and a nameless
    # final part. A part naming another function or id, or bringing whole
    # args, is a new call.
    if name is not None and streamed.name is not None and name != streamed.name:
        return False
    if call_id is not None and streamed.id is not None and call_id != streamed.id:
        return False
    return not (name is not None and call.get("args") is not None)


def _part_kind(part: dict[str, Any]) -> str:
    for key in part:
        if key not in _PART_META:
            return key
    return "part"


def _is_google_error(payload: dict[str, Any]) -> bool:
    # Google's error envelope: {"error": {"code": 429, "message": ..., "status":
    # "RESOURCE_EXHAUSTED"}}; OpenAI's has "type", not "status".
    error = payload.get("error")
    return type(error) is dict and isinstance(error.get("status"), str)


def _google_error(payload: dict[str, Any], position: int) -> ProviderError:
    # Google's error envelope, on HTTP 200 inside the stream or as the body.
    # Retryable per Google's docs: 429 RESOURCE_EXHAUSTED, 500 INTERNAL,
    # 503 UNAVAILABLE, 504 DEADLINE_EXCEEDED.
    error = provider_error(payload, position)
    body = payload.get("error")
    if type(body) is dict and (
        tag_or_none(body.get("status")) in _RETRYABLE_STATUS
        or int_or_none(body.get("code")) in _RETRYABLE_CODES
    ):
        error.retryable = True
    return error


# -- HTTP error bodies (read by the adapters through the registry row) ---------------------


def unwrap_error_body(raw: Any) -> dict[str, Any] | None:
    """Gemini's error body without its array, or ``None`` when it has none.

    ``streamGenerateContent`` without ``alt=sse`` wraps even its HTTP error in
    the stream's array: ``[{"error": {...}}]``.
    """
    if type(raw) is list and len(raw) == 1 and type(raw[0]) is dict:
        return raw[0]
    return None


def error_status(raw: Any) -> str | None:
    """The status name of Google's error envelope, when its ``code`` is the number.

    Google's envelope has the HTTP status as a number in ``code`` (429) and the
    meaningful name beside it in ``status`` (``"RESOURCE_EXHAUSTED"``): the
    name is the code worth matching on.
    """
    error = raw.get("error") if type(raw) is dict else None
    if type(error) is not dict or int_or_none(error.get("code")) is None:
        return None
    status = error.get("status")
    return status if isinstance(status, str) and status else None


def retry_delay(raw: Any) -> float | None:
    """Seconds to wait before retrying, from Google's error envelope, or ``None``.

    Gemini says when to retry in the body, not in a header: ``error.details[]``
    holds a ``google.rpc.RetryInfo`` whose ``retryDelay`` is a duration such as
    ``"37s"`` or ``"1.5s"``.
    """
    error = raw.get("error") if type(raw) is dict else None
    details = error.get("details") if type(error) is dict else None
    if type(details) is not list:
        return None
    for item in details:
        kind = item.get("@type") if type(item) is dict else None
        if isinstance(kind, str) and kind.endswith("google.rpc.RetryInfo"):
            delay = item.get("retryDelay")
            match = _DURATION.fullmatch(delay) if isinstance(delay, str) else None
            return float(match.group(1)) if match else None
    return None


# A protobuf Duration in its JSON form: seconds with up to nine decimals and an "s".
_DURATION: Final = re.compile(r"(\d{1,12}(?:\.\d{1,9})?)s")
