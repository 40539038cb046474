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
``bedrock-converse``        POST {base}/model/{model}/          Bearer (a Bedrock API
(bedrock)                   converse-stream                     key); AWS_BEARER_TOKEN_
                                                                BEDROCK
``bedrock-anthropic``       POST {base}/model/{model}/          as bedrock-converse
(bedrock-claude)            invoke-with-response-stream
``ollama`` (ollama-chat)    POST {base}/api/chat                none
``ollama-generate``         POST {base}/api/generate            none
==========================  ==================================  ============================

Bedrock's base URL is ``https://bedrock-runtime.{region}.amazonaws.com``, the
region from ``AWS_REGION``, then ``AWS_DEFAULT_REGION``, else ``us-east-1``;
IAM credentials need SigV4 signing, which an ``http_client`` of your own can
add (streamfold sends Bedrock API keys only).

``messages`` is a prompt string, or a list in the API's own message shape
(``messages``, ``input``, ``messages``, ``contents``), sent as given; ``tools``
too are sent in the API's own shape. ``extra_body`` is merged into the body
last (a ``None`` value removes a key). Nothing is translated between APIs.

The API key is kept in an ``APIKey`` whose ``repr`` and ``str`` hide it; it is
put in one request header and never in a URL, a log line, an error message or a
``repr``, and never sent to another origin: redirects are followed (when the
HTTP client's ``follow_redirects`` says so) by this module, which drops the key
headers when a redirect leaves the origin. The request is sent when the stream
is first used (``with``, iteration or ``final()``); with no ``http_client``
given, a client is created for the stream and closed with it: an
``httpx2.Client`` (the SDKs' HTTP client), or an ``httpx.Client`` where only
httpx is installed; ``http_client`` may be either.

Retries, as the official SDKs make them (``retries=2`` by default,
``RetryPolicy`` for the rest, 0 for none): a request that failed before the
first byte of its stream (a connection error, a timeout, a retryable status)
is sent again after an exponential backoff with jitter, or the
``retry-after`` the server asked for, when that wait ends before the
``total`` deadline (the whole call's). Once the stream has begun it never is.
``resume=True`` re-attaches a stream cut after its first events instead of
failing: the Responses API's background streams after their last
``sequence_number``, any server-sent events with ids with ``Last-Event-ID``;
an API that cannot resume fails as before, with the partial result.
``result.metadata.attempts`` and ``.resumptions`` list them.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any, Final, Protocol
from urllib.parse import urlsplit, urlunsplit

import anyio

from .. import __version__
from ..dialects.base import Dialect
from ..dialects.registry import RequestParts, get_api
from ..errors import IncompleteStreamError, StreamfoldError, UsageError, timeout_error
from .exchange import Reconnect, RetryPolicy
from .framings import get_framing
from .httpx import (
    AsyncEventStream,
    EventStream,
    Resending,
    StreamedResponse,
    Timeouts,
    _errors_of,
)
from .otel import GenAIRequest, Telemetry
from .redact import KEY_HEADERS, key_may_follow, redact_headers, redact_url

__all__ = [
    "APIKey",
    "AsyncHTTPClient",
    "HTTPClient",
    "NO_KEY",
    "RetryPolicy",
    "StreamRequest",
    "Telemetry",
    "astream",
    "build_request",
    "http_library",
    "resolve_api_key",
    "stream",
]

#: A timeout as both HTTP libraries take it: connect, read, write, pool.
TimeoutTuple = tuple[float | None, float | None, float | None, float | None]


class _Request(Protocol):
    @property
    def method(self) -> str: ...
    @property
    def url(self) -> object: ...


class SentResponse(StreamedResponse, Protocol):
    """A streamed response as a client's ``send`` returns it."""

    @property
    def next_request(self) -> _Request | None: ...


class HTTPClient(Protocol):
    """What ``stream`` uses of an ``httpx2.Client`` or ``httpx.Client``."""

    @property
    def follow_redirects(self) -> bool: ...
    @property
    def max_redirects(self) -> int: ...
    def build_request(
        self,
        method: str,
        url: str,
        *,
        json: Any = ...,
        headers: Mapping[str, str] | None = ...,
        timeout: TimeoutTuple = ...,
    ) -> Any: ...
    def send(
        self, request: Any, *, stream: bool = ..., follow_redirects: bool = ...
    ) -> SentResponse: ...
    def close(self) -> None: ...


class AsyncHTTPClient(Protocol):
    """What ``astream`` uses of an ``httpx2.AsyncClient`` or ``httpx.AsyncClient``."""

    @property
    def follow_redirects(self) -> bool: ...
    @property
    def max_redirects(self) -> int: ...
    def build_request(
        self,
        method: str,
        url: str,
        *,
        json: Any = ...,
        headers: Mapping[str, str] | None = ...,
        timeout: TimeoutTuple = ...,
    ) -> Any: ...
    async def send(
        self, request: Any, *, stream: bool = ..., follow_redirects: bool = ...
    ) -> SentResponse: ...
    async def aclose(self) -> None: ...


def http_library() -> ModuleType:
    """The HTTP library the client creates its clients with: ``httpx2`` (what
    the openai and anthropic SDKs run on), else ``httpx``.

    Raises:
        UsageError: neither is installed.
    """
    for name in ("httpx2", "httpx"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise UsageError("streamfold.client needs httpx2 (or httpx): pip install 'streamfold[http]'")


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
        body: the JSON body (not sent after a redirect that turns it into a GET).
        headers: the headers (credential values hidden in ``repr``).
        api_key: the key, sent in the API's key header.
        method: ``"POST"``, unless a redirect said otherwise.
    """

    api: str
    url: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    api_key: APIKey | None = None
    method: str = "POST"

    def to_httpx(self, client: HTTPClient | AsyncHTTPClient, timeout: TimeoutTuple) -> Any:
        """The request built by ``client`` (httpx2 or httpx), the key in its header."""
        headers = dict(self.headers)
        if self.api_key is not None and self.api_key.reveal():
            row = get_api(self.api)
            headers[row.key_header] = row.key_prefix + self.api_key.reveal()
        body = self.body if self.method not in ("GET", "HEAD") else None
        return client.build_request(
            self.method, self.url, json=body, headers=headers, timeout=timeout
        )

    def reattached(self, plan: Reconnect, base_url: str) -> StreamRequest:
        """The request that re-attaches this one's cut stream: a ``GET`` of the
        API's re-attach path after ``base_url`` (``starting_after``), or this
        request again with ``Last-Event-ID`` (``last_event_id``).

        Raises:
            UsageError: ``base_url`` is not an http(s) URL.
        """
        headers = {k: v for k, v in self.headers.items() if k != "last-event-id"}
        if plan.path is None:
            return replace(self, headers={**headers, "last-event-id": plan.cursor})
        return replace(self, method="GET", url=_join_url(base_url, plan.path), headers=headers)

    def redirected(self, method: str, url: str) -> StreamRequest:
        """The request to send where a redirect points: without the API key and
        any key header when ``url`` is another origin."""
        if key_may_follow(self.url, url):
            return replace(self, method=method, url=url)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in KEY_HEADERS}
        return replace(self, method=method, url=url, headers=headers, api_key=None)

    def __repr__(self) -> str:
        key = "APIKey('***')" if self.api_key is not None else None
        return (
            f"StreamRequest(api={self.api!r}, url={redact_url(self.url)!r}, "
            f"headers={redact_headers(self.headers)!r}, body={self.body!r}, api_key={key})"
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
    resume: bool = False,
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
        resume: ask for a stream that can be re-attached, where the API needs
            to be asked (the Responses API: ``background: true``).

    Raises:
        UsageError: an unknown ``api``.
    """
    row = get_api(api)
    version = api_version or row.api_version
    model_id = model if row.model_in_body else model.removeprefix("models/")
    url = _join_url(
        base_url or row.default_base_url(), row.path.format(version=version, model=model_id)
    )
    request_headers = {
        "accept": get_framing(row.framing).media_type,
        "user-agent": f"streamfold/{__version__}",
    }
    if row.version_header is not None and version is not None:
        request_headers[row.version_header] = version
    body: dict[str, Any] = {"model": model} if row.model_in_body else {}
    body.update(row.body(RequestParts(messages, system, tools or (), max_tokens)))
    if resume and row.reattach is not None:
        body.update(row.reattach.body)
    for key, value in (extra_body or {}).items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    request_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    return StreamRequest(row.id, url, body, request_headers, resolve_api_key(row.id, api_key))


def _timeout(timeouts: Timeouts, resuming: bool = False) -> TimeoutTuple:
    # Until the head arrives only first_event and total can pass (idle, for a
    # re-attach request: the stream has begun); the body's read timeout is
    # set when it has (_for_the_body).
    limit = _before_headers(timeouts, resuming)
    return (timeouts.connect, limit[0] if limit else None, None, timeouts.connect)


def _for_the_body(response: SentResponse, timeouts: Timeouts) -> None:
    # The HTTP clients read the read timeout from the request's extensions when
    # a phase starts (the head, then the body), not at each read: from here on
    # no read may give up before a deadline that applies. The adapters end
    # each deadline exactly themselves.
    timeout = response.request.extensions.get("timeout")
    if isinstance(timeout, dict):
        timeout["read"] = timeouts.body_read()


def _join_url(base_url: str, path: str) -> str:
    """The API's path after the base URL's own path; a query on either side is
    kept (Gemini takes its key as ``?key=``, and its path adds ``?alt=sse``).

    Raises:
        UsageError: the base URL is not an http(s) URL.
    """
    try:
        base = urlsplit(base_url)
        if base.scheme not in ("http", "https") or not base.hostname:
            raise ValueError("an http:// or https:// URL with a host is needed")
        base.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise UsageError(f"base URL {redact_url(base_url)!r}: {exc}") from None
    route, _, route_query = path.partition("?")
    query = "&".join(q for q in (base.query, route_query) if q)
    return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + route, query, ""))


def _before_headers(timeouts: Timeouts, resuming: bool = False) -> tuple[float, str] | None:
    first = ("idle", timeouts.idle) if resuming else ("first_event", timeouts.first_event)
    limits = [(v, k) for k, v in (first, ("total", timeouts.total)) if v is not None]
    return min(limits) if limits else None


def _send_failed(
    exc: BaseException, request: StreamRequest, timeouts: Timeouts, resuming: bool = False
) -> StreamfoldError:
    # The HTTP library's error before the response's head, in streamfold's tree.
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"ConnectTimeout", "PoolTimeout"}:
        return timeout_error("connect", timeouts.connect)
    if "TimeoutException" in names:
        limit = _before_headers(timeouts, resuming)
        default = "idle" if resuming else "first_event"
        return timeout_error(limit[1] if limit else default, limit[0] if limit else None)
    return IncompleteStreamError(
        f"cannot reach {redact_url(request.url)}: {type(exc).__name__}: {exc}"
    )


def _left(limits: Timeouts, first: list[float]) -> Timeouts:
    # An attempt's limits for the HTTP library: the total deadline counts
    # from the first attempt (`first`, set by it), retries and re-attaching
    # included; the exchange ends it exactly.
    now = time.monotonic()
    if not first:
        first.append(now)
    if limits.total is None or now == first[0]:
        return limits
    return replace(limits, total=max(limits.total - (now - first[0]), 0.001))


def _resending(retries: int | RetryPolicy, resume: bool, api: str) -> Resending:
    if isinstance(retries, RetryPolicy):
        policy = retries
    elif isinstance(retries, bool) or not isinstance(retries, int):
        raise UsageError(f"retries={retries!r}: give a count (0 for none) or a RetryPolicy")
    else:
        policy = RetryPolicy(retries=retries)
    return Resending(policy, resume, get_api(api).reattach if resume else None)


def _send(
    client: HTTPClient, request: StreamRequest, limits: Timeouts, resuming: bool = False
) -> tuple[SentResponse, float]:
    # Send `request`, following redirects as the client says (the key never
    # goes to another origin); the response, and when it was sent.
    started = time.monotonic()
    hop, redirects = request, 0
    while True:
        try:
            response = client.send(
                hop.to_httpx(client, _timeout(limits, resuming)),
                stream=True,
                follow_redirects=False,
            )
        except _errors_of(client).failure as exc:
            raise _send_failed(exc, hop, limits, resuming) from exc
        after = response.next_request
        if after is None or not client.follow_redirects or redirects >= client.max_redirects:
            break
        response.close()
        hop, redirects = hop.redirected(after.method, str(after.url)), redirects + 1
    _for_the_body(response, limits)
    return response, started


async def _asend(
    client: AsyncHTTPClient, request: StreamRequest, limits: Timeouts, resuming: bool = False
) -> tuple[SentResponse, float]:
    # The async twin of _send; the head's wait is bounded exactly (_within).
    started = time.monotonic()
    hop, redirects = request, 0
    while True:
        try:
            response = await _within(
                client.send(
                    hop.to_httpx(client, _timeout(limits, resuming)),
                    stream=True,
                    follow_redirects=False,
                ),
                started,
                limits,
                resuming,
            )
        except _errors_of(client).failure as exc:
            raise _send_failed(exc, hop, limits, resuming) from exc
        after = response.next_request
        if after is None or not client.follow_redirects or redirects >= client.max_redirects:
            break
        await response.aclose()
        hop, redirects = hop.redirected(after.method, str(after.url)), redirects + 1
    _for_the_body(response, limits)
    return response, started


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
    parse_content: bool = False,
    output_type: Any = None,
    tool_types: Mapping[str, Any] | None = None,
    http_client: HTTPClient | None = None,
    retries: int | RetryPolicy = 2,
    resume: bool = False,
    telemetry: Telemetry | None = None,
) -> EventStream:
    """Stream a response from a live endpoint: an ``EventStream`` whose request
    is sent when it is first used.

    Args:
        messages, model, api, base_url, api_key, tools, system, max_tokens,
            extra_body, headers, api_version: see ``build_request``.
        timeouts: connect, first event, idle and total deadlines (``Timeouts()``
            defaults when ``None``); each attempt has its own.
        dialect: the dialect to fold with (detected by default).
        strict: raise on malformed events.
        parse_arguments: parse tool-call arguments incrementally
            (``stream.partial_arguments(index)`` gives a call's value so far).
        parse_content: parse answer text as JSON incrementally (JSON mode).
        output_type: the answer's type (a msgspec Struct, dataclass,
            TypedDict, pydantic model or JSON Schema), followed as it streams
            (``partial_output()``, ``output.updated`` events, ``result.output``).
            It only reads the answer: ask the API for JSON output yourself
            (``extra_body``: ``response_format``, ``output_format``...).
        tool_types: a type per tool name, the same for tool-call arguments.
        http_client: an ``httpx2.Client`` or ``httpx.Client`` to send with (kept
            open; its ``follow_redirects`` and ``max_redirects`` are honoured);
            else one is created for this stream and closed with it.
        retries: how many times a request that failed before its stream began is sent
            again (the SDKs' 2 by default; 0 for never), or a ``RetryPolicy``.
        resume: re-attach a stream cut after its first events (the Responses
            API's background streams, with ``background: true`` asked for;
            server-sent events with ids), up to the policy's ``resumes``.
        telemetry: where the stream's span and metrics go
            (``streamfold.adapters.otel``): the application's global
            OpenTelemetry providers by default; nothing when none is configured.

    Raises:
        UsageError: an unknown ``api``, a bad ``retries``, or no HTTP library installed.
        UnsupportedSchemaError: an output type ``streamfold.structured`` does not support.
        StreamTimeoutError: (when the request is sent) connecting or waiting for
            the headers took too long, on every attempt.
        IncompleteStreamError: (when the request is sent) the connection failed,
            on every attempt; the HTTP library's error is its ``__cause__``.
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
        resume=resume,
    )
    resending = _resending(retries, resume, api)
    base = base_url or get_api(api).base_url
    limits = timeouts or Timeouts()
    first: list[float] = []  # when the first attempt was sent
    owned: list[HTTPClient] = []

    def client() -> HTTPClient:
        if http_client is not None:
            return http_client
        if not owned:
            owned.append(http_library().Client())
        return owned[0]

    def connect() -> tuple[StreamedResponse, float]:
        return _send(client(), request, _left(limits, first))

    def reconnect(plan: Reconnect) -> tuple[StreamedResponse, float]:
        return _send(client(), request.reattached(plan, base), _left(limits, first), resuming=True)

    def close() -> None:
        for owned_client in owned:
            owned_client.close()

    return EventStream.deferred(
        connect,
        dialect,
        strict=strict,
        parse_arguments=parse_arguments,
        parse_content=parse_content,
        timeouts=limits,
        on_close=close,
        resending=resending,
        reconnect=reconnect,
        telemetry=telemetry,
        output_type=output_type,
        tool_types=tool_types,
        request=GenAIRequest(
            url=request.url,
            api=request.api,
            model=model,
            max_tokens=max_tokens,
            messages=messages,
            system=system,
        ),
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
    parse_content: bool = False,
    output_type: Any = None,
    tool_types: Mapping[str, Any] | None = None,
    http_client: AsyncHTTPClient | None = None,
    retries: int | RetryPolicy = 2,
    resume: bool = False,
    telemetry: Telemetry | None = None,
) -> AsyncEventStream:
    """The async twin of ``stream``: an ``AsyncEventStream`` whose request is
    sent when it is first used (``async with``, ``async for`` or ``final()``).
    ``http_client`` is an ``httpx2.AsyncClient`` or ``httpx.AsyncClient``.

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
        resume=resume,
    )
    resending = _resending(retries, resume, api)
    base = base_url or get_api(api).base_url
    limits = timeouts or Timeouts()
    first: list[float] = []  # when the first attempt was sent
    owned: list[AsyncHTTPClient] = []

    def client() -> AsyncHTTPClient:
        if http_client is not None:
            return http_client
        if not owned:
            owned.append(http_library().AsyncClient())
        return owned[0]

    async def connect() -> tuple[StreamedResponse, float]:
        return await _asend(client(), request, _left(limits, first))

    async def reconnect(plan: Reconnect) -> tuple[StreamedResponse, float]:
        return await _asend(
            client(), request.reattached(plan, base), _left(limits, first), resuming=True
        )

    async def close() -> None:
        for owned_client in owned:
            await owned_client.aclose()

    return AsyncEventStream.deferred(
        connect,
        dialect,
        strict=strict,
        parse_arguments=parse_arguments,
        parse_content=parse_content,
        timeouts=limits,
        on_close=close,
        resending=resending,
        reconnect=reconnect,
        telemetry=telemetry,
        output_type=output_type,
        tool_types=tool_types,
        request=GenAIRequest(
            url=request.url,
            api=request.api,
            model=model,
            max_tokens=max_tokens,
            messages=messages,
            system=system,
        ),
    )


async def _within(
    sending: Awaitable[SentResponse], started: float, limits: Timeouts, resuming: bool = False
) -> SentResponse:
    # The head must come before first_event (idle, re-attaching) or total,
    # counted from sending: a cancel scope makes that exact (a read timeout
    # would count per read).
    deadline = _before_headers(limits, resuming)
    if deadline is None:
        return await sending
    with anyio.CancelScope(
        deadline=anyio.current_time() + deadline[0] - (time.monotonic() - started)
    ):
        return await sending
    # Only the deadline's cancellation leaves the scope without returning.
    raise timeout_error(deadline[1], deadline[0])
