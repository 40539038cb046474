"""Credentials never shown: the one routine for every URL, header and message
streamfold prints, logs or stores.

- ``redact_url``: a URL without its userinfo password and with the values of
  credential query parameters (``?key=``, Gemini's way) replaced.
- ``redact_headers``: the values of credential headers replaced.
- ``redact_text``: any occurrence of known secrets (the API key in use, a URL's
  password) in free text (a provider's error body echoing the key, a message)
  replaced.

No IO and no HTTP library: plain strings in, plain strings out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

__all__ = [
    "REDACTED",
    "SECRET_HEADERS",
    "SECRET_PARAMS",
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
