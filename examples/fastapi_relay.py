"""A FastAPI backend that streams any provider to the browser, and a gateway.

Two endpoints, each a few lines over streamfold's live client
(``streamfold.astream``) and ``EncodedStreamResponse``
(``streamfold.adapters.asgi``), which re-encodes the events, sends keep-alive
comments while the provider is silent, and closes the provider's stream when
the browser goes away (a closed tab, ``useChat``'s ``stop()``):

- ``POST /api/chat``: what the Vercel AI SDK's ``useChat`` posts to (its
  default transport). It calls the API named by ``?api=`` (``chat``,
  ``responses``, ``anthropic``, ``gemini``) with the model ``?model=`` and
  relays the answer as the AI SDK's UI message stream, whatever the provider.
- ``POST /v1/chat/completions``: an OpenAI-compatible gateway in front of
  Anthropic: a streamed Chat Completions request in, Anthropic's Messages API
  called, Chat Completions chunks out, for any OpenAI client.

Run it against the providers (the keys from OPENAI_API_KEY, ANTHROPIC_API_KEY,
GEMINI_API_KEY)::

    pip install 'streamfold[http,server]' fastapi
    uvicorn fastapi_relay:app --app-dir examples --port 3001

or against the replay server, with no key and no network::

    streamfold serve --port 8000 &
    UPSTREAM_BASE_URL=http://127.0.0.1:8000 uvicorn fastapi_relay:app --app-dir examples --port 3001
    curl -N -X POST 'localhost:3001/api/chat?api=anthropic&model=anthropic-thinking' \\
        -H 'content-type: application/json' \\
        -d '{"messages": [{"id": "1", "role": "user", "parts": [{"type": "text", "text": "Hi"}]}]}'

The front end (React)::

    const { messages, sendMessage } = useChat({
      transport: new DefaultChatTransport({ api: '/api/chat?api=anthropic' }),
    });

Only text is carried from the request here: turning a UI message's files and
tool results, or OpenAI tool definitions, into another API's shape is the
application's (``streamfold.astream`` sends messages and tools as given).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Request

import streamfold
from streamfold.adapters.asgi import EncodedStreamResponse
from streamfold.adapters.client import APIKey
from streamfold.dialects.registry import get_api
from streamfold.errors import UsageError

#: The model each API is called with when the request names none.
DEFAULT_MODELS = {
    "openai-chat": "gpt-4o-mini",
    "openai-responses": "gpt-4o-mini",
    "anthropic": "claude-sonnet-4-5",
    "gemini": "gemini-2.5-flash",
}


def create_app(*, base_url: str | None = None, api_key: str | APIKey | None = None) -> FastAPI:
    """The application.

    Args:
        base_url: where every API is called (a replay server, a proxy); each
            API's own URL when ``None``.
        api_key: the key to send; each API's environment variable when ``None``.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One connection pool for every upstream request.
        async with httpx.AsyncClient() as client:
            app.state.http = client
            yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/api/chat")
    async def chat(
        request: Request, api: str = "chat", model: str | None = None
    ) -> EncodedStreamResponse:
        try:
            api = get_api(api).id
        except UsageError as exc:
            raise HTTPException(400, str(exc)) from None
        body = await request.json()
        system, turns = _turns(
            (m.get("role"), _text(m.get("parts")))
            for m in body.get("messages", [])
            if isinstance(m, dict)
        )
        upstream = streamfold.astream(
            _messages(api, turns),
            model=model or DEFAULT_MODELS.get(api, ""),
            api=api,
            system=system,
            base_url=base_url,
            api_key=api_key,
            http_client=request.app.state.http,
        )
        return EncodedStreamResponse(upstream, "ai-sdk-ui")

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> EncodedStreamResponse:
        body = await request.json()
        if body.get("stream") is not True:
            raise HTTPException(400, "this gateway only streams: send stream: true")
        system, turns = _turns(
            (m.get("role"), _text(m.get("content")))
            for m in body.get("messages", [])
            if isinstance(m, dict)
        )
        upstream = streamfold.astream(
            _messages("anthropic", turns),
            model=body.get("model") or DEFAULT_MODELS["anthropic"],
            api="anthropic",
            system=system,
            max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
            base_url=base_url,
            api_key=api_key,
            http_client=request.app.state.http,
        )
        return EncodedStreamResponse(upstream, "openai-chat")

    return app


def _text(content: Any) -> str:
    """The text of a message's content: a string, or a list of parts whose
    text parts count (a UI message's ``parts``, Chat Completions' content parts:
    both ``{"type": "text", "text": ...}``)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "".join(
        part["text"]
        for part in content
        if isinstance(part, dict)
        and part.get("type") == "text"
        and isinstance(part.get("text"), str)
    )


def _turns(messages: Any) -> tuple[str | None, list[tuple[str, str]]]:
    """The system prompt (system and developer messages, joined) and the
    user and assistant turns, as (role, text)."""
    system: list[str] = []
    turns: list[tuple[str, str]] = []
    for role, text in messages:
        if role in ("system", "developer"):
            system.append(text)
        elif role in ("user", "assistant") and text:
            turns.append((role, text))
    return ("\n\n".join(system) or None), turns


def _messages(api: str, turns: list[tuple[str, str]]) -> str | list[dict[str, Any]]:
    """The turns in ``api``'s own message shape."""
    if api == "gemini":
        return [
            {"role": "model" if role == "assistant" else "user", "parts": [{"text": text}]}
            for role, text in turns
        ]
    if api == "bedrock-converse":
        return [{"role": role, "content": [{"text": text}]} for role, text in turns]
    if api == "ollama-generate":
        # /api/generate takes one prompt, not a conversation: the last turn.
        return turns[-1][1] if turns else ""
    # Chat Completions, Anthropic Messages and the Responses API's input all
    # take {"role", "content"} with text content.
    return [{"role": role, "content": text} for role, text in turns]


app = create_app(base_url=os.environ.get("UPSTREAM_BASE_URL"))
