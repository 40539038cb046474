"""The folded result: the native response, its unified view, usage and warnings;
and, for a result folded from an HTTP response, the exchange's metadata."""

from __future__ import annotations

from typing import Any

import msgspec

from .errors import OutputValidationError
from .events import ErrorInfo, Usage, _TypedOutput

__all__ = [
    "Attempt",
    "HTTPResult",
    "ResponseMetadata",
    "Result",
    "Resumption",
    "ToolCall",
    "Unified",
    "UNIFIED_USAGE_KEYS",
]

#: The keys of ``usage`` in the unified view (``--format unified``): every
#: normalised count of ``Usage`` (its ``raw`` provider object is the response's).
UNIFIED_USAGE_KEYS = tuple(name for name in Usage.__struct_fields__ if name != "raw")


class ToolCall(_TypedOutput, frozen=True, kw_only=True, dict=True):
    """A tool call in the unified view; ``arguments`` is the raw JSON text as streamed.
    ``complete`` is false for a call cut short (never execute it). With a type
    for the tool (``tool_types=``), ``output`` is the arguments validated as
    that type, or ``output_error`` says why not (outside the JSON and ``to_dict``)."""

    id: str | None
    name: str | None
    arguments: str
    complete: bool = True


class Unified(_TypedOutput, frozen=True, kw_only=True, dict=True):
    """The same small view of any dialect's response (its first choice).

    With an ``output_type``, ``output`` is the answer (its last text part)
    validated as that type, or ``output_error`` says why not: a cut or
    length-stopped answer is never validated as complete. Both stay outside
    the JSON and ``to_dict()`` (the text they come from is in them)."""

    text: str = ""
    reasoning: str = ""
    refusal: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    raw_finish_reason: str | None = None
    usage: Usage | None = None
    error: ErrorInfo | None = None

    def to_dict(self) -> dict[str, Any]:
        """The exact object ``streamfold fold --format unified`` prints: every
        field of the Python objects (a tool call's ``complete`` flag, every usage
        count), the provider's raw usage object aside."""
        usage = self.usage
        return {
            "text": self.text,
            "reasoning": self.reasoning,
            "refusal": self.refusal,
            "tool_calls": [
                {key: getattr(call, key) for key in ToolCall.__struct_fields__}
                for call in self.tool_calls
            ],
            "finish_reason": self.finish_reason,
            "raw_finish_reason": self.raw_finish_reason,
            "usage": None
            if usage is None
            else {key: getattr(usage, key) for key in UNIFIED_USAGE_KEYS},
            "error": None
            if self.error is None
            else {key: getattr(self.error, key) for key in ErrorInfo.__struct_fields__},
        }


class Result(msgspec.Struct, frozen=True):
    """Everything folded from one stream.

    Attributes:
        dialect: the dialect id (``"openai-chat"``, ...).
        response: the response in the dialect's own non-streaming shape (a JSON-able dict).
        unified: the dialect-neutral view.
        complete: the stream reached its finish reason or terminal marker.
        warnings: what lenient parsing skipped and what the fold noticed.

    A result is data: it encodes to JSON (``msgspec.json.encode``) whether the
    stream succeeded or not; the failure, if any, is ``error`` (an ``ErrorInfo``).
    """

    dialect: str
    response: dict[str, Any]
    unified: Unified
    complete: bool
    warnings: tuple[str, ...] = ()

    @property
    def error(self) -> ErrorInfo | None:
        """What ended the stream early, as data (``type``, ``code``, ``message``),
        or ``None``. The exception itself (raised by ``final()``) carries this
        result as its ``partial``."""
        return self.unified.error

    @property
    def usage(self) -> Usage | None:
        """Normalised usage, or ``None`` when the stream reported none."""
        return self.unified.usage

    @property
    def output(self) -> Any:
        """The answer validated as the ``output_type`` (``Unified.output``):
        ``UNSET`` without a type, before the answer ended, or when it did not
        validate (``output_error``). Not in the JSON."""
        return self.unified.output

    @property
    def output_error(self) -> OutputValidationError | None:
        """Why the answer is not a valid ``output_type`` value (``kind``, ``path``,
        ``reason``, the raw ``text`` and the ``partial_value``), or ``None``."""
        return self.unified.output_error

    @property
    def finish_reason(self) -> str | None:
        """The unified finish reason of the first choice."""
        return self.unified.finish_reason

    @property
    def text(self) -> str:
        """The answer text of the first choice."""
        return self.unified.text


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """One request the client sent to start a stream (``ResponseMetadata.attempts``).

    Attributes:
        number: 1 for the first request, 2 for the first retry, ...
        status_code: the HTTP status of its response, or ``None`` when no
            response came (a connection error, a timeout before the head).
        request_id: the provider's request id, when the response had one.
        error: why it failed (``None`` for the attempt the result is from).
        delay: the seconds waited before the next attempt (``None`` for the last).
    """

    number: int
    status_code: int | None = None
    request_id: str | None = None
    error: ErrorInfo | None = None
    delay: float | None = None


class Resumption(msgspec.Struct, frozen=True, kw_only=True):
    """One re-attachment of a stream that was cut (``ResponseMetadata.resumptions``).

    Attributes:
        number: 1 for the first re-attachment of the stream, ...
        via: ``"starting_after"`` (the Responses API's background streams) or
            ``"last_event_id"`` (server-sent events with ids).
        cursor: the last sequence number or event id received before the cut.
        events_before: the events received before the cut.
        cut: what cut the stream (a lost connection, an idle timeout).
        delay: the seconds waited before re-attaching.
        status_code: the HTTP status of the re-attachment, or ``None`` when
            no response came.
        request_id: its request id, when it had one.
        error: why the re-attachment failed, or ``None`` when the stream went on.
    """

    number: int
    via: str
    cursor: str
    events_before: int
    cut: ErrorInfo
    delay: float
    status_code: int | None = None
    request_id: str | None = None
    error: ErrorInfo | None = None


class ResponseMetadata(msgspec.Struct, frozen=True, kw_only=True):
    """What the HTTP exchange said beside the stream.

    Times are seconds from sending the request when the caller said when that was
    (``started_at``; ``streamfold.client`` always does), else from the adapter's
    creation; ``None`` until the moment has come.

    Attributes:
        status_code: the HTTP status.
        reason: the status phrase.
        http_version: ``"HTTP/1.1"``, ``"HTTP/2"``.
        url: the request URL, with credentials redacted.
        headers: the response headers (lower-case names; repeated ones joined by ``", "``).
        request_id: the provider's request id.
        rate_limits: the rate-limit and retry-after headers.
        content_type: the ``content-type`` header.
        time_to_headers: until the response headers arrived.
        time_to_first_byte: until the first body byte.
        time_to_first_event: until the first server-sent event.
        time_to_first_token: until the first text, reasoning, refusal or
            tool-argument delta.
        total_time: until the end of the stream (or the failure that ended it).
        bytes_received: body bytes, after content decoding.
        chunks_received: body reads that returned bytes.
        events_received: server-sent events (or JSON array elements), over
            every connection of a resumed stream.
        attempts: the requests the client sent to start the stream, the last
            being the one the result is from (retries before any event);
            empty for a response the caller sent.
        resumptions: each re-attachment of a stream that was cut.
    """

    status_code: int
    reason: str
    http_version: str
    url: str
    headers: dict[str, str]
    request_id: str | None = None
    rate_limits: dict[str, str] = msgspec.field(default_factory=dict)
    content_type: str | None = None
    time_to_headers: float | None = None
    time_to_first_byte: float | None = None
    time_to_first_event: float | None = None
    time_to_first_token: float | None = None
    total_time: float | None = None
    bytes_received: int = 0
    chunks_received: int = 0
    events_received: int = 0
    attempts: tuple[Attempt, ...] = ()
    resumptions: tuple[Resumption, ...] = ()


class HTTPResult(Result, frozen=True, kw_only=True):
    """A ``Result`` folded from an HTTP response, with the exchange's metadata."""

    metadata: ResponseMetadata
