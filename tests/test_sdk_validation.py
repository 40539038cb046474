"""The final response drops into code written for non-streaming calls: it validates
against the official SDK's non-streaming model (``openai`` ``ChatCompletion`` and
``Response``, ``anthropic`` ``Message``, ``google-genai``
``GenerateContentResponse``) wherever the provider's own response does.

On the pairs of ``../shared/pairs`` the provider's own non-streaming response is
validated too: the fold may fail only where it fails (the SDKs lag the APIs),
and each such failure is named below. On the recordings without a pair (the
corpus, the in-repo fixtures, the examples) the fold must validate, with each
exception named.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pydantic
import pytest
from anthropic.types import Message
from google.genai.types import GenerateContentResponse
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from streamfold import ProtocolError

from .corpus import CORPUS, FIXTURES, ROOT, fold_pieces, pair_files

MODELS: dict[str, type[pydantic.BaseModel]] = {
    "openai-chat": ChatCompletion,
    "openai-responses": Response,
    "anthropic": Message,
    "gemini": GenerateContentResponse,
}


def sdk_errors(dialect: str, response: dict[str, Any]) -> set[str]:
    """Where the SDK's model rejects ``response``: one location per error, list
    indexes as ``*``, a union's members folded into ``<union>``."""
    try:
        MODELS[dialect].model_validate(response)
    except pydantic.ValidationError as exc:
        found = set()
        for error in exc.errors():
            parts = []
            for step in error["loc"]:
                if isinstance(step, int):
                    parts.append("*")
                elif step[:1].isupper() or "[" in step:  # a member of a union
                    parts.append("<union>")
                    break
                else:
                    parts.append(step)
            found.add(".".join(parts))
        return found
    return set()


#: Where the SDKs reject the providers' own non-streaming responses (checked on
#: the pairs): a fold may fail there too.
SDK_LAG = {
    "service_tier": "openai's Literal has no Groq `on_demand` nor OpenRouter `provisioned`",
    "usageMetadata.serviceTier": "google-genai's UsageMetadata has no serviceTier (no extras)",
    "usage.input_tokens_details.cache_write_tokens": (
        "openai's Response requires it; OpenAI's and xAI's own responses do not send it"
    ),
}


@pytest.mark.parametrize(("sse", "provider"), pair_files())
def test_the_fold_validates_wherever_the_providers_own_response_does(
    sse: Path, provider: str
) -> None:
    _, result, error = fold_pieces([sse.read_bytes()])
    if isinstance(error, ProtocolError) or result is None or result.dialect not in MODELS:
        pytest.skip(f"no SDK model for this stream ({provider})")
    native = json.loads(sse.with_suffix(".json").read_text(encoding="utf-8"))
    theirs = sdk_errors(result.dialect, native)
    assert sorted(theirs - SDK_LAG.keys()) == []  # each rejection of theirs is named
    assert sorted(sdk_errors(result.dialect, result.response) - theirs) == []


#: Recordings without a pair whose fold the SDK rejects, by file name, with why.
RECORDED: dict[str, dict[str, str]] = {
    "anthropic__anthropic__mcp-tool-use.sse": {
        "content.*.<union>": "anthropic's Message has no MCP blocks (beta types only)",
    },
    "openai__responses__phase-commentary.sse": dict.fromkeys(
        ("parallel_tool_calls", "tool_choice", "tools"),
        "the recording's response objects omit them",
    ),
    "openai__responses__stream-error-event.sse": dict.fromkeys(
        ("created_at", "model", "parallel_tool_calls", "tool_choice", "tools"),
        "the handwritten response.created omits them, and the stream fails before any other",
    ),
    "openai__responses__stream-failed-event.sse": dict.fromkeys(
        ("created_at", "model", "parallel_tool_calls", "tool_choice", "tools"),
        "the handwritten response.created omits them, and the stream fails before any other",
    ),
    "snowflake__chat__empty-id-created-zero.sse": {
        "choices.*.finish_reason": "Snowflake sends no finish reason: null",
    },
    "snowflake__chat__thinking.sse": {
        "choices.*.finish_reason": "Snowflake sends no finish reason: null",
    },
    "xai__responses__web-search-citations.sse": {
        "output.*.<union>": "xAI's web_search_call item (arguments, call_id, name) is not OpenAI's",
    },
}
#: A partial (the stream failed or was cut) has choices without a finish reason.
PARTIAL = {"choices.*.finish_reason": "a partial's choice has no finish reason yet"}

RECORDINGS = [
    *(sorted(CORPUS.glob("*.sse")) if CORPUS.is_dir() else []),
    *sorted(FIXTURES.glob("*/*.sse")),
    *sorted((ROOT / "examples").glob("*.sse")),
    *sorted((ROOT / "src" / "streamfold" / "samples").glob("*.sse")),
]


@pytest.mark.parametrize(
    "path", [pytest.param(path, id=f"{path.parent.name}/{path.name}") for path in RECORDINGS]
)
def test_the_fold_of_a_recording_validates(path: Path) -> None:
    _, result, error = fold_pieces([path.read_bytes()])
    if result is None or result.dialect not in MODELS:
        pytest.skip("no SDK model for this dialect")
    allowed: dict[str, Any] = {
        **RECORDED.get(path.name, {}),
        **(PARTIAL if error is not None else {}),
    }
    allowed |= dict.fromkeys(SDK_LAG)
    assert sorted(sdk_errors(result.dialect, result.response) - allowed.keys()) == []


def test_every_named_recording_still_fails_there() -> None:
    """The table above stays true: a fix that makes a recording validate removes it."""
    for name, paths in RECORDED.items():
        path = CORPUS / name
        if not path.exists():
            pytest.skip("the shared corpus is absent")
        _, result, _ = fold_pieces([path.read_bytes()])
        assert result is not None
        assert sdk_errors(result.dialect, result.response) >= paths.keys(), name
