"""pytest plugin: the replay server as a fixture, for an application's own tests.

Installing streamfold registers it (the package's ``pytest11`` entry point);
``pytest_plugins = ["streamfold.pytest_plugin"]`` in a ``conftest.py`` works too.
Then::

    def test_my_app_retries_a_rate_limit(replay_server):
        replay_server.inject("status=429", times=2)       # this test only
        client = OpenAI(base_url=replay_server.url + "/v1", api_key="unused")
        ...
        assert [r.outcome for r in replay_server.requests] == ["fault", "fault", "complete"]

Fixtures:

- ``replay_server``: the running ``streamfold.server.ReplayServer`` in a
  context of the test's own (``ReplayServer.context``): the faults it
  injects, its scripts and conversations' turns, its request log
  (``.requests``, ``.request(id)``) and its recordings folder are the test's.
  ``.url`` is the base URL.
- ``replay_url``: just the base URL.
- ``replay_server_session``: the one server of the session (a free loopback
  port), outside any test's context.

It serves streamfold's sample recordings, the files and folders named by the
``streamfold_recordings`` ini option (paths relative to the ini file), and
the test's own folder, ``recordings/<module>/<test>/`` beside the test
module. ``--streamfold-record=MODE`` records into that folder:

- ``none`` (the default): replay only; a request with no recording is a 404;
- ``once``: replay what the folder holds, send what it lacks to the real API
  (the caller's key headers passed through, never written) and record it;
- ``all``: send every request to the real API and record it again.

The real API is each API's own (``https://api.openai.com``, ...), or what
``--streamfold-upstream [API=]URL`` (or the ``streamfold_upstream`` ini
option) says. So a suite records once against the real API, then replays
offline. Importing this module needs nothing beyond pytest: the server's
dependencies (``streamfold[server]``) load when a test first asks for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .server import ReplayServer

__all__ = ["recordings_folder", "replay_server", "replay_server_session", "replay_url"]

INI_RECORDINGS = "streamfold_recordings"
INI_UPSTREAM = "streamfold_upstream"
INI_MATCH_IGNORE = "streamfold_match_ignore"
_MODES = ("none", "once", "all")
_UNSAFE = re.compile(r"[^A-Za-z0-9._\[\]=,+-]+")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("streamfold", "streamfold replay server")
    group.addoption(
        "--streamfold-record",
        choices=_MODES,
        default="none",
        help="record the replay_server fixture's requests into each test's folder "
        "(recordings/<module>/<test>/ beside the test module): none replays only "
        "(default), once sends what has no recording to the real API and records it, "
        "all records every request again",
    )
    group.addoption(
        "--streamfold-upstream",
        action="append",
        default=[],
        metavar="[API=]URL",
        help="where recorded requests go: a base URL for every API, or API=URL for "
        "one (default: each API's own, e.g. https://api.openai.com)",
    )
    parser.addini(
        INI_RECORDINGS,
        type="paths",
        default=[],
        help="streamfold replay server: recordings (.sse, .meta.json) or folders of them "
        "to serve beside the shipped samples",
    )
    parser.addini(
        INI_UPSTREAM,
        type="linelist",
        default=[],
        help="streamfold replay server: where recorded requests go ([API=]URL per line)",
    )
    parser.addini(
        INI_MATCH_IGNORE,
        type="linelist",
        default=[],
        help="streamfold replay server: request body fields (dotted paths) left out "
        "when matching requests to recordings (default: metadata, user, "
        "safety_identifier, prompt_cache_key)",
    )


@pytest.fixture(scope="session")
def replay_server_session(pytestconfig: pytest.Config) -> Iterator[ReplayServer]:
    """The replay server of the whole session, on a free loopback port."""
    try:
        from .recordings import DEFAULT_IGNORE
        from .server import ReplayServer, load_recordings, parse_upstreams, sample_recordings
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        pytest.fail(
            f"the replay server needs streamfold[server] (starlette, uvicorn): {exc}",
            pytrace=False,
        )
    recordings = sample_recordings()
    paths: list[Path] = pytestconfig.getini(INI_RECORDINGS)
    if paths:
        recordings.update(load_recordings(*paths))
    upstream = parse_upstreams(
        [*pytestconfig.getini(INI_UPSTREAM), *pytestconfig.getoption("streamfold_upstream")]
    )
    ignore = pytestconfig.getini(INI_MATCH_IGNORE) or DEFAULT_IGNORE
    server = ReplayServer(recordings, upstream=upstream or None, match_ignore=ignore).start()
    try:
        yield server
    finally:
        server.stop()


def recordings_folder(node: pytest.Item) -> Path:
    """Where a test's recordings live: ``recordings/<module>/<test>/`` beside
    its module (the test's name with characters unsafe in a file name replaced)."""
    path = Path(node.path)
    return path.parent / "recordings" / path.stem / (_UNSAFE.sub("-", node.name) or "test")


@pytest.fixture
def replay_server(
    replay_server_session: ReplayServer, request: pytest.FixtureRequest
) -> Iterator[ReplayServer]:
    """The session's replay server, in a context of this test's own: its
    faults, scripts, turns, request log and recordings folder."""
    mode = request.config.getoption("streamfold_record")
    with replay_server_session.context(
        name=request.node.nodeid, record=recordings_folder(request.node), record_mode=mode
    ):
        yield replay_server_session


@pytest.fixture
def replay_url(replay_server: ReplayServer) -> str:
    """The replay server's base URL, e.g. ``http://127.0.0.1:54321``."""
    return replay_server.url
