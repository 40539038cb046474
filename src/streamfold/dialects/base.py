"""What every dialect shares: the interface the parser drives, JSON decoding with
precise errors, and the mapping of provider error payloads."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from ..errors import ProtocolError, ProviderError, shorten
from ..fold import Accumulator
from ..sse import ServerSentEvent

__all__ = ["Dialect", "decode_json", "int_or_none", "provider_error", "str_or_none"]

_decode = msgspec.json.Decoder().decode

# Error codes and types that providers document as transient.
_RETRYABLE = frozenset(
    {
        "server_error",
        "api_error",
        "overloaded_error",
        "rate_limit_error",
        "rate_limit_exceeded",
        "insufficient_system_resource",
        "service_unavailable",
        "timeout",
        "internal_error",
        "unavailable",
        "resource_exhausted",
        "overloaded",
        "500",
        "502",
        "503",
        "504",
        "529",
        "429",
    }
)


def decode_json(event: ServerSentEvent) -> Any:
    """Decode the JSON payload of ``event``.

    Raises:
        ProtocolError: the data is not JSON; the message names the event number
            and shows the bytes, shortened.
    """
    try:
        return _decode(event.raw)
    except msgspec.DecodeError as exc:
        reason = str(exc)
    except RecursionError:
        reason = "nested too deeply"
    except UnicodeDecodeError:
        # Invalid UTF-8 becomes U+FFFD, as the SSE spec decodes it.
        try:
            return _decode(event.data)
        except msgspec.DecodeError as exc:
            reason = str(exc)
        except RecursionError:
            reason = "nested too deeply"
    raise ProtocolError(
        f"server-sent event #{event.index} is not valid JSON ({reason}): {shorten(event.raw)!r}",
        excerpt=shorten(event.raw),
        position=event.index,
    )


def str_or_none(value: Any) -> str | None:
    """An id or name as a string: numbers are accepted (Zhipu sends numeric ids),
    empty strings and non-scalars become ``None``."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def int_or_none(value: Any) -> int | None:
    """A token count or timestamp: an int, or ``None`` for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def provider_error(payload: Any, position: int | None = None) -> ProviderError:
    """Build a ``ProviderError`` from a provider's error object.

    Accepts the common envelopes: ``{"error": {...}}``, the error object itself
    (``message``, ``code``, ``type``, ``status``), or a bare string.
    """
    error = payload.get("error", payload) if isinstance(payload, dict) else payload
    if isinstance(error, dict):
        message = error.get("message")
        code = str_or_none(error.get("code"))
        kind = str_or_none(error.get("type")) or str_or_none(error.get("status"))
    else:
        message, code, kind = error, None, None
    text = message if isinstance(message, str) and message else "the provider reported an error"
    keys = {k.lower() for k in (code, kind) if k}
    return ProviderError(
        text,
        code=code or kind,
        error_type=kind,
        raw=payload,
        retryable=bool(keys & _RETRYABLE),
        position=position,
    )


class Dialect:
    """One wire format. The parser drives it:

    - ``handle(event)`` for every server-sent event; it calls the accumulator's
      methods and raises ``ProviderError`` for an in-band error or
      ``ProtocolError`` for malformed input;
    - ``terminated`` becomes ``True`` when the stream's terminal marker arrives;
    - ``close()`` at end of input says whether the stream is complete;
    - ``response()`` builds the native non-streaming response at any moment.
    """

    name: ClassVar[str] = ""

    def __init__(self, acc: Accumulator) -> None:
        self.acc = acc
        self.terminated = False

    @classmethod
    def detect(cls, event: ServerSentEvent, payload: Any) -> bool:
        """Whether the first event with data (decoded as ``payload``) is of this dialect."""
        raise NotImplementedError

    def handle(self, event: ServerSentEvent) -> None:
        """Fold one server-sent event.

        Raises:
            ProviderError: the event carries a provider error.
            ProtocolError: the event is malformed.
        """
        raise NotImplementedError

    def close(self) -> bool:
        """End of input: ``True`` when the stream reached its end properly.

        Raises:
            ProviderError: the stream's end itself means a provider failure.
        """
        return self.terminated

    def response(self) -> dict[str, Any]:
        """The response so far, in the dialect's own non-streaming shape."""
        raise NotImplementedError
