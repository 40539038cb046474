"""Sample recordings shipped with streamfold, written by the project from the
providers' documented streaming formats (no third-party capture).

They feed ``streamfold demo`` and are the replay server's default recordings;
each is selected by its name (as the model name, or the
``X-Streamfold-Recording`` header).

=========================  ==========  ==========================================
name                       API         what it shows
=========================  ==========  ==========================================
chat-reasoning             chat        DeepSeek-style ``reasoning_content``, then
                                       text with multi-byte characters; usage
chat-parallel-tools        chat        OpenAI: two tool calls filling in, usage
                                       in a final chunk with no choices
chat-midstream-error       chat        OpenRouter: text, then an ``error`` chunk
                                       with ``finish_reason: "error"``
anthropic-thinking         anthropic   Messages: a thinking block with its
                                       signature, then text
responses-parallel-tools   responses   Responses: two ``function_call`` items
gemini-thinking            gemini      ``alt=sse`` (CRLF): a thought summary part,
                                       then text
interactions-thinking      gemini-     Gemini Interactions API: a thought step
                           interactions  (summary, signature), then a model output
cohere-tools               cohere      Cohere v2 chat: the tool plan, then two
                                       tool calls filling in
completions-text           completions legacy Completions: ``text_completion``
                                       chunks, usage in a last chunk
bedrock-tools              bedrock     ConverseStream (served as AWS event-stream
                                       frames): signed reasoning, text, a tool call
bedrock-claude-thinking    bedrock-    Claude on InvokeModelWithResponseStream:
                           claude      ``chunk`` frames of Anthropic events
ollama-thinking            ollama-chat Ollama ``/api/chat`` (NDJSON): thinking,
                                       then the answer, the metrics last
ollama-generate-text       ollama-     Ollama ``/api/generate``: ``response``
                           generate    pieces, ``context`` and the metrics last
=========================  ==========  ==========================================
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

__all__ = ["SAMPLES", "Sample", "read"]


@dataclass(frozen=True)
class Sample:
    """A sample recording and what folding it must give.

    Attributes:
        name: the recording's name (its file is ``<name>.sse``).
        api: the API's dialect id (``"openai-chat"``, ``"openai-responses"``,
            ``"anthropic"``, ``"gemini"``, ...).
        title: one line for people.
        prompt: the prompt the demo sends (the recording does not depend on it).
        outcome: ``"complete"``, or ``"provider_error"`` when the stream ends
            in an in-band provider error.
        finish_reason: the unified finish reason a complete stream must have, or
            ``None`` to leave it unchecked (the Responses API has no finish reason
            of its own: which one a function-call turn maps to is the dialect's call).
        tool_calls: how many tool calls the result holds.
        reasoning: whether the result has reasoning text.
    """

    name: str
    api: str
    title: str
    prompt: str
    outcome: str = "complete"
    finish_reason: str | None = "stop"
    tool_calls: int = 0
    reasoning: bool = False


SAMPLES: tuple[Sample, ...] = (
    Sample(
        "chat-reasoning",
        "openai-chat",
        "Chat Completions: reasoning, then the answer",
        "Is 9.11 larger than 9.9?",
        reasoning=True,
    ),
    Sample(
        "chat-parallel-tools",
        "openai-chat",
        "Chat Completions: two tool calls in parallel",
        "What is the weather in Paris and in São Paulo?",
        finish_reason="tool_calls",
        tool_calls=2,
    ),
    Sample(
        "chat-midstream-error",
        "openai-chat",
        "Chat Completions: a provider error mid-stream",
        "Tell me the history of the Eiffel Tower.",
        outcome="provider_error",
        finish_reason=None,
    ),
    Sample(
        "anthropic-thinking",
        "anthropic",
        "Anthropic Messages: thinking, then the answer",
        "Is 9.11 larger than 9.9?",
        reasoning=True,
    ),
    Sample(
        "responses-parallel-tools",
        "openai-responses",
        "Responses: two function calls",
        "What is the weather in Paris and in São Paulo?",
        finish_reason=None,
        tool_calls=2,
    ),
    Sample(
        "gemini-thinking",
        "gemini",
        "Gemini: a thought summary, then the answer",
        "Is 9.11 larger than 9.9?",
        reasoning=True,
    ),
    Sample(
        "interactions-thinking",
        "gemini-interactions",
        "Gemini Interactions API: a thought summary, then the answer",
        "Is 9.11 larger than 9.9?",
        reasoning=True,
    ),
    Sample(
        "cohere-tools",
        "cohere-chat",
        "Cohere v2 chat: the tool plan, then two tool calls",
        "What is the weather in Paris and in São Paulo?",
        finish_reason="tool_calls",
        tool_calls=2,
        reasoning=True,
    ),
    Sample(
        "completions-text",
        "openai-completions",
        "Legacy Completions: text, then usage",
        "Is 9.11 larger than 9.9?",
    ),
    Sample(
        "bedrock-tools",
        "bedrock-converse",
        "Bedrock ConverseStream (binary frames): reasoning, text, a tool call",
        "What is the weather in Paris?",
        finish_reason="tool_calls",
        tool_calls=1,
        reasoning=True,
    ),
    Sample(
        "bedrock-claude-thinking",
        "bedrock-anthropic",
        "Claude on Bedrock: Anthropic events inside event-stream chunks",
        "Is 9.11 larger than 9.9?",
        reasoning=True,
    ),
    Sample(
        "ollama-thinking",
        "ollama",
        "Ollama /api/chat (NDJSON): thinking, then the answer",
        "Is 9.11 larger than 9.9?",
        reasoning=True,
    ),
    Sample(
        "ollama-generate-text",
        "ollama-generate",
        "Ollama /api/generate (NDJSON): the answer, then the metrics",
        "Why is the sky blue?",
    ),
)


def read(name: str) -> bytes:
    """The bytes of the sample recording ``name``.

    Raises:
        FileNotFoundError: no sample has that name.
    """
    return resources.files(__name__).joinpath(f"{name}.sse").read_bytes()
