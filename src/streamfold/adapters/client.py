"""A small client for live endpoints: send a streaming request, fold the answer.

::

    import streamfold.client as sf

    with sf.stream("Is 9.11 larger than 9.9?", model="gpt-4o-mini") as stream:
        for event in stream:
            ...
        result = stream.final()

    async with sf.astream(messages, model="claude-sonnet-4-5", api="anthropic") as stream:
        async for event in stream:
            ...

Every API of the registry (``streamfold.dialects.registry.APIS``), each with its
SDK's URL convention (``base_url`` as you would give that SDK) and its usual API
key variable; ``api`` is a dialect id or its short name:

==========================  ==================================  ============================
api                         request                             key (header; environment)
==========================  ==================================  ============================
``openai-chat`` (chat)      POST {base}/chat/completions        Bearer; OPENAI_API_KEY
``openai-responses``        POST {base}/responses               Bearer; OPENAI_API_KEY
(responses)
``anthropic``               POST {base}/v1/messages             x-api-key; ANTHROPIC_API_KEY
``gemini``                  POST {base}/{version}/models/       x-goog-api-key;
                            {model}:streamGenerateContent       GEMINI_API_KEY, then
                            ?alt=sse                            GOOGLE_API_KEY
==========================  ==================================  ============================

``messages`` is a prompt string, or a list in the API's own message shape
(``messages``, ``input``, ``messages``, ``contents``), sent as given; ``tools``
too are sent in the API's own shape. ``extra_body`` is merged into the body
last (a ``None`` value removes a key). Nothing is translated between APIs.

The API key is kept in an ``APIKey`` whose ``repr`` and ``str`` hide it; it is
put in one request header and never in a URL, a log line, an error message or a
``repr``. The request is sent when the stream is first used (``with``,
iteration or ``final()``); with no ``http_client`` given, a client is created
for the stream and closed with it. There are no retries: a failure raises, with
``retryable`` and ``retry_after`` on HTTP errors for the caller to decide.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
import httpx

from .. import __version__
from ..dialects.base import Dialect
from ..dialects.registry import RequestParts, get_api
from ..errors import timeout_error
from .httpx import AsyncEventStream, EventStream, Timeouts

__all__ = [
    "APIKey",
    "NO_KEY",
    "StreamRequest",
    "astream",
    "build_request",
    "resolve_api_key",
    "stream",
]

# Headers whose values are credentials, hidden in every repr.
_SECRET_HEADERS: Final = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "x-goog-api-key", "api-key", "cookie"}
)


class APIKey:
    """An API key that does not show itself: ``repr`` and ``str`` print ``***``.

    Use ``reveal()`` where the key must be sent.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The key itself."""
        return self._value

    def __repr__(self) -> str:
        return "APIKey('***')"

    def __str__(self) -> str:
        return "***"

    def __reduce__(self) -> Any:
        raise TypeError("an APIKey cannot be pickled")


#: Pass as ``api_key`` to send no credential even when the environment holds one
#: (a replay server or a local model needs none).
NO_KEY: Final = APIKey("")


def resolve_api_key(
    api: str, api_key: str | APIKey | None = None, environ: Mapping[str, str] | None = None
) -> APIKey | None:
    """The key to send: ``api_key`` when given, else the API's environment
    variables (its registry row's ``key_env``), else ``None`` (no credential
    header is sent: local servers and the replay server need none). ``NO_KEY``
    means none.

    Raises:
        UsageError: an unknown ``api``.
    """
    row = get_api(api)
    if isinstance(api_key, APIKey):
        return api_key
    if api_key:
        return APIKey(api_key)
    environ = os.environ if environ is None else environ
    for name in row.key_env:
        value = environ.get(name)
        if value:
            return APIKey(value)
    return None


@dataclass(frozen=True)
class StreamRequest:
    """A streaming request ready to send; its ``repr`` hides credentials.

    Attributes:
        api: the API's dialect id (``"openai-chat"``, ...).
        url: where it goes.
        headers: the headers (credential values hidden in ``repr``).
        body: the JSON body.
    """

    api: str
    url: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    api_key: APIKey | None = None

    def to_httpx(
        self, client: httpx.Client | httpx.AsyncClient, timeout: httpx.Timeout
    ) -> httpx.Request:
        """The ``httpx.Request``, the key in its header."""
        headers = dict(self.headers)
        if self.api_key is not None and self.api_key.reveal():
            row = get_api(self.api)
            headers[row.key_header] = row.key_prefix + self.api_key.reveal()
        return client.build_request(
            "POST", self.url, json=self.body, headers=headers, timeout=timeout
        )

    def __repr__(self) -> str:
        headers = {
            k: ("***" if k.lower() in _SECRET_HEADERS else v) for k, v in self.headers.items()
        }
        key = "APIKey('***')" if self.api_key is not None else None
        return (
            f"StreamRequest(api={self.api!r}, url={self.url!r}, headers={headers!r}, "
            f"body={self.body!r}, api_key={key})"
        )


def build_request(
    messages: str | Sequence[Mapping[str, Any]],
    *,
    model: str,
    api: str = "chat",
    base_url: str | None = None,
    api_key: str | APIKey | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
    system: str | None = None,
    max_tokens: int | None = None,
    extra_body: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    api_version: str | None = None,
) -> StreamRequest:
    """Build the streaming request for ``api`` (sends nothing).

    Args:
        messages: a prompt, or messages in the API's own shape.
        model: the model id (for Gemini, ``models/`` in front is accepted).
        api: the API's dialect id or short name (``"chat"``, the default;
            ``"responses"``, ``"anthropic"``, ``"gemini"``...).
        base_url: as the API's SDK takes it (its registry row's when ``None``).
        api_key: the key, else the API's environment variables (its row's ``key_env``).
        tools: tool definitions in the API's own shape.
        system: a system prompt (chat: a first system message; responses:
            ``instructions``; anthropic: ``system``; gemini: ``systemInstruction``).
        max_tokens: the output limit (``max_tokens``, ``max_output_tokens`` or
            ``generationConfig.maxOutputTokens``); Anthropic requires one and
            gets ``registry.ANTHROPIC_DEFAULT_MAX_TOKENS`` when ``None``.
        extra_body: merged into the body last; a ``None`` value removes the key.
        headers: more request headers (``X-Streamfold-Fault`` for the replay server).
        api_version: Anthropic's ``anthropic-version`` header or Gemini's path
            version (the row's ``api_version`` by default).

    Raises:
        UsageError: an unknown ``api``.
    """
    row = get_api(api)
    base = (base_url or row.base_url).rstrip("/")
    version = api_version or row.api_version
    model_id = model if row.model_in_body else model.removeprefix("models/")
    url = base + row.path.format(version=version, model=model_id)
    request_headers = {
        "accept": "text/event-stream",
        "user-agent": f"streamfold/{__version__}",
    }
    if row.version_header is not None and version is not None:
        request_headers[row.version_header] = version
    body: dict[str, Any] = {"model": model} if row.model_in_body else {}
    body.update(row.body(RequestParts(messages, system, tools or (), max_tokens)))
    for key, value in (extra_body or {}).items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    request_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    return StreamRequest(row.id, url, body, request_headers, resolve_api_key(row.id, api_key))


def _httpx_timeout(timeouts: Timeouts, sync: bool) -> httpx.Timeout:
    # The async twin enforces first_event, idle and total itself, exactly; a
    # blocking read can only be bounded by httpx, so the sync one asks httpx to
    # give up after the tightest of them.
    read = timeouts.tightest_read() if sync else None
    return httpx.Timeout(connect=timeouts.connect, read=read, write=None, pool=timeouts.connect)


def _timeout_kind(exc: httpx.TimeoutException) -> str:
    if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return "connect"
    return "first_event"


def _before_headers(timeouts: Timeouts) -> tuple[float, str] | None:
    limits = [
        (v, k)
        for k, v in (("first_event", timeouts.first_event), ("total", timeouts.total))
        if v is not None
    ]
    return min(limits) if limits else None


def stream(
    messages: str | Sequence[Mapping[str, Any]],
    *,
    model: str,
    api: str = "chat",
    base_url: str | None = None,
    api_key: str | APIKey | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
    system: str | None = None,
    max_tokens: int | None = None,
    extra_body: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    api_version: str | None = None,
    timeouts: Timeouts | None = None,
    dialect: str | type[Dialect] = "auto",
    strict: bool = True,
    parse_arguments: bool = False,
    http_client: httpx.Client | None = None,
) -> EventStream:
    """Stream a response from a live endpoint: an ``EventStream`` whose request
    is sent when it is first used.

    Args:
        messages, model, api, base_url, api_key, tools, system, max_tokens,
            extra_body, headers, api_version: see ``build_request``.
        timeouts: connect, first event, idle and total deadlines (``Timeouts()``
            defaults when ``None``).
        dialect: the dialect to fold with (detected by default).
        strict: raise on malformed events.
        parse_arguments: parse tool-call arguments incrementally.
        http_client: an ``httpx.Client`` to send with (kept open); else one is
            created for this stream and closed with it.

    Raises:
        UsageError: an unknown ``api``.
        StreamTimeoutError: (when the request is sent) connecting or waiting for
            the headers took too long.
        httpx.TransportError: (when the request is sent) the connection failed.
        The errors of ``EventStream.final`` while streaming.
    """
    request = build_request(
        messages,
        model=model,
        api=api,
        base_url=base_url,
        api_key=api_key,
        tools=tools,
        system=system,
        max_tokens=max_tokens,
        extra_body=extra_body,
        headers=headers,
        api_version=api_version,
    )
    limits = timeouts or Timeouts()
    owned: list[httpx.Client] = []

    def connect() -> tuple[httpx.Response, float]:
        client = http_client
        if client is None:
            client = httpx.Client()
            owned.append(client)
        prepared = request.to_httpx(client, _httpx_timeout(limits, sync=True))
        started = time.monotonic()
        try:
            response = client.send(prepared, stream=True)
        except httpx.TimeoutException as exc:
            kind = _timeout_kind(exc)
            limit = limits.connect if kind == "connect" else limits.tightest_read()
            raise timeout_error(kind, limit) from exc
        return response, started

    def close() -> None:
        for client in owned:
            client.close()

    return EventStream.deferred(
        connect,
        dialect,
        strict=strict,
        parse_arguments=parse_arguments,
        timeouts=limits,
        on_close=close,
    )


def astream(
    messages: str | Sequence[Mapping[str, Any]],
    *,
    model: str,
    api: str = "chat",
    base_url: str | None = None,
    api_key: str | APIKey | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
    system: str | None = None,
    max_tokens: int | None = None,
    extra_body: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    api_version: str | None = None,
    timeouts: Timeouts | None = None,
    dialect: str | type[Dialect] = "auto",
    strict: bool = True,
    parse_arguments: bool = False,
    http_client: httpx.AsyncClient | None = None,
) -> AsyncEventStream:
    """The async twin of ``stream``: an ``AsyncEventStream`` whose request is
    sent when it is first used (``async with``, ``async for`` or ``final()``).

    Raises:
        The errors of ``stream``.
    """
    request = build_request(
        messages,
        model=model,
        api=api,
        base_url=base_url,
        api_key=api_key,
        tools=tools,
        system=system,
        max_tokens=max_tokens,
        extra_body=extra_body,
        headers=headers,
        api_version=api_version,
    )
    limits = timeouts or Timeouts()
    owned: list[httpx.AsyncClient] = []

    async def connect() -> tuple[httpx.Response, float]:
        client = http_client
        if client is None:
            client = httpx.AsyncClient()
            owned.append(client)
        prepared = request.to_httpx(client, _httpx_timeout(limits, sync=False))
        started = time.monotonic()
        deadline = _before_headers(limits)
        try:
            if deadline is None:
                return await client.send(prepared, stream=True), started
            with anyio.CancelScope(deadline=anyio.current_time() + deadline[0]):
                return await client.send(prepared, stream=True), started
        except httpx.TimeoutException as exc:
            kind = _timeout_kind(exc)
            raise timeout_error(kind, limits.connect if kind == "connect" else None) from exc
        # Only the deadline's cancellation leaves the scope without returning.
        raise timeout_error(deadline[1], deadline[0])

    async def close() -> None:
        for client in owned:
            await client.aclose()

    return AsyncEventStream.deferred(
        connect,
        dialect,
        strict=strict,
        parse_arguments=parse_arguments,
        timeouts=limits,
        on_close=close,
    )
