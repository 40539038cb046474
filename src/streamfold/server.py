"""Kept importable: the module is ``streamfold.adapters.server`` (all IO lives under ``adapters/``)."""

from __future__ import annotations

from .adapters.server import *  # noqa: F403
from .adapters.server import __all__ as __all__
