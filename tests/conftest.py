"""Fixtures shared by the HTTP tests."""

from __future__ import annotations

from types import ModuleType

import pytest


@pytest.fixture(params=["httpx", "httpx2"])
def lib(request: pytest.FixtureRequest) -> ModuleType:
    """Each HTTP library the adapters take a response from."""
    module: ModuleType = pytest.importorskip(request.param)
    return module
