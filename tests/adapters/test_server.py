"""The replay server: recordings, knobs, plans, and the endpoints over real sockets."""

from __future__ import annotations

import itertools
import json
import logging
import re
import socket
import struct
import threading
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

import streamfold
from streamfold import samples
from streamfold.adapters.server import (
    DROP,
    Faults,
    Pace,
    Recording,
    ReplayServer,
    error_body,
    load_recordings,
    parse_faults,
    parse_pace,
    plan,
    sniff_api,
    split_events,
)
from streamfold.client import stream
from streamfold.dialects.registry import APIS, get_api

from ..corpus import CORPUS, corpus_files

pytest_plugins = ["pytester"]

SAMPLE_NAMES = [s.name for s in samples.SAMPLES]


def _events(data: bytes) -> list[bytes]:
    """Data of each data-bearing block, by an independent line scan (LF or CRLF only)."""
    out = []
    for block in data.replace(b"\r\n", b"\n").split(b"\n\n"):
        lines = [line[5:].lstrip(b" ") for line in block.split(b"\n") if line.startswith(b"data:")]
        if lines:
            out.append(b"\n".join(lines))
    return out


# -- recordings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "blocks"),
    [
        pytest.param(b"data: a\n\ndata: b\n\n", [b"data: a\n\n", b"data: b\n\n"], id="lf"),
        pytest.param(
            b"data: a\r\n\r\ndata: b\r\n\r\n", [b"data: a\r\n\r\n", b"data: b\r\n\r\n"], id="crlf"
        ),
        pytest.param(b"data: a\r\rdata: b\r\r", [b"data: a\r\r", b"data: b\r\r"], id="cr"),
        pytest.param(
            b": ping\n\nevent: x\ndata: 1\ndata: 2\n\ndata: tail",
            [b": ping\n\n", b"event: x\ndata: 1\ndata: 2\n\n", b"data: tail"],
            id="comment-multiline-unterminated",
        ),
        pytest.param(b"\n\ndata: a\n\n", [b"\n", b"\n", b"data: a\n\n"], id="leading-blank-lines"),
    ],
)
def test_split_events_cuts_after_each_blank_line(data: bytes, blocks: list[bytes]) -> None:
    assert split_events(data) == blocks
    assert b"".join(blocks) == data


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_samples_split_back_to_their_bytes_and_sniff_as_declared(name: str) -> None:
    sample = next(s for s in samples.SAMPLES if s.name == name)
    data = samples.read(name)
    assert b"".join(split_events(data)) == data
    assert sniff_api(data) == sample.api


@pytest.mark.parametrize("api", ["chat", "responses", "anthropic", "gemini"])
def test_sniff_api_on_the_corpus(api: str) -> None:
    paths = [p.values[0] for p in corpus_files(api)]
    if paths == [None]:
        pytest.skip("the shared corpus is absent")
    found = {path.name: sniff_api(path.read_bytes()) for path in paths}
    api = get_api(api).id
    wrong = {name: got for name, got in found.items() if got not in (api, None)}
    assert not wrong
    # Data-only Responses captures (xAI, Copilot) may not say; most must.
    assert sum(got == api for got in found.values()) >= 0.8 * len(found)


def test_load_recordings_from_files_and_folders(tmp_path: Any) -> None:
    (tmp_path / "one.sse").write_bytes(samples.read("chat-reasoning"))
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "two.sse").write_bytes(samples.read("anthropic-thinking"))
    (folder / "notes.txt").write_text("ignored")
    found = load_recordings(tmp_path / "one.sse", folder)
    assert {name: r.api for name, r in found.items()} == {"one": "openai-chat", "two": "anthropic"}
    with pytest.raises(ValueError, match="two recordings are named"):
        load_recordings(tmp_path / "one.sse", tmp_path / "one.sse")
    with pytest.raises(ValueError, match="no recording at"):
        load_recordings(tmp_path / "missing.sse")


# -- knobs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "faults"),
    [
        pytest.param("", Faults(), id="empty"),
        pytest.param("none", Faults(), id="none"),
        pytest.param("drop-after=3", Faults(drop_after=3), id="drop"),
        pytest.param("stall=0.5, stall-after=2", Faults(stall=0.5, stall_after=2), id="stall"),
        pytest.param("malformed-after=0", Faults(malformed_after=0), id="malformed"),
        pytest.param(
            "error-after=4; provider=openrouter",
            Faults(error_after=4, provider="openrouter"),
            id="in-band",
        ),
        pytest.param("status=529,retry-after=7", Faults(status=529, retry_after=7.0), id="status"),
        pytest.param("json-body", Faults(json_body=True), id="json-body"),
        pytest.param("split=utf8", Faults(split="utf8"), id="split-utf8"),
        pytest.param("SPLIT=3", Faults(split="3"), id="split-count-case-insensitive"),
        pytest.param(
            "event-ids, sse-retry=250, overlap=2",
            Faults(event_ids=True, sse_retry=250, overlap=2),
            id="resumable",
        ),
    ],
)
def test_parse_faults(text: str, faults: Faults) -> None:
    assert parse_faults(text) == faults


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("explode", "unknown fault 'explode'", id="unknown"),
        pytest.param("drop-after", "needs a value", id="no-value"),
        pytest.param("drop-after=x", "drop-after='x' is not a whole number", id="not-a-number"),
        pytest.param("drop-after=1.5", "not a whole number", id="count-not-whole"),
        pytest.param("stall=-1", r"stall=-1\.0: use a number from 0 to 600 seconds", id="negative"),
        pytest.param("stall=nan", "stall=nan: use a number from 0 to 600", id="stall-nan"),
        pytest.param("stall=inf", "stall=inf: use a number", id="stall-inf"),
        pytest.param("stall=1e308", r"stall=1e\+308: use a number", id="stall-huge"),
        pytest.param("stall=601", "stall=601", id="stall-over-bound"),
        pytest.param("retry-after=nan", "retry-after=nan: use a number", id="retry-after-nan"),
        pytest.param("retry-after=-inf", "retry-after=-inf", id="retry-after-minus-inf"),
        pytest.param("retry-after=86401", "from 0 to 86400 seconds", id="retry-after-over"),
        pytest.param("drop-after=1000001", "from 0 to 1000000 events", id="count-over"),
        pytest.param("drop-after=" + "9" * 5000, "is not a whole number", id="count-5000-digits"),
        pytest.param("error-after=-1", "error-after=-1", id="count-negative"),
        pytest.param("status=200", "from 400 to 599", id="status-2xx"),
        pytest.param("split=words", "use utf8, crlf, bytes", id="split"),
        pytest.param("split=0", "split='0'", id="split-zero"),
        pytest.param("split=\u00b2", "split=", id="split-superscript-digit"),
        pytest.param("split", "split needs a value", id="split-no-value"),
        pytest.param("provider=acme", "use one of", id="provider"),
        pytest.param("sse-retry=600001", "from 0 to 600000 milliseconds", id="sse-retry-over"),
        pytest.param("overlap=-1", "overlap=-1", id="overlap-negative"),
    ],
)
def test_parse_faults_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_faults(text)


def test_faults_built_directly_are_checked_too() -> None:
    with pytest.raises(ValueError, match="stall=nan"):
        Faults(stall=float("nan"))
    with pytest.raises(ValueError, match=r"drop-after=2\.0: use a whole number"):
        Faults(drop_after=2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="speed=0"):
        Pace(speed=0)


@pytest.mark.parametrize(
    ("text", "pace"),
    [
        pytest.param("fast", Pace(), id="fast"),
        pytest.param("realistic", Pace(ttft=0.4, gap=0.025), id="realistic"),
        pytest.param("realistic, speed=4", Pace(ttft=0.4, gap=0.025, speed=4.0), id="speed"),
        pytest.param("ttft=0.2, gap=0.01", Pace(ttft=0.2, gap=0.01), id="explicit"),
    ],
)
def test_parse_pace(text: str, pace: Pace) -> None:
    assert parse_pace(text) == pace


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("slow", "unknown pace 'slow'", id="unknown"),
        pytest.param("speed=0", "speed=0.0: use a number from 0.001 to 1000", id="speed-zero"),
        pytest.param("speed=1e-300", "speed=1e-300", id="speed-tiny"),
        pytest.param("speed=inf", "speed=inf", id="speed-inf"),
        pytest.param("speed=nan", "speed=nan", id="speed-nan"),
        pytest.param("gap=-1", "gap=-1.0", id="gap-negative"),
        pytest.param("ttft=nan", "ttft=nan: use a number from 0 to 600 seconds", id="ttft-nan"),
        pytest.param("ttft=inf", "ttft=inf", id="ttft-inf"),
        pytest.param("gap=1e308", "gap=1e", id="gap-huge"),
        pytest.param("ttft=x", "ttft='x' is not a number", id="not-a-number"),
        pytest.param(
            "gap=600, speed=0.5", "gap=600 at speed=0.5 pauses 1200 seconds", id="pause-at-speed"
        ),
    ],
)
def test_parse_pace_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_pace(text)


def test_the_bounds_themselves_are_accepted() -> None:
    assert parse_faults("stall=600, retry-after=86400, drop-after=1000000, split=1000000") == (
        Faults(stall=600, retry_after=86400, drop_after=1000000, split="1000000")
    )
    assert parse_pace("ttft=600, gap=0, speed=1") == Pace(ttft=600)
    assert parse_pace("realistic, speed=0.001") == Pace(ttft=0.4, gap=0.025, speed=0.001)


def test_pace_delays() -> None:
    pace = Pace(ttft=0.4, gap=0.02, speed=2)
    assert [pace.delay(i) for i in range(3)] == [0.2, 0.01, 0.01]


# -- plans -----------------------------------------------------------------------------------


def _recording(name: str = "chat-reasoning") -> Recording:
    return Recording(name, samples.read(name))


def _body(steps: list[Any]) -> bytes:
    return b"".join(s.data for s in steps if isinstance(s.data, bytes))


def _sent_events(steps: list[Any]) -> int:
    return sum(s.event for s in steps)


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_plan_without_faults_sends_the_recording_verbatim(name: str) -> None:
    recording = _recording(name)
    steps = plan(recording, Faults(), Pace(), provider="openai", api="openai-chat")
    assert _body(steps) == recording.data
    assert _sent_events(steps) == len(_events(recording.data))
    assert all(step.delay == 0 for step in steps)


def test_plan_pace_delays_each_event() -> None:
    steps = plan(
        _recording(),
        Faults(),
        Pace(ttft=0.3, gap=0.01, speed=2),
        provider="openai",
        api="openai-chat",
    )
    delays = [s.delay for s in steps if s.event]
    assert delays[0] == pytest.approx(0.15)
    assert delays[1:] == pytest.approx([0.005] * (len(delays) - 1))


@pytest.mark.parametrize("split", ["utf8", "crlf", "bytes", "5"])
def test_plan_splits_at_hostile_points(split: str) -> None:
    recording = _recording()
    steps = plan(recording, Faults(split=split), Pace(), provider="openai", api="openai-chat")
    pieces = [s.data for s in steps if isinstance(s.data, bytes)]
    assert len(pieces) == len(steps)
    body = b"".join(pieces)
    if split == "crlf":
        assert body == recording.data.replace(b"\n", b"\r\n")
        # every cut falls between a CR and its LF
        assert all(
            a.endswith(b"\r") and b.startswith(b"\n")
            for a, b in itertools.pairwise(pieces)
            if not a.endswith(b"\n")
        )
        assert sum(p.endswith(b"\r") for p in pieces) == body.count(b"\r\n")
    else:
        assert body == recording.data
    if split == "utf8":
        multibyte = sum(1 for byte in recording.data if byte >= 0xC0)
        inside = [p for p in pieces if p and 0x80 <= p[0] <= 0xBF]
        assert multibyte > 10 and len(inside) == multibyte
    if split == "bytes":
        assert all(len(p) == 1 for p in pieces)
    if split == "5":
        assert all(len(p) <= 5 for p in pieces)
    assert _sent_events(steps) == len(_events(recording.data))


def test_plan_drop_after_n_events() -> None:
    steps = plan(_recording(), Faults(drop_after=4), Pace(), provider="openai", api="openai-chat")
    assert steps[-1].data is DROP
    assert _events(_body(steps)) == _events(_recording().data)[:4]


def test_plan_stall_adds_the_pause_before_the_event_after_n() -> None:
    steps = plan(
        _recording(),
        Faults(stall=1.5, stall_after=2),
        Pace(gap=0.01),
        provider="openai",
        api="openai-chat",
    )
    delays = [s.delay for s in steps if s.event]
    assert delays[:4] == [0.0, 0.01, pytest.approx(1.51), 0.01]


def test_plan_malformed_after_n_inserts_a_cut_json_event() -> None:
    data = _recording().data
    steps = plan(
        _recording(), Faults(malformed_after=3), Pace(), provider="openai", api="openai-chat"
    )
    sent = _events(_body(steps))
    original = _events(data)
    assert sent[:3] == original[:3]
    with pytest.raises(json.JSONDecodeError):
        json.loads(sent[3])
    assert sent[4:] == original[3:]


@pytest.mark.parametrize(
    ("provider", "api", "check"),
    [
        pytest.param(
            "openai",
            "openai-chat",
            lambda e, p: p["error"]["type"] == "server_error" and e is None,
            id="openai-chat",
        ),
        pytest.param(
            "openai",
            "openai-responses",
            lambda e, p: e == "error" and p["type"] == "error" and p["sequence_number"] == 2,
            id="openai-responses",
        ),
        pytest.param(
            "anthropic",
            "anthropic",
            lambda e, p: e == "error" and p["error"]["type"] == "overloaded_error",
            id="anthropic",
        ),
        pytest.param(
            "gemini", "gemini", lambda e, p: p["error"]["status"] == "UNAVAILABLE", id="gemini"
        ),
        pytest.param(
            "openrouter",
            "openai-chat",
            lambda e, p: (
                p["choices"][0]["finish_reason"] == "error" and p["error"]["code"] == "server_error"
            ),
            id="openrouter",
        ),
    ],
)
def test_plan_error_after_n_ends_with_the_providers_in_band_error(
    provider: str, api: str, check: Any
) -> None:
    steps = plan(_recording(), Faults(error_after=2), Pace(), provider=provider, api=api)
    blocks = split_events(_body(steps))
    last = blocks[-1]
    event = next(
        (line[7:].decode() for line in last.splitlines() if line.startswith(b"event: ")), None
    )
    payload = json.loads(_events(last)[0])
    assert check(event, payload)
    assert len(_events(_body(steps))) == 3


def test_plan_as_json_array_for_gemini_without_alt_sse() -> None:
    recording = _recording("gemini-thinking")
    steps = plan(recording, Faults(), Pace(), provider="gemini", api="gemini", framing="json-array")
    elements = json.loads(_body(steps))
    assert elements == [json.loads(d) for d in _events(recording.data)]
    assert _sent_events(steps) == len(elements)


# -- error bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "status", "expected"),
    [
        pytest.param(
            "openai", 429, {"type": "requests", "code": "rate_limit_exceeded"}, id="openai-429"
        ),
        pytest.param("openai", 500, {"type": "server_error", "code": None}, id="openai-500"),
        pytest.param("anthropic", 429, {"type": "rate_limit_error"}, id="anthropic-429"),
        pytest.param(
            "anthropic",
            529,
            {"type": "overloaded_error", "message": "Overloaded"},
            id="anthropic-529",
        ),
        pytest.param("gemini", 503, {"code": 503, "status": "UNAVAILABLE"}, id="gemini-503"),
        pytest.param("openrouter", 429, {"code": 429}, id="openrouter-429"),
    ],
)
def test_error_body_shapes(provider: str, status: int, expected: dict[str, Any]) -> None:
    body = error_body(provider, status, "req_1", retry_after=3)
    error = body["error"]
    assert expected.items() <= error.items()
    assert isinstance(error["message"], str) and error["message"]
    if provider == "anthropic":
        assert body["type"] == "error" and body["request_id"] == "req_1"
    if provider == "openai":
        assert set(error) == {"message", "type", "param", "code"}


def test_gemini_429_body_carries_retry_info() -> None:
    details = error_body("gemini", 429, "", retry_after=37)["error"]["details"]
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"} in details


# -- over real sockets -----------------------------------------------------------------------------


def _post(url: str, path: str, body: Any = None, **headers: str) -> httpx.Response:
    headers = {k.replace("_", "-"): v for k, v in headers.items()}
    return httpx.post(url + path, json=body or {}, headers=headers, timeout=10)


@pytest.mark.parametrize(
    ("path", "name", "content_type"),
    [
        pytest.param("/v1/chat/completions", "chat-reasoning", "text/event-stream", id="chat"),
        pytest.param(
            "/chat/completions", "chat-parallel-tools", "text/event-stream", id="chat-without-v1"
        ),
        pytest.param(
            "/v1/responses", "responses-parallel-tools", "text/event-stream", id="responses"
        ),
        pytest.param("/v1/messages", "anthropic-thinking", "text/event-stream", id="anthropic"),
        pytest.param(
            "/v1beta/models/gemini-thinking:streamGenerateContent?alt=sse",
            "gemini-thinking",
            "text/event-stream",
            id="gemini-sse",
        ),
        pytest.param("/v2/chat", "cohere-tools", "text/event-stream", id="cohere"),
        pytest.param(
            "/v1beta/interactions", "interactions-thinking", "text/event-stream", id="interactions"
        ),
        pytest.param("/v1/completions", "completions-text", "text/event-stream", id="completions"),
        pytest.param(
            "/completions", "completions-text", "text/event-stream", id="completions-without-v1"
        ),
    ],
)
def test_routes_serve_the_recording_named_by_the_model(
    replay_server: ReplayServer, path: str, name: str, content_type: str
) -> None:
    response = _post(replay_server.url, path, {"model": name, "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(content_type)
    assert response.content == samples.read(name)
    record = replay_server.request(
        response.headers.get("x-request-id") or response.headers.get("request-id")
    )
    assert record.recording == name
    assert record.body == {"model": name, "stream": True}
    assert record.wait() == "complete"
    assert record.events_sent == len(_events(samples.read(name)))


def test_gemini_without_alt_sse_streams_a_json_array(replay_server: ReplayServer) -> None:
    response = _post(replay_server.url, "/v1beta/models/gemini-thinking:streamGenerateContent")
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == [json.loads(d) for d in _events(samples.read("gemini-thinking"))]


def test_gemini_non_streaming_action_is_refused(replay_server: ReplayServer) -> None:
    response = _post(replay_server.url, "/v1beta/models/gemini-thinking:generateContent")
    assert response.status_code == 404
    assert "streamGenerateContent" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "body", "headers", "expected"),
    [
        pytest.param(
            "/v1/chat/completions",
            {"model": "gpt-4o"},
            {"x-streamfold-recording": "chat-parallel-tools"},
            "chat-parallel-tools",
            id="header-wins",
        ),
        pytest.param(
            "/v1/chat/completions",
            {"model": "chat-reasoning"},
            {"x-streamfold-recording": "chat-parallel-tools"},
            "chat-parallel-tools",
            id="header-over-model",
        ),
        pytest.param(
            "/v1/messages", {"model": "anthropic-thinking"}, {}, "anthropic-thinking", id="model"
        ),
    ],
)
def test_recording_choice(
    replay_server: ReplayServer,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    expected: str,
) -> None:
    response = _post(replay_server.url, path, body, **headers)
    assert response.status_code == 200
    assert response.content == samples.read(expected)


@pytest.mark.parametrize(
    ("path", "api"),
    [
        pytest.param("/v1/chat/completions", "openai-chat", id="chat"),
        pytest.param("/v1/messages", "anthropic", id="anthropic"),
        pytest.param("/v1beta/models/gpt-4o:streamGenerateContent?alt=sse", "gemini", id="gemini"),
    ],
)
def test_an_unknown_model_is_a_404_listing_the_routes_recordings(
    replay_server: ReplayServer, path: str, api: str
) -> None:
    # Never the first recording by name: a newcomer's first try says what there is.
    response = _post(replay_server.url, path, {"model": "gpt-4o"})
    assert response.status_code == 404
    message = json.dumps(response.json())
    assert "gpt-4o" in message and f"recordings of {api}: " in message
    names = [s.name for s in samples.SAMPLES if s.api == api]
    assert all(name in message for name in names)
    assert replay_server.requests[-1].outcome == "not-found"


def test_unknown_recording_is_a_provider_shaped_404(replay_server: ReplayServer) -> None:
    response = _post(replay_server.url, "/v1/chat/completions", {}, x_streamfold_recording="nope")
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    assert "'nope'" in message and "chat-reasoning" in message


def test_bad_fault_header_is_a_400_saying_why(replay_server: ReplayServer) -> None:
    response = _post(replay_server.url, "/v1/messages", {}, x_streamfold_fault="explode")
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error" and "unknown fault 'explode'" in body["error"]["message"]


@pytest.mark.parametrize(
    ("header", "value", "knob"),
    [
        pytest.param("x_streamfold_fault", "stall=nan", "stall=nan", id="stall-nan"),
        pytest.param("x_streamfold_fault", "stall=1e308", "stall=1e+308", id="stall-huge"),
        pytest.param("x_streamfold_fault", "stall=inf", "stall=inf", id="stall-inf"),
        pytest.param(
            "x_streamfold_fault", "status=429, retry-after=nan", "retry-after=nan", id="retry-nan"
        ),
        pytest.param("x_streamfold_pace", "ttft=nan", "ttft=nan", id="ttft-nan"),
        pytest.param("x_streamfold_pace", "speed=1e-300", "speed=1e-300", id="speed-tiny"),
    ],
)
def test_knobs_that_are_no_finite_number_in_bounds_are_a_400(
    replay_server: ReplayServer, header: str, value: str, knob: str
) -> None:
    response = _post(
        replay_server.url, "/v1/chat/completions", {"model": "chat-reasoning"}, **{header: value}
    )
    assert response.status_code == 400
    assert "retry-after" not in response.headers
    assert knob in response.json()["error"]["message"]
    assert replay_server.request(response.headers["x-request-id"]).outcome == "refused"


@pytest.mark.parametrize(
    ("path", "fault", "status", "retry_after", "request_id_header"),
    [
        pytest.param(
            "/v1/chat/completions", "status=429", 429, "1", "x-request-id", id="openai-429"
        ),
        pytest.param("/v1/responses", "status=500", 500, None, "x-request-id", id="openai-500"),
        pytest.param(
            "/v1/messages", "status=529, retry-after=3", 529, "3", "request-id", id="anthropic-529"
        ),
        pytest.param(
            "/v1beta/models/m:streamGenerateContent?alt=sse",
            "status=503",
            503,
            "1",
            "x-request-id",
            id="gemini-503",
        ),
    ],
)
def test_status_faults_answer_with_the_providers_body_and_headers(
    replay_server: ReplayServer,
    path: str,
    fault: str,
    status: int,
    retry_after: str | None,
    request_id_header: str,
) -> None:
    response = _post(replay_server.url, path, {"model": "chat-reasoning"}, x_streamfold_fault=fault)
    assert response.status_code == status
    assert response.headers.get("retry-after") == retry_after
    request_id = response.headers[request_id_header]
    assert replay_server.request(request_id).outcome == "fault"
    assert response.json()["error"]["message"]


def test_json_body_fault_is_an_error_object_on_http_200(replay_server: ReplayServer) -> None:
    response = _post(replay_server.url, "/v1/chat/completions", {}, x_streamfold_fault="json-body")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["type"] == "server_error"


def test_drop_closes_the_connection_mid_body(replay_server: ReplayServer) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        _post(
            replay_server.url,
            "/v1/chat/completions",
            {"model": "chat-reasoning"},
            x_streamfold_fault="drop-after=2",
        )
    record = replay_server.requests[-1]
    assert record.wait() == "dropped" and record.events_sent == 2


def test_pace_holds_back_the_first_event_and_the_headers_go_at_once() -> None:
    # No clock: the server's pause is held open until the test has the headers.
    asked: list[float] = []
    pausing, release = threading.Event(), threading.Event()

    async def sleep(seconds: float) -> None:
        asked.append(seconds)
        pausing.set()
        await anyio.to_thread.run_sync(release.wait)

    with ReplayServer() as server:
        server.app.state.replay.sleep = sleep
        with httpx.stream(
            "POST",
            server.url + "/v1/chat/completions",
            json={"model": "chat-parallel-tools"},
            headers={"x-streamfold-pace": "ttft=0.3, gap=0, speed=2"},
            timeout=30,
        ) as response:
            # The head arrived while the first event is held back.
            assert response.status_code == 200
            assert pausing.wait(30)
            assert server.requests[-1].events_sent == 0
            release.set()
            body = response.read()
    assert asked == [pytest.approx(0.15)]  # ttft / speed, then no gap
    assert body == samples.read("chat-parallel-tools")


def test_server_defaults_apply_to_requests_without_headers() -> None:
    with ReplayServer(faults=parse_faults("status=503"), pace=Pace()) as server:
        body = {"model": "chat-reasoning"}
        assert _post(server.url, "/v1/chat/completions", body).status_code == 503
        overridden = _post(server.url, "/v1/chat/completions", body, x_streamfold_fault="none")
        assert overridden.status_code == 200


def test_recordings_listing(replay_url: str) -> None:
    listing = httpx.get(replay_url + "/recordings").json()["recordings"]
    assert {"name": "chat-reasoning", "api": "openai-chat"} in listing
    assert {r["name"] for r in listing} >= set(SAMPLE_NAMES)


def test_serves_corpus_recordings_verbatim_on_their_apis_route() -> None:
    if not CORPUS.is_dir():
        pytest.skip("the shared corpus is absent")
    recordings = load_recordings(CORPUS)
    routes = {api.id: api.routes[0] for api in APIS if api.routes}
    routes["gemini"] = "/v1beta/models/m:streamGenerateContent?alt=sse"
    with ReplayServer(recordings) as server:
        for name in list(recordings)[::10]:
            # A recording no dialect reads is served as it is wherever it is named.
            path = routes.get(recordings[name].api or "", "/v1/chat/completions")
            response = _post(server.url, path, {}, x_streamfold_recording=name)
            assert response.content == recordings[name].data, name


# -- the pytest plugin, as a user's suite sees it ------------------------------------------------


def test_the_plugin_in_a_users_test_suite(pytester: pytest.Pytester) -> None:
    recordings = pytester.mkdir("recordings")
    (recordings / "mine.sse").write_bytes(samples.read("chat-parallel-tools"))
    pytester.makeini("[pytest]\nstreamfold_recordings = recordings\n")
    # No conftest: installing streamfold registers the plugin (pytest11 entry point).
    pytester.makepyfile(
        test_app="""
        import httpx

        def test_recorded_stream(replay_url):
            response = httpx.post(replay_url + "/v1/chat/completions", json={"model": "mine"})
            assert response.status_code == 200 and b"get_weather" in response.content

        def test_fault(replay_server):
            response = httpx.post(replay_server.url + "/v1/messages", json={},
                                  headers={"X-Streamfold-Fault": "status=529"})
            assert response.status_code == 529
            assert replay_server.requests[-1].outcome == "fault"
            assert {"mine", "chat-reasoning"} <= set(replay_server.recordings)
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(passed=2)


# -- scoped faults, scripts, conversations ------------------------------------------------------


def test_times_n_faults_let_a_retrying_client_succeed(replay_server: ReplayServer) -> None:
    # The openai SDK retries a 429 by itself (twice by default).
    openai = pytest.importorskip("openai")
    replay_server.inject("status=429, retry-after=0.01", times=2)
    client = openai.OpenAI(base_url=replay_server.url + "/v1", api_key="unused", max_retries=2)
    chunks = client.chat.completions.create(
        model="chat-reasoning", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == streamfold.fold(samples.read("chat-reasoning")).text
    served = replay_server.requests
    assert [r.wait() for r in served] == ["fault", "fault", "complete"]
    assert [r.status for r in served] == [429, 429, 200]


def test_a_cut_stream_then_success_with_a_retrying_loop(replay_server: ReplayServer) -> None:
    replay_server.inject("drop-after=3", times=1)
    attempts = 0
    while True:
        attempts += 1
        try:
            result = stream("hi", model="chat-reasoning", base_url=replay_server.url).final()
            break
        except streamfold.IncompleteStreamError:
            assert attempts < 3
    assert attempts == 2 and result.complete
    assert [r.wait() for r in replay_server.requests] == ["dropped", "complete"]


@pytest.mark.parametrize(
    ("scope", "outcomes"),
    [
        pytest.param(
            {"recording": "chat-reasoning"},
            ["complete", "fault", "fault"],
            id="per-recording",
        ),
        pytest.param(
            {"route": "/v1/chat/completions"}, ["fault", "fault", "complete"], id="per-route"
        ),
        pytest.param(
            {"recording": "chat-reasoning", "times": 1},
            ["complete", "fault", "complete"],
            id="per-recording-times",
        ),
    ],
)
def test_faults_scoped_to_a_recording_or_a_route(
    replay_server: ReplayServer, scope: dict[str, Any], outcomes: list[str]
) -> None:
    replay_server.inject("status=503", **scope)
    for path, model in [
        ("/v1/chat/completions", "chat-parallel-tools"),
        ("/v1/chat/completions", "chat-reasoning"),
        ("/chat/completions", "chat-reasoning"),
    ]:
        _post(replay_server.url, path, {"model": model})
    assert [r.wait() for r in replay_server.requests] == outcomes


def test_rules_apply_in_order_as_a_script_of_faults(replay_server: ReplayServer) -> None:
    replay_server.inject("status=429", times=1)
    replay_server.inject("error-after=2", times=1)
    outcomes = []
    for _ in range(3):
        _post(replay_server.url, "/v1/messages", {"model": "anthropic-thinking"})
        outcomes.append((replay_server.requests[-1].wait(), replay_server.requests[-1].knobs))
    assert outcomes == [
        ("fault", "status=429, times=1"),
        ("fault", "error-after=2, times=1"),
        ("complete", ""),
    ]


def test_a_header_with_times_counts_per_header(replay_server: ReplayServer) -> None:
    codes = [
        _post(
            replay_server.url,
            "/v1/chat/completions",
            {"model": "chat-reasoning"},
            x_streamfold_fault="status=500, times=1",
        ).status_code
        for _ in range(2)
    ]
    assert codes == [500, 200]


def test_a_script_answers_turn_by_turn_on_any_route(replay_server: ReplayServer) -> None:
    replay_server.script("chat-parallel-tools", "anthropic-thinking")
    first = stream("weather?", model="gpt-4o", base_url=replay_server.url).final()
    second = stream("and so?", model="gpt-4o", base_url=replay_server.url).final()
    assert [c.name for c in first.unified.tool_calls] == ["get_weather", "get_weather"]
    assert second.text == streamfold.fold(samples.read("anthropic-thinking")).text
    assert replay_server.requests[-1].reencoded_from == "anthropic"
    response = _post(replay_server.url, "/v1/chat/completions", {"model": "gpt-4o"})
    assert response.status_code == 404 and "2 turns are all used" in response.text


def test_a_folder_is_a_conversation_named_by_the_model(tmp_path: Any) -> None:
    folder = tmp_path / "weather"
    folder.mkdir()
    (folder / "1-tools.sse").write_bytes(samples.read("chat-parallel-tools"))
    (folder / "2-answer.sse").write_bytes(samples.read("chat-reasoning"))
    with ReplayServer(load_recordings(tmp_path)) as server:
        bodies = [_post(server.url, "/v1/chat/completions", {"model": "weather"}) for _ in "abc"]
        assert [b.status_code for b in bodies] == [200, 200, 404]
        assert bodies[0].content == samples.read("chat-parallel-tools")
        assert bodies[1].content == samples.read("chat-reasoning")
        assert "answered all its 2 turns" in bodies[2].text
        assert [r.recording for r in server.requests] == [
            "weather/1-tools",
            "weather/2-answer",
            None,
        ]


@pytest.mark.parametrize(
    ("path", "api"),
    [
        pytest.param("/v1/messages", "anthropic", id="anthropic"),
        pytest.param("/v1/responses", "openai-responses", id="responses"),
        pytest.param(
            "/v1beta/models/chat-reasoning:streamGenerateContent?alt=sse", "gemini", id="gemini"
        ),
    ],
)
def test_a_recording_of_another_api_is_reencoded_for_the_route(
    replay_server: ReplayServer, path: str, api: str
) -> None:
    response = _post(replay_server.url, path, {"model": "chat-reasoning"})
    result = streamfold.fold(response.content)
    expected = streamfold.fold(samples.read("chat-reasoning"))
    assert result.dialect == api
    assert (result.text, result.unified.reasoning) == (expected.text, expected.unified.reasoning)
    assert replay_server.requests[-1].reencoded_from == "openai-chat"


def test_a_recording_no_encoder_writes_is_not_served_on_another_route(
    replay_server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamfold import encode

    monkeypatch.delitem(encode.ENCODERS, "anthropic")
    response = _post(replay_server.url, "/v1/messages", {"model": "chat-reasoning"})
    assert response.status_code == 404
    assert "speaks openai-chat, which cannot be re-encoded as anthropic" in response.text


# -- the log ------------------------------------------------------------------------------------


def test_one_log_line_per_finished_request_404s_included() -> None:
    lines: list[str] = []
    with ReplayServer(on_finish=lambda r: lines.append(r.log_line())) as server:
        _post(server.url, "/v1/chat/completions", {"model": "chat-reasoning"})
        with pytest.raises(httpx.RemoteProtocolError):
            _post(
                server.url,
                "/v1/messages",
                {"model": "chat-reasoning"},
                x_streamfold_fault="drop-after=2",
            )
        _post(server.url, "/v1/chat/completions", {"model": "nope"})
        for record in server.requests:
            record.wait()
    events = len(_events(samples.read("chat-reasoning")))
    size = len(samples.read("chat-reasoning"))
    assert re.fullmatch(
        rf"req_replay_000001 POST /v1/chat/completions chat-reasoning: complete, {events} events, "
        rf"{size:,} bytes, \d+ ms",
        lines[0],
    )
    assert re.fullmatch(
        r"req_replay_000002 POST /v1/messages chat-reasoning \(re-encoded from openai-chat\) "
        r"\[drop-after=2\]: dropped after 2 events, [\d,]+ bytes, \d+ ms",
        lines[1],
    )
    assert lines[2].startswith(
        "req_replay_000003 POST /v1/chat/completions model 'nope': not-found (404), "
        "no recording answers model 'nope' on openai-chat"
    )


def test_a_client_that_leaves_is_an_outcome_not_noise(caplog: pytest.LogCaptureFixture) -> None:
    # Before: dozens of "socket.send() raised exception." per client, and "complete".
    big = b"".join(
        b'data: {"choices":[{"index":0,"delta":{"content":"%d"}}]}\n\n' % i for i in range(20000)
    )
    caplog.set_level(logging.WARNING)
    with ReplayServer({"big": Recording("big", big)}) as server:
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", server.port)) as sock:
                sock.sendall(
                    b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                    b"content-type: application/json\r\ncontent-length: 15\r\n\r\n"
                    b'{"model":"big"}'
                )
                sock.recv(4096)
                # Close with a reset, as a killed client does.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            assert server.requests[-1].wait(10) == "disconnected"
    assert "socket.send() raised exception" not in caplog.text
    assert all(0 < r.events_sent < 20000 for r in server.requests)


# -- the per-test context of the fixture -----------------------------------------------------------


def test_each_test_has_its_own_faults_turns_and_log(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_app="""
        import httpx

        def post(url, model="chat-reasoning"):
            return httpx.post(url + "/v1/chat/completions", json={"model": model})

        def test_one(replay_server):
            replay_server.inject("status=503")
            replay_server.script("chat-parallel-tools")
            assert post(replay_server.url).status_code == 503
            assert len(replay_server.requests) == 1

        def test_two(replay_server):
            # test_one's fault and script are gone; its requests are not in this log
            response = post(replay_server.url)
            assert response.status_code == 200 and b"get_weather" not in response.content
            # the server ends a record after its last write: wait for it
            assert [r.wait() for r in replay_server.requests] == ["complete"]
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(passed=2)


def test_a_suite_records_once_then_replays_offline(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_app="""
        import streamfold.client as sf

        def test_weather(replay_server):
            for prompt in ("first", "second"):
                result = sf.stream(prompt, model="gpt-test", base_url=replay_server.url + "/v1",
                                   api_key="sk-suite-SECRET-1234").final()
                assert result.unified.tool_calls
        """
    )
    folder = pytester.path / "recordings" / "test_app" / "test_weather"
    with ReplayServer() as upstream:
        upstream.script("chat-parallel-tools", "chat-parallel-tools")
        recorded = pytester.runpytest_inprocess(
            "-p",
            "no:cacheprovider",
            "-p",
            "no:asyncio",
            "--streamfold-record=once",
            f"--streamfold-upstream={upstream.url}",
        )
        recorded.assert_outcomes(passed=1)
        assert len(upstream.requests) == 2
    assert sorted(p.name for p in folder.iterdir()) == [
        "gpt-test-1.meta.json",
        "gpt-test-1.sse",
        "gpt-test-2.meta.json",
        "gpt-test-2.sse",
    ]
    assert all(b"sk-suite-SECRET-1234" not in p.read_bytes() for p in folder.iterdir())
    # The upstream is gone: the default mode replays only, offline.
    replayed = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio")
    replayed.assert_outcomes(passed=1)


# -- resumable streams -------------------------------------------------------------------------


def test_plan_skips_the_first_events_and_numbers_them_all() -> None:
    recording = Recording("r", samples.read("chat-reasoning"), "openai-chat", "sse")
    steps = plan(
        recording,
        parse_faults("sse-retry=5"),
        Pace(),
        provider="openai",
        api="openai-chat",
        skip=3,
        ids="req_1",
    )
    body = b"".join(step.data for step in steps if isinstance(step.data, bytes))
    blocks = split_events(samples.read("chat-reasoning"))
    assert body.startswith(b"id: req_1.4\nretry: 5\n" + blocks[3])
    assert body.endswith(b"id: req_1.%d\n" % len(blocks) + blocks[-1])
    assert sum(step.event for step in steps) == len(blocks) - 3


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        pytest.param("/v1/responses/resp_unknown?stream=true", {}, 404, id="unknown-response"),
        pytest.param("/v1/responses/resp_SampleParallelTools0001", {}, 400, id="not-a-stream"),
        pytest.param(
            "/v1/responses/resp_SampleParallelTools0001?stream=true&starting_after=x",
            {},
            400,
            id="bad-cursor",
        ),
    ],
)
def test_a_reattach_the_server_cannot_serve_is_refused(
    replay_server: ReplayServer, path: str, headers: dict[str, str], status: int
) -> None:
    body = {"model": "responses-parallel-tools", "background": True, "input": "hi"}
    httpx.post(replay_server.url + "/v1/responses", json=body).read()
    response = httpx.get(replay_server.url + path, headers=headers)
    assert response.status_code == status
    assert response.json()["error"]["message"]


def test_a_background_response_is_reattached_after_a_sequence_number(
    replay_server: ReplayServer,
) -> None:
    body = {"model": "responses-parallel-tools", "background": True, "input": "hi"}
    httpx.post(replay_server.url + "/v1/responses", json=body).read()
    url = replay_server.url + "/responses/resp_SampleParallelTools0001?stream=true"
    rest = httpx.get(url + "&starting_after=5").content
    blocks = split_events(samples.read("responses-parallel-tools"))
    assert rest == b"".join(blocks[6:])
    assert httpx.get(url).content == samples.read("responses-parallel-tools")
    assert replay_server.requests[-1].recording == "responses-parallel-tools"


def test_an_unknown_last_event_id_is_a_404(replay_server: ReplayServer) -> None:
    response = httpx.post(
        replay_server.url + "/v1/chat/completions",
        json={"model": "chat-reasoning"},
        headers={"Last-Event-ID": "req_replay_999999.3"},
    )
    assert response.status_code == 404
    assert "event id" in response.json()["error"]["message"]
