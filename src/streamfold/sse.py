"""Server-sent events, decoded incrementally exactly as the WHATWG HTML spec says.

Bytes in, events out; nothing here knows of JSON or providers. The rules
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):

- lines end in CRLF, LF or CR; a CR at the end of one chunk and an LF at the
  start of the next are one line end;
- one leading byte-order mark is stripped, even when split across chunks;
- a line starting with ``:`` is a comment and is ignored;
- ``field:value`` with one leading space of the value removed (no more), or a
  bare ``field`` with an empty value;
- ``data`` lines are joined with LF; ``event`` sets the type of the next event
  (``"message"`` when unset); ``id`` sets the last event id (kept across
  events, ignored when it holds NUL); ``retry`` takes ASCII digits only;
  any other field is ignored;
- a blank line dispatches the event, unless its data buffer is empty;
- text is UTF-8, invalid sequences replaced by U+FFFD. Lines are split on bytes
  (CR and LF never occur inside a multi-byte sequence), so characters split
  across chunks decode correctly.

Two departures, both on purpose: at end of stream a last event with data but
no closing blank line is dispatched (many real recordings end that way) and
flagged with ``terminated=False``; and an event larger than ``max_event_size``
raises ``ProtocolError`` instead of growing memory without bound.

The size of an event is the number of bytes of its lines as received, each line
counting its bytes plus one for its end: every line from the one after the
previous blank line (or the start of the stream) up to its own blank line,
comments, field names and values alike. A line still being received counts as
if it ended there, so the error comes as soon as the limit is crossed, and at
the same line however the input was cut. The data buffer and the line being
read are each one contiguous buffer: the memory an event holds is about its
size, however many lines it has.

Every split of the input gives the same events and the same error, with the
same message and excerpt. The fast path (an event that is one ``data:`` line,
optionally after one ``event:`` line with a type) takes only shapes the general
line rules read the same way, and shares their size, defaults and type-name
lookup; anything else (an empty type, a CR, more lines) goes by the general
rules.
"""

from __future__ import annotations

from typing import Final, NoReturn

import msgspec

from .errors import ProtocolError, shorten

__all__ = ["BOM", "DEFAULT_MAX_EVENT_SIZE", "ByteOrderMark", "SSEDecoder", "ServerSentEvent"]

DEFAULT_MAX_EVENT_SIZE: Final = 16 * 1024 * 1024
BOM: Final = b"\xef\xbb\xbf"
# The most bytes split into lines at once: a huge chunk is decoded in windows,
# so the lists of lines it makes stay small (the result is the same, since no
# split changes it).
_WINDOW: Final = 64 * 1024
_NAMES_KEPT: Final = 64  # event type names remembered decoded (a stream uses a handful)
_DEFAULT_TYPE: Final = "message"  # the type of an event whose type buffer is empty


class ServerSentEvent(msgspec.Struct, gc=False):
    """One dispatched server-sent event.

    Attributes:
        raw: the data lines joined with LF, as the UTF-8 bytes received.
        event: the event type (``"message"`` when the stream gave none).
        id: the last event id in force when the event was dispatched, or ``None``.
        retry: the reconnection time in milliseconds, when this event set one.
        index: the 0-based number of this event in the stream.
        terminated: ``False`` when the stream ended before the closing blank line.
        event_set: whether the stream named the type with an ``event:`` field.
    """

    raw: bytes
    event: str = "message"
    id: str | None = None
    retry: int | None = None
    index: int = 0
    terminated: bool = True
    event_set: bool = False

    @property
    def data(self) -> str:
        """The data as text (invalid UTF-8 replaced by U+FFFD, as the spec says)."""
        return self.raw.decode("utf-8", "replace")


class ByteOrderMark:
    """Strip one leading UTF-8 byte-order mark from input fed in chunks.

    The one place that knows the mark: the SSE decoder, the JSON framings and the
    framing sniff all use it. The mark may be split across the first chunks: its
    first bytes are held until the next ones settle the question.
    """

    __slots__ = ("_head", "settled")

    def __init__(self) -> None:
        self._head = b""  # the first bytes, while they may be the start of the mark
        self.settled = False  # the mark was stripped, or the input does not start with one

    def strip(self, chunk: bytes) -> bytes:
        """Return the bytes of ``chunk`` that follow the mark.

        Returns ``b""`` while the input so far is a prefix of the mark; bytes
        held that turn out not to be the mark come back in front of the next
        chunk. Once ``settled``, the caller passes chunks on without calling this.
        """
        head = self._head + chunk
        if len(head) < 3 and BOM.startswith(head):
            self._head = head
            return b""
        self.settled = True
        self._head = b""
        return head[3:] if head.startswith(BOM) else head

    def close(self) -> bytes:
        """End of input: the bytes held (the input ended inside what could have
        been the mark, so they are not one), or ``b""``."""
        self.settled = True
        head, self._head = self._head, b""
        return head


class SSEDecoder:
    """Incremental server-sent events decoder: ``feed(bytes) -> list[ServerSentEvent]``.

    Args:
        max_event_size: the largest event, in bytes, before ``ProtocolError`` is
            raised (what counts is in the module docstring).
    """

    def __init__(self, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        self.max_event_size = max_event_size
        self._pending = bytearray()  # the current line, not yet ended
        # The lines of an event begun late in the last chunk, not decoded yet
        # (see _blocks): the next chunk is read as if it began with them.
        self._unread = b""
        self._skip_lf = False  # the last chunk ended in CR: a leading LF is not a new line
        self._bom = ByteOrderMark()
        self._size = 0  # the size of the current event's ended lines
        # The spec's data buffer, in two parts: the first data line's value, and
        # the others each after an LF, in one buffer (never a list of pieces).
        self._first: bytes | None = None
        self._data = bytearray()
        self._event = b""
        self._retry: int | None = None
        self.last_event_id: str | None = None
        # The stream's reconnection time (ms) as the last `retry` field set it,
        # whether or not its block dispatched an event (the spec's rule).
        self.reconnection_time: int | None = None
        self.count = 0  # events dispatched so far
        self.bytes_seen = 0
        self.comments = 0
        self._names: dict[bytes, str] = {}  # event type names, decoded once
        # The head of the last event of one of _blocks' shapes (`data: `, or
        # `event: <type>\ndata: `), its type and whether the type was named:
        # a stream repeats its shape, so one startswith() recognises the next.
        self._head = b"data: "
        self._head_name = _DEFAULT_TYPE
        self._head_set = False
        self._error: ProtocolError | None = None  # raised again on every later call

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode the next chunk of bytes.

        An error found after events that the same chunk completed is raised on
        the next call (``feed`` or ``close``), once those events are returned:
        the events before an error never depend on where the input was cut.

        Returns:
            The events completed by this chunk, in order.

        Raises:
            ProtocolError: an event is larger than ``max_event_size``.
        """
        if self._error is not None:
            raise self._error
        unread = self._unread
        if unread:
            self._unread = b""
            self.bytes_seen -= len(unread)  # seen once
            chunk = unread + chunk
        if len(chunk) > _WINDOW:
            return self._feed_windows(chunk)
        self.bytes_seen += len(chunk)
        events: list[ServerSentEvent] = []
        try:
            if not self._bom.settled:
                chunk = self._bom.strip(chunk)
            if not chunk:
                return events
            if self._skip_lf:
                self._skip_lf = False
                if chunk[0] == 10:
                    chunk = chunk[1:]
                    if not chunk:
                        return events
            last_lf = chunk.rfind(b"\n")
            last_cr = chunk.rfind(b"\r")
            end = last_lf if last_lf > last_cr else last_cr
            if end < 0:
                self._hold(chunk)
                return events
            rest = b""
            if end == len(chunk) - 1:
                complete = chunk
                self._skip_lf = last_cr == end
            else:
                complete = chunk[: end + 1]
                rest = chunk[end + 1 :]
            if self._pending:
                complete = b"".join((self._pending, complete))
                self._pending.clear()
            if last_cr < 0:
                if self._blocks(complete, rest, events):
                    return events  # the rest is unread too
            else:
                self._lines(complete.splitlines(), events)
            if rest:
                self._hold(rest)
        except ProtocolError as error:
            self._error = error
            if not events:
                raise
        return events

    def close(self) -> list[ServerSentEvent]:
        """End of stream: dispatch a last event that had no closing blank line.

        Returns:
            That event, flagged ``terminated=False``, or nothing.

        Raises:
            ProtocolError: an event is larger than ``max_event_size``.
        """
        if self._error is not None:
            raise self._error
        events: list[ServerSentEvent] = []
        try:
            if self._unread:
                events += self.feed(b"")  # an event's lines without their end: none
                if self._error is not None:
                    raise self._error
            if not self._bom.settled:
                head = self._bom.close()
                if head:
                    self._hold(head)
            if self._pending:
                line = bytes(self._pending)
                self._pending.clear()
                self._lines([line], events)
        except ProtocolError as error:
            self._error = error
            raise
        if self._first is not None:
            events.append(self._dispatch(self._first, terminated=False))
        self._reset_event()
        return events

    # -- internals -------------------------------------------------------------

    def _feed_windows(self, chunk: bytes) -> list[ServerSentEvent]:
        # A huge chunk, decoded a window at a time: the lists of lines it makes
        # stay small, and no split changes the result.
        events: list[ServerSentEvent] = []
        for start in range(0, len(chunk), _WINDOW):
            try:
                events += self.feed(chunk[start : start + _WINDOW])
            except ProtocolError:
                if not events:
                    raise
                break  # held: raised again on the next call
        return events

    def _hold(self, piece: bytes) -> None:
        pending = self._pending
        pending += piece
        # The line counts as if it ended here: its end can only add to the size.
        if self._size + len(pending) >= self.max_event_size:
            self._too_large(pending)

    def _too_large(self, line: bytes | bytearray) -> NoReturn:
        # `line` crossed the limit. Every split of the input has read at least
        # `known` bytes of it when the error is raised, so only those are quoted:
        # the message never depends on where the input was cut.
        known = max(1, self.max_event_size - self._size)
        data = b"" if self._first is None else (self._first[:60] + self._data[:60])[:60] + b"\n"
        excerpt = shorten((data + line[: min(known, 60)])[:60], 60)
        self._pending.clear()
        self._reset_event()
        raise ProtocolError(
            f"server-sent event #{self.count} is larger than the limit of "
            f"{self.max_event_size} bytes (starts with {excerpt!r})",
            excerpt=excerpt,
            position=self.count,
        )

    def _blocks(self, complete: bytes, rest: bytes, events: list[ServerSentEvent]) -> bool:
        # The common LF-only case, split at blank lines. An event that is one
        # `data: ` line, optionally after one `event: ` line with a type, is
        # recognised by its shape and built here (a call to build each event
        # costs 5 to 7% of the decoding), with the defaults of every field it
        # does not set and the one lookup of type names; the general rules
        # take everything else, an empty type included. A block of n bytes is
        # n + 1 in size (its last LF). A block that starts with the last typed
        # event's head is recognised by one startswith (10,000 Anthropic
        # events: 7.9 ms -> 5.4 ms of decoding), tested first: a stream's
        # events have one shape (10,000 Responses events: 166 -> 160
        # bytecodes each, Chat's 3 more).
        parts = complete.split(b"\n\n")
        last = parts.pop()  # complete ends in LF: this is "" or lines not yet closed
        if parts and self._size:
            # Only the first block can continue an event begun in an earlier
            # read: every later one follows a blank line.
            self._block(parts[0], events)
            parts[0] = b""  # done: skipped below as a blank line
        if len(complete) >= self.max_event_size:
            # A block may pass the limit (a read this large is rare): every one
            # by the general rules, which measure each line.
            for part in parts:
                if part:
                    self._block(part, events)
            parts = []
        names = self._names
        append = events.append
        default = _DEFAULT_TYPE
        # Locals while no general rule runs (they are written back around it).
        count = self.count
        last_id = self.last_event_id
        head, head_name, head_set = self._head, self._head_name, self._head_set
        data_at = len(head)
        for part in parts:
            if part.startswith(head):
                if part.find(b"\n", data_at) < 0:
                    append(
                        ServerSentEvent(
                            part[data_at:], head_name, last_id, None, count, True, head_set
                        )
                    )
                    count += 1
                    continue
            elif part.startswith(b"data: "):
                if part.find(b"\n") < 0:
                    head, head_name, head_set, data_at = b"data: ", default, False, 6
                    append(ServerSentEvent(part[6:], default, last_id, None, count))
                    count += 1
                    continue
            elif part.startswith(b"event: "):
                newline = part.find(b"\n")
                if (
                    newline > 7
                    and part.startswith(b"data: ", newline + 1)
                    and part.find(b"\n", newline + 1) < 0
                ):
                    kind = part[7:newline]
                    name = names.get(kind) or self._type_name(kind)
                    data_at = newline + 7
                    head, head_name, head_set = part[:data_at], name, True
                    append(ServerSentEvent(part[data_at:], name, last_id, None, count, True, True))
                    count += 1
                    continue
            if not part:
                continue  # blank lines between events: nothing to dispatch or reset
            self.count = count
            self._block(part, events)
            count, last_id = self.count, self.last_event_id
        self.count = count
        self._head, self._head_name, self._head_set = head, head_name, head_set
        if not last:
            return False
        if parts and len(last) + len(rest) < self.max_event_size and b"retry:" not in last:
            # An event begun after this chunk's last blank line, its end not
            # here yet: left unread with the rest of the chunk (True), it is
            # read whole with the next chunk by the shapes above, as if the
            # input were cut where it starts, not line by line. Its bytes are
            # read twice, at most one chunk's worth (10,000 Responses events
            # in reads of 4 KB: 178 -> 167 bytecodes each). Under the size
            # limit, no error is put off; a retry field is read at once: it
            # sets the reconnection time before its event ends.
            self._unread = last + rest
            return True
        self._lines(last[:-1].split(b"\n"), events)
        return False

    def _block(self, part: bytes, events: list[ServerSentEvent]) -> None:
        # One block between blank lines, by the general rules.
        lines = part.split(b"\n")
        lines.append(b"")  # the blank line that ended the block
        self._lines(lines, events)

    def _lines(self, lines: list[bytes], events: list[ServerSentEvent]) -> None:
        first = self._first
        data = self._data
        size = self._size
        limit = self.max_event_size
        for line in lines:
            if not line:
                if first is not None:
                    # _dispatch, in line: the one event per blank line of a
                    # CR or CRLF stream (10,000 Gemini events: 5.0 -> 4.1 ms
                    # of decoding).
                    if data:
                        raw = b"".join((first, data))
                        data.clear()
                    else:
                        raw = first
                    first = None
                    index = self.count
                    self.count = index + 1
                    kind = self._event
                    if kind:
                        name = self._names.get(kind) or self._type_name(kind)
                        events.append(
                            ServerSentEvent(
                                raw, name, self.last_event_id, self._retry, index, True, True
                            )
                        )
                    else:
                        events.append(
                            ServerSentEvent(
                                raw, _DEFAULT_TYPE, self.last_event_id, self._retry, index
                            )
                        )
                self._event = b""
                self._retry = None
                size = 0
                continue
            size += len(line) + 1
            if size > limit:
                self._first = first
                self._size = size - len(line) - 1
                self._too_large(line)
            if line.startswith(b"data: "):
                value = line[6:]
            elif line[0] == 58:  # ":" comment
                self.comments += 1
                continue
            else:
                colon = line.find(b":")
                if colon < 0:
                    field, value = line, b""
                else:
                    field, value = line[:colon], line[colon + 1 :]
                    if value[:1] == b" ":
                        value = value[1:]
                if field != b"data":
                    self._field(field, value)
                    continue
            if first is None:
                first = value
            else:
                data.append(10)
                data += value
        self._first = first
        self._size = size

    def _field(self, field: bytes, value: bytes) -> None:
        if field == b"event":
            self._event = value
        elif field == b"id":
            if b"\x00" not in value:
                self.last_event_id = value.decode("utf-8", "replace")
        elif field == b"retry" and value.isdigit():  # bytes.isdigit is ASCII-only
            self._retry = self.reconnection_time = int(value)

    def _dispatch(self, first: bytes, terminated: bool) -> ServerSentEvent:
        # The event held at the end of input (_lines dispatches the others in
        # line, as this does): an empty event type buffer means "message", as
        # the spec says.
        data = self._data
        raw = b"".join((first, data)) if data else first
        data.clear()
        self._first = None
        index = self.count
        self.count = index + 1
        kind, retry = self._event, self._retry
        if not kind:
            return ServerSentEvent(raw, _DEFAULT_TYPE, self.last_event_id, retry, index, terminated)
        name = self._names.get(kind) or self._type_name(kind)
        return ServerSentEvent(raw, name, self.last_event_id, retry, index, terminated, True)

    def _type_name(self, kind: bytes) -> str:
        # A non-empty type buffer as text (never empty: U+FFFD replaces bad
        # bytes), decoded once for the first few names a stream uses.
        name = kind.decode("utf-8", "replace")
        if len(self._names) < _NAMES_KEPT:
            self._names[kind] = name
        return name

    def _reset_event(self) -> None:
        self._first = None
        self._data.clear()
        self._size = 0
        self._event = b""
        self._retry = None
