"""What the sources need to know of the official SDKs, by duck typing: no SDK is
imported here.

- ``response_of``: the streamed HTTP response an SDK object holds (openai's and
  anthropic's ``Stream``, anthropic's ``MessageStream``, ``with_streaming_response``'s
  ``APIResponse``, or an httpx/httpx2 response itself), so its bytes are folded.
- ``failure_of``: what an exception raised while iterating a source of decoded
  events means in streamfold's tree (google-genai raises its own errors and
  the HTTP library's from inside its stream): an HTTP status, an in-band
  error payload to fold as the event it was, a transport failure, or nothing
  streamfold knows (raised as it is). boto3's ``EventStream`` too: botocore
  raises Bedrock's exception messages, and urllib3's errors, from inside it.
- ``closes_with_the_fold``: the sources streamfold closes when it is done.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ..errors import HTTPResponseError, UsageError, timeout_error
from ..events import Event
from ..parser import StreamParser

if TYPE_CHECKING:
    from .httpx import StreamedResponse

__all__ = ["Failure", "closes_with_the_fold", "failure_of", "is_async", "response_of"]


def _is_response(value: object) -> bool:
    return (
        value is not None
        and hasattr(value, "status_code")
        and hasattr(value, "headers")
        and hasattr(value, "request")
        and (hasattr(value, "iter_bytes") or hasattr(value, "aiter_bytes"))
    )


def response_of(source: object) -> StreamedResponse | None:
    """The streamed HTTP response ``source`` is or holds (its ``http_response``,
    or its ``response``), or ``None``.

    Raises:
        UsageError: the response's body was already read by someone else (the
            SDK stream was iterated): its bytes are gone.
    """
    for name in ("", "http_response", "response"):
        try:
            candidate = getattr(source, name) if name else source
        except Exception:  # a property that cannot answer yet: not one of these
            continue
        if _is_response(candidate):
            _check_unread(candidate)
            response: StreamedResponse = candidate  # type: ignore[assignment]
            return response
    return None


def _check_unread(response: Any) -> None:
    if not getattr(response, "is_stream_consumed", False):
        return
    try:
        response.content  # noqa: B018 - read whole (response.read()): folded from memory
    except Exception:
        raise UsageError(
            "this stream's body was already read (the SDK stream was iterated): pass the "
            "stream to streamfold before iterating it, or feed its objects to a "
            "StreamParser as they come"
        ) from None


def is_async(response: StreamedResponse) -> bool:
    """Whether ``response`` came from an async client (its body reads only
    with ``aiter_bytes``)."""
    stream = getattr(response, "stream", None)
    return hasattr(stream, "__aiter__") and not hasattr(stream, "__iter__")


# -- exceptions raised by a source of decoded events --------------------------------------

#: (package, class name) of the exceptions that mean a read timed out, then of
#: those that mean the connection or the body broke; an exception is matched by
#: its classes, most derived first.
_TIMEOUTS: Final = frozenset(
    {
        ("httpx", "TimeoutException"),
        ("httpx2", "TimeoutException"),
        ("openai", "APITimeoutError"),
        ("anthropic", "APITimeoutError"),
        ("aiohttp", "ServerTimeoutError"),
        ("botocore", "ReadTimeoutError"),
        ("urllib3", "TimeoutError"),
        ("builtins", "TimeoutError"),
    }
)
_LOST: Final = frozenset(
    {
        ("httpx", "RequestError"),
        ("httpx", "StreamError"),
        ("httpx2", "RequestError"),
        ("httpx2", "StreamError"),
        ("openai", "APIConnectionError"),
        ("anthropic", "APIConnectionError"),
        ("aiohttp", "ClientError"),
        ("botocore", "HTTPClientError"),
        ("botocore", "ResponseStreamingError"),
        ("urllib3", "ProtocolError"),
        ("builtins", "ConnectionError"),
    }
)
#: The SDKs whose API errors carry the provider's error payload.
_SDKS: Final = frozenset({"openai", "anthropic", "google", "botocore"})


@dataclass(frozen=True)
class Failure:
    """What an exception raised by a source means.

    Attributes:
        cause: the exception.
        kind: ``"status"`` (an HTTP error status), ``"in-band"`` (the provider's
            error event, ``payload``), ``"timeout"`` or ``"lost"``.
        payload: the in-band error event, as the provider sent it.
    """

    cause: BaseException
    kind: str
    payload: Mapping[str, Any] | None = None

    def apply(self, parser: StreamParser) -> list[Event]:
        """End ``parser``'s stream with this failure, as the HTTP exchange
        would have (``streamfold.adapters.exchange``): an in-band error is
        folded as its event; a broken connection ends the stream where it
        stands (the cause chained); a timeout fails it.

        Returns:
            The last events.

        Raises:
            HTTPResponseError: an HTTP status (nothing to fold).
        """
        if self.kind == "status":
            raise _status_error(self.cause) from self.cause
        if self.kind == "in-band":
            return parser.feed(self.payload or {}) + parser.close()
        if self.kind == "timeout":
            kind = "first_event" if parser.events_seen == 0 else "idle"
            error = timeout_error(kind, _read_timeout(self.cause), position=parser.events_seen)
            error.__cause__ = self.cause
            return parser.fail(error)
        events = parser.close()
        if parser.error is not None and parser.error.__cause__ is None:
            parser.error.__cause__ = self.cause
        return events


def _read_timeout(exc: BaseException) -> float | None:
    # The HTTP client's read timeout, from the request the timeout error names.
    try:
        timeout = exc.request.extensions.get("timeout")  # type: ignore[attr-defined]
    except Exception:
        return None
    read = timeout.get("read") if isinstance(timeout, Mapping) else None
    return float(read) if isinstance(read, (int, float)) else None


def failure_of(exc: BaseException) -> Failure | None:
    """What ``exc``, raised while iterating a source, means (``None``: nothing
    streamfold knows, to be raised as it is)."""
    classes = [(cls.__module__.partition(".")[0], cls.__name__) for cls in type(exc).__mro__]
    response = getattr(exc, "response", None)
    if _is_response(response) and not 200 <= getattr(response, "status_code", 0) < 300:
        return Failure(exc, "status")
    if classes[0][0] in _SDKS:
        payload = _error_payload(exc)
        if payload is not None:
            return Failure(exc, "in-band", payload)
    for key in classes:
        if key in _TIMEOUTS:
            return Failure(exc, "timeout")
        if key in _LOST:
            return Failure(exc, "lost")
    return None


def _error_payload(exc: BaseException) -> Mapping[str, Any] | None:
    # google-genai's APIError keeps the chunk it raised for (``details``);
    # openai's and anthropic's keep the event (anthropic) or its ``error``
    # object (openai's in-band chunk error) in ``body``.
    if type(exc).__name__ == "EventStreamError":
        return _aws_exception(exc)
    for name in ("details", "body"):
        payload = getattr(exc, name, None)
        if isinstance(payload, Mapping):
            return payload if "error" in payload else {"error": payload}
    return None


def _aws_exception(exc: BaseException) -> Mapping[str, Any] | None:
    # botocore raises an event-stream exception message (Bedrock's
    # throttlingException mid-stream...) as EventStreamError, its code and
    # message in ``response["Error"]``: folded as the member it was.
    response = getattr(exc, "response", None)
    error = response.get("Error") if isinstance(response, Mapping) else None
    code = error.get("Code") if isinstance(error, Mapping) else None
    if not isinstance(code, str) or not code:
        return None
    message = error.get("Message") if isinstance(error, Mapping) else None
    return {code: {"message": message} if isinstance(message, str) else {}}


def closes_with_the_fold(source: object) -> bool:
    """Whether a source of decoded events is closed once folded, or left early:
    a generator (google-genai's stream holds its connection), or botocore's
    ``EventStream`` (boto3's ``converse_stream()["stream"]``), whose
    ``close()`` closes the connection."""
    if inspect.isgenerator(source):
        return True
    cls = type(source)
    return (
        cls.__name__ == "EventStream"
        and cls.__module__.startswith("botocore.")
        and callable(getattr(source, "close", None))
    )


def _status_error(exc: BaseException) -> HTTPResponseError:
    # The SDK read the error body: the exchange reads it again into the error
    # the HTTP adapters raise (status, provider code, retry-after, request id).
    from .exchange import Exchange
    from .httpx import _head_of

    response: Any = getattr(exc, "response", None)
    exchange = Exchange(_head_of(response), now=time.monotonic())
    try:
        body = bytes(response.content)
    except Exception:
        body = b""
    exchange.receive(body, time.monotonic())
    exchange.receive(b"", time.monotonic())
    error = exchange.failure
    if not isinstance(error, HTTPResponseError):  # pragma: no cover - a non-2xx head always is
        raise exc
    return error
