"""Shared test helpers: the team's recorded corpus, and folding with arbitrary cuts."""

from __future__ import annotations

import contextlib
import csv
import functools
import itertools
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

from streamfold import StreamfoldError, StreamParser
from streamfold.events import Event
from streamfold.result import Result

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SKIP_REASON = f"the shared corpus is absent (expected at {CORPUS})"


@functools.cache
def manifest() -> dict[str, dict[str, str]]:
    """The corpus manifest, by file name (empty when the corpus is absent)."""
    path = CORPUS / "MANIFEST.tsv"
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["file"]: row for row in csv.DictReader(handle, delimiter="\t")}


def corpus_files(api: str) -> list[Any]:
    """``pytest.param`` per corpus stream of ``api`` (chat, responses, anthropic,
    gemini, other), or one skipped param saying why when the corpus is absent."""
    if not CORPUS.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_REASON), id="no-corpus")]
    files = sorted(CORPUS.glob(f"*__{api}__*.sse"))
    return [pytest.param(path, id=path.stem) for path in files]


def features(path: Path) -> set[str]:
    """The manifest's feature hints for a corpus stream."""
    row = manifest().get(path.name)
    return set(row["features"].split(",")) if row else set()


def fold_pieces(
    pieces: Iterable[bytes], dialect: Any = "auto", **options: Any
) -> tuple[list[Event], Result | None, BaseException | None]:
    """Feed pieces to a fresh parser: (events, result or None, error or None)."""
    parser = StreamParser(dialect, **options)
    events: list[Event] = []
    for piece in pieces:
        events.extend(parser.feed(piece))
    events.extend(parser.close())
    if parser.error is not None:
        return events, parser.snapshot, parser.error
    return events, parser.final(), None


def cut(data: bytes, points: Sequence[int]) -> list[bytes]:
    """Split ``data`` at the given offsets (any order, duplicates allowed)."""
    bounds = [0, *sorted({min(max(p, 0), len(data)) for p in points}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def bytewise(data: bytes) -> list[bytes]:
    """Every byte its own chunk."""
    return [data[i : i + 1] for i in range(len(data))]


_MUTATION_BYTES = list(b'{}[]":,\n\r\\0a1\xff ')


def mutate(data: st.DataObject, raw: bytes) -> bytes:
    """``raw`` with 1 to 8 random flips, deletions, insertions or a truncation."""
    out = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(out) - 1))
        action = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        byte = data.draw(st.sampled_from(_MUTATION_BYTES))
        if action == "flip":
            out[position] = byte
        elif action == "delete":
            del out[position]
        elif action == "insert":
            out.insert(position, byte)
        else:
            del out[position:]
        if not out:
            out = bytearray(b"x")
    return bytes(out)


def fold_raising_only_our_errors(raw: bytes, dialect: Any = "auto") -> None:
    """Fold ``raw`` strictly and leniently: anything but streamfold's own errors
    escapes and fails the calling test."""
    for strict in (True, False):
        parser = StreamParser(dialect, strict=strict, parse_arguments=True)
        parser.feed(raw)
        parser.close()
        with contextlib.suppress(StreamfoldError):
            parser.final()
        parser.snapshot.unified.to_dict()


PAIRS = ROOT.parent / "shared" / "pairs"
PAIRS_SKIP_REASON = f"the shared pairs are absent (expected at {PAIRS})"


@functools.cache
def pairs_manifest() -> dict[str, dict[str, str]]:
    """The pairs' manifest, by pair name (empty when the pairs are absent)."""
    path = PAIRS / "MANIFEST.tsv"
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["name"]: row for row in csv.DictReader(handle, delimiter="\t")}


def pair_files() -> list[Any]:
    """``pytest.param(sse_path, provider)`` per pair of ``../shared/pairs`` (a streamed
    ``.sse`` and the non-streaming ``.json`` of the same request), or one skipped
    param saying why when the folder is absent."""
    if not PAIRS.is_dir():
        return [
            pytest.param(
                None, None, marks=pytest.mark.skip(reason=PAIRS_SKIP_REASON), id="no-pairs"
            )
        ]
    rows = pairs_manifest()
    return [
        pytest.param(path, rows[path.stem]["provider"] if path.stem in rows else "", id=path.stem)
        for path in sorted(PAIRS.glob("*.sse"))
    ]
