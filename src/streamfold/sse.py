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
flagged with ``terminated=False``; and an event whose data grows past
``max_event_size`` raises ``ProtocolError`` instead of growing memory without
bound.
"""

from __future__ import annotations

from typing import Final

import msgspec

from .errors import ProtocolError, shorten

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "SSEDecoder", "ServerSentEvent"]

DEFAULT_MAX_EVENT_SIZE: Final = 16 * 1024 * 1024
_BOM: Final = b"\xef\xbb\xbf"
_BLANK: Final = [b""]


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


class SSEDecoder:
    """Incremental server-sent events decoder: ``feed(bytes) -> list[ServerSentEvent]``.

    Args:
        max_event_size: the largest event (data plus the line being read), in
            bytes, before ``ProtocolError`` is raised.
    """

    def __init__(self, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        self.max_event_size = max_event_size
        self._pending: list[bytes] = []  # pieces of the current, unterminated line
        self._pending_size = 0
        self._skip_lf = False  # the last chunk ended in CR: a leading LF is not a new line
        self._head = b""  # the first bytes, held until the BOM question is settled
        self._bom_settled = False
        self._data: list[bytes] = []
        self._data_size = 0
        self._event = b""
        self._retry: int | None = None
        self.last_event_id: str | None = None
        self.count = 0  # events dispatched so far
        self.bytes_seen = 0
        self.comments = 0
        self._names: dict[bytes, str] = {}  # event type names, decoded once
        self._error: ProtocolError | None = None  # raised on the next call

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode the next chunk of bytes.

        Returns:
            The events completed by this chunk, in order.

        Raises:
            ProtocolError: an event grew past ``max_event_size``.
        """
        if self._error is not None:
            raise self._error
        self.bytes_seen += len(chunk)
        if not self._bom_settled:
            chunk = self._strip_bom(chunk)
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[0] == 10:
                chunk = chunk[1:]
                if not chunk:
                    return []
        last_lf = chunk.rfind(b"\n")
        last_cr = chunk.rfind(b"\r")
        end = last_lf if last_lf > last_cr else last_cr
        if end < 0:
            self._hold(chunk)
            return []
        if end == len(chunk) - 1:
            complete = chunk
            if last_cr == end:
                self._skip_lf = True
        else:
            complete = chunk[: end + 1]
            rest = chunk[end + 1 :]
        if self._pending:
            self._pending.append(complete)
            complete = b"".join(self._pending)
            self._pending.clear()
            self._pending_size = 0
        events: list[ServerSentEvent] = []
        try:
            if last_cr < 0:
                self._blocks(complete, events)
            else:
                self._lines(complete.splitlines(), events)
        except ProtocolError as exc:
            return self._defer(exc, events)
        if end != len(chunk) - 1:
            self._hold(rest)
        return events

    def close(self) -> list[ServerSentEvent]:
        """End of stream: dispatch a last event that had no closing blank line.

        Returns:
            That event, flagged ``terminated=False``, or nothing.

        Raises:
            ProtocolError: an event grew past ``max_event_size``.
        """
        if self._error is not None:
            raise self._error
        if not self._bom_settled:
            self._bom_settled = True
            head, self._head = self._head, b""
            if head and head != _BOM[: len(head)]:
                self._hold(head)
        lines: list[bytes] = []
        if self._pending:
            lines.append(b"".join(self._pending))
            self._pending.clear()
            self._pending_size = 0
        events: list[ServerSentEvent] = []
        self._lines(lines, events)
        if self._data:
            events.append(self._dispatch(terminated=False))
        self._reset_event()
        return events

    # -- internals -------------------------------------------------------------

    def _strip_bom(self, chunk: bytes) -> bytes:
        head = self._head + chunk
        if len(head) < 3 and _BOM.startswith(head):
            self._head = head
            return b""
        self._bom_settled = True
        self._head = b""
        return head[3:] if head.startswith(_BOM) else head

    def _hold(self, piece: bytes) -> None:
        self._pending.append(piece)
        self._pending_size += len(piece)
        if self._pending_size + self._data_size > self.max_event_size:
            self._too_large()

    def _too_large(self) -> None:
        head = b"".join(self._data)[:60] if self._data else b"".join(self._pending)[:60]
        self._pending.clear()
        self._data.clear()
        raise ProtocolError(
            f"server-sent event #{self.count} is larger than the limit of "
            f"{self.max_event_size} bytes (starts with {shorten(head, 60)!r})",
            excerpt=shorten(head, 60),
            position=self.count,
        )

    def _defer(self, error: ProtocolError, events: list[ServerSentEvent]) -> list[ServerSentEvent]:
        # The events completed before the bad one are delivered first, so the
        # result never depends on where the input was cut; the error follows
        # on the next call.
        if not events:
            raise error
        self._error = error
        return events

    def _blocks(self, complete: bytes, events: list[ServerSentEvent]) -> None:
        # The common LF-only case, split at blank lines: an event that is one
        # `data:` line (optionally after one `event:` line) is built directly;
        # anything else goes through the general line rules. Same results.
        parts = complete.split(b"\n\n")
        last = parts.pop()  # complete ends in LF: this is "" or lines not yet closed
        limit = self.max_event_size
        for part in parts:
            if (
                len(part) <= limit
                and not self._data
                and not self._event
                and self._retry is None
                and (newline := part.find(b"\n")) < 0
                and part.startswith(b"data: ")
            ):
                events.append(
                    ServerSentEvent(part[6:], "message", self.last_event_id, None, self.count)
                )
                self.count += 1
                continue
            if (
                len(part) <= limit
                and not self._data
                and self._retry is None
                and part.startswith(b"event: ")
                and newline > 0
                and part.startswith(b"data: ", newline + 1)
                and part.find(b"\n", newline + 1) < 0
            ):
                kind = part[7:newline]
                name = self._names.get(kind)
                if name is None:
                    name = self._names[kind] = kind.decode("utf-8", "replace")
                events.append(
                    ServerSentEvent(
                        part[newline + 7 :], name, self.last_event_id, None, self.count, True, True
                    )
                )
                self.count += 1
                self._event = b""
                continue
            self._lines(part.split(b"\n"), events)
            self._lines(_BLANK, events)
        if last:
            self._lines(last[:-1].split(b"\n"), events)

    def _lines(self, lines: list[bytes], events: list[ServerSentEvent]) -> None:
        data = self._data
        size = self._data_size
        limit = self.max_event_size
        for line in lines:
            if not line:
                if data:
                    self._data_size = size
                    events.append(self._dispatch(terminated=True))
                    size = 0
                self._event = b""
                self._retry = None
                continue
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
            data.append(value)
            size += len(value) + 1
            if size > limit:
                self._data_size = size
                self._too_large()
        self._data_size = size

    def _field(self, field: bytes, value: bytes) -> None:
        if field == b"event":
            self._event = value
        elif field == b"id":
            if b"\x00" not in value:
                self.last_event_id = value.decode("utf-8", "replace")
        elif field == b"retry" and value.isdigit():  # bytes.isdigit is ASCII-only
            self._retry = int(value)

    def _dispatch(self, terminated: bool) -> ServerSentEvent:
        data = self._data
        raw = data[0] if len(data) == 1 else b"\n".join(data)
        kind = self._event
        if kind:
            name = self._names.get(kind)
            if name is None:
                name = self._names[kind] = kind.decode("utf-8", "replace")
            event = ServerSentEvent(
                raw, name, self.last_event_id, self._retry, self.count, terminated, True
            )
        else:
            event = ServerSentEvent(
                raw, "message", self.last_event_id, self._retry, self.count, terminated
            )
        self.count += 1
        data.clear()
        self._data_size = 0
        return event

    def _reset_event(self) -> None:
        self._data.clear()
        self._data_size = 0
        self._event = b""
        self._retry = None
