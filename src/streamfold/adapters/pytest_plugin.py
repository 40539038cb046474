"""pytest plugin: the replay server as a fixture, for an application's own tests.

Enable it with ``pytest_plugins = ["streamfold.pytest_plugin"]`` in a
``conftest.py`` (or through the package's ``pytest11`` entry point). Then::

    def test_my_app_survives_a_dropped_stream(replay_server):
        client = OpenAI(base_url=replay_server.url, api_key="unused",
                        default_headers={"X-Streamfold-Fault": "drop-after=3"})
        ...
        assert replay_server.requests[-1].outcome == "dropped"

Fixtures (one server per test session, on a free loopback port):

- ``replay_server``: the running ``streamfold.server.ReplayServer``; ``.url`` is
  its base URL, ``.requests`` what it served, ``.request(id)`` one of them.
- ``replay_url``: just the base URL.

It serves streamfold's sample recordings plus the ``.sse`` files and folders
named by the ``streamfold_recordings`` ini option (paths relative to the ini
file). Importing this module needs nothing beyond pytest: the server's
dependencies (``streamfold[server]``) load when a test first asks for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .server import ReplayServer

__all__ = ["replay_server", "replay_url"]

INI_RECORDINGS = "streamfold_recordings"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        INI_RECORDINGS,
        type="paths",
        default=[],
        help="streamfold replay server: .sse files or folders of them to serve "
        "beside the shipped samples",
    )


@pytest.fixture(scope="session")
def replay_server(pytestconfig: pytest.Config) -> Iterator[ReplayServer]:
    """A replay server on a free loopback port for the whole session."""
    try:
        from .server import ReplayServer, load_recordings, sample_recordings
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        pytest.fail(
            f"the replay server needs streamfold[server] (starlette, uvicorn): {exc}",
            pytrace=False,
        )
    recordings = sample_recordings()
    paths: list[Path] = pytestconfig.getini(INI_RECORDINGS)
    if paths:
        recordings.update(load_recordings(*paths))
    server = ReplayServer(recordings).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def replay_url(replay_server: ReplayServer) -> str:
    """The replay server's base URL, e.g. ``http://127.0.0.1:54321``."""
    return replay_server.url
