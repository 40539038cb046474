"""OpenTelemetry for streamed responses: one span per stream, and the GenAI
client metrics, as the OpenTelemetry GenAI semantic conventions say.

The conventions followed are those of semantic-conventions **v1.41.0** (the
GenAI part is the same in v1.41.1, the last release that holds it; it has
moved to the semantic-conventions-genai repository since, unreleased there):
status *Development*. ``SCHEMA_URL`` names them on every span and instrument.

Needs only ``opentelemetry-api`` (the ``otel`` extra). The client and the
HTTP adapters record, when a tracer or meter provider is configured (the
application's global ones, or those of a ``Telemetry`` handed in):

- one span per stream (``CLIENT``), named ``{gen_ai.operation.name}
  {gen_ai.request.model}``, from the first request to the end of the stream,
  retries and resumptions included (each one a span event,
  ``streamfold.retry`` or ``streamfold.resume``); on failure its status is
  ``ERROR`` with the error's message, and ``error.type`` says which failure
  (``ERROR_TYPES``);
- ``gen_ai.client.operation.duration`` (s), ``gen_ai.client.token.usage``
  (``{token}``, per ``gen_ai.token.type``) and
  ``gen_ai.client.operation.time_to_first_chunk`` (s), with the buckets the
  conventions give.

The time to the first chunk is to the first generated content (text,
reasoning, refusal or tool-call arguments), not to a lifecycle event such as
``response.created`` (semantic-conventions-genai#306: only generated text
counts). Prompt and answer content (``gen_ai.input.messages``,
``gen_ai.system_instructions``, ``gen_ai.output.messages``, as JSON) are
recorded only when the caller opts in (``capture_content=True``, or
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``).

Nothing is recorded, and next to nothing is spent, when no provider is
configured: OpenTelemetry is not even imported until the application has
imported it (configuring a provider needs that), and a stream then checks
the two global providers once, at its start. Nothing is done per event or
per chunk: the span is filled in when the stream closes, from what the
exchange has kept anyway.
"""

from __future__ import annotations

import json
import os
import sys
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from ..dialects.registry import API, APIS
from ..errors import (
    ContentTypeError,
    HTTPStatusError,
    IncompleteStreamError,
    ProtocolError,
    ProviderError,
    StreamTimeoutError,
)

if TYPE_CHECKING:
    from ..result import ResponseMetadata, Unified

__all__ = [
    "CAPTURE_CONTENT_ENV",
    "CONVENTIONS_VERSION",
    "DURATION_BUCKETS",
    "ERROR_TYPES",
    "SCHEMA_URL",
    "TOKEN_BUCKETS",
    "GLOBAL",
    "GenAIRequest",
    "Telemetry",
    "error_type",
    "request_of",
]

#: The semantic conventions followed, and their schema.
CONVENTIONS_VERSION: Final = "1.41.0"
SCHEMA_URL: Final = f"https://opentelemetry.io/schemas/{CONVENTIONS_VERSION}"

#: The opt-in for content, as the OpenTelemetry Python GenAI instrumentations name it.
CAPTURE_CONTENT_ENV: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

#: The conventions' explicit bucket boundaries.
DURATION_BUCKETS: Final = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
TOKEN_BUCKETS: Final = tuple(4**power for power in range(14))  # 1, 4, 16, ... 67108864

#: The ``error.type`` of each failure, as the conventions ask instrumentations to list them.
ERROR_TYPES: Final = {
    "HTTPStatusError": "the HTTP status code, e.g. 429 or 500",
    "ContentTypeError": "content_type",
    "StreamTimeoutError": "timeout",
    "ProviderError": "the provider's error code, else its error type, else provider_error",
    "IncompleteStreamError": "incomplete_stream (the stream was cut)",
    "ProtocolError": "protocol_error",
    "closed by the caller before the end": "cancelled",
    "any other error": "its class's qualified name",
}

_LIBRARY: Final = "streamfold"

# Hosts that speak an API of another provider's shape, and whose
# gen_ai.provider.name the conventions list (else the API's row says).
_HOSTS: Final = (
    ("openai.azure.com", "azure.ai.openai"),
    ("services.ai.azure.com", "azure.ai.inference"),
    ("api.deepseek.com", "deepseek"),
    ("api.groq.com", "groq"),
    ("api.mistral.ai", "mistral_ai"),
    ("api.x.ai", "x_ai"),
    ("api.perplexity.ai", "perplexity"),
    ("aiplatform.googleapis.com", "gcp.vertex_ai"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
    ("api.anthropic.com", "anthropic"),
    ("api.cohere.com", "cohere"),
    ("api.openai.com", "openai"),
)

_OPENAI_API_TYPES: Final = {"openai-chat": "chat_completions", "openai-responses": "responses"}


def error_type(error: BaseException | None, cancelled: bool = False) -> str | None:
    """The ``error.type`` of a stream that ended with ``error`` (``ERROR_TYPES``)."""
    if cancelled:
        return "cancelled"
    if error is None:
        return None
    if isinstance(error, HTTPStatusError):
        return str(error.status_code)
    if isinstance(error, ContentTypeError):
        return "content_type"
    if isinstance(error, StreamTimeoutError):
        return "timeout"
    if isinstance(error, ProviderError):
        return error.code or error.error_type or "provider_error"
    if isinstance(error, (IncompleteStreamError, ProtocolError)):
        return error.info_type
    cls = type(error)
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclass(frozen=True)
class GenAIRequest:
    """What is known of a request before its stream: the client knows it all,
    an adapter only the URL (and what the dialect tells later).

    Attributes:
        url: the request URL.
        api: the API's dialect id, when known.
        model: the model asked for, when known.
        max_tokens: the output limit asked for, when known.
        messages: the prompt or the messages sent (recorded only with content
            capture on).
        system: the system prompt sent.
    """

    url: str
    api: str | None = None
    model: str | None = None
    max_tokens: int | None = None
    messages: str | Sequence[Mapping[str, Any]] | None = None
    system: str | None = None


class _API:
    # The OpenTelemetry API, imported once something has imported it.
    def __init__(self) -> None:
        from opentelemetry import metrics, trace
        from opentelemetry.metrics import _internal as metrics_internal

        self.trace = trace
        self.metrics = metrics
        proxy = getattr(metrics_internal, "_ProxyMeterProvider", metrics.NoOpMeterProvider)
        self.idle_tracers = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
        self.idle_meters = (proxy, metrics.NoOpMeterProvider)


_api: _API | None = None


def _opentelemetry() -> _API | None:
    # None unless the application has imported OpenTelemetry: no provider can
    # be configured without that, and importing it costs ~100 ms.
    global _api
    if _api is None:
        if "opentelemetry.trace" not in sys.modules and "opentelemetry.metrics" not in sys.modules:
            return None
        try:
            _api = _API()
        except ImportError:  # pragma: no cover - a partial install
            return None
    return _api


class _Instruments:
    def __init__(self, meter: Any) -> None:
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk, measured from when the client issues "
            "the generation request to when the first chunk is received in the response stream.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )


class Telemetry:
    """Where streams record spans and metrics.

    Args:
        tracer_provider: the tracer provider (the global one by default).
        meter_provider: the meter provider (the global one by default).
        capture_content: record the prompt and the answer on the span; by
            default the ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
            environment variable decides (``true``), else never.
        enabled: ``False`` records nothing, whatever is configured.
    """

    def __init__(
        self,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        capture_content: bool | None = None,
        enabled: bool = True,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.capture_content = capture_content
        self.enabled = enabled
        self._tracers: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._meters: weakref.WeakKeyDictionary[Any, _Instruments] = weakref.WeakKeyDictionary()

    def start(
        self, request: GenAIRequest | Callable[[], GenAIRequest], started_ns: int | None = None
    ) -> _Recording | None:
        """Begin recording a stream, or ``None`` when nothing is configured;
        ``request`` may be a function that tells it (called only then)."""
        if not self.enabled:
            return None
        api = _opentelemetry()
        if api is None:
            return None
        tracers = self.tracer_provider or api.trace.get_tracer_provider()
        meters = self.meter_provider or api.metrics.get_meter_provider()
        tracing = not isinstance(tracers, api.idle_tracers)
        metering = not isinstance(meters, api.idle_meters)
        if not tracing and not metering:
            return None
        tracer = self._tracer(tracers) if tracing else None
        instruments = self._instruments(meters) if metering else None
        capture = self.capture_content
        if capture is None:
            capture = os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() == "true"
        if callable(request):
            request = request()
        return _Recording(api, tracer, instruments, request, capture, started_ns)

    def _tracer(self, provider: Any) -> Any:
        tracer = self._tracers.get(provider)
        if tracer is None:
            tracer = self._tracers[provider] = provider.get_tracer(
                _LIBRARY, _version(), schema_url=SCHEMA_URL
            )
        return tracer

    def _instruments(self, provider: Any) -> _Instruments:
        instruments = self._meters.get(provider)
        if instruments is None:
            meter = provider.get_meter(_LIBRARY, _version(), schema_url=SCHEMA_URL)
            instruments = self._meters[provider] = _Instruments(meter)
        return instruments


#: The application's global providers.
GLOBAL: Final = Telemetry()


def _version() -> str:
    from .. import __version__

    return __version__


def _row(api: str | None) -> API | None:
    return next((row for row in APIS if api in (row.id, row.name)), None) if api else None


def _provider_name(row: API | None, host: str | None) -> str:
    if host:
        for domain, name in _HOSTS:
            if host == domain or host.endswith("." + domain):
                return name
    return row.gen_ai_provider if row is not None else "_OTHER"


def request_of(url: str, content: bytes | None, api: str | None) -> GenAIRequest:
    """What an adapter can tell of a request it did not send: its URL, and
    the model its JSON body names (or Gemini's path: ``/models/{model}:...``)."""
    model: str | None = None
    if content:
        try:
            body = json.loads(content)
        except (ValueError, RecursionError):
            body = None
        if isinstance(body, dict) and isinstance(body.get("model"), str):
            model = body["model"]
    if model is None:
        path = urlsplit(url).path
        if "/models/" in path:
            model = path.rpartition("/models/")[2].partition(":")[0] or None
    return GenAIRequest(url=url, api=api, model=model)


def _server(url: str) -> tuple[str | None, int | None]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None, None
    if port is None and parts.scheme in ("http", "https"):
        port = 443 if parts.scheme == "https" else 80
    return parts.hostname, port


class _Recording:
    """One stream's span and metrics, begun at its first request."""

    def __init__(
        self,
        api: _API,
        tracer: Any,
        instruments: _Instruments | None,
        request: GenAIRequest,
        capture: bool,
        started_ns: int | None,
    ) -> None:
        self._api = api
        self._instruments = instruments
        self._request = request
        self._capture = capture
        now_ns = time.time_ns()
        self._started_ns = now_ns if started_ns is None else started_ns
        self._started = time.monotonic() - (now_ns - self._started_ns) / 1e9
        self._ended = False
        self._host, self._port = _server(request.url)
        row = _row(request.api)
        self._attributes = self._common(row)
        self._span = None
        if tracer is not None:
            self._span = tracer.start_span(
                self._name(),
                kind=api.trace.SpanKind.CLIENT,
                attributes={**self._attributes, **self._span_only(row)},
                start_time=self._started_ns,
            )

    def _common(self, row: API | None) -> dict[str, Any]:
        # What the span and every metric share, once the API is known.
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": row.operation if row is not None else "chat",
            "gen_ai.provider.name": _provider_name(row, self._host),
        }
        if self._request.model:
            attributes["gen_ai.request.model"] = self._request.model
        if self._host:
            attributes["server.address"] = self._host
            if self._port is not None:
                attributes["server.port"] = self._port
        return attributes

    def _span_only(self, row: API | None) -> dict[str, Any]:
        # The span's attributes that the metrics do not take.
        attributes: dict[str, Any] = {"gen_ai.request.stream": True}
        if self._request.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = self._request.max_tokens
        if row is not None and self._attributes["gen_ai.provider.name"] == "openai":
            api_type = _OPENAI_API_TYPES.get(row.id)
            if api_type is not None:
                attributes["openai.api.type"] = api_type  # OpenAI's own conventions
        return attributes

    def _name(self) -> str:
        operation = self._attributes["gen_ai.operation.name"]
        model = self._request.model
        return f"{operation} {model}" if model else str(operation)

    def end(
        self,
        *,
        dialect: str | None,
        metadata: ResponseMetadata | None,
        unified: Unified | None,
        response_id: str | None,
        response_model: str | None,
        first_token: float | None,
        error: BaseException | None,
        cancelled: bool = False,
    ) -> None:
        """The stream ended (once): fill the span in, end it, record the metrics.

        Args:
            dialect: the dialect that folded the stream, when known.
            metadata: the exchange's metadata (attempts and resumptions), if any.
            unified: the unified view (usage, finish reason, content), if any.
            response_id, response_model: from the response's first event.
            first_token: the ``time.monotonic()`` reading of the first token.
            error: what ended the stream, or ``None``.
            cancelled: the caller closed the stream before its end.
        """
        if self._ended:
            return
        self._ended = True
        ended = time.monotonic()
        late = self._request.api is None and dialect is not None  # an adapter's, told now
        if late:
            self._attributes = self._common(_row(dialect))
        common = dict(self._attributes)
        if response_model:
            common["gen_ai.response.model"] = response_model
        kind = error_type(error, cancelled)
        usage = unified.usage if unified is not None else None
        ttfc = first_token - self._started if first_token is not None else None
        span = self._span
        if span is not None:
            if late:
                span.set_attributes(self._span_only(_row(dialect)))
                span.update_name(self._name())
            self._fill(span, common, metadata, unified, response_id, ttfc)
            if kind is not None:
                span.set_attribute("error.type", kind)
                message = str(error) if error is not None else "closed before the end"
                span.set_status(self._api.trace.Status(self._api.trace.StatusCode.ERROR, message))
            span.end(end_time=self._started_ns + int((ended - self._started) * 1e9))
        instruments = self._instruments
        if instruments is None:
            return
        duration = dict(common)
        if kind is not None:
            duration["error.type"] = kind
        instruments.duration.record(ended - self._started, duration)
        if ttfc is not None:
            instruments.first_chunk.record(ttfc, common)
        if usage is not None:
            for token_type, count in (
                ("input", usage.input_tokens),
                ("output", usage.output_tokens),
            ):
                if count is not None:
                    instruments.tokens.record(count, {**common, "gen_ai.token.type": token_type})

    def _fill(
        self,
        span: Any,
        common: Mapping[str, Any],
        metadata: ResponseMetadata | None,
        unified: Unified | None,
        response_id: str | None,
        ttfc: float | None,
    ) -> None:
        attributes: dict[str, Any] = dict(common)
        if response_id:
            attributes["gen_ai.response.id"] = response_id
        if ttfc is not None:
            attributes["gen_ai.response.time_to_first_chunk"] = ttfc
        if unified is not None:
            finish = unified.raw_finish_reason or unified.finish_reason
            if finish:
                attributes["gen_ai.response.finish_reasons"] = (finish,)
            usage = unified.usage
            if usage is not None:
                for name, value in (
                    ("gen_ai.usage.input_tokens", usage.input_tokens),
                    ("gen_ai.usage.output_tokens", usage.output_tokens),
                    ("gen_ai.usage.cache_read.input_tokens", usage.cache_read_tokens),
                    ("gen_ai.usage.cache_creation.input_tokens", usage.cache_write_tokens),
                    ("gen_ai.usage.reasoning.output_tokens", usage.reasoning_tokens),
                ):
                    if value is not None:
                        attributes[name] = value
        if metadata is not None:
            self._attempts(span, attributes, metadata)
        if self._capture:
            self._content(attributes, unified)
        span.set_attributes(attributes)

    def _attempts(self, span: Any, attributes: dict[str, Any], metadata: ResponseMetadata) -> None:
        # Each retry and resumption is a span event; their counts, attributes.
        if metadata.attempts:
            attributes["streamfold.attempts"] = len(metadata.attempts)
        if metadata.resumptions:
            attributes["streamfold.resumptions"] = len(metadata.resumptions)
        for attempt in metadata.attempts:
            if attempt.error is None:
                continue
            status = attempt.status_code
            event: dict[str, Any] = {
                "streamfold.attempt": attempt.number,
                "error.type": str(status)
                if status is not None and status >= 400
                else attempt.error.type,
            }
            if attempt.status_code is not None:
                event["http.response.status_code"] = attempt.status_code
            if attempt.delay is not None:
                event["streamfold.delay"] = attempt.delay
            span.add_event("streamfold.retry", event)
        for resumption in metadata.resumptions:
            event = {
                "streamfold.resumption": resumption.number,
                "streamfold.via": resumption.via,
                "streamfold.cursor": resumption.cursor,
                "streamfold.events_before": resumption.events_before,
                "streamfold.cut": resumption.cut.type,
                "streamfold.delay": resumption.delay,
            }
            if resumption.status_code is not None:
                event["http.response.status_code"] = resumption.status_code
            if resumption.error is not None:
                event["error.type"] = resumption.error.code or resumption.error.type
            span.add_event("streamfold.resume", event)

    def _content(self, attributes: dict[str, Any], unified: Unified | None) -> None:
        # Opted in: the prompt and the answer, in the conventions' JSON shapes.
        request = self._request
        if request.messages is not None:
            attributes["gen_ai.input.messages"] = _json(_input_messages(request.messages))
        if request.system is not None:
            attributes["gen_ai.system_instructions"] = _json(
                [{"type": "text", "content": request.system}]
            )
        if unified is not None:
            attributes["gen_ai.output.messages"] = _json([_output_message(unified)])


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _input_messages(messages: str | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    # Each API's messages in the conventions' shape, as far as they are text;
    # any other part keeps its own type.
    if isinstance(messages, str):
        return [{"role": "user", "parts": [{"type": "text", "content": messages}]}]
    out: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        role = message.get("role")
        role = "assistant" if role == "model" else role if isinstance(role, str) else "user"
        content = message.get("content", message.get("parts"))
        parts: list[dict[str, Any]] = []
        for part in content if isinstance(content, list) else [content]:
            if isinstance(part, str):
                parts.append({"type": "text", "content": part})
            elif isinstance(part, Mapping):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append({"type": "text", "content": text})
                else:
                    kind = part.get("type")
                    parts.append({"type": kind if isinstance(kind, str) else "unknown"})
        out.append({"role": role, "parts": parts})
    return out


def _output_message(unified: Unified) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if unified.reasoning:
        parts.append({"type": "reasoning", "content": unified.reasoning})
    if unified.text:
        parts.append({"type": "text", "content": unified.text})
    for call in unified.tool_calls:
        try:
            arguments: Any = json.loads(call.arguments) if call.arguments else {}
        except ValueError:
            arguments = call.arguments
        parts.append(
            {"type": "tool_call", "id": call.id, "name": call.name, "arguments": arguments}
        )
    return {
        "role": "assistant",
        "parts": parts,
        "finish_reason": unified.raw_finish_reason or unified.finish_reason or "error",
    }
