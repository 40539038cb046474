"""Kept importable: this module lives at ``streamfold.adapters.server`` (IO is under adapters)."""

from __future__ import annotations

from .adapters.server import *  # noqa: F403
from .adapters.server import __all__ as __all__
