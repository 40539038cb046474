"""The folded result: the native response, its unified view, usage and warnings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from .events import ErrorInfo, Usage

if TYPE_CHECKING:
    from .errors import StreamfoldError

__all__ = ["Result", "ToolCall", "Unified", "UNIFIED_USAGE_KEYS"]

#: The keys of ``usage`` in the unified view (``--format unified``).
UNIFIED_USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_tokens",
    "reasoning_tokens",
)


class ToolCall(msgspec.Struct, frozen=True, kw_only=True):
    """A tool call in the unified view; ``arguments`` is the raw JSON text as streamed.
    ``complete`` is false for a call cut short (never execute it)."""

    id: str | None
    name: str | None
    arguments: str
    complete: bool = True


class Unified(msgspec.Struct, frozen=True, kw_only=True):
    """The same small view of any dialect's response (its first choice)."""

    text: str = ""
    reasoning: str = ""
    refusal: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    raw_finish_reason: str | None = None
    usage: Usage | None = None
    error: ErrorInfo | None = None

    def to_dict(self) -> dict[str, Any]:
        """The exact object ``streamfold fold --format unified`` prints."""
        usage = self.usage
        return {
            "text": self.text,
            "reasoning": self.reasoning,
            "refusal": self.refusal,
            "tool_calls": [
                {"id": c.id, "name": c.name, "arguments": c.arguments} for c in self.tool_calls
            ],
            "finish_reason": self.finish_reason,
            "raw_finish_reason": self.raw_finish_reason,
            "usage": None
            if usage is None
            else {key: getattr(usage, key) for key in UNIFIED_USAGE_KEYS},
            "error": None
            if self.error is None
            else {"type": self.error.type, "code": self.error.code, "message": self.error.message},
        }


class Result(msgspec.Struct, frozen=True):
    """Everything folded from one stream.

    Attributes:
        dialect: the dialect id (``"openai-chat"``, ...).
        response: the response in the dialect's own non-streaming shape (a JSON-able dict).
        unified: the dialect-neutral view.
        complete: the stream reached its finish reason or terminal marker.
        error: the failure that ended the stream, or ``None``.
        warnings: what lenient parsing skipped and what the fold noticed.
    """

    dialect: str
    response: dict[str, Any]
    unified: Unified
    complete: bool
    error: StreamfoldError | None = None
    warnings: tuple[str, ...] = ()

    @property
    def usage(self) -> Usage | None:
        """Normalised usage, or ``None`` when the stream reported none."""
        return self.unified.usage

    @property
    def finish_reason(self) -> str | None:
        """The unified finish reason of the first choice."""
        return self.unified.finish_reason

    @property
    def text(self) -> str:
        """The answer text of the first choice."""
        return self.unified.text
