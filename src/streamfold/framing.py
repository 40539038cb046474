"""How a body is framed, and the framings other than SSE, each producing the same
``ServerSentEvent`` objects.

- ``FramingSniff``: tells a body's framing from its first bytes (below).
- ``JSONArrayDecoder``: Gemini's ``streamGenerateContent`` without ``alt=sse``
  streams one JSON array, element by element; each element becomes an event.
- ``BodyDecoder``: a body that is one JSON object (an error envelope on HTTP
  200, or a gateway that answered without streaming) becomes one event.

Like the SSE decoder, every decoder here gives the same events and the same
error, message included, however its input was cut, holds one contiguous
buffer per event (so ``max_event_size`` bounds its memory), and strips one
leading byte-order mark with ``sse.ByteOrderMark``.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Final, NoReturn

from .errors import ProtocolError, shorten
from .sse import ByteOrderMark, ServerSentEvent

__all__ = ["BodyDecoder", "Framing", "FramingSniff", "JSONArrayDecoder"]

_STRUCTURE: Final = re.compile(rb'["\[\]{}]')
_IN_STRING: Final = re.compile(rb'["\\]')
_MEANINGFUL: Final = re.compile(rb"[^ \t\r\n]")  # not JSON white space
_EXCERPT: Final = 60


class Framing(Enum):
    """How a body is framed."""

    SSE = "sse"
    JSON_ARRAY = "json-array"  # a streamed JSON array: one event per element
    JSON_BODY = "json-body"  # one JSON document: one event at the end


class FramingSniff:
    """Tell a body's framing from its first meaningful byte, sans-IO.

    After one optional byte-order mark and JSON white space (space, tab, CR,
    LF), the first byte decides: ``[`` is a JSON array, ``{`` one JSON body,
    anything else SSE. A body that ends before such a byte (empty, blank, or a
    partial byte-order mark) is SSE: it holds no event in any framing.

    Until the framing is told, the bytes are held, all of them and as received
    (the mark and the white space included): they are not always droppable.
    In SSE, ``"  data: x"`` is a line whose field is ``"  data"``, not a data
    line, and leading blank lines count as lines. So the decoder chosen is fed
    ``head``, every byte received so far, exactly as if it had read the body
    from its start.

    The cost is linear in the bytes received: each byte is looked at once, and
    the held bytes are kept in one buffer. More than ``max_size`` bytes before
    the first meaningful one is a ``ProtocolError``, as an event larger than
    the limit is.

    Usage::

        sniff = FramingSniff(max_size)
        for chunk in body:
            framing = sniff.feed(chunk)
            if framing is not None:
                decoder = ...  # chosen by framing, then fed sniff.head, then the later chunks
                break
        else:
            framing = sniff.close()  # the body ended first

    Args:
        max_size: the most bytes held before the framing is told.
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.framing: Framing | None = None
        self.head = b""  # once told: every byte received, to feed the decoder
        self._held = bytearray()
        self._bom = ByteOrderMark()

    def feed(self, chunk: bytes) -> Framing | None:
        """Look at the next bytes of the body.

        Returns:
            The framing, once told (then ``head`` holds every byte received,
            this chunk included), or ``None`` while only white space came.

        Raises:
            ProtocolError: more than ``max_size`` bytes came before the first
                meaningful byte.
        """
        if self.framing is not None:
            return self.framing
        # Only the new bytes are searched; the mark's routine returns at most
        # two held bytes in front of them.
        rest = self._bom.strip(chunk) if not self._bom.settled else chunk
        match = _MEANINGFUL.search(rest)
        received = len(self._held) + len(chunk)
        # The bytes known to come before the first meaningful one, however the
        # body was cut (the first bytes of a possible mark are not known yet).
        if match is not None:
            leading = received - len(rest) + match.start()
        else:
            leading = received if self._bom.settled else 0
        if leading > self.max_size:
            self._held.clear()
            raise ProtocolError(
                f"the body starts with more than {self.max_size} bytes of white space",
                excerpt="",
                position=0,
            )
        if match is None:
            self._held += chunk
            return None
        self.head = b"".join((self._held, chunk)) if self._held else chunk
        self._held.clear()
        return self._tell(rest[match.start()])

    def close(self) -> Framing:
        """End of input before the framing was told.

        Returns:
            ``Framing.SSE``, with ``head`` holding every byte received.
        """
        if self.framing is not None:
            return self.framing
        self.head = bytes(self._held)
        self._held.clear()
        return self._tell(0)

    def _tell(self, first: int) -> Framing:
        if first == 91:  # [
            self.framing = Framing.JSON_ARRAY
        elif first == 123:  # {
            self.framing = Framing.JSON_BODY
        else:
            self.framing = Framing.SSE
        return self.framing


class JSONArrayDecoder:
    """Split a streamed top-level JSON array into one event per element.

    Scans each byte once: a regex jumps to the next quote, backslash or
    bracket, so the cost is linear in the bytes received. An element cut by
    the end of input comes out of ``close()`` as a last event flagged
    ``terminated=False``, as an SSE event without its closing blank line
    does: the parser tells a cut stream from a malformed one.

    Args:
        max_event_size: the largest element accepted, in bytes.
    """

    def __init__(self, max_event_size: int) -> None:
        self.max_event_size = max_event_size
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._element = bytearray()  # the element being read, from earlier chunks
        self._start: int | None = None  # where the element began in the current chunk
        self._opened = False
        self._ended = False
        self._bom = ByteOrderMark()
        self._seen = 0  # bytes received, byte-order mark included
        self._base = 0  # the offset in the body of the chunk being scanned
        self._error: ProtocolError | None = None  # raised again on every later call
        self.count = 0

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode the next bytes.

        An error found after elements that the same bytes completed is raised on
        the next call (``feed`` or ``close``), once those elements are returned:
        the events before an error never depend on where the input was cut.

        Raises:
            ProtocolError: bytes outside the array, or an element too large.
        """
        if self._error is not None:
            raise self._error
        self._seen += len(chunk)
        if not self._bom.settled:
            chunk = self._bom.strip(chunk)
            if not chunk:
                return []
        self._base = self._seen - len(chunk)
        events: list[ServerSentEvent] = []
        try:
            self._scan(chunk, events)
        except ProtocolError as error:
            self._error = error
            if not events:
                raise
        return events

    def close(self) -> list[ServerSentEvent]:
        """End of input. A missing ``]`` is no error here (the dialect decides
        whether the stream was complete).

        Returns:
            An element cut by the end of input, as an event flagged
            ``terminated=False``, or nothing.

        Raises:
            ProtocolError: an error held back by ``feed``, or the input was only
                a prefix of a byte-order mark (stray bytes).
        """
        if self._error is not None:
            raise self._error
        if not self._bom.settled:
            head = self._bom.close()
            self._base = self._seen - len(head)
            if head:
                self._between(head, 0)
        if not self._element:
            return []
        event = ServerSentEvent(bytes(self._element), index=self.count, terminated=False)
        self._element.clear()
        self.count += 1
        return [event]

    def _scan(self, chunk: bytes, events: list[ServerSentEvent]) -> None:
        pos = 0
        n = len(chunk)
        self._start = 0 if self._element else None
        while pos < n:
            if self._in_string:
                if self._escape:
                    self._escape = False
                    pos += 1
                    continue
                match = _IN_STRING.search(chunk, pos)
                if match is None:
                    break
                pos = match.start()
                if chunk[pos] == 92:  # backslash
                    self._escape = True
                else:
                    self._in_string = False
                pos += 1
                continue
            if self._depth <= 1:
                pos = self._between(chunk, pos)
                if pos >= n:
                    break
            match = _STRUCTURE.search(chunk, pos)
            if match is None:
                break
            pos = match.start()
            char = chunk[pos]
            if char == 34:  # quote
                self._in_string = True
            elif char in (91, 123):  # [ {
                self._depth += 1
            else:
                self._depth -= 1
                if self._depth == 1:
                    events.append(self._emit(chunk, pos + 1))
                elif self._depth == 0:
                    self._ended = True
            pos += 1
        if self._start is not None:
            self._element += memoryview(chunk)[self._start :]
            if len(self._element) > self.max_event_size:
                self._too_large(self._element)

    def _between(self, chunk: bytes, pos: int) -> int:
        # Outside any element: only the array's own brackets, commas and
        # whitespace may stand here.
        n = len(chunk)
        while pos < n:
            char = chunk[pos]
            if char in (32, 9, 10, 13, 44):  # whitespace and comma
                if self._depth == 0 and char == 44:
                    self._bad(chunk, pos)
                pos += 1
            elif char == 91 and self._depth == 0 and not self._opened:  # the array opens
                self._opened = True
                self._depth = 1
                pos += 1
            elif char == 93 and self._depth == 1:  # the array closes
                self._depth = 0
                self._ended = True
                pos += 1
            elif self._depth == 1 and char == 123:  # an element starts
                self._start = pos
                return pos
            else:
                self._bad(chunk, pos)
        return pos

    def _bad(self, chunk: bytes, pos: int) -> NoReturn:
        # Only the offending byte is quoted: the bytes after it may not have
        # arrived yet, and the message must not depend on where the input was cut.
        byte = chunk[pos : pos + 1]
        raise ProtocolError(
            f"unexpected bytes in a JSON array stream after element #{self.count}: "
            f"{byte!r} at byte {self._base + pos} of the body",
            excerpt=shorten(byte),
            position=self.count,
        )

    def _too_large(self, element: bytes | bytearray) -> NoReturn:
        # Every split has read more than the limit when this is raised: quote no more.
        head = bytes(element[: min(_EXCERPT, self.max_event_size + 1)])
        self._element.clear()
        raise ProtocolError(
            f"JSON array element #{self.count} is larger than the limit of "
            f"{self.max_event_size} bytes",
            excerpt=shorten(head, _EXCERPT),
            position=self.count,
        )

    def _emit(self, chunk: bytes, end: int) -> ServerSentEvent:
        start = self._start or 0
        if self._element:
            self._element += memoryview(chunk)[start:end]
            if len(self._element) > self.max_event_size:
                self._too_large(self._element)
            piece = bytes(self._element)
            self._element.clear()
        else:
            piece = chunk[start:end]
            if len(piece) > self.max_event_size:
                # Checked here too, so an element too large fails however it was cut.
                self._too_large(piece)
        self._start = None
        event = ServerSentEvent(piece, index=self.count)
        self.count += 1
        return event


class BodyDecoder:
    """A body that is one JSON document: one event at the end of input.

    Args:
        max_event_size: the largest body accepted, in bytes (a byte-order mark
            not counted).
    """

    def __init__(self, max_event_size: int) -> None:
        self.max_event_size = max_event_size
        self._body = bytearray()
        self._bom = ByteOrderMark()

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Keep the bytes until the end.

        Raises:
            ProtocolError: the body is larger than the limit.
        """
        if not self._bom.settled:
            chunk = self._bom.strip(chunk)
        self._body += chunk
        if len(self._body) > self.max_event_size:
            # Every split has read more than the limit here: quote no more.
            head = bytes(self._body[: min(_EXCERPT, self.max_event_size + 1)])
            self._body.clear()
            raise ProtocolError(
                f"the JSON body is larger than the limit of {self.max_event_size} bytes",
                excerpt=shorten(head, _EXCERPT),
                position=0,
            )
        return []

    def close(self) -> list[ServerSentEvent]:
        """The whole body, as one event (nothing when it is blank)."""
        body = (bytes(self._body) + self._bom.close()).strip()
        self._body.clear()
        return [ServerSentEvent(body, index=0, terminated=True)] if body else []
