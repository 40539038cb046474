"""Decoded events (dicts, SDK model objects) fold as the bytes they came from:
every recorded stream, as dicts and as the SDKs' own objects, and the rules of
the decoded path (what is kept of an object, what is refused)."""

from __future__ import annotations

import asyncio
import base64
import re
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

import streamfold
from streamfold import ProtocolError, StreamParser, UsageError, samples
from streamfold.decoded import wire_json
from streamfold.eventstream import EventStreamDecoder, EventStreamMessage
from streamfold.framing import Framing, FramingSniff, JSONArrayDecoder, JSONSequenceDecoder
from streamfold.sse import ServerSentEvent, SSEDecoder
from tests.corpus import comparable, dialect_of, first_difference, recording_name, recordings

genai_types = pytest.importorskip("google.genai.types")

# -- every recording, as dicts and as SDK objects ----------------------------------------------

_Decoder = SSEDecoder | JSONArrayDecoder | JSONSequenceDecoder | EventStreamDecoder
_DECODERS: dict[Framing, type[_Decoder]] = {
    Framing.SSE: SSEDecoder,
    Framing.JSON_ARRAY: JSONArrayDecoder,
    Framing.JSON_SEQUENCE: JSONSequenceDecoder,
    Framing.EVENT_STREAM: EventStreamDecoder,
}


def _events(raw: bytes) -> list[ServerSentEvent] | None:
    """The events of a recorded stream in any framing, or ``None`` for a body
    that does not frame."""
    sniff = FramingSniff(1 << 30)
    framing = sniff.feed(raw) or sniff.close()
    decoder = _DECODERS[framing](1 << 30)
    try:
        return decoder.feed(sniff.head) + decoder.close()
    except ProtocolError:
        return None


def _dicts(raw: bytes) -> list[dict[str, Any]] | None:
    """The stream's events as their SDK or framework would hand them over,
    decoded: each event's JSON object, ``[DONE]`` left out (the SDKs drop it);
    an AWS event-stream message as boto3 yields it, the member it names
    wrapping its payload, blobs (``chunk.bytes``) as bytes. ``None`` when an
    event is not a JSON object."""
    events = _events(raw)
    if events is None:
        return None
    out = []
    for event in events:
        if event.raw == b"[DONE]":
            continue
        try:
            value = msgspec.json.decode(event.raw)
        except msgspec.DecodeError:
            return None
        if type(value) is not dict:
            return None
        if isinstance(event, EventStreamMessage):
            value = _boto3_member(event.event, value)
        out.append(value)
    return out


def _boto3_member(name: str, payload: dict[str, Any]) -> dict[str, Any]:
    # botocore's event-stream parser: the member named by :event-type (or
    # :exception-type), Bedrock's padding "p" dropped, a blob decoded to bytes.
    payload = {key: value for key, value in payload.items() if key != "p"}
    if name == "chunk" and isinstance(payload.get("bytes"), str):
        payload["bytes"] = base64.b64decode(payload["bytes"])
    return {name: payload}


def _fold(items: list[Any]) -> dict[str, Any]:
    parser = StreamParser(parse_arguments=True, parse_content=True)
    events = []
    for item in items:
        events.extend(parser.feed(item))
    events.extend(parser.close())
    return comparable(events, parser.snapshot, parser.error)


STREAMS = [
    pytest.param(path, id=recording_name(path))
    for path in recordings()
    if path.suffix in (".sse", ".ndjson", ".eventstream") or path.read_bytes().lstrip()[:1] == b"["
]

#: Streams whose dicts cannot fold as their bytes, and why.
DICTS_DIFFER = {
    # No finish reason on any chunk: only `data: [DONE]` ends the stream, and
    # the marker is not a JSON object.
    "corpus/snowflake__chat__empty-id-created-zero.sse": "[DONE]",
    "corpus/snowflake__chat__thinking.sse": "[DONE]",
}


@pytest.mark.parametrize("path", STREAMS)
def test_the_dicts_of_a_stream_fold_as_its_bytes(path: Path) -> None:
    raw = path.read_bytes()
    dicts = _dicts(raw)
    if dicts is None:
        pytest.skip("an event is not a JSON object: no dict holds it")
    difference = first_difference(_fold([raw]), _fold(dicts))
    if recording_name(path) in DICTS_DIFFER:
        assert difference is not None and "complete" in difference[0]
    else:
        assert difference is None


def _openai_chat(value: dict[str, Any]) -> Any:
    from openai._models import construct_type
    from openai.types.chat import ChatCompletionChunk

    return construct_type(type_=ChatCompletionChunk, value=value)


def _openai_responses(value: dict[str, Any]) -> Any:
    from openai._models import construct_type
    from openai.types.responses import ResponseStreamEvent

    return construct_type(type_=ResponseStreamEvent, value=value)


def _anthropic(value: dict[str, Any]) -> Any:
    from anthropic._models import construct_type
    from anthropic.types import RawMessageStreamEvent

    return construct_type(type_=RawMessageStreamEvent, value=value)


def _genai(value: dict[str, Any]) -> Any:
    from google.genai.models import _GenerateContentResponse_from_mldev

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an enum value it does not know
        return genai_types.GenerateContentResponse._from_response(
            response=_GenerateContentResponse_from_mldev(value), kwargs={}
        )


#: Each SDK's object for one event, built as its stream builds it (openai's
#: and anthropic's ``construct_type``; google-genai's response converter).
SDK_OBJECTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "openai-chat": _openai_chat,
    "openai-responses": _openai_responses,
    "anthropic": _anthropic,
    "gemini": _genai,
}

#: What google-genai keeps of a stream is what it models: where that loses a
#: field the fold reads.
_GENAI_DROPS_CREATE_TIME = "its Gemini API converter drops createTime"
_REDACTED_SIGNATURE = "the recording's redacted thoughtSignature is not base64"
OBJECTS_DIFFER = {
    "fixtures/gemini/function-call-partial-args.sse": _GENAI_DROPS_CREATE_TIME,
    "corpus/google-vertex__gemini__nested-function-call-args.sse": _GENAI_DROPS_CREATE_TIME,
    "corpus/google-vertex__gemini__service-tier-flex.sse": _GENAI_DROPS_CREATE_TIME,
    "corpus/google__gemini__function-call-no-args.sse": _GENAI_DROPS_CREATE_TIME,
    "corpus/google__gemini__streaming-function-call-args.sse": _GENAI_DROPS_CREATE_TIME,
    "fixtures/gemini/grounding.sse": "it renames citationSources to citations",
    "fixtures/gemini/error-midstream.sse": "an error chunk is raised by its stream, not a model",
    **{
        f"pairs/gemini__{name}": _REDACTED_SIGNATURE
        for name in (
            "code_execution_matrix__streaming_code_execution_on_gemini_3_flash.json",
            "code_execution_matrix__streaming_code_execution_on_gemini_3_flash.sse",
            "hook_stress_streaming__parity_streaming.json",
            "hook_stress_streaming__parity_streaming.sse",
            "hook_stress_streaming__parity_streaming__1.json",
            "hook_stress_streaming__parity_streaming__1.sse",
            "hook_stress_streaming__parity_streaming__2.json",
            "hook_stress_streaming__parity_streaming__2.sse",
        )
    },
}
# An excerpt of an event is its JSON as written from the object: the fields in
# the model's order, not the wire's.
_EXCERPT = re.compile(r"""(: |ignored: )(['"])[\[{].*""")


def _without_excerpts(value: Any) -> Any:
    if isinstance(value, str):
        return _EXCERPT.sub(r"\1<excerpt>", value)
    if isinstance(value, dict):
        return {k: _without_excerpts(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_excerpts(v) for v in value]
    return value


@pytest.mark.parametrize("path", STREAMS)
def test_the_sdk_objects_of_a_stream_fold_as_its_dicts(path: Path) -> None:
    make = SDK_OBJECTS.get(dialect_of(path))
    dicts = _dicts(path.read_bytes()) if make is not None else None
    if make is None or dicts is None:
        pytest.skip("no SDK models this stream's events")
    objects = [make(value) for value in dicts]
    # Python's equality: where a model types a number as float, the SDK keeps
    # 1 as 1.0, the same number.
    difference = first_difference(
        _without_excerpts(_fold(dicts)), _without_excerpts(_fold(objects))
    )
    if recording_name(path) in OBJECTS_DIFFER:
        assert difference is not None
    else:
        assert difference is None


# -- what is kept of an object ---------------------------------------------------------------


def _wire(item: object) -> bytes:
    data = wire_json(item)
    assert data is not None, "an SDK helper's own event"
    return data


def test_an_sdk_object_keeps_what_the_server_sent_and_invents_nothing() -> None:
    sent = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "hi", "reasoning_content": "r"}}],
        "obfuscation": "xyz",  # a field the SDK does not model
    }
    chunk = _openai_chat(sent)
    assert chunk.choices[0].finish_reason is None  # a default the SDK fills in...
    assert msgspec.json.decode(_wire(chunk)) == sent  # ...not sent


def test_an_anthropic_event_keeps_its_extra_fields() -> None:
    sent = {"type": "message_delta", "delta": {"stop_reason": "end_turn", "x": 1}, "usage": {}}
    event = _anthropic(sent)
    assert msgspec.json.decode(_wire(event)) == sent


def test_a_genai_object_is_its_wire_json_without_what_the_sdk_adds() -> None:
    sent = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"text": "hi", "thoughtSignature": "+/8AEA=="}],
                },
                "finishReason": "STOP",
            }
        ],
        "modelVersion": "gemini-x",
    }
    response = _genai(sent)
    response.sdk_http_response = genai_types.HttpResponse(headers={"a": "b"})
    # camelCase as sent, the signature in standard base64 as sent, no defaults.
    assert msgspec.json.decode(_wire(response)) == sent


def _message_stream_events() -> list[Any]:
    # What anthropic's MessageStream yields: the raw events, the two stop
    # events with their snapshots added, and derived events.
    from anthropic.lib.streaming import _types as helpers

    start = {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude",
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 1, "output_tokens": 0},
        },
    }
    block = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "hi"},
    }
    message_delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn"},
        "usage": {"output_tokens": 2},
    }
    raw = [_anthropic(x) for x in (start, block, delta, message_delta)]
    text = helpers.TextEvent.construct(type="text", text="hi", snapshot="hi")
    stop_block = helpers.ParsedContentBlockStopEvent.construct(
        type="content_block_stop", index=0, content_block={"type": "text", "text": "hi"}
    )
    stop = helpers.ParsedMessageStopEvent.construct(type="message_stop", message=start["message"])
    return [raw[0], raw[1], raw[2], text, stop_block, raw[3], stop]


def test_the_events_of_anthropics_message_stream_fold_as_the_raw_ones() -> None:
    events = _message_stream_events()
    wire = [wire_json(event) for event in events]
    assert wire[3] is None  # the derived text event: no wire counterpart
    assert [msgspec.json.decode(wire[i] or b"null") for i in (4, 6)] == [
        {"type": "content_block_stop", "index": 0},
        {"type": "message_stop"},
    ]
    result = streamfold.fold(events)
    assert result.complete and result.unified.text == "hi"
    assert result.response["content"] == [{"type": "text", "text": "hi"}]


# -- what the decoded path refuses, and what fails as on bytes -------------------------------


@pytest.mark.parametrize(
    ("items", "error", "words"),
    [
        pytest.param([b"data: {}\n\n", {}], UsageError, "fed bytes", id="dict-after-bytes"),
        pytest.param(
            [{"id": "x", "choices": []}, b"data: {}"], UsageError, "fed decoded", id="bytes-after"
        ),
        pytest.param([{"a": {1j}}], UsageError, "JSON values only", id="not-json"),
        pytest.param([12], UsageError, "not int", id="int"),
        pytest.param(["data: x"], UsageError, "not str", id="str"),
    ],
)
def test_the_parser_refuses_what_is_no_stream(items: list[Any], error: type, words: str) -> None:
    parser = StreamParser()
    with pytest.raises(error, match=words):
        for item in items:
            parser.feed(item)


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("item", "words"),
    [
        pytest.param(_nested(100_000), "nested too deeply", id="deep"),
        pytest.param({"choices": ["\ud800"]}, "lone surrogate", id="surrogate"),
        pytest.param({"x": "y" * 100}, "larger than the limit of 64 bytes", id="too-large"),
    ],
)
def test_an_event_that_cannot_be_bytes_fails_as_on_bytes(item: Any, words: str) -> None:
    parser = StreamParser(max_event_size=64)
    assert parser.feed({"id": "c", "object": "chat.completion.chunk", "choices": []}) is not None
    events = parser.feed(item)
    assert isinstance(parser.error, ProtocolError)
    assert words in str(parser.error) and parser.error.position == 1
    assert events[-1].type == "error"


def test_a_str_of_the_streams_text_is_refused_and_paths_still_work(tmp_path: Path) -> None:
    text = 'data: {"id": "x"}\n\n'
    for call in (streamfold.fold, lambda s: list(streamfold.iter_events(s))):
        with pytest.raises(UsageError, match="the stream's text, not a path: pass its bytes"):
            call(text)
    named = tmp_path / "data: odd name.sse"  # a path that starts like an event still works
    named.write_bytes(samples.read("chat-reasoning"))
    assert streamfold.fold(str(named)).complete
    with pytest.raises(FileNotFoundError):
        streamfold.fold(str(tmp_path / "missing.sse"))


def test_afold_takes_an_async_iterable_of_dicts() -> None:
    dicts = _dicts(samples.read("chat-reasoning"))
    assert dicts is not None

    async def arrive() -> AsyncIterator[dict[str, Any]]:
        for value in dicts:
            yield value

    async def run() -> tuple[Any, list[Any]]:
        events = [event async for event in streamfold.aiter_events(arrive())]
        return await streamfold.afold(arrive()), events

    result, events = asyncio.run(run())
    assert result == streamfold.fold(dicts)
    assert events == list(streamfold.iter_events(dicts))
