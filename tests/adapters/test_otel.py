"""OpenTelemetry: the span and the GenAI metrics of each stream, read back with
the SDK's in-memory exporters, over the replay server: attributes as the
semantic conventions (v1.41.0) name them, one error type per failure, a cut
stream, a resumed one, retries, content only on opt-in, nothing without a
provider."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from typing import Any

import httpx
import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import streamfold
from streamfold import samples
from streamfold.adapters import otel
from streamfold.adapters.client import NO_KEY, RetryPolicy, Telemetry, astream, stream
from streamfold.adapters.httpx import EventStream, Timeouts
from streamfold.adapters.server import ReplayServer

NO_WAIT = RetryPolicy(initial_delay=0.0, jitter=0.0)


class Recorded:
    """A tracer and a meter provider of the SDK, with what they recorded."""

    def __init__(self, **options: Any) -> None:
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.telemetry = Telemetry(
            tracer_provider=tracer_provider,
            meter_provider=MeterProvider(metric_readers=[self.reader]),
            **options,
        )

    def span(self) -> ReadableSpan:
        [span] = self.spans.get_finished_spans()
        return span

    def metrics(self) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                assert scope.scope.name == "streamfold"
                assert scope.schema_url == otel.SCHEMA_URL
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(
                        (metric, point) for point in metric.data.data_points
                    )
        return found


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


def _base(server: ReplayServer, api: str) -> str:
    return server.url + ("/v1" if api.startswith("openai") else "")


def run(
    server: ReplayServer, name: str, recorded: Recorded, mode: str = "sync", **options: Any
) -> Any:
    sample = next(s for s in samples.SAMPLES if s.name == name)
    options = {
        "model": name,
        "api": sample.api,
        "base_url": _base(server, sample.api),
        "api_key": NO_KEY,
        "retries": NO_WAIT,
        "telemetry": recorded.telemetry,
        "max_tokens": 512,
        **options,
    }
    if mode == "sync":
        return stream(sample.prompt, **options).final()
    return asyncio.run(astream(sample.prompt, **options).final())


# -- a complete stream ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    ("name", "operation", "provider", "api_type"),
    [
        pytest.param("chat-reasoning", "chat", "openai", "chat_completions", id="chat"),
        pytest.param("responses-parallel-tools", "chat", "openai", "responses", id="responses"),
        pytest.param("anthropic-thinking", "chat", "anthropic", None, id="anthropic"),
        pytest.param("gemini-thinking", "generate_content", "gcp.gemini", None, id="gemini"),
        pytest.param("completions-text", "text_completion", "openai", None, id="completions"),
        pytest.param("bedrock-tools", "chat", "aws.bedrock", None, id="bedrock"),
        pytest.param("bedrock-claude-thinking", "chat", "aws.bedrock", None, id="bedrock-claude"),
        pytest.param("ollama-thinking", "chat", "ollama", None, id="ollama"),
        pytest.param(
            "ollama-generate-text", "text_completion", "ollama", None, id="ollama-generate"
        ),
    ],
)
def test_a_stream_records_one_span_and_the_genai_metrics(
    replay_server: ReplayServer,
    recorded: Recorded,
    mode: str,
    name: str,
    operation: str,
    provider: str,
    api_type: str | None,
) -> None:
    result = run(replay_server, name, recorded, mode)
    span = recorded.span()
    attributes = dict(span.attributes or {})
    assert span.name == f"{operation} {name}" and span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET and "error.type" not in attributes
    usage = result.usage
    expected = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": name,
        "gen_ai.request.stream": True,
        "gen_ai.request.max_tokens": 512,
        "server.address": "127.0.0.1",
        "server.port": replay_server.port,
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "gen_ai.response.finish_reasons": (result.unified.raw_finish_reason,),
        "streamfold.attempts": 1,
    }
    assert {k: attributes.get(k) for k in expected} == expected
    assert attributes.get("openai.api.type") == api_type
    started = next(
        e for e in streamfold.iter_events(samples.read(name)) if e.type == "response.started"
    )
    assert attributes.get("gen_ai.response.id") == started.id  # type: ignore[union-attr]
    assert attributes.get("gen_ai.response.model") == started.model  # type: ignore[union-attr]
    assert 0 < attributes["gen_ai.response.time_to_first_chunk"] <= span.end_time - span.start_time  # type: ignore[operator]
    assert "gen_ai.input.messages" not in attributes and "gen_ai.output.messages" not in attributes

    metrics = recorded.metrics()
    [(duration, point)] = metrics["gen_ai.client.operation.duration"]
    assert duration.unit == "s" and tuple(point.explicit_bounds) == otel.DURATION_BUCKETS
    shared = {
        k: expected[k]
        for k in (
            "gen_ai.operation.name",
            "gen_ai.provider.name",
            "gen_ai.request.model",
            "server.address",
            "server.port",
        )
    }
    assert {k: point.attributes.get(k) for k in shared} == shared
    assert "error.type" not in point.attributes and "openai.api.type" not in point.attributes
    tokens = {
        p.attributes["gen_ai.token.type"]: p.sum for m, p in metrics["gen_ai.client.token.usage"]
    }
    assert tokens == {"input": usage.input_tokens, "output": usage.output_tokens}
    [(token_metric, token_point)] = metrics["gen_ai.client.token.usage"][:1]
    assert (
        token_metric.unit == "{token}" and tuple(token_point.explicit_bounds) == otel.TOKEN_BUCKETS
    )
    [(ttfc, ttfc_point)] = metrics["gen_ai.client.operation.time_to_first_chunk"]
    assert ttfc.unit == "s" and ttfc_point.sum == attributes["gen_ai.response.time_to_first_chunk"]


def test_every_api_names_its_own_genai_provider() -> None:
    # "openai" is the row's default: an API of another service that forgets
    # to name its own would be reported as OpenAI's.
    from streamfold.dialects.registry import APIS

    for row in APIS:
        assert (row.gen_ai_provider == "openai") == row.id.startswith("openai-"), row.id
        assert row.operation in ("chat", "generate_content", "text_completion"), row.id


# -- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "options", "error_type"),
    [
        pytest.param("status=400", {}, "400", id="http-status"),
        pytest.param("status=503, retry-after=0", {"retries": 0}, "503", id="http-5xx-no-retry"),
        pytest.param("json-body", {}, "content_type", id="content-type"),
        pytest.param("drop-after=5", {}, "incomplete_stream", id="cut"),
        pytest.param(
            "stall=5, stall-after=3", {"timeouts": Timeouts(idle=0.3)}, "timeout", id="timeout"
        ),
        pytest.param("error-after=4", {}, "server_error", id="provider-error"),
        pytest.param("malformed-after=3", {}, "protocol_error", id="malformed"),
    ],
)
def test_each_failure_has_its_own_error_type(
    replay_server: ReplayServer,
    recorded: Recorded,
    fault: str,
    options: dict[str, Any],
    error_type: str,
) -> None:
    replay_server.inject(fault)
    with pytest.raises(streamfold.StreamfoldError) as caught:
        run(replay_server, "chat-reasoning", recorded, **options)
    span = recorded.span()
    assert span.attributes["error.type"] == error_type  # type: ignore[index]
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == str(caught.value)
    [(_, point)] = recorded.metrics()["gen_ai.client.operation.duration"]
    assert point.attributes["error.type"] == error_type


def test_a_cut_stream_keeps_what_arrived(replay_server: ReplayServer, recorded: Recorded) -> None:
    replay_server.inject("drop-after=8")
    with pytest.raises(streamfold.IncompleteStreamError):
        run(replay_server, "chat-reasoning", recorded)
    attributes = recorded.span().attributes or {}
    assert attributes["error.type"] == "incomplete_stream"
    assert attributes["gen_ai.response.id"] and "gen_ai.response.time_to_first_chunk" in attributes
    assert "gen_ai.client.token.usage" not in recorded.metrics()  # usage never came


def test_a_stream_closed_early_is_cancelled(
    replay_server: ReplayServer, recorded: Recorded
) -> None:
    with stream(
        "hi", model="chat-reasoning", base_url=replay_server.url, api_key=NO_KEY,
        telemetry=recorded.telemetry,
    ) as live:  # fmt: skip
        for event in live:
            if event.type == "reasoning.delta":
                break
    assert recorded.span().attributes["error.type"] == "cancelled"  # type: ignore[index]


# -- resumed and retried ---------------------------------------------------------------------


def test_a_resumed_stream_is_one_span_without_error(
    replay_server: ReplayServer, recorded: Recorded
) -> None:
    replay_server.inject("drop-after=4", times=1)
    result = run(replay_server, "responses-parallel-tools", recorded, resume=True)
    span = recorded.span()
    attributes = span.attributes or {}
    assert span.status.status_code is StatusCode.UNSET and "error.type" not in attributes
    assert attributes["streamfold.resumptions"] == 1
    [event] = span.events
    assert event.name == "streamfold.resume"
    assert dict(event.attributes or {}) == {
        "streamfold.resumption": 1,
        "streamfold.via": "starting_after",
        "streamfold.cursor": "3",
        "streamfold.events_before": 4,
        "streamfold.cut": "incomplete_stream",
        "streamfold.delay": 0.0,
        "http.response.status_code": 200,
    }
    assert attributes["gen_ai.usage.output_tokens"] == result.usage.output_tokens


def test_retried_attempts_are_events_not_errors(
    replay_server: ReplayServer, recorded: Recorded
) -> None:
    replay_server.inject("status=429, retry-after=0", times=2)
    run(replay_server, "chat-reasoning", recorded)
    span = recorded.span()
    attributes = span.attributes or {}
    assert "error.type" not in attributes and attributes["streamfold.attempts"] == 3
    assert [(e.name, e.attributes["error.type"]) for e in span.events] == [  # type: ignore[index]
        ("streamfold.retry", "429"),
        ("streamfold.retry", "429"),
    ]
    [(_, point)] = recorded.metrics()["gen_ai.client.operation.duration"]
    assert "error.type" not in point.attributes


# -- content ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "environ", "captured"),
    [
        pytest.param({}, None, False, id="off-by-default"),
        pytest.param({"capture_content": True}, None, True, id="opted-in"),
        pytest.param({}, "true", True, id="opted-in-by-environment"),
        pytest.param({"capture_content": False}, "true", False, id="the-caller-wins"),
    ],
)
def test_content_is_recorded_only_when_opted_in(
    replay_server: ReplayServer,
    monkeypatch: pytest.MonkeyPatch,
    options: dict[str, Any],
    environ: str | None,
    captured: bool,
) -> None:
    if environ is not None:
        monkeypatch.setenv(otel.CAPTURE_CONTENT_ENV, environ)
    recorded = Recorded(**options)
    result = run(replay_server, "chat-parallel-tools", recorded, system="be brief")
    attributes = recorded.span().attributes or {}
    if not captured:
        assert not {
            k
            for k in attributes
            if k.startswith(("gen_ai.input", "gen_ai.output", "gen_ai.system"))
        }
        return
    sample = next(s for s in samples.SAMPLES if s.name == "chat-parallel-tools")
    assert json.loads(attributes["gen_ai.input.messages"]) == [  # type: ignore[arg-type]
        {"role": "user", "parts": [{"type": "text", "content": sample.prompt}]}
    ]
    assert json.loads(attributes["gen_ai.system_instructions"]) == [  # type: ignore[arg-type]
        {"type": "text", "content": "be brief"}
    ]
    [output] = json.loads(attributes["gen_ai.output.messages"])  # type: ignore[arg-type]
    calls = [p for p in output["parts"] if p["type"] == "tool_call"]
    assert [c["name"] for c in calls] == [c.name for c in result.unified.tool_calls]
    assert output["role"] == "assistant" and output["finish_reason"] == "tool_calls"


def _everything(recorded: Recorded) -> str:
    # All a backend would receive: span names, attributes, events, status, metric points.
    parts: list[Any] = []
    for span in recorded.spans.get_finished_spans():
        parts += [span.name, span.status.description, *(span.attributes or {}).values()]
        for event in span.events:
            parts += [event.name, *(event.attributes or {}).values()]
    for points in recorded.metrics().values():
        parts += [value for _, point in points for value in point.attributes.values()]
    return "\n".join(map(str, parts))


def _forms(content: str) -> list[str]:
    # A text as it is, and as it is inside a JSON attribute.
    return [content, json.dumps(content, ensure_ascii=False)[1:-1]]


SECRET = "sk-test-3c1f9e0b7a6d"


@pytest.mark.parametrize("capture", [False, True], ids=["content-off", "content-on"])
@pytest.mark.parametrize(
    "fault",
    [None, "status=401", "drop-after=6", "error-after=3"],
    ids=["complete", "http-401", "cut", "provider-error"],
)
@pytest.mark.parametrize("name", ["chat-reasoning", "gemini-thinking"])
def test_no_secret_and_no_content_unless_opted_in(
    replay_server: ReplayServer, name: str, fault: str | None, capture: bool
) -> None:
    recorded = Recorded(capture_content=capture)
    if fault is not None:
        replay_server.inject(fault)
    sample = next(s for s in samples.SAMPLES if s.name == name)
    answer = streamfold.fold(samples.read(name)).unified
    with contextlib.suppress(streamfold.StreamfoldError):
        run(replay_server, name, recorded, api_key=SECRET, system="the system prompt")
    seen = _everything(recorded)
    assert SECRET not in seen and SECRET[3:] not in seen
    contents = [sample.prompt, "the system prompt", answer.text[:40], answer.reasoning[:40]]
    assert all(contents)
    if not capture:
        assert not [form for content in contents for form in _forms(content) if form in seen]
    elif fault is None:  # the check can fail: opted in, all of it is there
        assert all(_forms(content)[1] in seen for content in contents)


# -- the adapters, and no provider -------------------------------------------------------------


def test_an_adapter_records_the_response_it_is_handed(
    replay_server: ReplayServer, recorded: Recorded
) -> None:
    body = {"model": "anthropic-thinking", "messages": [], "max_tokens": 9, "stream": True}
    with (
        httpx.Client() as client,
        client.stream("POST", replay_server.url + "/v1/messages", json=body) as response,
    ):
        EventStream(response, telemetry=recorded.telemetry).final()
    span = recorded.span()
    attributes = span.attributes or {}
    assert span.name == "chat anthropic-thinking"
    assert attributes["gen_ai.provider.name"] == "anthropic"
    assert attributes["gen_ai.request.model"] == "anthropic-thinking"
    assert "streamfold.attempts" not in attributes  # the caller sent it


@pytest.mark.parametrize(
    ("url", "content", "model", "provider"),
    [
        pytest.param(
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            None,
            "gemini-2.5-flash",
            "gcp.gemini",
            id="gemini-path",
        ),
        pytest.param(
            "https://api.deepseek.com/chat/completions",
            b'{"model": "deepseek-chat"}',
            "deepseek-chat",
            "deepseek",
            id="deepseek-host",
        ),
        pytest.param(
            "https://x.openai.azure.com/openai/deployments/d/chat/completions",
            b"not json",
            None,
            "azure.ai.openai",
            id="azure-host",
        ),
    ],
)
def test_what_an_adapter_tells_of_a_request(
    url: str, content: bytes | None, model: str | None, provider: str
) -> None:
    request = otel.request_of(url, content, "openai-chat")
    assert request.model == model
    recorded = Recorded()
    recording = recorded.telemetry.start(request)
    assert recording is not None
    recording.end(
        dialect=None, metadata=None, unified=None, response_id=None, response_model=None,
        first_token=None, error=None,
    )  # fmt: skip
    assert recorded.span().attributes["gen_ai.provider.name"] == provider  # type: ignore[index]


def test_nothing_is_recorded_without_a_provider(replay_server: ReplayServer) -> None:
    # The global providers are the API's proxies here (the tests set none).
    live = stream("hi", model="chat-reasoning", base_url=replay_server.url, api_key=NO_KEY)
    with live:
        assert live._recording is None
        live.final()
    assert Telemetry(enabled=False).start(otel.GenAIRequest(url="http://h")) is None


def test_opentelemetry_is_not_imported_until_the_application_does() -> None:
    code = (
        "import sys, streamfold.adapters.client as c, streamfold.adapters.server as s\n"
        "with s.ReplayServer() as server:\n"
        "    live = c.stream('hi', model='chat-reasoning', base_url=server.url, api_key=c.NO_KEY)\n"
        "    live.final()\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
