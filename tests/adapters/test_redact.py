"""The one redaction routine: no credential in any URL, header or message shown."""

from __future__ import annotations

import pytest

from streamfold.adapters.redact import (
    REDACTED,
    redact_headers,
    redact_text,
    redact_url,
    secrets_of,
)

KEY = "sk-live-0123456789abcdef"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("https://api.openai.com/v1", "https://api.openai.com/v1", id="plain"),
        pytest.param(
            "http://host/v1?key=AIzaSECRET123&alt=sse",
            f"http://host/v1?key={REDACTED}&alt=sse",
            id="gemini-key-param",
        ),
        pytest.param(
            "http://host/v1?API_KEY=secret-value-1&x=1",
            f"http://host/v1?API_KEY={REDACTED}&x=1",
            id="param-name-any-case",
        ),
        pytest.param(
            "http://alice:hunter2hunter2@proxy:8080/v1",
            f"http://alice:{REDACTED}@proxy:8080/v1",
            id="userinfo-password",
        ),
        pytest.param("http://tokenonly@host/v1", f"http://{REDACTED}@host/v1", id="userinfo-token"),
        pytest.param("not a url at all", "not a url at all", id="not-a-url"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_headers_keeps_names_hides_values() -> None:
    headers = {"Authorization": f"Bearer {KEY}", "x-api-key": KEY, "accept": "text/event-stream"}
    assert redact_headers(headers) == {
        "Authorization": REDACTED,
        "x-api-key": REDACTED,
        "accept": "text/event-stream",
    }


def test_secrets_of_a_request_then_redacted_from_an_echoing_error_body() -> None:
    secrets = secrets_of(
        "http://u:pw-0123456789@h/v1?key=AIzaSECRET123", {"Authorization": f"Bearer {KEY}"}
    )
    assert {KEY, "pw-0123456789", "AIzaSECRET123"} <= secrets
    body = f'{{"error": {{"message": "Incorrect API key provided: {KEY}. pw-0123456789"}}}}'
    shown = redact_text(body, secrets)
    assert KEY not in shown and "pw-0123456789" not in shown
    assert shown.count(REDACTED) == 2


def test_short_values_are_not_taken_for_secrets() -> None:
    # A one-letter "key" would blank out every occurrence of that letter.
    assert secrets_of("http://h/?key=a") == set()
    assert redact_text("a cat", {"a"}) == "a cat"
