"""The official consumers accept what the encoders write: every recording of
every dialect, encoded to Chat Completions, Responses and Anthropic Messages,
is folded by the ``openai`` package's stream states and the ``anthropic``
package's message stream (driven as the differential tests of those dialects
drive them), and they fold it to what streamfold folds it to.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streamfold import events as ev
from streamfold.fold import PartKind

from ..dialects.test_anthropic import differences, sdk_message, without_nulls
from ..dialects.test_openai_chat_differential import sdk_fold, view_of_ours, view_of_sdk
from ..dialects.test_openai_responses import TERMINAL, _strip
from .test_encode import RECORDINGS, encode, fold

pytest.importorskip("openai")
pytest.importorskip("anthropic")


def _encoded(path: Path, target: str) -> tuple[bytes, Any]:
    events, _ = fold(path.read_bytes())
    data = encode(events, target)
    _, ours = fold(data)
    return data, ours


def _calls_done(path: Path) -> list[ev.ToolCallDone]:
    events, _ = fold(path.read_bytes())
    return [e for e in events if isinstance(e, ev.ToolCallDone)]


def _only_error(data: bytes) -> bool:
    return data.startswith(b'data: {"error"') or data.startswith(b"event: error")


@pytest.mark.parametrize("path", RECORDINGS)
def test_the_openai_chat_stream_state_folds_the_encoded_chat_stream(path: Path) -> None:
    data, ours = _encoded(path, "openai-chat")
    if _only_error(data):
        return  # the SDK's Stream raises on the error chunk; no completion to compare
    theirs = sdk_fold(data)
    assert view_of_sdk(theirs) == view_of_ours(ours.snapshot.response)
    # The SDK keeps unknown delta fields: the reasoning arrives as it was sent.
    for choice in theirs.choices:
        ours_choice = ours.acc.choices[choice.index]
        reasoning = getattr(choice.message, "reasoning_content", None) or ""
        assert reasoning == (ours_choice.joined(PartKind.REASONING) or "")


def sdk_responses(data: bytes) -> tuple[Any, str | None]:
    """The openai package's ResponseStreamState over every event, as its Stream
    hands them over: the final Response, or why there is none."""
    sdk = pytest.importorskip("openai.lib.streaming.responses._responses")
    omit = pytest.importorskip("openai").omit
    models = pytest.importorskip("openai._models")
    types = pytest.importorskip("openai.types.responses")
    from streamfold.sse import SSEDecoder

    decoder = SSEDecoder()
    state = sdk.ResponseStreamState(input_tools=omit, text_format=omit)
    last = None
    for sse_event in decoder.feed(data) + decoder.close():
        payload = json.loads(sse_event.data)
        event = models.construct_type(type_=types.ResponseStreamEvent, value=payload)
        state.handle_event(event)  # raises RuntimeError on an event out of place
        last = payload["type"]
    final = state._completed_response
    return final, None if final is not None else f"ended with {last}"


@pytest.mark.parametrize("path", RECORDINGS)
def test_the_openai_responses_stream_state_folds_the_encoded_responses_stream(
    path: Path,
) -> None:
    data, ours = _encoded(path, "openai-responses")
    final, why = sdk_responses(data)
    if final is None:
        # response.incomplete or response.failed (the SDK gives no final
        # Response for them), or a cut stream: every event was accepted.
        assert ours.snapshot.response.get("status") != "completed", why
        return
    response = ours.snapshot.response
    assert _strip(final.to_dict()) == response
    assert ours.snapshot.unified.text == final.output_text
    assert TERMINAL[0].encode() in data


# A call cut mid-string: the SDK parses the partial input with jiter's
# partial_mode=True, which drops the unfinished string; we keep what came.
_CUT_STRING = "a tool call cut mid-string: jiter's partial mode drops the unfinished string"


def _cut_string_paths(found: set[str]) -> bool:
    return all(p.startswith("content.") and ".input" in p for p in found)


@pytest.mark.parametrize("accumulator", ["ga", "beta"])
@pytest.mark.parametrize("path", RECORDINGS)
def test_the_anthropic_message_stream_folds_the_encoded_anthropic_stream(
    path: Path, accumulator: str
) -> None:
    data, ours = _encoded(path, "anthropic")
    if _only_error(data):
        return  # no message_start: the SDK raises before any snapshot
    if any(c.parse_error is not None and c.complete for c in _calls_done(path)):
        # Arguments that are not JSON are sent as they came: the SDK refuses
        # them as it would Anthropic's own (streamfold reads a parse error).
        with pytest.raises(ValueError, match="Unable to parse tool parameter JSON"):
            sdk_message(data, accumulator)
        return
    theirs = sdk_message(data, accumulator)
    found = differences(without_nulls(ours.snapshot.response), without_nulls(theirs))
    if found:
        # Only a call cut short may differ, and only inside its input.
        cut_calls = [c for c in ours.snapshot.unified.tool_calls if not c.complete]
        assert cut_calls and _cut_string_paths(found), (found, _CUT_STRING)
