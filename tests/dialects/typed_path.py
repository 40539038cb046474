"""What a dialect's typed path (``Dialect.fast``) must give: exactly what its
dict path (``handle``) gives, events, result, warnings and error alike. Used by
the dialect tests that hold a typed path to that."""

from __future__ import annotations

from typing import Any

import pytest

from streamfold.dialects.base import Dialect

from ..corpus import SPLIT_OPTIONS, first_difference, fold_checked


def dict_path_difference(raw: bytes, dialect: type[Dialect]) -> Any:
    """Fold ``raw`` under each of ``SPLIT_OPTIONS`` as the dialect does, and
    with its typed path off (every event through ``handle``).

    Returns:
        ``None`` when every fold is identical, else the options and the first
        difference (typed, then dict path).
    """
    for options in SPLIT_OPTIONS:
        typed = fold_checked([raw], dialect, **options)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(dialect, "fast", Dialect.fast)
            plain = fold_checked([raw], dialect, **options)
        difference = first_difference(typed, plain)
        if difference is not None:
            return options, difference
    return None
