"""Bytes from anywhere, folded: sync and async twins over one ``StreamParser``.

A source is ``bytes``, a path (``str`` or ``os.PathLike``), a binary file
object, an iterable of ``bytes``, or (async twins only) an async iterable of
``bytes``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from typing import IO, Any, TypeAlias

from ..dialects.base import Dialect
from ..errors import UsageError
from ..events import Event
from ..parser import StreamParser
from ..result import Result

__all__ = ["Source", "AsyncSource", "afold", "aiter_events", "fold", "iter_chunks", "iter_events"]

Source: TypeAlias = (
    bytes | bytearray | memoryview | str | os.PathLike[str] | IO[bytes] | Iterable[bytes]
)
AsyncSource: TypeAlias = Source | AsyncIterable[bytes]

READ_SIZE = 64 * 1024


def iter_chunks(source: Source) -> Iterator[bytes]:
    """The bytes of a source, in chunks.

    Raises:
        UsageError: the source is none of the accepted kinds.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as file:
            yield from _read(file)
    elif hasattr(source, "read"):
        yield from _read(source)
    elif isinstance(source, Iterable):
        for chunk in source:
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise UsageError(
                    f"a source must yield bytes, not {type(chunk).__name__} "
                    "(decode nothing: pass the raw bytes)"
                )
            yield bytes(chunk)
    else:
        raise UsageError(f"cannot read bytes from a {type(source).__name__}")


def _read(file: Any) -> Iterator[bytes]:
    # read1 returns what one read of the descriptor gives: a live pipe (stdin,
    # a socket) is folded as it arrives, not once READ_SIZE bytes are in.
    read = getattr(file, "read1", None) or file.read
    while True:
        chunk = read(READ_SIZE)
        if not chunk:
            return
        if isinstance(chunk, str):
            raise UsageError("the file is open in text mode: open it with 'rb'")
        yield chunk


def iter_events(
    source: Source,
    dialect: str | type[Dialect] = "auto",
    *,
    strict: bool = True,
    parse_arguments: bool = False,
    parse_content: bool = False,
    output_type: Any = None,
    tool_types: Mapping[str, Any] | None = None,
) -> Iterator[Event]:
    """The events of a stream, in order.

    ``parse_arguments`` attaches incremental JSON updates to tool-call argument
    deltas; ``parse_content`` does the same for answer text (JSON mode).
    ``output_type`` follows the answer as that type, ``tool_types`` the
    arguments of the tools named (``output.updated`` events, ``output`` on
    ``text.done`` and ``tool_call.done``; see ``StreamParser``).

    Raises:
        ProviderError: right after yielding its ``error`` event.
        IncompleteStreamError: the stream ended early (after the incomplete ``*.done`` events).
        ProtocolError: a malformed stream in strict mode.
    """
    parser = StreamParser(
        dialect,
        strict=strict,
        parse_arguments=parse_arguments,
        parse_content=parse_content,
        output_type=output_type,
        tool_types=tool_types,
    )
    for chunk in iter_chunks(source):
        yield from parser.feed(chunk)
        if parser.error is not None:
            raise parser.error
    yield from parser.close()
    if parser.error is not None:
        raise parser.error


async def aiter_events(
    source: AsyncSource,
    dialect: str | type[Dialect] = "auto",
    *,
    strict: bool = True,
    parse_arguments: bool = False,
    parse_content: bool = False,
    output_type: Any = None,
    tool_types: Mapping[str, Any] | None = None,
) -> AsyncIterator[Event]:
    """The async twin of ``iter_events``: also takes an async iterable of bytes."""
    parser = StreamParser(
        dialect,
        strict=strict,
        parse_arguments=parse_arguments,
        parse_content=parse_content,
        output_type=output_type,
        tool_types=tool_types,
    )
    async for chunk in _achunks(source):
        for event in parser.feed(chunk):
            yield event
        if parser.error is not None:
            raise parser.error
    for event in parser.close():
        yield event
    if parser.error is not None:
        raise parser.error


def fold(
    source: Source,
    dialect: str | type[Dialect] = "auto",
    *,
    strict: bool = True,
    checked: bool = False,
    output_type: Any = None,
    tool_types: Mapping[str, Any] | None = None,
) -> Result:
    """Fold a whole stream into its final result.

    With ``output_type`` (the answer's type) and ``tool_types`` (a type per
    tool name), ``result.output`` and each ``ToolCall.output`` are validated
    values of those types, or ``output_error`` says why not.

    Returns:
        The ``Result``: native response, unified view, usage, finish reason, warnings.

    Raises:
        ProviderError: the stream carried a provider error (``.partial`` has the result so far).
        IncompleteStreamError: the stream ended early (``.partial`` too).
        ProtocolError: a malformed stream in strict mode.
        TruncatedResponseError: ``checked`` and the response was cut by length or a filter.
        UnsupportedSchemaError: an output type ``streamfold.structured`` does not support.
    """
    parser = StreamParser(
        dialect, strict=strict, events=False, output_type=output_type, tool_types=tool_types
    )
    for chunk in iter_chunks(source):
        parser.feed(chunk)
        if parser.error is not None:
            break
    parser.close()
    return parser.final(checked=checked)


async def afold(
    source: AsyncSource,
    dialect: str | type[Dialect] = "auto",
    *,
    strict: bool = True,
    checked: bool = False,
    output_type: Any = None,
    tool_types: Mapping[str, Any] | None = None,
) -> Result:
    """The async twin of ``fold``."""
    parser = StreamParser(
        dialect, strict=strict, events=False, output_type=output_type, tool_types=tool_types
    )
    async for chunk in _achunks(source):
        parser.feed(chunk)
        if parser.error is not None:
            break
    parser.close()
    return parser.final(checked=checked)


async def _achunks(source: AsyncSource) -> AsyncIterator[bytes]:
    if isinstance(source, AsyncIterable):
        async for chunk in source:
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise UsageError(f"a source must yield bytes, not {type(chunk).__name__}")
            yield bytes(chunk)
    else:
        for chunk in iter_chunks(source):
            yield chunk
