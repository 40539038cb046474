"""Framings other than SSE, each producing the same ``ServerSentEvent`` objects.

- ``JSONArrayDecoder``: Gemini's ``streamGenerateContent`` without ``alt=sse``
  streams one JSON array, element by element; each element becomes an event.
- ``BodyDecoder``: a body that is one JSON object (an error envelope on HTTP
  200, or a gateway that answered without streaming) becomes one event.
"""

from __future__ import annotations

import re
from typing import Final

from .errors import ProtocolError, shorten
from .sse import ServerSentEvent

__all__ = ["BodyDecoder", "JSONArrayDecoder"]

_STRUCTURE: Final = re.compile(rb'["\[\]{}]')
_IN_STRING: Final = re.compile(rb'["\\]')
_BOM: Final = b"\xef\xbb\xbf"


class JSONArrayDecoder:
    """Split a streamed top-level JSON array into one event per element.

    Scans each byte once: a regex jumps to the next quote, backslash or
    bracket, so the cost is linear in the bytes received.

    Args:
        max_event_size: the largest element accepted, in bytes.
    """

    def __init__(self, max_event_size: int) -> None:
        self.max_event_size = max_event_size
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._pieces: list[bytes] = []  # the element being read, from earlier chunks
        self._size = 0
        self._start: int | None = None  # where the element began in the current chunk
        self._opened = False
        self._ended = False
        self._head = b""  # the first bytes, held while they may be a split byte-order mark
        self._bom_settled = False
        self._error: ProtocolError | None = None  # raised on the next call, see feed()
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
        if not self._bom_settled:
            chunk = self._strip_bom(chunk)
            if not chunk:
                return []
        events: list[ServerSentEvent] = []
        try:
            self._scan(chunk, events)
        except ProtocolError as error:
            if not events:
                raise
            self._error = error
        return events

    def close(self) -> list[ServerSentEvent]:
        """End of input: an unfinished element is an error; a missing ``]`` is not
        (the dialect decides whether the stream was complete).

        Raises:
            ProtocolError: the input ended inside an element, or an error held back
                by ``feed``.
        """
        if self._error is not None:
            raise self._error
        if not self._bom_settled:
            # The input was only a prefix of a byte-order mark: stray bytes.
            self._bom_settled = True
            head, self._head = self._head, b""
            if head:
                self._between(head, 0)
        if self._pieces and b"".join(self._pieces).strip():
            excerpt = shorten(b"".join(self._pieces)[:80], 80)
            raise ProtocolError(
                f"the stream ended inside JSON array element #{self.count}: {excerpt!r}",
                excerpt=excerpt,
                position=self.count,
            )
        return []

    def _strip_bom(self, chunk: bytes) -> bytes:
        head = self._head + chunk
        if len(head) < 3 and _BOM.startswith(head):
            self._head = head
            return b""
        self._bom_settled = True
        self._head = b""
        return head[3:] if head.startswith(_BOM) else head

    def _scan(self, chunk: bytes, events: list[ServerSentEvent]) -> None:
        pos = 0
        n = len(chunk)
        self._start = 0 if self._pieces else None
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
            piece = chunk[self._start :]
            self._pieces.append(piece)
            self._size += len(piece)
            if self._size > self.max_event_size:
                self._too_large(self._pieces[0])

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

    def _bad(self, chunk: bytes, pos: int) -> None:
        raise ProtocolError(
            f"unexpected bytes in a JSON array stream after element #{self.count}: "
            f"{shorten(chunk[pos : pos + 60], 60)!r}",
            excerpt=shorten(chunk[pos : pos + 60], 60),
            position=self.count,
        )

    def _too_large(self, head: bytes) -> None:
        raise ProtocolError(
            f"JSON array element #{self.count} is larger than the limit of "
            f"{self.max_event_size} bytes",
            excerpt=shorten(head[:60], 60),
            position=self.count,
        )

    def _emit(self, chunk: bytes, end: int) -> ServerSentEvent:
        start = self._start or 0
        piece = chunk[start:end]
        if self._size + len(piece) > self.max_event_size:
            # Checked here too, so an element too large fails however it was cut.
            self._too_large(self._pieces[0] if self._pieces else piece)
        if self._pieces:
            self._pieces.append(piece)
            piece = b"".join(self._pieces)
            self._pieces.clear()
        self._size = 0
        self._start = None
        event = ServerSentEvent(piece, index=self.count)
        self.count += 1
        return event


class BodyDecoder:
    """A body that is one JSON document: one event at the end of input.

    Args:
        max_event_size: the largest body accepted, in bytes.
    """

    def __init__(self, max_event_size: int) -> None:
        self.max_event_size = max_event_size
        self._pieces: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Keep the bytes until the end.

        Raises:
            ProtocolError: the body is larger than the limit.
        """
        self._pieces.append(chunk)
        self._size += len(chunk)
        if self._size > self.max_event_size:
            raise ProtocolError(
                f"the JSON body is larger than the limit of {self.max_event_size} bytes",
                excerpt=shorten(self._pieces[0][:60], 60),
                position=0,
            )
        return []

    def close(self) -> list[ServerSentEvent]:
        """The whole body, as one event."""
        body = b"".join(self._pieces).strip()
        if body.startswith(b"\xef\xbb\xbf"):
            body = body[3:].lstrip()
        self._pieces.clear()
        return [ServerSentEvent(body, index=0, terminated=True)] if body else []
