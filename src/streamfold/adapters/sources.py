"""Streams from anywhere, folded: sync and async twins over one ``StreamParser``.

A source is one of (``docs/sdks.md`` has the table, with which path each takes):

- the bytes: ``bytes``, a path (``str`` or ``os.PathLike``), a binary file
  object, an iterable of ``bytes`` or (async twins only) an async iterable;
- an HTTP response streamed by httpx or httpx2, or an SDK object that holds
  one: openai's and anthropic's ``Stream`` (``create(stream=True)``),
  anthropic's ``MessageStream``, ``with_streaming_response``'s response. Its
  bytes are folded, byte-exact, by ``streamfold.adapters.httpx`` (its errors,
  and an ``HTTPResult`` with the response's metadata). A context manager that
  gives one (anthropic's ``messages.stream(...)``) is entered and exited here;
- an iterable (or async iterable) of decoded events: dicts, or SDK model
  objects (google-genai's ``generate_content_stream``; boto3's
  ``EventStream`` of Bedrock members; chunks collected from any SDK): their
  wire JSON (``streamfold.decoded``). An exception the
  iterable raises ends in streamfold's errors when it is an HTTP status, a
  provider's in-band error or a transport failure (``adapters.sdks``).

The async twins also take the async forms (``AsyncStream``, an async
iterable, an ``async with`` manager, an awaitable of any of these).
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import IO, TYPE_CHECKING, Any, Final, Protocol, TypeAlias, overload

from ..decoded import DecodedEvent
from ..dialects.base import Dialect
from ..errors import UsageError
from ..events import Event
from ..parser import StreamParser
from ..result import HTTPResult, Result
from .sdks import closes_with_the_fold, failure_of, is_async, response_of

if TYPE_CHECKING:
    from .httpx import StreamedResponse

__all__ = [
    "AsyncSource",
    "SDKResponse",
    "SDKStream",
    "Source",
    "afold",
    "aiter_events",
    "fold",
    "iter_chunks",
    "iter_events",
]


class SDKStream(Protocol):
    """An SDK stream that holds its HTTP response: openai's and anthropic's
    ``Stream`` and ``AsyncStream``, anthropic's ``MessageStream``."""

    @property
    def response(self) -> StreamedResponse: ...


class SDKResponse(Protocol):
    """``with_streaming_response``'s response (openai, anthropic)."""

    @property
    def http_response(self) -> StreamedResponse: ...


_Held: TypeAlias = "StreamedResponse | SDKStream | SDKResponse"
Source: TypeAlias = (
    "bytes | bytearray | memoryview | str | os.PathLike[str] | IO[bytes] "
    "| Iterable[bytes | DecodedEvent] | _Held | AbstractContextManager[_Held]"
)
AsyncSource: TypeAlias = (
    "Source | AsyncIterable[bytes | DecodedEvent] | AbstractAsyncContextManager[_Held] "
    "| Awaitable[AsyncIterable[bytes | DecodedEvent] | _Held]"
)

READ_SIZE = 64 * 1024

# A str that is the stream's text, not a path: server-sent event fields, a
# comment, or a JSON body (after an optional byte-order mark and white space).
_STREAM_TEXT: Final = re.compile(r"\ufeff?[ \t\r\n]*(?:(?:data|event|id|retry):|:|\{|\[)")


def iter_chunks(source: Source) -> Iterator[bytes]:
    """The bytes of a source, in chunks.

    Raises:
        UsageError: the source is none of the accepted kinds, yields something
            other than bytes, or is a ``str`` holding the stream's text.
    """
    for chunk in _inputs(source):
        if not isinstance(chunk, bytes):
            raise UsageError(
                f"a source must yield bytes, not {type(chunk).__name__} "
                "(decode nothing: pass the raw bytes)"
            )
        yield chunk


def _inputs(source: Any) -> Iterator[Any]:
    # The bytes of a source in chunks, or its decoded events one by one.
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        with open(_path(source), "rb") as file:
            yield from _read(file)
    elif hasattr(source, "read"):
        yield from _read(source)
    elif isinstance(source, Iterable):
        for item in source:
            yield bytes(item) if isinstance(item, (bytearray, memoryview)) else item
    elif isinstance(source, AsyncIterable) or inspect.isawaitable(source):
        if inspect.iscoroutine(source):
            source.close()  # never to be awaited: no "never awaited" warning
        raise UsageError(f"a {type(source).__name__} is async: use afold or aiter_events")
    else:
        raise UsageError(f"cannot read a stream from a {type(source).__name__}")


def _path(source: str | os.PathLike[str]) -> str | os.PathLike[str]:
    if isinstance(source, str) and _STREAM_TEXT.match(source) and not os.path.exists(source):
        raise UsageError(
            "this str is the stream's text, not a path: pass its bytes "
            "(text.encode(), or the bytes as received, before any decoding)"
        )
    return source


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


# -- what a source is ----------------------------------------------------------------------


def _manager(source: Any, *, asynchronous: bool) -> bool:
    # A context manager that gives the stream (anthropic's messages.stream()):
    # not itself iterable, readable or holding a response.
    entered = hasattr(source, "__enter__") or (asynchronous and hasattr(source, "__aenter__"))
    return (
        entered
        and not hasattr(source, "read")
        and not isinstance(source, (Iterable, AsyncIterable))
        and response_of(source) is None
    )


def _sync_response(source: Any) -> StreamedResponse | None:
    response = response_of(source)
    if response is not None and is_async(response):
        raise UsageError(
            f"this {type(source).__name__} comes from an async client: use afold or aiter_events"
        )
    return response


def _async_response(source: Any) -> StreamedResponse | None:
    response = response_of(source)
    if response is not None and not is_async(response):
        raise UsageError(
            f"this {type(source).__name__} comes from a sync client: use fold or iter_events"
        )
    return response


# -- the twins -----------------------------------------------------------------------------


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
        StreamTimeoutError: an HTTP response's read timed out.
        HTTPResponseError: an HTTP response that is not a stream, or an SDK's
            error status raised while iterating.
        UsageError: a source of no known kind, or an async one.
    """
    if _manager(source, asynchronous=False):
        with source as entered:  # type: ignore[union-attr]
            yield from iter_events(
                entered,
                dialect,
                strict=strict,
                parse_arguments=parse_arguments,
                parse_content=parse_content,
                output_type=output_type,
                tool_types=tool_types,
            )
        return
    response = _sync_response(source)
    if response is not None:
        from .httpx import EventStream

        with EventStream(
            response,
            dialect,
            strict=strict,
            parse_arguments=parse_arguments,
            parse_content=parse_content,
            output_type=output_type,
            tool_types=tool_types,
        ) as stream:
            yield from stream
        return
    parser = StreamParser(
        dialect,
        strict=strict,
        parse_arguments=parse_arguments,
        parse_content=parse_content,
        output_type=output_type,
        tool_types=tool_types,
    )
    inputs = _inputs(source)
    try:
        while True:
            try:
                item = next(inputs)
            except StopIteration:
                break
            except Exception as exc:
                failure = failure_of(exc)
                if failure is None:
                    raise
                yield from failure.apply(parser)
                break
            yield from parser.feed(item)
            if parser.error is not None:
                raise parser.error
        yield from parser.close()
        if parser.error is not None:
            raise parser.error
    finally:
        _close(source)


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
    """The async twin of ``iter_events``: also takes the async sources
    (``AsyncStream``, an async iterable, an ``async with`` manager, an
    awaitable of one)."""
    if inspect.isawaitable(source):
        source = await source
    if _manager(source, asynchronous=True):
        async with source as entered:  # type: ignore[union-attr]
            async for event in aiter_events(
                entered,
                dialect,
                strict=strict,
                parse_arguments=parse_arguments,
                parse_content=parse_content,
                output_type=output_type,
                tool_types=tool_types,
            ):
                yield event
        return
    response = _async_response(source)
    if response is not None:
        from .httpx import AsyncEventStream

        async with AsyncEventStream(
            response,
            dialect,
            strict=strict,
            parse_arguments=parse_arguments,
            parse_content=parse_content,
            output_type=output_type,
            tool_types=tool_types,
        ) as stream:
            async for event in stream:
                yield event
        return
    parser = StreamParser(
        dialect,
        strict=strict,
        parse_arguments=parse_arguments,
        parse_content=parse_content,
        output_type=output_type,
        tool_types=tool_types,
    )
    inputs = _ainputs(source)
    try:
        while True:
            try:
                item = await inputs.__anext__()
            except StopAsyncIteration:
                break
            except Exception as exc:
                failure = failure_of(exc)
                if failure is None:
                    raise
                for event in failure.apply(parser):
                    yield event
                break
            for event in parser.feed(item):
                yield event
            if parser.error is not None:
                raise parser.error
        for event in parser.close():
            yield event
        if parser.error is not None:
            raise parser.error
    finally:
        await _aclose(source)


@overload
def fold(
    source: _Held | AbstractContextManager[_Held],
    dialect: str | type[Dialect] = ...,
    *,
    strict: bool = ...,
    checked: bool = ...,
    output_type: Any = ...,
    tool_types: Mapping[str, Any] | None = ...,
) -> HTTPResult: ...
@overload
def fold(
    source: Source,
    dialect: str | type[Dialect] = ...,
    *,
    strict: bool = ...,
    checked: bool = ...,
    output_type: Any = ...,
    tool_types: Mapping[str, Any] | None = ...,
) -> Result: ...
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
        The ``Result``: native response, unified view, usage, finish reason,
        warnings; an ``HTTPResult`` (with the response's metadata) for an
        HTTP response or an SDK stream.

    Raises:
        ProviderError: the stream carried a provider error (``.partial`` has the result so far).
        IncompleteStreamError: the stream ended early (``.partial`` too).
        ProtocolError: a malformed stream in strict mode.
        TruncatedResponseError: ``checked`` and the response was cut by length or a filter.
        StreamTimeoutError, HTTPResponseError, UsageError: as ``iter_events``.
        UnsupportedSchemaError: an output type ``streamfold.structured`` does not support.
    """
    types: dict[str, Any] = {"output_type": output_type, "tool_types": tool_types}
    if _manager(source, asynchronous=False):
        with source as entered:  # type: ignore[union-attr]
            return fold(entered, dialect, strict=strict, checked=checked, **types)
    response = _sync_response(source)
    if response is not None:
        from .httpx import EventStream

        with EventStream(response, dialect, strict=strict, **types) as stream:
            return stream.final(checked=checked)
    parser = StreamParser(dialect, strict=strict, events=False, **types)
    inputs = _inputs(source)
    try:
        while parser.error is None:
            try:
                item = next(inputs)
            except StopIteration:
                break
            except Exception as exc:
                failure = failure_of(exc)
                if failure is None:
                    raise
                failure.apply(parser)
                break
            parser.feed(item)
    finally:
        _close(source)
    parser.close()
    return parser.final(checked=checked)


@overload
async def afold(
    source: _Held | AbstractAsyncContextManager[_Held] | Awaitable[_Held],
    dialect: str | type[Dialect] = ...,
    *,
    strict: bool = ...,
    checked: bool = ...,
    output_type: Any = ...,
    tool_types: Mapping[str, Any] | None = ...,
) -> HTTPResult: ...
@overload
async def afold(
    source: AsyncSource,
    dialect: str | type[Dialect] = ...,
    *,
    strict: bool = ...,
    checked: bool = ...,
    output_type: Any = ...,
    tool_types: Mapping[str, Any] | None = ...,
) -> Result: ...
async def afold(
    source: AsyncSource,
    dialect: str | type[Dialect] = "auto",
    *,
    strict: bool = True,
    checked: bool = False,
    output_type: Any = None,
    tool_types: Mapping[str, Any] | None = None,
) -> Result:
    """The async twin of ``fold`` (the sources of ``aiter_events``)."""
    types: dict[str, Any] = {"output_type": output_type, "tool_types": tool_types}
    if inspect.isawaitable(source):
        source = await source
    if _manager(source, asynchronous=True):
        async with source as entered:  # type: ignore[union-attr]
            result: Result = await afold(entered, dialect, strict=strict, checked=checked, **types)
            return result
    response = _async_response(source)
    if response is not None:
        from .httpx import AsyncEventStream

        async with AsyncEventStream(response, dialect, strict=strict, **types) as stream:
            return await stream.final(checked=checked)
    parser = StreamParser(dialect, strict=strict, events=False, **types)
    inputs = _ainputs(source)
    try:
        while parser.error is None:
            try:
                item = await inputs.__anext__()
            except StopAsyncIteration:
                break
            except Exception as exc:
                failure = failure_of(exc)
                if failure is None:
                    raise
                failure.apply(parser)
                break
            parser.feed(item)
    finally:
        await _aclose(source)
    parser.close()
    return parser.final(checked=checked)


async def _ainputs(source: Any) -> AsyncIterator[Any]:
    if isinstance(source, AsyncIterable):
        async for item in source:
            yield bytes(item) if isinstance(item, (bytearray, memoryview)) else item
    else:
        for item in _inputs(source):
            yield item


def _close(source: object) -> None:
    # An iterator left early (a break, an error) is closed, and with it the
    # connection it holds (google-genai's generator, boto3's EventStream).
    if closes_with_the_fold(source):
        source.close()  # type: ignore[attr-defined]


async def _aclose(source: object) -> None:
    if inspect.isasyncgen(source):
        await source.aclose()
