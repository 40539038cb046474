"""Hostile input, fuzzed: every dialect's recordings mutated as an attacker would.

The promises under test, for every mutated input (``tests.corpus.hostile``:
fields set to wrong types at any depth, deleted or renamed; events duplicated,
moved, dropped or cut; flipped bytes, NUL, invalid UTF-8, stray line ends, a
byte-order mark, truncation):

- only streamfold's own errors escape, strict or lenient, events on or off,
  with ``parse_arguments`` and ``parse_content`` on, and an error carries the
  partial result (``fold_every_way``);
- the fold is the same whether events are built or not;
- the fold is identical (``tests.corpus.comparable``) fed whole, byte by byte
  (short inputs) and cut where hypothesis chooses.

Draws are derandomized and bounded so CI stays fast and reproducible; the long
randomized run is ``bench/fuzz.py``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from .corpus import (
    IN_REPO,
    SHARED,
    HypothesisChooser,
    bytewise,
    cut,
    dialect_of,
    first_difference,
    fold_every_way,
    hostile,
    recording_name,
    recordings,
    split_difference,
)

DIALECTS = (
    "openai-chat",
    "openai-responses",
    "anthropic",
    "gemini",
    "bedrock-converse",
    "bedrock-anthropic",
    "ollama",
    "ollama-generate",
)
# Besides every dialect, every framing other than SSE gets its own draws: few
# recordings are JSON arrays, JSON objects (a body, NDJSON lines) or AWS
# event-stream frames, and their decoders are their own code.
FRAMINGS = ("json-array", "json-body", "event-stream")
# The shared recordings, bounded: the small ones (fast to fold many ways), at
# most this many per group, spread over the sorted list.
_SHARED_MAX_BYTES = 32 * 1024
_SHARED_PER_GROUP = 24
_BYTEWISE_MAX = 2048

_FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    report_multiple_bugs=False,  # shrink one failure per test: CI time stays bounded
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _framing(path: Path) -> str:
    first = path.read_bytes().lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if first and first[0] < 9:
        return "event-stream"
    return {b"[": "json-array", b"{": "json-body"}.get(first, "sse")


@functools.cache
def _pool(source: str, group: str) -> list[Path]:
    """The recordings of ``source`` that fold as dialect ``group``, or that are
    framed as ``group``."""
    if source == "in-repo":
        candidates = recordings(IN_REPO)
    else:
        candidates = [p for p in recordings(SHARED) if p.stat().st_size <= _SHARED_MAX_BYTES]
    found = [p for p in candidates if group in (dialect_of(p), _framing(p))]
    if source == "in-repo":
        return found
    step = max(1, len(found) // _SHARED_PER_GROUP)
    return found[::step][:_SHARED_PER_GROUP]


def _pools() -> list[Any]:
    params = []
    for source in ("in-repo", "shared"):
        for group in (*DIALECTS, *FRAMINGS):
            pool = _pool(source, group)
            marks = (
                [pytest.mark.skip(reason=f"no {source} recording of {group} (shared: {SHARED})")]
                if not pool
                else []
            )
            params.append(pytest.param(source, group, id=f"{group}-{source}", marks=marks))
    return params


POOLS = _pools()


def _draw_input(data: st.DataObject, source: str, group: str) -> tuple[str, bytes]:
    path = data.draw(st.sampled_from(_pool(source, group)), label="recording")
    raw = hostile(HypothesisChooser(data), path.read_bytes())
    note(f"{recording_name(path)} mutated to {len(raw)} bytes: {raw[:2000]!r}")
    return recording_name(path), raw


@pytest.mark.parametrize(("source", "group"), POOLS)
@_FUZZ
@given(data=st.data())
def test_hostile_input_ends_in_a_streamfold_error(
    source: str, group: str, data: st.DataObject
) -> None:
    _, raw = _draw_input(data, source, group)
    fold_every_way(raw)


@pytest.mark.parametrize(("source", "group"), POOLS)
@_FUZZ
@given(data=st.data())
def test_hostile_input_folds_the_same_with_events_off(
    source: str, group: str, data: st.DataObject
) -> None:
    _, raw = _draw_input(data, source, group)
    strict_on, strict_off, lenient_on, lenient_off = fold_every_way(raw)
    for on, off in ((strict_on, strict_off), (lenient_on, lenient_off)):
        difference = first_difference(
            {"result": on["result"], "error": on["error"]},
            {"result": off["result"], "error": off["error"]},
        )
        assert difference is None, "events on and off differ at {}: {!r:.300} != {!r:.300}".format(
            *difference
        )


@pytest.mark.parametrize(("source", "group"), POOLS)
@_FUZZ
@given(data=st.data())
def test_hostile_input_folds_identically_however_it_is_cut(
    source: str, group: str, data: st.DataObject
) -> None:
    name, raw = _draw_input(data, source, group)
    points = data.draw(st.lists(st.integers(0, len(raw)), max_size=24), label="cut points")
    splits = [("random cuts", cut(raw, points))]
    if len(raw) <= _BYTEWISE_MAX:
        splits.append(("byte by byte", bytewise(raw)))
    for how, pieces in splits:
        difference = split_difference(raw, pieces)
        assert difference is None, (
            "{}, {}, {}: whole and split differ at {}: {!r:.300} != {!r:.300}".format(
                name, how, difference[0], *difference[1]
            )
        )
