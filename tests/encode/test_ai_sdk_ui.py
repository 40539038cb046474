"""The Vercel AI SDK's own client code reads the UI message streams streamfold
writes: every recording of every dialect, encoded to the UI message stream, is
read by ``parseJsonEventStream`` with ``uiMessageChunkSchema`` (what
``useChat``'s transport does) and ``readUIMessageStream``; every chunk passes
the schema and the SDK builds the same message (parts, ids, metadata) as
streamfold's ``ai-sdk-ui`` dialect. The UI fixtures themselves are read too.

Needs Node and the ``ai`` package, which the tests install themselves when
``tests/node/node_modules`` is absent and npm is present (``npm ci`` from the
committed lockfile); they skip saying why when that fails (no npm, no registry).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from streamfold.encode import UIMessageStreamEncoder

from ..corpus import FIXTURES
from .test_encode import PATHS, RECORDINGS, _id, encode, fold

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
READER = NODE_DIR / "read_ui_streams.mjs"
SDK = NODE_DIR / "node_modules" / "ai" / "package.json"
NPM_TIMEOUT = 300  # seconds: a first install takes a few


@pytest.fixture(scope="session")
def ai_sdk() -> Path:
    """The AI SDK under ``tests/node``, installed by ``npm ci`` when absent;
    else a skip that says why (pytest keeps it for the session: one try)."""
    if shutil.which("node") is None:
        pytest.skip("Node is not installed")
    if SDK.exists():
        return SDK
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("the AI SDK is not installed and npm is not there to install it")
    # Retries as npm's defaults, waiting less between them: an unreachable
    # registry costs seconds, not a minute.
    command = [npm, "ci", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund"]
    command += ["--fetch-retry-mintimeout=2000", "--fetch-retry-maxtimeout=10000"]
    try:
        done = subprocess.run(
            command, capture_output=True, stdin=subprocess.DEVNULL, timeout=NPM_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm ci did not finish in {NPM_TIMEOUT} s (is the npm registry reachable?)")
    if done.returncode != 0 or not SDK.exists():
        lines = done.stderr.decode(errors="replace").splitlines()
        errors = [line for line in lines if line.startswith("npm error")] or lines or ["no output"]
        pytest.skip(f"npm ci failed ({done.returncode}): {errors[0]}")
    return SDK


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


@pytest.fixture(scope="module")
def streams(ai_sdk: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, Any]]:
    """Every stream to read: name -> (bytes, what the SDK made of them)."""
    folder = tmp_path_factory.mktemp("ui-streams")
    data: dict[str, bytes] = {}
    for path in PATHS:
        events, _ = fold(path.read_bytes())
        data[f"encoded-{_id(path)}"] = encode(events, "ai-sdk-ui")
    for name in KEPT_ALIVE:
        # A keep-alive frame before every chunk, as a relay writes them.
        frame = UIMessageStreamEncoder.keepalive or b""
        body = data[name.replace("keepalive-", "encoded-", 1)]
        data[name] = frame + body.replace(b"\n\n", b"\n\n" + frame)
    for path in sorted((FIXTURES / "ai_sdk_ui").glob("*.sse")):
        data[f"fixture-{path.name}"] = path.read_bytes()
    files = {}
    for number, (name, body) in enumerate(data.items()):
        file = folder / f"{number:04d}.sse"
        file.write_bytes(body)
        files[str(file)] = name
    run = subprocess.run(
        ["node", str(READER), *files],
        cwd=NODE_DIR,
        capture_output=True,
        check=True,
        timeout=300,
    )
    read = {}
    for line in run.stdout.decode().splitlines():
        record = json.loads(line)
        read[files[record["file"]]] = record
    return {name: (body, read[name]) for name, body in data.items()}


KEPT_ALIVE = [f"keepalive-{_id(p)}" for p in PATHS if _id(p).startswith("samples/")]


def _names() -> list[str]:
    names = [f"encoded-{p.id}" for p in RECORDINGS] + KEPT_ALIVE
    names += [f"fixture-{p.name}" for p in sorted((FIXTURES / "ai_sdk_ui").glob("*.sse"))]
    return names


@pytest.mark.parametrize("name", _names())
def test_the_ai_sdk_reads_the_same_message(
    name: str, streams: dict[str, tuple[bytes, Any]]
) -> None:
    body, record = streams[name]
    assert record["invalid"] == [], "chunks the AI SDK's schema rejects"
    _, ours = fold(body)
    if record["message"] is None:
        # Nothing but an error: the SDK builds no message; we fold none either.
        assert ours.error is not None
        return
    theirs, message = without_nulls(record["message"]), without_nulls(ours.snapshot.response)
    if (
        message["parts"][-1:] == [{"type": "step-start"}]
        and theirs["parts"] == message["parts"][:-1]
    ):
        # readUIMessageStream yields a snapshot on every chunk but start-step:
        # a step that starts and fails at once is in its state, not its output.
        message["parts"].pop()
    assert theirs == message
    error = ours.snapshot.unified.error
    if error is not None and error.type == "provider_error" and error.code is None:
        assert record["errors"] == [error.message]
