"""The Gemini Interactions API: ``POST /v1beta/interactions`` with ``stream: true``.

Every event is a JSON object named by its ``event_type`` (the SSE ``event:``
line repeats it). ``interaction.created`` names the interaction and the
model; ``interaction.status_update`` reports its status; each step of the
answer arrives as ``step.start`` (its type: ``thought``, ``model_output``,
``function_call``, a built-in tool's call or result...), ``step.delta``
pieces (``text``, ``thought_summary``, ``thought_signature``,
``arguments_delta``, ``text_annotation_delta``, media, a built-in tool's
arguments or result) and ``step.stop``, numbered by ``index``;
``interaction.completed`` carries the final status and the usage (its steps
are left out: the deltas are the output); ``error`` reports a failure. The
SDKs stop at a ``data: [DONE]`` sentinel.

Before steps, the API streamed content blocks: ``interaction.start``,
``content.start`` / ``content.delta`` / ``content.stop`` (a function call's
delta carries the whole call) and ``interaction.complete``; the final
response then lists ``outputs`` instead of ``steps``. Both forms are read.

What every field of the final Interaction comes from, and which value wins, is
in ``docs/dialects/gemini-interactions.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Literal

import msgspec

from ..errors import ProviderError
from ..events import Usage
from ..fold import NO_SINK, Accumulator, PartKind, PartView, ToolCallView, parse_arguments
from ..partial_json import PartialJSONError, parse_partial
from ..sse import ServerSentEvent
from .base import (
    TYPED_REJECTED,
    Dialect,
    arguments_text,
    decode_json,
    int_or_none,
    object_or_none,
    objects,
    protocol_error,
    provider_error,
    required_index,
    rfc3339_seconds,
    str_or_none,
    tag_or_none,
    typed_decoder,
)

__all__ = ["GeminiInteractions", "normalise_usage", "unified_status"]

_STEP_EVENTS: Final = frozenset({"step.start", "step.delta", "step.stop"})
_CONTENT_EVENTS: Final = frozenset({"content.start", "content.delta", "content.stop"})
_CREATED: Final = frozenset({"interaction.created", "interaction.start"})
_COMPLETED: Final = frozenset({"interaction.completed", "interaction.complete"})
_EVENT_TYPES: Final = frozenset(
    {*_STEP_EVENTS, *_CONTENT_EVENTS, *_CREATED, *_COMPLETED, "interaction.status_update"}
)

_STATUS: Final = {
    "completed": "stop",
    # The model called functions: the caller runs them and sends the results.
    "requires_action": "tool_calls",
    "incomplete": "length",
    "budget_exceeded": "length",
    "failed": "error",
    "cancelled": "other",
}

# Google's error statuses (google.rpc.Code) and HTTP codes that its docs say to retry.
_RETRYABLE: Final = frozenset(
    {
        "UNAVAILABLE",
        "RESOURCE_EXHAUSTED",
        "INTERNAL",
        "DEADLINE_EXCEEDED",
        "429",
        "500",
        "503",
        "504",
    }
)

# Step types: what each is in the events. Built-in tool calls run on Google's
# side (server calls, out of the unified view's calls); their results and the
# user's input are kept in the response only.
_THOUGHT, _OUTPUT, _FUNCTION = "thought", "model_output", "function_call"
_SERVER_CALLS: Final = frozenset(
    {
        "google_search_call",
        "code_execution_call",
        "url_context_call",
        "file_search_call",
        "google_maps_call",
        "mcp_server_tool_call",
        "retrieval_call",
    }
)
# The kind of a built-in call in the events: the kinds every dialect gives the
# calls a provider runs itself (Anthropic's server and MCP tool uses).
_MCP_CALL: Final = "mcp_server_tool_call"
_SERVER_KIND, _MCP_KIND = "server_tool_use", "mcp_tool_use"
# Fields of a step that its deltas fill in (a start's own values come first).
_STREAMED: Final = {
    _THOUGHT: ("signature", "summary"),
    _OUTPUT: ("content",),
    _FUNCTION: ("arguments",),
    "text": ("text", "annotations"),
}
_MEDIA: Final = frozenset({"image", "audio", "video", "document"})
# Fields of the Interaction that the stream fills in itself.
_OUTPUT_FIELDS: Final = ("steps", "outputs")


def unified_status(status: str, has_function_calls: bool = False) -> str:
    """Map an interaction's final ``status`` to stop, length, tool_calls, error or
    other; ``completed`` with function calls is ``tool_calls``."""
    unified = _STATUS.get(status, "other")
    if unified == "stop" and has_function_calls:
        return "tool_calls"
    return unified


def normalise_usage(raw: dict[str, Any]) -> Usage:
    """Normalise an interaction's ``usage``; counts not reported stay ``None``.

    ``output_tokens`` is what is billed as output: ``total_output_tokens`` plus
    ``total_thought_tokens``, which the API reports apart (as Gemini does).
    ``input_tokens`` is ``total_input_tokens``, which includes the cached
    tokens; ``total_tool_use_tokens`` (the tool-use prompts) stays in ``raw``:
    it is counted in ``total_tokens``, not in the input.
    """
    answer = int_or_none(raw.get("total_output_tokens"))
    thoughts = int_or_none(raw.get("total_thought_tokens"))
    output = None
    if answer is not None or thoughts is not None:
        output = (answer or 0) + (thoughts or 0)
    prompt = int_or_none(raw.get("total_input_tokens"))
    total = int_or_none(raw.get("total_tokens"))
    if total is None and prompt is not None and output is not None:
        total = prompt + output + (int_or_none(raw.get("total_tool_use_tokens")) or 0)
    return Usage(
        input_tokens=prompt,
        output_tokens=output,
        total_tokens=total,
        cache_read_tokens=int_or_none(raw.get("total_cached_tokens")),
        reasoning_tokens=thoughts,
        raw=raw,
    )


# The hot event, typed: a step's text, thought summary text or arguments
# piece, and nothing else. Decoded straight into these Structs it costs less
# than a dict and its gets; any other field or value (metadata, an id, a
# signature, a wrong type) fails validation and the event takes the dict path,
# which folds it the same.
class _TypedText(
    msgspec.Struct, tag_field="type", tag="text", forbid_unknown_fields=True, gc=False
):
    text: str


class _TypedSummaryText(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    type: Literal["text"]
    text: str


class _TypedSummary(
    msgspec.Struct, tag_field="type", tag="thought_summary", forbid_unknown_fields=True, gc=False
):
    content: _TypedSummaryText


class _TypedArguments(
    msgspec.Struct, tag_field="type", tag="arguments_delta", forbid_unknown_fields=True, gc=False
):
    arguments: str


class _TypedStepDelta(
    msgspec.Struct,
    tag_field="event_type",
    tag="step.delta",
    forbid_unknown_fields=True,
    gc=False,
):
    index: int
    delta: _TypedText | _TypedSummary | _TypedArguments


# What the typed path folds into a step of each type.
_TYPED_DELTAS: Final[dict[str, type]] = {
    _OUTPUT: _TypedText,
    "text": _TypedText,
    _THOUGHT: _TypedSummary,
    _FUNCTION: _TypedArguments,
}


class _Run:
    """A text item made of streamed pieces: slices of the accumulator's parts (a
    start's own text before them, as sent)."""

    __slots__ = ("annotations", "head", "segments")

    def __init__(self, head: str = "") -> None:
        self.head = head
        # [part, start, end]: the part's text from start to end (None: to its end).
        self.segments: list[list[Any]] = []
        self.annotations: list[Any] | None = None

    def text(self) -> str:
        pieces = [self.head] if self.head else []
        for part, start, end in self.segments:
            text = part.text
            pieces.append(text if start == 0 and end is None else text[start:end])
        if len(pieces) == 1:
            return pieces[0]
        return "".join(pieces)

    def native(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "text", "text": self.text()}
        if self.annotations is not None:
            out["annotations"] = list(self.annotations)
        return out


class _Items:
    """A list of content items whose consecutive text pieces join into one item
    (a model output's ``content``, a thought's ``summary``); the pieces are the
    accumulator's."""

    __slots__ = ("items", "last")

    def __init__(self, start: Any = None) -> None:
        self.items: list[dict[str, Any] | _Run] = [dict(i) for i in objects(start)]
        self.last: list[Any] | None = None  # the last segment of a run, while it grows

    def text(self, part: PartView, piece: str) -> None:
        """``piece`` went to ``part``."""
        segment = self.last
        if segment is not None and segment[0] is part:
            return  # the run's part grew (``last`` is always the last run's last segment)
        last = self.items[-1] if self.items else None
        if isinstance(last, _Run) and last.annotations is None:
            run = last
        elif isinstance(last, dict) and last.keys() == {"type", "text"} and last["type"] == "text":
            text = last["text"]  # a start's own text item, continued
            run = self.items[-1] = _Run(text if isinstance(text, str) else "")
        else:
            run = _Run()
            self.items.append(run)
        start = len(part.text) - len(piece)
        self._close(part, start)
        segment = self.last = [part, start, None]
        run.segments.append(segment)

    def _close(self, part: PartView | None, end: int) -> None:
        # The growing segment ends where the part's next item begins.
        segment = self.last
        if segment is not None and segment[0] is part:
            segment[2] = end
        self.last = None

    def add(self, item: dict[str, Any], part: PartView | None) -> None:
        self._close(part, len(part.text) if part is not None else 0)
        self.items.append(dict(item))

    def annotate(self, annotations: list[Any], part: PartView | None) -> None:
        # Annotations belong to the text item they follow.
        for item in reversed(self.items):
            if isinstance(item, _Run):
                self._close(part, len(part.text) if part is not None else 0)
                item.annotations = [*(item.annotations or ()), *annotations]
                return
            if item.get("type") == "text":
                known = item.get("annotations")
                item["annotations"] = [*(known if type(known) is list else []), *annotations]
                return
        self.items.append({"type": "text", "text": "", "annotations": list(annotations)})

    def native(self) -> list[dict[str, Any]]:
        return [item.native() if isinstance(item, _Run) else dict(item) for item in self.items]


class _Step:
    """One step (or, before steps, one content block): its fields, and the
    accumulator's parts and call that hold what its deltas brought."""

    __slots__ = (
        "built",
        "built_at",
        "call",
        "content",
        "done",
        "fields",
        "has_arguments",
        "key",
        "part",
        "revision",
        "signature",
        "started",
        "summary",
        "type",
        "typed",
    )

    def __init__(self, index: int, kind: str, fields: dict[str, Any]) -> None:
        self.key = ("step", index)  # the accumulator's key for its call and owner of its parts
        self.type = kind
        self.done = False
        self.started = False  # a call: its tool_call has begun
        self.signature: list[str] = []
        start = fields.get("signature")
        if isinstance(start, str) and start:
            self.signature.append(start)
        self.summary = _Items(fields.get("summary"))
        content = fields.get("content")
        if kind == "text":  # a legacy text block is its own single item
            text = fields.get("text")
            content = [{"type": "text", "text": text}] if isinstance(text, str) and text else []
        self.content = _Items(content)
        self.part: PartView | None = None  # the accumulator's part its last text went to
        # The typed delta the typed path folds into it (see _TYPED_DELTAS).
        self.typed = _TYPED_DELTAS.get(kind)
        self.call: ToolCallView | None = None
        self.has_arguments = False
        for key in (*_STREAMED.get(kind, ()), "signature"):
            fields.pop(key, None)
        self.fields = fields
        # Grows with every event that reaches the step: built again only then.
        self.revision = 0
        self.built: dict[str, Any] | None = None
        self.built_at = -1

    def arguments_value(self) -> str:
        return self.call.arguments if self.call is not None else ""

    def native(self) -> dict[str, Any]:
        if self.built is not None and self.built_at == self.revision:
            return self.built
        self.built = None  # let go of the old text first: it may then grow in place
        out: dict[str, Any] = {"type": self.type, **self.fields}
        if self.signature:
            out["signature"] = "".join(self.signature)
        if self.type == _THOUGHT:
            summary = self.summary.native()
            if summary:
                out["summary"] = summary
        elif self.type == _OUTPUT:
            out["content"] = self.content.native()
        elif self.type == "text":
            items = self.content.native()
            out.update(items[0] if items else {"text": ""})
        elif self.type == _FUNCTION or (self.type in _SERVER_CALLS and self.has_arguments):
            out["arguments"] = _arguments_object(self.arguments_value(), self.done, self.call)
        self.built, self.built_at = out, self.revision
        return out


class GeminiInteractions(Dialect):
    """Gemini Interactions API streams (``"gemini-interactions"``)."""

    name = "gemini-interactions"

    def __init__(self, acc: Accumulator) -> None:
        super().__init__(acc)
        self._decode_step_delta: Callable[[bytes], _TypedStepDelta] = typed_decoder(_TypedStepDelta)
        self.interaction: dict[str, Any] = {}  # its fields, the steps or outputs aside
        self.steps: dict[int, _Step] = {}
        self.outputs_key = "steps"  # "outputs" for the content-block form
        self.given_outputs: list[Any] | None = None  # outputs sent in a lifecycle event
        self.usage: dict[str, Any] | None = None
        self.function_calls = False
        # The typed path's kept part (see _keep_sink): the step its last typed
        # piece went to, its index, the delta type it takes, and the part's
        # sink (with events, the accumulator's call bound to the part), or its
        # call's arguments sink (NO_SINK until asked for).
        self._sink: Callable[[str], object] = NO_SINK
        self._sink_index = self._sink_epoch = -1
        self._sink_step = _Step(-1, "unknown", {})  # none yet: its epoch is -1
        self._sink_type: type = _TypedText

    @classmethod
    def detect(cls, event: ServerSentEvent, payload: Any) -> bool:
        """An event whose ``event_type`` is one of the Interactions API's (an
        ``error`` event too: no other dialect names its events ``event_type``)."""
        if type(payload) is not dict:
            return False
        kind = tag_or_none(payload.get("event_type"))
        return kind in _EVENT_TYPES or (kind == "error" and "error" in payload)

    def handle(self, event: ServerSentEvent) -> bool:
        """Fold one event (or the ``[DONE]`` sentinel).

        Returns:
            ``True`` when the interaction completed (or at ``[DONE]``).

        Raises:
            ProviderError: an ``error`` event (or Google's error envelope), or
                an interaction that completed with the status ``failed``.
            ProtocolError: malformed JSON, a required ``index`` missing, or a
                delta for a step that never started.
        """
        if self.fast(event):
            return False
        if event.raw == b"[DONE]":
            return True
        payload = decode_json(event)
        if type(payload) is not dict:
            if event.event == "error":
                raise provider_error(payload, event.index)
            raise protocol_error(event, "is not a JSON object")
        kind = tag_or_none(payload.get("event_type")) or event.event
        if kind == "step.delta" or kind == "content.delta":
            self._delta(payload, event)
        elif kind == "step.start" or kind == "content.start":
            self._step_start(payload, event, kind)
        elif kind == "step.stop" or kind == "content.stop":
            self._step_stop(payload, event)
        elif kind in _CREATED:
            self._created(payload)
        elif kind == "interaction.status_update":
            status = tag_or_none(payload.get("status"))
            if status is not None:
                self.interaction["status"] = status
        elif kind in _COMPLETED:
            self._completed(payload, event)
            return True
        elif kind == "error" or payload.get("error") is not None:
            raise _interaction_error(payload, event)
        else:
            self.acc.unknown(kind, payload)
        return False

    # -- lifecycle -----------------------------------------------------------------

    def _merge(self, interaction: dict[str, Any]) -> None:
        # The last non-null value of each field wins; outputs are the stream's.
        for key, value in interaction.items():
            if value is None:
                continue
            if key in _OUTPUT_FIELDS:
                if type(value) is list and value:
                    self.given_outputs = value
            else:
                self.interaction[key] = value

    def _created(self, payload: dict[str, Any]) -> None:
        interaction = object_or_none(payload.get("interaction")) or {}
        self._merge(interaction)
        if payload.get("event_type") == "interaction.start":
            self.outputs_key = "outputs"
        self._start()

    def _start(self) -> None:
        if not self.acc.started:
            fields = self.interaction
            self.acc.start(
                str_or_none(fields.get("id")),
                str_or_none(fields.get("model")) or str_or_none(fields.get("agent")),
                rfc3339_seconds(fields.get("created")),
            )

    def _completed(self, payload: dict[str, Any], event: ServerSentEvent) -> None:
        interaction = object_or_none(payload.get("interaction")) or {}
        self._merge(interaction)
        self._start()
        usage = object_or_none(interaction.get("usage"))
        if usage:
            self._usage(usage)
        for step in self.steps.values():
            if not step.done:
                self._end(step, complete=False)
        status = tag_or_none(self.interaction.get("status"))
        if status is None or status in ("in_progress", "queued"):
            self.acc.warn(
                f"server-sent event #{event.index}: the interaction completed without "
                f"a final status ({status!r})"
            )
        else:
            failed = status == "failed"
            unified = unified_status(status, self.function_calls)
            self.acc.finish(0, status, unified, close=not failed)
            if failed:
                raise _failed_interaction(self.interaction, payload, event.index)

    def _usage(self, usage: dict[str, Any]) -> None:
        if usage != self.usage:
            self.usage = usage
            self.acc.set_usage(normalise_usage(usage))

    # -- steps -------------------------------------------------------------------------

    def _step_start(self, payload: dict[str, Any], event: ServerSentEvent, kind: str) -> None:
        self._start()
        index = required_index(payload, "index", event)
        if index in self.steps:
            raise protocol_error(event, f"step {index} started twice")
        if kind == "content.start":
            self.outputs_key = "outputs"
        shape = object_or_none(payload.get("step" if kind == "step.start" else "content")) or {}
        fields = dict(shape)
        step_type = tag_or_none(fields.get("type")) or "unknown"
        fields.pop("type", None)
        step = self.steps[index] = _Step(index, step_type, fields)
        acc = self.acc
        # A start's own items are kept as sent; their text goes to the accumulator too.
        if step_type == _THOUGHT:
            step.part = acc.begin_part(0, PartKind.REASONING, step.key)
            for item in step.summary.items:
                text = item.get("text") if type(item) is dict else None
                if isinstance(text, str) and text:
                    step.part = acc.reasoning(0, text, step.key)
        elif step_type in (_OUTPUT, "text"):
            for item in step.content.items:
                text = item.get("text") if type(item) is dict else None
                if isinstance(text, str) and text:
                    step.part = acc.text(0, text, step.key)
        elif step_type == _FUNCTION:
            self.function_calls = True
            if "id" in fields or "name" in fields or kind == "step.start":
                self._call(step, fields)
                self._whole_arguments(step, shape.get("arguments"), event, fresh=True)
            # else a content block whose delta brings the whole call: it starts there.
        elif step_type in _SERVER_CALLS:
            step.started = True
            step.call = acc.tool_call(
                0,
                step.key,
                id=str_or_none(fields.get("id")),
                name=str_or_none(fields.get("name")) or step_type.removesuffix("_call"),
                kind=_MCP_KIND if step_type == _MCP_CALL else _SERVER_KIND,
                server=True,
            )
            self._whole_arguments(step, fields.get("arguments"), event, fresh=True)
        else:
            acc.unknown(kind, payload)

    def fast(self, event: ServerSentEvent) -> bool:
        # The typed path (see _TypedStepDelta): True when the event was folded
        # here. Every check comes before any side effect, so a False leaves the
        # event to the dict path (which raises the precise error).
        if event.event != "step.delta":
            return False
        decode = self._decode_step_delta  # an attribute, not a method: no LOAD_METHOD
        try:
            typed = decode(event.raw)
        except TYPED_REJECTED:
            return False
        delta = typed.delta
        acc = self.acc
        if (
            typed.index == self._sink_index
            and acc.epoch == self._sink_epoch
            and type(delta) is self._sink_type
        ):
            # The next piece of the step the last one went to: its part is open
            # (so the step is not done: ending it ends the part, and moves the
            # epoch) and its run grows over that part (the dict path drops the
            # sink), so the piece needs only the append. For a call: it is
            # still the current one and not ended (either moves the epoch).
            if type(delta) is _TypedText:
                text = delta.text
            elif type(delta) is _TypedArguments:
                self._sink_step.built = None
                text = delta.arguments
                if text:
                    sink = self._sink
                    if sink is NO_SINK:  # the call's second piece in a row: its sink
                        sink = self._sink = acc.arguments_sink(0, self._sink_step.key)
                    sink(text)
                return True
            elif type(delta) is _TypedSummary:
                text = delta.content.text
                if not text:  # an empty summary item is kept as an item (the dict path)
                    return False
            else:
                return False  # never: the decoder gives one of the three
            self._sink_step.built = None
            if text:
                self._sink(text)
            return True
        step = self.steps.get(typed.index)
        if step is None or step.done:
            return False
        # Of the step's kind (text to a model output...).
        if type(delta) is not step.typed:
            return False
        # By the type itself: isinstance() on a Struct type costs a call.
        if type(delta) is _TypedText:
            text = delta.text
            step.built = None  # built again: what a revision bump does, for less
            if text:
                part = step.part = acc.text(0, text, step.key)
                step.content.text(part, text)
                self._keep_sink(step, typed.index, _TypedText, part)
            return True
        if type(delta) is _TypedArguments:
            step.built = None
            if delta.arguments:
                step.has_arguments = True
                step.call = acc.tool_arguments(0, step.key, delta.arguments)
                # Kept as a part's sink is (above), its sink asked for by the
                # call's next piece only: parallel calls never ask.
                self._sink, self._sink_step, self._sink_index = NO_SINK, step, typed.index
                self._sink_type, self._sink_epoch = _TypedArguments, acc.epoch
            return True
        if type(delta) is _TypedSummary:
            text = delta.content.text
            if not text:  # an empty summary item is kept as an item (the dict path)
                return False
            step.built = None
            part = step.part = acc.reasoning(0, text, step.key)
            step.summary.text(part, text)
            self._keep_sink(step, typed.index, _TypedSummary, part)
            return True
        return False  # never: the decoder gives one of the three

    def _keep_sink(self, step: _Step, index: int, kind: type, part: PartView) -> None:
        # The part a typed piece of ``step`` (number ``index``) just went to,
        # kept so the next ones append to it without a call (Accumulator.sink),
        # until the accumulator's epoch moves.
        sink = self.acc.sink(part)
        self._sink, self._sink_step, self._sink_index, self._sink_type = sink, step, index, kind
        self._sink_epoch = self.acc.epoch

    def _delta(self, payload: dict[str, Any], event: ServerSentEvent) -> None:
        # Annotations, media and items end a step's growing run without moving
        # the accumulator's epoch: the typed path's kept sink goes.
        self._sink_epoch = -1
        index = required_index(payload, "index", event)
        step = self.steps.get(index)
        if step is None:
            raise protocol_error(event, f"a delta for step {index}, never started")
        if step.done:
            raise protocol_error(event, f"a delta for step {index} after its end")
        step.revision += 1
        metadata = object_or_none(payload.get("metadata"))
        usage = object_or_none(metadata.get("total_usage")) if metadata else None
        if usage:
            self._usage(usage)
        delta = object_or_none(payload.get("delta"))
        if delta is None:
            raise protocol_error(event, "a delta without its delta object")
        kind = tag_or_none(delta.get("type"))
        acc = self.acc
        if kind == "text" and step.type in (_OUTPUT, "text"):
            text = delta.get("text")
            if type(text) is str and text:
                part = step.part = acc.text(0, text, step.key)
                step.content.text(part, text)
        elif kind == "thought_summary" and step.type == _THOUGHT:
            item = object_or_none(delta.get("content"))
            text = item.get("text") if item is not None and item.get("type") == "text" else None
            if type(text) is str and text:
                part = step.part = acc.reasoning(0, text, step.key)
                step.summary.text(part, text)
            elif item is not None:
                step.summary.add(item, step.part)
                acc.unknown(kind, payload)
        elif kind == "thought_signature":
            signature = delta.get("signature")
            if type(signature) is str and signature:
                step.signature.append(signature)
                if step.type == _THOUGHT:
                    acc.reasoning_signature(0, signature=signature, owner=step.key)
        elif kind == "arguments_delta" and step.type == _FUNCTION:
            self._arguments_delta(step, delta)
        elif kind in ("text_annotation_delta", "text_annotation") and step.type in (
            _OUTPUT,
            "text",
        ):
            annotations = delta.get("annotations")
            if type(annotations) is list:
                step.content.annotate(annotations, step.part)
            acc.unknown(kind, payload)
        elif kind in _MEDIA and step.type in (_OUTPUT, kind):
            item = dict(delta)
            if step.type == kind:
                step.fields.update((k, v) for k, v in item.items() if k != "type")
            else:
                step.content.add(item, step.part)
            acc.unknown(kind, payload)
        elif kind == _FUNCTION and step.type == _FUNCTION:
            _legacy_function_call(self, step, delta, event)
        elif kind is not None and kind == step.type:
            # A built-in tool's call or result, or any step whose delta has its
            # type: the fields come whole, the last value wins.
            for key, value in delta.items():
                if key not in ("type", "arguments") and value is not None:
                    step.fields[key] = value
            if step.type in _SERVER_CALLS:
                self._whole_arguments(step, delta.get("arguments"), event)
            else:
                acc.unknown(kind, payload)
        else:
            acc.unknown(kind or "step.delta", payload)

    def _call(self, step: _Step, fields: dict[str, Any]) -> None:
        step.started = True
        step.call = self.acc.tool_call(
            0, step.key, id=str_or_none(fields.get("id")), name=str_or_none(fields.get("name"))
        )

    def _arguments_delta(self, step: _Step, delta: dict[str, Any]) -> None:
        # Function-call arguments stream as JSON text pieces.
        piece = delta.get("arguments")
        call_id = str_or_none(delta.get("id"))
        if call_id is not None and "id" not in step.fields:
            step.fields["id"] = call_id
        signature = delta.get("signature")
        if type(signature) is str and signature:
            step.signature.append(signature)
        if type(piece) is str and piece:
            step.has_arguments = True
            step.call = self.acc.tool_call(0, step.key, id=call_id, arguments=piece)
        elif call_id is not None:
            step.call = self.acc.tool_call(0, step.key, id=call_id)

    def _whole_arguments(
        self, step: _Step, value: Any, event: ServerSentEvent, fresh: bool = False
    ) -> None:
        # Arguments sent as a JSON object, whole (a built-in tool's call, a
        # legacy function call, a start that already has them): written as
        # JSON text once. A start's empty {} is no argument yet.
        if type(value) is not dict or (fresh and not value) or step.has_arguments:
            return
        text = arguments_text(value, event, "arguments")
        step.has_arguments = True
        step.call = self.acc.tool_call(0, step.key, arguments=text)

    def _step_stop(self, payload: dict[str, Any], event: ServerSentEvent) -> None:
        index = required_index(payload, "index", event)
        step = self.steps.get(index)
        if step is None:
            raise protocol_error(event, f"the stop of step {index}, never started")
        if step.done:
            raise protocol_error(event, f"step {index} stopped twice")
        usage = object_or_none(payload.get("usage"))
        if usage:
            self._usage(usage)
        self._end(step, complete=True)

    def _end(self, step: _Step, complete: bool) -> None:
        step.done = True
        step.revision += 1
        acc = self.acc
        if step.type == _THOUGHT:
            acc.end_part(0, PartKind.REASONING, complete, owner=step.key)
        elif step.type in (_OUTPUT, "text"):
            acc.end_part(0, PartKind.TEXT, complete, owner=step.key)
        elif step.type == _FUNCTION or step.type in _SERVER_CALLS:
            if not step.started:
                self._call(step, step.fields)
            if complete and not step.arguments_value().strip():
                # No argument came: a call without arguments, {}.
                acc.replace_arguments(0, step.key, "{}")
            acc.end_tool_call(0, step.key, complete)

    # -- the native response -------------------------------------------------------

    def response(self) -> dict[str, Any]:
        """The Interaction a non-streaming call would have returned."""
        out: dict[str, Any] = {"id": "", "status": "in_progress", **self.interaction}
        if self.steps or self.given_outputs is None:
            out[self.outputs_key] = [self.steps[i].native() for i in sorted(self.steps)]
        else:
            out[self.outputs_key] = list(self.given_outputs)
        if self.usage is not None:
            out["usage"] = self.usage
        return out


def _legacy_function_call(
    dialect: GeminiInteractions, step: _Step, delta: dict[str, Any], event: ServerSentEvent
) -> None:
    # Before steps, a function call's content.delta carried the whole call:
    # its id, name and arguments as an object.
    for key in ("id", "name"):
        value = str_or_none(delta.get(key))
        if value is not None:
            step.fields.setdefault(key, value)
    signature = delta.get("signature")
    if type(signature) is str and signature:
        step.signature.append(signature)
    dialect._call(step, step.fields)
    dialect._whole_arguments(step, delta.get("arguments"), event)


def _arguments_object(arguments: str, done: bool, call: ToolCallView | None) -> Any:
    # The Interaction holds a call's arguments as an object: parsed once the
    # step ended; a call cut short holds what parses so far (with the
    # accumulator's call, parsed incrementally, snapshot after snapshot).
    if not arguments or arguments.isspace():
        return {}
    if done:
        value, error = parse_arguments(arguments)
        if error is None:
            return value
    try:
        partial = call.partial_arguments() if call is not None else parse_partial(arguments)
    except PartialJSONError as exc:
        try:
            partial = parse_partial(arguments[: exc.position])
        except PartialJSONError:
            return {}
    return partial if type(partial) is dict else {}


def _interaction_error(payload: dict[str, Any], event: ServerSentEvent) -> ProviderError:
    # The error event ({"event_type": "error", "error": {"code", "message"}})
    # or Google's envelope ({"error": {"code": 503, "message", "status"}}) in
    # its place. Retryable: Google's transient statuses and their HTTP codes.
    error = provider_error(payload, event.index)
    body = object_or_none(payload.get("error")) or {}
    status = tag_or_none(body.get("status"))
    if status is not None:
        error.code = status
    keys = {str(k).upper() for k in (error.code, status, int_or_none(body.get("code"))) if k}
    error.retryable = error.retryable or bool(keys & _RETRYABLE)
    return error


def _failed_interaction(
    interaction: dict[str, Any], payload: dict[str, Any], position: int
) -> ProviderError:
    # An interaction that completed with the status "failed": the output so far
    # is kept, and the failure raised, with the first recorded error if any.
    errors = objects(interaction.get("errors"))
    first = errors[0] if errors else {}
    message = first.get("message")
    code = str_or_none(first.get("code"))
    return ProviderError(
        message if isinstance(message, str) and message else "the interaction failed",
        code=code or "failed",
        error_type="interaction_failed",
        raw=payload,
        retryable=bool(code and code.upper() in _RETRYABLE),
        position=position,
    )
