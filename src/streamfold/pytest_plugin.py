"""Kept importable: the module is ``streamfold.adapters.pytest_plugin`` (all IO lives under ``adapters/``)."""

from __future__ import annotations

from .adapters.pytest_plugin import *  # noqa: F403
from .adapters.pytest_plugin import __all__ as __all__
