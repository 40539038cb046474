"""The twins mirror each other: the same public signatures, the same behaviour
on one table of cases run sync and async, with httpx and httpx2; SDK responses
(openai and anthropic run on httpx2) fold with streamfold's errors; and the
adapters type-check with a response of either library."""

from __future__ import annotations

import asyncio
import inspect
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import anthropic
import msgspec
import openai
import pytest

import streamfold
from streamfold.adapters import httpx as adapter
from streamfold.adapters.client import NO_KEY, astream, stream
from streamfold.adapters.httpx import AsyncEventStream, EventStream, HTTPResult, Timeouts
from streamfold.adapters.server import ReplayServer

CHAT = "/v1/chat/completions"

#: Sync name -> async twin, for every public member that differs.
TWIN_NAMES = {"close": "aclose", "__iter__": "__aiter__", "__enter__": "__aenter__"}
TWIN_NAMES["__exit__"] = "__aexit__"


def _public(cls: type) -> dict[str, Any]:
    dunders = {*TWIN_NAMES, *TWIN_NAMES.values(), "__init__"}
    names = [n for n in dir(cls) if not n.startswith("_") or n in dunders]
    return {n: inspect.getattr_static(cls, n) for n in names}


def _shape(member: Any) -> Any:
    if isinstance(member, property):
        return "property"
    function = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
    if not callable(function):
        return type(member).__name__
    signature = inspect.signature(function)
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


def test_the_twins_have_the_same_public_signatures() -> None:
    sync, asynchronous = _public(EventStream), _public(AsyncEventStream)
    assert {TWIN_NAMES.get(n, n) for n in sync} == set(asynchronous)
    for name, member in sync.items():
        twin = asynchronous[TWIN_NAMES.get(name, name)]
        assert _shape(member) == _shape(twin), name
        is_coroutine = inspect.iscoroutinefunction(getattr(twin, "__func__", twin))
        assert is_coroutine == (name in ("open", "final", "close", "__enter__", "__exit__")), name
    assert _shape(adapter.fold_response) == _shape(adapter.afold_response)
    assert _shape(stream) == _shape(astream)


# -- one table, run sync and async, with either library ----------------------------------------


CASES = [
    pytest.param("none", CHAT, None, id="clean"),
    pytest.param("split=bytes", CHAT, None, id="split-bytes"),
    pytest.param("drop-after=20", CHAT, None, id="drop"),
    pytest.param("stall=2, stall-after=5", CHAT, Timeouts(idle=0.2), id="stall"),
    pytest.param("malformed-after=4", CHAT, None, id="malformed"),
    pytest.param("error-after=10", CHAT, None, id="in-band-error"),
    pytest.param("status=429", CHAT, None, id="status-429"),
    pytest.param("status=529", "/v1/messages", None, id="anthropic-529"),
    pytest.param("json-body", CHAT, None, id="json-body"),
    pytest.param(
        "none", "/v1beta/models/gemini-thinking:streamGenerateContent", None, id="json-array"
    ),
]


def _summary(events: list[Any], outcome: Any) -> dict[str, Any]:
    """What a user sees, without the timings and the request id."""
    result = outcome if isinstance(outcome, HTTPResult) else getattr(outcome, "partial", None)
    error = None if isinstance(outcome, HTTPResult) else outcome
    metadata = getattr(result, "metadata", None) or getattr(error, "metadata", None)
    return {
        "events": [msgspec.json.encode(e) for e in events],
        "error": None
        if error is None
        else (type(error).__name__, str(error).split(" (request")[0]),
        "cause": None if error is None else type(error.__cause__).__name__,
        "unified": None if result is None else result.unified,
        "response": None if result is None else result.response,
        "counts": None
        if metadata is None
        else (metadata.status_code, metadata.events_received, metadata.content_type),
    }


def _run(mode: str, lib: ModuleType, url: str, fault: str, timeouts: Timeouts | None) -> Any:
    headers = {"x-streamfold-fault": fault}
    body = {"model": "chat-reasoning"}
    events: list[Any] = []

    def sync() -> Any:
        with lib.Client() as client, client.stream("POST", url, json=body, headers=headers) as r:
            live = EventStream(r, timeouts=timeouts)
            try:
                events.extend(live)
                return live.final()
            except streamfold.StreamfoldError as exc:
                return exc

    async def run_async() -> Any:
        async with (
            lib.AsyncClient() as client,
            client.stream("POST", url, json=body, headers=headers) as r,
        ):
            live = AsyncEventStream(r, timeouts=timeouts)
            try:
                async for event in live:
                    events.append(event)
                return await live.final()
            except streamfold.StreamfoldError as exc:
                return exc

    outcome = sync() if mode == "sync" else asyncio.run(run_async())
    return _summary(events, outcome)


@pytest.mark.parametrize("library", ["httpx", "httpx2"])
@pytest.mark.parametrize(("fault", "path", "timeouts"), CASES)
def test_the_twins_behave_the_same(
    replay_server: ReplayServer, library: str, fault: str, path: str, timeouts: Timeouts | None
) -> None:
    lib = pytest.importorskip(library)
    url = replay_server.url + path
    sync = _run("sync", lib, url, fault, timeouts)
    asynchronous = _run("async", lib, url, fault, timeouts)
    assert sync == asynchronous
    other = _run(
        "sync",
        pytest.importorskip({"httpx": "httpx2", "httpx2": "httpx"}[library]),
        url,
        fault,
        timeouts,
    )
    assert {**other, "cause": None} == {**sync, "cause": None}  # the same whichever library


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_response_is_the_same_on_both_twins(replay_server: ReplayServer, mode: str) -> None:
    options: dict[str, Any] = {"model": "chat-reasoning", "base_url": replay_server.url}
    if mode == "sync":
        live = stream("hi", api_key=NO_KEY, **options)
        with pytest.raises(streamfold.UsageError, match="not been sent"):
            _ = live.response
        with live:
            assert live.response.status_code == 200
    else:

        async def run() -> None:
            live = astream("hi", api_key=NO_KEY, **options)
            with pytest.raises(streamfold.UsageError, match="not been sent"):
                _ = live.response
            async with live:
                assert live.response.status_code == 200

        asyncio.run(run())


def test_the_adapters_import_no_http_library() -> None:
    code = (
        "import sys, streamfold.adapters.httpx, streamfold.adapters.exchange\n"
        "names = ('httpx', 'httpx2', 'httpcore', 'httpcore2')\n"
        "print(','.join(m for m in names if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""


# -- SDK responses (the openai and anthropic SDKs run on httpx2) -----------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    ("fault", "timeouts", "error", "cause"),
    [
        pytest.param(
            "drop-after=20",
            None,
            streamfold.IncompleteStreamError,
            "RemoteProtocolError",
            id="drop",
        ),
        pytest.param(
            "stall=3, stall-after=5",
            Timeouts(idle=0.2),
            adapter.StreamTimeoutError,
            None,
            id="stall",
        ),
    ],
)
def test_an_openai_sdk_response_fails_with_streamfolds_errors(
    replay_server: ReplayServer,
    mode: str,
    fault: str,
    timeouts: Timeouts | None,
    error: type[Exception],
    cause: str | None,
) -> None:
    headers = {"X-Streamfold-Fault": fault}
    messages: Any = [{"role": "user", "content": "hi"}]

    def sync() -> BaseException:
        client = openai.OpenAI(base_url=replay_server.url + "/v1", api_key="unused", max_retries=0)
        with (
            client.chat.completions.with_streaming_response.create(
                model="chat-reasoning", messages=messages, stream=True, extra_headers=headers
            ) as raw,
            pytest.raises(error) as caught,
        ):
            EventStream(raw.http_response, timeouts=timeouts).final()
        return caught.value

    async def run_async() -> BaseException:
        client = openai.AsyncOpenAI(
            base_url=replay_server.url + "/v1", api_key="unused", max_retries=0
        )
        async with client.chat.completions.with_streaming_response.create(
            model="chat-reasoning", messages=messages, stream=True, extra_headers=headers
        ) as raw:
            with pytest.raises(error) as caught:
                await AsyncEventStream(raw.http_response, timeouts=timeouts).final()
        return caught.value

    raised = sync() if mode == "sync" else asyncio.run(run_async())
    assert isinstance(raised.partial, HTTPResult)  # type: ignore[attr-defined]
    assert raised.partial.unified.reasoning  # type: ignore[attr-defined]
    if cause is not None:
        assert type(raised.__cause__).__name__ == cause
        assert type(raised.__cause__).__module__ == "httpx2"


def test_an_anthropic_sdk_response_folds(replay_server: ReplayServer) -> None:
    client = anthropic.Anthropic(base_url=replay_server.url, api_key="unused", max_retries=0)
    with (
        client.messages.with_streaming_response.create(
            model="anthropic-thinking",
            max_tokens=10,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            extra_headers={"X-Streamfold-Fault": "drop-after=5"},
        ) as raw,
        pytest.raises(streamfold.IncompleteStreamError) as caught,
    ):
        EventStream(raw.http_response).final()
    assert type(caught.value.__cause__).__module__ == "httpx2"


# -- typing: a response or a client of either library, no casts ------------------------------


TYPED = textwrap.dedent(
    """
    from __future__ import annotations

    import httpx
    import httpx2

    from streamfold.adapters.client import astream, stream
    from streamfold.adapters.httpx import AsyncEventStream, EventStream, fold_response


    def sync_both(a: httpx.Response, b: httpx2.Response) -> None:
        EventStream(a).final()
        EventStream(b).final()
        fold_response(a)
        fold_response(b)
        stream("hi", model="m", http_client=httpx.Client())
        stream("hi", model="m", http_client=httpx2.Client())


    async def async_both(a: httpx.Response, b: httpx2.Response) -> None:
        await AsyncEventStream(a).final()
        await AsyncEventStream(b).final()
        astream("hi", model="m", http_client=httpx.AsyncClient())
        astream("hi", model="m", http_client=httpx2.AsyncClient())
    """
)


def test_a_response_or_client_of_either_library_type_checks(tmp_path: Path) -> None:
    from mypy import api

    path = tmp_path / "typed.py"
    path.write_text(TYPED)
    out, err, status = api.run(
        ["--strict", "--no-incremental", "--config-file", "/dev/null", str(path)]
    )
    assert status == 0, out + err


def test_pyright_agrees(tmp_path: Path) -> None:
    pyright = shutil.which("pyright") or str(Path(sys.executable).parent / "pyright")
    if not Path(pyright).exists():
        pytest.skip("pyright is not installed")
    path = tmp_path / "typed.py"
    path.write_text(TYPED)
    done = subprocess.run(
        [pyright, "--pythonpath", sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if "npm" in done.stderr and done.returncode != 0 and "error" not in done.stdout:
        pytest.skip(f"pyright could not start: {done.stderr[:200]}")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("library", ["httpx", "httpx2"])
def test_off_asyncio_each_read_runs_under_a_cancel_scope(
    replay_server: ReplayServer, library: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without an asyncio task to cancel (trio), the async twin bounds each read
    # with a cancel scope; forced here on asyncio.
    lib = pytest.importorskip(library)
    monkeypatch.setattr(adapter._TaskWatchdog, "start", classmethod(lambda cls, exchange: None))
    url = replay_server.url + CHAT
    outcome = _run("async", lib, url, "stall=3, stall-after=5", Timeouts(idle=0.2))
    assert outcome["error"][0] == "StreamTimeoutError"
    assert outcome == _run("sync", lib, url, "stall=3, stall-after=5", Timeouts(idle=0.2))
