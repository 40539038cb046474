"""Amazon Bedrock: ConverseStream and Claude on InvokeModelWithResponseStream.

The fixtures are written from the Bedrock Runtime reference (the
``ConverseStreamOutput`` and ``ResponseStream`` unions, every member) as
recordings keep them: one wrapped member per ``data:`` line. Each also runs as
the wire carries it, AWS event-stream frames, and as boto3 hands it over: the
frames read by botocore's own ``EventStream`` with the service's model (a
test-only oracle). All three fold alike; the conformance suite cuts them
anywhere (``fixtures/wire/``)."""

from __future__ import annotations

import base64
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

import streamfold
from streamfold import StreamfoldError, StreamParser
from streamfold.adapters.client import build_request, stream
from streamfold.dialects.bedrock import (
    BedrockAnthropic,
    BedrockConverse,
    normalise_usage,
    unified_stop_reason,
)
from streamfold.errors import (
    IncompleteStreamError,
    ProtocolError,
    ProviderError,
    StreamTimeoutError,
)
from streamfold.events import Event, ReasoningDone, ToolCallDone, Unknown
from streamfold.eventstream import (
    EventStreamDecoder,
    encode_error,
    encode_event,
    encode_exception,
)
from streamfold.result import Result
from streamfold.sse import SSEDecoder

from ..corpus import CORPUS, FIXTURES, corpus_files, fold_checked, fold_pieces
from .typed_path import assert_same_as_dict_path, hostile_test, typed_path_counts

botocore_session = pytest.importorskip("botocore.session", reason="botocore is the oracle")
botocore_parsers = importlib.import_module("botocore.parsers")
botocore_eventstream = importlib.import_module("botocore.eventstream")
urllib3_exceptions = importlib.import_module("urllib3.exceptions")
botocore_exceptions = importlib.import_module("botocore.exceptions")
fold_module = importlib.import_module("streamfold.fold")

CONVERSE = FIXTURES / "bedrock_converse"
INVOKE = FIXTURES / "bedrock_anthropic"
_EXCEPTIONS = {
    "internalServerException",
    "modelStreamErrorException",
    "validationException",
    "throttlingException",
    "serviceUnavailableException",
    "modelTimeoutException",
}


def fixtures(folder: Path) -> list[Any]:
    return [pytest.param(p, id=p.stem) for p in sorted(folder.glob("*.sse"))]


def every_fixture() -> list[Any]:
    return [*fixtures(CONVERSE), *fixtures(INVOKE)]


# -- the three forms of one stream ------------------------------------------------------


def members(sse: bytes) -> list[tuple[str, Any]]:
    """The wrapped members of a recording, in order: (name, value)."""
    decoder = SSEDecoder()
    out = []
    for event in [*decoder.feed(sse), *decoder.close()]:
        payload = json.loads(event.raw)
        (name,) = [key for key in payload if key != "p"]
        out.append((name, payload[name]))
    return out


def frames(sse: bytes) -> bytes:
    """The recording as Bedrock sends it: one event-stream message per member."""
    out = []
    for name, value in members(sse):
        payload = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        write = encode_exception if name in _EXCEPTIONS else encode_event
        out.append(write(name, payload))
    return b"".join(out)


class _Body:
    """The urllib3 response botocore reads the frames from: ``stream()`` gives
    the body (then raises ``fault``, when given), ``close()`` is recorded."""

    def __init__(self, data: bytes, fault: BaseException | None = None) -> None:
        self.data = data
        self.fault = fault
        self.closed = False

    def stream(self) -> Any:
        yield self.data
        if self.fault is not None:
            raise self.fault

    def close(self) -> None:
        self.closed = True


def boto3_stream(body: _Body, shape: str) -> Any:
    """What boto3's ``converse_stream()["stream"]`` (or
    ``invoke_model_with_response_stream()["body"]``) is for these frames:
    botocore's ``EventStream``, yielding each member decoded with the service
    model (blobs as bytes, the padding dropped), raising an exception message."""
    model = botocore_session.get_session().get_service_model("bedrock-runtime")
    return botocore_eventstream.EventStream(
        body, model.shape_for(shape), botocore_parsers.EventStreamJSONParser(), "Stream"
    )


def fold_source(make: Callable[[], Any]) -> Any:
    """A source of decoded events folded as a caller does, ``comparable``'s
    shape: the events of ``iter_events(make())``, the result of ``fold(make())``."""
    events: list[Event] = []
    error: StreamfoldError | None = None
    try:
        events.extend(streamfold.iter_events(make(), parse_arguments=True))
    except StreamfoldError as exc:
        error = exc
    try:
        result = streamfold.fold(make())
    except StreamfoldError as exc:
        assert exc.partial is not None
        result = exc.partial
    failure = None if error is None else (type(error).__name__, str(error), error.position)
    return (
        [msgspec.to_builtins(e) for e in events],
        result.dialect,
        result.response,
        result.unified,
        result.warnings,
        result.complete,
        failure,
    )


def fold(data: bytes, **options: Any) -> tuple[list[Event], Result, BaseException | None]:
    events, result, error = fold_pieces([data], **options)
    assert result is not None
    return events, result, error


def folded(data: bytes) -> dict[str, Any]:
    """The fold of ``data`` as the conformance suite compares folds (``fold_checked``)."""
    return fold_checked([data], parse_arguments=True)


def comparable(data: bytes) -> Any:
    """The fold of ``data`` in ``fold_source``'s shape."""
    events, result, error = fold_pieces([data], parse_arguments=True)
    assert result is not None
    failure = None if error is None else (type(error).__name__, str(error), error.position)  # type: ignore[attr-defined]
    return (
        [msgspec.to_builtins(e) for e in events],
        result.dialect,
        result.response,
        result.unified,
        result.warnings,
        result.complete,
        failure,
    )


# -- what each fixture folds to ----------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """``tools``: (name, parsed arguments, complete); ``usage``: (input, output,
    total, cache read, cache write); ``native``: (dotted path, value) pairs."""

    text: str = ""
    reasoning: str = ""
    finish: str | None = None
    raw_finish: str | None = None
    tools: tuple[tuple[str | None, Any, bool], ...] = ()
    usage: tuple[int | None, ...] | None = None
    error: type[BaseException] | None = None
    code: str | None = None
    retryable: bool | None = None
    native: tuple[tuple[str, Any], ...] = ()
    warning: str | None = None


SIGNATURE = base64.b64encode(b"signed-reasoning-" + bytes(range(48))).decode()
REDACTED = base64.b64encode(b"\x00encrypted reasoning\xff" * 3).decode()

EXPECTED: dict[str, Expect] = {
    "text": Expect(
        text="Paris is the capital of France — and São Paulo isn't.",
        finish="stop",
        raw_finish="end_turn",
        usage=(14, 12, 26, None, None),
        native=(
            ("output.message.role", "assistant"),
            (
                "output.message.content",
                [{"text": "Paris is the capital of France — and São Paulo isn't."}],
            ),
            ("stopReason", "end_turn"),
            ("metrics", {"latencyMs": 412}),
        ),
    ),
    "padded-frames": Expect(
        text="Hello there.",
        finish="stop",
        raw_finish="end_turn",
        usage=(9, 3, 12, None, None),
        native=(("usage", {"inputTokens": 9, "outputTokens": 3, "totalTokens": 12}),),
    ),
    "reasoning-signature": Expect(
        text="9.9 is larger.",
        reasoning="The user asks 9.11 vs 9.9. Compare tenths: 1 < 9.",
        finish="stop",
        raw_finish="end_turn",
        usage=(1064, 61, 1125, 1024, 0),
        native=(
            (
                "output.message.content.0.reasoningContent.reasoningText",
                {
                    "text": "The user asks 9.11 vs 9.9. Compare tenths: 1 < 9.",
                    "signature": SIGNATURE,
                },
            ),
            ("output.message.content.1", {"text": "9.9 is larger."}),
            ("additionalModelResponseFields", {"delta": {"stop_sequence": None}}),
        ),
    ),
    "redacted-reasoning": Expect(
        text="Done.",
        finish="stop",
        raw_finish="end_turn",
        usage=(30, 80, 110, None, None),
        native=(("output.message.content.0", {"reasoningContent": {"redactedContent": REDACTED}}),),
    ),
    "tool-use": Expect(
        text="Let me check the weather.",
        finish="tool_calls",
        raw_finish="tool_use",
        tools=(("get_weather", {"city": "Paris", "unit": "celsius"}, True),),
        usage=(310, 58, 368, None, None),
        native=(
            (
                "output.message.content.1.toolUse",
                {
                    "toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                    "name": "get_weather",
                    "input": {"city": "Paris", "unit": "celsius"},
                },
            ),
        ),
    ),
    "parallel-tools": Expect(
        finish="tool_calls",
        raw_finish="tool_use",
        tools=(
            ("get_weather", {"city": "Paris"}, True),
            ("get_time", {}, True),
            ("get_weather", {"city": "São Paulo"}, True),
        ),
        usage=(400, 90, 490, None, None),
        native=(("output.message.content.1.toolUse.input", {}),),
    ),
    "metadata-before-stop": Expect(
        text="OK", finish="stop", raw_finish="end_turn", usage=(5, 1, 6, None, None)
    ),
    "max-tokens-tool-cut": Expect(
        text="Writing the file.",
        finish="length",
        raw_finish="max_tokens",
        tools=(("write_file", None, False),),
        usage=(120, 64, 184, None, None),
        native=(
            ("output.message.content.1.toolUse.input", {"path": "a.txt", "content": "lorem ip"}),
        ),
    ),
    "max-tokens-text": Expect(
        text="Once upon a time, there was a",
        finish="length",
        raw_finish="max_tokens",
        usage=(8, 10, 18, None, None),
    ),
    "stop-sequence": Expect(
        text="1, 2, 3",
        finish="stop",
        raw_finish="stop_sequence",
        usage=(12, 7, 19, None, None),
        native=(("additionalModelResponseFields.delta.stop_sequence", "4"),),
    ),
    "guardrail-intervened": Expect(
        text="Sorry, the model cannot answer this question.",
        finish="content_filter",
        raw_finish="guardrail_intervened",
        usage=(25, 10, 35, None, None),
        native=(("trace.guardrail.actionReason", "Guardrail blocked."),),
    ),
    "content-filtered": Expect(
        text="I can",
        finish="content_filter",
        raw_finish="content_filtered",
        usage=(20, 2, 22, None, None),
    ),
    "model-context-window-exceeded": Expect(
        text="The summary",
        finish="length",
        raw_finish="model_context_window_exceeded",
        usage=(199990, 10, 200000, None, None),
    ),
    "malformed-tool-use": Expect(
        finish="error",
        raw_finish="malformed_tool_use",
        tools=(("lookup", None, True),),
        usage=(50, 5, 55, None, None),
        warning="the input is not valid JSON",
    ),
    "end-turn-with-tools": Expect(
        finish="tool_calls",
        raw_finish="end_turn",
        tools=(("search", {"query": "llama"}, True),),
        usage=(70, 20, 90, None, None),
    ),
    "citations": Expect(
        text="According to the report, revenue grew 12%.",
        finish="stop",
        raw_finish="end_turn",
        usage=(2787, 30, 2817, None, None),
        native=(
            ("output.message.content.1.citationsContent.content", [{"text": "revenue grew 12%"}]),
            ("output.message.content.1.citationsContent.citations.0.title", "report.pdf"),
            ("output.message.content.2", {"text": "."}),
        ),
    ),
    "server-tool": Expect(
        text="It is sunny in Paris.",
        finish="stop",
        raw_finish="end_turn",
        usage=(90, 40, 130, None, None),
        native=(
            ("output.message.content.0.toolUse.type", "server_tool_use"),
            ("output.message.content.0.toolUse.input", {"query": "weather Paris"}),
            ("output.message.content.1.toolResult.status", "success"),
            ("output.message.content.1.toolResult.content.0.json.results.0.title", "Paris weather"),
        ),
    ),
    "image": Expect(
        text="Here is the image.",
        finish="stop",
        raw_finish="end_turn",
        usage=(15, 400, 415, None, None),
        native=(("output.message.content.0.image.format", "png"),),
    ),
    "throttling-midstream": Expect(
        text="The answer", error=ProviderError, code="throttlingException", retryable=True
    ),
    "model-stream-error": Expect(
        text="Partial",
        error=ProviderError,
        code="modelStreamErrorException",
        retryable=True,
    ),
    "validation-exception": Expect(
        error=ProviderError, code="validationException", retryable=False
    ),
    "internal-server-exception": Expect(
        error=ProviderError, code="internalServerException", retryable=True
    ),
    "service-unavailable-exception": Expect(
        error=ProviderError, code="serviceUnavailableException", retryable=True
    ),
    "cut": Expect(
        text="This answer was cut",
        tools=(("f", None, False),),
        error=IncompleteStreamError,
    ),
    "stop-without-metadata": Expect(
        text="Hi", finish="stop", raw_finish="end_turn", warning="without its metadata event"
    ),
}

EXPECTED_INVOKE: dict[str, Expect] = {
    "text": Expect(
        text="Bonjour !",
        finish="stop",
        raw_finish="end_turn",
        usage=(21, 9, 30, None, None),
        native=(("id", "msg_bdrk_01Xf3"), ("content", [{"type": "text", "text": "Bonjour !"}])),
    ),
    "thinking-tool-use": Expect(
        reasoning="I should call the tool.",
        finish="tool_calls",
        raw_finish="tool_use",
        tools=(("get_weather", {"city": "Lyon"}, True),),
        usage=(500, 77, 577, None, None),
        native=(("content.0.signature", SIGNATURE), ("content.1.input", {"city": "Lyon"})),
    ),
    # message_start's usage stands when the stream fails.
    "throttling-midstream": Expect(
        text="Partial",
        usage=(30, 1, 31, None, None),
        error=ProviderError,
        code="throttlingException",
        retryable=True,
    ),
    "model-timeout": Expect(
        usage=(30, 1, 31, None, None),
        error=ProviderError,
        code="modelTimeoutException",
        retryable=True,
    ),
    "overloaded-error-event": Expect(
        usage=(30, 1, 31, None, None),
        error=ProviderError,
        code="overloaded_error",
        retryable=True,
    ),
}


def at(value: Any, path: str) -> Any:
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def check(expect: Expect, events: list[Event], result: Result, error: BaseException | None) -> None:
    unified = result.unified
    assert unified.text == expect.text
    assert unified.reasoning == expect.reasoning
    assert unified.finish_reason == expect.finish
    assert unified.raw_finish_reason == expect.raw_finish
    calls = [(c.name, c.complete) for c in unified.tool_calls]
    assert calls == [(name, complete) for name, _, complete in expect.tools]
    dones = [e for e in events if isinstance(e, ToolCallDone) and e.kind == "function"]
    for done, (_, value, complete) in zip(dones, expect.tools, strict=True):
        if value is not None and complete:
            assert done.value == value and done.parse_error is None
    if expect.usage is None:
        assert unified.usage is None
    else:
        usage = unified.usage
        assert usage is not None
        assert (
            usage.input_tokens,
            usage.output_tokens,
            usage.total_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
        ) == expect.usage
    if expect.error is None:
        assert error is None and result.complete
    else:
        assert isinstance(error, expect.error)
        assert not result.complete
        if isinstance(error, ProviderError):
            assert error.code == expect.code
            assert error.retryable is expect.retryable
            assert error.message and error.partial is not None
    for path, value in expect.native:
        assert at(result.response, path) == value, path
    if expect.warning is not None:
        assert any(expect.warning in w for w in result.warnings)
    else:
        assert result.warnings == ()


@pytest.mark.parametrize("path", fixtures(CONVERSE))
def test_converse_fixture_folds_to_what_the_reference_says(path: Path) -> None:
    expect = EXPECTED[path.stem]
    for body in (path.read_bytes(), frames(path.read_bytes())):
        events, result, error = fold(body, parse_arguments=True)
        assert result.dialect == "bedrock-converse"
        check(expect, events, result, error)


@pytest.mark.parametrize("path", fixtures(INVOKE))
def test_invoke_fixture_folds_with_the_anthropic_dialect(path: Path) -> None:
    expect = EXPECTED_INVOKE[path.stem]
    for body in (path.read_bytes(), frames(path.read_bytes())):
        events, result, error = fold(body, parse_arguments=True)
        assert result.dialect == "bedrock-anthropic"
        assert result.response.get("type") == "message"
        check(expect, events, result, error)


def test_every_fixture_has_its_expectation() -> None:
    assert {p.stem for p in CONVERSE.glob("*.sse")} == set(EXPECTED)
    assert {p.stem for p in INVOKE.glob("*.sse")} == set(EXPECTED_INVOKE)


# -- the three forms fold alike ----------------------------------------------


@pytest.mark.parametrize("path", every_fixture())
def test_frames_fold_exactly_as_the_recording(path: Path) -> None:
    # The event-stream frames and the wrapped recording are one stream: same
    # events, response, view, warnings and error (messages included).
    data = path.read_bytes()
    assert folded(frames(data)) == folded(data)


@pytest.mark.parametrize("path", every_fixture())
def test_boto3s_stream_folds_as_the_frames(path: Path) -> None:
    # botocore reads the frames with the service model (what boto3 yields, the
    # padding dropped, blobs as bytes) and raises an exception message:
    # streamfold folds that EventStream as it is, to the same answer. An
    # exception loses its extra fields there (boto3 raises it with a code and
    # a message only), so errors compare by type, code and message.
    data = frames(path.read_bytes())
    shape = "ConverseStreamOutput" if path.parent == CONVERSE else "ResponseStream"
    ours = comparable(data)
    theirs = fold_source(lambda: boto3_stream(_Body(data), shape))
    assert theirs[3].text == ours[3].text and theirs[3].reasoning == ours[3].reasoning
    assert theirs[3].tool_calls == ours[3].tool_calls
    assert theirs[3].finish_reason == ours[3].finish_reason
    assert theirs[3].usage == ours[3].usage
    if ours[6] is None:
        assert theirs[:6] == ours[:6] and theirs[6] is None
    else:
        error, ours_error = _error_of(boto3_stream(_Body(data), shape)), fold(data)[2]
        assert type(error) is type(ours_error)
        if isinstance(ours_error, ProviderError):
            assert isinstance(error, ProviderError)
            assert (error.code, error.message) == (ours_error.code, ours_error.message)


def _error_of(source: Any) -> BaseException | None:
    try:
        streamfold.fold(source)
    except StreamfoldError as exc:
        return exc
    return None


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        pytest.param(
            lambda: urllib3_exceptions.ProtocolError("Connection broken: IncompleteRead"),
            IncompleteStreamError,
            id="dropped",
        ),
        pytest.param(
            lambda: urllib3_exceptions.ReadTimeoutError(None, "/", "Read timed out."),
            StreamTimeoutError,
            id="read-timeout",
        ),
        pytest.param(
            lambda: botocore_exceptions.ReadTimeoutError(endpoint_url="https://bedrock"),
            StreamTimeoutError,
            id="botocore-read-timeout",
        ),
    ],
)
def test_a_transport_fault_inside_boto3s_stream_is_ours(
    fault: Callable[[], BaseException], expected: type[StreamfoldError]
) -> None:
    # urllib3 (or botocore) raises from inside botocore's EventStream: the
    # stream ends in streamfold's error with what came, the cause chained.
    data = frames((CONVERSE / "tool-use.sse").read_bytes())
    body = _Body(data[: len(data) // 2], fault())
    with pytest.raises(expected) as caught:
        streamfold.fold(boto3_stream(body, "ConverseStreamOutput"))
    assert type(caught.value.__cause__).__module__.split(".")[0] in {"urllib3", "botocore"}
    assert caught.value.partial is not None and caught.value.partial.dialect == "bedrock-converse"
    assert caught.value.partial.unified.text
    assert body.closed


def test_leaving_boto3s_stream_early_closes_it() -> None:
    body = _Body(frames((CONVERSE / "tool-use.sse").read_bytes()))
    for _ in streamfold.iter_events(boto3_stream(body, "ConverseStreamOutput")):
        break
    assert body.closed


def test_a_cut_frame_is_a_cut_stream() -> None:
    body = frames((CONVERSE / "text.sse").read_bytes())
    _, result, error = fold(body[: len(body) - 10])
    assert isinstance(error, IncompleteStreamError)
    assert "the stream ended inside event-stream message #" in str(error)
    assert result.unified.text.startswith("Paris is")


def test_a_corrupt_frame_is_a_protocol_error_with_the_partial_answer() -> None:
    body = bytearray(frames((CONVERSE / "text.sse").read_bytes()))
    body[-5] ^= 0x20  # in the last message (metadata)
    _, result, error = fold(bytes(body))
    assert isinstance(error, ProtocolError) and "CRC" in str(error)
    assert result.unified.text.startswith("Paris")


# -- the shapes an event comes in ------------------------------------------------------------


def sse(*lines: Any) -> bytes:
    return "".join(f"data: {json.dumps(line)}\n\n" for line in lines).encode()


START = {"messageStart": {"role": "assistant"}}
STOP = {"messageStop": {"stopReason": "end_turn"}}
META = {
    "metadata": {
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
        "metrics": {"latencyMs": 1},
    }
}


def test_an_error_message_is_a_provider_error() -> None:
    # The framing's third message type: a code and a message in headers.
    body = frames(sse(START)) + encode_error(
        "InternalFailure", "The request processing has failed."
    )
    _, _, error = fold(body)
    assert isinstance(error, ProviderError)
    assert (error.code, error.message, error.retryable) == (
        "InternalFailure",
        "The request processing has failed.",
        True,
    )


def test_an_exception_first_is_detected_as_bedrock() -> None:
    _, result, error = fold(encode_exception("throttlingException", b'{"message":"slow down"}'))
    assert isinstance(error, ProviderError) and error.code == "throttlingException"
    assert result.dialect == "bedrock-converse"


def test_named_events_with_bare_payloads_fold_as_wrapped_ones() -> None:
    # A source that names each event (as the frames do) with the bare member.
    wrapped = sse(
        START, {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "Hi"}}}, STOP, META
    )
    named = b"".join(
        f"event: {name}\ndata: {json.dumps(value)}\n\n".encode() for name, value in members(wrapped)
    )
    assert folded(named) == folded(wrapped)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        pytest.param(
            [START, {"contentBlockDelta": {"delta": {"text": "x"}}}],
            "'contentBlockIndex' is missing",
            id="no-index",
        ),
        pytest.param(
            [START, {"contentBlockDelta": {"contentBlockIndex": 0}}],
            "contentBlockDelta without a delta object",
            id="no-delta",
        ),
        pytest.param(
            [START, {"messageStop": "end_turn"}],
            "messageStop is not a JSON object",
            id="stop-not-object",
        ),
        pytest.param(
            [
                START,
                {"contentBlockStop": {"contentBlockIndex": 0}},
                {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "x"}}},
            ],
            "after it stopped",
            id="delta-after-stop",
        ),
        pytest.param(
            [
                START,
                {
                    "contentBlockStart": {
                        "contentBlockIndex": 0,
                        "start": {"toolUse": {"toolUseId": "a", "name": "f"}},
                    }
                },
            ]
            * 2,
            "started twice",
            id="started-twice",
        ),
        pytest.param([START, {"a": 1, "b": 2}], "is not an event of the stream", id="two-keys"),
    ],
)
def test_malformed_events_are_protocol_errors(lines: list[Any], message: str) -> None:
    _, _, error = fold(sse(*lines))
    assert isinstance(error, ProtocolError) and message in str(error)
    # Leniently the event is skipped with a warning.
    _, result, error = fold_pieces([sse(*lines, STOP, META)], strict=False)
    assert error is None and result is not None
    assert any(message in warning for warning in result.warnings)


def test_unknown_members_and_deltas_become_unknown_events() -> None:
    body = sse(
        START,
        {"futureEvent": {"x": 1}},
        {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"hologram": {"x": 1}}}},
        STOP,
        META,
    )
    events, result, error = fold(body)
    assert error is None and result.complete
    unknown = [e.event for e in events if isinstance(e, Unknown)]
    assert unknown == ["futureEvent", "contentBlockDelta"]


def test_a_chunk_of_another_model_is_not_claimed() -> None:
    # InvokeModelWithResponseStream for a model whose own format no dialect reads.
    raw = base64.b64encode(b'{"generation": "Hi", "stop_reason": null}').decode()
    _, _, error = fold(sse({"chunk": {"bytes": raw}}))
    assert isinstance(error, ProtocolError) and "matches no known dialect" in str(error)


def test_a_chunk_whose_bytes_are_not_base64_is_a_protocol_error() -> None:
    good = (INVOKE / "text.sse").read_bytes().split(b"\n\n")[0] + b"\n\n"
    _, _, error = fold(good + sse({"chunk": {"bytes": "not base64!"}}))
    assert isinstance(error, ProtocolError) and "chunk.bytes is not base64" in str(error)


def test_reasoning_done_carries_the_signature_and_the_redacted_content() -> None:
    events, _, _ = fold((CONVERSE / "reasoning-signature.sse").read_bytes())
    (done,) = [e for e in events if isinstance(e, ReasoningDone)]
    assert done.signature == SIGNATURE and done.complete
    events, _, _ = fold((CONVERSE / "redacted-reasoning.sse").read_bytes())
    (done,) = [e for e in events if isinstance(e, ReasoningDone)]
    assert done.text == "" and done.encrypted_content == REDACTED


def test_server_tools_are_not_calls_to_run() -> None:
    events, result, _ = fold((CONVERSE / "server-tool.sse").read_bytes())
    assert result.unified.tool_calls == ()
    assert [e.kind for e in events if isinstance(e, ToolCallDone)] == ["server_tool_use"]


@pytest.mark.parametrize(
    ("raw", "calls", "unified"),
    [
        ("end_turn", False, "stop"),
        ("end_turn", True, "tool_calls"),
        ("tool_use", True, "tool_calls"),
        ("stop_sequence", False, "stop"),
        ("max_tokens", False, "length"),
        ("model_context_window_exceeded", False, "length"),
        ("guardrail_intervened", False, "content_filter"),
        ("content_filtered", False, "content_filter"),
        ("malformed_model_output", False, "error"),
        ("malformed_tool_use", True, "error"),
        ("something_new", False, "other"),
    ],
)
def test_stop_reasons(raw: str, calls: bool, unified: str) -> None:
    assert unified_stop_reason(raw, calls) == unified


def test_usage_counts_the_cached_prompt_inside_the_input() -> None:
    usage = normalise_usage(
        {"inputTokens": 4, "outputTokens": 300, "totalTokens": 2304, "cacheReadInputTokens": 2000}
    )
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (2004, 300, 2304)
    assert usage.cache_read_tokens == 2000 and usage.cache_write_tokens is None
    assert normalise_usage({"totalTokens": 7}).total_tokens == 7
    assert normalise_usage({}).input_tokens is None


# -- the shared recordings ------------------------------------------------------------------

CORPUS_EXPECTED = {
    "amazon-bedrock__other__converse-stream-text": ("stop", "end_turn", (22, 55, 77), 0, False),
    "amazon-bedrock__other__converse-stream-reasoning": (
        "stop",
        "end_turn",
        (51, 94, 145),
        0,
        True,
    ),
    "amazon-bedrock__other__converse-stream-tool-use": (
        "tool_calls",
        "tool_use",
        (125, 45, 170),
        1,
        False,
    ),
}


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in corpus_files("other")
        if p.id == "no-corpus" or p.id.startswith("amazon-bedrock__")
    ],
)
def test_corpus_recordings_fold_and_fold_alike_as_frames(path: Path) -> None:
    finish, raw, usage, calls, reasoning = CORPUS_EXPECTED[path.stem]
    data = path.read_bytes()
    _, result, error = fold(data)
    assert error is None and result.complete and result.dialect == "bedrock-converse"
    unified = result.unified
    assert (unified.finish_reason, unified.raw_finish_reason) == (finish, raw)
    assert unified.usage is not None
    assert (
        unified.usage.input_tokens,
        unified.usage.output_tokens,
        unified.usage.total_tokens,
    ) == usage
    assert len(unified.tool_calls) == calls and bool(unified.reasoning) is reasoning
    assert folded(frames(data)) == folded(data)


def test_corpus_tool_call_arguments() -> None:
    path = CORPUS / "amazon-bedrock__other__converse-stream-tool-use.sse"
    if not path.exists():
        pytest.skip("the shared corpus is absent")
    (call,) = fold(path.read_bytes())[1].unified.tool_calls
    assert (call.id, call.name, json.loads(call.arguments)) == (
        "tool-use-id",
        "test-tool",
        {"value": "Sparkle Day"},
    )


# -- the live request ---------------------------------------------------------------------


def test_the_converse_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "bedrock-api-key-xyz")
    request = build_request(
        "Hi",
        model="anthropic.claude-3-5-haiku-20241022-v1:0",
        api="bedrock",
        system="Be brief.",
        max_tokens=100,
        tools=[{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}],
    )
    assert request.url == (
        "https://bedrock-runtime.eu-west-3.amazonaws.com"
        "/model/anthropic.claude-3-5-haiku-20241022-v1:0/converse-stream"
    )
    assert request.headers["accept"] == "application/vnd.amazon.eventstream"
    assert request.body == {
        "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
        "system": [{"text": "Be brief."}],
        "toolConfig": {
            "tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}]
        },
        "inferenceConfig": {"maxTokens": 100},
    }
    assert request.api_key is not None and request.api_key.reveal() == "bedrock-api-key-xyz"
    assert "bedrock-api-key-xyz" not in repr(request)


def test_the_invoke_request_for_claude(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    request = build_request(
        "Hi", model="anthropic.claude-sonnet-4-5-20250929-v1:0", api="bedrock-claude"
    )
    assert request.url == (
        "https://bedrock-runtime.us-east-1.amazonaws.com"
        "/model/anthropic.claude-sonnet-4-5-20250929-v1:0/invoke-with-response-stream"
    )
    assert request.body == {
        "anthropic_version": "bedrock-2023-05-31",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 4096,
    }


def test_the_live_client_streams_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    from ..adapters.rawserver import END_CHUNKS, RawServer, chunked, response_head

    body = frames((CONVERSE / "tool-use.sse").read_bytes())

    def script(head: bytes) -> list[tuple[float, bytes]]:
        headers = {
            "content-type": "application/vnd.amazon.eventstream",
            "transfer-encoding": "chunked",
            "x-amzn-requestid": "req-bedrock-1",
        }
        pieces = [body[i : i + 50] for i in range(0, len(body), 50)]
        return [
            (0, response_head(200, headers, "OK")),
            *((0, c) for c in chunked(*pieces)),
            (0, END_CHUNKS),
        ]

    with RawServer(script) as server:
        live = stream("Weather?", model="m:0", api="bedrock", base_url=server.url, api_key="k1")
        with live:
            result = live.final()
        head = server.requests[0].decode()
    assert head.startswith("POST /model/m:0/converse-stream HTTP/1.1")
    assert "authorization: bearer k1" in head.lower()
    assert "accept: application/vnd.amazon.eventstream" in head.lower()
    assert result.unified.tool_calls[0].name == "get_weather"
    assert result.metadata is not None and result.metadata.request_id == "req-bedrock-1"


@pytest.mark.parametrize("name", ["bedrock", "bedrock-converse"])
def test_the_dialect_by_its_names(name: str) -> None:
    parser = StreamParser(name)
    parser.feed(sse(START, STOP, META))
    parser.close()
    assert parser.final().dialect == "bedrock-converse"


# -- the replay server's routes --------------------------------------------------------------


def _recordings() -> dict[str, Any]:
    from streamfold.adapters.recordings import Recording

    found = {}
    for folder, prefix in ((CONVERSE, "converse-"), (INVOKE, "invoke-")):
        for path in sorted(folder.glob("*.sse")):
            found[prefix + path.stem] = Recording(prefix + path.stem, path.read_bytes())
    return found


@pytest.fixture(scope="module")
def bedrock_server() -> Any:
    from streamfold.server import ReplayServer

    with ReplayServer(_recordings()) as server:
        yield server


def _replay(server: Any, name: str, api: str, fault: str | None = None) -> tuple[Any, Any]:
    headers = {"X-Streamfold-Recording": name}
    if fault is not None:
        headers["X-Streamfold-Fault"] = fault
    live = stream("Hi", model="m:0", api=api, base_url=server.url, api_key="k", headers=headers)
    try:
        with live:
            return live.final(), None
    except Exception as exc:  # the fault's error, its partial result on it
        return getattr(exc, "partial", None), exc


@pytest.mark.parametrize(
    ("name", "api"),
    [
        *[(f"converse-{p.stem}", "bedrock") for p in sorted(CONVERSE.glob("*.sse"))],
        *[(f"invoke-{p.stem}", "bedrock-claude") for p in sorted(INVOKE.glob("*.sse"))],
    ],
)
def test_the_replay_route_serves_real_frames(bedrock_server: Any, name: str, api: str) -> None:
    # Each recording (wrapped members) goes out as event-stream frames and folds
    # to what the recording itself folds to.
    folder, stem = (CONVERSE, name[9:]) if name.startswith("converse-") else (INVOKE, name[7:])
    _, expected, expected_error = fold((folder / f"{stem}.sse").read_bytes())
    result, error = _replay(bedrock_server, name, api)
    assert result is not None
    assert result.unified == expected.unified
    assert result.response == expected.response
    assert type(error) is type(expected_error)
    served = bedrock_server.requests[-1]
    assert served.path.startswith("/model/m:0/")
    assert result.metadata.content_type == "application/vnd.amazon.eventstream"
    assert result.metadata.request_id == served.id


@pytest.mark.parametrize(
    ("fault", "error", "check"),
    [
        pytest.param("error-after=2", ProviderError, "Model Stream Error", id="in-band"),
        pytest.param("malformed-after=2", ProtocolError, "CRC", id="malformed"),
        pytest.param("drop-after=3", IncompleteStreamError, "", id="drop"),
        pytest.param("split=bytes", None, "", id="split-bytes"),
        pytest.param("split=7", None, "", id="split-7"),
    ],
)
def test_the_replay_route_injects_faults_as_frames(
    bedrock_server: Any, fault: str, error: type[BaseException] | None, check: str
) -> None:
    result, raised = _replay(bedrock_server, "converse-tool-use", "bedrock", fault)
    if error is None:
        assert raised is None and result.unified.tool_calls[0].name == "get_weather"
        return
    assert isinstance(raised, error) and check in str(raised)
    assert result is not None and result.unified.text.startswith("Let me")


def test_the_replay_route_answers_errors_as_bedrock(bedrock_server: Any) -> None:
    from streamfold.errors import HTTPStatusError

    _, raised = _replay(bedrock_server, "converse-text", "bedrock", "status=429")
    assert isinstance(raised, HTTPStatusError) and raised.status_code == 429
    assert raised.provider_message == "Too many requests, please wait before trying again."
    assert raised.retryable and raised.retry_after == 1.0


WIRE = FIXTURES / "wire"


@pytest.mark.parametrize("path", sorted(WIRE.glob("bedrock_*.eventstream")), ids=lambda p: p.stem)
def test_the_wire_fixtures_are_the_recordings_framed(path: Path) -> None:
    # The shared fuzz suite mutates these real frames; they must stay the
    # frames of their recordings (regenerate them with frames() when those change).
    folder, stem = path.stem.split("__")
    source = (FIXTURES / folder / f"{stem}.sse").read_bytes()
    assert path.read_bytes() == frames(source)
    assert folded(path.read_bytes()) == folded(source)


def test_chunk_bytes_kept_as_text_fold_as_base64_ones() -> None:
    # A recording written from boto3's dicts, whose chunk.bytes boto3 decoded.
    data = (INVOKE / "text.sse").read_bytes()
    as_text = []
    for name, value in members(data):
        if name == "chunk":
            value = {"bytes": base64.b64decode(value["bytes"]).decode()}
        as_text.append({name: value})
    assert folded(sse(*as_text)) == folded(data)


def test_an_error_envelope_mid_stream_is_a_provider_error() -> None:
    body = sse(START, {"error": {"message": "upstream closed", "code": "503"}})
    _, result, error = fold(body)
    assert isinstance(error, ProviderError)
    assert (error.message, error.code, error.retryable) == ("upstream closed", "503", True)
    assert result.dialect == "bedrock-converse"


# -- the typed path -----------------------------------------------------------------------


def _delta(index: int, delta: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"contentBlockDelta": {"contentBlockIndex": index, "delta": delta, **extra}}


def _tool_start(index: int) -> dict[str, Any]:
    tool = {"toolUseId": f"t{index}", "name": "f"}
    return {"contentBlockStart": {"contentBlockIndex": index, "start": {"toolUse": tool}}}


def _block_stop(index: int) -> dict[str, Any]:
    return {"contentBlockStop": {"contentBlockIndex": index}}


# Converse streams that reach each rule of the typed path: a piece of the
# block's kind, the first piece of a block without a start, two kinds at once,
# a kind the block is not, a signature (the dict path's), padding, a delta
# after the block stopped or for a block never seen.
CONVERSE_TYPED_STREAMS = {
    "kinds": sse(
        START,
        _delta(0, {"reasoningContent": {"text": "Let"}}),
        _delta(0, {"reasoningContent": {"text": ""}}),
        _delta(0, {"reasoningContent": {"text": " me"}}, p="abc"),
        _delta(0, {"text": "misplaced"}),
        _delta(0, {"reasoningContent": {"signature": SIGNATURE}}),
        _block_stop(0),
        _delta(1, {"text": ""}),
        _delta(1, {"text": "Hi"}),
        _delta(1, {"text": " there", "reasoningContent": {"text": "both"}}),
        _delta(1, {"reasoningContent": {"text": "misplaced"}}),
        _delta(1, {"toolUse": {"input": "{}"}}),
        _delta(1, {"text": "!"}),
        _block_stop(1),
        _delta(1, {"text": "late"}),
        _tool_start(2),
        _delta(2, {"toolUse": {"input": '{"a"'}}),
        _delta(2, {"toolUse": {"input": ""}}),
        _delta(2, {"text": "misplaced"}),
        _delta(2, {"toolUse": {"input": ": 1}"}}),
        _block_stop(2),
        _delta(3, {"toolUse": {"input": "{}"}}),
        _block_stop(3),
        {"messageStop": {"stopReason": "tool_use"}},
        META,
    ),
    "interleaved": sse(
        START,
        _tool_start(1),
        *[
            delta
            for i in range(3)
            for delta in (
                _delta(0, {"text": f"t{i} "}),
                _delta(1, {"toolUse": {"input": "[" if i == 0 else "1," if i == 1 else "2]"}}),
                _delta(2, {"reasoningContent": {"text": f"r{i} "}}),
            )
        ],
        _block_stop(2),
        _block_stop(0),
        _block_stop(1),
        STOP,
        META,
    ),
    # Parts that change owner under the typed path (a plain fold keeps each
    # block's sink while the accumulator's epoch holds): two text blocks and two
    # reasoning blocks that take turns, each turn a new part; reasoning that a
    # tool call ends while its block is open, then resumes as a new part.
    "owners": sse(
        START,
        *[
            _delta(index, {"text": f"{index}.{i} "})
            if index < 2
            else _delta(index, {"reasoningContent": {"text": f"{index}.{i} "}})
            for i in range(3)
            for index in (0, 0, 1, 1, 2, 2, 3, 3, 0)
        ],
        _tool_start(4),
        _delta(3, {"reasoningContent": {"text": "after the call"}}),
        _delta(4, {"toolUse": {"input": "{}"}}),
        _delta(3, {"reasoningContent": {"text": " and more"}}),
        *[_block_stop(i) for i in range(5)],
        {"messageStop": {"stopReason": "tool_use"}},
        META,
    ),
    # A call's arguments sink (kept from its second piece in a row): a call
    # that the next one's start ended (its JSON whole), whose late piece the
    # accumulator warns about; calls that take turns.
    "calls": sse(
        START,
        _tool_start(0),
        *[_delta(0, {"toolUse": {"input": piece}}) for piece in ("{", '"a": 1', "}")],
        _tool_start(1),
        _delta(0, {"toolUse": {"input": " late"}}),
        *[
            _delta(index, {"toolUse": {"input": piece}})
            for index, piece in ((1, "["), (1, "1"), (2, "{"), (1, ", 2"), (1, "]"))
        ],
        *[_block_stop(i) for i in range(3)],
        {"messageStop": {"stopReason": "tool_use"}},
        META,
    ),
}


def _named(stream: bytes) -> bytes:
    # The same members named, their bare values as data (as a source names them).
    return b"".join(
        f"event: {name}\ndata: {json.dumps(value)}\n\n".encode() for name, value in members(stream)
    )


def _converse_typed_sources() -> list[Any]:
    out = []
    for name, data in CONVERSE_TYPED_STREAMS.items():
        out.append(pytest.param(data, id=name))
        out.append(pytest.param(frames(data), id=f"{name}-frames"))
        out.append(pytest.param(_named(data), id=f"{name}-named"))
    for param in fixtures(CONVERSE):
        out.append(pytest.param(param.values[0].read_bytes(), id=param.id))
        out.append(pytest.param(frames(param.values[0].read_bytes()), id=f"{param.id}-frames"))
    for param in corpus_files("other"):
        if param.id.startswith("amazon-bedrock__"):
            out.append(pytest.param(frames(param.values[0].read_bytes()), id=param.id))
    return out


@pytest.mark.parametrize("data", _converse_typed_sources())
def test_the_converse_typed_path_folds_as_the_dict_path(data: bytes) -> None:
    assert_same_as_dict_path(data, BedrockConverse)


@pytest.mark.parametrize(
    ("name", "taken", "refused"),
    [
        pytest.param("kinds", 7, 10, id="kinds"),
        pytest.param("interleaved", 7, 2, id="interleaved"),
        pytest.param("owners", 26, 4, id="owners"),
        pytest.param("calls", 8, 1, id="calls"),
    ],
)
def test_the_converse_typed_streams_reach_each_rule(name: str, taken: int, refused: int) -> None:
    events = EventStreamDecoder(1 << 20).feed(frames(CONVERSE_TYPED_STREAMS[name]))
    counts = typed_path_counts(
        BedrockConverse(fold_module.Accumulator()), events, ("contentBlockDelta",)
    )
    assert counts == {True: taken, False: refused}


def _chunk(payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"chunk": {"bytes": base64.b64encode(json.dumps(payload).encode()).decode(), **extra}}


def _anthropic_events() -> list[dict[str, Any]]:
    start = {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "c"}
    text = {"type": "content_block_delta", "index": 0}
    return [
        {"type": "message_start", "message": {**start, "usage": {"input_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {**text, "delta": {"type": "text_delta", "text": "Hi"}},
        {**text, "delta": {"type": "thinking_delta", "thinking": "misplaced"}},
        {**text, "delta": {"type": "text_delta", "text": " there"}},
        {"type": "content_block_stop", "index": 0},
        {**text, "delta": {"type": "text_delta", "text": "late"}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}},
        {"type": "message_stop"},
    ]


# Invoke streams that reach each rule of the chunk's typed path: padding, the
# bytes as JSON text, bytes that are not base64, a chunk with another field.
INVOKE_TYPED_STREAMS = {
    "chunks": sse(*[_chunk(event, p="abcd") for event in _anthropic_events()]),
    "odd-chunks": sse(
        *[_chunk(event) for event in _anthropic_events()[:3]],
        {"chunk": {"bytes": json.dumps(_anthropic_events()[4])}},
        {"chunk": {"bytes": "not base64!"}},
        {**_chunk(_anthropic_events()[4]), "p": "xyz"},
        {"chunk": {**_chunk(_anthropic_events()[4])["chunk"], "other": 1}},
        *[_chunk(event) for event in _anthropic_events()[5:]],
    ),
}


def _invoke_typed_sources() -> list[Any]:
    out = []
    for name, data in INVOKE_TYPED_STREAMS.items():
        out.append(pytest.param(data, id=name))
        out.append(pytest.param(frames(data), id=f"{name}-frames"))
        out.append(pytest.param(_named(data), id=f"{name}-named"))
    for param in fixtures(INVOKE):
        out.append(pytest.param(param.values[0].read_bytes(), id=param.id))
        out.append(pytest.param(frames(param.values[0].read_bytes()), id=f"{param.id}-frames"))
    return out


@pytest.mark.parametrize("data", _invoke_typed_sources())
def test_the_invoke_typed_path_folds_as_the_dict_path(data: bytes) -> None:
    assert_same_as_dict_path(data, BedrockAnthropic)


# Named too: the typed path takes named members only (wrapped ones are handle's).
test_hostile_converse_streams_fold_as_the_dict_path = hostile_test(
    BedrockConverse,
    [
        *CONVERSE_TYPED_STREAMS.values(),
        *map(_named, CONVERSE_TYPED_STREAMS.values()),
        *(p.values[0] for p in fixtures(CONVERSE)),
    ],
)
test_hostile_invoke_streams_fold_as_the_dict_path = hostile_test(
    BedrockAnthropic,
    [*INVOKE_TYPED_STREAMS.values(), *(p.values[0] for p in fixtures(INVOKE))],
)
