"""Dialects: one module per wire format; the registry (``registry.APIS``) names them.

``get`` turns a name into a dialect class and ``detect`` finds the dialect of a
first event; both read the registry, in its order.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import UsageError
from ..sse import ServerSentEvent
from .base import Dialect
from .registry import API, APIS, get_api

__all__ = ["API", "APIS", "DIALECTS", "Dialect", "detect", "get", "get_api"]


class _Dialects(Mapping[str, "type[Dialect]"]):
    """Dialect id -> class, in the order ``detect`` tries them; a class is
    imported when it is looked up."""

    def __getitem__(self, name: str) -> type[Dialect]:
        for api in APIS:
            if api.id == name:
                return api.dialect
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (api.id for api in APIS)

    def __len__(self) -> int:
        return len(APIS)


#: Dialect id -> class, in the order ``detect`` tries them.
DIALECTS: Mapping[str, type[Dialect]] = _Dialects()


def get(dialect: str | type[Dialect]) -> type[Dialect]:
    """The dialect class for an id or an API's short name (or the class itself).

    Raises:
        UsageError: no dialect has that name.
    """
    if isinstance(dialect, type) and issubclass(dialect, Dialect):
        return dialect
    try:
        return get_api(dialect).dialect
    except UsageError:
        known = ", ".join(["auto", *DIALECTS])
        raise UsageError(f"unknown dialect {dialect!r} (known: {known})") from None


def detect(event: ServerSentEvent, payload: Any) -> type[Dialect] | None:
    """The dialect whose first event looks like ``payload``, or ``None``."""
    for api in APIS:
        if api.dialect.detect(event, payload):
            return api.dialect
    return None
