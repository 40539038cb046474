"""The neutral accumulator: dialect pieces in, public events and the unified view out.

Dialects call the push methods of ``Accumulator`` (``text``, ``tool_call``,
``finish``...) with provider-neutral pieces; the accumulator never sees
provider JSON. It is the one store of streamed text and tool-call arguments:
it keeps, per choice, each part's and each call's fragments in a list that is
joined only when a part ends or a view is asked for (and then kept joined), so
the cost of a chunk never depends on the size of the answer so far.

It also enforces the order contract of ``docs/semantics.md``: a ``*.done``
exactly once per part, after its last delta and before ``response.finished``.

The read-only view (what a native-response builder may read)
-----------------------------------------------------------

A dialect that needs a part's text or a call's arguments for its native
response keeps the handle a push method returns (``text``, ``reasoning``,
``refusal`` and ``begin_part`` return a ``PartView``; ``tool_call`` a
``ToolCallView``), or looks it up (``Accumulator.choice(index)`` and
``Accumulator.choices`` give ``ChoiceView`` objects), and reads it through
these Protocols only; it never keeps a second copy of the text:

- ``PartView``: ``kind``, ``owner`` (the dialect's key for it), ``text`` (the
  whole text so far), ``version`` (grows whenever ``text`` changes), ``done``,
  ``partial_output()`` (with an output type: its value so far).
- ``ToolCallView``: ``index``, ``id``, ``name``, ``kind``, ``server``,
  ``done``, ``complete``, ``arguments`` (the JSON text so far), ``version``
  (grows whenever ``arguments`` changes), ``partial_arguments()`` (the
  arguments parsed as far as they have arrived), ``partial_output()`` (with a
  type for its tool: its value so far).
- ``ChoiceView``: ``index``, ``finish_reason``, ``raw_finish_reason``,
  ``tool_calls`` (in order), ``tool_call(key)``, ``parts(kind)`` (in order),
  ``joined(kind)`` (every part of a kind joined, ``None`` when there is none),
  ``open_part(kind)``, ``logprobs_content`` and ``logprobs_refusal``.

Every attribute is a read-only property; the strings and lists they give are
shared with the accumulator and with earlier snapshots: never mutate them.
Everything else is private: a dialect changes the fold through the push
methods only (mypy rejects a write through a view, or an attribute it lacks).

Typed parts: given an ``output_type`` (``tool_types``), each text part (each
call of a typed tool) is followed by one ``StructuredParser``, fed its deltas
as they are pushed and reading its text from the store when an error needs
it; its partial-JSON parser also gives the ``parse_content`` /
``parse_arguments`` updates of that part. ``output.updated`` events follow
the delta that completed a value; the outcome rides on ``text.done`` /
``tool_call.done`` and the unified view (``_Typed``).

Parts have owners: ``owner`` (any hashable key; ``None`` by default) names the
dialect's own part a piece belongs to. One part of a kind is open per choice:
a piece for another owner ends the open part (its ``*.done``) and opens a new
one, and ``end_part``, ``replace_part`` and ``reasoning_signature`` given an
owner touch the open part only when it is that owner's. A dialect whose
provider interleaves two parts of one kind thus never merges them; its native
part is the run of accumulator parts that carried its owner.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from enum import Enum
from functools import partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Protocol, cast

import msgspec

from .errors import OutputValidationError
from .events import (
    ErrorInfo,
    ErrorOccurred,
    Event,
    JSONError,
    LogprobsDelta,
    LogprobsDone,
    OutputUpdated,
    ReasoningDelta,
    ReasoningDone,
    RefusalDelta,
    RefusalDone,
    ResponseFinished,
    ResponseStarted,
    TextDelta,
    TextDone,
    ToolCallArgumentsDelta,
    ToolCallDone,
    ToolCallStarted,
    Unknown,
    Usage,
    UsageUpdated,
    attach,
)
from .partial_json import JSONUpdate, PartialJSONError, PartialJSONParser
from .result import ToolCall, Unified

if TYPE_CHECKING:
    from .structured import OutputType, OutputValueDone

# streamfold.structured is imported when an output type is first given: a plain
# fold never loads it (2.4 ms of `import streamfold`).
UNSET: Final = msgspec.UNSET

__all__ = [
    "FREE_TEXT_KIND",
    "Accumulator",
    "ChoiceView",
    "PartKind",
    "PartView",
    "ToolCallView",
    "parse_arguments",
]

_decode_json = msgspec.json.Decoder().decode


class PartKind(str, Enum):
    """What a part holds: answer text, reasoning, or a refusal. The values are the
    names of their events (``text.delta``, ``reasoning.done``...)."""

    TEXT = "text"
    REASONING = "reasoning"
    REFUSAL = "refusal"


# The members by their short names (the encoders read them so).
TEXT, REASONING, REFUSAL = PartKind.TEXT, PartKind.REASONING, PartKind.REFUSAL
_KINDS: Final = (REASONING, TEXT, REFUSAL)  # the order in which a choice's parts end
_BLOCK = 4096  # pieces joined into one block (memory, see _Pieces)
_SWEEP = 64  # stores checked for a block per read, at most, on average (Accumulator.drain)
#: The tool-call kind whose input is free text (OpenAI custom tools), never parsed as JSON.
FREE_TEXT_KIND = "custom"
#: The unified finish reasons of an answer cut short: its typed output is never complete.
_CUT: Final = frozenset({"length", "content_filter"})


# -- the read-only view ----------------------------------------------------------------


class PartView(Protocol):
    """A part (a run of text, reasoning or refusal of one choice), read-only."""

    @property
    def kind(self) -> PartKind:
        """Text, reasoning or refusal."""

    @property
    def owner(self) -> Any:
        """The dialect's key for the part it belongs to (``None`` when not given)."""

    @property
    def text(self) -> str:
        """The text so far (joined once, then kept joined)."""

    @property
    def version(self) -> int:
        """A number that grows whenever ``text`` changes."""

    @property
    def done(self) -> bool:
        """Whether the part has ended (its ``*.done`` event)."""

    def partial_output(self) -> Any:
        """A text part's value of the ``output_type`` so far (``StructuredParser.partial``;
        the validated output once the part ended well); ``UNSET`` when there is
        no output type, or before any value started."""


class ToolCallView(Protocol):
    """A tool call, read-only."""

    @property
    def index(self) -> int:
        """Its event index: its position among its choice's calls."""

    @property
    def id(self) -> str | None:
        """The call id, once known."""

    @property
    def name(self) -> str | None:
        """The tool name, once known."""

    @property
    def kind(self) -> str:
        """``"function"``, ``"custom"`` (free-text input), or a server tool's kind."""

    @property
    def server(self) -> bool:
        """Run by the provider: not the caller's to run (and not in the unified view)."""

    @property
    def done(self) -> bool:
        """Whether the call has ended (its ``tool_call.done`` event)."""

    @property
    def complete(self) -> bool:
        """Whether it ended properly (not cut by the end of the stream)."""

    @property
    def arguments(self) -> str:
        """The arguments so far, as JSON text (joined once, then kept joined)."""

    @property
    def version(self) -> int:
        """A number that grows whenever ``arguments`` changes."""

    def partial_arguments(self) -> Any:
        """The arguments parsed as far as they have arrived (``partial_json``'s
        snapshot rules), incrementally: each call parses only what came since
        the last.

        Raises:
            PartialJSONError: the arguments so far are not a prefix of valid JSON.
        """

    def partial_output(self) -> Any:
        """The arguments' value of the tool's type (``tool_types=``) so far
        (``StructuredParser.partial``; the validated output once the call ended
        well); ``UNSET`` when the tool has no type, or before any value started."""


class ChoiceView(Protocol):
    """A choice (candidate), read-only."""

    @property
    def index(self) -> int:
        """Its index."""

    @property
    def finish_reason(self) -> str | None:
        """The unified finish reason, once known."""

    @property
    def raw_finish_reason(self) -> str | None:
        """The provider's finish reason, once known."""

    @property
    def tool_calls(self) -> Sequence[ToolCallView]:
        """Its tool calls, in order."""

    @property
    def logprobs_content(self) -> Sequence[Any] | None:
        """The log probabilities of its content tokens, in order (``None`` when
        none came); a list shared until more arrive."""

    @property
    def logprobs_refusal(self) -> Sequence[Any] | None:
        """The same for its refusal tokens."""

    def tool_call(self, key: Any) -> ToolCallView | None:
        """The call the dialect keyed ``key``, if any."""

    def parts(self, kind: PartKind) -> Sequence[PartView]:
        """Its parts of ``kind``, in order (all but the last are done)."""

    def joined(self, kind: PartKind) -> str | None:
        """The text of every part of ``kind``, joined; ``None`` when it has none."""

    def open_part(self, kind: PartKind) -> PartView | None:
        """Its open part of ``kind``, if any."""

    def content_key(self) -> tuple[Any, ...]:
        """What its texts, log probabilities and finish reason depend on, as one
        tuple: equal keys, equal content (a snapshot's cache key). Its first two
        items are the text's: the number of text parts and the last one's version."""


# -- typed output ---------------------------------------------------------------------------


class _Typed:
    """A part's or call's text followed as a value of its output type: the one
    parser of that text (its JSON updates are the part's ``updates``).

    A value that does not validate fails the typed parser, not the JSON: its
    partial-JSON parser goes on alone, so the JSON updates and the parsed
    ``value`` stay what they are without a type.
    """

    __slots__ = (
        "after",
        "cut",
        "error",
        "json_error",
        "output",
        "output_type",
        "parser",
        "source",
    )

    def __init__(self, output_type: OutputType, text: Callable[[], str]) -> None:
        self.output_type = output_type
        from .structured import StructuredParser

        self.parser = StructuredParser(output_type, text=text)
        self.source = text
        self.output: Any = UNSET
        self.error: OutputValidationError | None = None  # the typed parser failed
        self.json_error: PartialJSONError | None = None  # the JSON text is invalid
        self.cut: OutputValidationError | None = None  # made once the answer was cut
        # The last piece's JSON updates once the typed parser failed (None: its own).
        self.after: list[JSONUpdate] | None = None

    def feed(self, delta: str) -> list[OutputValueDone]:
        """Follow a piece; returns what it completed (``updates()``: its JSON updates).
        The sinks call ``parser.feed`` themselves while ``error`` is ``None``
        (and ``failed`` when it raises): a call less per piece."""
        if self.error is None:
            try:
                return self.parser.feed(delta)
            except OutputValidationError as exc:
                return self.failed(exc)
        self.after = []
        if self.json_error is None:
            try:
                self.after = self.parser.json.feed(delta)
            except PartialJSONError as exc:
                self.json_error = exc
        return []

    def failed(self, error: OutputValidationError) -> list[OutputValueDone]:
        """The typed parser raised ``error`` on a piece: from now on the JSON alone is followed."""
        self.error = error
        self.json_error = _json_cause(error)
        self.after = [] if self.json_error else None
        return []

    def updates(self) -> tuple[JSONUpdate, ...]:
        """The last piece's JSON updates (read only with ``parse_content`` /
        ``parse_arguments``: no tuple made per piece without them)."""
        after = self.after
        return tuple(self.parser.json_updates if after is None else after)

    def close(
        self, complete: bool, cut: bool
    ) -> tuple[Any, JSONError | None, list[OutputValueDone]]:
        """End the text (``cut``: its choice's answer was cut short, so the value
        is not complete either); returns the parsed JSON value (``None`` unless
        complete), why the JSON is invalid, and what the end completed. The
        typed outcome stays in ``output`` and ``error``."""
        done: list[OutputValueDone] = []
        if self.error is None:
            try:
                self.output = self.parser.close(complete and not cut)
                done = self.parser.updates
            except OutputValidationError as exc:
                self.error = exc
                self.json_error = _json_cause(exc)  # None: the value, not the JSON
        error = self.json_error
        if error is not None:
            return None, JSONError(message=str(error), position=error.position), done
        if not complete:
            return None, None, done
        try:
            return self.parser.json.close(), None, done
        except PartialJSONError as exc:
            return None, JSONError(message=str(exc), position=exc.position), done

    def outcome(self, finish: str | None) -> tuple[Any, OutputValidationError | None]:
        """The output and its error, as the result gives them: an answer whose
        choice was cut (finish reason length or content filter) is never complete."""
        if finish not in _CUT or self.error is not None:
            return self.output, self.error
        cut = self.cut
        if cut is None:
            cut = self.cut = OutputValidationError(
                "incomplete",
                f"the answer was cut off (finish reason {finish!r})",
                text=self.source(),
                partial_value=self.output,
            )
        return UNSET, cut


def _json_cause(error: OutputValidationError) -> PartialJSONError | None:
    # The JSON text's own error behind a typed one (none for a value that does not validate).
    cause = error.__cause__
    return cause if isinstance(cause, PartialJSONError) else None


# -- the store ----------------------------------------------------------------------------


class _Pieces:
    """Streamed text kept as fragments, joined on demand and then kept joined.

    ``version`` counts every fragment ever added (and every replacement), and
    ``_resets`` every replacement: while it stays, the text only grows at its
    end. Joining extends the text joined before with the fragments since: the
    accumulator holds that string alone once the snapshots that shared it are
    gone, and CPython then appends to it in place (``str +=`` on a string
    nothing else refers to), so a part that grows costs its new fragments, not
    a copy of its text, snapshot after snapshot.

    The fragments are joined into blocks every ``_BLOCK`` of them (at the end
    of each read, ``Accumulator.drain``, or as they come): a list of many
    tiny strings costs ~5 to 10x their text in memory.
    """

    __slots__ = ("_base", "_blocks", "_pieces", "_resets")

    def __init__(self) -> None:
        self._pieces: list[str] = []
        self._base = 0  # fragments absorbed by joins
        self._blocks = 0  # _pieces[:_blocks] are joined blocks, the rest single pieces
        self._resets = 0

    @property
    def version(self) -> int:
        return self._base + len(self._pieces)

    def _joined(self) -> str:
        pieces = self._pieces
        count = len(pieces)
        if count == 1:
            return pieces[0]
        if not count:
            return ""
        tail = pieces[1] if count == 2 else "".join(pieces[1:])
        text = pieces[0]
        pieces.clear()  # the list lets go of the text: `text` may hold it alone now
        text += tail
        pieces.append(text)
        self._base += count - 1
        self._blocks = 1
        return text

    def _compact(self) -> None:
        # The pieces since the last block, joined into one: called every
        # _BLOCK pieces, or at the end of a read for a store fed through its
        # list's append (Accumulator.drain).
        pieces = self._pieces
        start = self._blocks
        tail = "".join(pieces[start:])
        self._base += len(pieces) - start - 1
        del pieces[start:]
        pieces.append(tail)
        self._blocks += 1

    def _replace(self, text: str) -> None:
        version = self.version
        self._pieces = [text]
        self._base = version
        self._blocks = 1
        self._resets += 1


class _Part(_Pieces):
    """One part: the accumulator's store of its text (a ``PartView``)."""

    __slots__ = ("_choice", "_done", "_encrypted", "_kind", "_owner", "_signature", "_typed")

    def __init__(self, kind: PartKind, owner: Any, choice: int = 0) -> None:
        super().__init__()
        self._kind = kind
        self._owner = owner
        self._choice = choice  # its choice's index
        self._done = False
        self._signature: str | None = None
        self._encrypted: str | None = None
        self._typed: _Typed | None = None  # with an output type: the text followed as it

    @property
    def kind(self) -> PartKind:
        return self._kind

    @property
    def owner(self) -> Any:
        return self._owner

    @property
    def text(self) -> str:
        return self._joined()

    @property
    def done(self) -> bool:
        return self._done

    def partial_output(self) -> Any:
        typed = self._typed
        return UNSET if typed is None else typed.parser.partial


class _ToolCall(_Pieces):
    """One tool call: the accumulator's store of its arguments (a ``ToolCallView``)."""

    __slots__ = (
        "_complete",
        "_done",
        "_error",
        "_fed",
        "_id",
        "_index",
        "_kind",
        "_name",
        "_parser",
        "_partial",
        "_server",
        "_typed",
        "_unified",
        "_unified_cut",
        "_unified_version",
    )

    def __init__(self, index: int, id: str | None, name: str | None, kind: str) -> None:
        super().__init__()
        self._index = index
        self._id = id
        self._name = name
        self._kind = kind
        self._done = False
        self._complete = False  # ended properly (not cut by the end of the stream)
        self._server = False  # run by the provider (web search, MCP): not the caller's to run
        # parse_arguments: the parser fed every piece, until it failed (then the error).
        self._parser: PartialJSONParser | None = None
        self._error: PartialJSONError | None = None
        # partial_arguments() otherwise: a parser fed on demand, and how much it was fed.
        self._partial: PartialJSONParser | None = None
        self._fed = 0
        # The unified view's ToolCall, kept while the call does not change (any
        # change but new pieces lets go of it at once).
        self._unified: ToolCall | None = None
        self._unified_version = 0
        self._unified_cut = False  # the unified ToolCall's answer was cut (see _Typed.outcome)
        self._typed: _Typed | None = None  # with a type for its tool: the arguments followed

    @property
    def index(self) -> int:
        return self._index

    @property
    def id(self) -> str | None:
        return self._id

    @property
    def name(self) -> str | None:
        return self._name

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def server(self) -> bool:
        return self._server

    @property
    def done(self) -> bool:
        return self._done

    @property
    def complete(self) -> bool:
        return self._complete

    @property
    def arguments(self) -> str:
        # The unified view and the native response share this one string.
        if len(self._pieces) != 1:
            # New pieces: the unified ToolCall is stale, and lets go of the
            # text first, which may then grow in place.
            self._unified = None
        return self._joined()

    def partial_arguments(self) -> Any:
        if self._parser is not None:
            return self._parser.snapshot()
        typed = self._typed
        if typed is not None:  # its parser follows the JSON too
            if typed.json_error is not None:
                raise typed.json_error
            return typed.parser.json.snapshot()
        text = self.arguments
        partial = self._partial
        if partial is None:
            partial = self._partial = PartialJSONParser(updates=False)
            self._fed = 0
        piece = text[self._fed :] if self._fed else text
        self._fed = len(text)
        partial.feed(piece)  # after an error, raises it again
        return partial.snapshot()

    def partial_output(self) -> Any:
        typed = self._typed
        return UNSET if typed is None else typed.parser.partial

    def _replace_arguments(self, arguments: str) -> None:
        self._replace(arguments)
        self._parser = self._error = self._partial = None

    def _unified_call(self, finish: str | None) -> ToolCall:
        unified = self._unified
        version = self._base + len(self._pieces)
        cut = finish in _CUT
        if unified is not None and version == self._unified_version and cut == self._unified_cut:
            return unified
        # Let go of the old arguments before joining: they may then grow in place.
        self._unified = unified = None
        unified = self._unified = ToolCall(
            id=self._id, name=self._name, arguments=self.arguments, complete=self._complete
        )
        typed = self._typed
        if typed is not None and self._done:
            output, error = typed.outcome(finish)
            attach(unified, output=output, output_error=error)
        self._unified_version = self._base + len(self._pieces)
        self._unified_cut = cut
        return unified


class _Choice:
    """Everything folded for one choice (candidate): a ``ChoiceView``."""

    __slots__ = (
        "_calls",
        "_content_error",
        "_content_parser",
        "_current_tool",
        "_finish",
        "_index",
        "_interleaved",
        "_joined",
        "_logprobs_content",
        "_logprobs_done",
        "_logprobs_refusal",
        "_logprobs_views",
        "_open",
        "_order",
        "_parts",
        "_raw_finish",
        "_tool_base",
    )

    def __init__(self, index: int) -> None:
        self._index = index
        # Every part of each kind, in order; the open one (at most one per kind) is the last.
        self._parts: dict[PartKind, list[_Part]] = {TEXT: [], REASONING: [], REFUSAL: []}
        self._open: dict[PartKind, _Part] = {}
        self._calls: dict[Any, _ToolCall] = {}  # by the dialect's key
        self._order: list[_ToolCall] = []
        self._tool_base = 0  # event index of the first call (after a restart: not 0)
        self._current_tool: _ToolCall | None = None
        self._interleaved = False
        self._logprobs_content: list[Any] | None = None
        self._logprobs_refusal: list[Any] | None = None
        self._logprobs_done = False
        self._raw_finish: str | None = None
        self._finish: str | None = None
        # JSON-mode content parsing (only when asked for): the open text part's parser.
        self._content_parser: PartialJSONParser | None = None
        self._content_error: PartialJSONError | None = None
        # The views' copies, kept while they stay true: every part of a kind
        # joined, and the log probabilities as lists (see _joined_text).
        self._joined: dict[PartKind, _JoinedText] = {}
        self._logprobs_views: list[list[Any] | None] = [None, None]

    @property
    def index(self) -> int:
        return self._index

    @property
    def finish_reason(self) -> str | None:
        return self._finish

    @property
    def raw_finish_reason(self) -> str | None:
        return self._raw_finish

    @property
    def tool_calls(self) -> Sequence[ToolCallView]:
        return self._order

    @property
    def logprobs_content(self) -> Sequence[Any] | None:
        return self._logprobs_view(0, self._logprobs_content)

    @property
    def logprobs_refusal(self) -> Sequence[Any] | None:
        return self._logprobs_view(1, self._logprobs_refusal)

    def _logprobs_view(self, slot: int, live: list[Any] | None) -> list[Any] | None:
        # The live list grows: a reader gets a copy, made again only when it grew.
        if live is None:
            return None
        view = self._logprobs_views[slot]
        if view is None or len(view) != len(live):
            view = self._logprobs_views[slot] = list(live)
        return view

    def tool_call(self, key: Any) -> ToolCallView | None:
        return self._calls.get(key)

    def parts(self, kind: PartKind) -> Sequence[PartView]:
        return self._parts[kind]

    def joined(self, kind: PartKind) -> str | None:
        parts = self._parts[kind]
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0].text
        return _joined_text(self._joined, kind, parts)

    def open_part(self, kind: PartKind) -> PartView | None:
        return self._open.get(kind)

    def content_key(self) -> tuple[Any, ...]:
        # One call for what a snapshot checks after every chunk (versions inline).
        parts = self._parts
        t, f, r = parts[TEXT], parts[REFUSAL], parts[REASONING]
        content, refused = self._logprobs_content, self._logprobs_refusal
        return (
            len(t),
            t[-1]._base + len(t[-1]._pieces) if t else 0,
            len(f),
            f[-1]._base + len(f[-1]._pieces) if f else 0,
            len(r),
            r[-1]._base + len(r[-1]._pieces) if r else 0,
            -1 if content is None else len(content),
            -1 if refused is None else len(refused),
            self._raw_finish,
        )


def _compiled(output_type: Any) -> OutputType:
    from .structured import OutputType

    return OutputType(output_type)


def NO_SINK(delta: str) -> None:
    """A dialect's kept sink before it has one (never called: its epoch is -1)."""
    raise AssertionError(f"no sink kept for {delta[:20]!r}")


class _JoinedText:
    """Every part of a kind joined: the text, the parts it covers, and how far
    into the last one, as of when it was joined."""

    __slots__ = ("count", "covered", "resets", "text")

    def __init__(self, text: str, count: int, covered: int, resets: int) -> None:
        self.text = text
        self.count = count
        self.covered = covered
        self.resets = resets


def _joined_text(cache: dict[PartKind, _JoinedText], kind: PartKind, parts: list[_Part]) -> str:
    # Parts before the last are closed (they never change) and the last only
    # grows at its end while its resets stay: the text joined before is
    # extended with what the last part gained, in place when nothing else
    # holds it (see _Pieces).
    last = parts[-1]
    tail = last.text
    known = cache.pop(kind, None)
    if known is not None and known.count == len(parts) and known.resets == last._resets:
        text = known.text
        known.text = ""
        if len(tail) != known.covered:
            text += tail[known.covered :]
    else:
        text = "".join([part.text for part in parts])
    cache[kind] = _JoinedText(text, len(parts), len(tail), last._resets)
    return text


# -- the accumulator --------------------------------------------------------------------


class Accumulator:
    """Folds neutral pieces into events and a unified view.

    Args:
        emit: build event objects; when ``False`` only the fold is kept (plain
            folding pays for no event it does not return).
        parse_arguments: parse tool-call arguments incrementally and attach the
            JSON updates to ``tool_call.arguments.delta`` events.
        parse_content: treat answer text as JSON (JSON mode, structured output):
            attach updates to ``text.delta`` and the parsed value to ``text.done``.
        output_type: follow each text part as a value of this type
            (``streamfold.structured``; events or not): ``output.updated``
            events, the partial value, and the validated output on
            ``text.done`` and in the unified view.
        tool_types: the same for the arguments of the tools named, by name.

    Raises:
        UnsupportedSchemaError: a type or schema ``streamfold.structured`` does not support.
    """

    def __init__(
        self,
        *,
        emit: bool = True,
        parse_arguments: bool = False,
        parse_content: bool = False,
        output_type: Any = None,
        tool_types: Mapping[str, Any] | None = None,
    ) -> None:
        self._emit = emit
        self._parse_arguments = parse_arguments and emit
        self._parse_content = parse_content and emit
        # Compiled once here: an unsupported type fails before any byte.
        self._output_type = None if output_type is None else _compiled(output_type)
        self._tool_types = {name: _compiled(tp) for name, tp in (tool_types or {}).items()}
        self._out: list[Event] = []
        self._choices: dict[int, _Choice] = {}
        #: Every choice seen, by index (read-only).
        self.choices: Final[Mapping[int, ChoiceView]] = MappingProxyType(self._choices)
        self._usage: Usage | None = None
        self._error: ErrorInfo | None = None
        self._warnings: list[str] = []
        self._started = False
        # The open parts, and the calls whose sink appends to their pieces' list
        # itself (arguments_sink): their blocks are joined at the end of each
        # read (drain), not checked per piece.
        self._appending: set[_Pieces] = set()
        self._unswept = 0  # reads since they were last checked
        #: Changes whenever a part opens, ends or has its text replaced: a
        #: dialect keeps a part's ``sink`` for as long as it is unchanged.
        self.epoch = 0

    # -- access ----------------------------------------------------------------

    @property
    def started(self) -> bool:
        """Whether the response's identity was given (``start``)."""
        return self._started

    @property
    def warnings(self) -> Sequence[str]:
        """The warnings so far, in order."""
        return self._warnings

    def choice(self, index: int) -> ChoiceView:
        """Choice ``index``, created on first use (a choice seen without content
        still belongs to the response)."""
        return self._choice(index)

    def call_at(self, choice: int, index: int) -> ToolCallView | None:
        """Tool call ``index`` (its event index) of ``choice``, if it exists."""
        return self._call_at(choice, index)

    def _call_at(self, choice: int, index: int) -> _ToolCall | None:
        # Calls are in event-index order, numbered on from the first (read
        # after every delta: found by position, not by a scan).
        state = self._choices.get(choice)
        calls = state._order if state is not None else ()
        if not calls:
            return None
        position = index - calls[0]._index
        if 0 <= position < len(calls) and calls[position]._index == index:
            return calls[position]
        return next((c for c in calls if c._index == index), None)

    def partial_output(self, choice: int) -> Any:
        """``StreamParser.partial_output``: the last text part's typed value so far."""
        # Read after every delta by a UI: the part's fields, not its view's properties.
        state = self._choices.get(choice)
        parts = state._parts[TEXT] if state is not None else ()
        typed = parts[-1]._typed if parts else None
        return UNSET if typed is None else typed.parser.partial

    def partial_tool_output(self, choice: int, index: int) -> Any:
        """``StreamParser.partial_tool_output``: a call's typed value so far (``None``:
        no such call)."""
        call = self._call_at(choice, index)
        if call is None:
            return None
        typed = call._typed
        return UNSET if typed is None else typed.parser.partial

    def drain(self) -> list[Event]:
        """Hand over the events produced since the last call."""
        # The blocks of the open parts and of the calls arguments_sink gave
        # their own append: checked here, at the end of a read, not per piece
        # (Responses parallel calls: 185 -> 171 bytecodes per event; a text
        # part of 100,000 pieces: peak 5.5x -> 2.0x of its text), in line. All
        # of them after every read while there are few; with more, once every
        # len / _SWEEP reads, so that a stream of many open choices or calls in
        # small reads stays linear (40,000 choices in 1 KiB reads: 2.2 s, x2.0
        # per doubling; 12.6 s and x3.9 checked at every read). A store then
        # holds at most what those reads brought beyond its blocks.
        appending: Collection[_Pieces] = self._appending
        if len(appending) > _SWEEP:
            reads = self._unswept = self._unswept + 1
            if reads * _SWEEP < len(appending):
                appending = ()  # not at this read
            else:
                self._unswept = 0
        for store in appending:  # _end and _tool_done take theirs out
            if len(store._pieces) - store._blocks >= _BLOCK:
                store._compact()
        out = self._out  # one list for the whole stream: the sinks keep its append
        if not out:
            return []
        events = out.copy()
        out.clear()
        return events

    # -- pieces from dialects --------------------------------------------------

    def start(self, id: str | None, model: str | None, created: int | None) -> None:
        """The response's identity is known (called once, by the dialect)."""
        if not self._started:
            self._started = True
            if self._emit:
                self._out.append(ResponseStarted(id=id, model=model, created=created))

    def text(self, index: int, delta: str, owner: Any = None) -> PartView:
        """Answer text for choice ``index`` (of the dialect's part ``owner``).

        Returns:
            The part it went to.
        """
        state = self._choices.get(index) or self._choice(index)
        try:
            part = state._open[TEXT]
        except KeyError:
            part = self._open(state, TEXT, owner)
        else:
            if part._owner is not owner and part._owner != owner:
                part = self._open(state, TEXT, owner)
        part._pieces.append(delta)
        if part._typed is not None:
            self._typed_text(part._typed, index, delta)
        elif self._emit:
            if self._parse_content:
                self._out.append(
                    TextDelta(
                        choice=index, delta=delta, updates=self._content_updates(state, delta)
                    )
                )
            else:
                self._out.append(TextDelta(choice=index, delta=delta))
        return part

    def _typed_text(self, typed: _Typed, index: int, delta: str) -> None:
        # A text part with an output type: its one parser follows the JSON too.
        if typed.error is None:  # _Typed.feed, inlined: this runs for every piece
            try:
                done = typed.parser.feed(delta)
            except OutputValidationError as exc:
                done = typed.failed(exc)
        else:
            done = typed.feed(delta)
        if self._emit:
            if self._parse_content:
                self._out.append(TextDelta(choice=index, delta=delta, updates=typed.updates()))
            else:
                self._out.append(TextDelta(choice=index, delta=delta))
            if done:
                self._output_updated(index, None, done)

    def _output_updated(self, index: int, call: int | None, done: list[OutputValueDone]) -> None:
        append = self._out.append
        for update in done:
            event = OutputUpdated(choice=index, index=call, path=update.path)
            # attach(event, value=...) written out: this runs for every completed value.
            event.__dict__["value"] = update.value
            append(event)

    def _content_updates(self, state: _Choice, delta: str) -> tuple[Any, ...]:
        parser = state._content_parser
        if parser is None:
            return ()
        try:
            return tuple(parser.feed(delta))
        except PartialJSONError as exc:
            state._content_error = exc
            state._content_parser = None
            return ()

    def reasoning(self, index: int, delta: str, owner: Any = None) -> PartView:
        """Reasoning (thinking) text for choice ``index`` (of the dialect's part ``owner``).

        Returns:
            The part it went to.
        """
        state = self._choices.get(index) or self._choice(index)
        try:
            part = state._open[REASONING]
        except KeyError:
            part = self._open(state, REASONING, owner)
        else:
            if part._owner is not owner and part._owner != owner:
                part = self._open(state, REASONING, owner)
        part._pieces.append(delta)
        if self._emit:
            self._out.append(ReasoningDelta(choice=index, delta=delta))
        return part

    def sink(self, part: PartView) -> Callable[[str], object]:
        """The part a delta just went to (what ``text``, ``reasoning`` or
        ``refusal`` returned), as a function that folds the next delta of that
        part exactly as the same call would, for as long as ``epoch`` is
        unchanged. In a plain fold it is the store's append: no call per delta
        (~0.15 µs of 1 to 2); with events, an append and the delta event
        without the call's lookups (1,420 instructions per delta instead of
        2,740 over a plain fold, Chat text); with an output type, the append,
        the type's parser and its events; with a text part's content parsed,
        the call itself.
        """
        store = cast(_Part, part)
        if store._typed is None:
            if not self._emit:
                return store._pieces.append
            if store._kind is not TEXT or not self._parse_content:
                return _delta_sink(self, store)
        elif store._kind is TEXT:
            return _typed_text_sink(self, store)
        kind = store._kind
        add = self.text if kind is TEXT else self.reasoning if kind is REASONING else self.refusal
        index, owner = store._choice, store._owner
        if owner is None:
            return partial(add, index)  # no keywords: a partial with them builds a dict per call
        return lambda delta: add(index, delta, owner)

    def refusal(self, index: int, delta: str, owner: Any = None) -> PartView:
        """Refusal text for choice ``index`` (of the dialect's part ``owner``).

        Returns:
            The part it went to.
        """
        state = self._choices.get(index) or self._choice(index)
        try:
            part = state._open[REFUSAL]
        except KeyError:
            part = self._open(state, REFUSAL, owner)
        else:
            if part._owner is not owner and part._owner != owner:
                part = self._open(state, REFUSAL, owner)
        part._pieces.append(delta)
        if self._emit:
            self._out.append(RefusalDelta(choice=index, delta=delta))
        return part

    def reasoning_signature(
        self,
        index: int,
        signature: str | None = None,
        encrypted_content: str | None = None,
        owner: Any = None,
    ) -> None:
        """A signature or encrypted content for the open reasoning part (ignored
        when none is open, or it is not ``owner``'s: it must not ride on another part)."""
        part = self._owned(index, REASONING, owner)
        if part is None:
            return
        if signature:
            part._signature = (part._signature or "") + signature
        if encrypted_content:
            part._encrypted = encrypted_content

    def begin_part(self, index: int, kind: PartKind, owner: Any = None) -> PartView:
        """Open a part of ``kind`` that may have no text (redacted or signed-only
        thinking), so that it still gets its ``*.done``; the open part of
        ``kind`` when it is ``owner``'s already.

        Returns:
            The part.
        """
        state = self._choice(index)
        part = state._open.get(kind)
        if part is None or part._owner != owner:
            part = self._open(state, kind, owner)
        return part

    def replace_part(self, index: int, kind: PartKind, text: str, owner: Any = None) -> None:
        """The provider sent the open part's final text whole: it wins over the deltas."""
        part = self._owned(index, kind, owner)
        if part is not None:
            self.epoch += 1
            typed = part._typed
            if typed is not None and part.text != text:  # followed again, once, on the winner
                typed = part._typed = _Typed(typed.output_type, typed.source)
                typed.feed(text)
            part._replace(text)

    def end_part(
        self, index: int, kind: PartKind, complete: bool = True, owner: Any = None
    ) -> None:
        """The open part of ``kind`` (text, reasoning or refusal) is over; given
        an ``owner``, only when the open part is that owner's."""
        part = self._owned(index, kind, owner)
        if part is not None:
            self._end(self._choices[index], part, complete)

    def tool_call(
        self,
        index: int,
        key: Any,
        *,
        id: str | None = None,
        name: str | None = None,
        kind: str = "function",
        arguments: str = "",
        server: bool = False,
    ) -> ToolCallView:
        """A tool call's first sight or a further piece of it.

        ``key`` is the dialect's identity for the call (the provider's index, an
        id, a block index). A new key ends the current call of the choice
        (``tool_call.done``) when its arguments so far are a whole JSON value:
        then no further piece but white space can belong to it. Otherwise (the
        provider interleaves the deltas of its calls, or sent invalid JSON) the
        call ends with its choice, or when the dialect ends it.
        ``id`` and ``name`` are set once, never concatenated. ``server`` marks
        a call the provider runs itself (Anthropic's server tools, MCP; or a
        call whose result the provider sent): it has events, but stays out of
        the unified view's calls to execute; once set, it stays.

        Returns:
            The call.
        """
        state = self._choices.get(index) or self._choice(index)
        call = state._calls.get(key)
        if call is None:
            current = state._current_tool
            if current is not None and not current._done and not state._interleaved:
                # Decided the same with events on or off: the result must not
                # depend on whether events were asked for.
                if _whole_json(current):
                    self._tool_done(state, current, complete=True)
                else:
                    state._interleaved = True
            if REASONING in state._open:
                self.end_part(index, REASONING)
            call = _ToolCall(state._tool_base + len(state._order), id, name, kind)
            call._server = server
            state._calls[key] = call
            state._order.append(call)
            state._current_tool = call
            self.epoch += 1
            if name is not None and name in self._tool_types and kind != FREE_TEXT_KIND:
                call._typed = _Typed(self._tool_types[name], _arguments_of(call))
            elif self._parse_arguments and kind != FREE_TEXT_KIND:
                call._parser = PartialJSONParser()
            if self._emit:
                self._out.append(
                    ToolCallStarted(choice=index, index=call._index, id=id, name=name, kind=kind)
                )
        else:
            if id and not call._id:
                call._id = id
                call._unified = None
            if name and not call._name:
                call._name = name
                call._unified = None
                if name in self._tool_types and call._kind != FREE_TEXT_KIND:
                    self._type_late(call, self._tool_types[name])
            if server:
                call._server = True
            if arguments and call is not state._current_tool and not state._interleaved:
                self._interleaved_calls(state, call)
        if arguments:
            self._arguments(state, call, arguments)
        return call

    def _type_late(self, call: _ToolCall, output_type: OutputType) -> None:
        # The tool's name came after the call started: its arguments so far are
        # followed once, and its typed parser follows the JSON from here on.
        if call._done:
            return
        self.epoch += 1
        typed = call._typed = _Typed(output_type, _arguments_of(call))
        call._parser = None
        arguments = call.arguments
        if arguments:
            typed.feed(arguments)

    def tool_arguments(self, index: int, key: Any, delta: str) -> ToolCallView:
        """A further piece of the arguments of call ``key`` of choice ``index``:
        ``tool_call(index, key, arguments=delta)`` without the other fields,
        for a dialect's hot path (a third of ``tool_call``'s cost).

        Returns:
            The call.
        """
        state = self._choices.get(index)
        call = state._calls.get(key) if state is not None else None
        if state is None or call is None or not delta:
            return self.tool_call(index, key, arguments=delta)
        if call is not state._current_tool and not state._interleaved:
            # The provider interleaves calls (_interleaved_calls, inline).
            state._current_tool = call
            state._interleaved = True
            self.epoch += 1
        if self._emit or call._done or call._typed is not None:
            self._arguments(state, call, delta)
        else:
            # The plain fold: the piece kept (in line, a call per delta saved).
            pieces = call._pieces
            pieces.append(delta)
            if len(pieces) - call._blocks >= _BLOCK:
                call._compact()
        return call

    def arguments_sink(self, index: int, key: Any) -> Callable[[str], object]:
        """``tool_arguments(index, key, delta)`` for the next non-empty pieces of
        the call, while ``epoch`` is unchanged (it moves when a call starts,
        ends, gets a type or has its arguments replaced, and when the choice's
        calls first interleave; not on each switch after that, so a dialect
        may keep one sink per call): in a plain fold the call's own append,
        one call instead of the lookups; with events, that append and the
        delta event (half the events' cost per piece over a plain fold), the
        piece parsed too with ``parse_arguments``; with a type, the append,
        the type's parser and its events; once the call is done, the call itself.

        Raises:
            KeyError: no call ``key`` in choice ``index`` (ask after a delta went to it).
        """
        call = self._choices[index]._calls[key]
        if call._done:
            return partial(self.tool_arguments, index, key)
        if call._typed is not None:
            return _typed_arguments_sink(self, index, call)
        if not self._emit:
            self._appending.add(call)
            return call._pieces.append
        return _arguments_delta_sink(self, index, call)

    def _arguments(self, state: _Choice, call: _ToolCall, delta: str) -> None:
        # Append a piece of arguments to ``call``.
        pieces = call._pieces
        pieces.append(delta)
        if len(pieces) - call._blocks >= _BLOCK:
            call._compact()
        if call._done:
            # After a call's whole JSON value only white space can follow: kept
            # in the arguments, but no event comes after its tool_call.done.
            if delta.strip():
                self.warn(
                    f"tool call #{call._index} of choice {state._index} received arguments "
                    f"after it was reported done: {delta[:40]!r}"
                )
            return
        typed = call._typed
        if typed is not None:
            self._typed_arguments(state, call, typed, delta)
            return
        if not self._emit:
            return
        parser = call._parser
        updates = () if parser is None else _call_updates(call, parser, delta)
        self._out.append(
            ToolCallArgumentsDelta(
                choice=state._index, index=call._index, id=call._id, delta=delta, updates=updates
            )
        )

    def _typed_arguments(self, state: _Choice, call: _ToolCall, typed: _Typed, delta: str) -> None:
        # A call whose tool has a type: its one parser follows the JSON too.
        if typed.error is None:  # _Typed.feed, inlined: this runs for every piece
            try:
                done = typed.parser.feed(delta)
            except OutputValidationError as exc:
                done = typed.failed(exc)
        else:
            done = typed.feed(delta)
        if self._emit:
            self._out.append(
                ToolCallArgumentsDelta(
                    choice=state._index,
                    index=call._index,
                    id=call._id,
                    delta=delta,
                    updates=typed.updates() if self._parse_arguments else (),
                )
            )
            if done:
                self._output_updated(state._index, call._index, done)

    def replace_arguments(self, index: int, key: Any, arguments: str) -> None:
        """The provider sent the final arguments whole: they win over the deltas."""
        call = self._choice(index)._calls.get(key)
        if call is not None and call.arguments != arguments:
            self.epoch += 1
            typed = call._typed
            call._replace_arguments(arguments)
            if typed is not None:  # followed again, once, on the arguments that won
                call._typed = _Typed(typed.output_type, typed.source)
                call._typed.feed(arguments)

    def end_tool_call(self, index: int, key: Any, complete: bool = True) -> None:
        """The provider marked the end of a tool call."""
        state = self._choices.get(index)
        call = state._calls.get(key) if state else None
        if state is not None and call is not None and not call._done:
            self._tool_done(state, call, complete=complete)

    def logprobs(
        self, index: int, content: list[Any] | None, refusal: list[Any] | None = None
    ) -> None:
        """Log probabilities for tokens of choice ``index``, appended in order."""
        state = self._choices.get(index) or self._choice(index)
        if content:
            if state._logprobs_content is None:
                state._logprobs_content = []
            state._logprobs_content.extend(content)
        if refusal:
            if state._logprobs_refusal is None:
                state._logprobs_refusal = []
            state._logprobs_refusal.extend(refusal)
        if self._emit and (content or refusal):
            self._out.append(LogprobsDelta(choice=index, content=content, refusal=refusal))

    def set_usage(self, usage: Usage) -> None:
        """The stream reported usage; the latest report wins, and a chunk without
        usage never wipes it (dialects simply do not call this then)."""
        if usage == self._usage:
            return
        self._usage = usage
        if self._emit:
            self._out.append(UsageUpdated(usage=usage))

    def finish(self, index: int, raw: str, unified: str, close: bool = True) -> None:
        """Choice ``index`` finished; the last finish reason wins. Its open parts
        end here, complete, unless ``close`` is false (a failure that ends them
        incomplete follows)."""
        state = self._choices.get(index) or self._choice(index)
        state._raw_finish = raw
        state._finish = unified
        if close:
            self._close_choice(state, complete=True)

    def unknown(self, event: str | None, raw: Any) -> None:
        """Something the dialect does not model, kept raw in an event."""
        if self._emit:
            self._out.append(Unknown(event=event, raw=raw))

    def restart(self) -> None:
        """The provider abandoned the response and started it again in the same
        stream (a retry spliced in by an intermediary): open parts and calls end
        incomplete, and the fold starts over, so the result is the retry alone."""
        old = list(self._choices.values())
        self._choices.clear()
        for state in old:
            self._close_choice(state, complete=False)
            # Tool-call indexes in events stay unique across the restart.
            self._choice(state._index)._tool_base = state._tool_base + len(state._order)
        self._usage = None

    def warn(self, message: str) -> None:
        """Record a warning for the result."""
        self._warnings.append(message)

    # -- the end -----------------------------------------------------------------

    def terminate(self) -> None:
        """The stream ended well: every part ends, then ``response.finished`` per
        choice. Called once, by the parser (which owns the stream's phase)."""
        for state in self._choices.values():
            self._close_choice(state, complete=True)
        if self._emit:
            for state in self._choices.values():
                self._out.append(
                    ResponseFinished(
                        choice=state._index,
                        finish_reason=state._finish,
                        raw_finish_reason=state._raw_finish,
                    )
                )

    def fail(self, error: ErrorInfo, raw: Any = None) -> None:
        """The stream failed: open parts end marked incomplete, then an error
        event. Called once, by the parser, instead of ``terminate``."""
        self._error = error
        for state in self._choices.values():
            self._close_choice(state, complete=False)
        if self._emit:
            self._out.append(ErrorOccurred(error=error, raw=raw))

    # -- views -----------------------------------------------------------------

    def unified(self) -> Unified:
        """The unified view of choice 0 (or of the lowest choice seen)."""
        if not self._choices:
            return Unified(usage=self._usage, error=self._error)
        state = self._choices.get(0) or self._choices[min(self._choices)]
        finish = state._finish
        unified = Unified(
            text=state.joined(TEXT) or "",
            reasoning=state.joined(REASONING) or "",
            refusal=state.joined(REFUSAL) or "",
            tool_calls=tuple(c._unified_call(finish) for c in state._order if not c._server),
            finish_reason=finish,
            raw_finish_reason=state._raw_finish,
            usage=self._usage,
            error=self._error,
        )
        parts = state._parts[TEXT]
        typed = parts[-1]._typed if parts and parts[-1]._done else None
        if typed is not None:  # the answer's output: its last text part's, once it ended
            output, output_error = typed.outcome(finish)
            attach(unified, output=output, output_error=output_error)
        return unified

    # -- internals -------------------------------------------------------------

    def _choice(self, index: int) -> _Choice:
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = _Choice(index)
        return state

    def _owned(self, index: int, kind: PartKind, owner: Any) -> _Part | None:
        # The open part of ``kind``, when it is ``owner``'s (any, for no owner).
        state = self._choices.get(index)
        part = state._open.get(kind) if state is not None else None
        if part is None or (owner is not None and part._owner != owner):
            return None
        return part

    def _content_value(
        self, state: _Choice, text: str, complete: bool
    ) -> tuple[Any, JSONError | None]:
        parser, error = state._content_parser, state._content_error
        state._content_parser = state._content_error = None
        if error is not None:
            return None, JSONError(message=str(error), position=error.position)
        if parser is None or not complete:
            return None, None
        try:
            return parser.close(), None
        except PartialJSONError as exc:
            return None, JSONError(message=str(exc), position=exc.position)

    def _open(self, state: _Choice, kind: PartKind, owner: Any) -> _Part:
        # The open part of this kind (another owner's) ends; answer text or a
        # tool call after reasoning ends the reasoning part (if reasoning
        # resumes, that is a new part).
        self.epoch += 1
        current = state._open.get(kind)
        if current is not None:
            self._end(state, current, True)
        if kind is not REASONING and REASONING in state._open:
            self._end(state, state._open[REASONING], True)
        part = state._open[kind] = _Part(kind, owner, state._index)
        state._parts[kind].append(part)
        self._appending.add(part)
        if kind is TEXT:
            if self._output_type is not None:
                part._typed = _Typed(self._output_type, part._joined)
            elif self._parse_content:
                state._content_parser = PartialJSONParser()
                state._content_error = None
        return part

    def _end(self, state: _Choice, part: _Part, complete: bool) -> None:
        self.epoch += 1
        kind = part._kind
        del state._open[kind]
        part._done = True
        self._appending.discard(part)
        typed = part._typed
        if typed is not None:
            self._end_typed(state, part, typed, complete)
            return
        if not self._emit:
            return
        text = part.text
        index = state._index
        if kind is TEXT:
            if self._parse_content:
                value, error = self._content_value(state, text, complete)
                self._out.append(
                    TextDone(
                        choice=index, text=text, complete=complete, value=value, parse_error=error
                    )
                )
            else:
                self._out.append(TextDone(choice=index, text=text, complete=complete))
        elif kind is REASONING:
            self._out.append(
                ReasoningDone(
                    choice=index,
                    text=text,
                    signature=part._signature,
                    encrypted_content=part._encrypted,
                    complete=complete,
                )
            )
        else:
            self._out.append(RefusalDone(choice=index, text=text, complete=complete))

    def _end_typed(self, state: _Choice, part: _Part, typed: _Typed, complete: bool) -> None:
        # A text part with an output type ends: validated as complete only when
        # its choice was not cut (the finish reason may also come later: see unified).
        value, error, done = typed.close(complete, state._finish in _CUT)
        if not self._emit:
            return
        index = state._index
        if done:  # a bare number completes only at the end
            self._output_updated(index, None, done)
        if self._parse_content:
            event = TextDone(
                choice=index, text=part.text, complete=complete, value=value, parse_error=error
            )
        else:
            event = TextDone(choice=index, text=part.text, complete=complete)
        self._out.append(attach(event, output=typed.output, output_error=typed.error))

    def _tool_done_typed(
        self, state: _Choice, call: _ToolCall, typed: _Typed, complete: bool
    ) -> None:
        value, error, done = _tool_value(call, typed, complete, state._finish in _CUT)
        if not self._emit:
            return
        index = state._index
        if done:
            self._output_updated(index, call._index, done)
        if error is None and value is None and not complete:
            value, error = parse_arguments(call.arguments)  # as untyped: the JSON so far
        event = ToolCallDone(
            choice=index,
            index=call._index,
            id=call._id,
            name=call._name,
            kind=call._kind,
            arguments=call.arguments,
            value=value,
            parse_error=error,
            complete=complete,
        )
        self._out.append(attach(event, output=typed.output, output_error=typed.error))

    def _close_choice(self, state: _Choice, complete: bool) -> None:
        for kind in _KINDS:
            part = state._open.get(kind)
            if part is not None:
                self._end(state, part, complete)
        for call in state._order:
            if not call._done:
                self._tool_done(state, call, complete)
        if state._logprobs_content is not None or state._logprobs_refusal is not None:
            if self._emit and not state._logprobs_done:
                self._out.append(
                    LogprobsDone(
                        choice=state._index,
                        content=state._logprobs_content,
                        refusal=state._logprobs_refusal,
                    )
                )
            state._logprobs_done = True

    def _interleaved_calls(self, state: _Choice, call: _ToolCall) -> None:
        # The provider interleaves calls: from here on this choice's calls end
        # only at its finish (or when the dialect ends them), and which call is
        # current no longer matters (read only while not interleaved): the
        # epoch moves once, not on every switch, so that each call's kept sink
        # holds across its neighbours' pieces (parallel calls switch on every
        # delta).
        state._current_tool = call
        state._interleaved = True
        self.epoch += 1

    def _tool_done(self, state: _Choice, call: _ToolCall, complete: bool) -> None:
        self.epoch += 1
        call._done = True
        self._appending.discard(call)  # no sink is its append now
        call._complete = complete
        call._unified = None
        typed = call._typed
        if typed is not None:
            self._tool_done_typed(state, call, typed, complete)
            return
        if not self._emit:
            return
        arguments = call.arguments
        value: Any = None
        error: JSONError | None = None
        if call._parser is not None and complete and arguments.strip():
            try:
                value = call._parser.close()
            except PartialJSONError as exc:
                error = JSONError(message=str(exc), position=exc.position)
        elif call._error is not None:
            error = JSONError(message=str(call._error), position=call._error.position)
        elif call._kind == FREE_TEXT_KIND:
            value = arguments  # a custom tool's input is free text, not JSON
        else:
            value, error = parse_arguments(arguments)
        self._out.append(
            ToolCallDone(
                choice=state._index,
                index=call._index,
                id=call._id,
                name=call._name,
                kind=call._kind,
                arguments=arguments,
                value=value,
                parse_error=error,
                complete=complete,
            )
        )


_DELTAS: Final = {TEXT: TextDelta, REASONING: ReasoningDelta, REFUSAL: RefusalDelta}


def _delta_sink(acc: Accumulator, part: _Part) -> Callable[[str], None]:
    # Accumulator.sink with events, for a part with no type nor content
    # parsing: what text() does to the open part, without its lookups.
    keep, emit, event, choice = (
        part._pieces.append,
        acc._out.append,
        _DELTAS[part._kind],
        part._choice,
    )

    def sink(delta: str) -> None:
        keep(delta)
        emit(event(choice=choice, delta=delta))

    return sink


def _arguments_delta_sink(acc: Accumulator, choice: int, call: _ToolCall) -> Callable[[str], None]:
    # Accumulator.arguments_sink with events, for a call with no type: what
    # tool_arguments() does to it, without its lookups (parsed, with
    # parse_arguments). Its blocks are joined at each read (drain), and the
    # id is read per piece: it may come after the call started.
    index, keep, emit = call._index, call._pieces.append, acc._out.append
    acc._appending.add(call)
    if call._parser is None:  # no parse_arguments: none later (a call's parser comes first)

        def sink(delta: str) -> None:
            keep(delta)
            emit(ToolCallArgumentsDelta(choice=choice, index=index, id=call._id, delta=delta))

        return sink

    def parsed(delta: str) -> None:
        keep(delta)
        parser = call._parser  # None once the JSON was found invalid
        # _call_updates written out: two calls fewer per piece (UI parallel
        # calls, parsed: 249 -> 238 bytecodes per event).
        if parser is None:
            updates: tuple[Any, ...] = ()
        else:
            try:
                updates = tuple(parser.feed(delta))
            except PartialJSONError as exc:
                call._error, call._parser, updates = exc, None, ()
        emit(
            ToolCallArgumentsDelta(
                choice=choice, index=index, id=call._id, delta=delta, updates=updates
            )
        )

    return parsed


def _call_updates(call: _ToolCall, parser: PartialJSONParser, delta: str) -> tuple[Any, ...]:
    # The JSON updates of a piece of a call's parsed arguments; on invalid JSON
    # none, and the parser stops (its error kept for the call).
    try:
        return tuple(parser.feed(delta))
    except PartialJSONError as exc:
        call._error = exc
        call._parser = None
        return ()


def _typed_text_sink(acc: Accumulator, part: _Part) -> Callable[[str], None]:
    # Accumulator.sink for a text part with an output type: text()'s append
    # and its _typed_text(), without text()'s lookups (its type holds with the epoch).
    pieces, choice, follow = part._pieces, part._choice, acc._typed_text
    typed = cast(_Typed, part._typed)

    def sink(delta: str) -> None:
        pieces.append(delta)
        follow(typed, choice, delta)

    return sink


def _typed_arguments_sink(acc: Accumulator, choice: int, call: _ToolCall) -> Callable[[str], None]:
    # Accumulator.arguments_sink for a call whose tool has a type: _arguments()'s
    # append and its _typed_arguments(), without tool_arguments()'s lookups (its
    # type holds with the epoch, and a done call gets no sink).
    state, follow = acc._choices[choice], acc._typed_arguments
    typed = cast(_Typed, call._typed)

    def sink(delta: str) -> None:
        pieces = call._pieces
        pieces.append(delta)
        if len(pieces) - call._blocks >= _BLOCK:
            call._compact()
        follow(state, call, typed, delta)

    return sink


def _arguments_of(call: _ToolCall) -> Callable[[], str]:
    # A call's arguments, read when a typed error needs them (through the
    # property: joining them there keeps the call's blocks right).
    return lambda: call.arguments


def _whole_json(call: _ToolCall) -> bool:
    # Whether the arguments so far are one complete JSON value (checked once per
    # call, when the next call starts: linear).
    if call._parser is not None:
        return call._parser.complete
    if call._typed is not None:
        typed = call._typed
        return typed.json_error is None and typed.parser.json.complete
    if call._kind == FREE_TEXT_KIND:
        return False
    text = call.arguments
    if not text.strip():
        return False
    try:
        _decode_json(text)
    except (msgspec.DecodeError, RecursionError):
        return False
    return True


def _tool_value(
    call: _ToolCall, typed: _Typed, complete: bool, cut: bool
) -> tuple[Any, JSONError | None, list[OutputValueDone]]:
    # The arguments of a typed call: empty arguments of a whole call mean ``{}`` (as untyped).
    if complete and not cut and typed.error is None and not call.arguments.strip():
        typed.feed("{}")
    return typed.close(complete, cut)


def parse_arguments(arguments: str) -> tuple[Any, JSONError | None]:
    """Parse complete tool-call arguments; empty arguments mean ``{}``.

    Returns:
        ``(value, None)``, or ``(None, error)`` naming the reason and position.
    """
    if not arguments.strip():
        return {}, None
    try:
        return _decode_json(arguments), None
    except (msgspec.DecodeError, RecursionError):
        pass
    # Only on failure: the incremental parser names the reason and position
    # (it keeps its own stack: too deep a value is its JSONDepthError).
    parser = PartialJSONParser(updates=False)
    try:
        parser.feed(arguments)
        return parser.close(), None
    except PartialJSONError as exc:
        return None, JSONError(message=str(exc), position=exc.position)
