"""streamfold: fold streamed LLM responses into typed events and one final response.

::

    import streamfold

    result = streamfold.fold(open("stream.sse", "rb"))
    print(result.unified.text, result.usage)

    for event in streamfold.iter_events(chunks):
        ...

The sans-IO core is ``StreamParser``; the exception tree is drawn in
``streamfold.errors``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .adapters.sources import afold, aiter_events, fold, iter_events
from .errors import (
    IncompleteStreamError,
    OutputValidationError,
    ProtocolError,
    ProviderError,
    StreamBrokenError,
    StreamfoldError,
    TruncatedResponseError,
    UsageError,
)
from .events import (
    ErrorInfo,
    ErrorOccurred,
    Event,
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
)
from .parser import Phase, StreamParser
from .result import Result, ToolCall, Unified

if TYPE_CHECKING:
    # For type checkers: loaded lazily at run time (below).
    from .adapters.client import astream, stream

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # The live client needs httpx (the ``http`` extra): loaded on first use, so
    # that ``import streamfold`` never imports it.
    if name in ("stream", "astream"):
        from .adapters import client

        return getattr(client, name)
    raise AttributeError(f"module 'streamfold' has no attribute {name!r}")


__all__ = [
    "ErrorInfo",
    "ErrorOccurred",
    "Event",
    "IncompleteStreamError",
    "LogprobsDelta",
    "LogprobsDone",
    "OutputUpdated",
    "OutputValidationError",
    "Phase",
    "ProtocolError",
    "ProviderError",
    "ReasoningDelta",
    "ReasoningDone",
    "RefusalDelta",
    "RefusalDone",
    "ResponseFinished",
    "ResponseStarted",
    "Result",
    "StreamBrokenError",
    "StreamParser",
    "StreamfoldError",
    "TextDelta",
    "TextDone",
    "ToolCall",
    "ToolCallArgumentsDelta",
    "ToolCallDone",
    "ToolCallStarted",
    "TruncatedResponseError",
    "Unified",
    "Unknown",
    "Usage",
    "UsageError",
    "UsageUpdated",
    "__version__",
    "afold",
    "aiter_events",
    "astream",
    "fold",
    "iter_events",
    "stream",
]
