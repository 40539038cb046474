"""Recordings: what the replay server serves, on disk and in memory.

A recording is a response body with what it answered. On disk it is either

- ``NAME.sse`` alone: a stream of server-sent events, served with status 200
  (the format of every recording before 0.2, still valid), or
- ``NAME.meta.json`` beside its body file (``NAME.sse``, or ``NAME.json`` for a
  JSON array or an error body): the status, the response headers that matter
  and the request that produced it, as the proxy writes them::

    {
      "format": "streamfold-recording/1",
      "api": "openai-chat",
      "request": {
        "method": "POST",
        "path": "/v1/chat/completions",
        "model": "gpt-4o-mini",
        "body": {"model": "gpt-4o-mini", "messages": [...], "stream": true}
      },
      "response": {
        "status": 200,
        "headers": {"content-type": "text/event-stream", "x-request-id": "req_..."},
        "body": "gpt-4o-mini-1.sse"
      }
    }

  Every field but ``format`` may be left out: ``api`` is then sniffed from the
  body, ``request`` absent means the recording is chosen by name only, the
  status is 200, the body file is ``NAME.sse``. The body file holds the bytes
  as the API sent them (secrets replaced by ``REDACTED``), to read and edit as
  any ``.sse`` file.

A folder of recordings inside a folder being loaded is a conversation, named
after the folder: its recordings (``FOLDER/NAME``) are its turns, in the
natural order of their names (``2`` before ``10``).

A request is matched to a recording by its API, its model and its body, the
body compared without volatile fields (``DEFAULT_IGNORE``, configurable):
``request_key`` gives what is compared.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import msgspec

from .. import dialects
from ..dialects.base import decode_json
from ..dialects.registry import get_api
from ..errors import StreamfoldError, UsageError
from ..sse import ServerSentEvent
from .framings import FRAMINGS, SSEFraming, Unit, framing_for_media_type, get_framing
from .redact import SECRET_PARAMS, SecretFilter, redact_text

__all__ = [
    "DEFAULT_IGNORE",
    "FORMAT",
    "RecordedRequest",
    "Recording",
    "can_reencode",
    "kept_headers",
    "load_recordings",
    "natural_key",
    "new_name",
    "redacted_body",
    "reencode",
    "request_key",
    "sample_recordings",
    "save_recording",
    "sniff_api",
    "without_secret_params",
]

#: The ``format`` of a ``.meta.json`` file.
FORMAT: Final = "streamfold-recording/1"
META_SUFFIX: Final = ".meta.json"

#: Request body fields that change from run to run without changing the
#: answer, left out when requests are matched: OpenAI's ``user``,
#: ``safety_identifier`` and ``prompt_cache_key``, Anthropic's and OpenAI's
#: ``metadata``. Dotted paths reach inside objects (``"generationConfig.seed"``).
DEFAULT_IGNORE: Final = ("metadata", "user", "safety_identifier", "prompt_cache_key")

_encode_sorted = msgspec.json.Encoder(order="sorted").encode
_decode = msgspec.json.Decoder().decode
_UNSAFE_NAME: Final = re.compile(r"[^A-Za-z0-9._-]+")
_DIGITS: Final = re.compile(r"(\d+)")


@dataclass(frozen=True)
class RecordedRequest:
    """The request a recording answered.

    Attributes:
        method: ``"POST"``.
        path: the path and query, credential query parameters left out.
        model: the model it named (the body's ``model``, or the path's).
        body: its JSON body, decoded.
    """

    method: str = "POST"
    path: str = ""
    model: str | None = None
    body: Any = None


@dataclass(frozen=True)
class Recording:
    """One recorded response, served as it was recorded.

    Attributes:
        name: how requests select it (the file name without its suffix;
            ``FOLDER/NAME`` for a turn of a conversation).
        data: the recorded body.
        api: the API it speaks, a dialect id (sniffed when not given; a short
            name is accepted), or ``None``.
        framing: how ``data`` is framed (``"sse"``, ``"json-array"``; see
            ``adapters.framings``), or ``None`` for a body that is no stream
            (an error body), served as it is.
        status: the HTTP status it was recorded with.
        headers: the response headers kept (lower-case names).
        request: the request that produced it, or ``None`` (chosen by name only).
        conversation: the conversation it is a turn of, or ``None``.
        units: ``data`` cut into events and the bytes between them.
    """

    name: str
    data: bytes
    api: str | None = None
    framing: str | None = "sse"
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict, compare=False)
    request: RecordedRequest | None = None
    conversation: str | None = None
    units: tuple[Unit, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        units = () if self.framing is None else tuple(get_framing(self.framing).units(self.data))
        object.__setattr__(self, "units", units)
        api = _sniff_units(units) if self.api is None else get_api(self.api).id
        object.__setattr__(self, "api", api)

    @property
    def model(self) -> str | None:
        """The model of the request it answered, if it was recorded."""
        return self.request.model if self.request is not None else None

    @classmethod
    def from_file(cls, path: str | Path, name: str | None = None) -> Recording:
        """Load a recording: a ``.meta.json`` file (with its body), or a body
        file alone (``.sse``).

        Raises:
            UsageError: the meta file is not a recording's (its message names
                the file and the field).
            OSError: a file cannot be read.
        """
        path = Path(path)
        if path.name.endswith(META_SUFFIX):
            return _from_meta(path, name or path.name.removesuffix(META_SUFFIX), None)
        return cls(name or path.stem, path.read_bytes())


def _sniff_units(units: Iterable[Unit]) -> str | None:
    for unit in units:
        if unit.data is None or unit.data.strip() == b"[DONE]":
            continue
        name = unit.name.decode("utf-8", "replace") if unit.name else "message"
        event = ServerSentEvent(unit.data, name, event_set=unit.name is not None)
        try:
            cls = dialects.detect(event, decode_json(event))
        except StreamfoldError:
            return None
        return None if cls is None else cls.name
    return None


def sniff_api(data: bytes, framing: str = "sse") -> str | None:
    """Which API a recorded body speaks (its dialect id), detected from its
    first event with data as ``dialect="auto"`` does; ``None`` when no dialect
    reads it."""
    return _sniff_units(get_framing(framing).units(data))


# -- on disk ---------------------------------------------------------------------------------


def natural_key(name: str) -> tuple[Any, ...]:
    """Sorts names with their numbers as numbers: ``turn-2`` before ``turn-10``."""
    return tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(name))


def load_recordings(*paths: str | Path) -> dict[str, Recording]:
    """The recordings in files and folders of them, by name (see the module
    docstring: ``NAME.sse``, ``NAME.meta.json`` with its body, a sub-folder as
    a conversation).

    Raises:
        UsageError: a path does not exist, a meta file is not a recording's, or
            two recordings share a name.
        OSError: a file cannot be read.
    """
    found: dict[str, Recording] = {}

    def add(recording: Recording) -> None:
        if recording.name in found:
            raise UsageError(f"two recordings are named {recording.name!r}")
        found[recording.name] = recording

    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            for recording in _load_folder(path, None):
                add(recording)
            for folder in sorted(p for p in path.iterdir() if p.is_dir()):
                for recording in _load_folder(folder, folder.name):
                    add(recording)
        elif path.is_file():
            add(Recording.from_file(path))
        else:
            raise UsageError(f"no recording at {path}")
    return found


def _load_folder(folder: Path, conversation: str | None) -> list[Recording]:
    prefix = f"{conversation}/" if conversation else ""
    recordings: list[Recording] = []
    claimed: set[str] = set()
    for meta in sorted(folder.glob("*" + META_SUFFIX)):
        stem = meta.name.removesuffix(META_SUFFIX)
        recording = _from_meta(meta, prefix + stem, conversation)
        claimed.add(_body_name(meta, stem))
        recordings.append(recording)
    for body in sorted(folder.glob("*" + SSEFraming.extension)):
        if body.name not in claimed:
            recordings.append(
                Recording(prefix + body.stem, body.read_bytes(), conversation=conversation)
            )
    return sorted(recordings, key=lambda r: natural_key(r.name))


def _body_name(meta: Path, stem: str) -> str:
    try:
        response = _decode(meta.read_bytes()).get("response") or {}
        body = response.get("body") if isinstance(response, dict) else None
    except (msgspec.DecodeError, AttributeError):
        body = None
    return body if isinstance(body, str) else stem + SSEFraming.extension


def _from_meta(meta: Path, name: str, conversation: str | None) -> Recording:
    def bad(what: str) -> UsageError:
        return UsageError(f"{meta}: {what} (see the recording format in docs/http.md)")

    try:
        document = _decode(meta.read_bytes())
    except msgspec.DecodeError as exc:
        raise bad(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise bad(f'not a recording: "format" must be {FORMAT!r}')
    api = document.get("api")
    if api is not None and not isinstance(api, str):
        raise bad('"api" must be an API name')
    response = document.get("response") or {}
    if not isinstance(response, dict):
        raise bad('"response" must be an object')
    status = response.get("status", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise bad('"response.status" must be an HTTP status')
    headers = response.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise bad('"response.headers" must map names to strings')
    headers = {str(k).lower(): v for k, v in headers.items()}
    stem = meta.name.removesuffix(META_SUFFIX)
    body_name = response.get("body", stem + SSEFraming.extension)
    if not isinstance(body_name, str) or "/" in body_name or "\\" in body_name:
        raise bad('"response.body" must be the name of a file beside it')
    body_path = meta.parent / body_name
    if not body_path.is_file():
        raise bad(f"its body file {body_name} is missing")
    request = document.get("request")
    if request is not None:
        request = _request_of(request, bad)
    return Recording(
        name,
        body_path.read_bytes(),
        api,
        _framing_of(status, headers.get("content-type"), body_name),
        status,
        headers,
        request,
        conversation,
    )


def _request_of(value: Any, bad: Any) -> RecordedRequest:
    if not isinstance(value, dict):
        raise bad('"request" must be an object')
    method, path, model = value.get("method", "POST"), value.get("path", ""), value.get("model")
    body = value.get("body")
    if model is None and isinstance(body, dict) and isinstance(body.get("model"), str):
        model = body["model"]
    if not isinstance(method, str) or not isinstance(path, str):
        raise bad('"request.method" and "request.path" must be strings')
    if model is not None and not isinstance(model, str):
        raise bad('"request.model" must be a string')
    return RecordedRequest(method.upper(), path, model, body)


def _framing_of(status: int, content_type: str | None, body_name: str) -> str | None:
    if not 200 <= status < 300:
        return None
    framing = framing_for_media_type(content_type)
    if framing is not None:
        return framing.name
    for candidate in FRAMINGS.values():
        if body_name.endswith(candidate.extension):
            return candidate.name
    return "sse"


def save_recording(directory: str | Path, recording: Recording) -> Path:
    """Write ``recording`` into ``directory`` (made if missing) as
    ``NAME.meta.json`` beside its body file, each written whole then moved in
    place (a reader never sees half a file); the path of the meta file.

    Raises:
        OSError: the files cannot be written.
    """
    directory = Path(directory)
    stem = recording.name.rpartition("/")[2]
    folder = directory / recording.conversation if recording.conversation else directory
    folder.mkdir(parents=True, exist_ok=True)
    extension = (
        get_framing(recording.framing).extension
        if recording.framing is not None
        else (".json" if "json" in recording.headers.get("content-type", "") else ".body")
    )
    body_name = stem + extension
    meta: dict[str, Any] = {"format": FORMAT, "api": recording.api}
    if recording.request is not None:
        request = recording.request
        meta["request"] = {
            "method": request.method,
            "path": request.path,
            "model": request.model,
            "body": request.body,
        }
    meta["response"] = {
        "status": recording.status,
        "headers": dict(recording.headers),
        "body": body_name,
    }
    _write(folder / body_name, recording.data)
    text = msgspec.json.format(msgspec.json.encode(meta), indent=2) + b"\n"
    _write(folder / (stem + META_SUFFIX), text)
    return folder / (stem + META_SUFFIX)


def _write(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def new_name(model: str | None, taken: Iterable[str], directory: Path | None = None) -> str:
    """A free name for a new recording of ``model``: ``MODEL-1``, ``MODEL-2``...
    (the model's characters other than letters, digits, ``.``, ``_`` and ``-``
    replaced), none of ``taken`` nor a file in ``directory``."""
    base = _UNSAFE_NAME.sub("-", model or "").strip("-.") or "recording"
    names = set(taken)
    number = 1
    while True:
        name = f"{base}-{number}"
        exists = directory is not None and (
            (directory / (name + META_SUFFIX)).exists()
            or (directory / (name + SSEFraming.extension)).exists()
        )
        if name not in names and not exists:
            return name
        number += 1


def sample_recordings() -> dict[str, Recording]:
    """The sample recordings shipped with streamfold (``streamfold.samples``)."""
    from .. import samples

    return {s.name: Recording(s.name, samples.read(s.name), s.api) for s in samples.SAMPLES}


# -- what is kept -----------------------------------------------------------------------------


def kept_headers(headers: Iterable[tuple[str, str]], secrets: Iterable[str]) -> dict[str, str]:
    """The response headers a recording keeps: the content type, request ids
    (every registry row's ``request_id_headers``), rate limits and retry
    advice; never a cookie or a credential. Values are redacted of ``secrets``."""
    from ..dialects.registry import APIS

    ids = {name for api in APIS for name in api.request_id_headers}
    kept: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        if (
            lower == "content-type"
            or lower in ids
            or "ratelimit" in lower
            or "rate-limit" in lower
            or lower.startswith("retry-after")
            or lower == "x-should-retry"
        ):
            kept[lower] = redact_text(value, secrets)
    return kept


def without_secret_params(path: str) -> str:
    """``path`` without its credential query parameters (Gemini's ``?key=``)."""
    route, sep, query = path.partition("?")
    if not sep:
        return path
    pairs = [p for p in query.split("&") if p.partition("=")[0].lower() not in SECRET_PARAMS]
    return route + ("?" + "&".join(pairs) if pairs else "")


def redacted_body(data: bytes, secrets: Iterable[str]) -> bytes:
    """``data`` with every secret replaced by ``redact.REDACTED``."""
    cleaner = SecretFilter(secrets)
    return cleaner.feed(data) + cleaner.flush() if cleaner else data


# -- matching ----------------------------------------------------------------------------------


def _without(value: Any, paths: Iterable[tuple[str, ...]]) -> Any:
    # A copy of the objects on the way to each path; the rest is shared.
    for path in paths:
        value = _drop(value, path)
    return value


def _drop(value: Any, path: tuple[str, ...]) -> Any:
    if not isinstance(value, dict) or path[0] not in value:
        return value
    if len(path) == 1:
        return {k: v for k, v in value.items() if k != path[0]}
    return {**value, path[0]: _drop(value[path[0]], path[1:])}


def request_key(
    api: str | None, model: str | None, body: Any, ignore: Iterable[str] = DEFAULT_IGNORE
) -> bytes | None:
    """What matching compares: the API, the model and the body without the
    ``ignore`` fields (dotted paths), as canonical JSON (sorted keys); ``None``
    for a body that cannot be compared (too deep to encode)."""
    paths = [tuple(p.split(".")) for p in ignore if p]
    try:
        return _encode_sorted([api, model, _without(body, paths)])
    except (TypeError, ValueError, RecursionError, msgspec.EncodeError):
        return None


# -- another API's recording --------------------------------------------------------------------


def can_reencode(source: str | None, target: str) -> bool:
    """Whether a recording of ``source`` can be served as ``target`` (a
    dialect reads it and an encoder writes the target)."""
    from ..encode import ENCODERS

    return source is not None and source in dialects.DIALECTS and target in ENCODERS


def reencode(recording: Recording, api: str) -> Recording:
    """``recording`` folded and written again as a stream of ``api``
    (``streamfold.encode``): the same answer, another API's events.

    Raises:
        UsageError: no dialect reads the recording, or no encoder writes ``api``.
    """
    from ..encode import get as encoder_of
    from ..parser import StreamParser

    if recording.api is None or not can_reencode(recording.api, api):
        raise UsageError(
            f"recording {recording.name!r} ({recording.api}) cannot be served as {api}"
        )
    parser = StreamParser(recording.api)
    encoder = encoder_of(api)()
    data = encoder.encode_all(parser.feed(recording.data))
    data += encoder.encode_all(parser.close()) + encoder.close()
    return replace(recording, data=data, api=api, framing="sse", headers={})
