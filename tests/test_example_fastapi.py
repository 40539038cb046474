"""examples/fastapi_relay.py for real: the example app runs under uvicorn on a
loopback socket, calls the replay server through streamfold's live client, and
is read with httpx (the ``useChat`` endpoint) and with the ``openai`` package
(the gateway). The relayed streams fold to what the upstream recordings fold
to, and a client that leaves midway makes the app close its upstream: the
replay server sees its client disconnect.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import socket
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from streamfold import StreamParser, samples
from streamfold.adapters.client import NO_KEY

from .corpus import ROOT

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")
server = pytest.importorskip("streamfold.adapters.server")


def _example() -> ModuleType:
    path = ROOT / "examples" / "fastapi_relay.py"
    spec = importlib.util.spec_from_file_location("fastapi_relay", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = _example()


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` under uvicorn on a free loopback port, in a thread: its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        access_log=False,
        http="h11",
        loop="asyncio",
        timeout_graceful_shutdown=1,
    )
    app_server = uvicorn.Server(config)
    thread = threading.Thread(target=app_server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not app_server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the app did not start"
        time.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        app_server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def relay(replay_server_session: Any) -> Iterator[str]:
    # The session's server: a module-scoped fixture cannot take the per-test one.
    with serving(example.create_app(base_url=replay_server_session.url, api_key=NO_KEY)) as url:
        yield url


def ui_request(text: str) -> dict[str, Any]:
    """What useChat's default transport posts."""
    return {
        "id": "chat-1",
        "messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": text}]}],
        "trigger": "submit-message",
        "messageId": None,
    }


def view(data: bytes, dialect: str = "auto") -> dict[str, Any]:
    """What a reader of ``data`` gets: text, reasoning, calls, and how it ended."""
    parser = StreamParser(dialect)
    parser.feed(data)
    parser.close()
    unified = parser.snapshot.unified
    return {
        "text": unified.text,
        "reasoning": unified.reasoning,
        "tool_calls": [(c.id, c.name, json.loads(c.arguments)) for c in unified.tool_calls],
        "error": None if unified.error is None else (unified.error.type, unified.error.message),
    }


@pytest.mark.parametrize("sample", samples.SAMPLES, ids=lambda s: s.name)
def test_use_chat_gets_any_providers_answer_as_a_ui_message_stream(
    relay: str, replay_server: Any, sample: samples.Sample
) -> None:
    params = {"api": sample.api, "model": sample.name}
    with httpx.stream("POST", f"{relay}/api/chat", params=params, json=ui_request("Hi")) as answer:
        body = answer.read()
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert answer.headers["cache-control"] == "no-cache"
    assert view(body, "ai-sdk-ui") == view(samples.read(sample.name))
    served = replay_server.requests[-1]
    # Waited for: the relay can have read the last byte before the server marks it ended.
    assert (served.api, served.recording, served.wait(10)) == (sample.api, sample.name, "complete")
    assert "Hi" in json.dumps(served.body)  # the prompt, in the API's own shape


def test_an_unknown_api_is_a_400(relay: str) -> None:
    answer = httpx.post(f"{relay}/api/chat", params={"api": "nope"}, json=ui_request("Hi"))
    assert answer.status_code == 400 and "unknown API" in answer.text


def test_an_openai_client_streams_an_anthropic_answer_through_the_gateway(
    relay: str, replay_server: Any
) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{relay}/v1", api_key="unused", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="anthropic-thinking",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Is 9.11 larger than 9.9?"}]},
            ],
            stream=True,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
        for c in chunks
        if c.choices
    )
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    upstream = view(samples.read("anthropic-thinking"))
    assert (text, reasoning, finish) == (upstream["text"], upstream["reasoning"], ["stop"])
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    served = replay_server.requests[-1]
    assert (served.path, served.body["system"]) == ("/v1/messages", "Be brief.")
    assert served.body["messages"] == [{"role": "user", "content": "Is 9.11 larger than 9.9?"}]


def test_the_gateway_refuses_a_request_that_does_not_stream(relay: str) -> None:
    answer = httpx.post(
        f"{relay}/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "Hi"}]},
    )
    assert answer.status_code == 400


def test_a_client_that_leaves_midway_makes_the_app_close_its_upstream() -> None:
    # The upstream sends four events (the first delta is the fourth), then is
    # silent for a minute: the app is waiting on it when its client goes away.
    faults = server.Faults(stall=60.0, stall_after=4)
    with (
        server.ReplayServer(faults=faults) as upstream,
        serving(example.create_app(base_url=upstream.url, api_key=NO_KEY)) as url,
    ):
        params = {"api": "anthropic", "model": "anthropic-thinking"}
        with httpx.stream(
            "POST", f"{url}/api/chat", params=params, json=ui_request("Hi")
        ) as answer:
            lines = answer.iter_lines()
            assert any('"type":"reasoning-delta"' in line for line in lines)
        served = upstream.requests[-1]
        assert served.wait(20) == "disconnected"
        assert served.events_sent == 4
        # The app serves the next request as if nothing happened.
        answer = httpx.post(f"{url}/api/chat", params={"api": "nope"}, json=ui_request("Hi"))
        assert answer.status_code == 400


def test_a_cut_upstream_is_a_cut_response() -> None:
    # The provider's connection drops after five events: the browser's stream
    # is cut too (not ended cleanly, which the AI SDK would take for a whole answer).
    with (
        server.ReplayServer(faults=server.Faults(drop_after=5)) as upstream,
        serving(example.create_app(base_url=upstream.url, api_key=NO_KEY)) as url,
    ):
        params = {"api": "anthropic", "model": "anthropic-thinking"}
        received: list[bytes] = []
        request = httpx.stream("POST", f"{url}/api/chat", params=params, json=ui_request("Hi"))
        with request as answer, pytest.raises(httpx.RemoteProtocolError):
            for chunk in answer.iter_bytes():
                received.append(chunk)
        assert upstream.requests[-1].wait(20) == "dropped"
    relayed = view(b"".join(received), "ai-sdk-ui")
    assert relayed["error"][0] == "incomplete_stream"
    assert relayed["reasoning"]  # what came before the cut was relayed
