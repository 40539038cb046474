"""How a body is framed, and the framings other than SSE, each producing the same
``ServerSentEvent`` objects.

- ``FramingSniff``: tells a body's framing from its first bytes (below).
- ``JSONArrayDecoder``: Gemini's ``streamGenerateContent`` without ``alt=sse``
  streams one JSON array, element by element; each element becomes an event.
- ``JSONSequenceDecoder``: top-level JSON objects one after another, separated
  by white space: newline-delimited JSON (Ollama's ``/api/chat`` and
  ``/api/generate``) and, as the case of one, a body that is one JSON document
  (an error envelope on HTTP 200, or a gateway that answered without
  streaming). Each object becomes an event as soon as it closes.
- ``eventstream.EventStreamDecoder`` (a module of its own): the binary AWS
  event-stream (``application/vnd.amazon.eventstream``), one event per message.

Like the SSE decoder, every decoder here gives the same events and the same
error, message included, however its input was cut, holds one contiguous
buffer per event (so ``max_event_size`` bounds its memory), and strips one
leading byte-order mark with ``sse.ByteOrderMark`` (the event-stream, binary,
has none).

``ndjson`` writes the newline-delimited form, for the replay server and tests.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from enum import Enum
from itertools import repeat
from typing import ClassVar, Final, NoReturn

import msgspec

from .errors import ProtocolError, shorten
from .sse import ByteOrderMark, ServerSentEvent

__all__ = ["Framing", "FramingSniff", "JSONArrayDecoder", "JSONSequenceDecoder", "ndjson"]

_STRUCTURE: Final = re.compile(rb'["\[\]{}]')
_IN_STRING: Final = re.compile(rb'["\\]')
_MEANINGFUL: Final = re.compile(rb"[^ \t\r\n]")  # not JSON white space
_EXCERPT: Final = 60


class Framing(Enum):
    """How a body is framed."""

    SSE = "sse"
    JSON_ARRAY = "json-array"  # a streamed JSON array: one event per element
    JSON_SEQUENCE = "json-sequence"  # JSON objects one after another (NDJSON): one event each
    EVENT_STREAM = "event-stream"  # AWS event-stream binary messages: one event each


class FramingSniff:
    """Tell a body's framing from its first meaningful byte, sans-IO.

    After one optional byte-order mark and JSON white space (space, tab, CR,
    LF), the first byte decides: ``[`` is a JSON array, ``{`` a sequence of
    JSON objects (one, or newline-delimited), a byte below 0x09 an AWS
    event-stream (its first byte is the high byte of a message's 32-bit
    length: 0 for any message under 16 MiB; no text starts with a control
    byte), anything else SSE. A body that ends before such a byte (empty,
    blank, or a partial byte-order mark) is SSE: it holds no event in any
    framing.

    Until the framing is told, the bytes of the last line are held as received
    (the mark and the white space included): they are not droppable. In SSE,
    ``"  data: x"`` is a line whose field is ``"  data"``, not a data line. The
    whole lines before it are: a line of white space is no field in SSE (and a
    blank one dispatches no event), and JSON skips white space. So the decoder
    chosen is fed ``head``, the bytes of the body from the start of the line
    that holds the first meaningful byte, and reads them as it would the whole
    body; a blank prefix of any length holds no memory.

    The cost is linear in the bytes received: each byte is looked at once.
    More than ``max_size`` bytes before the first meaningful one is a
    ``ProtocolError``, as an event larger than the limit is.

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
        self.head = b""  # once told: the bytes to feed the decoder
        self._held = bytearray()  # the last line's bytes until the framing is told
        self._dropped = 0  # the bytes of the whole lines of white space before it
        self._bom = ByteOrderMark()

    def feed(self, chunk: bytes) -> Framing | None:
        """Look at the next bytes of the body.

        Returns:
            The framing, once told (then ``head`` holds the bytes to feed the
            decoder, this chunk's included), or ``None`` while only white space
            came.

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
        received = self._dropped + len(self._held) + len(chunk)
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
            # Only white space: keep the bytes after the last line end (a lone
            # CR ends a line too; the LF after it is then a blank line).
            end = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
            if end < 0:
                self._held += chunk
            else:
                self._dropped += len(self._held) + end + 1
                self._held[:] = chunk[end + 1 :]
            return None
        data = b"".join((self._held, chunk)) if self._held else chunk
        self._held.clear()
        # From the last line end before the first meaningful byte, after one
        # LF standing for the lines dropped: the same bytes however the body
        # was cut, and never read as the body's start (no mark stripped there).
        first = leading - self._dropped
        end = max(data.rfind(b"\n", 0, first), data.rfind(b"\r", 0, first))
        if end >= 0 or self._dropped:
            data = b"\n" + data[end + 1 :]
        self.head = data
        return self._tell(rest[match.start()])

    def close(self) -> Framing:
        """End of input before the framing was told.

        Returns:
            ``Framing.SSE``, with ``head`` holding the bytes of the last line
            (after an LF if lines were dropped).
        """
        if self.framing is not None:
            return self.framing
        self.head = (b"\n" if self._dropped else b"") + self._held
        self._held.clear()
        return self._tell(None)

    def _tell(self, first: int | None) -> Framing:
        if first == 91:  # [
            self.framing = Framing.JSON_ARRAY
        elif first == 123:  # {
            self.framing = Framing.JSON_SEQUENCE
        elif first is not None and first < 9:  # NUL to BS: a binary length
            self.framing = Framing.EVENT_STREAM
        else:
            self.framing = Framing.SSE
        return self.framing


class _JSONValues:
    """Split a body of top-level JSON values into one event per value: the
    scanner that ``JSONArrayDecoder`` and ``JSONSequenceDecoder`` share. They
    differ only in what may stand between the values (``_between``) and at
    which depth the values sit (``_level``).

    Scans each byte once: a regex jumps to the next quote, backslash or
    bracket, so the cost is linear in the bytes received. A value cut by the
    end of input comes out of ``close()`` as a last event flagged
    ``terminated=False``, as an SSE event without its closing blank line
    does: the parser tells a cut stream from a malformed one.

    Args:
        max_event_size: the largest value accepted, in bytes.
    """

    _level: ClassVar[int]  # the depth of the values: 1 inside an array, 0 at the top
    _value: ClassVar[str]  # what a value is called in errors ("JSON array element")
    _item: ClassVar[str]  # and for short ("element")
    _body: ClassVar[str]  # what the body is called in errors

    def __init__(self, max_event_size: int) -> None:
        self.max_event_size = max_event_size
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._element = bytearray()  # the value being read, from earlier chunks
        self._start: int | None = None  # where the value began in the current chunk
        self._opened = False
        self._ended = False
        self._bom = ByteOrderMark()
        self._seen = 0  # bytes received, byte-order mark included
        self._base = 0  # the offset in the body of the chunk being scanned
        self._error: ProtocolError | None = None  # raised again on every later call
        self.count = 0

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode the next bytes.

        An error found after values that the same bytes completed is raised on
        the next call (``feed`` or ``close``), once those values are returned:
        the events before an error never depend on where the input was cut.

        Raises:
            ProtocolError: bytes outside the values, or a value too large.
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
            A value cut by the end of input, as an event flagged
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
                self._between(head, 0, [])
        if not self._element:
            return []
        event = ServerSentEvent(bytes(self._element), index=self.count, terminated=False)
        self._element.clear()
        self.count += 1
        return [event]

    def _scan(self, chunk: bytes, events: list[ServerSentEvent]) -> None:
        pos = 0
        n = len(chunk)
        level = self._level
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
            if self._depth <= level:
                pos = self._between(chunk, pos, events)
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
                if self._depth == level:
                    events.append(self._emit(chunk, pos + 1))
            pos += 1
        if self._start is not None:
            self._element += memoryview(chunk)[self._start :]
            if len(self._element) > self.max_event_size:
                self._too_large(self._element)

    def _between(self, chunk: bytes, pos: int, events: list[ServerSentEvent]) -> int:
        """Skip what stands between values from ``pos``; return where a value
        starts (setting ``_start``), or the end of the chunk. A subclass may
        hand over whole values it finds on the way, in ``events``."""
        raise NotImplementedError

    def _bad(self, chunk: bytes, pos: int) -> NoReturn:
        # Only the offending byte is quoted: the bytes after it may not have
        # arrived yet, and the message must not depend on where the input was cut.
        byte = chunk[pos : pos + 1]
        raise ProtocolError(
            f"unexpected bytes in {self._body} after {self._item} #{self.count}: "
            f"{byte!r} at byte {self._base + pos} of the body",
            excerpt=shorten(byte),
            position=self.count,
        )

    def _too_large(self, element: bytes | bytearray) -> NoReturn:
        # Every split has read more than the limit when this is raised: quote no more.
        head = bytes(element[: min(_EXCERPT, self.max_event_size + 1)])
        self._element.clear()
        raise ProtocolError(
            f"{self._value} #{self.count} is larger than the limit of {self.max_event_size} bytes",
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
                # Checked here too, so a value too large fails however it was cut.
                self._too_large(piece)
        self._start = None
        event = ServerSentEvent(piece, index=self.count)
        self.count += 1
        return event


class JSONArrayDecoder(_JSONValues):
    """Split a streamed top-level JSON array into one event per element (an
    object); white space and commas may stand between them.

    Args:
        max_event_size: the largest element accepted, in bytes.
    """

    _level = 1
    _value = "JSON array element"
    _item = "element"
    _body = "a JSON array stream"

    def _between(self, chunk: bytes, pos: int, events: list[ServerSentEvent]) -> int:
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


class JSONSequenceDecoder(_JSONValues):
    """Split a body of top-level JSON objects, separated by JSON white space,
    into one event per object, each as soon as it closes: newline-delimited
    JSON (``application/x-ndjson``; a line may hold a pretty-printed object's
    line ends, and objects need not be on lines of their own), and a body that
    is one JSON document. Anything else between the objects is a
    ``ProtocolError``.

    NDJSON is read a line at a time where it can be: a read's whole lines
    that each hold one object are checked in bulk, at C speed, and a line cut
    by the end of a read is held unscanned until the rest comes. Anything else
    is scanned byte by byte; both give the same events and errors.

    A consumer that decodes each line anyway (the parser's typed paths) can
    spare the check: with ``validate=False`` those lines are handed over
    unchecked, white space around their object included, and the consumer
    calls ``verify`` on each event of a read, before the next call, that it
    does not decode as exactly one JSON value (a typed msgspec decode is
    one). A line that is not exactly the validating decoder's event goes
    back to the scanner from there on, so the events and errors are that
    decoder's all the same, but for the white space around the lines that
    were decoded.

    Args:
        max_event_size: the largest object accepted, in bytes.
        validate: check the lines read in bulk (the default); ``False`` leaves
            that to the consumer (``verify``).
    """

    _level = 0
    _value = "JSON value"
    _item = "value"
    _body = "a body of JSON values"

    def __init__(self, max_event_size: int, *, validate: bool = True) -> None:
        super().__init__(max_event_size)
        # The start of a value held in ``_element`` without being scanned (see _hold).
        self._unscanned = False
        self._validating = validate
        # The last read's lines handed over unchecked: (their first event's
        # index, their count, the chunk, its offset in the body, the line
        # list, where the first one starts).
        self._unchecked: list[tuple[int, int, bytes, int, list[bytes], int]] = []

    def verify(self, events: list[ServerSentEvent], i: int) -> bool:
        """Make ``events[i]``, of the list the last ``feed`` returned, an
        event a validating decoder gives. Called in order, on each event that
        the consumer did not decode as exactly one JSON value, before it
        uses it; a no-op on a validating decoder.

        Returns:
            ``True`` when ``events[i]`` was handed over unchecked and is not
            the validating decoder's event (one JSON object, no white space
            around it): ``events[i:]`` are then replaced, in place, by what
            the validating decoder gives from its line on.

        Raises:
            ProtocolError: the scanner's error, when no event comes before it
                in this read (``feed`` would have raised it); otherwise it is
                held, as ``feed`` holds it, for the next call.
        """
        if not self._unchecked:
            return False
        index = events[i].index
        batch = next((b for b in self._unchecked if b[0] <= index < b[0] + b[1]), None)
        if batch is None:
            return False
        first, _, chunk, base, lines, start = batch
        raw = events[i].raw
        if raw[:1] == b"{" and raw[-1:] == b"}":  # no white space around it
            try:
                _validate(raw)
            except (msgspec.DecodeError, RecursionError):
                pass
            else:
                return False
        # Rewind to the start of the line: between values, nothing held (as
        # _between found it), and scan the rest of the chunk as the
        # validating decoder would have from there.
        line = index - first
        pos = start + sum(map(len, lines[:line])) + line
        self._unchecked.clear()  # the batches before it are read, the later ones rescanned
        self._depth = 0
        self._in_string = self._escape = self._unscanned = False
        self._element.clear()
        self._error = None
        self.count = index
        self._base = base + pos
        rest: list[ServerSentEvent] = []
        self._validating = True
        try:
            self._scan(chunk[pos:], rest)
        except ProtocolError as error:
            self._error = error
            if not i and not rest:
                del events[i:]
                raise
        finally:
            self._validating = False
        events[i:] = rest
        return True

    def _scan(self, chunk: bytes, events: list[ServerSentEvent]) -> None:
        if self._unchecked:
            self._unchecked.clear()  # the last read's: verified by now
        if self._unscanned:
            held = self._element
            if _closes(chunk, 0) or len(held) + len(chunk) > self.max_event_size:
                # Scan the held start of the value with these bytes, as if the
                # input had been cut before it: the same events and errors.
                self._unscanned = False
                self._base -= len(held)
                chunk = bytes(held) + chunk
                held.clear()
            else:
                held += chunk
                return
        super()._scan(chunk, events)

    def _between(self, chunk: bytes, pos: int, events: list[ServerSentEvent]) -> int:
        n = len(chunk)
        while pos < n:
            char = chunk[pos]
            if char in (32, 9, 10, 13):  # whitespace
                pos += 1
            elif char == 123:  # an object starts
                end = chunk.rfind(b"\n")
                if end > pos:
                    start = pos
                    pos = self._whole_lines(chunk, pos, end, events)
                    if pos != start:
                        continue
                elif not _closes(chunk, pos) and n - pos <= self.max_event_size:
                    return self._hold(chunk, pos)
                self._start = pos
                return pos
            else:
                self._bad(chunk, pos)
        return pos

    def _hold(self, chunk: bytes, pos: int) -> int:
        # The value that starts at `pos` runs to the chunk's end, and nothing
        # there can close it (no "}" nor "]", which the scanner would take for
        # its end): it is held unscanned, so the line it starts is read whole
        # with the next bytes (by _whole_lines, at C speed) instead of scanned
        # here and there. Nothing in it could be an event or an error before
        # then: it is all inside the value. Returns the chunk's end.
        self._element += memoryview(chunk)[pos:]
        self._unscanned = True
        return len(chunk)

    def _whole_lines(self, chunk: bytes, pos: int, end: int, events: list[ServerSentEvent]) -> int:
        # The fast path: each line from `pos` (up to the chunk's last LF, `end`)
        # that holds exactly one object (as every NDJSON line does) is that
        # object, checked by msgspec at C speed (its syntax, without building
        # it; trailing bytes refused) instead of scanned, or left unchecked to
        # the consumer's decode (see verify). Returns where the first other
        # line starts: the scanner takes it from there. The scanner would give
        # the same events, so the split of the input changes nothing.
        block = chunk[pos:end]
        lines = block.split(b"\n")
        count = self.count
        breaks = len(lines) - 1
        validating = self._validating
        # The common read, in bulk (no Python step per line): none is larger
        # than the limit, every line starts with "{" and ends with "}" (so has
        # no white space around its object: the lines are the events as they
        # are), and each is one valid JSON value. Unchecked, the lines are
        # handed over as they are, and verify checks all that: the count of
        # "}\n{" is 9% of Ollama's fold.
        if len(block) <= self.max_event_size and (
            not validating or (block[-1] == 125 and block.count(b"}\n{") == breaks)
        ):
            try:
                if validating:
                    _consume(map(_validate, lines))
            except (msgspec.DecodeError, RecursionError):
                pass
            else:
                if not validating:
                    self._unchecked.append((count, breaks + 1, chunk, self._base, lines, pos))
                events.extend(
                    map(
                        ServerSentEvent,
                        lines,
                        _MESSAGES,
                        _NONES,
                        _NONES,
                        range(count, count + breaks + 1),
                    )
                )
                self.count = count + breaks + 1
                return end
        # Line by line, up to the first line that is not one object.
        limit = self.max_event_size
        append = events.append
        first, start = count, pos
        try:
            for line in lines:
                if line[:1] != b"{":
                    break
                piece = line.rstrip(b" \t\r")
                if len(piece) > limit:
                    break
                if validating:
                    _validate(piece)
                append(ServerSentEvent(piece, _MESSAGE, None, None, count))
                count += 1
                pos += len(line) + 1
        except (msgspec.DecodeError, RecursionError):
            pass
        if not validating and count != first:
            self._unchecked.append((first, count - first, chunk, self._base, lines, start))
        self.count = count
        return pos


_validate: Final = msgspec.json.Decoder(msgspec.Raw).decode
_MESSAGE: Final = "message"  # an event's type when the framing names none
_MESSAGES: Final = repeat(_MESSAGE)
_NONES: Final = repeat(None)


def _closes(chunk: bytes, pos: int) -> bool:
    # Whether a byte from `pos` on may close a value: the scanner counts
    # both "}" and "]".
    return chunk.find(b"}", pos) >= 0 or chunk.find(b"]", pos) >= 0


def _consume(values: Iterable[object]) -> None:
    # Run an iterator to its end at C speed, keeping nothing.
    deque(values, maxlen=0)


def ndjson(payloads: Iterable[bytes]) -> bytes:
    """Newline-delimited JSON: each payload (one JSON object, without line
    ends of its own) followed by ``\n``."""
    return b"".join(payload + b"\n" for payload in payloads)
