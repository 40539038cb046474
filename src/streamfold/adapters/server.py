"""The replay server: recorded ``.sse`` streams served as provider endpoints, with
pacing and fault injection chosen per request.

Built on Starlette (routing, requests, responses) and uvicorn (the HTTP/1.1
server, h11 underneath): an established ASGI stack, so the bytes on the wire
come from a real HTTP implementation, chunked transfer encoding included, and
the server runs in the same process as a test (a thread with its own event
loop) or as ``streamfold serve``.

Routes, one per API (a base URL of ``http://host:port`` works with each SDK's
convention)::

    POST /v1/chat/completions, /chat/completions      OpenAI Chat Completions
    POST /v1/responses, /responses                    OpenAI Responses
    POST /v1/messages                                 Anthropic Messages
    POST /{version}/models/{model}:streamGenerateContent[?alt=sse]   Gemini
    GET  /recordings                                  the recordings served

The recording: the ``X-Streamfold-Recording`` header names it; else the
request's model (``model`` in the body, or Gemini's path) when a recording has
that name; else the first recording (by name) of the route's API.

Per request, two headers (or the server's defaults when a header is absent):

- ``X-Streamfold-Pace``: ``fast`` (default: no delays), ``realistic``, or
  ``ttft=0.4, gap=0.025, speed=2`` (delays in seconds, divided by ``speed``).
- ``X-Streamfold-Fault``: comma-separated knobs, ``none`` for none:
  ``drop-after=N`` (close the connection after N events, without the end of
  the chunked body), ``stall=S`` with ``stall-after=N`` (pause S seconds after N
  events; N defaults to 1), ``malformed-after=N`` (send an event whose JSON is
  cut off), ``error-after=N`` (the provider's in-band error event on HTTP 200,
  then the end of the stream), ``status=429`` (or any 4xx/5xx: the provider's
  error body, with ``retry-after`` on 429/503/529 or when ``retry-after=S`` is
  given), ``json-body`` (a JSON error body on HTTP 200), ``split=utf8|crlf|bytes|N``
  (write the body in pieces cut inside every multi-byte UTF-8 character,
  between every CR and LF (line ends become CRLF), at every byte, or every N
  bytes), ``provider=openai|anthropic|gemini|openrouter`` (whose error shapes
  to use; the route's provider by default).

Every number is finite and within bounds, else the request is answered with
HTTP 400 naming the knob (and ``Faults``, ``Pace``, ``parse_faults``,
``parse_pace`` raise ``ValueError``): counts of events 0 to ``MAX_EVENTS``
(1,000,000; ``split=N`` from 1), ``stall``, ``ttft`` and ``gap`` 0 to
``MAX_PAUSE`` (600 s, also the longest pause once divided by ``speed``),
``retry-after`` 0 to ``MAX_RETRY_AFTER`` (86,400 s), ``speed`` ``MIN_SPEED`` to
``MAX_SPEED`` (0.001 to 1000), ``status`` 400 to 599.

Every request is recorded (``ReplayServer.requests``): its body, the recording,
the knobs, how many events were sent and how it ended (``complete``,
``dropped``, ``disconnected`` when the client closed the connection first,
``error``, ``cancelled``).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeAlias

import anyio
import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .. import dialects
from ..dialects.base import decode_json
from ..dialects.registry import API, APIS, get_api
from ..errors import StreamfoldError, UsageError
from ..sse import SSEDecoder

__all__ = [
    "DROP",
    "MAX_EVENTS",
    "MAX_PAUSE",
    "MAX_RETRY_AFTER",
    "MAX_SPEED",
    "MIN_SPEED",
    "Faults",
    "Pace",
    "PROVIDERS",
    "Recording",
    "ReplayServer",
    "ServedRequest",
    "create_app",
    "error_body",
    "in_band_error",
    "load_recordings",
    "parse_faults",
    "parse_pace",
    "plan",
    "replay_server",
    "sample_recordings",
    "sniff_api",
    "split_events",
    "Step",
]

#: Whose error shapes the server can answer with (``provider=``); each API's
#: default is its registry row's ``provider``.
PROVIDERS: Final = ("openai", "anthropic", "gemini", "openrouter")

RECORDING_HEADER: Final = "x-streamfold-recording"
FAULT_HEADER: Final = "x-streamfold-fault"
PACE_HEADER: Final = "x-streamfold-pace"

_LINE_END: Final = re.compile(rb"\r\n|\r|\n")
_SPLITS: Final = ("utf8", "crlf", "bytes")
_SPLIT_CR_LF: Final = re.compile(rb"\r(?=\n)")
_BARE_LINE_END: Final = re.compile(rb"\r\n|\r|\n")
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
_log = logging.getLogger("streamfold.server")


# -- recordings ------------------------------------------------------------------------


def split_events(data: bytes) -> list[bytes]:
    """Cut an SSE body into blocks, each ending with its blank line (the last
    may lack one). Joined, the blocks are the body again, byte for byte."""
    blocks: list[bytes] = []
    start = previous_end = 0
    for match in _LINE_END.finditer(data):
        if match.start() == previous_end:  # an empty line: the block ends here
            blocks.append(data[start : match.end()])
            start = match.end()
        previous_end = match.end()
    if start < len(data):
        blocks.append(data[start:])
    return blocks


def _block_lines(block: bytes) -> list[bytes]:
    return [line for line in _LINE_END.split(block.removeprefix(b"\xef\xbb\xbf")) if line]


def _block_data(block: bytes) -> bytes | None:
    """The data of a block (lines joined with LF), or ``None`` without a data field."""
    data = [
        line[5:].removeprefix(b" ") if line != b"data" else b""
        for line in _block_lines(block)
        if line == b"data" or line.startswith(b"data:")
    ]
    return b"\n".join(data) if data else None


def _block_event(block: bytes) -> bytes | None:
    for line in _block_lines(block):
        if line.startswith(b"event:"):
            return line[6:].strip()
    return None


def sniff_api(data: bytes) -> str | None:
    """Which API a recording speaks (its dialect id), detected from its first event
    with data as ``dialect="auto"`` does; ``None`` when no dialect reads it."""
    decoder = SSEDecoder()
    try:
        for event in [*decoder.feed(data), *decoder.close()]:
            if event.raw.strip() == b"[DONE]":
                continue
            cls = dialects.detect(event, decode_json(event))
            return None if cls is None else cls.name
    except StreamfoldError:
        return None
    return None


@dataclass(frozen=True)
class Recording:
    """One recorded stream, served as it was recorded.

    Attributes:
        name: how requests select it (the file name without ``.sse``).
        data: the recorded body.
        api: the API it speaks, a dialect id (sniffed when not given; a short
            name is accepted), or ``None``.
        blocks: the body cut into SSE blocks (``split_events``).
    """

    name: str
    data: bytes
    api: str | None = None
    blocks: tuple[bytes, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        api = sniff_api(self.data) if self.api is None else get_api(self.api).id
        object.__setattr__(self, "api", api)
        object.__setattr__(self, "blocks", tuple(split_events(self.data)))

    @classmethod
    def from_file(cls, path: str | Path, name: str | None = None) -> Recording:
        """Load a ``.sse`` file; its name is the file name without the suffix."""
        path = Path(path)
        return cls(name or path.stem, path.read_bytes())


def load_recordings(*paths: str | Path) -> dict[str, Recording]:
    """The recordings in ``.sse`` files and directories of them, by name.

    Raises:
        UsageError: a path does not exist, or two recordings share a name.
    """
    found: dict[str, Recording] = {}
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            files = sorted(path.glob("*.sse"))
        elif path.is_file():
            files = [path]
        else:
            raise UsageError(f"no recording at {path}")
        for file in files:
            recording = Recording.from_file(file)
            if recording.name in found:
                raise UsageError(f"two recordings are named {recording.name!r}")
            found[recording.name] = recording
    return found


def sample_recordings() -> dict[str, Recording]:
    """The sample recordings shipped with streamfold (``streamfold.samples``)."""
    from .. import samples

    return {s.name: Recording(s.name, samples.read(s.name), s.api) for s in samples.SAMPLES}


# -- knobs -------------------------------------------------------------------------------


#: The bounds of every numeric knob, inclusive: event counts (more than any
#: recording holds), pauses in seconds (the client's default idle deadline;
#: also the longest pause a pace may make once divided by its speed),
#: ``retry-after`` in seconds (a day), and the pace's speed.
MAX_EVENTS: Final = 1_000_000
MAX_PAUSE: Final = 600.0
MAX_RETRY_AFTER: Final = 86_400.0
MIN_SPEED: Final = 0.001
MAX_SPEED: Final = 1000.0

_Bounds: TypeAlias = tuple[str, "type[int] | type[float]", float, float, str]

# attribute: (knob, int or float, lowest, highest, unit)
_FAULT_NUMBERS: Final[dict[str, _Bounds]] = {
    "drop_after": ("drop-after", int, 0, MAX_EVENTS, "events"),
    "stall": ("stall", float, 0, MAX_PAUSE, "seconds"),
    "stall_after": ("stall-after", int, 0, MAX_EVENTS, "events"),
    "malformed_after": ("malformed-after", int, 0, MAX_EVENTS, "events"),
    "error_after": ("error-after", int, 0, MAX_EVENTS, "events"),
    "status": ("status", int, 400, 599, "(an error status)"),
    "retry_after": ("retry-after", float, 0, MAX_RETRY_AFTER, "seconds"),
}
_PACE_NUMBERS: Final[dict[str, _Bounds]] = {
    "ttft": ("ttft", float, 0, MAX_PAUSE, "seconds"),
    "gap": ("gap", float, 0, MAX_PAUSE, "seconds"),
    "speed": ("speed", float, MIN_SPEED, MAX_SPEED, "(a divisor of the pauses)"),
}


def _check(value: Any, bounds: _Bounds) -> None:
    knob, kind, low, high, unit = bounds
    # One comparison refuses NaN too (every comparison with it is false), and
    # infinity; a bool is no number, a float no count.
    allowed = int if kind is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, allowed) or not low <= value <= high:
        what = "a whole number" if kind is int else "a number"
        raise ValueError(f"{knob}={value!r}: use {what} from {low:.15g} to {high:.15g} {unit}")


@dataclass(frozen=True)
class Faults:
    """The faults injected into one response (see the module docstring).

    Raises:
        ValueError: a knob out of its bounds (``MAX_EVENTS``, ``MAX_PAUSE``,
            ``MAX_RETRY_AFTER``, a 4xx/5xx status), an unknown ``split`` or
            ``provider``; the message names the knob.
    """

    drop_after: int | None = None
    stall: float = 0.0
    stall_after: int = 1
    malformed_after: int | None = None
    error_after: int | None = None
    status: int | None = None
    retry_after: float | None = None
    json_body: bool = False
    split: str | None = None
    provider: str | None = None

    def __post_init__(self) -> None:
        for attribute, bounds in _FAULT_NUMBERS.items():
            value = getattr(self, attribute)
            if value is not None:
                _check(value, bounds)
        split = self.split
        if split is not None and split not in _SPLITS and _split_size(split) is None:
            raise ValueError(
                f"split={split!r}: use utf8, crlf, bytes or a count from 1 to {MAX_EVENTS}"
            )
        if self.provider is not None and self.provider not in PROVIDERS:
            raise ValueError(f"provider={self.provider!r}: use one of {', '.join(PROVIDERS)}")


def _split_size(split: str) -> int | None:
    # ASCII digits only: str.isdigit() also takes '²', which int() refuses.
    if not (split.isascii() and split.isdigit()) or len(split) > 7:
        return None
    size = int(split)
    return size if 1 <= size <= MAX_EVENTS else None


@dataclass(frozen=True)
class Pace:
    """When events are sent: ``ttft`` before the first, ``gap`` between the
    others, both divided by ``speed``.

    Raises:
        ValueError: a knob out of its bounds (``MAX_PAUSE``, ``MIN_SPEED`` to
            ``MAX_SPEED``), or a pause longer than ``MAX_PAUSE`` once divided
            by the speed; the message names the knob.
    """

    ttft: float = 0.0
    gap: float = 0.0
    speed: float = 1.0

    def __post_init__(self) -> None:
        for attribute, bounds in _PACE_NUMBERS.items():
            _check(getattr(self, attribute), bounds)
        for knob in ("ttft", "gap"):
            pause = getattr(self, knob) / self.speed
            if pause > MAX_PAUSE:
                raise ValueError(
                    f"{knob}={getattr(self, knob):g} at speed={self.speed:g} pauses "
                    f"{pause:g} seconds: keep each pause within {MAX_PAUSE:g}"
                )

    def delay(self, index: int) -> float:
        """The pause before the event numbered ``index`` (0-based)."""
        return (self.ttft if index == 0 else self.gap) / self.speed


PACES: Final = {"fast": Pace(), "realistic": Pace(ttft=0.4, gap=0.025)}


def _items(text: str) -> Iterator[tuple[str, str | None]]:
    for item in re.split(r"[;,]", text):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        yield name.strip().lower(), value.strip() if sep else None


def _number(name: str, value: str | None, kind: type[int] | type[float]) -> int | float:
    # The text to a number; its bounds are checked by Faults and Pace.
    if value is None:
        raise ValueError(f"{name} needs a value ({name}=...)")
    try:
        return kind(value)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise ValueError(f"{name}={shown!r} is not {what}") from None


_FAULT_KNOBS: Final = {
    bounds[0]: (attribute, bounds[1]) for attribute, bounds in _FAULT_NUMBERS.items()
}


def parse_faults(text: str) -> Faults:
    """Parse an ``X-Streamfold-Fault`` value, e.g. ``"drop-after=3"`` or
    ``"split=utf8, stall=0.5, stall-after=2"``; ``"none"`` or ``""`` for none.

    Raises:
        ValueError: an unknown knob or a bad value, NaN, infinity or out of
            bounds (the message names the knob).
    """
    values: dict[str, Any] = {}
    for name, value in _items(text):
        if name == "none" and value is None:
            continue
        if name in _FAULT_KNOBS:
            attribute, kind = _FAULT_KNOBS[name]
            values[attribute] = _number(name, value, kind)
        elif name == "json-body":
            values["json_body"] = True
        elif name in ("split", "provider"):
            if value is None:
                raise ValueError(f"{name} needs a value ({name}=...)")
            values[name] = value
        else:
            known = ", ".join([*_FAULT_KNOBS, "json-body", "split", "provider", "none"])
            raise ValueError(f"unknown fault {name!r} (known: {known})")
    return Faults(**values)


def parse_pace(text: str) -> Pace:
    """Parse an ``X-Streamfold-Pace`` value: ``"fast"``, ``"realistic"``, or
    ``ttft``/``gap``/``speed`` knobs, e.g. ``"realistic, speed=4"``.

    Raises:
        ValueError: an unknown preset or knob, or a bad value: NaN, infinity,
            out of bounds, or a pause over ``MAX_PAUSE`` at that speed.
    """
    pace = Pace()
    values: dict[str, float] = {}
    for name, value in _items(text):
        if value is None and name in PACES:
            pace = PACES[name]
        elif name in _PACE_NUMBERS:
            values[name] = _number(name, value, float)
        else:
            raise ValueError(f"unknown pace {name!r} (use fast, realistic, ttft=, gap=, speed=)")
    return Pace(
        ttft=values.get("ttft", pace.ttft),
        gap=values.get("gap", pace.gap),
        speed=values.get("speed", pace.speed),
    )


# -- provider error shapes -----------------------------------------------------------------


_OPENAI_ERRORS: Final = {
    400: ("invalid_request_error", None, "The request was invalid."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported.",
    ),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests per min (RPM): Limit 500, Used 500, Requested 1. "
        "Please try again in 1s.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
}
_ANTHROPIC_ERRORS: Final = {
    400: (
        "invalid_request_error",
        "There was an issue with the format or content of your request.",
    ),
    401: ("authentication_error", "There's an issue with your API key."),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "The requested resource was not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Your account has hit a rate limit."),
    500: ("api_error", "An unexpected error has occurred internal to Anthropic's systems."),
    504: ("timeout_error", "The request timed out."),
    529: ("overloaded_error", "Overloaded"),
}
_GEMINI_QUOTA_METRIC: Final = "generativelanguage.googleapis.com/generate_content_requests"
_GEMINI_ERRORS: Final = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    403: ("PERMISSION_DENIED", "The caller does not have permission."),
    404: ("NOT_FOUND", "Requested entity was not found."),
    429: (
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details.",
    ),
    500: (
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "The request timed out. Please try again."),
}


def error_body(
    provider: str, status: int, request_id: str, retry_after: float | None = None
) -> dict[str, Any]:
    """The error body ``provider`` answers with on an HTTP ``status``.

    OpenAI: ``{"error": {"message", "type", "param", "code"}}``; Anthropic:
    ``{"type": "error", "error": {"type", "message"}, "request_id"}``; Gemini:
    ``{"error": {"code", "message", "status", "details"}}`` (a ``RetryInfo`` in
    ``details`` on 429); OpenRouter: ``{"error": {"code", "message", "metadata"}}``.
    """
    if provider == "anthropic":
        kind, message = _ANTHROPIC_ERRORS.get(
            status,
            (
                "api_error" if status >= 500 else "invalid_request_error",
                f"The service answered HTTP {status}.",
            ),
        )
        return {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": request_id,
        }
    if provider == "gemini":
        state, message = _GEMINI_ERRORS.get(
            status,
            (
                "UNAVAILABLE" if status >= 500 else "FAILED_PRECONDITION",
                f"The service answered HTTP {status}.",
            ),
        )
        error: dict[str, Any] = {"code": status, "message": message, "status": state}
        if status == 429:
            delay = f"{retry_after:g}s" if retry_after is not None else "1s"
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": _GEMINI_QUOTA_METRIC,
                            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                        }
                    ],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
            ]
        return {"error": error}
    if provider == "openrouter":
        message = {
            429: "Rate limit exceeded: too many requests.",
            502: "Provider returned error",
            503: "No available model provider meets your routing requirements.",
        }.get(status, f"The service answered HTTP {status}.")
        return {
            "error": {"code": status, "message": message, "metadata": {"provider_name": "replay"}}
        }
    kind, code, message = _OPENAI_ERRORS.get(
        status,
        (
            "server_error" if status >= 500 else "invalid_request_error",
            None,
            f"The service answered HTTP {status}.",
        ),
    )
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def in_band_error(provider: str, api: str, sequence: int, line_end: bytes = b"\n") -> bytes:
    """The error event ``provider`` sends inside a stream that began with HTTP 200.

    OpenAI Chat: a data-only ``{"error": {...}}`` chunk; OpenAI Responses: an
    ``error`` event; Anthropic: ``event: error`` with an ``overloaded_error``;
    Gemini: a data-only ``{"error": {...}}``; OpenRouter: a chunk with ``error``
    beside ``finish_reason: "error"``.
    """
    event: bytes | None = None
    payload: Any
    if provider == "anthropic":
        event = b"error"
        payload = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    elif provider == "gemini":
        payload = {
            "error": {
                "code": 503,
                "message": "The model is overloaded. Please try again later.",
                "status": "UNAVAILABLE",
            }
        }
    elif provider == "openrouter":
        payload = {
            "id": "gen-replay",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "replay",
            "provider": "replay",
            "error": {"code": "server_error", "message": "Provider disconnected unexpectedly"},
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
        }
    elif api == "openai-responses":
        event = b"error"
        payload = {
            "type": "error",
            "code": "server_error",
            "message": "The server had an error while processing your request. Sorry about that!",
            "param": None,
            "sequence_number": sequence,
        }
    else:
        payload = {
            "error": {
                "message": "The server had an error while processing your request. "
                "Sorry about that!",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }
    head = b"event: " + event + line_end if event else b""
    return head + b"data: " + _encode(payload) + line_end + line_end


def _malformed(event: bytes | None, line_end: bytes) -> bytes:
    head = b"event: " + event + line_end if event else b""
    return (
        head
        + b'data: {"malformed": true, "note": "this event is cut off in the mid'
        + (line_end + line_end)
    )


# -- the plan of one response ------------------------------------------------------------------


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


#: In a plan, where the connection is dropped.
DROP: Final = _Drop()


@dataclass(frozen=True)
class Step:
    """One write of a response: wait ``delay`` seconds, then send ``data`` (or
    drop the connection at ``DROP``); ``event`` counts an event completed by it."""

    delay: float
    data: bytes | _Drop
    event: bool = False


def _line_end(data: bytes) -> bytes:
    return b"\r\n" if b"\r\n" in data[:4096] else b"\n"


def _cut(piece: bytes, split: str | None) -> list[bytes]:
    if not split or not piece:
        return [piece]
    if split == "utf8":
        # Cut after the lead byte of every multi-byte character.
        points = [i + 1 for i, byte in enumerate(piece) if byte >= 0xC0]
    elif split == "crlf":
        points = [m.end() for m in _SPLIT_CR_LF.finditer(piece)]
    else:
        size = 1 if split == "bytes" else int(split)
        points = list(range(size, len(piece), size))
    bounds = [0, *points, len(piece)]
    return [piece[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _to_crlf(block: bytes) -> bytes:
    return _BARE_LINE_END.sub(b"\r\n", block)


def _as_json_array(blocks: Iterable[bytes]) -> list[bytes]:
    # Gemini's streamGenerateContent without alt=sse: one JSON array, an
    # element per chunk, separated by ",\r\n".
    elements = []
    for block in blocks:
        data = _block_data(block)
        if data is not None and data.strip() != b"[DONE]":
            elements.append(data)
    pieces = [(b"[" if i == 0 else b",\r\n") + element for i, element in enumerate(elements)]
    return pieces or [b"["]


def plan(
    recording: Recording,
    faults: Faults,
    pace: Pace,
    *,
    provider: str,
    api: str,
    json_array: bool = False,
) -> list[Step]:
    """The writes that serve ``recording`` with ``faults`` at ``pace``.

    A pure function: the server only sleeps, sends and drops as the steps say.
    """
    line_end = b"\r\n" if faults.split == "crlf" else _line_end(recording.data)
    blocks = _as_json_array(recording.blocks) if json_array else list(recording.blocks)
    steps: list[Step] = []
    sent = 0
    last_event: bytes | None = None

    def emit(block: bytes, delay: float, event: bool) -> None:
        if faults.split == "crlf" and not json_array:
            block = _to_crlf(block)
        pieces = _cut(block, faults.split)
        for i, piece in enumerate(pieces):
            steps.append(Step(delay if i == 0 else 0.0, piece, event and i == len(pieces) - 1))

    for block in blocks:
        is_event = json_array or _block_data(block) is not None
        if not is_event:
            emit(block, 0.0, False)
            continue
        delay = pace.delay(sent)
        if faults.stall and sent == faults.stall_after:
            delay += faults.stall
        if sent == faults.drop_after:
            steps.append(Step(delay, DROP))
            return steps
        if sent == faults.error_after:
            if json_array:
                error = in_band_error(provider, api, sent).split(b"data: ", 1)[1].rstrip()
                emit((b"[" if sent == 0 else b",\r\n") + error + b"]", delay, True)
            else:
                emit(in_band_error(provider, api, sent, line_end), delay, True)
            return steps
        if sent == faults.malformed_after:
            if json_array:
                opening = b"[" if sent == 0 else b",\r\n"
                emit(opening + b'{"malformed": true, "note": "cut', delay, True)
            else:
                emit(_malformed(last_event, line_end), delay, True)
            delay = pace.delay(sent + 1)
        last_event = _block_event(block)
        emit(block, delay, True)
        sent += 1
    if faults.drop_after is not None and faults.drop_after >= sent:
        steps.append(Step(0.0, DROP))
    elif json_array:
        emit(b"]", 0.0, False)
    return steps


# -- the application ---------------------------------------------------------------------------


@dataclass
class ServedRequest:
    """One request the server answered.

    Attributes:
        id: the request id sent back (``x-request-id``, Anthropic's ``request-id``).
        method, path, api: what was asked (``api``: the route's dialect id).
        model: the model the request named.
        recording: the recording served, or ``None``.
        faults, pace: the knobs in force.
        body: the request body, decoded from JSON (``None`` when it was not JSON).
        status: the HTTP status answered.
        events_sent: events written (the injected error or malformed one included).
        outcome: ``pending``, ``complete``, ``dropped``, ``disconnected``, ``error``
            (an error status or body) or ``cancelled`` (the server stopped).
    """

    id: str
    method: str
    path: str
    api: str
    model: str | None
    recording: str | None
    faults: Faults
    pace: Pace
    body: Any
    status: int = 200
    events_sent: int = 0
    outcome: str = "pending"
    finished: threading.Event = field(default_factory=threading.Event, repr=False)

    def wait(self, timeout: float = 5.0) -> str:
        """Wait until the response has ended; the outcome (``pending`` on timeout)."""
        self.finished.wait(timeout)
        return self.outcome

    def end(self, outcome: str) -> None:
        if self.outcome == "pending":
            self.outcome = outcome
        self.finished.set()


class _DroppedOnPurpose(Exception):
    """Raised to make the server close the connection mid-body (a fault)."""


class _QuietDrops(logging.Filter):
    # uvicorn logs the exception that aborted a response; a drop on purpose is
    # no error.
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, _DroppedOnPurpose)


class _Replay(Response):
    """Plays a plan: writes, pauses, drops, and notices a client that leaves."""

    def __init__(
        self, steps: list[Step], headers: dict[str, str], record: ServedRequest, media_type: str
    ) -> None:
        super().__init__(status_code=200, headers=headers, media_type=media_type)
        self.steps = steps
        self.record = record
        self._complete = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        record = self.record
        headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        dropped = False
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            async with anyio.create_task_group() as group:
                group.start_soon(self._watch, receive, group.cancel_scope)
                dropped = await self._play(send)
                group.cancel_scope.cancel()
        except BaseException:
            record.end("cancelled")
            raise
        if dropped:
            record.end("dropped")
            raise _DroppedOnPurpose(f"request {record.id}: connection dropped on purpose")
        record.end("disconnected" if not self._complete else "complete")

    async def _play(self, send: Send) -> bool:
        record = self.record
        for step in self.steps:
            if step.delay:
                await anyio.sleep(step.delay)
            if not isinstance(step.data, bytes):
                return True  # DROP
            await send({"type": "http.response.body", "body": step.data, "more_body": True})
            if step.event:
                record.events_sent += 1
        self._complete = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return False

    async def _watch(self, receive: Receive, scope: anyio.CancelScope) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if not self._complete:
                    scope.cancel()
                return


class _App:
    def __init__(
        self,
        recordings: dict[str, Recording],
        faults: Faults,
        pace: Pace,
        on_request: Callable[[ServedRequest], None] | None,
    ) -> None:
        self.recordings = dict(sorted(recordings.items()))
        self.faults = faults
        self.pace = pace
        self.on_request = on_request
        self.requests: list[ServedRequest] = []
        self.lock = threading.Lock()
        self.counter = itertools.count(1)

    def route(self, api: API) -> Callable[[Request], Awaitable[Response]]:
        """The handler of ``api``'s routes."""

        async def handle(request: Request) -> Response:
            if api.model_in_body:
                return await self.serve(request, api)
            return await self.gemini(request, api)

        return handle

    async def gemini(self, request: Request, api: API) -> Response:
        # Gemini names the model and the action in the path
        # (/v1beta/models/{model}:streamGenerateContent); ?alt=sse asks for
        # server-sent events, else the stream is one JSON array.
        model, _, action = request.path_params["target"].partition(":")
        if action != "streamGenerateContent":
            body = error_body("gemini", 404, "")
            body["error"]["message"] = (
                f"the replay server serves only :streamGenerateContent, not :{action}"
            )
            return JSONResponse(body, status_code=404)
        array = request.query_params.get("alt") != "sse"
        return await self.serve(request, api, model=model, json_array=array)

    async def list_recordings(self, request: Request) -> Response:
        return JSONResponse(
            {"recordings": [{"name": r.name, "api": r.api} for r in self.recordings.values()]}
        )

    def choose(self, request: Request, api: str, model: str | None) -> Recording | None:
        name = request.headers.get(RECORDING_HEADER)
        if name:
            return self.recordings.get(name)
        if model and model in self.recordings:
            return self.recordings[model]
        for recording in self.recordings.values():
            if recording.api == api:
                return recording
        return None

    async def serve(
        self, request: Request, row: API, *, model: str | None = None, json_array: bool = False
    ) -> Response:
        raw = await request.body()
        try:
            body = _decode(raw) if raw else None
        except msgspec.DecodeError:
            body = None
        if model is None and isinstance(body, dict) and isinstance(body.get("model"), str):
            model = body["model"]
        request_id = f"req_replay_{next(self.counter):06d}"
        api, provider = row.id, row.provider
        try:
            fault_header = request.headers.get(FAULT_HEADER)
            pace_header = request.headers.get(PACE_HEADER)
            faults = parse_faults(fault_header) if fault_header is not None else self.faults
            pace = parse_pace(pace_header) if pace_header is not None else self.pace
        except ValueError as exc:
            return self.refuse(request, api, model, provider, request_id, 400, str(exc))
        provider = faults.provider or provider
        recording = self.choose(request, api, model)
        record = ServedRequest(
            request_id,
            request.method,
            request.url.path,
            api,
            model,
            recording.name if recording else None,
            faults,
            pace,
            body,
        )
        self.remember(record)
        headers = _headers(provider, request_id, api)
        if recording is None:
            known = ", ".join(self.recordings) or "(none)"
            wanted = request.headers.get(RECORDING_HEADER) or model
            return self.answer_error(
                record,
                provider,
                404,
                headers,
                f"no recording named {wanted!r} for {api} (known: {known})",
            )
        if faults.status is not None:
            return self.answer_error(record, provider, faults.status, headers)
        if faults.json_body:
            record.end("error")
            return JSONResponse(error_body(provider, 500, request_id), headers=headers)
        steps = plan(recording, faults, pace, provider=provider, api=api, json_array=json_array)
        media = "application/json" if json_array else "text/event-stream"
        headers["cache-control"] = "no-cache"
        return _Replay(steps, headers, record, media)

    def remember(self, record: ServedRequest) -> None:
        with self.lock:
            self.requests.append(record)
        if self.on_request is not None:
            self.on_request(record)

    def refuse(
        self,
        request: Request,
        api: str,
        model: str | None,
        provider: str,
        request_id: str,
        status: int,
        message: str,
    ) -> Response:
        record = ServedRequest(
            request_id, request.method, request.url.path, api, model, None, Faults(), Pace(), None
        )
        self.remember(record)
        return self.answer_error(
            record, provider, status, _headers(provider, request_id, api), message
        )

    def answer_error(
        self,
        record: ServedRequest,
        provider: str,
        status: int,
        headers: dict[str, str],
        message: str | None = None,
    ) -> Response:
        faults = record.faults
        retry_after = faults.retry_after
        if retry_after is None and status in (429, 503, 529):
            retry_after = 1.0
        body = error_body(provider, status, record.id, retry_after)
        if message is not None:
            body["error"]["message"] = message
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        record.status = status
        record.end("error")
        return JSONResponse(body, status_code=status, headers=headers)


def _headers(provider: str, request_id: str, api: str) -> dict[str, str]:
    # The headers each provider sends beside a stream: its request id and its
    # rate-limit headers (values made up, names as documented).
    if provider == "anthropic":
        return {
            "request-id": request_id,
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "49",
            "anthropic-ratelimit-requests-reset": "2030-01-01T00:00:01Z",
            "anthropic-ratelimit-tokens-limit": "40000",
            "anthropic-ratelimit-tokens-remaining": "39000",
            "anthropic-ratelimit-tokens-reset": "2030-01-01T00:00:01Z",
        }
    headers = {"x-request-id": request_id}
    if provider in ("openai", "openrouter") and api in ("openai-chat", "openai-responses"):
        headers.update(
            {
                "x-ratelimit-limit-requests": "500",
                "x-ratelimit-remaining-requests": "499",
                "x-ratelimit-reset-requests": "120ms",
                "x-ratelimit-limit-tokens": "30000",
                "x-ratelimit-remaining-tokens": "29000",
                "x-ratelimit-reset-tokens": "2s",
            }
        )
    return headers


def create_app(
    recordings: dict[str, Recording] | None = None,
    *,
    faults: Faults | None = None,
    pace: Pace | None = None,
    on_request: Callable[[ServedRequest], None] | None = None,
) -> Starlette:
    """The Starlette application of the replay server.

    Args:
        recordings: by name; the shipped samples when ``None``.
        faults: the faults of requests without an ``X-Streamfold-Fault`` header.
        pace: the pace of requests without an ``X-Streamfold-Pace`` header.
        on_request: called with each request's record as it starts.

    The list of served requests is ``app.state.requests``.
    """
    state = _App(
        sample_recordings() if recordings is None else recordings,
        faults or Faults(),
        pace or Pace(),
        on_request,
    )
    routes = [
        Route(path, state.route(api), methods=["POST"]) for api in APIS for path in api.routes
    ]
    routes.append(Route("/recordings", state.list_recordings, methods=["GET"]))
    app = Starlette(routes=routes)
    app.state.requests = state.requests
    app.state.replay = state
    return app


# -- running it ----------------------------------------------------------------------------------


_quiet = _QuietDrops()


class ReplayServer:
    """The replay server on a loopback port, in a background thread.

    ::

        with ReplayServer() as server:           # the shipped samples, a free port
            stream = streamfold.stream("hi", model="chat-reasoning", base_url=server.url)

    Args:
        recordings: by name (``load_recordings``); the shipped samples when ``None``.
        host: the address to listen on (loopback by default).
        port: the port; 0 picks a free one.
        faults: the default faults (requests may set their own).
        pace: the default pace (requests may set their own).
        on_request: called with each request's record as it starts.
    """

    def __init__(
        self,
        recordings: dict[str, Recording] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        pace: Pace | None = None,
        on_request: Callable[[ServedRequest], None] | None = None,
    ) -> None:
        self.app = create_app(recordings, faults=faults, pace=pace, on_request=on_request)
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def recordings(self) -> dict[str, Recording]:
        """The recordings served, by name."""
        recordings: dict[str, Recording] = self.app.state.replay.recordings
        return recordings

    @property
    def requests(self) -> list[ServedRequest]:
        """Every request served so far, in order."""
        with self.app.state.replay.lock:
            return list(self.app.state.requests)

    def request(self, request_id: str | None) -> ServedRequest:
        """The record of the request with this id.

        Raises:
            KeyError: no request has this id.
        """
        for record in self.requests:
            if record.id == request_id:
                return record
        raise KeyError(request_id)

    def start(self, timeout: float = 10.0) -> ReplayServer:
        """Bind the port and start serving in a background thread.

        Raises:
            OSError: the address cannot be bound.
            RuntimeError: the server did not start within ``timeout`` seconds.
        """
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        logging.getLogger("uvicorn.error").addFilter(_quiet)
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            http="h11",
            loop="asyncio",
            backlog=4096,
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        # The thread is no main thread: uvicorn installs no signal handlers there.
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="streamfold-replay", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive():
                sock.close()
                self._server = self._thread = None
                raise RuntimeError("the replay server failed to start")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the replay server did not start in time")
            time.sleep(0.002)
        return self

    def stop(self) -> None:
        """Stop serving; streams still open are cut."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        server.force_exit = True
        thread.join(10)
        self._server = self._thread = None

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._server is not None else "stopped"
        return f"<ReplayServer {self.url} {state}, {len(self.recordings)} recordings>"


@contextlib.contextmanager
def replay_server(
    recordings: dict[str, Recording] | None = None, **options: Any
) -> Iterator[ReplayServer]:
    """``ReplayServer(...)`` started for the ``with`` block."""
    server = ReplayServer(recordings, **options).start()
    try:
        yield server
    finally:
        server.stop()
