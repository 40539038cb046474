"""`streamfold fold`: formats and exit status, through main() without a subprocess."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from streamfold.cli import main

from .corpus import ROOT

EXAMPLE = ROOT / "examples" / "chat-reasoning-tool-calls.sse"


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
        "reasoning_tokens",
    ]
    assert unified["tool_calls"][0] == {
        "id": "call_paris",
        "name": "get_weather",
        "arguments": '{"city": "Paris", "unit": "c"}',
    }


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
