"""Encoders: streamfold's events back to any streaming wire format.

The mirror of the dialects: an encoder takes the events a ``StreamParser``
gives, of any dialect, and writes them in a target's own format, sans-IO::

    from streamfold import StreamParser
    from streamfold.encode import get

    parser, encoder = StreamParser(), get("anthropic")()
    for chunk in upstream:                      # bytes of any dialect
        send(encoder.encode_all(parser.feed(chunk)))
    send(encoder.encode_all(parser.close()) + encoder.close())

Serve the bytes with ``encoder.media_type`` and ``encoder.headers`` (an ASGI
server: ``streamfold.adapters.asgi.EncodedStreamResponse`` does it all). One
module per target; ``base`` says how a stream ends; what each target cannot
carry, and what becomes of it, is ``docs/encode.md``.
"""

from __future__ import annotations

from ..dialects.registry import get_api
from ..errors import UsageError
from .ai_sdk_ui import UIMessageStreamEncoder
from .anthropic import AnthropicEncoder
from .base import Encoder
from .gemini import GeminiEncoder
from .openai_chat import ChatEncoder
from .openai_responses import ResponsesEncoder

__all__ = [
    "ENCODERS",
    "AnthropicEncoder",
    "ChatEncoder",
    "Encoder",
    "GeminiEncoder",
    "ResponsesEncoder",
    "UIMessageStreamEncoder",
    "get",
]

#: Dialect id -> its encoder: every dialect streamfold reads.
ENCODERS: dict[str, type[Encoder]] = {
    cls.dialect: cls
    for cls in (
        ChatEncoder,
        ResponsesEncoder,
        AnthropicEncoder,
        GeminiEncoder,
        UIMessageStreamEncoder,
    )
}


def get(target: str) -> type[Encoder]:
    """The encoder class for a dialect id or an API's short name (``"chat"``).

    Raises:
        UsageError: no dialect has that name.
    """
    try:
        return ENCODERS[get_api(target).id]
    except (UsageError, KeyError):
        known = ", ".join(ENCODERS)
        raise UsageError(f"no encoder for {target!r} (known: {known})") from None
