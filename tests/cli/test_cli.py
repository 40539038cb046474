"""`streamfold fold`: formats and exit status through main() without a subprocess;
what the command does with closed, full or narrow standard streams in a real one."""

from __future__ import annotations

import errno
import io
import json
import os
import select
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from streamfold import StreamParser
from streamfold.cli import main

from ..corpus import ROOT

EXAMPLE = ROOT / "examples" / "chat-reasoning-tool-calls.sse"
NON_ASCII = (
    b'data: {"choices":[{"index":0,"delta":{"content":"S\xc3\xa3o Paulo \xf0\x9f\x99\x82"}}]}\n\n'
    b'data: {"error":{"message":"Surcharg\xc3\xa9","type":"server_error"}}\n\n'
)
needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")


def run(*argv: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    if stdin is not None:
        real = sys.stdin
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
        try:
            code = main(list(argv), stdout=out, stderr=err)
        finally:
            sys.stdin = real
    else:
        code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_response_format_is_the_non_streaming_shape() -> None:
    code, out, err = run("fold", str(EXAMPLE))
    assert (code, err) == (0, "")
    response = json.loads(out)
    assert response["object"] == "chat.completion"
    assert [c["id"] for c in response["choices"][0]["message"]["tool_calls"]] == [
        "call_paris",
        "call_tokyo",
    ]


def test_unified_format_has_exactly_the_documented_keys() -> None:
    code, out, _ = run("fold", "--format", "unified", str(EXAMPLE))
    assert code == 0
    unified = json.loads(out)
    assert list(unified) == [
        "text",
        "reasoning",
        "refusal",
        "tool_calls",
        "finish_reason",
        "raw_finish_reason",
        "usage",
        "error",
    ]
    assert list(unified["usage"]) == [
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
    ]
    assert unified["tool_calls"][0] == {
        "id": "call_paris",
        "name": "get_weather",
        "arguments": '{"city": "Paris", "unit": "c"}',
        "complete": True,
    }


def test_the_unified_format_prints_every_field_of_the_python_objects() -> None:
    # A cut tool call (complete false) and OpenRouter's cache_write_tokens: the
    # printed view has what Unified, ToolCall and Usage have, raw usage aside.
    chunk = {"id": "c", "object": "chat.completion.chunk", "model": "m"}
    call = {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": '{"a'}}
    usage: dict[str, Any] = {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}
    usage["prompt_tokens_details"] = {"cached_tokens": 1, "cache_write_tokens": 4}
    body = "".join(
        f"data: {json.dumps(payload)}\n\n"
        for payload in (
            {**chunk, "choices": [{"index": 0, "delta": {"tool_calls": [call]}}]},
            {**chunk, "choices": [], "usage": usage},
        )
    ).encode()
    code, out, _ = run("fold", "--format", "unified", "-", stdin=body)
    assert code != 0  # the stream is cut: the partial is printed
    unified = json.loads(out)
    parser = StreamParser()
    parser.feed(body)
    parser.close()
    ours = parser.snapshot.unified
    assert set(unified) == set(type(ours).__struct_fields__)
    assert ours.usage is not None
    assert set(unified["usage"]) == set(type(ours.usage).__struct_fields__) - {"raw"}
    assert unified["usage"]["cache_write_tokens"] == 4
    assert unified["tool_calls"] == [
        {"id": "call_1", "name": "f", "arguments": '{"a', "complete": False}
    ]


def test_text_format_from_stdin() -> None:
    code, out, _ = run("fold", "--format", "text", "-", stdin=EXAMPLE.read_bytes())
    assert (code, out) == (0, "Checking both cities now.\n")


def test_events_format_is_json_lines() -> None:
    code, out, _ = run("fold", "--format", "events", str(EXAMPLE))
    assert code == 0
    kinds = [json.loads(line)["type"] for line in out.splitlines()]
    assert kinds[0] == "response.started" and kinds[-1] == "response.finished"


def test_provider_error_exits_1_with_the_partial_and_one_line_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "error.sse"
    path.write_bytes(
        b'data: {"choices":[{"index":0,"delta":{"content":"par"}}]}\n\n'
        b'data: {"error":{"message":"Overloaded","type":"server_error"}}\n\n'
    )
    code, out, err = run("fold", "--format", "unified", str(path))
    assert code == 1
    assert json.loads(out)["text"] == "par"
    assert json.loads(out)["error"]["type"] == "provider_error"
    assert err.count("\n") == 1 and "ProviderError: server_error: Overloaded" in err


def test_incomplete_stream_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "cut.sse"
    path.write_bytes(b'data: {"choices":[{"index":0,"delta":{"content":"par"}}]}\n\n')
    code, out, err = run("fold", "--format", "text", str(path))
    assert (code, out) == (1, "par\n")
    assert "IncompleteStreamError" in err


def test_malformed_stream_exits_3_in_strict_mode_and_0_when_lenient(tmp_path: Path) -> None:
    path = tmp_path / "bad.sse"
    path.write_bytes(
        b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
        b"data: {oops\n\n"
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    )
    code, _, err = run("fold", str(path))
    assert code == 3 and "ProtocolError" in err and "#1" in err
    code, out, err = run("fold", "--lenient", "--format", "text", str(path))
    assert (code, out) == (0, "a\n")
    assert "warning" in err


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["fold", "--format", "nope", "x"], id="bad-format"),
        pytest.param(["fold", "--dialect", "nope", "x"], id="bad-dialect"),
        pytest.param(["fold", "/does/not/exist.sse"], id="missing-file"),
        pytest.param([], id="no-command"),
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    code, _, _ = run(*argv)
    assert code == 2


def test_console_script_runs_in_a_subprocess() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streamfold", "fold", "--format", "text", str(EXAMPLE)],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0 and done.stdout == b"Checking both cities now.\n"


def test_core_import_stays_light() -> None:
    code = (
        "import sys, streamfold; "
        "bad = [m for m in ('httpx', 'asyncio', 'rich', 'starlette', 'uvicorn', 'pydantic',"
        " 'openai') if m in sys.modules]; print(bad)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert done.stdout.strip() == b"[]"


# -- the standard streams, for real ------------------------------------------------------------


def shell(
    redirect: str,
    *argv: str,
    env: Mapping[str, str] | None = None,
    stdout: Any = subprocess.PIPE,
    stdin: Any = None,
) -> subprocess.CompletedProcess[bytes]:
    """``python -m streamfold ARGV`` run by sh with ``redirect`` (``>&-``, ``<&-``,
    ``> /dev/full``) applied to its descriptors."""
    script = f'exec "$0" -m streamfold "$@" {redirect}'
    return subprocess.run(
        ["sh", "-c", script, sys.executable, *argv],
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


def closed_pipe(
    *argv: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run with stdout a pipe whose reader has gone before the first write
    (``| head -c 0`` without the race)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return shell("", *argv, env=env, stdout=write)
    finally:
        os.close(write)


def assert_no_traceback(done: subprocess.CompletedProcess[bytes]) -> None:
    assert b"Traceback" not in done.stderr and b"Exception ignored" not in done.stderr
    assert done.stderr.count(b"\n") <= 1, done.stderr


@pytest.mark.parametrize(
    ("redirect", "argv", "status", "stderr"),
    [
        pytest.param(
            "<&-",
            ["fold", "-"],
            2,
            b"streamfold: standard input is closed: give a file to fold, or pipe one in\n",
            id="closed-stdin",
        ),
        pytest.param(">&-", ["fold", str(EXAMPLE)], 1, b"", id="closed-stdout"),
        pytest.param(
            ">&-", ["fold", "--format", "events", str(EXAMPLE)], 1, b"", id="closed-stdout-events"
        ),
        pytest.param(">&- 2>&-", ["fold", str(EXAMPLE)], 1, b"", id="closed-stdout-and-stderr"),
        pytest.param("2>&-", ["fold", "/does/not/exist.sse"], 2, b"", id="closed-stderr"),
        pytest.param(">&-", ["--help"], 1, b"", id="help-to-closed-stdout"),
        pytest.param(
            "> /dev/full",
            ["fold", str(EXAMPLE)],
            74,
            b"streamfold: cannot write the output: No space left on device\n",
            marks=needs_dev_full,
            id="full-disk",
        ),
        pytest.param(
            "> /dev/full",
            ["fold", "--format", "events", str(EXAMPLE)],
            74,
            b"streamfold: cannot write the output: No space left on device\n",
            marks=needs_dev_full,
            id="full-disk-events",
        ),
    ],
)
def test_fold_with_closed_or_full_streams(
    redirect: str, argv: list[str], status: int, stderr: bytes
) -> None:
    done = shell(redirect, *argv)
    assert (done.returncode, done.stderr) == (status, stderr)


@pytest.mark.parametrize("fmt", ["response", "events", "text"])
def test_a_pipe_closed_early_ends_quietly_and_blames_no_input(fmt: str) -> None:
    done = closed_pipe("fold", "--format", fmt, str(EXAMPLE))
    assert (done.returncode, done.stderr) == (1, b"")


def test_unreadable_stdin_is_a_usage_error_naming_stdin() -> None:
    done = shell("0>/dev/null", "fold", "-")  # open for writing only: reads fail with EBADF
    assert done.returncode == 2
    assert done.stderr == b"streamfold: cannot read standard input: Bad file descriptor\n"


@pytest.mark.parametrize("encoding", ["ascii", "latin-1", "ascii:strict"])
def test_output_the_terminal_encoding_cannot_hold_is_written_as_utf8(
    tmp_path: Path, encoding: str
) -> None:
    path = tmp_path / "accents.sse"
    path.write_bytes(NON_ASCII)
    env = {"PYTHONIOENCODING": encoding}
    done = shell("", "fold", "--format", "text", str(path), env=env)
    assert done.returncode == 1
    assert done.stdout == "São Paulo 🙂\n".encode()
    assert done.stderr == "streamfold: ProviderError: server_error: Surchargé\n".encode()
    done = shell("", "fold", "--format", "unified", str(path), env=env)
    assert json.loads(done.stdout)["text"] == "São Paulo 🙂"


def test_a_library_crash_is_one_line_in_a_real_process_too() -> None:
    code = (
        "import sys, streamfold.parser as p\n"
        "def boom(self, data): raise KeyError('choices')\n"
        "p.StreamParser.feed = boom\n"
        "from streamfold.cli import main\n"
        "sys.exit(main())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "fold", str(EXAMPLE)], capture_output=True, check=False
    )
    assert done.returncode == 70
    assert done.stderr == (
        b"streamfold: internal error (a streamfold bug, please report it): KeyError: 'choices'\n"
    )


# -- the same, through main() ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "exception",
    [
        pytest.param(TypeError("'NoneType' object is not subscriptable"), id="TypeError"),
        pytest.param(KeyError("choices"), id="KeyError"),
        pytest.param(AttributeError("'list' object has no attribute 'get'"), id="AttributeError"),
        pytest.param(ValueError("bad\nvalue"), id="ValueError-two-lines"),
        pytest.param(RecursionError("maximum recursion depth exceeded"), id="RecursionError"),
        pytest.param(IndexError(), id="IndexError-no-message"),
    ],
)
def test_an_unexpected_exception_from_the_library_is_a_bug_in_one_line(
    monkeypatch: pytest.MonkeyPatch, exception: Exception
) -> None:
    def boom(self: StreamParser, data: bytes) -> list[Any]:
        raise exception

    monkeypatch.setattr(StreamParser, "feed", boom)
    code, out, err = run("fold", str(EXAMPLE))
    assert (code, out) == (70, "")
    assert err.startswith("streamfold: internal error (a streamfold bug, please report it): ")
    assert err.count("\n") == 1 and type(exception).__name__ in err


def test_interrupted_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(self: StreamParser, data: bytes) -> list[Any]:
        raise KeyboardInterrupt

    monkeypatch.setattr(StreamParser, "feed", interrupt)
    assert run("fold", str(EXAMPLE)) == (130, "", "streamfold: interrupted\n")


class _Failing(io.StringIO):
    def __init__(self, code: int) -> None:
        super().__init__()
        self.code = code

    def write(self, text: str) -> int:
        raise OSError(self.code, os.strerror(self.code))


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        pytest.param(
            errno.ENOSPC,
            74,
            "streamfold: cannot write the output: No space left on device\n",
            id="ENOSPC",
        ),
        pytest.param(
            errno.EIO, 74, "streamfold: cannot write the output: Input/output error\n", id="EIO"
        ),
        pytest.param(errno.EPIPE, 1, "", id="EPIPE"),
    ],
)
def test_a_write_error_never_names_the_input(code: int, status: int, message: str) -> None:
    err = io.StringIO()
    assert main(["fold", "--format", "events", str(EXAMPLE)], _Failing(code), err) == status
    assert err.getvalue() == message


def test_a_narrow_stdout_given_to_main_gets_replacements_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "accents.sse"
    path.write_bytes(NON_ASCII)
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii")
    assert main(["fold", "--format", "text", str(path)], out, io.StringIO()) == 1
    out.flush()
    assert raw.getvalue() == b"S?o Paulo ?\n"


def test_argparse_messages_go_to_the_streams_given() -> None:
    code, out, err = run("fold", "--format", "nope", "x")
    assert (code, out) == (2, "") and "invalid choice: 'nope'" in err
    code, out, err = run("--help")
    assert (code, err) == (0, "") and out.startswith("usage: streamfold")


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    code, out, err = run("fold", str(tmp_path))
    assert (code, out) == (2, "")
    assert err == f"streamfold: cannot read {tmp_path}: Is a directory\n"


# -- convert -------------------------------------------------------------------------------------

CUT = b'data: {"choices":[{"index":0,"delta":{"content":"par"}}]}\n\n'
PROVIDER_ERROR = CUT + b'data: {"error":{"message":"Overloaded","type":"server_error"}}\n\n'
MALFORMED = (
    CUT
    + b"data: {oops\n\n"
    + (b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n')
)
# What each target ends a finished stream with, and what its in-band error starts with.
ENDINGS = {
    "openai-chat": (b"data: [DONE]\n\n", b'data: {"error"'),
    "openai-responses": (b'"type":"response.completed"', b"event: response.failed"),
    "anthropic": (b"event: message_stop", b"event: error"),
    "gemini": (b'"finishReason"', b'data: {"error"'),
    "ai-sdk-ui": (b"data: [DONE]\n\n", b'data: {"type":"error"'),
}


def _encoded(data: bytes, target: str, **options: Any) -> str:
    """What the library's encoder writes for ``data``: what convert must print."""
    from streamfold.encode import GeminiEncoder, get

    parser = StreamParser()
    encoder = GeminiEncoder(**options) if options else get(target)()
    body = encoder.encode_all(parser.feed(data)) + encoder.encode_all(parser.close())
    return (body + encoder.close()).decode()


@pytest.mark.parametrize("target", list(ENDINGS))
def test_convert_writes_the_encoders_bytes_and_they_fold_back(target: str) -> None:
    code, out, err = run("convert", str(EXAMPLE), "--to", target)
    assert (code, err) == (0, "")
    assert out == _encoded(EXAMPLE.read_bytes(), target)
    assert ENDINGS[target][0] in out.encode()
    original = StreamParser()
    original.feed(EXAMPLE.read_bytes())
    original.close()
    again = StreamParser()
    again.feed(out.encode())
    again.close()
    assert again.dialect_name == target
    assert again.final().unified.text == original.final().unified.text
    assert [c.arguments for c in again.final().unified.tool_calls] == [
        c.arguments for c in original.final().unified.tool_calls
    ]


def test_convert_from_stdin_by_short_name_to_a_gemini_json_array() -> None:
    code, out, err = run(
        "convert", "-", "--to", "gemini", "--json-array", stdin=EXAMPLE.read_bytes()
    )
    assert (code, err) == (0, "")
    assert out == _encoded(EXAMPLE.read_bytes(), "gemini", json_array=True)
    assert json.loads(out)[-1]["candidates"][0]["finishReason"] == "STOP"
    code, out, _ = run("convert", "-", "--to", "ai-sdk", stdin=EXAMPLE.read_bytes())
    assert (code, out) == (0, _encoded(EXAMPLE.read_bytes(), "ai-sdk-ui"))


@pytest.mark.parametrize("target", list(ENDINGS))
@pytest.mark.parametrize(
    ("source", "argv", "status", "ending", "stderr"),
    [
        pytest.param(PROVIDER_ERROR, [], 1, "error", "ProviderError: server_error", id="failed"),
        pytest.param(CUT, [], 1, "cut", "IncompleteStreamError", id="cut"),
        pytest.param(MALFORMED, [], 3, "error", "ProtocolError", id="malformed"),
        pytest.param(MALFORMED, ["--lenient"], 0, "finished", "warning", id="malformed-lenient"),
    ],
)
def test_convert_a_failed_or_cut_stream_ends_as_the_target_says_with_folds_status(
    tmp_path: Path,
    target: str,
    source: bytes,
    argv: list[str],
    status: int,
    ending: str,
    stderr: str,
) -> None:
    path = tmp_path / "source.sse"
    path.write_bytes(source)
    code, out, err = run("convert", str(path), "--to", target, *argv)
    assert code == status
    assert stderr in err and err.count("\n") == 1
    finished, failed = ENDINGS[target]
    assert (finished in out.encode(), failed in out.encode()) == {
        "finished": (True, False),
        "error": (False, True),
        "cut": (False, False),
    }[ending]
    assert "par" in out
    again = StreamParser()
    again.feed(out.encode())
    again.close()
    assert (again.error is None) == (ending == "finished")


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["convert", str(EXAMPLE)], id="no-target"),
        pytest.param(["convert", str(EXAMPLE), "--to", "nope"], id="bad-target"),
        pytest.param(
            ["convert", str(EXAMPLE), "--to", "chat", "--json-array"], id="array-not-gemini"
        ),
        pytest.param(["convert", "/does/not/exist.sse", "--to", "chat"], id="missing-file"),
    ],
)
def test_convert_usage_errors_exit_2(argv: list[str]) -> None:
    code, _, err = run(*argv)
    assert code == 2 and err


def test_convert_streams_a_live_pipe_as_it_arrives() -> None:
    # The first events, then nothing more until the converted ones are read
    # back: a command that waited for the end of its input would hang here.
    data = EXAMPLE.read_bytes()
    split = data.index(b"\n\n", data.index(b"reasoning_content")) + 2  # through the first delta
    head, tail = data[:split], data[split:]
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamfold", "convert", "-", "--to", "ai-sdk-ui"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(head)
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "nothing written while the input was still open"
        first = os.read(proc.stdout.fileno(), 1 << 16)
        assert first.startswith(b'data: {"type":"start"')
        proc.stdin.write(tail)
        proc.stdin.close()
        rest = proc.stdout.read()
        assert proc.wait(60) == 0
    finally:
        proc.kill()
        proc.wait()
    assert (first + rest).decode() == _encoded(data, "ai-sdk-ui")


def test_convert_to_a_closed_pipe_ends_quietly() -> None:
    done = closed_pipe("convert", str(EXAMPLE), "--to", "anthropic")
    assert (done.returncode, done.stderr) == (1, b"")
