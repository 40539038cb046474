"""The one exception tree of streamfold, split by whose fault the failure is.

::

    StreamfoldError                  base; every error carries the partial result
    ├── ProviderError                the provider said so in-band (error chunk or event)
    ├── StreamBrokenError            the stream itself is at fault
    │   ├── ProtocolError            malformed SSE or JSON, or an event out of place
    │   └── IncompleteStreamError    ended without a finish reason or terminal marker
    ├── TruncatedResponseError       finished, but cut by length or a content filter
    │                                (raised only when the caller asks for a checked result)
    └── UsageError                   the caller misused the API (also a ``ValueError``)

Every error carries ``partial`` (the result folded so far, or ``None`` when
nothing was received) and ``position`` (the index of the server-sent event at
which it happened, or ``None``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from .result import Result

__all__ = [
    "IncompleteStreamError",
    "ProtocolError",
    "ProviderError",
    "StreamBrokenError",
    "StreamfoldError",
    "TruncatedResponseError",
    "UsageError",
    "shorten",
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


class StreamfoldError(Exception):
    """Base of every error streamfold raises.

    Attributes:
        partial: the result folded so far (``streamfold.Result``) or ``None``.
        position: index of the server-sent event where the error arose, or ``None``.
        info_type: the ``type`` of this error in ``error`` events and the unified view.
    """

    info_type: ClassVar[str] = "error"

    def __init__(
        self, message: str, *, partial: Result | None = None, position: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.partial = partial
        self.position = position

    def __str__(self) -> str:
        return self.message


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
