"""Legacy OpenAI Completions (docs/dialects/openai-completions.md): text per choice,
legacy logprobs, finish reasons, usage, errors, detection apart from chat, and
the corpus.

The fixtures in tests/fixtures/openai_completions/ are written from OpenAI's
Completions reference (platform.openai.com, "Completions", the streamed
``text_completion`` object) and the chunks vLLM's ``/v1/completions`` sends.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamfold import ProviderError, StreamParser
from streamfold.dialects import detect
from streamfold.dialects.openai_chat import OpenAIChat
from streamfold.dialects.openai_completions import OpenAICompletions, legacy_logprobs_entries
from streamfold.dialects.registry import RequestParts, completions_body
from streamfold.events import LogprobsDelta, LogprobsDone
from streamfold.sse import ServerSentEvent

from ..corpus import CORPUS, FIXTURES, usage_counts
from .typed_path import assert_same_as_dict_path, hostile_test

FIXTURE_DIR = FIXTURES / "openai_completions"
PATHS = sorted(FIXTURE_DIR.glob("*.sse"))


def fold(data: bytes | list[bytes], **options: Any) -> StreamParser:
    parser = StreamParser(**options)
    for piece in [data] if isinstance(data, bytes) else data:
        parser.feed(piece)
    parser.close()
    return parser


# name -> (complete, error (type, code), unified view: text, finish, raw finish,
# usage (input, output, total, cache read, reasoning))
EXPECTED: dict[str, tuple[bool, tuple[str, str | None] | None, dict[str, Any]]] = {
    "text-usage": (
        True,
        None,
        {
            "text": "\n\nGrüße aus Köln 👋.",
            "finish_reason": "stop",
            "usage": (5, 7, 12, None, None),
        },
    ),
    "logprobs": (
        True,
        None,
        {"text": " Paris is the capital", "finish_reason": "length", "usage": None},
    ),
    "two-choices": (True, None, {"text": "Red apple", "finish_reason": "stop"}),
    "vllm": (
        True,
        None,
        {
            "text": "def fib(n):\n    return n",
            "finish_reason": "stop",
            "usage": (9, 8, 17, None, None),
        },
    ),
    "error-midstream": (
        False,
        ("provider_error", "server_error"),
        {"text": "Once upon a time", "finish_reason": None},
    ),
    "cut": (False, ("incomplete_stream", None), {"text": "The stream stops here"}),
}


def test_every_fixture_has_its_expectation() -> None:
    assert sorted(p.stem for p in PATHS) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_folds_to(name: str) -> None:
    complete, error, unified = EXPECTED[name]
    result = fold((FIXTURE_DIR / f"{name}.sse").read_bytes()).snapshot
    assert result.dialect == "openai-completions"
    assert result.complete is complete
    assert (None if result.error is None else (result.error.type, result.error.code)) == error
    found = result.unified.to_dict()
    found["usage"] = usage_counts(found["usage"])
    assert (found["reasoning"], found["refusal"], found["tool_calls"]) == ("", "", [])
    for key, value in unified.items():
        assert found[key] == value, key


def test_the_native_response_is_a_text_completion() -> None:
    response = fold((FIXTURE_DIR / "text-usage.sse").read_bytes()).final().response
    assert response == {
        "id": "cmpl-fixture1",
        "object": "text_completion",
        "created": 1770934485,
        "model": "gpt-3.5-turbo-instruct",
        "system_fingerprint": "fp_legacy1",
        "choices": [
            {
                "text": "\n\nGrüße aus Köln 👋.",
                "index": 0,
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }


def test_every_choice_is_kept_with_its_own_finish() -> None:
    response = fold((FIXTURE_DIR / "two-choices.sse").read_bytes()).final().response
    assert [(c["index"], c["text"], c["finish_reason"]) for c in response["choices"]] == [
        (0, "Red apple", "stop"),
        (1, "Blue sky today", "length"),
    ]


def test_provider_fields_on_a_choice_are_kept() -> None:
    choice = fold((FIXTURE_DIR / "vllm.sse").read_bytes()).final().response["choices"][0]
    assert choice["stop_reason"] == "\n\n"


def test_legacy_logprobs_keep_their_shape_and_stream_as_token_entries() -> None:
    data = (FIXTURE_DIR / "logprobs.sse").read_bytes()
    parser = StreamParser()
    events = parser.feed(data) + parser.close()
    logprobs = parser.final().response["choices"][0]["logprobs"]
    assert logprobs["tokens"] == [" Paris", " is", " the", " capital"]
    assert logprobs["text_offset"] == [23, 29, 32, 36]
    assert logprobs["top_logprobs"][1] == {" is": -0.2, ",": -2.0}
    (done,) = [e for e in events if isinstance(e, LogprobsDone)]
    assert done.content is not None
    assert done.content[1] == {
        "token": " is",
        "logprob": -0.2,
        "top_logprobs": [{"token": " is", "logprob": -0.2}, {"token": ",", "logprob": -2.0}],
        "text_offset": 29,
    }
    assert [len(e.content or ()) for e in events if isinstance(e, LogprobsDelta)] == [1, 2, 1]


def test_malformed_logprobs_are_values_of_none() -> None:
    entries = legacy_logprobs_entries(
        {
            "tokens": ["a", 7],
            "token_logprobs": [True],
            "top_logprobs": [{"a": "x"}],
            "text_offset": "0",
        }
    )
    assert entries == [
        {"token": "a", "logprob": None, "top_logprobs": [], "text_offset": None},
        {"token": "7", "logprob": None, "top_logprobs": [], "text_offset": None},
    ]
    assert legacy_logprobs_entries({"tokens": None}) == []


def test_an_in_band_error_is_a_retryable_provider_error() -> None:
    error = fold((FIXTURE_DIR / "error-midstream.sse").read_bytes()).error
    assert isinstance(error, ProviderError) and error.retryable
    assert error.partial is not None and error.partial.text == "Once upon a time"


def test_the_request_body() -> None:
    body = completions_body(RequestParts("Say hi", system="Be brief.", max_tokens=5))
    assert body == {
        "prompt": "Be brief.\n\nSay hi",
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 5,
    }
    assert completions_body(RequestParts(["a", "b"]))["prompt"] == ["a", "b"]


# -- detection: never taken for chat, nor chat for it --------------------------------------

_TEXT_CHUNK = {"id": "c", "object": "text_completion", "choices": [{"index": 0, "text": "x"}]}


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(_TEXT_CHUNK, id="object"),
        pytest.param({"id": "c", "choices": [{"index": 0, "text": "x"}]}, id="no-object"),
        pytest.param({"object": "text_completion", "choices": []}, id="usage-only"),
    ],
)
def test_detected_from_its_first_chunk(payload: dict[str, Any]) -> None:
    event = ServerSentEvent(json.dumps(payload).encode())
    assert detect(event, payload) is OpenAICompletions
    assert not OpenAIChat.detect(event, payload) or "object" not in payload


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(
            {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}}]},
            id="chat-chunk",
        ),
        pytest.param({"choices": [{"index": 0, "delta": {"content": "x"}}]}, id="chat-no-object"),
        pytest.param({"object": "chat.completion.chunk", "choices": []}, id="chat-empty"),
        pytest.param({"choices": [{"index": 0, "text": "x", "delta": {}}]}, id="both"),
    ],
)
def test_chat_chunks_stay_chat(payload: dict[str, Any]) -> None:
    event = ServerSentEvent(json.dumps(payload).encode())
    assert not OpenAICompletions.detect(event, payload)
    assert detect(event, payload) is OpenAIChat


# -- the shared recording --------------------------------------------------------------------


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"the shared corpus is absent ({CORPUS})")
def test_the_corpus_recording_folds_to_what_the_reference_says() -> None:
    result = fold((CORPUS / "openai__other__legacy-completions-text.sse").read_bytes()).final()
    assert result.dialect == "openai-completions" and result.complete
    assert result.text == 'The holiday is called "Gratitude Day" and it is a day dedicated to'
    assert (result.unified.finish_reason, result.unified.raw_finish_reason) == ("length", "length")
    assert result.usage is not None
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.total_tokens) == (
        14,
        16,
        30,
    )
    assert result.response["model"] == "gpt-3.5-turbo-instruct:20230824-v2"


# -- the typed path gives what the dict path gives ------------------------------------------

_HEAD = {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m"}


def _chunk(*choices: tuple[int, str], **fields: Any) -> dict[str, Any]:
    return {
        **_HEAD,
        "choices": [
            {"text": text, "index": index, "logprobs": None, "finish_reason": None}
            for index, text in choices
        ],
        **fields,
    }


@pytest.mark.parametrize(
    "hot",
    [
        pytest.param([_chunk((0, "a")), _chunk((0, "b"))], id="text"),
        pytest.param([_chunk((0, "a"), usage=None)], id="usage-null"),
        pytest.param([_chunk((0, ""))], id="empty"),
        pytest.param([_chunk((0, "a"), system_fingerprint=None)], id="a-null-field"),
        pytest.param(
            [_chunk((0, "a")), _chunk((0, "b"), system_fingerprint="fp_1"), _chunk((0, "c"))],
            id="a-response-field-first-sent-late",
        ),
        pytest.param(
            [_chunk((0, "a"), service_tier="default"), _chunk((0, "b"), system_fingerprint="fp")],
            id="response-fields-one-at-a-time",
        ),
        pytest.param([_chunk((0, "a"), obfuscation="xy")], id="obfuscation"),
        pytest.param([_chunk((0, "a"), obfuscation=None)], id="obfuscation-null"),
        pytest.param(
            [_chunk((0, "a")), _chunk((1, "b")), _chunk((0, "c")), _chunk((1, "d"), (0, "e"))],
            id="interleaved-choices",
        ),
        pytest.param([_chunk((0, "a")), _chunk((1, ""))], id="empty-for-another-choice"),
        pytest.param([_chunk((0, "a")), _chunk((2, "b"))], id="new-choice"),
        pytest.param(
            [
                _chunk((0, "a")),
                {
                    **_HEAD,
                    "choices": [
                        {
                            "text": "b",
                            "index": 0,
                            "logprobs": {"tokens": ["b"], "token_logprobs": [-0.1]},
                            "finish_reason": None,
                        }
                    ],
                },
                _chunk((0, "c")),
            ],
            id="a-dict-chunk-between",
        ),
        pytest.param(
            [
                {
                    **_HEAD,
                    "choices": [
                        {"text": "a", "index": 1, "logprobs": None, "finish_reason": "stop"}
                    ],
                },
                _chunk((0, "b")),
            ],
            id="after-a-finish",
        ),
    ],
)
def test_the_typed_path_folds_what_the_dict_path_folds(hot: list[dict[str, Any]]) -> None:
    # Chunks after the first two (which start the stream on the dict path):
    # the same events, response, warnings and error with the typed path as without it.
    lines = [_chunk((0, "Hi"), (1, "Yo")), _chunk((0, " there")), *hot, *hot]
    last = {**_HEAD, "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}
    raw = b"".join(b"data: " + json.dumps(chunk).encode() + b"\n\n" for chunk in lines)
    assert_same_as_dict_path(
        raw + b"data: " + json.dumps(last).encode() + b"\n\n", OpenAICompletions
    )
    assert_same_as_dict_path(raw, OpenAICompletions)


test_the_typed_path_folds_hostile_input_as_the_dict_path = hostile_test(OpenAICompletions, PATHS)
