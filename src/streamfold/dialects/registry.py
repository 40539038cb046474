"""The registry: one row per API, the only place that lists them.

Each row says everything streamfold knows about one API outside its stream
format (which the dialect module holds): its ids, how a live request is built,
and how the replay server serves it. Detection, the client, the replay server
and the command line read this table; adding an API is one dialect module and
one row here (``docs/dialects/README.md``).

Names: an API is named by its dialect id (``"openai-chat"``), everywhere;
its short name (``"chat"``) is accepted as an alias wherever a name is taken
(``api=``, ``dialect=``, ``--api``, ``--dialect``).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final

import msgspec

from ..errors import UsageError

if TYPE_CHECKING:
    from .base import Dialect

__all__ = [
    "API",
    "APIS",
    "BodyBuilder",
    "Reattach",
    "RequestParts",
    "RouteReader",
    "Routed",
    "gemini_route",
    "get_api",
    "names",
]


# The registry's records are msgspec Structs, not dataclasses: built at C
# speed at import (a frozen dataclass of API's 27 fields costs 1.5 ms).
class RequestParts(msgspec.Struct, frozen=True):
    """What a caller gives to build a live request, for any API.

    Attributes:
        messages: a prompt, or messages in the API's own shape (sent as given).
        system: a system prompt, or ``None``.
        tools: tool definitions in the API's own shape.
        max_tokens: the output limit, or ``None``.
    """

    messages: str | Sequence[Any]
    system: str | None = None
    tools: Sequence[Mapping[str, Any]] = ()
    max_tokens: int | None = None


#: Builds the JSON body of a streaming request (the model aside: see ``API.model_in_body``).
BodyBuilder = Callable[[RequestParts], dict[str, Any]]


class Routed(msgspec.Struct, frozen=True):
    """What a request to one of an API's replay-server routes asks for.

    Attributes:
        model: the model the path names, or ``None`` (the body's ``model`` then).
        framing: how the response body is framed (a name of
            ``adapters.framings.FRAMINGS``), or ``None`` for the row's ``framing``.
        refused: why the route does not serve this request (the message of a
            404 in the provider's shape), or ``None``.
    """

    model: str | None = None
    framing: str | None = None
    refused: str | None = None


#: Reads a request to a replay route: its path parameters and query, to ``Routed``.
RouteReader = Callable[[Mapping[str, str], Mapping[str, str]], Routed]


def gemini_route(path: Mapping[str, str], query: Mapping[str, str]) -> Routed:
    """Gemini names the model and the action in the path
    (``/v1beta/models/{model}:streamGenerateContent``); ``?alt=sse`` asks for
    server-sent events, else the stream is one JSON array. Only the streaming
    action is served."""
    model, _, action = path.get("target", "").partition(":")
    if action != "streamGenerateContent":
        return Routed(
            model, refused=f"the replay server serves only :streamGenerateContent, not :{action}"
        )
    return Routed(model, "sse" if query.get("alt") == "sse" else "json-array")


class Reattach(msgspec.Struct, frozen=True):
    """How a cut stream of an API is re-attached (the client's ``resume=True``),
    for an API with a re-attach request of its own; any stream whose
    server-sent events carry ids is resumed with ``Last-Event-ID`` besides.

    Attributes:
        path: the re-attach request (a ``GET``) after the base URL; ``{id}`` is
            the response's id and ``{cursor}`` the position ``position`` reads.
        position: the response's id and the position of the last event folded,
            read from the dialect (a named function in its module), or ``None``
            while not both are known.
        body: merged into the first request's body so that its stream can be
            re-attached at all (the Responses API's ``background``).
        via: the name of the cursor, for the result's metadata.
    """

    path: str
    position: Callable[[Dialect], tuple[str, str] | None]
    body: Mapping[str, Any]
    via: str


class API(msgspec.Struct, frozen=True, dict=True):
    """One API: its names, its live requests, and how the replay server serves it.

    Attributes:
        id: the dialect id, kebab-case (``"openai-chat"``): the API's name everywhere.
        name: the short alias (``"chat"``).
        title: for people.
        module: ``"module:Class"``, the dialect module of this package and
            the class in it that folds its streams (``dialect``, imported on
            first use).
        base_url: the default base URL, as the API's official SDK takes it; a
            ``{region}`` in it is filled in (``default_base_url``).
        path: the request path after the base URL; ``{version}`` and ``{model}``
            are filled in.
        model_in_body: the model goes in the body's ``model`` (else only in the path).
        body: builds the request body (without ``model``).
        key_header: the header the API key goes in (lower case).
        key_prefix: what precedes the key in that header (``"Bearer "``).
        key_env: the environment variables the key is read from, in order.
        api_version: the default version: a header's value (``version_header``)
            or the path's ``{version}``.
        version_header: the header that carries ``api_version``, if any.
        region_env: the environment variables the ``{region}`` of ``base_url``
            is read from, in order, and ``default_region`` when none is set.
        routes: the replay server's paths for this API, Starlette patterns: a
            ``{model}`` parameter names the model (Gemini's is read by ``route``).
        framing: how the API frames a streamed response body, a name of
            ``adapters.framings.FRAMINGS`` (``"sse"``; a new framing is a class
            registered there, see ``docs/http.md``).
        route: reads a request to one of ``routes`` (the model in its path, the
            framing asked for, a request not served), or ``None``: the model is
            the ``{model}`` path parameter or the body's, the framing ``framing``.
        provider: whose error shapes the replay server answers with by default.
        request_id_headers: the response headers that carry the request id, most
            specific first (lower case); the adapters try the row of the
            dialect in use, then every row in registry order.
        unwrap_error: turns the API's HTTP error body into the usual
            ``{"error": {...}}`` envelope, ``None`` when it does not apply.
        error_code: the code to report from the envelope when the API's own
            ``code`` is not the one to match on, else ``None``.
        error_request_id: the request id inside the error body, else ``None``.
        retry_delay: seconds to wait before retrying, from the error body, else ``None``.
        reattach: how a cut stream is re-attached, or ``None`` (see ``Reattach``).
        operation: the OpenTelemetry GenAI operation name of a request
            (``gen_ai.operation.name``: ``chat``, ``generate_content``,
            ``text_completion``).
        gen_ai_provider: the OpenTelemetry GenAI provider name
            (``gen_ai.provider.name``) of the API's own service; the telemetry
            tells other hosts speaking it by their address.

    The four error-body readers are named functions in the dialect's module;
    when the dialect is not known (an HTTP error arrives before any event),
    each row's reader is tried in registry order and the first answer wins.
    """

    id: str
    name: str
    title: str
    module: str
    base_url: str
    path: str
    body: BodyBuilder
    key_header: str
    key_env: tuple[str, ...]
    key_prefix: str = ""
    model_in_body: bool = True
    api_version: str | None = None
    version_header: str | None = None
    region_env: tuple[str, ...] = ()
    default_region: str | None = None
    routes: tuple[str, ...] = ()
    framing: str = "sse"
    route: RouteReader | None = None
    provider: str = "openai"
    request_id_headers: tuple[str, ...] = ()
    unwrap_error: Callable[[Any], Any] | None = None
    error_code: Callable[[Any], str | None] | None = None
    error_request_id: Callable[[Any], str | None] | None = None
    retry_delay: Callable[[Any], float | None] | None = None
    reattach: Reattach | None = None
    operation: str = "chat"
    gen_ai_provider: str = "openai"

    @cached_property
    def dialect(self) -> type[Dialect]:
        """The dialect class, from ``module`` (imported on first use: ``import
        streamfold`` loads no dialect module, a stream loads the ones it needs)."""
        return _late(self.module)  # type: ignore[no-any-return]

    def default_base_url(self, environ: Mapping[str, str] | None = None) -> str:
        """``base_url`` with its ``{region}`` filled in from ``region_env``
        (``environ``, else the process environment), else ``default_region``."""
        if "{region}" not in self.base_url:
            return self.base_url
        environ = os.environ if environ is None else environ
        region = next((environ[n] for n in self.region_env if environ.get(n)), None)
        return self.base_url.replace("{region}", region or self.default_region or "")


def _late(path: str) -> Any:
    """``"module:name"`` of this package: the object, its module imported now."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


class _Late:
    """A function of a dialect module (``"module:name"``), imported at its first call."""

    __slots__ = ("_function", "_path")

    def __init__(self, path: str) -> None:
        self._path = path
        self._function: Callable[..., Any] | None = None

    def __call__(self, *args: Any) -> Any:
        function = self._function
        if function is None:
            function = self._function = _late(self._path)
        return function(*args)

    def __repr__(self) -> str:
        return f"<{self._path}>"


def _native(parts: RequestParts, prompt_as: Callable[[str], Any]) -> Any:
    if isinstance(parts.messages, str):
        return prompt_as(parts.messages)
    return [dict(m) if isinstance(m, Mapping) else m for m in parts.messages]


def _tools(body: dict[str, Any], parts: RequestParts) -> dict[str, Any]:
    if parts.tools:
        body["tools"] = [dict(tool) for tool in parts.tools]
    return body


def _user_message(prompt: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": prompt}]


def chat_body(parts: RequestParts) -> dict[str, Any]:
    """Chat Completions: ``messages`` (the system prompt first); usage is asked for,
    since it arrives in a last chunk only when ``stream_options`` says so."""
    messages = _native(parts, _user_message)
    if parts.system is not None:
        messages = [{"role": "system", "content": parts.system}, *messages]
    body: dict[str, Any] = {"messages": messages}
    _tools(body, parts)
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    if parts.max_tokens is not None:
        body["max_tokens"] = parts.max_tokens
    return body


def completions_body(parts: RequestParts) -> dict[str, Any]:
    """Legacy Completions: ``prompt`` (a list is sent as given: strings or token
    arrays), the system prompt before it with a blank line (the API has no
    roles), usage asked for as in chat. The API takes no tools: none are sent.
    ``max_tokens`` matters: its default is 16 tokens."""
    prompt: Any = parts.messages if isinstance(parts.messages, str) else list(parts.messages)
    if parts.system is not None and isinstance(prompt, str):
        prompt = f"{parts.system}\n\n{prompt}"
    body: dict[str, Any] = {"prompt": prompt}
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    if parts.max_tokens is not None:
        body["max_tokens"] = parts.max_tokens
    return body


def responses_body(parts: RequestParts) -> dict[str, Any]:
    """Responses: ``input`` (a prompt string as is), ``instructions``, ``max_output_tokens``."""
    body: dict[str, Any] = {}
    if parts.system is not None:
        body["instructions"] = parts.system
    body["input"] = _native(parts, lambda prompt: prompt)
    _tools(body, parts)
    body["stream"] = True
    if parts.max_tokens is not None:
        body["max_output_tokens"] = parts.max_tokens
    return body


#: Anthropic requires ``max_tokens``; this is sent when none is given.
ANTHROPIC_DEFAULT_MAX_TOKENS = 4096


def anthropic_body(parts: RequestParts) -> dict[str, Any]:
    """Messages: ``system`` and ``messages``; ``max_tokens`` is required by Anthropic."""
    body: dict[str, Any] = {}
    if parts.system is not None:
        body["system"] = parts.system
    body["messages"] = _native(parts, _user_message)
    _tools(body, parts)
    body["stream"] = True
    body["max_tokens"] = (
        parts.max_tokens if parts.max_tokens is not None else ANTHROPIC_DEFAULT_MAX_TOKENS
    )
    return body


def cohere_body(parts: RequestParts) -> dict[str, Any]:
    """Cohere v2 chat: ``messages`` (the system prompt first, as a ``system``
    message), ``tools``, ``max_tokens``."""
    messages = _native(parts, _user_message)
    if parts.system is not None:
        messages = [{"role": "system", "content": parts.system}, *messages]
    body: dict[str, Any] = {"messages": messages}
    _tools(body, parts)
    body["stream"] = True
    if parts.max_tokens is not None:
        body["max_tokens"] = parts.max_tokens
    return body


def gemini_body(parts: RequestParts) -> dict[str, Any]:
    """Gemini: ``contents``, ``systemInstruction``, ``generationConfig.maxOutputTokens``."""
    body: dict[str, Any] = {
        "contents": _native(parts, lambda prompt: [{"role": "user", "parts": [{"text": prompt}]}])
    }
    if parts.system is not None:
        body["systemInstruction"] = {"parts": [{"text": parts.system}]}
    _tools(body, parts)
    if parts.max_tokens is not None:
        body["generationConfig"] = {"maxOutputTokens": parts.max_tokens}
    return body


def interactions_body(parts: RequestParts) -> dict[str, Any]:
    """The Interactions API: ``input`` (a prompt string as is, or turns in its
    own shape), ``system_instruction``, ``generation_config.max_output_tokens``."""
    body: dict[str, Any] = {"input": _native(parts, lambda prompt: prompt)}
    if parts.system is not None:
        body["system_instruction"] = parts.system
    _tools(body, parts)
    body["stream"] = True
    if parts.max_tokens is not None:
        body["generation_config"] = {"max_output_tokens": parts.max_tokens}
    return body


def ai_sdk_ui_body(parts: RequestParts) -> dict[str, Any]:
    """An AI SDK chat backend (``useChat``'s default transport): ``messages`` as
    ``UIMessage`` objects (a prompt becomes one user message with a text part),
    ``trigger: submit-message``. The system prompt, tools and output limit are
    the backend's own: they are not sent."""
    messages = _native(
        parts,
        lambda prompt: [
            {"id": "user-1", "role": "user", "parts": [{"type": "text", "text": prompt}]}
        ],
    )
    return {"messages": messages, "trigger": "submit-message"}


def bedrock_converse_body(parts: RequestParts) -> dict[str, Any]:
    """Bedrock ``ConverseStream``: ``messages`` with content blocks (a prompt is
    one user message with one ``text`` block), ``system`` as a list of blocks,
    ``inferenceConfig.maxTokens``, and ``toolConfig.tools`` as given (each a
    ``{"toolSpec": ...}``). The model is in the path."""
    body: dict[str, Any] = {
        "messages": _native(parts, lambda prompt: [{"role": "user", "content": [{"text": prompt}]}])
    }
    if parts.system is not None:
        body["system"] = [{"text": parts.system}]
    if parts.tools:
        body["toolConfig"] = {"tools": [dict(tool) for tool in parts.tools]}
    if parts.max_tokens is not None:
        body["inferenceConfig"] = {"maxTokens": parts.max_tokens}
    return body


#: The Messages API version Bedrock takes in the body of a Claude invocation.
BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"


def bedrock_anthropic_body(parts: RequestParts) -> dict[str, Any]:
    """Claude on Bedrock ``InvokeModelWithResponseStream``: Anthropic's Messages
    body without ``model`` (in the path) and ``stream`` (the operation streams),
    with ``anthropic_version`` (``BEDROCK_ANTHROPIC_VERSION``)."""
    body = anthropic_body(parts)
    del body["stream"]
    return {"anthropic_version": BEDROCK_ANTHROPIC_VERSION, **body}


def _ollama_options(body: dict[str, Any], parts: RequestParts) -> dict[str, Any]:
    body["stream"] = True
    if parts.max_tokens is not None:
        body["options"] = {"num_predict": parts.max_tokens}
    return body


def ollama_chat_body(parts: RequestParts) -> dict[str, Any]:
    """Ollama ``/api/chat``: ``messages`` (the system prompt first), ``tools``,
    ``options.num_predict`` for the output limit."""
    messages = _native(parts, _user_message)
    if parts.system is not None:
        messages = [{"role": "system", "content": parts.system}, *messages]
    return _ollama_options(_tools({"messages": messages}, parts), parts)


def ollama_generate_body(parts: RequestParts) -> dict[str, Any]:
    """Ollama ``/api/generate``: ``prompt`` and ``system``, ``options.num_predict``.

    Raises:
        UsageError: messages were given (``/api/generate`` takes one prompt),
            or tools (it takes none).
    """
    if not isinstance(parts.messages, str):
        raise UsageError("ollama-generate takes a prompt string, not messages (use ollama)")
    if parts.tools:
        raise UsageError("ollama-generate takes no tools (use ollama)")
    body: dict[str, Any] = {"prompt": parts.messages}
    if parts.system is not None:
        body["system"] = parts.system
    return _ollama_options(body, parts)


#: The request-id headers of OpenAI and the servers that speak its APIs:
#: OpenAI and most compatible servers, OpenAI's alternate spelling, Groq, Azure
#: (API Management, Azure), OpenRouter's generation id.
_OPENAI_REQUEST_ID_HEADERS: tuple[str, ...] = (
    "x-request-id",
    "openai-request-id",
    "x-groq-id",
    "apim-request-id",
    "x-ms-request-id",
    "x-generation-id",
)

#: What both Bedrock APIs share: a Bedrock API key (a bearer token; IAM
#: credentials need SigV4 signing, which a caller's own http_client can add),
#: the model in the path, AWS event-stream frames, the region, the ids.
_BEDROCK: Final[dict[str, Any]] = dict(
    key_header="authorization",
    key_prefix="Bearer ",
    key_env=("AWS_BEARER_TOKEN_BEDROCK",),
    model_in_body=False,
    framing="aws-event-stream",
    region_env=("AWS_REGION", "AWS_DEFAULT_REGION"),
    default_region="us-east-1",
    provider="bedrock",
    request_id_headers=("x-amzn-requestid",),
    gen_ai_provider="aws.bedrock",
)


#: Every API, in the order ``dialect="auto"`` tries their dialects: the most
#: specific first (typed events), legacy Completions (``text_completion``) before
#: Chat Completions (any object with ``choices``), which comes last.
APIS: tuple[API, ...] = (
    API(
        id="openai-responses",
        name="responses",
        title="OpenAI Responses",
        module="openai_responses:OpenAIResponses",
        base_url="https://api.openai.com/v1",
        path="/responses",
        body=responses_body,
        key_header="authorization",
        key_prefix="Bearer ",
        key_env=("OPENAI_API_KEY",),
        routes=("/v1/responses", "/responses"),
        # OpenAI, its alternate spelling, then Azure (API Management, Azure).
        request_id_headers=(
            "x-request-id",
            "openai-request-id",
            "apim-request-id",
            "x-ms-request-id",
        ),
        # A background response's stream is re-attached after its last
        # sequence number (OpenAI's "Streaming a background response").
        reattach=Reattach(
            path="/responses/{id}?stream=true&starting_after={cursor}",
            position=_Late("openai_responses:resume_position"),
            body={"background": True},
            via="starting_after",
        ),
    ),
    API(
        id="anthropic",
        name="anthropic",
        title="Anthropic Messages",
        module="anthropic:AnthropicMessages",
        base_url="https://api.anthropic.com",
        path="/v1/messages",
        body=anthropic_body,
        key_header="x-api-key",
        key_env=("ANTHROPIC_API_KEY",),
        api_version="2023-06-01",
        version_header="anthropic-version",
        routes=("/v1/messages",),
        provider="anthropic",
        request_id_headers=("request-id",),
        error_request_id=_Late("anthropic:error_request_id"),
        gen_ai_provider="anthropic",
    ),
    API(
        id="ai-sdk-ui",
        name="ai-sdk",
        title="Vercel AI SDK UI message stream",
        module="ai_sdk_ui:AISDKUIMessageStream",
        # An application's own backend: no provider URL, no key of its own, and
        # the backend picks the model (model_in_body=False: the path has no {model}).
        base_url="http://localhost:3000",
        path="/api/chat",
        body=ai_sdk_ui_body,
        key_header="authorization",
        key_prefix="Bearer ",
        key_env=(),
        model_in_body=False,
        gen_ai_provider="vercel.ai_sdk",  # an application's backend: not a well-known value
    ),
    API(
        id="cohere-chat",
        name="cohere",
        title="Cohere v2 chat",
        module="cohere:CohereChat",
        base_url="https://api.cohere.com",
        path="/v2/chat",
        body=cohere_body,
        key_header="authorization",
        key_prefix="Bearer ",
        key_env=("CO_API_KEY", "COHERE_API_KEY"),
        routes=("/v2/chat",),
        gen_ai_provider="cohere",
    ),
    API(
        id="gemini-interactions",
        name="interactions",
        title="Gemini Interactions API",
        module="gemini_interactions:GeminiInteractions",
        base_url="https://generativelanguage.googleapis.com",
        path="/{version}/interactions",
        body=interactions_body,
        key_header="x-goog-api-key",
        key_env=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        api_version="v1beta",
        routes=("/{version}/interactions",),
        provider="gemini",
        request_id_headers=("x-goog-request-id",),
        unwrap_error=_Late("gemini:unwrap_error_body"),
        error_code=_Late("gemini:error_status"),
        retry_delay=_Late("gemini:retry_delay"),
        operation="generate_content",
        gen_ai_provider="gcp.gemini",
    ),
    API(
        id="gemini",
        name="gemini",
        title="Google Gemini",
        module="gemini:Gemini",
        base_url="https://generativelanguage.googleapis.com",
        path="/{version}/models/{model}:streamGenerateContent?alt=sse",
        body=gemini_body,
        key_header="x-goog-api-key",
        key_env=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        model_in_body=False,
        api_version="v1beta",
        routes=("/{prefix:path}/models/{target}",),
        route=gemini_route,
        provider="gemini",
        request_id_headers=("x-goog-request-id",),
        unwrap_error=_Late("gemini:unwrap_error_body"),
        error_code=_Late("gemini:error_status"),
        retry_delay=_Late("gemini:retry_delay"),
        operation="generate_content",
        gen_ai_provider="gcp.gemini",
    ),
    API(
        id="bedrock-anthropic",
        name="bedrock-claude",
        title="Anthropic Claude on Amazon Bedrock (InvokeModelWithResponseStream)",
        module="bedrock:BedrockAnthropic",
        base_url="https://bedrock-runtime.{region}.amazonaws.com",
        path="/model/{model}/invoke-with-response-stream",
        body=bedrock_anthropic_body,
        routes=("/model/{model}/invoke-with-response-stream",),
        **_BEDROCK,
    ),
    API(
        id="bedrock-converse",
        name="bedrock",
        title="Amazon Bedrock ConverseStream",
        module="bedrock:BedrockConverse",
        base_url="https://bedrock-runtime.{region}.amazonaws.com",
        path="/model/{model}/converse-stream",
        body=bedrock_converse_body,
        routes=("/model/{model}/converse-stream",),
        **_BEDROCK,
    ),
    API(
        id="ollama",
        name="ollama-chat",
        title="Ollama /api/chat",
        module="ollama:OllamaChat",
        # A local server: no key (Ollama's cloud takes one as a bearer token).
        base_url="http://localhost:11434",
        path="/api/chat",
        body=ollama_chat_body,
        key_header="authorization",
        key_prefix="Bearer ",
        key_env=(),
        framing="ndjson",
        routes=("/api/chat",),
        provider="ollama",
        gen_ai_provider="ollama",  # not among the conventions' well-known values
    ),
    API(
        id="ollama-generate",
        name="ollama-generate",
        title="Ollama /api/generate",
        module="ollama:OllamaGenerate",
        base_url="http://localhost:11434",
        path="/api/generate",
        body=ollama_generate_body,
        key_header="authorization",
        key_prefix="Bearer ",
        key_env=(),
        framing="ndjson",
        routes=("/api/generate",),
        provider="ollama",
        operation="text_completion",  # a prompt completed, not a conversation
        gen_ai_provider="ollama",
    ),
    API(
        id="openai-completions",
        name="completions",
        title="OpenAI Completions (legacy)",
        module="openai_completions:OpenAICompletions",
        base_url="https://api.openai.com/v1",
        path="/completions",
        body=completions_body,
        key_header="authorization",
        key_prefix="Bearer ",
        key_env=("OPENAI_API_KEY",),
        routes=("/v1/completions", "/completions"),
        request_id_headers=_OPENAI_REQUEST_ID_HEADERS,
        operation="text_completion",
    ),
    API(
        id="openai-chat",
        name="chat",
        title="OpenAI Chat Completions",
        module="openai_chat:OpenAIChat",
        base_url="https://api.openai.com/v1",
        path="/chat/completions",
        body=chat_body,
        key_header="authorization",
        key_prefix="Bearer ",
        key_env=("OPENAI_API_KEY",),
        routes=("/v1/chat/completions", "/chat/completions"),
        request_id_headers=_OPENAI_REQUEST_ID_HEADERS,
    ),
)

_BY_NAME: dict[str, API] = {
    **{api.name: api for api in APIS},
    **{api.id: api for api in APIS},
}


def names() -> list[str]:
    """Every accepted name: the ids, then the short aliases."""
    return [*(api.id for api in APIS), *(api.name for api in APIS)]


def get_api(name: str) -> API:
    """The row of the API named ``name`` (its id or its short name).

    Raises:
        UsageError: no API has that name.
    """
    api = _BY_NAME.get(name) if isinstance(name, str) else None
    if api is None:
        known = ", ".join(f"{a.id} ({a.name})" for a in APIS)
        raise UsageError(f"unknown API {name!r} (known: {known})")
    return api
