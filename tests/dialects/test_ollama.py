"""Ollama's native API: ``/api/chat`` and ``/api/generate``.

The fixtures are written from Ollama's API reference (``docs/api.md``, the
streaming, errors and usage pages, and ``api/types.go``) as recordings keep
them, one line per ``data:`` event. Each also runs as Ollama sends it,
newline-delimited JSON, and folds alike (the conformance suite cuts them
anywhere: ``fixtures/wire/``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from streamfold import StreamParser
from streamfold.adapters.client import build_request, stream
from streamfold.dialects.base import Dialect
from streamfold.dialects.ollama import (
    OllamaChat,
    OllamaGenerate,
    normalise_usage,
    unified_done_reason,
)
from streamfold.errors import IncompleteStreamError, ProtocolError, ProviderError, UsageError
from streamfold.events import Event, ToolCallDone
from streamfold.fold import PartKind
from streamfold.framing import JSONSequenceDecoder, ndjson
from streamfold.result import Result
from streamfold.sse import BOM, DEFAULT_MAX_EVENT_SIZE, ServerSentEvent, SSEDecoder

from ..corpus import (
    FIXTURES,
    HypothesisChooser,
    bytewise,
    cut,
    fold_checked,
    fold_pieces,
    mutate_bytes,
)
from .typed_path import assert_same_as_dict_path, dict_only, hostile_test

HERE = FIXTURES / "ollama"


def fixtures() -> list[Any]:
    return [pytest.param(p, id=p.stem) for p in sorted(HERE.glob("*.sse"))]


def lines(sse: bytes) -> bytes:
    """The recording as Ollama sends it: newline-delimited JSON."""
    decoder = SSEDecoder()
    return ndjson(event.raw for event in [*decoder.feed(sse), *decoder.close()])


def fold(data: bytes, **options: Any) -> tuple[list[Event], Result, BaseException | None]:
    events, result, error = fold_pieces([data], **options)
    assert result is not None
    return events, result, error


def folded(data: bytes) -> dict[str, Any]:
    """The fold of ``data`` as the conformance suite compares folds (``fold_checked``)."""
    return fold_checked([data], parse_arguments=True)


@dataclass(frozen=True)
class Expect:
    dialect: str | None = "ollama"
    text: str = ""
    reasoning: str = ""
    finish: str | None = None
    raw_finish: str | None = None
    tools: tuple[tuple[str, Any, str | None], ...] = ()  # name, arguments, id
    usage: tuple[int | None, int | None, int | None] | None = None
    error: type[BaseException] | None = None
    message: str | None = None
    native: tuple[tuple[str, Any], ...] = ()


METRICS = (26, 282, 308)
EXPECTED: dict[str, Expect] = {
    "chat-text": Expect(
        text="The sky is blue — Rayleigh scattering.",
        finish="stop",
        raw_finish="stop",
        usage=METRICS,
        native=(
            ("message", {"role": "assistant", "content": "The sky is blue — Rayleigh scattering."}),
            ("done", True),
            ("done_reason", "stop"),
            ("model", "llama3.2"),
            ("total_duration", 4883583458),
            ("eval_duration", 4535599000),
        ),
    ),
    "chat-content-in-done": Expect(
        text="That's a fantastic question!", finish="stop", raw_finish="stop", usage=METRICS
    ),
    "chat-thinking": Expect(
        text="9.9 is larger.",
        reasoning="Let me compare 9.11 and 9.9.",
        finish="stop",
        raw_finish="stop",
        usage=METRICS,
        native=(("message.thinking", "Let me compare 9.11 and 9.9."),),
    ),
    "chat-tool-calls": Expect(
        reasoning="I need the weather.",
        finish="tool_calls",
        raw_finish="stop",
        tools=(
            ("get_weather", {"city": "Paris", "format": "celsius"}, "call_x1"),
            ("get_time", {}, "call_x2"),
        ),
        usage=METRICS,
        native=(("message.tool_calls.0.function.arguments.city", "Paris"),),
    ),
    "chat-tool-calls-apart": Expect(
        finish="tool_calls",
        raw_finish="stop",
        tools=(("search", {"q": "São Paulo"}, None), ("search", {"q": "Lyon", "limit": 3}, None)),
        usage=METRICS,
    ),
    "chat-length": Expect(
        text="Once upon a time", finish="length", raw_finish="length", usage=(26, 4, 30)
    ),
    "chat-load": Expect(finish="other", raw_finish="load", native=(("done_reason", "load"),)),
    "chat-error-midstream": Expect(
        text=" Yes.Ican",
        error=ProviderError,
        message="an error was encountered while running the model",
    ),
    "chat-error-only": Expect(
        dialect=None, error=ProviderError, message="model 'llama9' not found, try pulling it first"
    ),
    "chat-cut": Expect(text="The answer was", error=IncompleteStreamError),
    "chat-logprobs": Expect(
        text="Hi!",
        finish="stop",
        raw_finish="stop",
        usage=METRICS,
        native=(("logprobs.1.token", "!"),),
    ),
    "chat-no-done-reason": Expect(text="Hello", usage=(46, 13, 59), native=(("model", "llama2"),)),
    "chat-cached-prompt": Expect(
        text="Again.", finish="stop", raw_finish="stop", usage=(None, 3, None)
    ),
    "generate-text": Expect(
        dialect="ollama-generate",
        text="The sky is blue.",
        finish="stop",
        raw_finish="stop",
        usage=METRICS,
        native=(("response", "The sky is blue."), ("context", [1, 2, 3])),
    ),
    "generate-thinking": Expect(
        dialect="ollama-generate",
        text="Three.",
        reasoning="Count the r's: s-t-r-a-w-b-e-r-r-y.",
        finish="stop",
        raw_finish="stop",
        usage=METRICS,
        native=(("thinking", "Count the r's: s-t-r-a-w-b-e-r-r-y."),),
    ),
    "generate-error-midstream": Expect(
        dialect="ollama-generate", text="Once", error=ProviderError, message="unexpected EOF"
    ),
}


def at(value: Any, path: str) -> Any:
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def test_every_fixture_has_its_expectation() -> None:
    assert {p.stem for p in HERE.glob("*.sse")} == set(EXPECTED)


@pytest.mark.parametrize("path", fixtures())
def test_fixture_folds_to_what_the_reference_says(path: Path) -> None:
    expect = EXPECTED[path.stem]
    for body in (path.read_bytes(), lines(path.read_bytes())):
        events, result, error = fold(body, parse_arguments=True)
        assert result.dialect == (expect.dialect or "")
        unified = result.unified
        assert (unified.text, unified.reasoning) == (expect.text, expect.reasoning)
        assert (unified.finish_reason, unified.raw_finish_reason) == (
            expect.finish,
            expect.raw_finish,
        )
        assert [(c.name, json.loads(c.arguments), c.id) for c in unified.tool_calls] == list(
            expect.tools
        )
        assert all(c.complete for c in unified.tool_calls)
        dones = [e for e in events if isinstance(e, ToolCallDone)]
        assert [d.value for d in dones] == [arguments for _, arguments, _ in expect.tools]
        usage = unified.usage
        counts = (
            None if usage is None else (usage.input_tokens, usage.output_tokens, usage.total_tokens)
        )
        assert counts == expect.usage
        if expect.error is None:
            assert error is None and result.complete and result.warnings == ()
        else:
            assert isinstance(error, expect.error) and not result.complete
            if expect.message is not None:
                assert isinstance(error, ProviderError)
                assert error.message == expect.message and error.code is None
                assert error.retryable is False
        for path_, value in expect.native:
            assert at(result.response, path_) == value, path_


@pytest.mark.parametrize("path", fixtures())
def test_ndjson_folds_exactly_as_the_recording(path: Path) -> None:
    data = path.read_bytes()
    assert folded(lines(data)) == folded(data)


def test_a_line_cut_by_the_end_is_a_cut_stream() -> None:
    body = lines((HERE / "chat-text.sse").read_bytes())
    _, result, error = fold(body[:-30])
    assert isinstance(error, IncompleteStreamError)
    assert "the stream ended inside JSON value #4" in str(error)
    assert result.unified.text == "The sky is blue — Rayleigh scattering."


def test_bytes_between_lines_are_a_protocol_error() -> None:
    body = lines((HERE / "chat-text.sse").read_bytes())
    first = body.index(b"\n") + 1
    _, result, error = fold(body[:first] + b"garbage\n" + body[first:])
    assert isinstance(error, ProtocolError) and "b'g'" in str(error)
    assert result.unified.text == "The"


def test_lines_after_done_are_ignored_with_a_warning() -> None:
    body = lines((HERE / "chat-text.sse").read_bytes())
    _, result, error = fold(
        body + b'{"model":"llama3.2","created_at":"x","message":{"content":"!"},"done":false}\n'
    )
    assert error is None and result.unified.text.endswith("scattering.")
    assert any("after the end of the stream" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("raw", "calls", "unified"),
    [
        ("stop", False, "stop"),
        ("stop", True, "tool_calls"),
        ("length", False, "length"),
        ("load", False, "other"),
        ("unload", False, "other"),
        ("new", False, "other"),
    ],
)
def test_done_reasons(raw: str, calls: bool, unified: str) -> None:
    assert unified_done_reason(raw, calls) == unified


def test_usage_of_the_metrics() -> None:
    usage = normalise_usage({"prompt_eval_count": 3, "eval_count": 5, "eval_duration": 1})
    assert usage is not None and (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (
        3,
        5,
        8,
    )
    assert usage.reasoning_tokens is None and usage.raw["eval_duration"] == 1
    assert normalise_usage({"total_duration": 9}) is None


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"model": "m", "created_at": "t", "done": False}, id="no-message"),
        pytest.param({"model": "m", "message": {}, "done": False}, id="no-created-at"),
        pytest.param(
            {"model": "m", "created_at": "t", "message": {}, "done": "no"}, id="done-not-bool"
        ),
    ],
)
def test_detection_wants_an_ollama_line(payload: dict[str, Any]) -> None:
    _, _, error = fold(json.dumps(payload).encode() + b"\n")
    assert isinstance(error, ProtocolError) and "matches no known dialect" in str(error)


def test_arguments_sent_as_text_are_kept() -> None:
    line = {
        "model": "m",
        "created_at": "t",
        "message": {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "f", "arguments": '{"a": 1}'}}],
        },
        "done": True,
        "done_reason": "stop",
    }
    (call,) = fold(json.dumps(line).encode())[1].unified.tool_calls
    assert call.arguments == '{"a": 1}'


# -- the live request ---------------------------------------------------------------------


def test_the_chat_request() -> None:
    request = build_request("Hi", model="llama3.2", api="ollama", system="Be brief.", max_tokens=64)
    assert request.url == "http://localhost:11434/api/chat"
    assert request.headers["accept"] == "application/x-ndjson"
    assert request.body == {
        "model": "llama3.2",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "stream": True,
        "options": {"num_predict": 64},
    }
    assert request.api_key is None


def test_the_generate_request() -> None:
    request = build_request("Hi", model="llama3.2", api="ollama-generate", system="Be brief.")
    assert request.url == "http://localhost:11434/api/generate"
    assert request.body == {
        "model": "llama3.2",
        "prompt": "Hi",
        "system": "Be brief.",
        "stream": True,
    }
    with pytest.raises(UsageError, match="takes a prompt string"):
        build_request([{"role": "user", "content": "Hi"}], model="m", api="ollama-generate")


def test_the_live_client_streams_lines() -> None:
    from ..adapters.rawserver import END_CHUNKS, RawServer, chunked, response_head

    body = lines((HERE / "chat-tool-calls.sse").read_bytes())

    def script(head: bytes) -> list[tuple[float, bytes]]:
        headers = {"content-type": "application/x-ndjson", "transfer-encoding": "chunked"}
        pieces = [body[i : i + 40] for i in range(0, len(body), 40)]
        return [
            (0, response_head(200, headers, "OK")),
            *((0, c) for c in chunked(*pieces)),
            (0, END_CHUNKS),
        ]

    with RawServer(script) as server:
        with stream("Weather?", model="llama3.2", api="ollama", base_url=server.url) as live:
            result = live.final()
        head = server.requests[0].decode().lower()
    assert head.startswith("post /api/chat http/1.1")
    assert "accept: application/x-ndjson" in head and "authorization" not in head
    assert [c.name for c in result.unified.tool_calls] == ["get_weather", "get_time"]
    assert result.finish_reason == "tool_calls"


@pytest.mark.parametrize("name", ["ollama", "ollama-chat"])
def test_the_dialect_by_its_names(name: str) -> None:
    parser = StreamParser(name)
    parser.feed(lines((HERE / "chat-text.sse").read_bytes()))
    parser.close()
    assert parser.final().dialect == "ollama"


# -- the replay server's routes --------------------------------------------------------------


@pytest.fixture(scope="module")
def ollama_server() -> Any:
    from streamfold.adapters.recordings import Recording
    from streamfold.server import ReplayServer

    recordings = {p.stem: Recording(p.stem, p.read_bytes()) for p in sorted(HERE.glob("*.sse"))}
    with ReplayServer(recordings) as server:
        yield server


def _replay(server: Any, name: str, fault: str | None = None) -> tuple[Any, Any]:
    api = "ollama-generate" if name.startswith("generate") else "ollama"
    headers = {"X-Streamfold-Recording": name}
    if fault is not None:
        headers["X-Streamfold-Fault"] = fault
    live = stream("Hi", model="llama3.2", api=api, base_url=server.url, headers=headers)
    try:
        with live:
            return live.final(), None
    except Exception as exc:  # the fault's error, its partial result on it
        return getattr(exc, "partial", None), exc


@pytest.mark.parametrize("name", sorted(p.stem for p in HERE.glob("*.sse")))
def test_the_replay_route_serves_ndjson(ollama_server: Any, name: str) -> None:
    _, expected, expected_error = fold((HERE / f"{name}.sse").read_bytes())
    result, error = _replay(ollama_server, name)
    assert type(error) is type(expected_error)
    if name == "chat-error-only":
        return  # a ProviderError before any dialect: the partial is empty either way
    assert result is not None
    assert result.unified == expected.unified and result.response == expected.response
    assert result.metadata.content_type == "application/x-ndjson"


@pytest.mark.parametrize(
    ("fault", "error", "check"),
    [
        pytest.param("error-after=2", ProviderError, "an error was encountered", id="in-band"),
        pytest.param("malformed-after=2", ProtocolError, "not valid JSON", id="malformed"),
        pytest.param("drop-after=2", IncompleteStreamError, "", id="drop"),
        pytest.param("split=bytes", None, "", id="split-bytes"),
    ],
)
def test_the_replay_route_injects_faults_as_lines(
    ollama_server: Any, fault: str, error: type[BaseException] | None, check: str
) -> None:
    result, raised = _replay(ollama_server, "chat-text", fault)
    if error is None:
        assert raised is None and result.unified.text.startswith("The sky")
        return
    assert isinstance(raised, error) and check in str(raised)
    assert result is not None and result.unified.text.startswith("The sky")


def test_the_replay_route_answers_errors_as_ollama(ollama_server: Any) -> None:
    from streamfold.errors import HTTPStatusError

    _, raised = _replay(ollama_server, "chat-text", "status=404")
    assert isinstance(raised, HTTPStatusError) and raised.status_code == 404
    assert raised.provider_message == "model not found, try pulling it first"


WIRE = FIXTURES / "wire"


@pytest.mark.parametrize("path", sorted(WIRE.glob("ollama__*.ndjson")), ids=lambda p: p.stem)
def test_the_wire_fixtures_are_the_recordings_framed(path: Path) -> None:
    # The shared fuzz suite mutates these lines; they must stay the NDJSON of
    # their recordings (regenerate them with lines() when those change).
    stem = path.stem.split("__")[1]
    source = (HERE / f"{stem}.sse").read_bytes()
    assert path.read_bytes() == lines(source)
    assert folded(path.read_bytes()) == folded(source)


# -- the typed path gives what the dict path gives ------------------------------------------

_HEAD = {"model": "qwen3:8b", "created_at": "2026-01-01T00:00:00Z", "done": False}


def _chat_line(**message: Any) -> dict[str, Any]:
    return {**_HEAD, "message": {"role": "assistant", "content": "", **message}}


def _generate_line(**fields: Any) -> dict[str, Any]:
    return {**_HEAD, "response": "", **fields}


def _line(dialect: type[OllamaChat], **fields: Any) -> dict[str, Any]:
    if dialect is OllamaChat:
        return _chat_line(**fields)
    return _generate_line(**{"response" if k == "content" else k: v for k, v in fields.items()})


@pytest.mark.parametrize("dialect", [OllamaChat, OllamaGenerate], ids=["chat", "generate"])
@pytest.mark.parametrize(
    ("first", "hot"),
    [
        pytest.param({}, {"content": "Hi"}, id="text"),
        pytest.param({}, {"thinking": "hm"}, id="thinking"),
        pytest.param({}, {"content": ""}, id="empty"),
        pytest.param({"model": ""}, {"content": "a"}, id="model-only-later"),
        pytest.param({}, {"model": "", "content": "a"}, id="model-empty"),
        pytest.param({}, {"model": "other", "content": "a"}, id="model-changes"),
        pytest.param({"done": "no"}, {"content": "a"}, id="done-not-a-boolean"),
        pytest.param({"created_at": None}, {"content": "a"}, id="created-at-null"),
        pytest.param({}, {"role": "tool", "content": "a"}, id="role"),
        pytest.param({}, {"content": "a", "extra": 1}, id="unknown-field"),
        pytest.param({}, {"content": 5}, id="content-a-number"),
        pytest.param({}, {"done": True, "done_reason": "stop"}, id="done"),
    ],
)
def test_the_typed_path_folds_what_the_dict_path_folds(
    dialect: type[OllamaChat], first: dict[str, Any], hot: dict[str, Any]
) -> None:
    # The lines after the first, well formed or not: the same events,
    # response, warnings and error with the typed path as without it.
    head: dict[str, Any] = {
        key: hot.pop(key) for key in ("model", "done", "done_reason", "extra") if key in hot
    }
    first_line: dict[str, Any] = {**_line(dialect, content="Hi"), **first}
    later: dict[str, Any] = {**_line(dialect, **hot), **head}
    last: dict[str, Any] = {**_line(dialect), "done": True, "done_reason": "stop", "eval_count": 3}
    for lines in ([first_line, later, later, last], [first_line, later, later]):
        raw = b"".join(json.dumps(item).encode() + b"\n" for item in lines)
        assert_same_as_dict_path(raw, dialect)


@pytest.mark.parametrize("dialect", [OllamaChat, OllamaGenerate], ids=["chat", "generate"])
@pytest.mark.parametrize(
    "hot",
    [
        pytest.param(
            [{"thinking": "a"}, {"content": "b"}, {"thinking": "c"}, {"content": "d"}],
            id="parts-end-and-resume",
        ),
        pytest.param(
            [{"thinking": "a", "content": "b"}, {"thinking": "c"}, {"content": "d"}],
            id="both-in-one-line",
        ),
        pytest.param(
            [{"content": "a"}, {"content": 5}, {"thinking": "b"}, {"content": "c"}],
            id="a-dict-line-between",
        ),
        pytest.param(
            [
                {"content": "a"},
                {"tool_calls": [{"function": {"name": "f", "arguments": {}}}]},
                {"thinking": "b"},
                {"content": "c"},
            ],
            id="a-tool-call-between",
        ),
    ],
)
def test_the_typed_path_keeps_each_piece_to_its_part(
    dialect: type[OllamaChat], hot: list[dict[str, Any]]
) -> None:
    # Lines whose text and thinking end, resume and interleave: a part the
    # typed path kept (Accumulator.sink) must not take a piece after it ended.
    lines = [_line(dialect, thinking="Hm"), *(_line(dialect, **fields) for fields in hot)]
    lines += [_line(dialect, thinking="e"), _line(dialect, content="f")]
    lines.append({**_line(dialect), "done": True, "done_reason": "stop"})
    raw = b"".join(json.dumps(item).encode() + b"\n" for item in lines)
    assert_same_as_dict_path(raw, dialect)
    # The joined text hides which part a piece went to: the parts themselves.
    assert _parts(raw, dialect) == _parts(raw, dict_only(dialect))


def _parts(raw: bytes, dialect: type[Dialect]) -> list[tuple[str, str, bool]]:
    # The accumulator's parts after a plain fold (the only one with sinks).
    parser = StreamParser(dialect, events=False)
    parser.feed(raw)
    parser.close()
    choice = parser.acc.choices[0]
    return [(p.kind.value, p.text, p.done) for k in PartKind for p in choice.parts(k)]


_OLLAMA_FIXTURES = sorted((FIXTURES / "ollama").glob("*.sse"))
test_the_typed_path_folds_hostile_chat_input_as_the_dict_path = hostile_test(
    OllamaChat, [path for path in _OLLAMA_FIXTURES if not path.name.startswith("generate")]
)
test_the_typed_path_folds_hostile_generate_input_as_the_dict_path = hostile_test(
    OllamaGenerate, [path for path in _OLLAMA_FIXTURES if path.name.startswith("generate")]
)


# -- lines the framing hands over unchecked ------------------------------------------------
# NDJSON lines reach the typed path unchecked (JSONSequenceDecoder(validate=False)):
# its decode checks the lines it folds, the framing verifies the others, and a
# line that is not one JSON value goes back to the byte scanner from there on.
# Fed one byte at a time, a body never takes that path: both folds must be equal.

_L = lines((HERE / "chat-text.sse").read_bytes()).split(b"\n")[:-1]
_T = lines((HERE / "chat-thinking.sse").read_bytes()).split(b"\n")[:-1]
_BIG = _L[1].replace(b" sky", b"y" * 300)


def _body(*parts: bytes) -> bytes:
    return b"\n".join(parts) + b"\n"


_CASES = [
    # id, body, max_event_size, whether a line goes back to the scanner
    ("invalid-after-valid", _body(_L[0], _L[1], b'{"model": tru}', *_L[2:]), None, True),
    ("two-objects-on-a-line", _body(_L[0], _L[1] + _L[2], *_L[3:]), None, True),
    ("two-objects-a-space", _body(_L[0], _L[1] + b" " + _L[2], *_L[3:]), None, True),
    ("trailing-byte", _body(_L[0], _L[1] + b"x", *_L[2:]), None, True),
    ("trailing-brace", _body(_L[0], _L[1] + b"}", *_L[2:]), None, True),
    ("bracket-closes", _body(_L[0], _L[1][:-1] + b"]", *_L[2:]), None, True),
    ("open-string", _body(_L[0], _L[1].replace(b'"done"', b'"done', 1), *_L[2:]), None, True),
    ("line-cut-then-more", _body(_L[0], _L[1][:40], *_L[2:]), None, True),
    ("value-across-lines", _body(_L[0], b'{"a": {', b'"b": 1}}', *_L[1:]), None, True),
    ("first-line-invalid", _body(b'{"model": tru}', *_L), None, True),
    ("first-line-two-objects", _body(_L[0] + _L[1], *_L[2:]), None, True),
    ("two-objects-after-done", _body(*_L, _L[1] + _L[2]), None, True),
    ("invalid-after-done", _body(*_L, b'{"a": tru}'), None, True),
    ("thinking-two-objects", _body(_T[0], _T[1] + _T[2], *_T[3:]), None, True),
    ("grows-over-the-limit", _body(_L[0], b'{"a": [', *[b"1,"] * 120, b"2]}", *_L[1:]), 200, True),
    ("over-the-limit", _body(_L[0], _L[1], _BIG, *_L[2:]), 200, False),
    ("bom", BOM + _body(*_L), None, False),
    ("bom-between-lines", _body(_L[0], BOM + _L[1], *_L[2:]), None, True),
    ("crlf", b"\r\n".join(_L) + b"\r\n", None, True),
    ("white-space-after", _body(_L[0], _L[1] + b"\r", _L[2] + b" \t", *_L[3:]), None, False),
    ("invalid-utf8", _body(_L[0], _L[1].replace(b"sky", b"s\xffy"), *_L[2:]), None, False),
]


@pytest.mark.parametrize(
    ("body", "limit", "fallback"), [pytest.param(*case[1:], id=case[0]) for case in _CASES]
)
def test_unchecked_lines_fold_as_the_byte_scanner_reads_them(
    body: bytes, limit: int | None, fallback: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same events, result and error read whole, cut at many points, or
    # one byte at a time (the scanner alone), strict or not, events or not.
    sizes = {} if limit is None else {"max_event_size": limit}
    replaced: list[bool] = []
    verify = JSONSequenceDecoder.verify

    def spy(self: JSONSequenceDecoder, events: list[ServerSentEvent], i: int) -> bool:
        replaced.append(verify(self, events, i))
        return replaced[-1]

    monkeypatch.setattr(JSONSequenceDecoder, "verify", spy)
    for options in ({}, {"events": False}, {"strict": False}, {"parse_arguments": True}):
        reference = fold_checked(bytewise(body), "ollama", **options, **sizes)
        replaced.clear()
        assert fold_checked([body], "ollama", **options, **sizes) == reference, options
        assert any(replaced) is fallback  # the case reaches what it is written for
        for at in (*range(1, len(body), 37), len(body) - 1):
            pieces = cut(body, [at])
            assert fold_checked(pieces, "ollama", **options, **sizes) == reference, (options, at)


_HOSTILE_LINES = (
    b'{"a": tru}',
    b'{"a": 1}{"b": 2}',
    b'{"a": 1},{"b": 2}',
    b'{"a": 1]',
    b'{"a": "}',
    b'{"a": {',
    b"{" * 300 + b"}" * 300,
    b'{"error": "boom"}',
    b"",
    b"x",
)


def _mutate_lines(data: st.DataObject, body: bytes) -> bytes:
    # One line replaced, glued to the next, cut, or given a hostile line's
    # bytes; or one byte-level change (mutate_bytes).
    rows = body.split(b"\n")
    at = data.draw(st.integers(0, len(rows) - 1), label="line")
    action = data.draw(st.sampled_from(["replace", "glue", "cut", "append", "bytes"]))
    if action == "replace":
        rows[at] = data.draw(st.sampled_from(_HOSTILE_LINES))
    elif action == "glue" and at + 1 < len(rows):
        rows[at : at + 2] = [rows[at] + rows[at + 1]]
    elif action == "cut":
        rows[at] = rows[at][: data.draw(st.integers(0, len(rows[at])))]
    elif action == "append":
        rows[at] += data.draw(st.sampled_from(_HOSTILE_LINES))
    else:
        return mutate_bytes(HypothesisChooser(data), body)
    return b"\n".join(rows)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_hostile_lines_fold_as_the_byte_scanner_reads_them(data: st.DataObject) -> None:
    # Any fixture as NDJSON with one to three hostile lines or bytes: the fold
    # read whole, or cut at random points, is the one read a byte at a time.
    source = data.draw(st.sampled_from(_OLLAMA_FIXTURES), label="source")
    body = lines(source.read_bytes())
    for _ in range(data.draw(st.integers(1, 3))):
        body = _mutate_lines(data, body)
    note(f"mutated to {body!r:.3000}")
    points = data.draw(st.lists(st.integers(0, len(body)), max_size=6))
    limit = data.draw(st.sampled_from([DEFAULT_MAX_EVENT_SIZE, 160]))
    for options in ({"strict": True}, {"strict": False, "events": False}):
        reference = fold_checked(bytewise(body), max_event_size=limit, **options)
        assert fold_checked([body], max_event_size=limit, **options) == reference
        assert fold_checked(cut(body, points), max_event_size=limit, **options) == reference
