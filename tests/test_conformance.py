"""One conformance suite: the invariants every dialect keeps, on every recording.

Every in-repo fixture (``tests/fixtures/<dialect>/``, and ``fixtures/wire/``
for the same recordings in their wire framing) and every stream of the shared
corpus and pairs (``../shared``; skipped with the reason when absent), for
every dialect of the registry:

- **split invariance**: fed whole, byte by byte (under 4 KiB) or cut at seeded
  random points, the fold is identical (``tests.corpus.comparable``: events,
  native response, unified view, warnings, error type, message and position),
  strict and lenient; events on or off, the result and error are the same;
- **async parity**: ``aiter_events``/``afold`` give what ``iter_events``/``fold`` give;
- **detection**: ``dialect="auto"`` names the recording's dialect (its folder,
  its manifest row), and folds exactly as that dialect named explicitly;
- **the order contract** of docs/semantics.md (``tests.corpus.check_order``);
- **JSON round trip**: every event, and every result failed or not, decodes
  back ``==`` to itself; the unified view and the native response are JSON;
- **golden files** beside each fixture: ``<case>.unified.json`` and
  ``<case>.response.json``, what the fold gives (``pytest --update-golden``
  rewrites them; review the diff: they are what the provider's non-streaming
  API returns);
- **hostile input**, fuzzed per dialect and per framing (``tests.corpus.hostile``).

A per-dialect test file holds what only its dialect does.
"""

from __future__ import annotations

import contextlib
import functools
import json
import random
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import streamfold
from streamfold import StreamfoldError, StreamParser
from streamfold.dialects import APIS
from streamfold.events import Event, to_json
from streamfold.result import Result

from .corpus import (
    CORPUS,
    FIXTURES,
    GOLDEN_KINDS,
    IN_REPO,
    PAIRS,
    PAIRS_SKIP_REASON,
    SHARED,
    SKIP_REASON,
    SPLIT_OPTIONS,
    HypothesisChooser,
    bytewise,
    check_order,
    comparable,
    cut,
    dialect_of,
    first_difference,
    fold_checked,
    fold_every_way,
    fold_with_finishes,
    hostile,
    is_golden,
    manifest,
    pairs_manifest,
    recording_name,
    recordings,
    split_difference,
)

DIALECTS = tuple(api.id for api in APIS)

# -- the recordings, and the dialect each is ---------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """One recording: its path, the dialect it is (``""``: nothing in it names
    one), and the golden files it must fold to (``<golden>.unified.json``, ...)."""

    path: Path
    dialect: str
    golden: Path | None = None


#: The fixture folder of each dialect: its id, kebab-case to snake_case.
_FOLDERS = {api.id.replace("-", "_"): api.id for api in APIS}
#: Recordings in their wire framing, ``<folder>__<case>.<ext>``: the same answer
#: as ``<folder>/<case>.sse``, whose golden files they must fold to.
WIRE = FIXTURES / "wire"
#: Fixtures of a folder that holds two dialects (Ollama's two APIs), by name.
_FIXTURE_PREFIXES = {"ollama/generate-": "ollama-generate"}
#: Fixtures whose bytes name no dialect: the dialect never learns what it is.
UNDETECTABLE = {
    "ollama/chat-error-only": "Ollama's error line alone ({'error': ...}) is any API's envelope",
}
#: The shared corpus: the dialect of its manifest's ``api``; the ``other`` rows by name.
_CORPUS_APIS = {
    "chat": "openai-chat",
    "responses": "openai-responses",
    "anthropic": "anthropic",
    "gemini": "gemini",
}
_CORPUS_OTHER = {
    "amazon-bedrock__other__converse-stream-": "bedrock-converse",
    "cohere__other__v2-chat-": "cohere-chat",
    "google__other__interactions-": "gemini-interactions",
    "openai__other__legacy-completions-": "openai-completions",
}
#: The shared pairs: the dialect of the request path, by its end.
_PAIR_PATHS = {
    "/chat/completions": "openai-chat",
    "/responses": "openai-responses",
    "/messages": "anthropic",
    "/v2/chat": "cohere-chat",
    ":generateContent": "gemini",
}


def _fixture(path: Path) -> Recorded:
    folder = path.parent.name
    if folder == WIRE.name:
        folder, case = path.stem.split("__", 1)
    else:
        case = path.stem
    name = f"{folder}/{case}"
    dialect = _FOLDERS.get(folder, f"<no dialect has the folder {folder!r}>")
    dialect = next((d for p, d in _FIXTURE_PREFIXES.items() if name.startswith(p)), dialect)
    if name in UNDETECTABLE:
        dialect = ""
    return Recorded(path, dialect, FIXTURES / folder / case)


def _corpus(path: Path) -> Recorded:
    row = manifest().get(path.name, {})
    dialect = _CORPUS_APIS.get(row.get("api", ""), "")
    prefix = next((p for p in _CORPUS_OTHER if path.name.startswith(p)), None)
    return Recorded(path, _CORPUS_OTHER[prefix] if prefix else dialect)


def _pair(path: Path) -> Recorded:
    request = pairs_manifest().get(path.stem, {}).get("request_path", "")
    return Recorded(path, next((d for end, d in _PAIR_PATHS.items() if request.endswith(end)), ""))


def _params(found: Iterable[Recorded]) -> list[Any]:
    return [pytest.param(r, id=recording_name(r.path)) for r in found]


FIXTURE_STREAMS = [_fixture(p) for p in recordings((FIXTURES,))]


def _shared(folder: Path, reason: str, read: Any) -> list[Any]:
    if not folder.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id=folder.name)]
    return _params(read(p) for p in sorted(folder.glob("*.sse")))


STREAMS = [
    *_params(FIXTURE_STREAMS),
    *_shared(CORPUS, SKIP_REASON, _corpus),
    *_shared(PAIRS, PAIRS_SKIP_REASON, _pair),
]


def test_every_dialect_has_fixtures_and_every_fixture_a_dialect() -> None:
    # Every dialect's invariants run without ../shared.
    folders = {p.parent.name for p in FIXTURES.glob("*/*") if not is_golden(p)}
    assert folders - {WIRE.name} <= set(_FOLDERS), "a fixture folder no dialect has"
    covered = {r.dialect for r in FIXTURE_STREAMS}
    assert [d for d in DIALECTS if d not in covered] == []


def test_every_golden_file_has_its_fixture() -> None:
    cases = {r.golden for r in FIXTURE_STREAMS}
    for golden in sorted(p for p in FIXTURES.rglob("*.json") if is_golden(p)):
        case = golden.with_name(golden.name.rsplit(".", 2)[0])
        assert case in cases, f"{golden} has no fixture (delete it or add the recording)"


# -- split invariance ---------------------------------------------------------------------

_BYTEWISE_MAX = 4096
_RANDOM_SPLITS = 6
_RANDOM_CUTS = 48


def splits(name: str, raw: bytes) -> list[tuple[str, list[bytes]]]:
    """How a recording is cut: byte by byte when small, else 7-byte reads and
    ``_RANDOM_SPLITS`` sets of random cut points, seeded by its name."""
    if len(raw) <= _BYTEWISE_MAX:
        return [("byte by byte", bytewise(raw))]
    rng = random.Random(name)
    found = [("7-byte reads", cut(raw, range(7, len(raw), 7)))]
    for i in range(_RANDOM_SPLITS):
        points = [rng.randrange(len(raw) + 1) for _ in range(_RANDOM_CUTS)]
        found.append((f"random cuts #{i}", cut(raw, points)))
    return found


def _difference(name: str, a: Any, b: Any) -> str:
    where, x, y = first_difference(a, b) or ("", None, None)
    return f"{name}: differ at {where}: {x!r:.300} != {y!r:.300}"


@pytest.mark.parametrize("recorded", STREAMS)
def test_any_split_folds_identically(recorded: Recorded) -> None:
    raw = recorded.path.read_bytes()
    name = recording_name(recorded.path)
    cuts = splits(name, raw)
    for options in SPLIT_OPTIONS:
        whole = fold_checked([raw], **options)
        for how, pieces in cuts:
            split = fold_checked(pieces, **options)
            assert split == whole, _difference(f"{how}, {options}", whole, split)
        off = fold_checked([raw], **{**options, "events": False})
        assert (off["result"], off["error"]) == (whole["result"], whole["error"]), _difference(
            f"events off, {options}", whole, {**off, "events": whole["events"]}
        )


# -- async parity -----------------------------------------------------------------------------


def _reads(raw: bytes) -> list[bytes]:
    return cut(raw, range(0, len(raw), 1000))


async def _areads(raw: bytes) -> AsyncIterator[bytes]:
    for piece in _reads(raw):
        yield piece


def _failure(error: BaseException | None) -> tuple[Result | None, BaseException | None]:
    if error is None:
        return None, None
    assert isinstance(error, StreamfoldError), repr(error)
    return error.partial, error


@pytest.mark.parametrize("recorded", STREAMS)
async def test_the_async_twins_give_what_the_sync_ones_give(recorded: Recorded) -> None:
    raw = recorded.path.read_bytes()
    sync_events: list[Event] = []
    sync_error = async_error = None
    try:
        sync_events.extend(
            streamfold.iter_events(_reads(raw), parse_arguments=True, parse_content=True)
        )
    except StreamfoldError as error:
        sync_error = error
    async_events: list[Event] = []
    try:
        async for event in streamfold.aiter_events(
            _areads(raw), parse_arguments=True, parse_content=True
        ):
            async_events.append(event)
    except StreamfoldError as error:
        async_error = error
    sync, asynchronous = (
        comparable(sync_events, *_failure(sync_error)),
        comparable(async_events, *_failure(async_error)),
    )
    assert asynchronous == sync, _difference("aiter_events", sync, asynchronous)

    def folded(result: Result | None, error: BaseException | None) -> dict[str, Any]:
        partial, error = _failure(error)
        return comparable([], result or partial, error)

    try:
        sync = folded(streamfold.fold(_reads(raw)), None)
    except StreamfoldError as error:
        sync = folded(None, error)
    try:
        asynchronous = folded(await streamfold.afold(_areads(raw)), None)
    except StreamfoldError as error:
        asynchronous = folded(None, error)
    assert asynchronous == sync, _difference("afold", sync, asynchronous)


# -- detection ------------------------------------------------------------------------------


@pytest.mark.parametrize("recorded", STREAMS)
def test_the_dialect_is_detected_from_the_bytes(recorded: Recorded) -> None:
    raw = recorded.path.read_bytes()
    auto = fold_checked([raw], parse_arguments=True)
    assert auto["result"]["dialect"] == recorded.dialect
    if recorded.dialect:
        named = fold_checked([raw], recorded.dialect, parse_arguments=True)
        assert named == auto, _difference(f"dialect={recorded.dialect!r}", auto, named)


# -- the order contract ------------------------------------------------------------------------


@pytest.mark.parametrize("recorded", STREAMS)
def test_the_events_keep_the_order_contract(recorded: Recorded) -> None:
    events, error, finished_at = fold_with_finishes(recorded.path.read_bytes())
    check_order(events, failed=error is not None, finished_at=finished_at)


# -- JSON round trip ----------------------------------------------------------------------------

_event_decoder = msgspec.json.Decoder(Event)
_result_decoder = msgspec.json.Decoder(Result)


@pytest.mark.parametrize("recorded", STREAMS)
def test_events_and_results_round_trip_through_json(recorded: Recorded) -> None:
    parser = StreamParser(parse_arguments=True, parse_content=True)
    events = [*parser.feed(recorded.path.read_bytes()), *parser.close()]
    for event in events:
        assert _event_decoder.decode(to_json(event)) == event
    # A result is data: a failed one carries its error as an ErrorInfo, never the
    # exception (whose .partial is the result), so it encodes like any other.
    result = parser.snapshot
    assert _result_decoder.decode(msgspec.json.encode(result)) == result
    for view in (result.unified.to_dict(), result.response):
        assert json.loads(json.dumps(view)) == view
    error = parser.error
    if error is not None:
        assert error.partial is not None and result.error == error.info == error.partial.error


# -- golden files ---------------------------------------------------------------------------


def golden_views(raw: bytes) -> dict[str, Any]:
    """What a fixture's golden files hold: the fold's unified view and native
    response (the partial ones when it failed), as ``streamfold.fold`` folds it."""
    parser = StreamParser()
    parser.feed(raw)
    parser.close()
    with contextlib.suppress(StreamfoldError):
        parser.final()
    result = parser.snapshot
    return {"unified": result.unified.to_dict(), "response": result.response}


def _golden_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("recorded", _params(FIXTURE_STREAMS))
def test_a_fixture_folds_to_its_golden_files(recorded: Recorded, update_golden: bool) -> None:
    assert recorded.golden is not None
    got = golden_views(recorded.path.read_bytes())
    if recorded.path.parent == WIRE:
        # The same answer in its wire framing: what its recording folds to.
        twin = recorded.golden.with_name(recorded.golden.name + ".sse")
        expected = golden_views(twin.read_bytes())
        assert got == expected, _difference(twin.name, expected, got)
        return
    for kind in GOLDEN_KINDS:
        path = recorded.golden.with_name(f"{recorded.golden.name}.{kind}.json")
        want = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
        if update_golden:
            if got[kind] != want:  # an equal file keeps its layout (its key order)
                path.write_text(_golden_text(got[kind]), encoding="utf-8")
            continue
        assert path.exists(), f"{path.name} is missing: run pytest --update-golden, review it"
        assert got[kind] == want, _difference(
            f"{path.name} (if the change is right: pytest --update-golden, review the diff)",
            want,
            got[kind],
        )


# -- hostile input, fuzzed -------------------------------------------------------------------
#
# For every mutated input (``tests.corpus.hostile``: fields set to wrong types
# at any depth, deleted or renamed; events duplicated, moved, dropped or cut;
# flipped bytes, NUL, invalid UTF-8, stray line ends, a byte-order mark,
# truncation): only streamfold's own errors escape, strict or lenient, events on
# or off, and an error carries the partial result; the fold is the same with
# events off; and it is identical however it is cut. Draws are derandomized and
# bounded so CI stays fast and reproducible; the long run is ``bench/fuzz.py``.

# Besides every dialect, every framing other than SSE gets its own draws: few
# recordings are JSON arrays, JSON objects (a body, NDJSON lines) or AWS
# event-stream frames, and their decoders are their own code.
FRAMINGS = ("json-array", "json-body", "event-stream")
# The shared recordings, bounded: the small ones (fast to fold many ways), at
# most this many per group, spread over the sorted list.
_SHARED_MAX_BYTES = 32 * 1024
_SHARED_PER_GROUP = 24
_FUZZ_BYTEWISE_MAX = 2048

_FUZZ = settings(
    max_examples=60,
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
            marks = []
            if not _pool(source, group):
                reason = f"no {source} recording of {group} (shared: {SHARED})"
                marks.append(pytest.mark.skip(reason=reason))
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
    if group in DIALECTS:
        # Named, the dialect also reads the events detection would refuse.
        fold_every_way(raw, group)


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
    cuts = [("random cuts", cut(raw, points))]
    if len(raw) <= _FUZZ_BYTEWISE_MAX:
        cuts.append(("byte by byte", bytewise(raw)))
    for how, pieces in cuts:
        difference = split_difference(raw, pieces)
        assert difference is None, (
            "{}, {}, {}: whole and split differ at {}: {!r:.300} != {!r:.300}".format(
                name, how, difference[0], *difference[1]
            )
        )
