"""Encoders: every recording of every dialect, encoded to every target and folded
back, gives the same unified view as folding the original, except the losses
``docs/encode.md`` documents, each a named function below that says what the
target does with what it cannot carry. The bytes depend only on the events.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamfold import StreamParser, UsageError
from streamfold import events as ev
from streamfold.dialects.anthropic import SERVER_TOOL_KINDS
from streamfold.encode import ENCODERS, Encoder, GeminiEncoder, get
from streamfold.parser import Phase

from ..corpus import CORPUS, FIXTURES, ROOT, bytewise, cut

SAMPLES = ROOT / "src" / "streamfold" / "samples"


def recordings() -> list[Path]:
    paths = [
        *sorted((ROOT / "examples").glob("*.sse")),
        *sorted(SAMPLES.glob("*.sse")),
        *sorted(FIXTURES.glob("**/*.sse")),
        FIXTURES / "gemini" / "array.json",
    ]
    if CORPUS.is_dir():
        paths += [p for p in sorted(CORPUS.glob("*.sse")) if p.name.split("__")[1] != "other"]
    return paths


def _id(path: Path) -> str:
    return path.stem if path.parent == CORPUS else f"{path.parent.name}/{path.name}"


PATHS = recordings()
RECORDINGS = [pytest.param(p, id=_id(p)) for p in PATHS]
# Gemini twice: server-sent events and the JSON array.
TARGETS = [*ENCODERS, "gemini-array"]


def encoder(target: str) -> Encoder:
    if target == "gemini-array":
        return GeminiEncoder(json_array=True)
    return get(target)()


def fold(data: bytes | list[bytes]) -> tuple[list[ev.Event], StreamParser]:
    parser = StreamParser()
    events: list[ev.Event] = []
    for piece in [data] if isinstance(data, bytes) else data:
        events += parser.feed(piece)
    events += parser.close()
    return events, parser


def encode(events: list[ev.Event], target: str) -> bytes:
    out = encoder(target)
    return out.encode_all(events) + out.close()


# -- what is compared ---------------------------------------------------------------------


def view(parser: StreamParser) -> dict[str, Any]:
    unified = parser.snapshot.unified
    usage = unified.usage
    error = unified.error
    return {
        "text": unified.text,
        "reasoning": unified.reasoning,
        "refusal": unified.refusal,
        "tool_calls": [(c.id, c.name, c.arguments) for c in unified.tool_calls],
        "finish_reason": unified.finish_reason,
        "usage": None
        if usage is None
        else {
            "input": usage.input_tokens,
            "output": usage.output_tokens,
            "total": usage.total_tokens,
            "cache_read": usage.cache_read_tokens,
            "cache_write": usage.cache_write_tokens,
            "reasoning": usage.reasoning_tokens,
        },
        "error": None if error is None else error.type,
    }


# -- the documented losses (docs/encode.md), each applied to the expected view ------------

Loss = Callable[[dict[str, Any], list[ev.Event]], None]


def failed_stream_has_no_finish_event(expected: dict[str, Any], events: list[ev.Event]) -> None:
    """A failed stream's finish reason (a chunk with a finish reason, then an
    error) is in the fold but in no event: the encoded stream has none."""
    if expected["error"] is not None:
        expected["finish_reason"] = None


def protocol_error_becomes_provider_error(expected: dict[str, Any], _: list[ev.Event]) -> None:
    """A malformed source stream is re-encoded as the target's in-band error."""
    if expected["error"] == "protocol_error":
        expected["error"] = "provider_error"


def first_choice_only(expected: dict[str, Any], _: list[ev.Event]) -> None:
    """Targets with one output carry the first choice: the unified view is of it."""


def server_tool_calls_dropped(expected: dict[str, Any], _: list[ev.Event]) -> None:
    """Calls the provider ran itself (and their results, kept only as unknown
    events) are not written: the unified view never lists them."""


def calls_the_backend_ran_are_calls(expected: dict[str, Any], events: list[ev.Event]) -> None:
    """A UI message stream's tool call that its backend ran (a tool output
    followed) leaves the unified view, but no event says so: it is written as
    a call."""
    ran = {
        e.raw.get("toolCallId")
        for e in events
        if isinstance(e, ev.Unknown) and (e.event or "").startswith("tool-output-")
    }
    if not ran:
        return
    first = _first_choice(events)
    expected["tool_calls"] = [
        (e.id, e.name, e.arguments)
        for e in events
        if isinstance(e, ev.ToolCallDone) and e.choice == first
    ]


def refusal_becomes_text(expected: dict[str, Any], events: list[ev.Event]) -> None:
    """No refusal part: a refusal is answer text, in the order of the parts."""
    if not expected["refusal"]:
        return
    first = _first_choice(events)
    expected["text"] = "".join(
        e.text for e in events if isinstance(e, (ev.TextDone, ev.RefusalDone)) and e.choice == first
    )
    expected["refusal"] = ""


def empty_arguments_become_an_object(expected: dict[str, Any], _: list[ev.Event]) -> None:
    """Empty arguments are sent as the object they mean: ``{}``."""
    expected["tool_calls"] = [
        (i, n, "{}" if not a.strip() else a) for i, n, a in expected["tool_calls"]
    ]


def free_text_input_as_an_object(expected: dict[str, Any], events: list[ev.Event]) -> None:
    """A tool_use input is a JSON object: a custom tool's free-text input is
    sent as ``{"input": "..."}``."""
    first = _first_choice(events)
    free = {
        e.index
        for e in events
        if isinstance(e, ev.ToolCallStarted) and e.choice == first and e.kind == "custom"
    }
    if not free:
        return
    started = [
        e
        for e in events
        if isinstance(e, ev.ToolCallStarted)
        and e.choice == first
        and e.kind not in SERVER_TOOL_KINDS
    ]
    calls = []
    for event, (call_id, name, arguments) in zip(started, expected["tool_calls"], strict=False):
        if event.index in free:
            arguments = json.dumps({"input": arguments}, ensure_ascii=False, separators=(",", ":"))
        calls.append((call_id, name, arguments))
    expected["tool_calls"] = calls


def ids_made_where_required(prefix: str, width: int) -> Loss:
    def made(expected: dict[str, Any], _: list[ev.Event]) -> None:
        count = 0
        calls = []
        for call_id, name, arguments in expected["tool_calls"]:
            if call_id is None:
                call_id = f"{prefix}{count:0{width}d}"
                count += 1
            calls.append((call_id, name, arguments))
        expected["tool_calls"] = calls

    made.__doc__ = (
        f"The target requires a call id: a call without one gets {prefix}N (the events "
        "have none to give)."
    )
    made.__name__ = "ids_made_where_required"
    return made


def required_usage_counts(expected: dict[str, Any], events: list[ev.Event]) -> None:
    """Anthropic requires input and output counts: unknown ones are 0, the
    total is input plus output (it has no field of its own), and a stream
    that began reports usage even when its source did not."""
    usage = expected["usage"]
    began = any(isinstance(e, ev.ResponseStarted) for e in events)
    if usage is None:
        if not began:
            return
        usage = dict.fromkeys(("cache_read", "cache_write", "reasoning"))
    usage["input"] = usage.get("input") or 0
    usage["output"] = usage.get("output") or 0
    usage["total"] = usage["input"] + usage["output"]
    expected["usage"] = usage


def output_counts_reasoning(expected: dict[str, Any], _: list[ev.Event]) -> None:
    """Gemini's output is candidates plus thoughts: an output count below the
    reasoning count (xAI, OpenRouter count reasoning apart) reads as the
    reasoning count; cache writes have no field."""
    usage = expected["usage"]
    if usage is None:
        return
    reasoning = usage["reasoning"]
    if reasoning is not None:
        usage["output"] = max(usage["output"] or 0, reasoning)
    usage["cache_write"] = None


def arguments_as_json_values(expected: dict[str, Any], events: list[ev.Event]) -> None:
    """Gemini sends whole calls with ``args`` an object (re-serialised by the
    reader), a value that is not an object wrapped as ``{"input": ...}``; a call
    cut short is not sent."""
    first = _first_choice(events)
    started = [
        e.index
        for e in events
        if isinstance(e, ev.ToolCallStarted)
        and e.choice == first
        and e.kind not in SERVER_TOOL_KINDS
    ]
    done = {
        e.index: e
        for e in events
        if isinstance(e, ev.ToolCallDone) and e.choice == first and e.complete
    }
    calls = []
    for index, (call_id, name, _) in zip(started, expected["tool_calls"], strict=False):
        event = done.get(index)
        if event is None:
            continue
        value = event.value if event.parse_error is None else event.arguments
        value = value if isinstance(value, dict) else {"input": value}
        calls.append((call_id, name, json.dumps(value, ensure_ascii=False)))
    expected["tool_calls"] = calls


def finish_from_output(expected: dict[str, Any], events: list[ev.Event]) -> None:
    """The target's finish is its output's: a finished turn reads as tool_calls
    when it made calls, else stop; a reason it has no word for reads as other."""
    finish = expected["finish_reason"]
    if expected["error"] is not None:
        return
    if finish in (None, "stop", "tool_calls") and _finished(events):
        expected["finish_reason"] = "tool_calls" if expected["tool_calls"] else "stop"
    elif finish == "error":
        expected["finish_reason"] = "other"


def error_finish_has_no_word(expected: dict[str, Any], _: list[ev.Event]) -> None:
    """Anthropic has no stop reason for an error finish: it reads as other."""
    if expected["finish_reason"] == "error" and expected["error"] is None:
        expected["finish_reason"] = "other"


def failed_responses_read_as_error(expected: dict[str, Any], _: list[ev.Event]) -> None:
    """``response.failed`` reads with finish reason error; a cut Responses
    stream has no usage (Responses reports it only in its terminal events)."""
    if expected["error"] == "provider_error":
        expected["finish_reason"] = "error"
    if expected["error"] in ("incomplete_stream", "timeout"):
        expected["usage"] = None


def _first_choice(events: list[ev.Event]) -> int:
    for event in events:
        choice = getattr(event, "choice", None)
        if choice is not None and not isinstance(event, ev.ResponseStarted):
            return int(choice)
    return 0


def _finished(events: list[ev.Event]) -> bool:
    return any(isinstance(e, ev.ResponseFinished) for e in events)


COMMON: list[Loss] = [
    calls_the_backend_ran_are_calls,
    failed_stream_has_no_finish_event,
    protocol_error_becomes_provider_error,
    server_tool_calls_dropped,
]
LOSSES: dict[str, list[Loss]] = {
    "openai-chat": [*COMMON],
    "openai-responses": [
        *COMMON,
        first_choice_only,
        ids_made_where_required("call_", 1),
        finish_from_output,
        failed_responses_read_as_error,
    ],
    "anthropic": [
        *COMMON,
        first_choice_only,
        refusal_becomes_text,
        free_text_input_as_an_object,
        empty_arguments_become_an_object,
        ids_made_where_required("toolu_", 2),
        required_usage_counts,
        error_finish_has_no_word,
    ],
    "gemini": [
        *COMMON,
        refusal_becomes_text,
        arguments_as_json_values,
        output_counts_reasoning,
        finish_from_output,
    ],
    "ai-sdk-ui": [
        *COMMON,
        first_choice_only,
        refusal_becomes_text,
        empty_arguments_become_an_object,
        ids_made_where_required("call_", 1),
    ],
}
LOSSES["gemini-array"] = LOSSES["gemini"]

# Recordings whose content no target can carry, and why.
RECORDING_LOSSES = {
    "anthropic__anthropic__spliced-message-start": (
        "an intermediary spliced a retry into the stream: the fold keeps the retry "
        "alone, but the events of the abandoned attempt were already given (and "
        "encoded) before the restart was known; an encoder cannot take bytes back"
    ),
}


def expected_view(original: dict[str, Any], events: list[ev.Event], target: str) -> dict[str, Any]:
    expected: dict[str, Any] = json.loads(json.dumps(original))
    expected["tool_calls"] = [tuple(c) for c in expected["tool_calls"]]
    for loss in LOSSES[target]:
        loss(expected, events)
    return expected


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("path", RECORDINGS)
def test_folding_the_encoded_stream_gives_the_same_answer(path: Path, target: str) -> None:
    events, original = fold(path.read_bytes())
    data = encode(events, target)
    _, again = fold(data)
    dialect = "gemini" if target == "gemini-array" else target
    # (A stream that is only an error shows no dialect: every envelope looks alike.)
    assert again.snapshot.dialect in (dialect, "")
    found, expected = view(again), expected_view(view(original), events, target)
    if path.stem in RECORDING_LOSSES:
        for key in ("text", "reasoning", "tool_calls", "finish_reason"):
            found.pop(key), expected.pop(key)
    assert found == expected


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("path", RECORDINGS)
def test_a_failed_or_cut_stream_never_comes_out_complete(path: Path, target: str) -> None:
    events, original = fold(path.read_bytes())
    _, again = fold(encode(events, target))
    assert (again.phase is Phase.FINISHED) == (original.phase is Phase.FINISHED)


# -- the bytes depend on the events alone -------------------------------------------------

_SMALL = [pytest.param(p, id=_id(p)) for p in PATHS if p.stat().st_size < 8_000]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("path", _SMALL)
def test_bytes_do_not_depend_on_how_the_source_was_cut(path: Path, target: str) -> None:
    raw = path.read_bytes()
    events = fold(raw)[0]
    whole = encode(events, target)
    assert encode(fold(bytewise(raw))[0], target) == whole
    assert encode(fold(raw)[0], target) == whole  # and again: no state shared, no clock
    one = encoder(target)  # one by one: encode's own loop, not encode_all's
    assert b"".join([one.encode(e) for e in events]) + one.close() == whole


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_bytes_do_not_depend_on_random_cuts(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(PATHS))
    target = data.draw(st.sampled_from(TARGETS))
    raw = path.read_bytes()
    points = data.draw(st.lists(st.integers(0, len(raw)), max_size=12))
    assert encode(fold(cut(raw, points))[0], target) == encode(fold(raw)[0], target)


@pytest.mark.parametrize("target", TARGETS)
def test_events_fed_one_by_one_or_together_give_the_same_bytes(target: str) -> None:
    events, _ = fold((SAMPLES / "chat-parallel-tools.sse").read_bytes())
    one = encoder(target)
    pieces = b"".join(one.encode(e) for e in events) + one.close()
    assert pieces == encode(events, target)


def _long_stream(kind: str, count: int) -> Iterator[list[ev.Event]]:
    # A part or call of ``count`` fresh 5-character deltas, in the parser's
    # batches: the caller keeps none of them.
    yield [ev.ResponseStarted(id="r", model="m")]
    if kind == "call":
        yield [ev.ToolCallStarted(index=0, id="c", name="f")]
    for start in range(0, count, 20):
        if kind == "call":
            yield [
                ev.ToolCallArgumentsDelta(index=0, delta=f"{i:05d}")
                for i in range(start, start + 20)
            ]
        else:
            yield [ev.TextDelta(delta=f"{i:05d}") for i in range(start, start + 20)]


@pytest.mark.parametrize("one_by_one", [False, True], ids=["encode_all", "encode"])
@pytest.mark.parametrize("kind", ["text", "call"])
@pytest.mark.parametrize("target", TARGETS)
def test_an_encoder_holds_a_long_part_at_about_its_text_size(
    target: str, kind: str, one_by_one: bool
) -> None:
    # An encoder keeps what a part or call wrote (its end may add to it): as
    # 50,000 single strings, that would be 3 MB for 250 KB of text.
    count = 50_000
    tracemalloc.start()
    try:
        out = encoder(target)
        before = tracemalloc.get_traced_memory()[0]
        for batch in _long_stream(kind, count):
            if one_by_one:
                for event in batch:
                    out.encode(event)
            else:
                out.encode_all(batch)
            del batch
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 3 * 5 * count, f"{held:,} bytes held for {5 * count:,} of text"


# -- the interface ------------------------------------------------------------------------


def test_encode_after_close_is_a_usage_error() -> None:
    out = get("chat")()
    out.close()
    assert out.close() == b""
    with pytest.raises(UsageError):
        out.encode(ev.TextDelta(delta="x"))


def test_get_takes_ids_and_short_names() -> None:
    assert get("openai-chat") is get("chat")
    assert get("ai-sdk").dialect == "ai-sdk-ui"
    with pytest.raises(UsageError):
        get("nope")


@pytest.mark.parametrize(
    ("target", "media_type", "header"),
    [
        pytest.param("openai-chat", "text/event-stream", None, id="chat"),
        pytest.param("gemini-array", "application/json", None, id="gemini-array"),
        pytest.param("ai-sdk-ui", "text/event-stream", "v1", id="ai-sdk-ui"),
    ],
)
def test_media_type_and_headers(target: str, media_type: str, header: str | None) -> None:
    out = encoder(target)
    assert out.media_type == media_type
    assert out.headers.get("x-vercel-ai-ui-message-stream") == header


def test_an_error_before_anything_is_the_targets_error_alone() -> None:
    error = ev.ErrorOccurred(error=ev.ErrorInfo(type="provider_error", code="x", message="no"))
    for target in TARGETS:
        _, again = fold(encode([error], target))
        assert again.error is not None
        assert again.error.info.type == "provider_error", target


@pytest.mark.parametrize("target", TARGETS)
def test_a_cut_writes_no_terminal_marker(target: str) -> None:
    events, _ = fold((FIXTURES / "anthropic" / "cut.sse").read_bytes())
    data = encode(events, target)
    assert b"[DONE]" not in data
    assert b"message_stop" not in data
    assert b"response.completed" not in data
    assert b"finishReason" not in data
    assert b'"finish"' not in data
