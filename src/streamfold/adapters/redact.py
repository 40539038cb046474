"""Credentials never shown: the one routine for every URL, header and message
streamfold prints, logs or stores.

- ``redact_url``: a URL without its userinfo password and with the values of
  credential query parameters (``?key=``, Gemini's way) replaced.
- ``redact_headers``: the values of credential headers replaced.
- ``redact_text``: any occurrence of known secrets (the API key in use, a URL's
  password) in free text (a provider's error body echoing the key, a message)
  replaced.
- ``SecretFilter``: the same over a byte stream that arrives in pieces (a body
  that may echo the key), linear in the bytes and holding nothing back unless a
  piece ends inside what may be a secret.
- ``KEY_HEADERS`` and ``key_may_follow``: the headers that must not follow a
  redirect to another origin, and what counts as another origin.

No IO and no HTTP library: plain strings in, plain strings out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

__all__ = [
    "KEY_HEADERS",
    "REDACTED",
    "SECRET_HEADERS",
    "SECRET_PARAMS",
    "SecretFilter",
    "key_may_follow",
    "redact_headers",
    "redact_text",
    "redact_url",
    "secrets_of",
]

#: What stands in for a secret.
REDACTED: Final = "REDACTED"

#: Headers whose values are credentials (lower case): OpenAI and most servers
#: (``authorization``), Anthropic (``x-api-key``), Gemini (``x-goog-api-key``),
#: Azure (``api-key``), proxies and cookies.
SECRET_HEADERS: Final = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "x-goog-api-key",
        "api-key",
        "cookie",
        "set-cookie",
    }
)

#: The headers that carry an API key (lower case): never sent to another origin
#: on a redirect. httpx strips only ``authorization``; Anthropic's ``x-api-key``,
#: Gemini's ``x-goog-api-key`` and Azure's ``api-key`` would follow.
KEY_HEADERS: Final = frozenset({"authorization", "x-api-key", "x-goog-api-key", "api-key"})

#: Query parameters that carry credentials (Gemini accepts ``?key=``).
SECRET_PARAMS: Final = frozenset(
    {"key", "api_key", "api-key", "apikey", "access_token", "token", "sig", "signature"}
)

# Secrets shorter than this are not searched for in free text (too many false hits).
_MIN_SECRET = 8


def redact_url(url: str) -> str:
    """``url`` with the userinfo password and credential query values replaced.

    Anything that does not parse as a URL is returned with known patterns only
    (it is still a string someone may print).
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}:{REDACTED}@{host}" if sep else f"{REDACTED}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(name.lower() in SECRET_PARAMS for name, _ in pairs):
            query = urlencode(
                [(n, REDACTED if n.lower() in SECRET_PARAMS else v) for n, v in pairs],
                quote_via=quote,
                safe=":/",
            )
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` with credential values replaced (names kept)."""
    return {
        name: REDACTED if name.lower() in SECRET_HEADERS else value
        for name, value in headers.items()
    }


def secrets_of(url: str | None = None, headers: Mapping[str, str] | None = None) -> set[str]:
    """The secrets a request carries: its credential header values (a
    ``Bearer`` token both whole and alone), its URL password and credential
    query values. Feed them to ``redact_text``."""
    found: set[str] = set()
    for name, value in (headers or {}).items():
        if name.lower() in SECRET_HEADERS and value:
            found.add(value)
            scheme, _, token = value.partition(" ")
            if token and scheme.lower() in ("bearer", "basic", "token"):
                found.add(token.strip())
    if url:
        try:
            parts = urlsplit(url)
        except ValueError:
            return found
        if parts.password:
            found.add(parts.password)
            found.add(unquote(parts.password))
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name.lower() in SECRET_PARAMS and value:
                found.add(value)
    return {secret for secret in found if len(secret) >= _MIN_SECRET}


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret replaced by ``REDACTED``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and len(secret) >= _MIN_SECRET and secret in text:
            text = text.replace(secret, REDACTED)
    return text


def key_may_follow(from_url: str, to_url: str) -> bool:
    """Whether a redirect from ``from_url`` to ``to_url`` may carry the API key:
    the same origin (scheme, host, port), or the same host upgraded from http
    to https on the default ports (the one change httpx lets ``authorization``
    through too)."""
    source, target = _origin(from_url), _origin(to_url)
    if source is None or target is None:
        return False
    if source == target:
        return True
    return source == ("http", target[1], 80) and target[0] == "https" and target[2] == 443


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    return (scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme))


_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


class SecretFilter:
    """Replaces each secret in a byte stream fed in pieces by ``REDACTED``.

    A secret cut between two pieces is caught too: a piece that ends with what
    may be the start of a secret keeps that tail back until the next piece
    (or ``flush()``). Event streams end their pieces with a line end, which
    begins no key, so nothing is held back in practice. Cost: one search per
    secret over each piece, plus a look at its last bytes.

    Args:
        secrets: the secrets to hide (shorter ones than ``redact_text`` looks
            for are ignored, as there).
    """

    __slots__ = ("_held", "_secrets")

    def __init__(self, secrets: Iterable[str]) -> None:
        found = {secret.encode() for secret in secrets if len(secret) >= _MIN_SECRET}
        self._secrets = sorted(found, key=len, reverse=True)
        self._held = b""

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def feed(self, data: bytes) -> bytes:
        """The next piece, with secrets replaced; a tail that may begin a secret is held."""
        if self._held:
            data, self._held = self._held + data, b""
        for secret in self._secrets:
            if secret in data:
                data = data.replace(secret, _REDACTED_BYTES)
        cut = self._partial_tail(data)
        if cut < len(data):
            data, self._held = data[:cut], data[cut:]
        return data

    def flush(self) -> bytes:
        """What is held back, at the end of the stream (not a whole secret)."""
        held, self._held = self._held, b""
        return held

    def _partial_tail(self, data: bytes) -> int:
        # Where the longest tail that is a proper prefix of a secret begins;
        # len(data) when no tail is.
        cut = len(data)
        for secret in self._secrets:
            lead = secret[:1]
            at = data.find(lead, max(len(data) - len(secret) + 1, 0))
            while at != -1 and at < cut:
                if secret.startswith(data[at:]):
                    cut = at
                    break
                at = data.find(lead, at + 1)
        return cut


_REDACTED_BYTES: Final = REDACTED.encode()
