"""Dialects: one module per wire format, and the registry that names and detects them."""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from ..sse import ServerSentEvent
from .anthropic import AnthropicMessages
from .base import Dialect
from .gemini import Gemini
from .openai_chat import OpenAIChat
from .openai_responses import OpenAIResponses

__all__ = ["DIALECTS", "Dialect", "detect", "get"]

#: Dialect id -> class, in the order ``detect`` tries them.
DIALECTS: dict[str, type[Dialect]] = {
    cls.name: cls for cls in (OpenAIResponses, AnthropicMessages, Gemini, OpenAIChat)
}


def get(dialect: str | type[Dialect]) -> type[Dialect]:
    """The dialect class for an id (or the class itself).

    Raises:
        UsageError: no dialect has that id.
    """
    if isinstance(dialect, type) and issubclass(dialect, Dialect):
        return dialect
    try:
        return DIALECTS[str(dialect)]
    except KeyError:
        known = ", ".join(["auto", *DIALECTS])
        raise UsageError(f"unknown dialect {dialect!r} (known: {known})") from None


def detect(event: ServerSentEvent, payload: Any) -> type[Dialect] | None:
    """The dialect whose first event looks like ``payload``, or ``None``."""
    for cls in DIALECTS.values():
        if cls.detect(event, payload):
            return cls
    return None
