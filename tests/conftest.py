"""Fixtures shared by the tests, and the ``--update-golden`` option."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the fixtures' golden files (<case>.unified.json, <case>.response.json) "
        "from the current fold instead of comparing; review the diff before committing",
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    # What collection built (every test module, its parameters, the SDKs they
    # import: ~700,000 objects) is kept to the end: out of the collector's
    # reach, so that a full collection in a test walks only what the tests
    # made since (314 ms a pass otherwise, longer as the run grows: enough to
    # trip the SDK tests' read timeout in the middle of a stream).
    gc.collect()
    gc.freeze()


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """Whether the run rewrites the golden files (``--update-golden``)."""
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(params=["httpx", "httpx2"])
def lib(request: pytest.FixtureRequest) -> ModuleType:
    """Each HTTP library the adapters take a response from."""
    module: ModuleType = pytest.importorskip(request.param)
    return module


@pytest.fixture(autouse=True)
def _recursion_limit() -> Iterator[None]:
    """Each test starts at the interpreter's recursion limit: mypy, run in
    process by the typing tests, raises it for itself, and how deep a JSON
    value may nest before it is a parse error follows it."""
    limit = sys.getrecursionlimit()
    yield
    sys.setrecursionlimit(limit)
