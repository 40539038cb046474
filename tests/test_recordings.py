"""Recordings on disk (the meta format, old .sse files, conversations), request
matching keys, body framings, and re-encoding another API's recording."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

import streamfold
from streamfold import samples
from streamfold.adapters import framings
from streamfold.adapters.framings import BodyFraming, JSONArrayFraming, SSEFraming, Unit
from streamfold.adapters.recordings import (
    FORMAT,
    RecordedRequest,
    Recording,
    load_recordings,
    new_name,
    reencode,
    request_key,
    save_recording,
    without_secret_params,
)
from streamfold.adapters.server import Faults, Pace, plan
from streamfold.errors import UsageError

SAMPLE_NAMES = [s.name for s in samples.SAMPLES]


def _body(steps: list[Any]) -> bytes:
    return b"".join(s.data for s in steps if isinstance(s.data, bytes))


# -- framings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sse_units_join_back_to_the_body(name: str) -> None:
    data = samples.read(name)
    units = SSEFraming.units(data)
    assert b"".join(u.raw for u in units) == data
    assert all(u.data is not None for u in units if u.raw.strip().startswith(b"data"))


@pytest.mark.parametrize(
    ("body", "elements"),
    [
        pytest.param(
            b'[{"a": 1}\r\n,\r\n{"b": [2, "]"]}]', [{"a": 1}, {"b": [2, "]"]}], id="crlf-commas"
        ),
        pytest.param(b'  [{"a": 1},{"b": 2}]\n', [{"a": 1}, {"b": 2}], id="white-space-around"),
        pytest.param(b'[{"a": 1}', [{"a": 1}], id="cut-before-the-bracket"),
        pytest.param(b"[]", [], id="empty"),
    ],
)
def test_json_array_units_join_back_to_the_body(body: bytes, elements: list[Any]) -> None:
    units = JSONArrayFraming.units(body)
    assert b"".join(u.raw for u in units) == body
    assert [json.loads(u.data) for u in units if u.data is not None] == elements


def test_a_json_array_recording_is_served_verbatim_as_an_array_and_as_sse() -> None:
    sse = samples.read("gemini-thinking")
    array = _body(
        plan(
            Recording("g", sse),
            Faults(),
            Pace(),
            provider="gemini",
            api="gemini",
            framing="json-array",
        )
    )
    recording = Recording("g", array, framing="json-array")
    assert recording.api == "gemini"
    as_array = plan(
        recording, Faults(), Pace(), provider="gemini", api="gemini", framing="json-array"
    )
    assert _body(as_array) == array
    as_sse = _body(plan(recording, Faults(), Pace(), provider="gemini", api="gemini"))
    assert streamfold.fold(as_sse).response == streamfold.fold(sse).response


def test_a_new_framing_plugs_in_by_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the engineers adding NDJSON or binary frames write: a class, a name.
    class Lines(BodyFraming):
        name: ClassVar[str] = "lines"
        media_type: ClassVar[str] = "application/x-ndjson"
        extension: ClassVar[str] = ".ndjson"

        @classmethod
        def units(cls, data: bytes) -> list[Unit]:
            return [Unit(line, line.rstrip(b"\n")) for line in data.splitlines(keepends=True)]

        def event(self, data: bytes, name: bytes | None, index: int) -> bytes:
            return data + b"\n"

    monkeypatch.setitem(framings.FRAMINGS, "lines", Lines)
    recording = Recording("r", samples.read("chat-reasoning"))
    steps = plan(
        recording,
        Faults(error_after=2),
        Pace(),
        provider="openai",
        api="openai-chat",
        framing="lines",
    )
    lines = _body(steps).splitlines()
    assert len(lines) == 3 and json.loads(lines[-1])["error"]["type"] == "server_error"
    assert [json.loads(line) for line in lines[:2]] == [
        json.loads(u.data) for u in SSEFraming.units(recording.data)[:2] if u.data
    ]


# -- on disk -----------------------------------------------------------------------------------


def _meta(folder: Path, stem: str, document: dict[str, Any], body: bytes, body_name: str) -> None:
    (folder / body_name).write_bytes(body)
    (folder / f"{stem}.meta.json").write_text(json.dumps(document))


def test_a_meta_file_gives_status_headers_and_request(tmp_path: Path) -> None:
    document = {
        "format": FORMAT,
        "request": {"path": "/v1/chat/completions", "body": {"model": "m", "messages": []}},
        "response": {"headers": {"X-Request-Id": "req_9"}, "body": "answer.sse"},
    }
    _meta(tmp_path, "turn", document, samples.read("chat-reasoning"), "answer.sse")
    found = load_recordings(tmp_path)
    assert list(found) == ["turn"]  # its body is no recording of its own
    recording = found["turn"]
    assert (recording.api, recording.status, recording.framing) == ("openai-chat", 200, "sse")
    assert recording.headers == {"x-request-id": "req_9"}
    assert recording.request == RecordedRequest(
        "POST", "/v1/chat/completions", "m", {"model": "m", "messages": []}
    )


def test_save_then_load_is_the_same_recording(tmp_path: Path) -> None:
    recording = Recording(
        "gpt-1",
        samples.read("chat-parallel-tools"),
        "openai-chat",
        "sse",
        200,
        {"content-type": "text/event-stream", "x-request-id": "req_1"},
        RecordedRequest("POST", "/v1/chat/completions", "gpt", {"model": "gpt", "stream": True}),
    )
    meta = save_recording(tmp_path, recording)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpt-1.meta.json", "gpt-1.sse"]
    assert json.loads(meta.read_text())["response"]["body"] == "gpt-1.sse"
    again = load_recordings(tmp_path)["gpt-1"]
    assert again == recording and again.headers == recording.headers


def test_an_error_body_is_kept_as_it_is(tmp_path: Path) -> None:
    error = b'{"error": {"message": "context too long", "type": "invalid_request_error"}}'
    recording = Recording(
        "e", error, "openai-chat", None, 400, {"content-type": "application/json"}
    )
    save_recording(tmp_path, recording)
    assert (tmp_path / "e.json").read_bytes() == error
    again = load_recordings(tmp_path)["e"]
    assert (again.status, again.framing, again.data) == (400, None, error)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param({"format": "other"}, "not a recording", id="format"),
        pytest.param(
            {"format": FORMAT, "response": {"status": "ok"}}, "response.status", id="status"
        ),
        pytest.param(
            {"format": FORMAT, "response": {"body": "../x.sse"}}, "file beside it", id="escape"
        ),
        pytest.param(
            {"format": FORMAT, "response": {"body": "none.sse"}}, "is missing", id="missing"
        ),
        pytest.param({"format": FORMAT, "request": []}, '"request"', id="request"),
    ],
)
def test_a_bad_meta_file_is_a_usage_error_naming_it(
    tmp_path: Path, document: dict[str, Any], message: str
) -> None:
    (tmp_path / "x.meta.json").write_text(json.dumps(document))
    (tmp_path / "x.sse").write_bytes(samples.read("chat-reasoning"))
    with pytest.raises(UsageError, match=r"x\.meta\.json") as caught:
        load_recordings(tmp_path)
    assert message in str(caught.value)


def test_a_folder_is_a_conversation_in_natural_order(tmp_path: Path) -> None:
    folder = tmp_path / "weather"
    folder.mkdir()
    for name, sample in (("10-last", "chat-reasoning"), ("2-tools", "chat-parallel-tools")):
        (folder / f"{name}.sse").write_bytes(samples.read(sample))
    found = load_recordings(tmp_path)
    assert list(found) == ["weather/2-tools", "weather/10-last"]
    assert {r.conversation for r in found.values()} == {"weather"}


def test_new_names_are_free_and_safe(tmp_path: Path) -> None:
    (tmp_path / "gpt-4o-1.sse").write_bytes(b"")
    assert new_name("gpt-4o", ["gpt-4o-2"], tmp_path) == "gpt-4o-3"
    assert new_name("anthropic/claude:beta", [], None) == "anthropic-claude-beta-1"
    assert new_name(None, [], None) == "recording-1"


def test_credential_query_parameters_are_left_out() -> None:
    path = "/v1beta/models/g:streamGenerateContent?alt=sse&key=SECRET-KEY-123"
    assert without_secret_params(path) == "/v1beta/models/g:streamGenerateContent?alt=sse"
    assert without_secret_params("/v1/messages") == "/v1/messages"


# -- matching -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        pytest.param({"x": 1, "y": 2}, {"y": 2, "x": 1}, True, id="key-order"),
        pytest.param({"x": 1, "user": "u1"}, {"x": 1, "user": "u2"}, True, id="volatile"),
        pytest.param({"x": 1, "metadata": {"run": 1}}, {"x": 1}, True, id="volatile-absent"),
        pytest.param({"x": 1}, {"x": 2}, False, id="value"),
        pytest.param({"m": [1, 2]}, {"m": [2, 1]}, False, id="list-order"),
    ],
)
def test_request_keys_ignore_volatile_fields_only(a: Any, b: Any, same: bool) -> None:
    assert (request_key("openai-chat", "m", a) == request_key("openai-chat", "m", b)) is same


def test_request_keys_take_dotted_paths_and_the_model_and_api() -> None:
    a = {"generationConfig": {"seed": 1, "temperature": 0}}
    b = {"generationConfig": {"seed": 2, "temperature": 0}}
    ignore = ["generationConfig.seed"]
    assert request_key("gemini", "g", a, ignore) == request_key("gemini", "g", b, ignore)
    assert request_key("gemini", "g", a) != request_key("gemini", "g", b)
    assert request_key("gemini", "g", a) != request_key("gemini", "h", a)
    assert request_key("gemini", "g", a) != request_key("anthropic", "g", a)


# -- another API's recording -----------------------------------------------------------------------


@pytest.mark.parametrize("target", ["anthropic", "openai-responses", "gemini", "openai-chat"])
@pytest.mark.parametrize("name", ["chat-reasoning", "chat-parallel-tools", "anthropic-thinking"])
def test_reencoded_recordings_fold_to_the_same_answer(name: str, target: str) -> None:
    source = Recording(name, samples.read(name))
    again = reencode(source, target)
    assert again.api == target
    want, got = streamfold.fold(source.data).unified, streamfold.fold(again.data).unified
    assert (got.text, got.reasoning) == (want.text, want.reasoning)
    assert [(c.name, c.arguments) for c in got.tool_calls] == [
        (c.name, c.arguments) for c in want.tool_calls
    ]
