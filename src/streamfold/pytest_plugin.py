"""Kept importable: the plugin lives at ``streamfold.adapters.pytest_plugin``."""

from __future__ import annotations

from .adapters.pytest_plugin import *  # noqa: F403
from .adapters.pytest_plugin import __all__ as __all__
