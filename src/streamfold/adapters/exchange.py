"""One HTTP exchange, sans IO: every decision between the response's head and
the end of its body, the deadlines included.

::

    exchange = Exchange(head, timeouts=Timeouts(idle=30), started=sent_at, now=clock())
    while not exchange.ended:
        read = body.read(exchange.deadline)          # bytes, b"" at the end, STALLED or Lost
        for event in exchange.receive(read, clock()):
            ...
    exchange.raise_failure()

The adapters (``streamfold.adapters.httpx``) do the IO: they read the head off
a response (``ResponseHead``), read the body, and hand every outcome to the
exchange with the time. The exchange reads no clock and imports no HTTP
library: it is given ``now`` on every call, so each deadline is decided here
and tested with a fake clock.

What it decides:

- whether the body is a stream: a non-2xx status, a content type that is not an
  event stream (the media type of a framing of ``adapters.framings``:
  ``text/event-stream``, ``application/x-ndjson``,
  ``application/vnd.amazon.eventstream``), or an
  ``application/json`` body that is not a JSON array is
  read (at most ``MAX_ERROR_BODY`` bytes, under the same deadlines) into an
  ``HTTPStatusError`` or ``ContentTypeError``, with the provider's envelope
  read by its dialect's functions (through the registry);
- the metadata (``ResponseMetadata``): status line, headers and URL with
  credentials redacted, request id (the registry's headers for each API), rate
  limits, timings and counts;
- the deadlines: ``deadline`` is when the next one passes; a read that did not
  return in time (``STALLED``) or bytes that arrive after it end the stream
  with ``StreamTimeoutError``;
- secrets: the API key and other credentials of the request are replaced by
  ``REDACTED`` in the bytes as they arrive, so no error, event, body or
  metadata shows them;
- retries (``RetryPolicy``, the client's only): a failure before the first
  byte of the stream that is safe to send again (a lost connection, a
  timeout, a retryable status) ends the exchange with ``retry`` set: the
  request is to be sent again after ``retry.delay`` seconds, in a new
  exchange, unless that wait would end past the total deadline;
- resumption (``resume=True``, the client's only): a stream cut after its
  first events (a lost connection, the idle deadline) whose position is known
  (the API's ``registry.Reattach``, or the last server-sent event id) waits in
  ``Phase.RESUMING`` with ``reconnect`` set; the client sends the re-attach
  request and hands its head to ``reattached`` (or its failure to
  ``reattach_failed``), and the new body feeds the same parser.
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final
from urllib.parse import quote

import msgspec

from ..dialects.base import Dialect, provider_error
from ..dialects.registry import API, APIS, Reattach
from ..errors import (
    ContentTypeError,
    HTTPResponseError,
    HTTPStatusError,
    IncompleteStreamError,
    ProtocolError,
    StreamfoldError,
    StreamTimeoutError,
    TruncatedResponseError,
    UsageError,
    timeout_error,
)
from ..events import (
    Event,
    ReasoningDelta,
    RefusalDelta,
    ResponseStarted,
    TextDelta,
    ToolCallArgumentsDelta,
)
from ..framing import Framing, FramingSniff
from ..parser import Phase as ParserPhase
from ..parser import StreamParser
from ..result import Attempt, HTTPResult, ResponseMetadata, Result, Resumption
from .framings import FRAMINGS
from .redact import (
    KEY_HEADERS,
    SecretFilter,
    key_may_follow,
    redact_headers,
    redact_text,
    redact_url,
    secrets_of,
)

__all__ = [
    "MAX_ERROR_BODY",
    "NO_TIMEOUTS",
    "STALLED",
    "Exchange",
    "Lost",
    "Phase",
    "Read",
    "Reconnect",
    "ResponseHead",
    "RetryPolicy",
    "SentRequest",
    "Timeouts",
    "request_id_of",
    "retry_attempt",
]

#: The largest error body read to build an ``HTTPResponseError``, in bytes.
MAX_ERROR_BODY: Final = 64 * 1024

_TOKEN_EVENTS: Final = (TextDelta, ReasoningDelta, RefusalDelta, ToolCallArgumentsDelta)
# The content types of a 2xx body that is a stream: each framing's (SSE, Ollama's
# NDJSON, Bedrock's AWS event-stream), but JSON's, which is sniffed (below).
_STREAM_MEDIA_TYPES: Final = frozenset(
    framing.media_type for framing in FRAMINGS.values() if framing.media_type != "application/json"
)
_decode = msgspec.json.Decoder().decode


# -- what the adapters hand in -----------------------------------------------------------


@dataclass(frozen=True)
class Timeouts:
    """The deadlines a streamed response needs, in seconds; ``None`` disables one.

    Attributes:
        connect: establishing the connection (the HTTP client's connect timeout).
        first_event: from sending the request to the first server-sent event.
        idle: the longest gap between two server-sent events.
        total: the whole exchange, from sending the request to the end of the stream.
    """

    connect: float | None = 5.0
    first_event: float | None = 600.0
    idle: float | None = 600.0
    total: float | None = None

    def header_read(self) -> float | None:
        """The read timeout while waiting for the response's head: the first
        of ``first_event`` and ``total`` (no event can come before the head)."""
        return _smallest(self.first_event, self.total)

    def body_read(self) -> float | None:
        """The read timeout for the body: the longest a read may block while a
        deadline may still be ahead, so that the HTTP client never gives up
        before a deadline that applies (``first_event`` before the first event,
        ``idle`` after it, ``total`` throughout); the adapters end each
        deadline exactly themselves."""
        if self.first_event is None or self.idle is None:
            return self.total
        return _smallest(max(self.first_event, self.idle), self.total)


def _smallest(*values: float | None) -> float | None:
    present = [value for value in values if value is not None]
    return min(present) if present else None


NO_TIMEOUTS: Final = Timeouts(connect=None, first_event=None, idle=None, total=None)


@dataclass(frozen=True)
class RetryPolicy:
    """When the client sends a request again, and how often it re-attaches a
    cut stream; the defaults are the official OpenAI and Anthropic SDKs'.

    A request is sent again only before the first byte of its stream: after
    a lost connection, a timeout, or an ``HTTPStatusError`` that is
    ``retryable`` (``x-should-retry``, else 408, 409, 429, 5xx, Anthropic's
    529), and only when the wait ends before the total deadline (which
    counts from the first attempt). Once the stream has begun it never is:
    only a resumable stream goes on (``resume=True``), from where it was cut.

    Attributes:
        retries: how many times a request may be sent again (0: never).
        resumes: how many re-attachments a resumed stream may make, failed
            ones included.
        initial_delay: the first backoff, in seconds; it doubles with each
            attempt, up to ``max_delay``.
        max_delay: the longest backoff.
        max_retry_after: the longest wait a server may ask for
            (``retry-after-ms``, ``retry-after``, Gemini's ``RetryInfo``, the
            server-sent events' ``retry`` field): a shorter one is waited as
            asked; a longer one is not waited for, and the failure is raised.
        jitter: the most of each backoff taken off at random (0.25: 75 to
            100% of it).

    Raises:
        UsageError: a negative count or delay, or a jitter outside 0 to 1.
    """

    retries: int = 2
    resumes: int = 5
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        for name in ("retries", "resumes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UsageError(f"RetryPolicy({name}={value!r}): use a whole number from 0")
        for name in ("initial_delay", "max_delay", "max_retry_after", "jitter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise UsageError(f"RetryPolicy({name}={value!r}): use a number from 0")
        if self.jitter > 1:
            raise UsageError(f"RetryPolicy(jitter={self.jitter!r}): use a number from 0 to 1")

    def wait(self, attempt: int, asked: float | None, rand: float) -> float | None:
        """The seconds to wait before attempt ``attempt`` + 1 (``attempt`` is 1
        after the first failure), given the wait the server asked for; ``None``
        when it asked for more than ``max_retry_after``."""
        if asked is not None:
            if asked > self.max_retry_after:
                return None
            if asked > 0:
                return asked
        delay = min(self.initial_delay * 2.0 ** min(attempt - 1, 64), self.max_delay)
        return delay * (1.0 - self.jitter * rand)


def _safe_to_send_again(error: StreamfoldError) -> bool:
    # Before any event: a retryable status, a timeout, or a transport failure
    # (the HTTP library's error is the cause); not an empty body or a
    # malformed one, nor a provider's in-band error.
    if isinstance(error, HTTPStatusError):
        return error.retryable
    if isinstance(error, StreamTimeoutError):
        return True
    return isinstance(error, IncompleteStreamError) and error.__cause__ is not None


def _asked_wait(error: StreamfoldError) -> float | None:
    return error.retry_after if isinstance(error, HTTPStatusError) else None


def retry_attempt(
    policy: RetryPolicy | None,
    error: StreamfoldError,
    previous: Sequence[Attempt],
    rand: float,
    head: tuple[int, str | None] | None = None,
    budget: float | None = None,
) -> Attempt | None:
    """The record of an attempt that failed with ``error`` before any event,
    its ``delay`` the wait before the next one, when ``policy`` sends the
    request again; ``None`` when it does not (no policy, no retry left, an
    error not safe to send again, a server asking for too long a wait, a
    wait that would end past the total deadline). ``previous`` are the
    attempts before it; ``head`` the status and request id of its response,
    when one came; ``budget`` the seconds left before the total deadline."""
    number = len(previous) + 1
    if policy is None or number > policy.retries or not _safe_to_send_again(error):
        return None
    delay = policy.wait(number, _asked_wait(error), rand)
    if delay is None or (budget is not None and delay >= budget):
        return None
    if isinstance(error, HTTPResponseError):
        head = (error.metadata.status_code, error.metadata.request_id)
    return Attempt(
        number=number,
        status_code=head[0] if head is not None else None,
        request_id=head[1] if head is not None else None,
        error=error.info,
        delay=delay,
    )


@dataclass(frozen=True)
class Reconnect:
    """What a cut stream needs to go on: a new request, sent after ``delay``
    seconds (``Exchange.reconnect``).

    Attributes:
        number: 1 for the stream's first re-attachment, ...
        via: ``"starting_after"`` (the API's ``registry.Reattach``: a ``GET``
            of ``path`` after the base URL) or ``"last_event_id"`` (the same
            request again, with the ``Last-Event-ID`` header).
        cursor: the last sequence number or event id received.
        response_id: the response's id (``starting_after``), else ``None``.
        path: the re-attach request's path and query after the base URL
            (``starting_after``), else ``None``.
        delay: seconds to wait before sending it.
    """

    number: int
    via: str
    cursor: str
    response_id: str | None
    path: str | None
    delay: float


@dataclass(frozen=True)
class SentRequest:
    """One request as it went out: its method, URL and headers (credentials
    included, never shown: ``repr`` leaves them out)."""

    method: str
    url: str = field(repr=False)
    headers: Sequence[tuple[str, str]] = field(repr=False)


@dataclass(frozen=True)
class ResponseHead:
    """What the adapter reads off a response before its body, as plain data.

    Attributes:
        status_code: the HTTP status.
        reason: the status phrase.
        http_version: ``"HTTP/1.1"``, ``"HTTP/2"``.
        headers: the response headers in order, repeated ones repeated.
        requests: every request sent for this response, first to last (more
            than one after redirects).
        received_at: the wall-clock time (``time.time()``) the head was read,
            for a ``retry-after`` given as an HTTP date.
        read_timeout: the HTTP client's own read timeout, when it has one: a
            stall it cut before any deadline is reported with this limit.
    """

    status_code: int
    reason: str
    http_version: str
    headers: Sequence[tuple[str, str]]
    requests: Sequence[SentRequest]
    received_at: float = 0.0
    read_timeout: float | None = None


class _Stalled:
    __slots__ = ()

    def __repr__(self) -> str:
        return "STALLED"


#: A read that did not return in time: a deadline's watchdog interrupted it, or
#: the HTTP client's own read timeout ran out.
STALLED: Final = _Stalled()


@dataclass(frozen=True)
class Lost:
    """A read failed: the connection broke (``cause`` is the HTTP library's error)."""

    cause: BaseException


#: The outcome of one read: the next bytes, ``b""`` at the end of the body,
#: ``STALLED`` or ``Lost``.
Read = bytes | _Stalled | Lost


class Phase(Enum):
    """Where the exchange stands; ``_NEXT`` lists the moves."""

    SNIFFING = "sniffing"  # a 2xx JSON body: an array is a stream, anything else is not
    STREAMING = "streaming"
    ERROR_BODY = "error_body"  # reading a body that is not a stream, to report it
    RESUMING = "resuming"  # a cut stream waits for its re-attach request's head
    ENDED = "ended"


_NEXT: Final = {
    Phase.SNIFFING: frozenset({Phase.STREAMING, Phase.ERROR_BODY, Phase.ENDED}),
    Phase.STREAMING: frozenset({Phase.RESUMING, Phase.ENDED}),
    Phase.ERROR_BODY: frozenset({Phase.RESUMING, Phase.ENDED}),
    Phase.RESUMING: frozenset({Phase.STREAMING, Phase.ERROR_BODY, Phase.ENDED}),
    Phase.ENDED: frozenset(),
}


# -- request ids and the registry's error-body readers -------------------------------------


def _rows(dialect: str | None) -> list[API]:
    # The row of the dialect in use first, then every row in registry order.
    known = [row for row in APIS if row.id == dialect]
    return known + [row for row in APIS if row.id != dialect]


def request_id_of(headers: Mapping[str, str], dialect: str | None = None) -> str | None:
    """The provider's request id among ``headers`` (lower-case names), or ``None``.

    The headers of the registry row of ``dialect`` are tried first, then every
    row's in registry order.
    """
    for row in _rows(dialect):
        for name in row.request_id_headers:
            value = headers.get(name)
            if value:
                return value
    return None


def _first_answer(rows: Iterable[API], reader: str, raw: Any) -> Any:
    for row in rows:
        read = getattr(row, reader)
        if read is not None:
            value = read(raw)
            if value is not None:
                return value
    return None


def _dialect_id(dialect: str | type[Dialect]) -> str | None:
    if isinstance(dialect, str):
        row = next((row for row in APIS if dialect in (row.id, row.name)), None)
        return row.id if row is not None else None
    return dialect.name or None


# -- the exchange ----------------------------------------------------------------------------


class Exchange:
    """The parser plus what an HTTP exchange adds: is the body a stream, the
    error it is when not, the metadata, the deadlines and secrets, and (for
    the client) whether to send the request again or re-attach a cut stream.
    No IO and no clock: the adapters hand it each read's outcome and the time.

    Args:
        head: the response's head.
        dialect: a dialect id or class, or ``"auto"``.
        strict: raise on malformed events (else skip them with a warning).
        parse_arguments: parse tool-call arguments incrementally.
        parse_content: parse answer text as JSON incrementally (JSON mode).
        output_type: the answer's type, and tool_types: a type per tool name
            (``StreamParser``'s).
        timeouts: the deadlines (none when ``None``).
        started: when the request was sent (timings and deadlines count from
            there), or ``None`` for ``now``.
        first_sent: when the first attempt was sent, for a request sent
            again: the total deadline counts from there (``started`` by default).
        now: the time, on the clock every later ``now`` is read from.
        retry: when to send the request again (the client's; ``None``: never).
        attempts: the attempts before this one that failed and were retried.
        resume: re-attach a stream cut after its first events, when its
            position is known (the client's ``resume=True``).
        reattach: the API's own re-attach request (``registry.Reattach``), if any.
        rand: a random number in [0, 1) for each backoff's jitter.

    Attributes:
        ended: the exchange is over: the body need not be read any further.
        retry: set when it ended with a failure that is safe to send again:
            the failed attempt, its ``delay`` the wait before the next.
        reconnect: set in ``Phase.RESUMING``: the re-attach request to send.
        started_event: the first ``response.started`` event (the response's
            id and model), once it came.

    Raises:
        UsageError: an unknown dialect, or a redirect carried an API key to
            another origin (the response is not folded: see ``docs/http.md``).
    """

    # Slots: a stream holds one for its whole life, and its attributes are
    # more than an instance dict shares keys for (30).
    __slots__ = (
        "_base",
        "_body",
        "_body_size",
        "_cut",
        "_due_seen",
        "_due_value",
        "_events_at_cut",
        "_filter",
        "_framing",
        "_given_dialect",
        "_head",
        "_method",
        "_pending",
        "_previous",
        "_rand",
        "_read_timeout",
        "_reattach",
        "_received_at",
        "_resume",
        "_resumptions",
        "_retry",
        "_secrets",
        "_timed",
        "_total_from",
        "bytes",
        "chunks",
        "ended",
        "ended_at",
        "error",
        "first_byte_at",
        "first_event_at",
        "first_token_at",
        "headers_at",
        "last_event_at",
        "parser",
        "phase",
        "reconnect",
        "retry",
        "started",
        "started_event",
        "status_ok",
        "timeouts",
    )

    def __init__(
        self,
        head: ResponseHead,
        dialect: str | type[Dialect] = "auto",
        *,
        strict: bool = True,
        parse_arguments: bool = False,
        parse_content: bool = False,
        output_type: Any = None,
        tool_types: Mapping[str, Any] | None = None,
        timeouts: Timeouts | None = None,
        started: float | None = None,
        now: float,
        first_sent: float | None = None,
        retry: RetryPolicy | None = None,
        attempts: Sequence[Attempt] = (),
        resume: bool = False,
        reattach: Reattach | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        _refuse_a_key_sent_elsewhere(head.requests)
        self.parser = StreamParser(
            dialect,
            strict=strict,
            parse_arguments=parse_arguments,
            parse_content=parse_content,
            output_type=output_type,
            tool_types=tool_types,
        )
        self.timeouts = t = timeouts or NO_TIMEOUTS
        self._timed = t.first_event is not None or t.idle is not None or t.total is not None
        self._due_seen = -1  # the events seen when _due_value was computed
        self._due_value: tuple[float, str] | None = None
        self.started = now if started is None else started
        # The total deadline spans every attempt of a request sent again.
        self._total_from = self.started if first_sent is None else first_sent
        self.headers_at = None if started is None else now
        self.first_byte_at: float | None = None
        self.first_event_at: float | None = None
        self.first_token_at: float | None = None
        self.last_event_at = now
        self.ended_at: float | None = None
        self.bytes = 0
        self.chunks = 0
        self.error: StreamfoldError | None = None  # what ended the exchange, beside the parser's
        self.ended = False
        self.started_event: ResponseStarted | None = None
        self._given_dialect = None if dialect == "auto" else _dialect_id(dialect)
        self._retry = retry
        self._previous = tuple(attempts)
        self._resume = resume
        self._reattach = reattach
        self._rand = rand
        self.retry: Attempt | None = None
        self.reconnect: Reconnect | None = None
        self._cut: StreamfoldError | None = None  # what cut a stream being resumed
        self._events_at_cut = 0
        self._pending: tuple[Reconnect, int | None, str | None] | None = None
        self._resumptions: list[Resumption] = []
        self._method = head.requests[-1].method if head.requests else "?"
        self._framing = FramingSniff(self.parser.max_event_size)  # while sniffing
        self.phase = self._connection(head, sniff=True)
        self._base = self._head  # the first response's head: the result's metadata

    def _connection(self, head: ResponseHead, *, sniff: bool) -> Phase:
        # What belongs to one connection: its secrets, its head, its error
        # body; and the phase its head says the body is in.
        secrets: set[str] = set()
        for request in head.requests:
            secrets |= secrets_of(request.url)
            for name, value in request.headers:
                secrets |= secrets_of(headers={name: value})
        self._secrets = frozenset(secrets)
        self._filter = SecretFilter(secrets) if secrets else None
        self._head = self._base_metadata(head)  # this connection's: its HTTP errors'
        self._received_at = head.received_at
        self._read_timeout = head.read_timeout
        self._body: list[bytes] = []  # a body that is not a stream, up to MAX_ERROR_BODY
        self._body_size = 0
        media = (self._head["content_type"] or "").split(";", 1)[0].strip().lower()
        self.status_ok = 200 <= head.status_code < 300
        if not self.status_ok:
            return Phase.ERROR_BODY
        if not media or media in _STREAM_MEDIA_TYPES:
            return Phase.STREAMING
        if sniff and (media == "application/json" or media.endswith("+json")):
            return Phase.SNIFFING
        return Phase.ERROR_BODY

    # -- reads ---------------------------------------------------------------------------

    @property
    def deadline(self) -> float | None:
        """When the next deadline passes (on the clock of ``now``), or ``None``."""
        if not self._timed or self.phase is Phase.RESUMING:
            return None
        due = self._due()
        return None if due is None else due[0]

    def receive(self, read: Read, now: float) -> list[Event]:
        """Take the outcome of one read of the body.

        A deadline that passed before ``now`` wins over bytes that came late
        (and over the end of the body).

        Returns:
            The events it completed (an ``error`` event last when it ended the
            stream; ``raise_failure()`` then raises the error).
        """
        if self.phase is Phase.ENDED or self.phase is Phase.RESUMING:
            return []
        due = self._due() if self._timed else None
        if read.__class__ is bytes:
            if due is not None and now >= due[0]:
                return self._expire(due, now)
            if not read:
                return self._finish(now)
            if self.first_byte_at is None:
                self.first_byte_at = now
            self.bytes += len(read)
            self.chunks += 1
            if self._filter is not None:
                read = self._filter.feed(read)
            if self.phase is Phase.STREAMING:
                return self._parse(read, now)
            if self.phase is Phase.SNIFFING:
                return self._sniff(read, now)
            return self._collect(read, now)
        if read is STALLED:
            return self._expire(due, now)
        return self._lose(read.cause, now)  # type: ignore[union-attr]

    def abandon(self, now: float) -> None:
        """The caller stopped reading (closed the stream or left early): the
        body ends here, and the stream is incomplete unless it had ended."""
        if self.phase is not Phase.ENDED:
            self.reconnect = None
            self._finish(now)

    def raise_failure(self) -> None:
        """Raise the error that ended the exchange, if any.

        Raises:
            HTTPStatusError, ContentTypeError: the body was not a stream.
            ProviderError, ProtocolError, IncompleteStreamError, StreamTimeoutError:
                the stream failed (``partial`` is the ``HTTPResult`` so far).
        """
        error = self.failure
        if error is not None:
            raise error

    # -- re-attaching a cut stream ------------------------------------------------------

    def reattached(self, head: ResponseHead, *, sent_at: float, now: float) -> None:
        """The re-attach request of ``reconnect``, sent at ``sent_at``, was
        answered with ``head``. An event stream goes on feeding the same parser
        (the framing starts afresh; events sent again are skipped); another
        answer's body is read next, as an error body, and ends this attempt.

        Raises:
            UsageError: the exchange is not resuming, or a redirect carried the
                API key to another origin.
        """
        if self.phase is not Phase.RESUMING or self.reconnect is None:
            raise UsageError("reattached() without a reconnect to answer")
        _refuse_a_key_sent_elsewhere(head.requests)
        phase = self._connection(head, sniff=False)
        plan = self.reconnect
        self.reconnect = None
        self._pending = (plan, head.status_code, request_id_of(self._head["headers"]))
        self.last_event_at = sent_at  # the idle deadline counts from the re-attach request
        self._due_seen = -1
        if phase is Phase.STREAMING:
            self.parser.reconnect()
            self._record_resumption(None)
        self._to(phase)

    def reattach_failed(self, error: StreamfoldError, now: float) -> list[Event]:
        """The re-attach request of ``reconnect`` failed before any response
        (a connection error, a timeout): another is planned when attempts are
        left and the failure is transient, else the stream ends as it was cut.

        Returns:
            The last events when the stream ends (an ``error`` event last).

        Raises:
            UsageError: the exchange is not resuming.
        """
        if self.phase is not Phase.RESUMING or self.reconnect is None:
            raise UsageError("reattach_failed() without a reconnect to answer")
        plan = self.reconnect
        self._pending = (plan, None, None)
        return self._resume_failed(error, now)

    def _record_resumption(self, error: StreamfoldError | None) -> None:
        if self._pending is None or self._cut is None:  # pragma: no cover - set with a plan
            return
        (plan, status, request_id), cut = self._pending, self._cut
        self._pending = None
        self._resumptions.append(
            Resumption(
                number=plan.number,
                via=plan.via,
                cursor=plan.cursor,
                events_before=self._events_at_cut,
                cut=cut.info,
                delay=plan.delay,
                status_code=status,
                request_id=request_id,
                error=error.info if error is not None else None,
            )
        )

    def _resume_failed(self, error: StreamfoldError, now: float) -> list[Event]:
        # A re-attach request failed: another after a backoff when that may
        # help, else the stream ends with the error that cut it.
        self._record_resumption(error)
        if _safe_to_send_again(error):
            plan = self._plan(len(self._resumptions) + 1, _asked_wait(error), now)
            if plan is not None:
                self.reconnect = plan
                self._to(Phase.RESUMING)
                return []
        return self._give_up(now)

    def _give_up(self, now: float) -> list[Event]:
        # The stream ends as it would have without resuming: the parser's
        # error for a lost connection (its cause the library's error), or the
        # deadline's.
        cut = self._cut
        self._filter = None  # the bytes it held belong to a connection gone
        if isinstance(cut, StreamTimeoutError):
            return self._fail_stream(cut, now)
        events = self._finish_stream(now)
        error = self.parser.error
        if error is not None and error.__cause__ is None and cut is not None:
            error.__cause__ = cut.__cause__
        return events

    def _plan(self, number: int, asked: float | None, now: float) -> Reconnect | None:
        # The re-attachment numbered `number`, when one may be made (its wait
        # ending before the total deadline).
        policy = self._retry
        if not self._resume or policy is None or number > policy.resumes:
            return None
        dialect, reattach = self.parser.dialect, self._reattach
        spot = reattach.position(dialect) if reattach is not None and dialect else None
        response_id: str | None = None
        path: str | None = None
        if reattach is not None and spot is not None:
            response_id, cursor = spot
            via = reattach.via
            path = reattach.path.format(id=quote(response_id, safe=""), cursor=cursor)
        else:
            cursor = self.parser.last_event_id or ""
            if not cursor:
                return None
            via = "last_event_id"
            if asked is None and self.parser.reconnection_time is not None:
                asked = self.parser.reconnection_time / 1000.0  # the stream's `retry` field
        delay = policy.wait(number, asked, self._rand())
        budget = self._budget(now)
        if delay is None or (budget is not None and delay >= budget):
            return None
        return Reconnect(number, via, cursor, response_id, path, delay)

    def _cut_off(self, cut: StreamfoldError, now: float) -> bool:
        # A stream cut after its first events: resumed when it can be.
        if self.parser.phase is not ParserPhase.STREAMING or self.parser.events_seen == 0:
            return False
        plan = self._plan(len(self._resumptions) + 1, None, now)
        if plan is None:
            return False
        self._cut = cut
        self._events_at_cut = self.parser.events_seen
        self.reconnect = plan
        self._filter = None
        self._to(Phase.RESUMING)
        return True

    def _retried(self, error: StreamfoldError, now: float) -> bool:
        # A failure before the stream's first byte that the client sends
        # again. Not after it: a 2xx body under way (a keep-alive comment
        # included) means the provider is generating, and bills it; sending
        # the prompt again would pay twice. Only resuming goes on from there.
        if self._resumptions or self.parser.events_seen or (self.status_ok and self.bytes):
            return False
        base = self._base
        head = (base["status_code"], request_id_of(base["headers"], self._dialect()))
        attempt = retry_attempt(
            self._retry, error, self._previous, self._rand(), head, self._budget(now)
        )
        if attempt is None:
            return False
        self.retry = attempt
        self.error = error
        self.reconnect = None
        self._end(now)
        return True

    def _budget(self, now: float) -> float | None:
        # The seconds left before the total deadline, if there is one.
        total = self.timeouts.total
        return None if total is None else self._total_from + total - now

    # -- results -------------------------------------------------------------------------

    @property
    def failure(self) -> StreamfoldError | None:
        """The error that ended the exchange, its ``partial`` carrying the metadata."""
        error = self.error or self.parser.error
        if (
            error is not None
            and not isinstance(error, HTTPResponseError)
            and not isinstance(error.partial, HTTPResult)
        ):
            error.partial = self.snapshot()
        return error

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        """The attempts so far, this one last (with its ``delay`` when it is
        to be sent again); empty for a response the client did not send."""
        if self._retry is None and not self._previous:
            return ()
        if self.retry is not None:
            return (*self._previous, self.retry)
        base = self._base
        this = Attempt(
            number=len(self._previous) + 1,
            status_code=base["status_code"],
            request_id=request_id_of(base["headers"], self._dialect()),
        )
        return (*self._previous, this)

    def metadata(self) -> ResponseMetadata:
        """The exchange's metadata as it stands."""
        return self._metadata(self._base)

    def _metadata(self, base: dict[str, Any]) -> ResponseMetadata:
        started = self.started

        def since(moment: float | None) -> float | None:
            return None if moment is None else moment - started

        return ResponseMetadata(
            **base,
            request_id=request_id_of(base["headers"], self._dialect()),
            time_to_headers=since(self.headers_at),
            time_to_first_byte=since(self.first_byte_at),
            time_to_first_event=since(self.first_event_at),
            time_to_first_token=since(self.first_token_at),
            total_time=since(self.ended_at),
            bytes_received=self.bytes,
            chunks_received=self.chunks,
            events_received=self.parser.events_seen,
            attempts=self.attempts,
            resumptions=tuple(self._resumptions),
        )

    def snapshot(self) -> HTTPResult:
        """The result folded so far, with the metadata."""
        return _with_metadata(self.parser.snapshot, self.metadata())

    def final(self, checked: bool = False) -> HTTPResult:
        """The final result, once the exchange has ended.

        Raises:
            UsageError: the exchange has not ended.
            The errors of ``raise_failure``; ``TruncatedResponseError`` when
            ``checked`` and the response was cut by a limit or a filter.
        """
        if self.phase is not Phase.ENDED:
            raise UsageError("final() before the exchange ended: read the whole body first")
        self.raise_failure()
        try:
            result = self.parser.final(checked=checked)
        except TruncatedResponseError as exc:
            exc.partial = self.snapshot()
            raise
        return _with_metadata(result, self.metadata())

    @property
    def timed(self) -> bool:
        """Whether any deadline is set (else ``deadline`` is always ``None``)."""
        return self._timed

    def describe(self) -> str:
        """For a ``repr``: the method, the URL (redacted) and the status."""
        return f"{self._method} {self._base['url']} [{self._base['status_code']}]"

    # -- the moves -----------------------------------------------------------------------

    def _to(self, phase: Phase) -> None:
        if phase is self.phase:
            return
        if phase not in _NEXT[self.phase]:  # pragma: no cover - a bug, not server data
            raise ProtocolError(f"the exchange cannot go from {self.phase.value} to {phase.value}")
        self.phase = phase

    def _sniff(self, data: bytes, now: float) -> list[Event]:
        # A 2xx JSON body is a stream only when it is an array (Gemini without
        # ?alt=sse): the framing layer's one sniff tells, holding what it must.
        try:
            framing = self._framing.feed(data)
        except ProtocolError as error:
            return self._fail_stream(error, now)
        if framing is None:
            return []
        head = self._framing.head
        if framing is Framing.JSON_ARRAY:
            self._to(Phase.STREAMING)
            return self._parse(head, now)
        self._to(Phase.ERROR_BODY)
        return self._collect(head, now)

    def _parse(self, data: bytes, now: float) -> list[Event]:
        parser = self.parser
        seen = parser.events_seen
        events = parser.feed(data)
        if parser.events_seen != seen:
            self.last_event_at = now
            if self.first_event_at is None:
                self.first_event_at = now
        if self.first_token_at is None and events:
            # Until the first token only: what comes before it (the response's
            # id and model among them) is looked at, nothing after.
            for event in events:
                if isinstance(event, _TOKEN_EVENTS):
                    self.first_token_at = now
                    break
                if self.started_event is None and isinstance(event, ResponseStarted):
                    self.started_event = event
        if parser.error is not None:
            self._end(now)
        return events

    def _collect(self, data: bytes, now: float) -> list[Event]:
        self._body.append(data)
        self._body_size += len(data)
        if self._body_size >= MAX_ERROR_BODY:
            return self._fail_http(now)  # enough to report it
        return []

    def _finish(self, now: float) -> list[Event]:
        if self.phase is Phase.ERROR_BODY:
            return self._fail_http(now)
        return self._finish_stream(now)

    def _finish_stream(self, now: float) -> list[Event]:
        events: list[Event] = []
        tail = self._filter.flush() if self._filter is not None else b""
        if tail and self.phase is Phase.STREAMING:
            events = self.parser.feed(tail)
        events += self.parser.close()
        self._end(now)
        return events

    def _lose(self, cause: BaseException, now: float) -> list[Event]:
        if self.phase is Phase.ERROR_BODY:
            return self._fail_http(now, cause)  # what arrived is enough to report it
        if self.parser.phase in (ParserPhase.STARTING, ParserPhase.STREAMING):
            lost = IncompleteStreamError(
                f"the connection was lost after {self.parser.events_seen} events: "
                f"{type(cause).__name__}: {cause}",
                position=self.parser.events_seen,
            )
            lost.__cause__ = cause
            if self._retried(lost, now) or self._cut_off(lost, now):
                return []
        events = self._finish_stream(now)
        error = self.parser.error
        if error is not None and error.__cause__ is None:
            error.__cause__ = cause
        return events

    def _expire(self, due: tuple[float, str] | None, now: float) -> list[Event]:
        if due is not None and now >= due[0]:
            kind, limit = due[1], getattr(self.timeouts, due[1])
        else:  # the HTTP client's own read timeout ran out before any deadline
            kind = "first_event" if self.parser.events_seen == 0 else "idle"
            limit = self._read_timeout
        error = timeout_error(kind, limit, position=self.parser.events_seen)
        if self.phase is Phase.ERROR_BODY:
            return self._fail_http(now, error)
        if self._retried(error, now) or (kind == "idle" and self._cut_off(error, now)):
            return []
        return self._fail_stream(error, now)

    def _fail_stream(self, error: StreamfoldError, now: float) -> list[Event]:
        events = self.parser.fail(error)
        if self.parser.error is error:
            self.error = error
        self._end(now)
        return events

    def _fail_http(self, now: float, cause: BaseException | None = None) -> list[Event]:
        error = self._http_error(b"".join(self._body)[:MAX_ERROR_BODY], cause)
        error.__cause__ = cause
        if self._cut is not None:  # the answer to a re-attach request
            return self._resume_failed(error, now)
        self._end(now)
        self.error = error
        self._retried(error, now)
        return []

    def _end(self, now: float) -> None:
        if self.ended_at is None:
            self.ended_at = now
        if self.phase is not Phase.ENDED:
            self._to(Phase.ENDED)
            self.ended = True

    # -- deadlines -----------------------------------------------------------------------

    def _due(self) -> tuple[float, str] | None:
        # The next deadline changes only with the events seen (the idle one
        # moves with the last event): computed once per event, not per read.
        seen = self.parser.events_seen
        if seen == self._due_seen:
            return self._due_value
        timeouts = self.timeouts
        best: tuple[float, str] | None = None
        if timeouts.total is not None:
            best = (self._total_from + timeouts.total, "total")
        if seen == 0:
            if timeouts.first_event is not None:
                candidate = (self.started + timeouts.first_event, "first_event")
                best = candidate if best is None or candidate[0] < best[0] else best
        elif timeouts.idle is not None:
            candidate = (self.last_event_at + timeouts.idle, "idle")
            best = candidate if best is None or candidate[0] < best[0] else best
        self._due_seen, self._due_value = seen, best
        return best

    # -- metadata and errors -------------------------------------------------------------

    def _dialect(self) -> str | None:
        return self.parser.dialect_name or self._given_dialect

    def _base_metadata(self, head: ResponseHead) -> dict[str, Any]:
        joined: dict[str, str] = {}
        for name, value in head.headers:
            name = name.lower()
            joined[name] = f"{joined[name]}, {value}" if name in joined else value
        headers = {
            name: redact_text(value, self._secrets)
            for name, value in redact_headers(joined).items()
        }
        url = head.requests[-1].url if head.requests else ""
        return {
            "status_code": head.status_code,
            "reason": head.reason,
            "http_version": head.http_version,
            "url": redact_text(redact_url(url), self._secrets),
            "headers": headers,
            "rate_limits": {
                name: value
                for name, value in headers.items()
                if "ratelimit" in name or "rate-limit" in name or name.startswith("retry-after")
            },
            "content_type": headers.get("content-type"),
        }

    def _http_error(self, body: bytes, cause: BaseException | None) -> HTTPResponseError:
        metadata = self._metadata(self._head)
        rows = _rows(self._dialect())
        raw = _decode_body(body)
        raw = _first_answer(rows, "unwrap_error", raw) or raw
        code = error_type = provider_message = None
        if isinstance(raw, dict) and ("error" in raw or "message" in raw):
            parsed = provider_error(raw)
            error_type = parsed.error_type
            code = _first_answer(rows, "error_code", raw) or parsed.code
            provider_message = parsed.message
        request_id = metadata.request_id or _first_answer(rows, "error_request_id", raw)
        if request_id != metadata.request_id:
            metadata = msgspec.structs.replace(metadata, request_id=request_id)
        headers = metadata.headers
        retry_after = _retry_after(headers, self._received_at)
        if retry_after is None:
            retry_after = _first_answer(rows, "retry_delay", raw)
        text = body.decode("utf-8", "replace")
        status = metadata.status_code
        head = f"HTTP {status} {metadata.reason}".rstrip()
        wrong_type = self.status_ok
        if wrong_type:
            head += f" with content type {metadata.content_type or '(none)'}, not an event stream"
        detail = provider_message or " ".join(text.split())[:200] or "(empty body)"
        message = f"{head}: {code}: {detail}" if code else f"{head}: {detail}"
        if request_id:
            message += f" (request id {request_id})"
        if retry_after is not None:
            message += f"; retry after {retry_after:g} s"
        if cause is not None:
            message += f"; body cut short: {cause}"
        details: dict[str, Any] = {
            "metadata": metadata,
            "body": text,
            "raw": raw,
            "code": code,
            "error_type": error_type,
            "provider_message": provider_message,
            "retryable": _retryable(status, headers),
            "retry_after": retry_after,
        }
        if wrong_type:
            return ContentTypeError(message, content_type=metadata.content_type, **details)
        return HTTPStatusError(message, **details)


# -- helpers -------------------------------------------------------------------------------


def _refuse_a_key_sent_elsewhere(requests: Sequence[SentRequest]) -> None:
    # A redirect that carried an API key to another origin: the key has left
    # for a party the caller did not name. Folding the answer would hide that.
    if not requests:
        return
    first = requests[0].url
    for request in requests[1:]:
        carried = sorted(KEY_HEADERS & {name.lower() for name, _ in request.headers})
        if carried and not key_may_follow(first, request.url):
            raise UsageError(
                f"a redirect sent the {', '.join(carried)} header from "
                f"{redact_url(first)} to another origin, {redact_url(request.url)}: "
                "the API key went there. streamfold does not fold this response; send "
                "with follow_redirects=False, or through streamfold.client, which drops "
                "key headers on a change of origin (and rotate the key if that origin "
                "is not yours)"
            )


def _with_metadata(result: Result, metadata: ResponseMetadata) -> HTTPResult:
    values = {name: getattr(result, name) for name in Result.__struct_fields__}
    return HTTPResult(**values, metadata=metadata)


def _decode_body(body: bytes) -> Any:
    try:
        return _decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None


def _retry_after(headers: Mapping[str, str], received_at: float) -> float | None:
    # retry-after-ms is OpenAI's finer-grained header (its SDK honours it first).
    milliseconds = _seconds(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000.0
    value = headers.get("retry-after")
    seconds = _seconds(value)
    if seconds is not None or not value:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    try:
        return max(when.timestamp() - received_at, 0.0)
    except (OverflowError, OSError, ValueError):
        return None


def _seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(seconds, 0.0) if seconds == seconds and seconds != float("inf") else None


def _retryable(status: int, headers: Mapping[str, str]) -> bool:
    should = str(headers.get("x-should-retry", "")).strip().lower()
    if should in ("true", "false"):
        return should == "true"
    return status in (408, 409, 429) or status >= 500
