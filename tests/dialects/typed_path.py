"""What a dialect's typed path (``Dialect.fast``) must keep: the fold of any
bytes is the one its dict path gives (``handle`` alone), events, errors,
warnings and the native response included, read after every piece (a typed
delta must invalidate what the response built before it), strict or lenient,
arguments parsed or not, whole or cut. The dialect tests run it over their
fixtures, the shared corpus, streams built to reach each rule of the typed
path, and hostile mutations of those."""

from __future__ import annotations

import contextlib
from collections.abc import Container, Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from streamfold import StreamfoldError, StreamParser
from streamfold.dialects.base import Dialect
from streamfold.events import Event

from ..corpus import (
    HypothesisChooser,
    comparable,
    cut,
    first_difference,
    hostile,
)


def dict_only(dialect: type[Dialect]) -> type[Dialect]:
    """``dialect`` without its typed path: every event goes to ``handle``."""

    def fast(self: Dialect, event: Any) -> bool:
        return False

    # fast_run too: a dialect that folds its hot events in line there never
    # calls fast on them.
    return type(
        f"DictOnly{dialect.__name__}", (dialect,), {"fast": fast, "fast_run": Dialect.fast_run}
    )


def _fold(pieces: Iterable[bytes], dialect: type[Dialect], **options: Any) -> dict[str, Any]:
    parser = StreamParser(dialect, **options)
    events: list[Event] = []
    responses = []
    for piece in pieces:
        events.extend(parser.feed(piece))
        responses.append(msgspec.to_builtins(parser.snapshot.response))
    events.extend(parser.close())
    return {
        "fold": comparable(events, parser.snapshot, parser.error),
        "responses": responses,
    }


def _cuts(data: bytes) -> list[tuple[str, list[bytes]]]:
    return [
        ("whole", [data]),
        ("every 7 bytes", cut(data, range(0, len(data), 7))),
        ("every 97 bytes", cut(data, range(0, len(data), 97))),
    ]


# With events and without: a plain fold's typed paths append to a kept part
# (Accumulator.sink), which no event-producing parser does.
OPTIONS: Sequence[dict[str, bool]] = (
    *(
        {"strict": strict, "parse_arguments": parsed}
        for strict in (True, False)
        for parsed in (True, False)
    ),
    {"strict": True, "events": False},
    {"strict": False, "events": False},
)


def assert_same_as_dict_path(data: bytes, dialect: type[Dialect]) -> None:
    """The typed path folds ``data`` exactly as the dict path does."""
    general = dict_only(dialect)
    for options in OPTIONS:
        for how, pieces in _cuts(data):
            typed, plain = _fold(pieces, dialect, **options), _fold(pieces, general, **options)
            difference = first_difference(typed, plain)
            assert difference is None, (
                "{}, {}: typed and dict paths differ at {}: {!r:.300} != {!r:.300}".format(
                    options, how, *difference
                )
            )


_HOSTILE = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def hostile_test(dialect: type[Dialect], sources: Sequence[bytes | Path]) -> Any:
    """A test: hostile mutations of ``sources`` fold the same on both paths."""

    @_HOSTILE
    @given(data=st.data())
    def test(data: st.DataObject) -> None:
        source = data.draw(st.sampled_from(list(sources)), label="source")
        raw = source.read_bytes() if isinstance(source, Path) else source
        mutated = hostile(HypothesisChooser(data), raw)
        note(f"mutated to {mutated!r:.3000}")
        general = dict_only(dialect)
        for options in (*OPTIONS[:4:3], OPTIONS[-1]):  # strict parsed; lenient; no events
            difference = first_difference(
                _fold([mutated], dialect, **options), _fold([mutated], general, **options)
            )
            assert difference is None, (
                "{}: typed and dict paths differ at {}: {!r:.300} != {!r:.300}".format(
                    options, *difference
                )
            )

    return test


def typed_path_counts(
    dialect: Dialect, events: Iterable[Any], kinds: Container[str]
) -> dict[bool, int]:
    """How many events of ``kinds`` the typed path folded (``True``) and left to
    ``handle`` (``False``), each one it leaves handed to ``handle`` as the parser
    does (which folds it otherwise, warns or raises)."""
    counts = {True: 0, False: 0}
    for event in events:
        folded = dialect.fast(event)
        if event.event in kinds:
            counts[folded] += 1
        if not folded:
            with contextlib.suppress(StreamfoldError):
                dialect.handle(event)
    return counts
