"""The replay server: recordings served as provider endpoints, with pacing and
fault injection chosen per request, and a recording proxy to the real APIs.

Built on Starlette (routing, requests, responses) and uvicorn (the HTTP/1.1
server, h11 underneath): an established ASGI stack, so the bytes on the wire
come from a real HTTP implementation, chunked transfer encoding included, and
the server runs in the same process as a test (a thread with its own event
loop) or as ``streamfold serve``.

Routes, one set per API of the registry (a base URL of ``http://host:port``
works with each SDK's convention)::

    POST /v1/chat/completions, /chat/completions      OpenAI Chat Completions
    POST /v1/responses, /responses                    OpenAI Responses
    POST /v1/messages                                 Anthropic Messages
    POST /{version}/models/{model}:streamGenerateContent[?alt=sse]   Gemini
    POST /model/{model}/converse-stream               Amazon Bedrock ConverseStream
    POST /model/{model}/invoke-with-response-stream   Claude on Bedrock (InvokeModel...)
    POST /api/chat, /api/generate                     Ollama (NDJSON)
    GET  /v1/responses/{id}?stream=true&starting_after=N   a background response, re-attached
    GET  /recordings                                  the recordings served

(and the other rows' routes: ``GET /recordings`` lists them). Each route writes
its API's framing: SSE, Gemini's JSON array, Bedrock's AWS event-stream frames
(a recording keeps its members wrapped, ``{"messageStart": {...}}``, and each
is written as the message the wire carries), Ollama's NDJSON.

Which recording answers (``ReplayContext.choose``): the one the
``X-Streamfold-Recording`` header names; else the next turn of a script
(``inject``'s twin, ``script``); else the recording or conversation the model
names; else the recording whose API, model and request body match the
request's (``recordings.request_key``); else, when recording, the upstream
API's answer, recorded; else a 404 in the provider's shape listing the
recordings of the route's API. A recording of another API is re-encoded
(``streamfold.encode``) when a dialect reads it and an encoder writes the
route's; otherwise it is not served there.

Per request, two headers (or the context's and the server's defaults):

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
  bytes), ``provider=openai|anthropic|gemini|openrouter|bedrock|ollama`` (whose
  error shapes to use; the route's provider by default), ``event-ids`` (an ``id``
  on every event, which a request with ``Last-Event-ID`` resumes after),
  ``sse-retry=MS`` (a ``retry`` field in the first event), ``overlap=N`` (a
  resumed stream starts N events early: events the client has already);
  and the rule's scope:
  ``times=N`` (only the first N requests it applies to), ``recording=NAME``
  (only requests answered by that recording), ``route=PATH`` (only requests
  to that path).

Every number is finite and within bounds, else the request is answered with
HTTP 400 naming the knob (and ``Faults``, ``Pace``, ``FaultRule``,
``parse_faults``, ``parse_pace``, ``parse_rule`` raise ``ValueError``): counts
of events 0 to ``MAX_EVENTS`` (1,000,000; ``split=N`` and ``times=N`` from 1),
``stall``, ``ttft`` and ``gap`` 0 to ``MAX_PAUSE`` (600 s, also the longest
pause once divided by ``speed``), ``retry-after`` 0 to ``MAX_RETRY_AFTER``
(86,400 s), ``speed`` ``MIN_SPEED`` to ``MAX_SPEED`` (0.001 to 1000),
``status`` 400 to 599, ``sse-retry`` 0 to 600,000 ms.

Resumable streams: a Responses request with ``background: true`` is kept under
its response id, and ``GET .../responses/{id}?stream=true&starting_after=N``
serves its events numbered after N; with ``event-ids`` each event's id names
the request and the event (``req_replay_000001.7``), and the same request
sent again with ``Last-Event-ID`` serves the events after it (from the same
recording, whatever the matching would choose now). Either is served with the
faults of its own request, so a test cuts the first connection only
(``times=1``) and checks that the resumed result equals the uncut one.

Every request is recorded (``ServedRequest``, in its context's ``requests``):
its body, the recording, the knobs, the events and bytes sent, how long it
took and how it ended (``OUTCOMES``); ``ServedRequest.log_line()`` says it in
one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import itertools
import logging
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeAlias
from urllib.parse import urlsplit

import anyio
import anyio.lowlevel
import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..dialects.registry import API, APIS, Routed, get_api
from ..errors import UsageError
from .framings import BodyFraming, SSEFraming, get_framing, split_events
from .recordings import (
    DEFAULT_IGNORE,
    RecordedRequest,
    Recording,
    can_reencode,
    kept_headers,
    load_recordings,
    natural_key,
    new_name,
    redacted_body,
    reencode,
    request_key,
    sample_recordings,
    save_recording,
    sniff_api,
    without_secret_params,
)
from .redact import redact_text, redact_url, secrets_of

__all__ = [
    "DROP",
    "MAX_EVENTS",
    "MAX_PAUSE",
    "MAX_RETRY_AFTER",
    "MAX_SPEED",
    "MIN_SPEED",
    "OUTCOMES",
    "PROVIDERS",
    "RECORD_MODES",
    "FaultRule",
    "Faults",
    "Pace",
    "Recording",
    "ReplayContext",
    "ReplayServer",
    "ServedRequest",
    "Step",
    "create_app",
    "error_body",
    "in_band_error",
    "in_band_event",
    "load_recordings",
    "parse_faults",
    "parse_pace",
    "parse_rule",
    "parse_upstreams",
    "plan",
    "replay_server",
    "sample_recordings",
    "sniff_api",
    "split_events",
    "upstream_url",
]

#: Whose error shapes the server can answer with (``provider=``); each API's
#: default is its registry row's ``provider``.
PROVIDERS: Final = ("openai", "anthropic", "gemini", "openrouter", "bedrock", "ollama")

#: How the server records (VCR's modes): ``once`` replays what it has and
#: records what is missing, ``all`` records every request again, ``none``
#: replays only (a request with no recording is a 404 that says so).
RECORD_MODES: Final = ("once", "all", "none")

#: How a request ended: ``complete`` (the whole response sent; pace, stalls and
#: splits included), ``fault`` (an injected error: a status, a JSON error
#: body, an in-band error or a malformed event), ``dropped`` (cut on purpose,
#: ``drop-after``), ``disconnected`` (the client left first), ``not-found``
#: (a 404: no recording), ``refused`` (a 400: a bad knob), ``upstream-failed``
#: (the upstream API could not be reached or broke mid-stream),
#: ``cancelled`` (the server stopped); ``pending`` until then.
OUTCOMES: Final = (
    "complete",
    "fault",
    "dropped",
    "disconnected",
    "not-found",
    "refused",
    "upstream-failed",
    "cancelled",
)

RECORDING_HEADER: Final = "x-streamfold-recording"
FAULT_HEADER: Final = "x-streamfold-fault"
PACE_HEADER: Final = "x-streamfold-pace"

_SPLITS: Final = ("utf8", "crlf", "bytes")
_SPLIT_CR_LF: Final = re.compile(rb"\r(?=\n)")
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
_log = logging.getLogger("streamfold.server")


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
    "sse_retry": ("sse-retry", int, 0, int(MAX_PAUSE * 1000), "milliseconds"),
    "overlap": ("overlap", int, 0, MAX_EVENTS, "events"),
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
    event_ids: bool = False
    sse_retry: int | None = None
    overlap: int = 0

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

    def knobs(self) -> str:
        """The faults as an ``X-Streamfold-Fault`` value, ``""`` for none."""
        items = []
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if value == item.default:
                continue
            knob = item.name.replace("_", "-")
            if value is True:
                items.append(knob)
            else:
                items.append(f"{knob}={value:g}" if isinstance(value, float) else f"{knob}={value}")
        return ", ".join(items)

    @property
    def injects_error(self) -> bool:
        """An error is injected (a status, a JSON body, an in-band or malformed event)."""
        return (
            self.status is not None
            or self.json_body
            or self.error_after is not None
            or self.malformed_after is not None
        )


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
    """Parse the faults of an ``X-Streamfold-Fault`` value, e.g. ``"drop-after=3"``
    or ``"split=utf8, stall=0.5, stall-after=2"``; ``"none"`` or ``""`` for none.

    Raises:
        ValueError: an unknown knob, a scope knob (``times``, ``recording``,
            ``route``: see ``parse_rule``) or a bad value, NaN, infinity or
            out of bounds (the message names the knob).
    """
    rule = parse_rule(text)
    scope = [
        k
        for k, v in (("times", rule.times), ("recording", rule.recording), ("route", rule.route))
        if v is not None
    ]
    if scope:
        raise ValueError(f"{scope[0]}= scopes a fault rule: parse it with parse_rule")
    return rule.faults


def parse_rule(text: str) -> FaultRule:
    """Parse an ``X-Streamfold-Fault`` value, faults and scope, e.g.
    ``"status=429, times=2"`` or ``"drop-after=3, recording=chat-reasoning"``.

    Raises:
        ValueError: an unknown knob or a bad value, NaN, infinity or out of
            bounds (the message names the knob).
    """
    values: dict[str, Any] = {}
    scope: dict[str, Any] = {}
    for name, value in _items(text):
        if name == "none" and value is None:
            continue
        if name in _FAULT_KNOBS:
            attribute, kind = _FAULT_KNOBS[name]
            values[attribute] = _number(name, value, kind)
        elif name in ("json-body", "event-ids"):
            values[name.replace("-", "_")] = True
        elif name in ("split", "provider", "recording", "route"):
            if value is None:
                raise ValueError(f"{name} needs a value ({name}=...)")
            (scope if name in ("recording", "route") else values)[name] = value
        elif name == "times":
            scope["times"] = _number(name, value, int)
        else:
            known = ", ".join(
                [
                    *_FAULT_KNOBS,
                    "json-body",
                    "event-ids",
                    "split",
                    "provider",
                    "none",
                    *_SCOPE_KNOBS,
                ]
            )
            raise ValueError(f"unknown fault {name!r} (known: {known})")
    return FaultRule(Faults(**values), **scope)


_SCOPE_KNOBS: Final = ("times", "recording", "route")


@dataclass(frozen=True)
class FaultRule:
    """Faults for some requests: those its scope takes, the first ``times`` of
    them (counted per context), or all when ``times`` is ``None``.

    Attributes:
        faults: what is injected.
        times: how many requests it applies to, 1 to ``MAX_EVENTS``, or ``None``.
        recording: only requests answered by this recording (or conversation).
        route: only requests to this path (``/v1/messages``).

    Raises:
        ValueError: ``times`` out of its bounds.
    """

    faults: Faults = field(default_factory=Faults)
    times: int | None = None
    recording: str | None = None
    route: str | None = None

    def __post_init__(self) -> None:
        if self.times is not None:
            _check(self.times, ("times", int, 1, MAX_EVENTS, "requests"))

    def takes(self, path: str, recording: Recording | None) -> bool:
        """Whether a request to ``path`` answered by ``recording`` is in scope."""
        if self.route is not None and path != self.route:
            return False
        if self.recording is None:
            return True
        return recording is not None and self.recording in (
            recording.name,
            recording.conversation,
        )

    def knobs(self) -> str:
        """The rule as an ``X-Streamfold-Fault`` value (``""`` for no fault at all)."""
        scope = [
            f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
            for name, value in (
                ("times", self.times),
                ("recording", self.recording),
                ("route", self.route),
            )
            if value is not None
        ]
        return ", ".join(item for item in (self.faults.knobs(), *scope) if item)


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


_BEDROCK_ERRORS: Final = {
    400: "The provided request is not valid.",
    403: "You don't have access to the model with the specified model ID.",
    404: "The specified resource ARN was not found.",
    408: "The request took too long to process.",
    424: "The request failed due to an error while processing the model.",
    429: "Too many requests, please wait before trying again.",
    500: "An internal server error occurred. Retry your request.",
    503: "The service isn't currently available. Try again later.",
}
_OLLAMA_ERRORS: Final = {
    400: "invalid request",
    404: "model not found, try pulling it first",
    429: "too many requests",
    500: "an error was encountered while running the model",
    502: "the cloud model cannot be reached",
}


def error_body(
    provider: str, status: int, request_id: str, retry_after: float | None = None
) -> dict[str, Any]:
    """The error body ``provider`` answers with on an HTTP ``status``.

    OpenAI: ``{"error": {"message", "type", "param", "code"}}``; Anthropic:
    ``{"type": "error", "error": {"type", "message"}, "request_id"}``; Gemini:
    ``{"error": {"code", "message", "status", "details"}}`` (a ``RetryInfo`` in
    ``details`` on 429); OpenRouter: ``{"error": {"code", "message", "metadata"}}``;
    Amazon Bedrock: ``{"message"}`` (its error type is a header); Ollama:
    ``{"error": "<message>"}``.
    """
    if provider == "bedrock":
        return {"message": _BEDROCK_ERRORS.get(status, f"The service answered HTTP {status}.")}
    if provider == "ollama":
        return {"error": _OLLAMA_ERRORS.get(status, f"the service answered HTTP {status}")}
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


def in_band_event(provider: str, api: str, sequence: int) -> tuple[bytes | None, bytes]:
    """The error event ``provider`` sends inside a stream that began with HTTP
    200, as its name (SSE's ``event:``, or ``None``) and its JSON payload.

    OpenAI Chat: a data-only ``{"error": {...}}`` chunk; OpenAI Responses: an
    ``error`` event; Anthropic: ``event: error`` with an ``overloaded_error``;
    Gemini: a data-only ``{"error": {...}}``; OpenRouter: a chunk with ``error``
    beside ``finish_reason: "error"``; Amazon Bedrock: a ``modelStreamErrorException``
    (an exception message of the event-stream); Ollama: an ``{"error": "..."}`` line.
    """
    event: bytes | None = None
    payload: Any
    if provider == "bedrock":
        event = b"modelStreamErrorException"
        payload = {
            "message": "Model Stream Error",
            "originalStatusCode": 500,
            "originalMessage": "The model stream failed.",
        }
    elif provider == "ollama":
        payload = {"error": "an error was encountered while running the model"}
    elif provider == "anthropic":
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
    return event, _encode(payload)


def in_band_error(provider: str, api: str, sequence: int, line_end: bytes = b"\n") -> bytes:
    """``in_band_event`` as one server-sent event."""
    name, payload = in_band_event(provider, api, sequence)
    return SSEFraming(line_end).event(payload, name, sequence)


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


def plan(
    recording: Recording,
    faults: Faults,
    pace: Pace,
    *,
    provider: str,
    api: str,
    framing: str = "sse",
    skip: int = 0,
    ids: str | None = None,
) -> list[Step]:
    """The writes that serve ``recording`` with ``faults`` at ``pace``, framed
    as ``framing`` (``adapters.framings``): the recorded bytes as they are when
    the recording has that framing, else each event's payload written in it.

    A resumed stream leaves out its first ``skip`` events; with ``ids`` (SSE
    only) each event gets the id ``{ids}.{n}``, ``n`` its number in the
    recording from 1.

    A pure function: the server only sleeps, sends and drops as the steps say.

    Raises:
        UsageError: an unknown framing.
    """
    target = get_framing(framing)
    crlf = faults.split == "crlf"
    writer: BodyFraming = target.writer(recording.data, crlf=crlf)
    # A resumed JSON array is written anew: its first element opens the array.
    verbatim = recording.framing == target.name and (skip == 0 or target.name == "sse")
    sse = target.name == "sse"
    line_end = b"\r\n" if crlf else b"\n"
    retry = faults.sse_retry if sse else None
    steps: list[Step] = []
    sent = written = number = 0
    last_event: bytes | None = None

    def emit(data: bytes, delay: float, event: bool) -> None:
        pieces = _cut(data, faults.split)
        for i, piece in enumerate(pieces):
            steps.append(Step(delay if i == 0 else 0.0, piece, event and i == len(pieces) - 1))

    def fields(data: bytes) -> bytes:
        # The id and retry fields, before the event's own lines (after a BOM).
        nonlocal retry
        head = b""
        if ids is not None and sse:
            head += b"id: " + f"{ids}.{number}".encode() + line_end
        if retry is not None:
            head += b"retry: " + str(retry).encode() + line_end
            retry = None
        if not head:
            return data
        bom = b"\xef\xbb\xbf" if data.startswith(b"\xef\xbb\xbf") else b""
        return bom + head + data[len(bom) :]

    for unit in recording.units:
        if unit.data is None:
            if verbatim and number >= skip:
                emit(writer.with_crlf(unit.raw) if crlf else unit.raw, 0.0, False)
            continue
        if not verbatim and unit.data.strip() == b"[DONE]":
            continue  # SSE's terminal marker: no payload to write in another framing
        number += 1
        if number <= skip:
            continue
        delay = pace.delay(sent)
        if faults.stall and sent == faults.stall_after:
            delay += faults.stall
        if sent == faults.drop_after:
            steps.append(Step(delay, DROP))
            return steps
        if sent == faults.error_after:
            name, payload = in_band_event(provider, api, sent)
            emit(writer.event(payload, name, written) + writer.end(written + 1), delay, True)
            return steps
        if sent == faults.malformed_after:
            emit(writer.malformed(last_event, written), delay, True)
            written += 1
            delay = pace.delay(sent + 1)
        if verbatim:
            data = writer.with_crlf(unit.raw) if crlf else unit.raw
        else:
            data = writer.event(unit.data, unit.name, written)
        last_event = unit.name
        emit(fields(data), delay, True)
        sent += 1
        written += 1
    if faults.drop_after is not None and faults.drop_after >= sent:
        steps.append(Step(0.0, DROP))
    elif not verbatim:
        emit(writer.end(written), 0.0, False)
    return steps


# -- what was served ----------------------------------------------------------------------------


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
        bytes_sent: body bytes written.
        outcome: how it ended, one of ``OUTCOMES``, or ``pending``.
        reencoded_from: the API of the recording when it was re-encoded for the route.
        upstream: the upstream API it was forwarded to (its URL, redacted), or ``None``.
        recorded: the name of the recording made of the upstream's answer, or ``None``.
        note: why something did not happen (a 404's reason, why an answer was
            not recorded), or ``None``.
        duration: seconds from the request to its end, once it ended.
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
    bytes_sent: int = 0
    outcome: str = "pending"
    reencoded_from: str | None = None
    upstream: str | None = None
    recorded: str | None = None
    note: str | None = None
    duration: float | None = None
    knobs: str = field(default="", repr=False)
    started: float = field(default_factory=time.monotonic, repr=False)
    finished: threading.Event = field(default_factory=threading.Event, repr=False)
    on_end: Callable[[ServedRequest], None] | None = field(default=None, repr=False)

    def wait(self, timeout: float = 5.0) -> str:
        """Wait until the response has ended; the outcome (``pending`` on timeout)."""
        self.finished.wait(timeout)
        return self.outcome

    def end(self, outcome: str) -> None:
        """The response ended with ``outcome`` (the first call wins)."""
        if self.outcome != "pending":
            return
        self.outcome = outcome
        self.duration = time.monotonic() - self.started
        self.finished.set()
        if self.on_end is not None:
            self.on_end(self)

    def log_line(self) -> str:
        """The request in one line: what answered it, how it ended, what was
        sent and how long it took, e.g. ``req_replay_000001 POST
        /v1/messages anthropic-thinking: complete, 20 events, 3,210 bytes, 4 ms``."""
        if self.upstream is not None:
            served = f"{self.model or '-'} via {self.upstream}"
        else:
            served = self.recording or (f"model {self.model!r}" if self.model else "-")
        if self.reencoded_from:
            served += f" (re-encoded from {self.reencoded_from})"
        head = f"{self.id} {self.method} {self.path} {served}"
        if self.knobs:
            head += f" [{self.knobs}]"
        outcome = self.outcome
        if self.status >= 400:
            outcome += f" ({self.status})"
        parts = [outcome]
        if outcome in ("dropped", "disconnected", "upstream-failed") or self.outcome == "cancelled":
            parts[0] += f" after {self.events_sent:,} events"
            parts.append(f"{self.bytes_sent:,} bytes")
        else:
            parts.append(f"{self.events_sent:,} events, {self.bytes_sent:,} bytes")
        if self.recorded:
            parts.insert(1, f"recorded as {self.recorded}")
        if self.note:
            parts.insert(1, self.note)
        if self.duration is not None:
            parts.append(_duration(self.duration))
        return f"{head}: {', '.join(parts)}"


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


class _DroppedOnPurpose(Exception):
    """Raised to make the server close the connection mid-body (a fault, or an
    upstream that broke: the client must see the cut too)."""


class _QuietDrops(logging.Filter):
    # uvicorn logs the exception that aborted a response; a drop on purpose is
    # no error.
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, _DroppedOnPurpose)


# -- one test's view: its faults, positions, requests ------------------------------------


@dataclass
class _Script:
    turns: tuple[str, ...]
    model: str | None
    position: int = 0


@dataclass(frozen=True)
class _Kept:
    """A stream served, kept so that it can be resumed: the recording as the
    route served it (re-encoded, if it was), and how."""

    recording: Recording
    api: str
    provider: str
    framing: str
    model: str | None


#: The most resumable streams a context keeps (the oldest go first).
_KEPT: Final = 10_000


@dataclass
class _Choice:
    recording: Recording | None = None
    forward: bool = False
    replaces: Recording | None = None
    missing: str = ""
    commit: Callable[[], None] = field(default=lambda: None)  # uses the turn up


class ReplayContext:
    """A scope of the server (a test, in the pytest fixture): the faults
    injected, the scripts and the turns reached, the requests served, and
    where answers from the upstream API are recorded. The server answers each
    request in the context current when it arrived.

    Attributes:
        name: for people (a test's node id).
        recordings: what it serves, by name: the server's and its own.
        record_dir: where new recordings go (and were loaded from), or ``None``.
        record_mode: ``once``, ``all`` or ``none`` (``RECORD_MODES``).
        rules: the fault rules injected, tried in order before the server's own.
    """

    def __init__(
        self,
        app: _App,
        recordings: Mapping[str, Recording],
        *,
        name: str = "",
        record_dir: Path | None = None,
        record_mode: str = "once",
    ) -> None:
        if record_mode not in RECORD_MODES:
            raise UsageError(f"record mode {record_mode!r}: use {', '.join(RECORD_MODES)}")
        self.name = name
        self.recordings = dict(sorted(recordings.items(), key=lambda item: natural_key(item[0])))
        self.record_dir = record_dir
        self.record_mode = record_mode
        self.rules: list[FaultRule] = []
        self._app = app
        self._requests: list[ServedRequest] = []
        self._scripts: list[_Script] = []
        self._positions: Counter[str] = Counter()
        self._used: Counter[str] = Counter()
        self._counts: Counter[Any] = Counter()
        self._keys: dict[str, bytes | None] = {}
        self._reencoded: dict[tuple[str, str], Recording] = {}
        self._kept: dict[str, _Kept] = {}  # by response id or request id
        self._lock = threading.Lock()

    # -- what a test does ------------------------------------------------------------------

    @property
    def requests(self) -> list[ServedRequest]:
        """The requests served in this context, in order."""
        with self._lock:
            return list(self._requests)

    def request(self, request_id: str | None) -> ServedRequest:
        """The record of the request with this id.

        Raises:
            KeyError: no request of this context has this id.
        """
        for record in self.requests:
            if record.id == request_id:
                return record
        raise KeyError(request_id)

    def inject(
        self,
        faults: str | Faults | FaultRule = "",
        *,
        times: int | None = None,
        recording: str | None = None,
        route: str | None = None,
    ) -> FaultRule:
        """Inject faults into the next requests of this context that nothing
        else sets faults for (a request's ``X-Streamfold-Fault`` header wins).
        Rules are tried in the order injected; the first in scope with requests
        left applies, so ``inject("status=429", times=2)`` then
        ``inject("drop-after=3", times=1)`` fails two requests, cuts the third
        and leaves the rest alone.

        Args:
            faults: knobs as the header takes them (scope knobs included), or built.
            times: only the first N requests in scope.
            recording: only requests answered by this recording or conversation.
            route: only requests to this path.

        Raises:
            ValueError: a bad knob.
        """
        if isinstance(faults, str):
            rule = parse_rule(faults)
        elif isinstance(faults, Faults):
            rule = FaultRule(faults)
        else:
            rule = faults
        rule = FaultRule(
            rule.faults,
            times if times is not None else rule.times,
            recording if recording is not None else rule.recording,
            route if route is not None else rule.route,
        )
        with self._lock:
            self.rules.append(rule)
        return rule

    def script(self, *names: str, model: str | None = None) -> None:
        """Answer the next requests with these recordings (or conversations'
        turns, by name), one each, in order: a scripted conversation (turn 1 a
        tool call, turn 2 the answer). Only requests naming ``model`` when
        given; past the last turn, a 404 says so. A recording of another API
        than the route's is re-encoded.

        Raises:
            UsageError: no recording has one of the names.
        """
        unknown = [name for name in names if name not in self.recordings]
        if unknown:
            known = ", ".join(self.recordings) or "none"
            raise UsageError(f"no recording named {', '.join(unknown)} (known: {known})")
        with self._lock:
            self._scripts.append(_Script(tuple(names), model))

    # -- what the server asks ------------------------------------------------------------------

    def remember(self, record: ServedRequest) -> None:
        with self._lock:
            self._requests.append(record)

    def choose(self, api: str, model: str | None, named: str | None, body: Any) -> _Choice:
        """Which recording answers a request (the module docstring's order);
        nothing is used up until ``commit()`` (a fault may answer instead)."""
        with self._lock:
            if named:
                return self._named(named, api)
            for script in self._scripts:
                if script.model is not None and script.model != model:
                    continue
                if script.position >= len(script.turns):
                    return _Choice(missing=f"the script's {len(script.turns)} turns are all used")
                return self._servable(
                    self.recordings[script.turns[script.position]],
                    api,
                    functools.partial(self._advance, script),
                )
            forwarding = self.record_dir is not None and self.record_mode != "none"
            candidates = self._matches(api, model, body)
            if forwarding and self.record_mode == "all":
                return _Choice(forward=True, replaces=candidates[0] if candidates else None)
            if model and model in self._conversations():
                return self._turn(model, api)
            if model and model in self.recordings:
                return self._named(model, api)
            if candidates:
                # Each of several answers to the same request once, in order;
                # then the last again.
                fresh = [r for r in candidates if not self._used[r.name]]
                return self._servable(fresh[0] if fresh else candidates[-1], api)
            if forwarding:
                return _Choice(forward=True)
            return _Choice(missing=self._no_match(api, model))

    def rule_for(
        self, header: FaultRule | None, header_text: str, path: str, recording: Recording | None
    ) -> FaultRule | None:
        """The fault rule that applies (counted), or ``None``: the request's
        header alone when it has one, else this context's rules, then the
        server's."""
        if header is not None:
            rules: list[tuple[Any, FaultRule]] = [(("header", header_text.strip()), header)]
        else:
            rules = [(("context", i), r) for i, r in enumerate(self.rules)]
            rules += [(("server", i), r) for i, r in enumerate(self._app.rules)]
        with self._lock:
            for key, rule in rules:
                if not rule.takes(path, recording):
                    continue
                if rule.times is not None and self._counts[key] >= rule.times:
                    continue
                self._counts[key] += 1
                return rule
        return None

    def reencoded(self, recording: Recording, api: str) -> Recording:
        """``recording`` as a stream of ``api`` (made once per context)."""
        key = (recording.name, api)
        with self._lock:
            found = self._reencoded.get(key)
        if found is None:
            found = reencode(recording, api)
            with self._lock:
                self._reencoded[key] = found
        return found

    def keep(self, key: str, kept: _Kept) -> None:
        """Keep a stream served, to resume it by ``key`` (a response id, a request id)."""
        with self._lock:
            self._kept.pop(key, None)
            self._kept[key] = kept
            while len(self._kept) > _KEPT:
                del self._kept[next(iter(self._kept))]

    def kept(self, key: str) -> _Kept | None:
        """The stream kept under ``key``, or ``None``."""
        with self._lock:
            return self._kept.get(key)

    def add(self, recording: Recording) -> None:
        """A recording just made: served from now on, used once already."""
        with self._lock:
            self.recordings[recording.name] = recording
            self._keys.pop(recording.name, None)
            self._reencoded = {k: v for k, v in self._reencoded.items() if k[0] != recording.name}
            self._used[recording.name] += 1

    # -- choosing ----------------------------------------------------------------------------

    def _advance(self, script: _Script) -> None:
        with self._lock:
            script.position += 1

    def _use(self, name: str) -> None:
        with self._lock:
            self._used[name] += 1

    def _servable(
        self, recording: Recording, api: str, commit: Callable[[], None] | None = None
    ) -> _Choice:
        if recording.api not in (api, None) and not can_reencode(recording.api, api):
            return _Choice(
                missing=f"recording {recording.name!r} speaks {recording.api}, which cannot "
                f"be re-encoded as {api}",
            )
        return _Choice(recording, commit=commit or functools.partial(self._use, recording.name))

    def _named(self, name: str, api: str) -> _Choice:
        recording = self.recordings.get(name)
        if recording is not None:
            return self._servable(recording, api)
        if name in self._conversations():
            return self._turn(name, api)
        return _Choice(missing=f"no recording named {name!r}; {self._listing(api)}")

    def _conversations(self) -> dict[str, list[Recording]]:
        found: dict[str, list[Recording]] = {}
        for recording in self.recordings.values():
            if recording.conversation:
                found.setdefault(recording.conversation, []).append(recording)
        return found

    def _turn(self, conversation: str, api: str) -> _Choice:
        turns = self._conversations()[conversation]
        position = self._positions[conversation]
        if position >= len(turns):
            return _Choice(
                missing=f"conversation {conversation!r} has answered all its {len(turns)} turns"
            )

        def advance() -> None:
            with self._lock:
                self._positions[conversation] += 1
                self._used[turns[position].name] += 1

        return self._servable(turns[position], api, advance)

    def _key(self, recording: Recording) -> bytes | None:
        if recording.name not in self._keys:
            request = recording.request
            self._keys[recording.name] = (
                None
                if request is None
                else request_key(recording.api, request.model, request.body, self._app.ignore)
            )
        return self._keys[recording.name]

    def _matches(self, api: str, model: str | None, body: Any) -> list[Recording]:
        key = request_key(api, model, body, self._app.ignore)
        if key is None:
            return []
        return [
            r
            for r in self.recordings.values()
            if r.request is not None and r.api == api and self._key(r) == key
        ]

    def _listing(self, api: str) -> str:
        names = [name for name, r in self.recordings.items() if r.api == api]
        return f"recordings of {api}: {', '.join(names) or 'none'}"

    def _no_match(self, api: str, model: str | None) -> str:
        wanted = f"model {model!r}" if model else "this request (it names no model)"
        text = f"no recording answers {wanted} on {api}"
        others = sum(1 for r in self.recordings.values() if r.api == api and r.model == model)
        if model and others:
            text += f" ({others} recorded for {model!r} answer other request bodies)"
        text += (
            f"; {self._listing(api)}. Name one as the model or in the X-Streamfold-Recording header"
        )
        if self.record_dir is not None and self.record_mode == "none":
            text += "; record mode none: nothing is sent upstream"
        return text


# -- writing a response ----------------------------------------------------------------------------


async def _watch(receive: Receive, scope: anyio.CancelScope, done: Callable[[], bool]) -> None:
    # Cancels the response's writes when the client leaves before the end.
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if not done():
                scope.cancel()
            return


#: Writes without a pause between two yields to the event loop: fewer than the
#: writes to a lost connection asyncio lets pass before it logs each one.
_WRITES_BETWEEN_YIELDS: Final = 3


class _Replay(Response):
    """Plays a plan: writes, pauses, drops, and notices a client that leaves."""

    def __init__(
        self,
        app: _App,
        steps: list[Step],
        headers: dict[str, str],
        record: ServedRequest,
        media_type: str,
        status: int,
    ) -> None:
        super().__init__(status_code=status, headers=headers, media_type=media_type)
        self.app = app
        self.steps = steps
        self.record = record
        self._complete = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        record = self.record
        headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        dropped = False
        try:
            await send(
                {"type": "http.response.start", "status": self.status_code, "headers": headers}
            )
            async with anyio.create_task_group() as group:
                group.start_soon(_watch, receive, group.cancel_scope, lambda: self._complete)
                dropped = await self._play(send)
                group.cancel_scope.cancel()
        except BaseException:
            record.end("cancelled")
            raise
        if dropped:
            record.end("dropped")
            raise _DroppedOnPurpose(f"request {record.id}: connection dropped on purpose")
        if not self._complete:
            record.end("disconnected")
        else:
            record.end("fault" if record.faults.injects_error else "complete")

    async def _play(self, send: Send) -> bool:
        record, sleep = self.record, self.app.sleep
        unpaused = 0
        for step in self.steps:
            if step.delay:
                await sleep(step.delay)
                unpaused = 0
            elif unpaused == _WRITES_BETWEEN_YIELDS:
                # Let the loop run, so a client that left is noticed (the
                # watcher cancels this) within a few writes: asyncio logs each
                # write to a lost connection from the fifth on.
                await anyio.lowlevel.checkpoint()
                unpaused = 0
            unpaused += 1
            if not isinstance(step.data, bytes):
                return True  # DROP
            await send({"type": "http.response.body", "body": step.data, "more_body": True})
            record.bytes_sent += len(step.data)
            if step.event:
                record.events_sent += 1
        self._complete = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return False


# Headers that belong to one connection, never passed on (RFC 9110, 7.6.1), and
# what the HTTP library decodes (the body is passed on decoded).
_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",
        "content-encoding",
    }
)

# Statuses never recorded: a missing or wrong key, a timeout, a rate limit or a
# server error would replay that failure forever.
_NOT_RECORDED: Final = frozenset({401, 403, 407, 408, 429})


def _recordable(status: int) -> bool:
    return 200 <= status < 300 or (400 <= status < 500 and status not in _NOT_RECORDED)


class _Forward(Response):
    """Forwards one request to the upstream API, streams its answer back as it
    arrives, and records it when it ended complete."""

    def __init__(
        self,
        app: _App,
        context: ReplayContext,
        record: ServedRequest,
        row: API,
        url: str,
        headers: list[tuple[str, str]],
        raw: bytes,
        path: str,
        replaces: Recording | None,
    ) -> None:
        super().__init__()
        self.app = app
        self.context = context
        self.record = record
        self.row = row
        self.url = url
        self.request_headers = headers
        self.raw = raw
        self.path = path
        self.replaces = replaces
        # Everything secret the request carries: never written, never logged.
        self.secrets = secrets_of(url, dict(headers))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        record = self.record
        library = self.app.library()
        client = self.app.http_client()
        try:
            request = client.build_request(
                "POST", self.url, content=self.raw, headers=self.request_headers
            )
            response = await client.send(request, stream=True)
        except (library.HTTPError, library.InvalidURL) as exc:
            reason = redact_text(f"{type(exc).__name__}: {exc}", self.secrets)
            message = f"cannot reach the upstream API at {record.upstream}: {reason}"
            answer = self.app.answer_error(
                record, self.row.provider, 502, message=message, outcome="upstream-failed"
            )
            await answer(scope, receive, send)
            return
        tee: list[bytes] = []
        try:
            record.status = response.status_code
            headers = [
                (name.encode("latin-1"), value.encode("latin-1"))
                for name, value in response.headers.multi_items()
                if name.lower() not in _HOP_BY_HOP
            ]
            await send({"type": "http.response.start", "status": record.status, "headers": headers})
            outcome = await self._relay(response, receive, send, tee, library)
        except BaseException:
            record.end("cancelled")
            raise
        finally:
            await response.aclose()
        framing = _stream_framing(response.headers.get("content-type"), tee)
        if framing is not None:
            units = get_framing(framing).units(b"".join(tee))
            record.events_sent = sum(unit.data is not None for unit in units)
        if outcome == "complete":
            self._record(response, tee, framing)
        record.end(outcome)
        if outcome == "upstream-failed":
            raise _DroppedOnPurpose(f"request {record.id}: the upstream API broke mid-stream")

    async def _relay(
        self, response: Any, receive: Receive, send: Send, tee: list[bytes], library: Any
    ) -> str:
        record = self.record
        done = False
        async with anyio.create_task_group() as group:
            group.start_soon(_watch, receive, group.cancel_scope, lambda: done)
            try:
                async for chunk in response.aiter_bytes():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    tee.append(chunk)
                    record.bytes_sent += len(chunk)
            except (library.HTTPError, library.StreamError) as exc:
                reason = redact_text(f"{type(exc).__name__}: {exc}", self.secrets)
                record.note = f"the upstream broke: {reason}"
                group.cancel_scope.cancel()
                return "upstream-failed"
            done = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            group.cancel_scope.cancel()
            return "complete"
        return "disconnected"

    def _record(self, response: Any, tee: list[bytes], framing: str | None) -> None:
        record, context = self.record, self.context
        status = record.status
        if not _recordable(status):
            record.note = f"not recorded: a {status} would replay that failure"
            return
        directory = context.record_dir
        assert directory is not None  # forwarding needs a record_dir (choose)
        request_body = redacted_body(self.raw, self.secrets)
        try:
            body = _decode(request_body) if request_body else None
        except (msgspec.DecodeError, RecursionError):
            body = None
        replaces = self.replaces
        name = replaces.name if replaces else new_name(record.model, context.recordings, directory)
        recording = Recording(
            name,
            redacted_body(b"".join(tee), self.secrets),
            self.row.id,
            framing,
            status,
            kept_headers(response.headers.multi_items(), self.secrets),
            RecordedRequest("POST", without_secret_params(self.path), record.model, body),
            replaces.conversation if replaces else None,
        )
        try:
            save_recording(directory, recording)
        except OSError as exc:
            record.note = f"not recorded: {exc.strerror or exc}"
            return
        context.add(recording)
        record.recorded = name


def _stream_framing(content_type: str | None, tee: list[bytes]) -> str | None:
    # The framing of an upstream's answer; None for a body that is no stream
    # (a JSON object: an error, or a request that did not ask to stream).
    from .framings import framing_for_media_type

    framing = framing_for_media_type(content_type)
    if framing is None:
        return "sse" if (content_type or "").startswith("text/") else None
    if framing.name == "json-array":
        first = b"".join(tee[:4]).lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        return framing.name if first == b"[" else None
    return framing.name


# -- the application ---------------------------------------------------------------------------


def _json_or_none(raw: bytes) -> Any:
    try:
        return _decode(raw) if raw else None
    except (msgspec.DecodeError, RecursionError):
        return None


class _App:
    def __init__(
        self,
        recordings: dict[str, Recording],
        rules: list[FaultRule],
        pace: Pace,
        *,
        on_request: Callable[[ServedRequest], None] | None,
        on_finish: Callable[[ServedRequest], None] | None,
        upstream: str | Mapping[str, str] | None,
        record: Path | None,
        record_mode: str,
        ignore: Sequence[str],
    ) -> None:
        self.recordings = recordings
        self.rules = rules
        self.pace = pace
        self.on_request = on_request
        self.on_finish = on_finish
        self.ignore = tuple(ignore)
        self.upstreams = _upstreams(upstream)
        self.counter = itertools.count(1)
        self.sleep: Callable[[float], Awaitable[None]] = anyio.sleep
        self._client: Any = None
        own = dict(recordings)
        if record is not None and record.is_dir():
            own.update(load_recordings(record))
        self.default = ReplayContext(self, own, record_dir=record, record_mode=record_mode)
        self.current = self.default

    def library(self) -> Any:
        from .client import http_library

        return http_library()

    def http_client(self) -> Any:
        # One client for every forwarded request (connections reused), made in
        # the server's loop, closed when it stops.
        if self._client is None:
            library = self.library()
            self._client = library.AsyncClient(
                timeout=library.Timeout(600.0, connect=10.0), follow_redirects=False
            )
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def route(self, api: API) -> Callable[[Request], Awaitable[Response]]:
        """The handler of ``api``'s routes."""

        async def handle(request: Request) -> Response:
            return await self.serve(request, api)

        return handle

    async def list_recordings(self, request: Request) -> Response:
        listing = []
        for recording in self.current.recordings.values():
            item: dict[str, Any] = {"name": recording.name, "api": recording.api}
            if recording.model is not None:
                item["model"] = recording.model
            if recording.conversation is not None:
                item["conversation"] = recording.conversation
            listing.append(item)
        return JSONResponse({"recordings": listing})

    def reattach_route(self, api: API) -> Callable[[Request], Awaitable[Response]]:
        """The handler of ``api``'s re-attach routes (``GET .../responses/{id}``)."""

        async def handle(request: Request) -> Response:
            return await self.reattach(request, api)

        return handle

    def _served(self, request: Request, row: API, model: str | None, body: Any) -> ServedRequest:
        # A new request's record, in the current context's log.
        record = ServedRequest(
            f"req_replay_{next(self.counter):06d}",
            request.method,
            request.url.path,
            row.id,
            model,
            None,
            Faults(),
            self.pace,
            body,
            on_end=self.finished,
        )
        self.current.remember(record)
        if self.on_request is not None:
            self.on_request(record)
        return record

    def _knobs(self, request: Request, record: ServedRequest) -> tuple[FaultRule | None, str]:
        # The request's own fault rule and pace, from its headers.
        #
        # Raises: ValueError: a bad knob.
        fault_text = request.headers.get(FAULT_HEADER)
        header_rule = parse_rule(fault_text) if fault_text is not None else None
        pace_text = request.headers.get(PACE_HEADER)
        record.pace = parse_pace(pace_text) if pace_text is not None else self.pace
        return header_rule, fault_text or ""

    def _faults(
        self,
        context: ReplayContext,
        record: ServedRequest,
        knobs: tuple[FaultRule | None, str],
        recording: Recording | None,
    ) -> Faults:
        rule = context.rule_for(knobs[0], knobs[1], record.path, recording)
        if rule is not None:
            record.faults, record.knobs = rule.faults, rule.knobs()
        if recording is not None:
            record.recording = recording.name
        return record.faults

    def _fault_answer(self, record: ServedRequest, provider: str, row: API) -> Response | None:
        # The faults that answer instead of a stream: a status, a JSON body.
        faults = record.faults
        if faults.status is not None:
            return self.answer_error(record, provider, faults.status)
        if faults.json_body:
            body_bytes = _encode(error_body(provider, 500, record.id))
            record.bytes_sent = len(body_bytes)
            record.end("fault")
            return Response(
                body_bytes,
                media_type="application/json",
                headers=_headers(provider, record.id, row.id),
            )
        return None

    async def serve(self, request: Request, row: API) -> Response:
        context = self.current
        raw = await request.body()
        body = _json_or_none(raw)
        routed = (
            row.route(request.path_params, request.query_params)
            if row.route is not None
            else Routed(request.path_params.get("model"))
        )
        model = routed.model
        if model is None and row.model_in_body and isinstance(body, dict):
            model = body.get("model") if isinstance(body.get("model"), str) else None
        record = self._served(request, row, model, body)
        provider = row.provider
        if routed.refused is not None:
            return self.answer_error(record, provider, 404, routed.refused, "not-found")
        try:
            knobs = self._knobs(request, record)
        except ValueError as exc:
            return self.answer_error(record, provider, 400, str(exc), "refused")
        last_id = request.headers.get("last-event-id")
        if last_id is not None:
            return self._resume_after_id(context, record, row, knobs, last_id)
        choice = context.choose(row.id, model, request.headers.get(RECORDING_HEADER), body)
        faults = self._faults(context, record, knobs, choice.recording)
        provider = faults.provider or provider
        answer = self._fault_answer(record, provider, row)
        if answer is not None:
            return answer
        if choice.forward:
            return self.forward(request, raw, row, context, record, choice.replaces)
        if choice.recording is None:
            return self.answer_error(record, provider, 404, choice.missing, "not-found")
        choice.commit()
        recording = choice.recording
        if recording.api is not None and recording.api != row.id:
            record.reencoded_from = recording.api
            recording = context.reencoded(recording, row.id)
        framing = routed.framing or row.framing
        kept = _Kept(recording, row.id, provider, framing, model)
        if faults.event_ids:
            context.keep(record.id, kept)
        if row.reattach is not None and isinstance(body, dict) and body.get("background") is True:
            response_id = _response_id(recording)
            if response_id is not None:
                context.keep(response_id, kept)
        return self._stream(record, row, kept, faults, record.id if faults.event_ids else None)

    def _stream(
        self,
        record: ServedRequest,
        row: API,
        kept: _Kept,
        faults: Faults,
        ids: str | None,
        skip: int = 0,
    ) -> Response:
        # The response that plays a recording (from its event `skip` on).
        recording = kept.recording
        provider = faults.provider or kept.provider
        headers = _headers(provider, record.id, row.id)
        request_ids = set(row.request_id_headers) | {"request-id", "x-request-id"}
        headers.update(
            {
                k: v
                for k, v in recording.headers.items()
                if k not in request_ids and k != "content-type"
            }
        )
        record.status = recording.status
        if recording.framing is None:  # a recorded body that is no stream, as it was
            record.bytes_sent = len(recording.data)
            record.end("complete")
            return Response(
                recording.data,
                status_code=recording.status,
                headers=headers,
                media_type=recording.headers.get("content-type", "application/json"),
            )
        steps = plan(
            recording,
            faults,
            record.pace,
            provider=provider,
            api=row.id,
            framing=kept.framing,
            skip=skip,
            ids=ids,
        )
        headers["cache-control"] = "no-cache"
        media = get_framing(kept.framing).media_type
        return _Replay(self, steps, headers, record, media, recording.status)

    def _resume_after_id(
        self,
        context: ReplayContext,
        record: ServedRequest,
        row: API,
        knobs: tuple[FaultRule | None, str],
        last_id: str,
    ) -> Response:
        # A request sent again with Last-Event-ID: the stream its id names,
        # after that event (ids the server wrote: `{request id}.{event}`).
        key, _, number = last_id.strip().rpartition(".")
        kept = context.kept(key) if number.isascii() and number.isdigit() else None
        if kept is None:
            message = (
                f"no stream the replay server sent has the event id {last_id[:80]!r} "
                "(it resumes the streams it sent with event-ids)"
            )
            return self.answer_error(record, row.provider, 404, message, "not-found")
        faults = self._faults(context, record, knobs, kept.recording)
        answer = self._fault_answer(record, faults.provider or kept.provider, row)
        if answer is not None:
            return answer
        record.model = kept.model
        record.note = f"resumed after event {number} of {key}"
        skip = max(int(number[:7]) - faults.overlap, 0)
        return self._stream(record, row, kept, faults, key, skip)

    async def reattach(self, request: Request, row: API) -> Response:
        """``GET .../responses/{id}?stream=true&starting_after=N``: a background
        response kept by ``serve``, its events numbered after N."""
        context = self.current
        response_id = request.path_params.get("id", "")
        record = self._served(request, row, None, None)
        try:
            knobs = self._knobs(request, record)
        except ValueError as exc:
            return self.answer_error(record, row.provider, 400, str(exc), "refused")
        query = request.query_params
        kept = context.kept(response_id)
        if kept is None:
            message = f"No response found with id '{response_id[:80]}'."
            return self.answer_error(record, row.provider, 404, message, "not-found")
        if query.get("stream") != "true":
            message = "the replay server re-attaches streams only: add ?stream=true"
            return self.answer_error(record, row.provider, 400, message, "refused")
        after = query.get("starting_after")
        if after is not None and not (after.isascii() and after.isdigit() and len(after) < 10):
            message = f"starting_after={after[:40]!r}: give a sequence number"
            return self.answer_error(record, row.provider, 400, message, "refused")
        faults = self._faults(context, record, knobs, kept.recording)
        answer = self._fault_answer(record, faults.provider or kept.provider, row)
        if answer is not None:
            return answer
        record.model = kept.model
        skip = 0 if after is None else _events_through(kept.recording, int(after))
        record.note = f"re-attached after sequence number {after}" if after is not None else None
        return self._stream(record, row, kept, faults, None, max(skip - faults.overlap, 0))

    def forward(
        self,
        request: Request,
        raw: bytes,
        row: API,
        context: ReplayContext,
        record: ServedRequest,
        replaces: Recording | None,
    ) -> Response:
        upstream = upstream_url(row.id, self.upstreams)
        query = request.url.query
        path = request.url.path + (f"?{query}" if query else "")
        headers = [
            (name, value)
            for name, value in request.headers.items()
            if name not in _HOP_BY_HOP and not name.startswith("x-streamfold-")
        ]
        record.upstream = redact_url(upstream)
        return _Forward(
            self, context, record, row, upstream.rstrip("/") + path, headers, raw, path, replaces
        )

    def finished(self, record: ServedRequest) -> None:
        if _log.isEnabledFor(logging.INFO):
            _log.info("%s", record.log_line())
        if self.on_finish is not None:
            self.on_finish(record)

    def answer_error(
        self,
        record: ServedRequest,
        provider: str,
        status: int,
        message: str | None = None,
        outcome: str = "fault",
    ) -> Response:
        retry_after = record.faults.retry_after
        if retry_after is None and status in (429, 503, 529) and outcome == "fault":
            retry_after = 1.0
        body = error_body(provider, status, record.id, retry_after)
        if message is not None:
            _with_message(body, message)
            record.note = message if outcome != "fault" else None
        headers = _headers(provider, record.id, record.api)
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        data = _encode(body)
        record.status = status
        record.bytes_sent = len(data)
        record.end(outcome)
        return Response(data, status_code=status, headers=headers, media_type="application/json")


def _payloads(recording: Recording) -> Iterator[Any]:
    # Each event's payload, decoded (None when it is not JSON).
    for unit in recording.units:
        if unit.data is not None:
            yield _json_or_none(unit.data)


def _response_id(recording: Recording) -> str | None:
    # A Responses stream's id: its first event's response.id.
    for payload in _payloads(recording):
        response = payload.get("response") if isinstance(payload, dict) else None
        if isinstance(response, dict) and isinstance(response.get("id"), str):
            return str(response["id"])
        return None
    return None


def _events_through(recording: Recording, sequence: int) -> int:
    # How many events come before the first one numbered after `sequence`.
    count = 0
    for payload in _payloads(recording):
        number = payload.get("sequence_number") if isinstance(payload, dict) else None
        if isinstance(number, int) and not isinstance(number, bool) and number > sequence:
            return count
        count += 1
    return count


def _upstreams(upstream: str | Mapping[str, str] | None) -> dict[str, str]:
    # API id -> base URL ("" for every API).
    if upstream is None:
        return {}
    if isinstance(upstream, str):
        return {"": upstream}
    return {("" if name in ("", "*") else get_api(name).id): url for name, url in upstream.items()}


def parse_upstreams(values: Iterable[str]) -> dict[str, str]:
    """``[API=]URL`` options (``--upstream``) as ``ReplayServer``'s ``upstream``:
    a URL alone is for every API (key ``""``), ``API=URL`` for one.

    Raises:
        UsageError: an unknown API, or a URL that is not http(s).
    """
    found: dict[str, str] = {}
    for value in values:
        name, sep, url = value.partition("=")
        if sep and "://" not in name:
            found[get_api(name.strip()).id] = url.strip()
        else:
            found[""] = value.strip()
    for url in found.values():
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"upstream {redact_url(url)!r}: use an http:// or https:// URL")
    return found


def upstream_url(api: str, upstreams: Mapping[str, str] | None = None) -> str:
    """Where a recorded request of ``api`` goes: its own URL in ``upstreams``,
    else the one for every API (``""``), else its registry row's origin
    (``https://api.openai.com``); the request's path is appended."""
    given = _upstreams(upstreams)
    row = get_api(api)
    url = given.get(row.id) or given.get("")
    if url is None:
        parts = urlsplit(row.base_url)
        url = f"{parts.scheme}://{parts.netloc}"
    return url


def _with_message(body: dict[str, Any], message: str) -> None:
    # The server's own message (a 404 that names what is missing) in the
    # provider's place for one: its error object, its error string, or the body.
    error = body.get("error")
    if isinstance(error, dict):
        error["message"] = message
    elif "error" in body:
        body["error"] = message
    else:
        body["message"] = message


def _headers(provider: str, request_id: str, api: str) -> dict[str, str]:
    # The headers each provider sends beside a stream: its request id and its
    # rate-limit headers (values made up, names as documented).
    if provider == "bedrock":
        return {"x-amzn-requestid": request_id}
    if provider == "ollama":
        return {}  # Ollama sends no request id
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


def _rules(faults: Faults | FaultRule | Iterable[FaultRule] | None) -> list[FaultRule]:
    if faults is None:
        return []
    if isinstance(faults, Faults):
        return [FaultRule(faults)]
    if isinstance(faults, FaultRule):
        return [faults]
    return list(faults)


def create_app(
    recordings: dict[str, Recording] | None = None,
    *,
    faults: Faults | FaultRule | Iterable[FaultRule] | None = None,
    pace: Pace | None = None,
    on_request: Callable[[ServedRequest], None] | None = None,
    on_finish: Callable[[ServedRequest], None] | None = None,
    upstream: str | Mapping[str, str] | None = None,
    record: str | Path | None = None,
    record_mode: str = "once",
    match_ignore: Sequence[str] = DEFAULT_IGNORE,
) -> Starlette:
    """The Starlette application of the replay server (see ``ReplayServer``
    for the arguments). Its state is ``app.state.replay``; the context
    requests are answered in is ``app.state.replay.current``.

    Raises:
        UsageError: an unknown record mode or API name, or a recording that
            cannot be loaded from ``record``.
    """
    if record_mode not in RECORD_MODES:
        raise UsageError(f"record mode {record_mode!r}: use {', '.join(RECORD_MODES)}")
    state = _App(
        sample_recordings() if recordings is None else recordings,
        _rules(faults),
        pace or Pace(),
        on_request=on_request,
        on_finish=on_finish,
        upstream=upstream,
        record=Path(record) if record is not None else None,
        record_mode=record_mode,
        ignore=match_ignore,
    )
    routes = [
        Route(path, state.route(api), methods=["POST"]) for api in APIS for path in api.routes
    ]
    for api in APIS:
        if api.reattach is not None:
            # The re-attach path's route part, after each of the row's routes
            # (/responses/{id} after /v1/responses and /responses).
            tail = api.reattach.path.partition("?")[0].removeprefix(api.path)
            routes += [
                Route(path + tail, state.reattach_route(api), methods=["GET"])
                for path in api.routes
            ]
    routes.append(Route("/recordings", state.list_recordings, methods=["GET"]))
    app = Starlette(routes=routes)
    app.state.replay = state
    return app


# -- running it ----------------------------------------------------------------------------------


_quiet = _QuietDrops()


class ReplayServer:
    """The replay server on a loopback port, in a background thread.

    ::

        with ReplayServer() as server:           # the shipped samples, a free port
            stream = streamfold.stream("hi", model="chat-reasoning", base_url=server.url)

        with ReplayServer({}, record="recordings/", upstream="https://api.openai.com") as proxy:
            ...  # requests it has no recording for go upstream, and are recorded

    ``requests``, ``request``, ``inject``, ``script`` and ``recordings`` are
    those of the current context (``context()``; the server's own outside one).

    Args:
        recordings: by name (``load_recordings``); the shipped samples when ``None``.
        host: the address to listen on (loopback by default).
        port: the port; 0 picks a free one.
        faults: the default faults (a rule or rules: ``parse_rule``); requests
            may set their own.
        pace: the default pace (requests may set their own).
        on_request: called with each request's record as it starts.
        on_finish: called with each request's record as it ends (``log_line()``).
        upstream: where requests with no recording go when recording: a base
            URL for every API, or one per API name; an API without one goes to
            its registry row's origin (``https://api.openai.com``, ...).
        record: a folder: its recordings are served, and answers from the
            upstream are recorded into it (``record_mode``); ``None``: no
            forwarding.
        record_mode: ``once``, ``all`` or ``none`` (``RECORD_MODES``).
        match_ignore: request body fields (dotted paths) left out when matching.

    Raises:
        UsageError: an unknown record mode or API, or an unreadable recording in ``record``.
    """

    def __init__(
        self,
        recordings: dict[str, Recording] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | FaultRule | Iterable[FaultRule] | None = None,
        pace: Pace | None = None,
        on_request: Callable[[ServedRequest], None] | None = None,
        on_finish: Callable[[ServedRequest], None] | None = None,
        upstream: str | Mapping[str, str] | None = None,
        record: str | Path | None = None,
        record_mode: str = "once",
        match_ignore: Sequence[str] = DEFAULT_IGNORE,
    ) -> None:
        self.app = create_app(
            recordings,
            faults=faults,
            pace=pace,
            on_request=on_request,
            on_finish=on_finish,
            upstream=upstream,
            record=record,
            record_mode=record_mode,
            match_ignore=match_ignore,
        )
        self.host = host
        self.port = port
        self._state: _App = self.app.state.replay
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def current(self) -> ReplayContext:
        """The context requests are answered in now."""
        return self._state.current

    @property
    def recordings(self) -> dict[str, Recording]:
        """The recordings served (in the current context), by name."""
        return self.current.recordings

    @property
    def requests(self) -> list[ServedRequest]:
        """Every request served so far in the current context, in order."""
        return self.current.requests

    def request(self, request_id: str | None) -> ServedRequest:
        """The record of the request with this id (in the current context).

        Raises:
            KeyError: no request has this id.
        """
        return self.current.request(request_id)

    def inject(
        self,
        faults: str | Faults | FaultRule = "",
        *,
        times: int | None = None,
        recording: str | None = None,
        route: str | None = None,
    ) -> FaultRule:
        """``ReplayContext.inject`` in the current context.

        Raises:
            ValueError: a bad knob.
        """
        return self.current.inject(faults, times=times, recording=recording, route=route)

    def script(self, *names: str, model: str | None = None) -> None:
        """``ReplayContext.script`` in the current context.

        Raises:
            UsageError: no recording has one of the names.
        """
        self.current.script(*names, model=model)

    @contextlib.contextmanager
    def context(
        self,
        *,
        name: str = "",
        recordings: str | Path | Mapping[str, Recording] | None = None,
        record: str | Path | None = None,
        record_mode: str = "once",
    ) -> Iterator[ReplayContext]:
        """A fresh context for the ``with`` block: its own faults, scripts,
        turns and request log, and (with ``record``) its own folder of
        recordings, served beside the server's and recorded into.

        Raises:
            UsageError: an unknown record mode, or a recording that cannot be loaded.
        """
        own = dict(self._state.recordings)
        if isinstance(recordings, Mapping):
            own.update(recordings)
        elif recordings is not None:
            own.update(load_recordings(recordings))
        folder = Path(record) if record is not None else None
        if folder is not None and folder.is_dir():
            own.update(load_recordings(folder))
        context = ReplayContext(
            self._state, own, name=name, record_dir=folder, record_mode=record_mode
        )
        previous, self._state.current = self._state.current, context
        try:
            yield context
        finally:
            self._state.current = previous

    def start(self, timeout: float = 10.0) -> ReplayServer:
        """Bind the port and start serving in a background thread.

        Raises:
            OSError: the address cannot be bound.
            RuntimeError: the server did not start within ``timeout`` seconds.
        """
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP said outright: asyncio sets TCP_NODELAY only on sockets
        # whose proto says TCP, and without it Nagle holds each event after the
        # head until the client's delayed ACK (40 ms on Linux).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
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
            target=self._run, args=(server, sock), name="streamfold-replay", daemon=True
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

    def _run(self, server: uvicorn.Server, sock: socket.socket) -> None:
        async def serve() -> None:
            try:
                await server.serve(sockets=[sock])
            finally:
                await self._state.aclose()  # the upstream client, if any

        asyncio.run(serve())

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
