"""docs/sdks.md's examples run against the replay server, through the SDKs'
own environment variables, and type-check with ``mypy --strict``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streamfold.adapters.server import ReplayServer

pytest.importorskip("google.genai")
pytest.importorskip("boto3")

PAGE = Path(__file__).resolve().parents[1] / "docs" / "sdks.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
#: The recording that answers each model the examples name.
ANSWERS = {
    "gpt-4.1-mini": "chat-parallel-tools",
    "claude-sonnet-4-5": "anthropic-thinking",
    "gemini-2.5-flash": "gemini-thinking",
    "amazon.nova-pro-v1:0": "bedrock-tools",
    "anthropic.claude-sonnet-4-5-20250929-v1:0": "bedrock-claude-thinking",
}
#: boto3 ships no types: mypy takes its calls as Any, and checks the rest strictly.
MYPY_CONFIG = """\
[mypy]
strict = True

[mypy-boto3,boto3.*,botocore,botocore.*]
ignore_missing_imports = True
"""


@pytest.fixture
def sdk_environment(replay_server: ReplayServer, monkeypatch: pytest.MonkeyPatch) -> None:
    url = replay_server.url
    for name, value in {
        "OPENAI_BASE_URL": url + "/v1",
        "OPENAI_API_KEY": "unused",
        "ANTHROPIC_BASE_URL": url,
        "ANTHROPIC_API_KEY": "unused",
        "GOOGLE_GEMINI_BASE_URL": url,
        "GEMINI_API_KEY": "unused",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "unused",
        "AWS_SECRET_ACCESS_KEY": "unused",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("GOOGLE_API_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_BEARER_TOKEN_BEDROCK"):
        monkeypatch.delenv(name, raising=False)
    for model, recording in ANSWERS.items():
        replay_server.script(*[recording] * 20, model=model)


def test_the_page_has_examples() -> None:
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize(
    "code", [pytest.param(c, id=f"example-{i}") for i, c in enumerate(EXAMPLES)]
)
def test_an_example_runs(code: str, sdk_environment: None, replay_server: ReplayServer) -> None:
    exec(compile(code, str(PAGE), "exec"), {"__name__": "__example__"})
    served = replay_server.requests
    # The client can have read the last byte before the server's thread
    # marks the response ended: wait for each outcome, don't read it.
    assert all(request.wait(10) == "complete" for request in served), served


def test_the_examples_type_check(tmp_path: Path) -> None:
    from mypy import api

    paths = []
    for i, code in enumerate(EXAMPLES):
        path = tmp_path / f"example_{i}.py"
        path.write_text(code, encoding="utf-8")
        paths.append(str(path))
    # The SDKs' types take a minute to analyse cold: the cache beside the
    # project's own (.mypy_cache, git-ignored) makes the next runs quick.
    cache = Path(__file__).resolve().parents[1] / ".mypy_cache" / "docs-sdks"
    config = tmp_path / "mypy.ini"
    config.write_text(MYPY_CONFIG, encoding="utf-8")
    out, err, status = api.run(["--cache-dir", str(cache), "--config-file", str(config), *paths])
    assert status == 0, out + err
