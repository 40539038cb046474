"""Kept importable: this module lives at ``streamfold.adapters.client`` (IO is under adapters)."""

from __future__ import annotations

from .adapters.client import *  # noqa: F403
from .adapters.client import __all__ as __all__
