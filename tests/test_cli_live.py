"""The live commands (demo, chat, serve) and the terminal renderers."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from typing import Any

import httpx
import pytest
from rich.console import Console

import streamfold
from streamfold import samples
from streamfold.adapters.httpx import ResponseMetadata
from streamfold.adapters.server import ReplayServer, sniff_api
from streamfold.cli import main
from streamfold.cli.live import PlainRenderer, RichRenderer, summary, wants_rich
from streamfold.dialects import DIALECTS

SECRET = "sk-test-CLI-LEAKCHECK-42"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out, err)
    return status, out.getvalue(), err.getvalue()


def _events(name: str) -> list[Any]:
    try:
        return list(streamfold.iter_events(samples.read(name)))
    except streamfold.StreamfoldError:
        return []


# -- demo -----------------------------------------------------------------------------------


def test_demo_runs_every_sample_a_registered_dialect_reads() -> None:
    status, out, err = run("demo", "--pace", "fast")
    assert status == 0, out + err
    chat = [s for s in samples.SAMPLES if s.api == "openai-chat"]
    for sample in chat:
        assert f"== {sample.name}:" in out
    # Each answer is rendered, then its final response printed.
    assert folded_text("chat-reasoning") in out
    assert '"finish_reason": "tool_calls"' in out
    assert "ProviderError: server_error: Provider disconnected unexpectedly" in out
    assert "partial response (openai-chat)" in out
    assert out.count("ok: behaved as expected") >= len(chat)
    assert "ttft" in out and "events" in out
    assert "UNEXPECTED" not in out
    assert "no network, no API key" in out


def folded_text(name: str) -> str:
    return streamfold.fold(samples.read(name)).text


@pytest.mark.parametrize("sample", samples.SAMPLES, ids=lambda s: s.name)
def test_demo_skips_exactly_the_samples_without_a_dialect(sample: Any) -> None:
    status, out, _ = run("demo", "--pace", "fast", "--sample", sample.name)
    ready = any(cls.detect(*_first(sample.name)) for cls in DIALECTS.values())
    if ready:
        assert status == 0 and "ok: behaved as expected" in out
    else:
        assert status == 1 and f"no registered dialect reads {sample.api} streams yet" in out


def _first(name: str) -> tuple[Any, Any]:
    from streamfold.dialects.base import decode_json
    from streamfold.sse import SSEDecoder

    event = next(e for e in SSEDecoder().feed(samples.read(name)) if e.data != "[DONE]")
    return event, decode_json(event)


def test_demo_unknown_sample_is_a_usage_error() -> None:
    status, _, err = run("demo", "--sample", "nope")
    assert status == 2 and "no sample named nope" in err


def test_sample_table_matches_the_recordings() -> None:
    for sample in samples.SAMPLES:
        assert sniff_api(samples.read(sample.name)) == sample.api


# -- chat ---------------------------------------------------------------------------------------


def test_chat_renders_reasoning_apart_and_summarises_on_stderr(replay_url: str) -> None:
    status, out, err = run("chat", "--base-url", replay_url, "--model", "chat-reasoning", "hi")
    assert status == 0, err
    result = streamfold.fold(samples.read("chat-reasoning"))
    assert out == f"[reasoning] {result.unified.reasoning}\n[answer] {result.text}\n"
    assert "finish stop" in err and "ttft" in err and "tok/s" in err
    assert "tokens in 21, out 75, reasoning 45" in err


def test_chat_tool_calls_fill_in(replay_url: str) -> None:
    status, out, _ = run(
        "chat", "--base-url", replay_url, "--model", "chat-parallel-tools", "weather?"
    )
    assert status == 0
    assert out.splitlines() == [
        '[tool call get_weather] {"location": "Paris, France", "unit": "celsius"}',
        '[tool call get_weather] {"location": "São Paulo, Brazil", "unit": "celsius"}',
    ]


def test_chat_plain_text_answer_is_unlabelled_and_errors_exit_1(replay_url: str) -> None:
    status, out, err = run(
        "chat", "--base-url", replay_url, "--model", "chat-midstream-error", "hi"
    )
    assert status == 1
    assert (
        out == "The Eiffel Tower opened in 1889 for the Exposition Universelle, and for 41 "
        "years it was the tallest man-made structure in the world — until\n"
    )
    assert "ProviderError: server_error: Provider disconnected unexpectedly (retryable)" in err


def test_chat_json_prints_events_as_json_lines(replay_url: str) -> None:
    status, out, _ = run(
        "chat", "--json", "--base-url", replay_url, "--model", "chat-parallel-tools", "hi"
    )
    assert status == 0
    lines = [json.loads(line) for line in out.splitlines()]
    expected = [json.loads(streamfold.events.to_json(e)) for e in _events("chat-parallel-tools")]
    assert lines == expected


@pytest.mark.parametrize(
    ("fault", "status", "message"),
    [
        pytest.param("status=429", 1, "HTTPStatusError: HTTP 429", id="429"),
        pytest.param("malformed-after=2", 3, "ProtocolError", id="malformed"),
        pytest.param("drop-after=2", 1, "IncompleteStreamError", id="drop"),
    ],
)
def test_chat_failures(
    replay_url: str, monkeypatch: pytest.MonkeyPatch, fault: str, status: int, message: str
) -> None:
    monkeypatch.setenv("MY_KEY", SECRET)
    code, out, err = run(
        "chat",
        "--base-url",
        replay_url,
        "--model",
        "chat-reasoning",
        "--api-key-env",
        "MY_KEY",
        "--header",
        f"X-Streamfold-Fault: {fault}",
        "hi",
    )
    assert code == status and message in err
    assert SECRET not in out and SECRET not in err


def test_chat_missing_key_variable_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    status, _, err = run("chat", "--model", "m", "--api-key-env", "NOT_SET_ANYWHERE", "hi")
    assert status == 2 and "NOT_SET_ANYWHERE is not set" in err


def test_chat_bad_header_is_a_usage_error() -> None:
    status, _, err = run("chat", "--model", "m", "--header", "no-colon", "hi")
    assert status == 2 and "use 'Name: value'" in err


def test_chat_unreachable_endpoint() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    status, _, err = run("chat", "--base-url", url, "--model", "m", "hi")
    assert status == 1 and "cannot reach" in err and "ConnectError" in err


# -- rendering ---------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("out", "environ", "expected"),
    [
        pytest.param(_Terminal(), {}, True, id="terminal"),
        pytest.param(_Terminal(), {"NO_COLOR": "1"}, False, id="no-color"),
        pytest.param(io.StringIO(), {}, False, id="not-a-terminal"),
    ],
)
def test_wants_rich(out: io.StringIO, environ: dict[str, str], expected: bool) -> None:
    assert wants_rich(out, environ) is expected


def _rich(name: str) -> str:
    file = io.StringIO()
    console = Console(
        file=file, force_terminal=True, width=70, color_system=None, legacy_windows=False
    )
    renderer = RichRenderer(console, auto_refresh=False)
    renderer.start()
    for event in _events(name):
        renderer.event(event)
    renderer.refresh()
    renderer.stop()
    return file.getvalue()


def test_rich_renderer_sets_reasoning_apart() -> None:
    screen = _rich("chat-reasoning")
    assert "╭─ reasoning" in screen
    assert "九点九更大 🙂" in screen
    final_frame = screen.rsplit("╭─ reasoning", 1)[1]
    assert "tokens ·" not in final_frame  # the progress line is gone at the end


def test_rich_renderer_fills_in_tool_calls() -> None:
    screen = _rich("chat-parallel-tools")
    final_frame = screen.rsplit("tool call get_weather", 2)
    assert len(final_frame) == 3
    assert '"São Paulo, Brazil"' in screen and "…" not in final_frame[-1]


def test_plain_renderer_on_no_color_terminal(
    replay_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    out = _Terminal()
    status = main(
        ["chat", "--base-url", replay_url, "--model", "chat-parallel-tools", "x"],
        out,
        io.StringIO(),
    )
    assert status == 0 and "\x1b[" not in out.getvalue()
    assert out.getvalue().startswith("[tool call get_weather] ")


def test_plain_renderer_labels_only_after_the_first_section() -> None:
    out = io.StringIO()
    renderer = PlainRenderer(out)
    for event in _events("chat-midstream-error"):
        renderer.event(event)
    renderer.stop()
    assert not out.getvalue().startswith("[")


def _metadata(first_token: float, total: float) -> ResponseMetadata:
    return ResponseMetadata(
        status_code=200,
        reason="OK",
        http_version="HTTP/1.1",
        url="u",
        headers={},
        request_id="req_1",
        time_to_first_token=first_token,
        total_time=total,
    )


def test_summary_rates_from_usage_else_from_deltas() -> None:
    tools = streamfold.fold(samples.read("chat-parallel-tools"))
    line = summary(tools, _metadata(0.5, 2.5))
    assert line == (
        "finish tool_calls · tokens in 82, out 54 · ttft 0.50 s · 27.0 tok/s · "
        "total 2.50 s · request req_1"
    )
    partial = streamfold.StreamParser()
    partial.feed(samples.read("chat-midstream-error"))
    line = summary(partial.snapshot, _metadata(0.5, 2.5), deltas=40)
    assert "~20.0 tok/s" in line and "finish error" in line


# -- serve ----------------------------------------------------------------------------------------


def test_serve_prints_its_url_and_serves(tmp_path: Any) -> None:
    (tmp_path / "mine.sse").write_bytes(samples.read("chat-parallel-tools"))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from streamfold.cli import main; sys.exit(main())",
            "serve",
            "--port",
            "0",
            "--no-samples",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        response = httpx.post(
            url + "/v1/chat/completions",
            json={"model": "anything"},
            headers={"X-Streamfold-Fault": "split=7"},
            timeout=10,
        )
        assert response.content == samples.read("chat-parallel-tools")
        listing = httpx.get(url + "/recordings", timeout=10).json()
        assert listing == {"recordings": [{"name": "mine", "api": "openai-chat"}]}
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert "serving 1 recordings" in err and "-> mine [split=7]" in err


def test_serve_rejects_bad_defaults() -> None:
    status, _, err = run("serve", "--fault", "explode")
    assert status == 2 and "unknown fault" in err


def test_replay_server_fixture_gives_a_base_url(
    replay_server: ReplayServer, replay_url: str
) -> None:
    assert replay_url == replay_server.url
    assert httpx.get(replay_url + "/recordings").status_code == 200
