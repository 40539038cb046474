"""The one exception tree of streamfold, split by whose fault the failure is.

::

    StreamfoldError                  base; every error carries the partial result
    ├── ProviderError                the provider said so in-band (error chunk or event)
    ├── StreamBrokenError            the stream itself is at fault
    │   ├── ProtocolError            malformed SSE or JSON, or an event out of place
    │   └── IncompleteStreamError    ended without a finish reason or terminal marker
    │       └── StreamTimeoutError   connect, first event, idle gap or total time ran out
    ├── HTTPResponseError            the HTTP response is not a stream
    │   ├── HTTPStatusError          a non-2xx status, with the provider's error body
    │   └── ContentTypeError         2xx, but not an event stream
    ├── TruncatedResponseError       finished, but cut by length or a content filter
    │                                (raised only when the caller asks for a checked result)
    ├── PartialJSONError             JSON text (tool arguments, JSON-mode content) that is
    │   │                            not valid, asked for on demand (also a ``ValueError``)
    │   ├── JSONDepthError           nested deeper than the parser's limit
    │   └── JSONSizeError            more characters than the parser's limit
    ├── OutputValidationError        a structured answer that is not a valid value of the
    │                                caller's output type (also a ``ValueError``)
    └── UsageError                   the caller misused the API (also a ``ValueError``)
        └── UnsupportedSchemaError   an output type or JSON Schema streamfold cannot follow

Every error carries ``partial`` (the result folded so far, or ``None`` when
nothing was received) and ``position`` (the index of the server-sent event at
which it happened, or ``None``; for ``PartialJSONError``, the character offset in
the JSON text). A result is data: its ``error`` is the ``ErrorInfo`` of the
failure, never the exception, so a failed result encodes to JSON like any other.
The HTTP errors are raised by ``streamfold.adapters`` only; they live here so
that the tree is one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

import msgspec

if TYPE_CHECKING:
    from .result import ResponseMetadata, Result

__all__ = [
    "ContentTypeError",
    "ErrorInfo",
    "HTTPResponseError",
    "HTTPStatusError",
    "IncompleteStreamError",
    "OutputValidationError",
    "PartialJSONError",
    "ProtocolError",
    "ProviderError",
    "StreamBrokenError",
    "StreamTimeoutError",
    "StreamfoldError",
    "TruncatedResponseError",
    "UnsupportedSchemaError",
    "UsageError",
    "shorten",
    "timeout_error",
]

_EXCERPT = 120


def shorten(data: str | bytes, limit: int = _EXCERPT) -> str:
    """Return a printable excerpt of ``data``, cut in the middle when long."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = repr(text)[1:-1]
    if len(text) <= limit:
        return text
    half = (limit - 5) // 2
    return f"{text[:half]} ... {text[-half:]}"


class ErrorInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What went wrong, as data (in ``error`` events, ``Result.error`` and the
    unified view): ``type`` is the error's ``info_type`` (``"provider_error"``,
    ``"incomplete_stream"``, ``"protocol_error"``, ``"timeout"``...); ``code``
    the provider's code or error type when it gave one."""

    type: str
    code: str | None = None
    message: str


class StreamfoldError(Exception):
    """Base of every error streamfold raises.

    Attributes:
        partial: the result folded so far (``streamfold.Result``) or ``None``.
        position: index of the server-sent event where the error arose, or ``None``.
        info_type: the ``type`` of this error in ``error`` events and the unified view.
    """

    info_type: ClassVar[str] = "error"
    #: The provider's error code, for the errors that have one.
    code: str | None = None

    def __init__(
        self, message: str, *, partial: Result | None = None, position: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.partial = partial
        self.position = position

    def __str__(self) -> str:
        return self.message

    @property
    def info(self) -> ErrorInfo:
        """This error as data."""
        return ErrorInfo(type=self.info_type, code=self.code, message=self.message)


class ProviderError(StreamfoldError):
    """An error object or event that the provider sent inside the stream.

    Attributes:
        code: the provider's error code or type (a string), or ``None``.
        error_type: the provider's error type (``"server_error"``,
            ``"overloaded_error"``), or ``None``.
        provider_message: the provider's own message text.
        raw: the provider's error payload, as decoded.
        retryable: whether the provider marks this kind of error as worth retrying.
    """

    info_type: ClassVar[str] = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        error_type: str | None = None,
        raw: Any = None,
        retryable: bool = False,
        partial: Result | None = None,
        position: int | None = None,
    ) -> None:
        super().__init__(message, partial=partial, position=position)
        self.code = code
        self.error_type = error_type
        self.provider_message = message
        self.raw = raw
        self.retryable = retryable


class StreamBrokenError(StreamfoldError):
    """The stream itself is at fault: malformed, or cut short."""


class ProtocolError(StreamBrokenError):
    """Malformed SSE or JSON, or an event the dialect cannot accept where it stands.

    The message names the event number and shows the offending bytes, shortened.

    Attributes:
        excerpt: the offending bytes, shortened and printable.
    """

    info_type: ClassVar[str] = "protocol_error"

    def __init__(
        self,
        message: str,
        *,
        excerpt: str = "",
        partial: Result | None = None,
        position: int | None = None,
    ) -> None:
        super().__init__(message, partial=partial, position=position)
        self.excerpt = excerpt


class IncompleteStreamError(StreamBrokenError):
    """The stream ended without a finish reason or terminal marker."""

    info_type: ClassVar[str] = "incomplete_stream"


class TruncatedResponseError(StreamfoldError):
    """The response finished, but was cut by a token limit or a content filter.

    Raised only by ``final(checked=True)``.

    Attributes:
        reason: the unified finish reason (``"length"`` or ``"content_filter"``).
    """

    def __init__(self, message: str, *, reason: str, partial: Result | None = None) -> None:
        super().__init__(message, partial=partial)
        self.reason = reason


class UsageError(StreamfoldError, ValueError):
    """The caller misused the API (an unknown dialect, feeding after close, ...)."""


class StreamTimeoutError(IncompleteStreamError):
    """A deadline ran out: the stream did not complete in time.

    An ``IncompleteStreamError``, so code that retries cut streams retries these
    too; ``partial`` is the ``HTTPResult`` folded so far (``None`` for ``connect``).

    Attributes:
        kind: ``"connect"``, ``"first_event"``, ``"idle"`` or ``"total"``.
        timeout: the limit that ran out, in seconds.
    """

    info_type: ClassVar[str] = "timeout"

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        timeout: float | None,
        partial: Result | None = None,
        position: int | None = None,
    ) -> None:
        super().__init__(message, partial=partial, position=position)
        self.kind = kind
        self.timeout = timeout


def timeout_error(
    kind: str, timeout: float | None, partial: Result | None = None, position: int | None = None
) -> StreamTimeoutError:
    """A ``StreamTimeoutError`` with the message that names its deadline."""
    what = {
        "connect": "connecting",
        "first_event": "waiting for the first event",
        "idle": "waiting for the next event",
        "total": "streaming (total time)",
    }.get(kind, kind)
    limit = f" after {timeout:g} s" if timeout is not None else ""
    return StreamTimeoutError(
        f"timed out {what}{limit}", kind=kind, timeout=timeout, partial=partial, position=position
    )


class HTTPResponseError(StreamfoldError):
    """The HTTP response is not a stream. Base of ``HTTPStatusError`` and
    ``ContentTypeError``; ``partial`` is ``None`` (nothing was folded).

    Attributes:
        status_code: the HTTP status.
        request_id: the provider's request id (header, or Anthropic's body field).
        body: the body as text, at most ``MAX_ERROR_BODY`` bytes of it.
        raw: the body decoded as JSON, or ``None`` when it is not JSON.
        code: the provider's error code or type, when the body is an error envelope.
        error_type: the provider's error type or status string.
        provider_message: the provider's own message, or ``None``.
        retryable: whether retrying may help (see ``HTTPStatusError``).
        retry_after: seconds to wait before retrying, when the provider said.
        metadata: the response metadata.
    """

    info_type: ClassVar[str] = "http_error"

    def __init__(
        self,
        message: str,
        *,
        metadata: ResponseMetadata,
        body: str,
        raw: Any,
        code: str | None,
        error_type: str | None,
        provider_message: str | None,
        retryable: bool,
        retry_after: float | None,
    ) -> None:
        super().__init__(message)
        self.metadata = metadata
        self.status_code = metadata.status_code
        self.request_id = metadata.request_id
        self.body = body
        self.raw = raw
        self.code = code
        self.error_type = error_type
        self.provider_message = provider_message
        self.retryable = retryable
        self.retry_after = retry_after


class HTTPStatusError(HTTPResponseError):
    """The provider answered with a non-2xx status.

    ``retryable`` follows the official OpenAI and Anthropic SDKs: an
    ``x-should-retry`` header decides when present, else 408, 409, 429 and 5xx
    (including Anthropic's 529) are worth retrying.
    """


class ContentTypeError(HTTPResponseError):
    """A 2xx response whose body is not an event stream (a JSON error object on
    HTTP 200, an HTML page from a proxy), reported as such rather than as a parse
    error.

    Attributes:
        content_type: the ``content-type`` header, or ``None``.
    """

    def __init__(self, message: str, *, content_type: str | None, **details: Any) -> None:
        super().__init__(message, **details)
        self.content_type = content_type


class PartialJSONError(StreamfoldError, ValueError):
    """The text is not a prefix of a valid JSON document, or it ended too early.

    Raised by ``streamfold.partial_json`` and by the on-demand views built on it
    (``StreamParser.partial_arguments``); inside a stream the same failure is a
    ``parse_error`` on ``tool_call.done`` or ``text.done``, never an exception.

    Attributes:
        reason: What is wrong, without the position.
        position: Offset (in characters) of the first character at which the
            text fed so far stopped being a prefix of a valid JSON document;
            the text's length when it ended too early.
        excerpt: The text just before and from ``position``, for the message.
    """

    info_type: ClassVar[str] = "json_error"

    def __init__(self, reason: str, position: int, excerpt: tuple[str, str] = ("", "")) -> None:
        before, after = excerpt
        message = f"{reason} at position {position}"
        if before or after:
            where = repr(after) if after else "the end"
            message += f" (after {before!r}, at {where})"
        super().__init__(message, position=position)
        self.reason = reason
        self.excerpt = excerpt

    def __reduce__(self) -> tuple[type[PartialJSONError], tuple[str, int, tuple[str, str]]]:
        return (type(self), (self.reason, self.position or 0, self.excerpt))


class OutputValidationError(StreamfoldError, ValueError):
    """The answer is not a valid value of the output type (``streamfold.structured``).

    Attributes:
        kind: ``"json"`` (the text is not JSON), ``"value"`` (a value does not
            validate) or ``"incomplete"`` (the answer ended early: the stream
            was cut, or the JSON text stopped before its end).
        path: Object keys and array indexes from the top-level value down to
            the value at fault (``()``: the whole value).
        reason: What is wrong, without the path.
        text: All the text fed.
        partial_value: The partial value when the failure was detected.
        position: Characters fed when the failure was detected (for
            ``"json"``: the offset of the first invalid character).
    """

    info_type: ClassVar[str] = "output_validation_error"

    def __init__(
        self,
        kind: Literal["json", "value", "incomplete"],
        reason: str,
        *,
        path: tuple[str | int, ...] = (),
        text: str = "",
        partial_value: Any = msgspec.UNSET,
        position: int | None = None,
    ) -> None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        super().__init__(f"{reason} (at ${where})", position=position)
        self.kind = kind
        self.reason = reason
        self.path = path
        self.text = text
        self.partial_value = partial_value

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.kind, self.reason), dict(self.__dict__))


class UnsupportedSchemaError(UsageError):
    """The output type or JSON Schema is outside what ``streamfold.structured`` supports."""
