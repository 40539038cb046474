"""The live commands (demo, chat, serve) and the terminal renderers."""

from __future__ import annotations

import http.server
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from rich.console import Console

import streamfold
from streamfold import samples
from streamfold.adapters.httpx import ResponseMetadata
from streamfold.adapters.server import Recording, ReplayServer, sniff_api
from streamfold.cli import main
from streamfold.cli.live import PlainRenderer, RichRenderer, summary, wants_rich
from streamfold.dialects import DIALECTS

from .test_cli import assert_no_traceback, closed_pipe, needs_dev_full, shell

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
    assert "finish stop" in err and "ttft" in err
    assert "tok/s" not in err  # a replay streams at once: no rate worth showing
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
        "--retries",
        "0",
        "hi",
    )
    assert code == status and message in err
    assert SECRET not in out and SECRET not in err


@pytest.mark.parametrize(
    ("options", "status", "said"),
    [
        pytest.param(["--resume"], 0, "resumed 1x", id="resumed"),
        pytest.param([], 1, "connection closed after 3 events", id="without-resume"),
    ],
)
def test_chat_resume_continues_a_cut_stream(
    replay_url: str, options: list[str], status: int, said: str
) -> None:
    code, out, err = run(
        "chat",
        "--base-url",
        replay_url,
        "--api",
        "responses",
        "--model",
        "responses-parallel-tools",
        "--header",
        "X-Streamfold-Fault: drop-after=3, times=1",  # the re-attach request is served whole
        *options,
        "weather?",
    )
    assert code == status and said in err
    if status == 0:
        calls = streamfold.fold(samples.read("responses-parallel-tools")).unified.tool_calls
        assert out.count("[tool call get_weather]") == len(calls)


def test_chat_retries_a_rate_limit_and_says_so(replay_url: str) -> None:
    code, _, err = run(
        "chat",
        "--base-url",
        replay_url,
        "--model",
        "chat-reasoning",
        "--header",
        "X-Streamfold-Fault: status=429, retry-after=0, times=1",
        "hi",
    )
    assert code == 0 and "retried 1x" in err


def test_chat_retries_must_be_a_small_count() -> None:
    code, _, err = run("chat", "--model", "m", "--retries", "-1", "hi")
    assert code == 2 and "--retries" in err


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
            json={"model": "mine"},
            headers={"X-Streamfold-Fault": "split=7"},
            timeout=10,
        )
        assert response.content == samples.read("chat-parallel-tools")
        listing = httpx.get(url + "/recordings", timeout=10).json()
        assert listing == {"recordings": [{"name": "mine", "api": "openai-chat"}]}
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert "serving 1 recordings" in err
    assert "POST /v1/chat/completions mine [split=7]: complete, 21 events, 7,160 bytes, " in err


def test_serve_rejects_bad_defaults() -> None:
    status, _, err = run("serve", "--fault", "explode")
    assert status == 2 and "unknown fault" in err


def test_replay_server_fixture_gives_a_base_url(
    replay_server: ReplayServer, replay_url: str
) -> None:
    assert replay_url == replay_server.url
    assert httpx.get(replay_url + "/recordings").status_code == 200


# -- the standard streams, for real ------------------------------------------------------------


def _live_argv(command: str, url: str) -> list[str]:
    if command == "chat":
        return [
            "chat",
            "--base-url",
            url,
            "--model",
            "chat-parallel-tools",
            "--api-key-env",
            "MY_KEY",
            "hi",
        ]
    if command == "demo":
        return ["demo", "--pace", "fast", "--sample", "chat-parallel-tools"]
    return ["serve", "--port", "0", "--quiet"]


FULL = b"streamfold: cannot write the output: No space left on device\n"


@pytest.mark.parametrize("command", ["chat", "demo", "serve"])
@pytest.mark.parametrize(
    ("redirect", "status", "stderr"),
    [
        pytest.param(">&-", 1, b"", id="closed-stdout"),
        pytest.param("pipe", 1, b"", id="pipe-closed-early"),
        pytest.param("> /dev/full", 74, FULL, marks=needs_dev_full, id="full-disk"),
    ],
)
def test_live_commands_with_closed_or_full_stdout(
    replay_url: str, command: str, redirect: str, status: int, stderr: bytes
) -> None:
    argv = _live_argv(command, replay_url)
    env = {"MY_KEY": SECRET}
    done = closed_pipe(*argv, env=env) if redirect == "pipe" else shell(redirect, *argv, env=env)
    assert (done.returncode, done.stderr) == (status, stderr)


@pytest.mark.parametrize("command", ["chat", "demo"])
def test_live_output_the_terminal_encoding_cannot_hold_is_utf8(
    replay_url: str, command: str
) -> None:
    done = shell(
        "", *_live_argv(command, replay_url), env={"PYTHONIOENCODING": "ascii", "MY_KEY": SECRET}
    )
    assert done.returncode == 0, done.stderr
    assert '"São Paulo, Brazil"'.encode() in done.stdout
    assert_no_traceback(done)


def test_chat_prompt_from_a_closed_stdin_is_a_usage_error(replay_url: str) -> None:
    argv = ["chat", "--base-url", replay_url, "--model", "m", "--api-key-env", "MY_KEY", "-"]
    done = shell("<&-", *argv, env={"MY_KEY": SECRET})
    assert done.returncode == 2
    assert done.stderr == (
        b"streamfold: standard input is closed: give the prompt, or pipe it in with -\n"
    )


def test_chat_prompt_from_stdin_that_is_not_utf8_is_sent_with_replacements(
    replay_server: ReplayServer,
) -> None:
    argv = ["chat", "--base-url", replay_server.url, "--model", "chat-reasoning"]
    done = subprocess.run(
        [sys.executable, "-m", "streamfold", *argv, "--api-key-env", "MY_KEY", "-"],
        input=b"caf\xe9?",
        capture_output=True,
        env={**os.environ, "MY_KEY": SECRET},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert replay_server.requests[-1].body["messages"][-1]["content"] == "caf\ufffd?"


def test_chat_library_crash_is_a_bug_in_one_line(
    replay_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamfold.cli import live

    def boom(*args: Any, **kwargs: Any) -> None:
        raise KeyError(SECRET)  # and even then, no secret

    monkeypatch.setattr(live, "summary", boom)
    monkeypatch.setenv("MY_KEY", SECRET)
    argv = [
        "chat",
        "--base-url",
        replay_url,
        "--model",
        "chat-reasoning",
        "--api-key-env",
        "MY_KEY",
    ]
    status, out, err = run(*argv, "hi")
    assert status == 70
    assert err.splitlines()[-1] == (
        "streamfold: internal error (a streamfold bug, please report it): KeyError: 'REDACTED'"
    )
    assert SECRET not in out + err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["serve", "--fault", "stall=nan"],
            "stall=nan: use a number from 0 to 600",
            id="stall-nan",
        ),
        pytest.param(["serve", "--fault", "stall=1e308"], "stall=1e+308", id="stall-huge"),
        pytest.param(
            ["serve", "--fault", "retry-after=nan"], "retry-after=nan", id="retry-after-nan"
        ),
        pytest.param(
            ["serve", "--fault", "retry-after=inf"], "retry-after=inf", id="retry-after-inf"
        ),
        pytest.param(["serve", "--pace", "ttft=nan"], "ttft=nan", id="ttft-nan"),
        pytest.param(["serve", "--pace", "speed=1e-300"], "speed=1e-300", id="speed-tiny"),
        pytest.param(["demo", "--pace", "gap=inf"], "gap=inf", id="demo-gap-inf"),
        pytest.param(["serve", "--port", "99999"], "is not a port (0 to 65535)", id="port"),
        pytest.param(
            ["chat", "--model", "m", "--idle-timeout", "nan", "hi"],
            "'nan' is not a number of seconds",
            id="timeout-nan",
        ),
        pytest.param(
            ["chat", "--model", "m", "--total-timeout", "-1", "hi"],
            "'-1' is not a number of seconds",
            id="timeout-negative",
        ),
        pytest.param(
            ["chat", "--model", "m", "--base-url", "http://[::1", "hi"],
            "base URL 'http://[::1'",
            id="invalid-url",
        ),
    ],
)
def test_bad_knobs_and_options_are_usage_errors(argv: list[str], message: str) -> None:
    status, _, err = run(*argv)
    assert status == 2 and message in err
    assert "Traceback" not in err


def test_serve_on_a_port_in_use_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, _, err = run("serve", "--port", str(port))
    assert status == 2
    assert err == f"streamfold: cannot serve on 127.0.0.1:{port}: Address already in use\n"


def test_serve_unreadable_recording_is_one_line(tmp_path: Any) -> None:
    path = tmp_path / "locked.sse"
    path.mkdir()  # a folder named .sse inside a folder: reading it fails
    status, _, err = run("serve", "--no-samples", str(tmp_path))
    assert status == 2 and err.startswith("streamfold: cannot read ") and err.count("\n") == 1


# -- secrets -------------------------------------------------------------------------------------

# A recording whose in-band error echoes the key, as OpenAI's "Incorrect API key" does.
_ECHO_EVENTS = (
    b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
    b'data: {"error":{"message":"Incorrect API key provided: ' + SECRET.encode() + b'",'
    b'"type":"invalid_request_error"}}\n\n'
)


class _EchoHandler(http.server.BaseHTTPRequestHandler):
    # A server whose 401 body echoes every credential it got: the headers'
    # values, Basic auth decoded, the path with its query.
    def do_POST(self) -> None:
        import base64

        self.rfile.read(int(self.headers.get("content-length") or 0))
        seen = [self.path, *self.headers.values()]
        scheme, _, token = (self.headers.get("authorization") or "").partition(" ")
        if scheme.lower() == "basic":
            seen.append(base64.b64decode(token).decode())
        body = json.dumps(
            {
                "error": {
                    "message": "Incorrect API key provided: " + " ".join(seen),
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            }
        ).encode()
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def echo_replay_url() -> Iterator[str]:
    with ReplayServer({"echo": Recording("echo", _ECHO_EVENTS)}) as server:
        yield server.url


def _unreachable_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def _with_userinfo(url: str) -> str:
    return url.replace("http://", f"http://someone:{SECRET}@")


@pytest.mark.parametrize(
    "target", ["replay-in-band-echo", "replay-429", "unreachable", "http-401-echo"]
)
@pytest.mark.parametrize(
    "where", ["env-default", "env-named", "url-query", "url-userinfo", "header", "anthropic-env"]
)
@pytest.mark.parametrize("json_output", [False, True], ids=["plain", "json"])
def test_chat_never_prints_the_key(
    echo_url: str,
    echo_replay_url: str,
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    where: str,
    json_output: bool,
) -> None:
    base = {
        "replay-in-band-echo": echo_replay_url,
        "replay-429": echo_replay_url,
        "unreachable": _unreachable_url(),
        "http-401-echo": echo_url,
    }[target]
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    argv = ["chat", "--model", "echo"]
    url = base + ("/v1" if where != "anthropic-env" else "")
    if where == "env-default":
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    elif where == "anthropic-env":
        monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
        argv += ["--api", "anthropic"]
    elif where == "env-named":
        monkeypatch.setenv("MY_KEY", SECRET)
        argv += ["--api-key-env", "MY_KEY"]
    elif where == "url-query":
        url += f"?key={SECRET}"
    elif where == "url-userinfo":
        url = _with_userinfo(url)
    else:
        argv += ["--header", f"Authorization: Bearer {SECRET}"]
    if target == "replay-429":
        argv += ["--header", "X-Streamfold-Fault: status=429"]
    if json_output:
        argv.append("--json")
    status, out, err = run(*argv, "--base-url", url, "hi")
    assert status == 1, err
    assert SECRET not in out and SECRET not in err
    assert err.count("\n") <= 3 and "Traceback" not in err
    if target == "unreachable":
        assert "cannot reach" in err
    if target in ("replay-in-band-echo", "http-401-echo") and where != "url-query":
        assert "REDACTED" in err  # the echo was there, and was replaced


# -- polish: Ctrl-C, --version, help, cuts, 404s ---------------------------------------------------


def _interrupted(argv: list[str], ready: bytes, stream: str = "stdout") -> tuple[int, bytes, bytes]:
    """Run ``streamfold ARGV``, send SIGINT once ``ready`` has been printed
    (on ``stream``), and return its status, stdout and stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "streamfold", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None and process.stderr is not None
    pipe = process.stdout if stream == "stdout" else process.stderr
    seen = b""
    while ready not in seen:
        chunk = os.read(pipe.fileno(), 4096)
        assert chunk, f"ended before {ready!r}: {seen!r}"
        seen += chunk
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    return (
        process.returncode,
        (seen + out if stream == "stdout" else out),
        (err if stream == "stdout" else seen + err),
    )


def test_ctrl_c_in_chat_prints_the_partial_summary_and_exits_130(replay_url: str) -> None:
    argv = ["chat", "--base-url", replay_url, "--model", "chat-reasoning"]
    argv += ["--header", "X-Streamfold-Pace: ttft=0, gap=0.5", "hi"]
    status, out, err = _interrupted(argv, b"[reasoning] ")
    assert status == 130
    assert out.startswith(b"[reasoning] ")
    assert err.splitlines()[-1] == b"streamfold: interrupted"
    assert b"ttft" in err and b"Traceback" not in err and b"Exception ignored" not in err


def test_ctrl_c_in_serve_stops_it_quietly() -> None:
    status, out, err = _interrupted(["serve", "--port", "0"], b"\n")
    assert status == 0 and out.startswith(b"http://127.0.0.1:")
    assert err.splitlines()[-1] == b"streamfold: stopped after 0 requests"
    assert b"Traceback" not in err


def test_ctrl_c_in_demo_prints_no_traceback() -> None:
    argv = ["demo", "--pace", "ttft=0, gap=0.5", "--sample", "chat-reasoning"]
    status, _, err = _interrupted(argv, b"== chat-reasoning")
    assert status == 130 and err == b"streamfold: interrupted\n"


def test_version() -> None:
    status, out, _ = run("--version")
    assert status == 0 and out == f"streamfold {streamfold.__version__}\n"


def _actions(parser: Any) -> Iterator[tuple[str, Any]]:
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                for path, found in _actions(sub):
                    yield f"{name} {path}", found
        else:
            yield action.dest, action


def test_every_flag_has_help() -> None:
    from streamfold.cli import _build_parser

    missing = [name for name, action in _actions(_build_parser()) if not action.help]
    assert missing == []


def test_serve_help_lists_the_knobs_and_demo_help_the_samples() -> None:
    _, serve, _ = run("serve", "--help")
    for knob in ("drop-after=N", "stall=S", "error-after=N", "status=CODE", "split=", "times=N"):
        assert knob in serve
    for pace in ("realistic", "ttft=S", "speed=N"):
        assert pace in serve
    _, demo, _ = run("demo", "--help")
    assert all(sample.name in "".join(demo.split()) for sample in samples.SAMPLES)


def test_a_cut_stream_says_where(replay_url: str) -> None:
    argv = ["chat", "--base-url", replay_url, "--model", "chat-reasoning"]
    status, _, err = run(*argv, "--header", "X-Streamfold-Fault: drop-after=30", "hi")
    assert status == 1
    assert "streamfold: connection closed after 30 events\n" in err


def test_the_live_view_marks_the_cut() -> None:
    file = io.StringIO()
    console = Console(file=file, force_terminal=True, width=70, color_system=None)
    renderer = RichRenderer(console, auto_refresh=False)
    renderer.start()
    for event in _events("chat-parallel-tools")[:8]:
        renderer.event(event)
    renderer.stop("connection closed after 8 events")
    final = file.getvalue().rsplit("tool call get_weather", 1)[-1]
    assert "✂ cut" in final and "✂ connection closed after 8 events" in final


def test_the_answer_is_markdown_on_a_terminal_and_raw_when_piped() -> None:
    from streamfold.events import TextDelta

    markdown = ["# Title\n\n", "Some **bold** text and `code`.\n"]
    file = io.StringIO()
    console = Console(file=file, force_terminal=True, width=70, color_system=None)
    renderer = RichRenderer(console, auto_refresh=False)
    renderer.start()
    for piece in markdown:
        renderer.event(TextDelta(delta=piece))
    renderer.stop()
    screen = file.getvalue()
    assert "**bold**" not in screen and "bold" in screen and "# Title" not in screen
    plain = io.StringIO()
    piped = PlainRenderer(plain)
    for piece in markdown:
        piped.event(TextDelta(delta=piece))
    piped.stop()
    assert plain.getvalue() == "".join(markdown) + "\n"


@pytest.mark.parametrize(
    ("api", "suffix", "fix"),
    [
        pytest.param("anthropic", "/v1", "try --base-url {url}", id="anthropic-with-v1"),
        pytest.param("chat", "/api", "try --base-url {url}/api/v1", id="chat-without-v1"),
    ],
)
def test_a_404_shows_the_url_and_the_fix_for_the_usual_base_url_mistakes(
    replay_url: str, api: str, suffix: str, fix: str
) -> None:
    status, _, err = run(
        "chat", "--api", api, "--base-url", replay_url + suffix, "--model", "m", "hi"
    )
    assert status == 1
    line = err.splitlines()[-1]
    assert line.startswith(f"streamfold: POST {replay_url}{suffix}/") and "answered 404" in line
    assert line.endswith(fix.format(url=replay_url))


def test_a_404_for_an_unknown_model_names_no_false_fix(replay_url: str) -> None:
    status, _, err = run("chat", "--base-url", replay_url + "/v1", "--model", "nope", "hi")
    assert status == 1
    assert err.splitlines()[-1] == f"streamfold: POST {replay_url}/v1/chat/completions answered 404"
    assert "recordings of openai-chat: chat-midstream-error" in err


def test_serve_records_through_to_an_upstream(tmp_path: Any) -> None:
    with ReplayServer() as upstream:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamfold",
                "serve",
                "--port",
                "0",
                "--no-samples",
                "--record",
                str(tmp_path),
                "--upstream",
                upstream.url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            for _ in range(2):
                status, _, _ = run(
                    "chat", "--base-url", url + "/v1", "--model", "chat-reasoning", "hi"
                )
                assert status == 0
        finally:
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=30)
    assert len(upstream.requests) == 1  # the second was replayed
    assert "recording requests with no recording into" in err
    assert f"via {upstream.url}: complete, recorded as chat-reasoning-1, " in err
    assert "/v1/chat/completions chat-reasoning-1: complete, " in err
    assert (tmp_path / "chat-reasoning-1.meta.json").is_file()


def test_serve_upstream_needs_record() -> None:
    status, _, err = run("serve", "--upstream", "https://api.openai.com")
    assert status == 2 and "--upstream needs --record DIR" in err
