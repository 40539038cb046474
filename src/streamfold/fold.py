"""The neutral accumulator: dialect pieces in, public events and the unified view out.

Dialects call the methods of ``Accumulator`` (``text``, ``tool_call``,
``finish``...) with provider-neutral pieces; the accumulator never sees
provider JSON. It keeps, per choice, the fragments of each part in lists that
are joined only when a part ends or a view is asked for, so the cost of a chunk
never depends on the size of the answer so far.

It also enforces the order contract of ``docs/semantics.md``: a ``*.done``
exactly once per part, after its last delta and before ``response.finished``.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import msgspec

from .events import (
    ErrorInfo,
    ErrorOccurred,
    Event,
    JSONError,
    LogprobsDelta,
    LogprobsDone,
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
)
from .partial_json import PartialJSONError, PartialJSONParser
from .result import ToolCall, Unified

__all__ = ["FREE_TEXT_KIND", "Accumulator", "ChoiceState", "PartKind", "ToolCallState"]

_decode_json = msgspec.json.Decoder().decode


class PartKind(str, Enum):
    """What a part holds: answer text, reasoning, or a refusal. The values are the
    names of their events (``text.delta``, ``reasoning.done``...)."""

    TEXT = "text"
    REASONING = "reasoning"
    REFUSAL = "refusal"


# The members by their short names (the encoders read them so).
TEXT, REASONING, REFUSAL = PartKind.TEXT, PartKind.REASONING, PartKind.REFUSAL
_BLOCK = 4096  # argument pieces joined into one block (memory, see ToolCallState.add)
#: The tool-call kind whose input is free text (OpenAI custom tools), never parsed as JSON.
FREE_TEXT_KIND = "custom"


class ToolCallState:
    """One tool call being folded."""

    __slots__ = (
        "arguments",
        "blocks",
        "complete",
        "done",
        "error",
        "id",
        "index",
        "kind",
        "name",
        "parser",
        "server",
    )

    def __init__(self, index: int, id: str | None, name: str | None, kind: str) -> None:
        self.index = index
        self.id = id
        self.name = name
        self.kind = kind
        self.arguments: list[str] = []
        self.done = False
        self.parser: PartialJSONParser | None = None
        self.error: PartialJSONError | None = None
        self.complete = False  # ended properly (not cut by the end of the stream)
        self.server = False  # run by the provider (web search, MCP): not the caller's to run
        self.blocks = 0  # arguments[:blocks] are joined blocks, the rest single pieces

    def add(self, delta: str) -> None:
        """Append a piece of arguments. Every ``_BLOCK`` pieces are joined into
        one block: a list of many tiny strings costs ~10x their text in memory."""
        args = self.arguments
        args.append(delta)
        if len(args) - self.blocks >= _BLOCK:
            tail = "".join(args[self.blocks :])
            del args[self.blocks :]
            args.append(tail)
            self.blocks += 1

    def arguments_text(self) -> str:
        """The arguments received so far, joined (and kept joined: the unified
        view and the native response share one string)."""
        args = self.arguments
        if len(args) != 1:
            args[:] = ["".join(args)]
            self.blocks = 1
        return args[0]


class ChoiceState:
    """Everything folded for one choice (candidate)."""

    __slots__ = (
        "content_error",
        "content_parser",
        "current_tool",
        "encrypted_content",
        "finish",
        "index",
        "interleaved",
        "logprobs_content",
        "logprobs_done",
        "logprobs_refusal",
        "open",
        "parts",
        "raw_finish",
        "signature",
        "tool_base",
        "tool_calls",
        "tool_order",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        # Fragments of all parts of a kind, in order; ``open`` maps each kind
        # with an open part to the index where that part begins, so a part's
        # text is a slice joined once.
        self.parts: dict[PartKind, list[str]] = {TEXT: [], REASONING: [], REFUSAL: []}
        self.open: dict[PartKind, int] = {}
        self.tool_calls: dict[Any, ToolCallState] = {}
        self.tool_order: list[ToolCallState] = []
        self.tool_base = 0  # event index of the first call (after a restart: not 0)
        self.current_tool: ToolCallState | None = None
        self.interleaved = False
        self.logprobs_content: list[Any] | None = None
        self.logprobs_refusal: list[Any] | None = None
        self.raw_finish: str | None = None
        self.finish: str | None = None
        self.logprobs_done = False
        self.signature: str | None = None
        self.encrypted_content: str | None = None
        # JSON-mode content parsing (only when asked for): the open text part's parser.
        self.content_parser: PartialJSONParser | None = None
        self.content_error: PartialJSONError | None = None

    def joined(self, kind: PartKind) -> str:
        """All text of one kind, joined."""
        return "".join(self.parts[kind])


class Accumulator:
    """Folds neutral pieces into events and a unified view.

    Args:
        emit: build event objects; when ``False`` only the fold is kept (plain
            folding pays for no event it does not return).
        parse_arguments: parse tool-call arguments incrementally and attach the
            JSON updates to ``tool_call.arguments.delta`` events.
        parse_content: treat answer text as JSON (JSON mode, structured output):
            attach updates to ``text.delta`` and the parsed value to ``text.done``.
    """

    def __init__(
        self, *, emit: bool = True, parse_arguments: bool = False, parse_content: bool = False
    ) -> None:
        self.emit = emit
        self.parse_arguments = parse_arguments and emit
        self.parse_content = parse_content and emit
        self.out: list[Event] = []
        self.choices: dict[int, ChoiceState] = {}
        self.usage: Usage | None = None
        self.error: ErrorInfo | None = None
        self.warnings: list[str] = []
        self.started = False

    # -- access ----------------------------------------------------------------

    def choice(self, index: int) -> ChoiceState:
        """The state of choice ``index``, created on first use."""
        state = self.choices.get(index)
        if state is None:
            state = self.choices[index] = ChoiceState(index)
        return state

    def drain(self) -> list[Event]:
        """Hand over the events produced since the last call."""
        out = self.out
        self.out = []
        return out

    # -- pieces from dialects --------------------------------------------------

    def start(self, id: str | None, model: str | None, created: int | None) -> None:
        """The response's identity is known (called once, by the dialect)."""
        if not self.started:
            self.started = True
            if self.emit:
                self.out.append(ResponseStarted(id=id, model=model, created=created))

    def text(self, index: int, delta: str) -> None:
        """Answer text for choice ``index``."""
        state = self.choices.get(index) or self.choice(index)
        if TEXT not in state.open:
            self._open(state, TEXT)
        state.parts[TEXT].append(delta)
        if self.emit:
            if self.parse_content:
                self.out.append(
                    TextDelta(
                        choice=index, delta=delta, updates=self._content_updates(state, delta)
                    )
                )
            else:
                self.out.append(TextDelta(choice=index, delta=delta))

    def _content_updates(self, state: ChoiceState, delta: str) -> tuple[Any, ...]:
        parser = state.content_parser
        if parser is None:
            return ()
        try:
            return tuple(parser.feed(delta))
        except PartialJSONError as exc:
            state.content_error = exc
            state.content_parser = None
            return ()

    def reasoning(self, index: int, delta: str) -> None:
        """Reasoning (thinking) text for choice ``index``."""
        state = self.choices.get(index) or self.choice(index)
        if REASONING not in state.open:
            self._open(state, REASONING)
        state.parts[REASONING].append(delta)
        if self.emit:
            self.out.append(ReasoningDelta(choice=index, delta=delta))

    def refusal(self, index: int, delta: str) -> None:
        """Refusal text for choice ``index``."""
        state = self.choices.get(index) or self.choice(index)
        if REFUSAL not in state.open:
            self._open(state, REFUSAL)
        state.parts[REFUSAL].append(delta)
        if self.emit:
            self.out.append(RefusalDelta(choice=index, delta=delta))

    def reasoning_signature(
        self, index: int, signature: str | None = None, encrypted_content: str | None = None
    ) -> None:
        """A signature or encrypted content for the open reasoning part (ignored
        when none is open: it must not ride on the next part)."""
        state = self.choice(index)
        if REASONING not in state.open:
            return
        if signature:
            state.signature = (state.signature or "") + signature
        if encrypted_content:
            state.encrypted_content = encrypted_content

    def begin_part(self, index: int, kind: PartKind) -> None:
        """Open a part of ``kind`` that may have no text (redacted or signed-only
        thinking), so that it still gets its ``*.done``."""
        state = self.choice(index)
        if kind not in state.open:
            self._open(state, kind)

    def replace_part(self, index: int, kind: PartKind, text: str) -> None:
        """The provider sent the open part's final text whole: it wins over the deltas."""
        state = self.choice(index)
        if kind in state.open:
            state.parts[kind][state.open[kind] :] = [text]

    def end_part(self, index: int, kind: PartKind, complete: bool = True) -> None:
        """The open part of ``kind`` (text, reasoning or refusal) is over."""
        state = self.choices.get(index)
        if state is None or kind not in state.open:
            return
        start = state.open.pop(kind)
        if not self.emit:
            return
        text = "".join(state.parts[kind][start:])
        if kind == TEXT:
            if self.parse_content:
                value, error = self._content_value(state, text, complete)
                self.out.append(
                    TextDone(
                        choice=index, text=text, complete=complete, value=value, parse_error=error
                    )
                )
            else:
                self.out.append(TextDone(choice=index, text=text, complete=complete))
        elif kind == REASONING:
            self.out.append(
                ReasoningDone(
                    choice=index,
                    text=text,
                    signature=state.signature,
                    encrypted_content=state.encrypted_content,
                    complete=complete,
                )
            )
            state.signature = state.encrypted_content = None
        else:
            self.out.append(RefusalDone(choice=index, text=text, complete=complete))

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
    ) -> ToolCallState:
        """A tool call's first sight or a further piece of it.

        ``key`` is the dialect's identity for the call (the provider's index, an
        id, a block index). A new key ends the current call of the choice
        (``tool_call.done``) when its arguments so far are a whole JSON value:
        then no further piece but white space can belong to it. Otherwise (the
        provider interleaves the deltas of its calls, or sent invalid JSON) the
        call ends with its choice, or when the dialect ends it.
        ``id`` and ``name`` are set once, never concatenated. ``server`` marks
        a call the provider runs itself (Anthropic's server tools, MCP): it has
        events, but stays out of the unified view's calls to execute.
        """
        state = self.choices.get(index) or self.choice(index)
        call = state.tool_calls.get(key)
        if call is None:
            current = state.current_tool
            if current is not None and not current.done and not state.interleaved:
                if self.emit and _whole_json(current):
                    self._tool_done(state, current, complete=True)
                else:
                    state.interleaved = True
            if REASONING in state.open:
                self.end_part(index, REASONING)
            call = ToolCallState(state.tool_base + len(state.tool_order), id, name, kind)
            call.server = server
            state.tool_calls[key] = call
            state.tool_order.append(call)
            state.current_tool = call
            if self.parse_arguments and kind != FREE_TEXT_KIND:
                call.parser = PartialJSONParser()
            if self.emit:
                self.out.append(
                    ToolCallStarted(choice=index, index=call.index, id=id, name=name, kind=kind)
                )
        else:
            if id and not call.id:
                call.id = id
            if name and not call.name:
                call.name = name
            if arguments and call is not state.current_tool:
                self._interleaved(state, call)
        if arguments:
            self.tool_arguments(state, call, arguments)
        return call

    def tool_arguments(self, state: ChoiceState, call: ToolCallState, delta: str) -> None:
        """Append a piece of arguments to ``call``."""
        call.add(delta)
        if not self.emit:
            return
        if call.done:
            # After a call's whole JSON value only white space can follow: kept
            # in the arguments, but no event comes after its tool_call.done.
            if delta.strip():
                self.warn(
                    f"tool call #{call.index} of choice {state.index} received arguments "
                    f"after it was reported done: {delta[:40]!r}"
                )
            return
        updates: tuple[Any, ...] = ()
        parser = call.parser
        if parser is not None:
            try:
                updates = tuple(parser.feed(delta))
            except PartialJSONError as exc:
                call.error = exc
                call.parser = None
        self.out.append(
            ToolCallArgumentsDelta(
                choice=state.index, index=call.index, id=call.id, delta=delta, updates=updates
            )
        )

    def replace_arguments(self, index: int, key: Any, arguments: str) -> None:
        """The provider sent the final arguments whole: they win over the deltas."""
        state = self.choice(index)
        call = state.tool_calls.get(key)
        if call is None:
            return
        if call.arguments_text() != arguments:
            call.arguments[:] = [arguments]
            call.parser = None
            call.error = None

    def end_tool_call(self, index: int, key: Any, complete: bool = True) -> None:
        """The provider marked the end of a tool call."""
        state = self.choices.get(index)
        call = state.tool_calls.get(key) if state else None
        if state is not None and call is not None and not call.done:
            self._tool_done(state, call, complete=complete)

    def logprobs(
        self, index: int, content: list[Any] | None, refusal: list[Any] | None = None
    ) -> None:
        """Log probabilities for tokens of choice ``index``, appended in order."""
        state = self.choices.get(index) or self.choice(index)
        if content:
            if state.logprobs_content is None:
                state.logprobs_content = []
            state.logprobs_content.extend(content)
        if refusal:
            if state.logprobs_refusal is None:
                state.logprobs_refusal = []
            state.logprobs_refusal.extend(refusal)
        if self.emit and (content or refusal):
            self.out.append(LogprobsDelta(choice=index, content=content, refusal=refusal))

    def set_usage(self, usage: Usage) -> None:
        """The stream reported usage; the latest report wins, and a chunk without
        usage never wipes it (dialects simply do not call this then)."""
        if usage == self.usage:
            return
        self.usage = usage
        if self.emit:
            self.out.append(UsageUpdated(usage=usage))

    def finish(self, index: int, raw: str, unified: str, close: bool = True) -> None:
        """Choice ``index`` finished; the last finish reason wins. Its open parts
        end here, complete, unless ``close`` is false (a failure that ends them
        incomplete follows)."""
        state = self.choices.get(index) or self.choice(index)
        state.raw_finish = raw
        state.finish = unified
        if close:
            self._close_choice(state, complete=True)

    def unknown(self, event: str | None, raw: Any) -> None:
        """Something the dialect does not model, kept raw in an event."""
        if self.emit:
            self.out.append(Unknown(event=event, raw=raw))

    def restart(self) -> None:
        """The provider abandoned the response and started it again in the same
        stream (a retry spliced in by an intermediary): open parts and calls end
        incomplete, and the fold starts over, so the result is the retry alone."""
        old, self.choices = self.choices, {}
        for state in old.values():
            self._close_choice(state, complete=False)
            # Tool-call indexes in events stay unique across the restart.
            self.choice(state.index).tool_base = state.tool_base + len(state.tool_order)
        self.usage = None

    def warn(self, message: str) -> None:
        """Record a warning for the result."""
        self.warnings.append(message)

    # -- the end -----------------------------------------------------------------

    def terminate(self) -> None:
        """The stream ended well: every part ends, then ``response.finished`` per
        choice. Called once, by the parser (which owns the stream's phase)."""
        for state in self.choices.values():
            self._close_choice(state, complete=True)
        if self.emit:
            for state in self.choices.values():
                self.out.append(
                    ResponseFinished(
                        choice=state.index,
                        finish_reason=state.finish,
                        raw_finish_reason=state.raw_finish,
                    )
                )

    def fail(self, error: ErrorInfo, raw: Any = None) -> None:
        """The stream failed: open parts end marked incomplete, then an error
        event. Called once, by the parser, instead of ``terminate``."""
        self.error = error
        for state in self.choices.values():
            self._close_choice(state, complete=False)
        if self.emit:
            self.out.append(ErrorOccurred(error=error, raw=raw))

    # -- views -----------------------------------------------------------------

    def unified(self) -> Unified:
        """The unified view of choice 0 (or of the lowest choice seen)."""
        if not self.choices:
            return Unified(usage=self.usage, error=self.error)
        state = self.choices.get(0) or self.choices[min(self.choices)]
        return Unified(
            text=state.joined(TEXT),
            reasoning=state.joined(REASONING),
            refusal=state.joined(REFUSAL),
            tool_calls=tuple(
                ToolCall(
                    id=c.id,
                    name=c.name,
                    arguments=c.arguments_text(),
                    complete=c.complete,
                )
                for c in state.tool_order
                if not c.server
            ),
            finish_reason=state.finish,
            raw_finish_reason=state.raw_finish,
            usage=self.usage,
            error=self.error,
        )

    # -- internals -------------------------------------------------------------

    def _content_value(
        self, state: ChoiceState, text: str, complete: bool
    ) -> tuple[Any, JSONError | None]:
        parser, error = state.content_parser, state.content_error
        state.content_parser = state.content_error = None
        if error is not None:
            return None, JSONError(message=str(error), position=error.position)
        if parser is None or not complete:
            return None, None
        try:
            return parser.close(), None
        except PartialJSONError as exc:
            return None, JSONError(message=str(exc), position=exc.position)

    def _open(self, state: ChoiceState, kind: PartKind) -> None:
        if kind != REASONING and REASONING in state.open:
            # Answer text or a tool call after reasoning: the reasoning part is
            # over (if reasoning resumes, that is a new part).
            self.end_part(state.index, REASONING)
        state.open[kind] = len(state.parts[kind])
        if kind == TEXT and self.parse_content:
            state.content_parser = PartialJSONParser()
            state.content_error = None

    def _close_choice(self, state: ChoiceState, complete: bool) -> None:
        for kind in (REASONING, TEXT, REFUSAL):
            if kind in state.open:
                self.end_part(state.index, kind, complete)
        for call in state.tool_order:
            if not call.done:
                self._tool_done(state, call, complete)
        if state.logprobs_content is not None or state.logprobs_refusal is not None:
            if self.emit and not state.logprobs_done:
                self.out.append(
                    LogprobsDone(
                        choice=state.index,
                        content=state.logprobs_content,
                        refusal=state.logprobs_refusal,
                    )
                )
            state.logprobs_done = True

    def _interleaved(self, state: ChoiceState, call: ToolCallState) -> None:
        # The provider interleaves calls: from here on this choice's calls end
        # only at its finish (or when the dialect ends them).
        state.current_tool = call
        state.interleaved = True

    def _tool_done(self, state: ChoiceState, call: ToolCallState, complete: bool) -> None:
        call.done = True
        call.complete = complete
        if not self.emit:
            return
        arguments = call.arguments_text()
        value: Any = None
        error: JSONError | None = None
        if call.parser is not None and complete and arguments.strip():
            try:
                value = call.parser.close()
            except PartialJSONError as exc:
                error = JSONError(message=str(exc), position=exc.position)
        elif call.error is not None:
            error = JSONError(message=str(call.error), position=call.error.position)
        elif call.kind == FREE_TEXT_KIND:
            value = arguments  # a custom tool's input is free text, not JSON
        else:
            value, error = parse_arguments(arguments)
        self.out.append(
            ToolCallDone(
                choice=state.index,
                index=call.index,
                id=call.id,
                name=call.name,
                kind=call.kind,
                arguments=arguments,
                value=value,
                parse_error=error,
                complete=complete,
            )
        )


def _whole_json(call: ToolCallState) -> bool:
    # Whether the arguments so far are one complete JSON value (checked once per
    # call, when the next call starts: linear).
    if call.parser is not None:
        return call.parser.complete
    if call.kind == FREE_TEXT_KIND:
        return False
    text = call.arguments_text()
    if not text.strip():
        return False
    try:
        _decode_json(text)
    except (msgspec.DecodeError, RecursionError):
        return False
    return True


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
