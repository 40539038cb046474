"""The long fuzz run: hostile mutations of every recording, the two promises checked.

::

    .venv/bin/python bench/fuzz.py --out /tmp/findings               # 500,000 inputs
    .venv/bin/python bench/fuzz.py -n 200000 --seed 7 --out /tmp/findings
    .venv/bin/python bench/fuzz.py --minutes 10 --out /tmp/findings  # stop after 10 minutes
    .venv/bin/python bench/fuzz.py --quick                           # 2,000 inputs

Input ``i`` of seed ``s`` is one recording (shared corpus, pairs, in-repo
fixtures, examples, samples: each dialect drawn alike, recordings no dialect
folds a quarter as often) mutated by ``tests.corpus.hostile`` with
``random.Random(f"{s}:{i}")``, so every input can be rebuilt from its number.
For each input:

- **exception**: folded whole under every option set (``fold_every_way``:
  strict and lenient, events on and off, parse_arguments and parse_content on),
  only streamfold's errors may escape, each carrying the partial result, and
  the result must encode to JSON; an input still running after ``--timeout``
  seconds counts as a ``Timeout`` exception, located where it was stopped;
- **events off**: the result and error are the same with events off;
- **split**: the fold is identical (``tests.corpus.comparable``) fed whole and
  cut at 1 to 32 random points, and byte by byte for inputs under 4 KiB.

Exceptions are grouped by (type, file:line of the innermost frame in
``src/streamfold``; the innermost frame when none is ours), divergences by
(recording, first differing key with list indexes dropped). One input per
class is shrunk (events removed, then byte ranges, then the split reduced to
one cut when one cut suffices; bytes are not removed from a RecursionError's
input), within ``--shrink-seconds``, and written to ``--out`` as a standalone
script that reproduces it with streamfold alone. Each script is run once in a
fresh interpreter; one that passes there gets the input as first seen instead.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import random
import re
import signal
import subprocess
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.corpus import (  # noqa: E402 (the repository root is put on the path first)
    FUZZ_OPTIONS,
    SPLIT_OPTIONS,
    RandomChooser,
    bytewise,
    cut,
    dialect_of,
    first_difference,
    fold_checked,
    hostile,
    join_events,
    recording_name,
    recordings,
    split_difference,
    split_events,
)

SRC = str(ROOT / "src" / "streamfold") + "/"
BYTEWISE_MAX = 4096
BATCH = 200
_UNKNOWN_WEIGHT = 0.25


class FuzzTimeout(Exception):
    """One input ran longer than ``--timeout``."""


@dataclass
class Failure:
    """One input that broke a promise, with what it takes to reproduce it.

    Attributes:
        kind: ``exception``, ``events off`` or ``split``.
        key: the class: (type, where) for exceptions, (recording, key path) else.
        recording: the recording the input was made from.
        input_id: the input's number in the run.
        data: the input.
        pieces: how it was fed (``None``: whole).
        split: how it was cut (``random cuts``, ``byte by byte``, ``one cut``).
        options: the parser options that show it.
        detail: the traceback, or the differing values.
    """

    kind: str
    key: tuple[str, str]
    recording: str
    input_id: int
    data: bytes
    pieces: list[bytes] | None = None
    split: str = ""
    options: dict[str, bool] = field(default_factory=dict)
    detail: str = ""


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f.filename.startswith(SRC)]
    frame = ours[-1] if ours else frames[-1]
    name = frame.filename[len(SRC) :] if ours else Path(frame.filename).name
    return f"{name}:{frame.lineno}"


def _exception(exc: BaseException, **fields: Any) -> Failure:
    tb = exc.__traceback__
    while tb is not None and not tb.tb_frame.f_code.co_filename.startswith(SRC):
        tb = tb.tb_next  # the harness's frames say nothing about the bug
    detail = "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__)[-16:])
    return Failure("exception", (type(exc).__name__, _where(exc)), detail=detail, **fields)


def _normalise(path: str) -> str:
    return re.sub(r"\[\d+\]", "[]", path)


def _difference(kind: str, difference: tuple[str, Any, Any], **fields: Any) -> Failure:
    path, before, after = difference
    labels = ("events on", "events off") if kind == "events off" else ("whole", "split")
    detail = f"at {path}:\n  {labels[0]}: {before!r:.400}\n  {labels[1]}: {after!r:.400}"
    # A split divergence is a class per recording (the byte layer's bugs show
    # per framing); events on and off, per key only.
    owner = "-" if kind == "events off" else fields["recording"]
    return Failure(kind, (owner, _normalise(path)), detail=detail, **fields)


def check(data: bytes, recording: str, input_id: int, points: Sequence[int]) -> list[Failure]:
    """Every promise broken by one input: an exception (nothing else is checked
    then), or the divergences found."""
    fields: dict[str, Any] = {"recording": recording, "input_id": input_id, "data": data}
    try:
        folds = [fold_checked([data], **options) for options in FUZZ_OPTIONS]
    except Exception as exc:
        return [_exception(exc, **fields)]
    failures: list[Failure] = []
    for on, off, options in (
        (folds[0], folds[1], FUZZ_OPTIONS[1]),
        (folds[2], folds[3], FUZZ_OPTIONS[3]),
    ):
        difference = first_difference(
            {"result": on["result"], "error": on["error"]},
            {"result": off["result"], "error": off["error"]},
        )
        if difference is not None:
            failures.append(_difference("events off", difference, options=options, **fields))
            break
    splits = [("random cuts", cut(data, points))]
    if len(data) < BYTEWISE_MAX:
        splits.append(("byte by byte", bytewise(data)))
    seen: set[tuple[str, str]] = set()
    for how, pieces in splits:
        # split_difference, reusing the whole folds made above (FUZZ_OPTIONS[::2])
        for options, whole in zip(SPLIT_OPTIONS, folds[::2], strict=True):  # events on
            try:
                split = fold_checked(pieces, **options)
            except Exception as exc:
                return [*failures, _exception(exc, pieces=pieces, split=how, **fields)]
            difference = first_difference(whole, split)
            if difference is not None:
                failure = _difference(
                    "split", difference, pieces=pieces, split=how, options=options, **fields
                )
                if failure.key not in seen:
                    seen.add(failure.key)
                    failures.append(failure)
                break
    return failures


# -- the run --------------------------------------------------------------------------

_RECORDINGS: list[tuple[str, bytes]] = []
_GROUPS: list[list[int]] = []
_WEIGHTS: list[float] = []


def _load() -> None:
    paths = recordings()
    by_dialect: dict[str, list[int]] = {}
    for i, path in enumerate(paths):
        _RECORDINGS.append((recording_name(path), path.read_bytes()))
        by_dialect.setdefault(dialect_of(path), []).append(i)
    for dialect, members in sorted(by_dialect.items()):
        _GROUPS.append(members)
        _WEIGHTS.append(_UNKNOWN_WEIGHT if dialect == "unknown" else 1.0)


def make_input(seed: int, input_id: int) -> tuple[str, bytes, list[int]]:
    """Input ``input_id`` of the run seeded ``seed``: (recording, bytes, cut points)."""
    rng = random.Random(f"{seed}:{input_id}")
    group = rng.choices(_GROUPS, _WEIGHTS)[0]
    name, raw = _RECORDINGS[group[rng.randrange(len(group))]]
    data = hostile(RandomChooser(rng), raw)
    points = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randint(1, 32)))
    return name, data, points


def _on_alarm(signum: int, frame: Any) -> None:
    raise FuzzTimeout("the input ran longer than the timeout")


def _worker_init(timeout: float) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    signal.signal(signal.SIGALRM, _on_alarm)
    global _TIMEOUT
    _TIMEOUT = timeout
    _load()


_TIMEOUT = 60.0


def _guarded(run: Callable[[], list[Failure]], fields: dict[str, Any]) -> list[Failure]:
    signal.setitimer(signal.ITIMER_REAL, _TIMEOUT)
    try:
        return run()
    except FuzzTimeout as exc:
        return [_exception(exc, **fields)]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def run_batch(
    args: tuple[int, int, int],
) -> tuple[int, Counter[tuple[str, tuple[str, str]]], dict[Any, Failure]]:
    """Check inputs ``[start, stop)``: (inputs, count per class, first failure per class)."""
    seed, start, stop = args
    counts: Counter[tuple[str, tuple[str, str]]] = Counter()
    first: dict[Any, Failure] = {}
    for input_id in range(start, stop):
        name, data, points = make_input(seed, input_id)
        fields = {"recording": name, "input_id": input_id, "data": data}
        for failure in _guarded(functools.partial(check, data, name, input_id, points), fields):
            klass = (failure.kind, failure.key)
            counts[klass] += 1
            first.setdefault(klass, failure)
    return stop - start, counts, first


# -- shrinking ------------------------------------------------------------------------


def _reproduce(failure: Failure, data: bytes) -> Failure | None:
    """The failure of the same class that ``data`` shows, or ``None``."""
    if failure.kind == "exception" and failure.pieces is None:
        for options in FUZZ_OPTIONS:
            try:
                fold_checked([data], **options)
            except Exception as exc:
                found = _exception(
                    exc,
                    recording=failure.recording,
                    input_id=failure.input_id,
                    data=data,
                    options=options,
                )
                return found if found.key == failure.key else None
        return None
    if failure.kind == "events off":
        try:
            on = fold_checked([data], **{**failure.options, "events": True})
            off = fold_checked([data], **failure.options)
        except Exception:
            return None
        difference = first_difference(
            {"result": on["result"], "error": on["error"]},
            {"result": off["result"], "error": off["error"]},
        )
        if difference is None:
            return None
        found = _difference(
            "events off",
            difference,
            recording=failure.recording,
            input_id=failure.input_id,
            data=data,
            options=failure.options,
        )
        return found if found.key == failure.key else None
    candidates: list[tuple[str, list[bytes]]] = []
    if failure.split == "one cut" and failure.pieces is not None:
        at = min(len(failure.pieces[0]), len(data))
        candidates.append(("one cut", cut(data, [at])))
    if len(data) <= 64 * 1024:
        candidates.append(("byte by byte", bytewise(data)))
    for how, pieces in candidates:
        fields = {
            "recording": failure.recording,
            "input_id": failure.input_id,
            "data": data,
            "pieces": pieces,
            "split": how,
        }
        try:
            found = split_difference(data, pieces)
        except Exception as exc:
            if failure.kind == "exception":
                candidate = _exception(exc, **fields)
                if candidate.key == failure.key:
                    return candidate
            continue
        if found is not None and failure.kind == "split":
            options, difference = found
            candidate = _difference("split", difference, options=options, **fields)
            if candidate.key == failure.key:
                return candidate
    return None


def _remove_chunks(items: Any, still_fails: Callable[[Any], bool], deadline: float) -> Any:
    size = max(1, len(items) // 2)
    while size >= 1:
        i = 0
        while i < len(items) and time.monotonic() < deadline:
            candidate = items[:i] + items[i + size :]
            if len(candidate) and still_fails(candidate):
                items = candidate
            else:
                i += size
        if time.monotonic() >= deadline:
            break
        size //= 2
    return items


def shrink(failure: Failure, seconds: float) -> Failure:
    """A smaller input of the same class: whole events removed, then byte
    ranges, then (for a divergence) one cut instead of many, within ``seconds``."""
    deadline = time.monotonic() + seconds
    best = _reproduce(failure, failure.data)
    if best is None:
        # Seen only under the drawn cuts: keep the input as it came.
        return failure

    def still_fails(data: bytes) -> bool:
        nonlocal best
        found = _reproduce(best, data)
        if found is not None:
            best = found
        return found is not None

    events, separators, is_array = split_events(best.data)
    pairs = list(zip(events, separators, strict=True))
    _remove_chunks(
        pairs,
        lambda kept: still_fails(join_events([e for e, _ in kept], [s for _, s in kept], is_array)),
        deadline,
    )
    if best.key[0] != "RecursionError":
        # Removing bytes from nesting stops just above the recursion limit at
        # the worker's stack depth: a shallower caller would not see it fail.
        _remove_chunks(best.data, still_fails, deadline)
    if best.pieces is not None and best.split != "one cut" and len(best.data) <= 8192:
        for at in range(1, len(best.data)):
            if time.monotonic() >= deadline:
                break
            candidate = _reproduce(
                replace(best, split="one cut", pieces=[best.data[:at]]), best.data
            )
            if candidate is not None:
                best = candidate
                break
    return best


def _shrink_task(args: tuple[Failure, float]) -> Failure:
    failure, seconds = args
    signal.setitimer(signal.ITIMER_REAL, max(_TIMEOUT, seconds * 3))
    try:
        return shrink(failure, seconds)
    except FuzzTimeout:
        return failure
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


# -- reproducers and tables -----------------------------------------------------------

_REPRODUCER = '''"""streamfold fuzz finding {number}: {title}

Seen in {count:,} of {total:,} inputs (this one: input {input_id} of seed {seed},
made from {recording}; shrunk to {size:,} bytes). Run with the Python of any
checkout of streamfold: it {expectation}.

{detail}
"""

import msgspec

from streamfold import StreamfoldError, StreamParser

DATA = {data}
PIECES = {pieces}
OPTIONS = {options}


def fold(pieces, **options):
    # What the fuzz compares: events, result and error (tests/corpus.py, comparable).
    parser = StreamParser(**options)
    events = []
    for piece in pieces:
        events += parser.feed(piece)
    events += parser.close()
    try:
        parser.final()
    except StreamfoldError:
        pass
    error = parser.error
    assert error is None or error.partial is not None, "the error has no partial result"
    snapshot = parser.snapshot
    value = {{
        "events": msgspec.to_builtins(events),
        "result": {{
            "dialect": snapshot.dialect,
            "response": msgspec.to_builtins(snapshot.response),
            "unified": msgspec.to_builtins(snapshot.unified),
            "warnings": list(snapshot.warnings),
            "complete": snapshot.complete,
        }},
        "error": None if error is None else [type(error).__name__, str(error), error.position],
    }}
    msgspec.json.encode(value)
    snapshot.unified.to_dict()
    return value


{check}
'''

_CHECKS = {
    "exception": """fold(PIECES or [DATA], **OPTIONS)  # raises
print("no exception: fixed")
""",
    "events off": """on = fold([DATA], **{**OPTIONS, "events": True})
off = fold([DATA], **OPTIONS)
on.pop("events"), off.pop("events")
assert on == off, "events on and off differ"
print("identical: fixed")
""",
    "split": """whole = fold([DATA], **OPTIONS)
split = fold(PIECES, **OPTIONS)
for key in whole:
    assert whole[key] == split[key], f"whole and split differ in {key}"
print("identical: fixed")
""",
}

_EXPECTATIONS = {
    "exception": "raises the exception below where only a StreamfoldError may end the fold",
    "events off": "fails when the result with events on differs from the one with events off",
    "split": "fails when the fold of the pieces differs from the fold of the whole",
}


def _reproduces(path: Path) -> bool:
    """Whether the reproducer fails when run alone, in a fresh interpreter."""
    run = subprocess.run([sys.executable, str(path)], capture_output=True, timeout=600)
    return run.returncode != 0


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:70]


def _pieces_literal(pieces: list[bytes] | None, data: bytes) -> str:
    if pieces is None:
        return "None  # fed whole"
    if len(pieces) == len(data) and all(len(p) == 1 for p in pieces):
        return "[DATA[i : i + 1] for i in range(len(DATA))]  # byte by byte"
    bounds = [0]
    for piece in pieces:
        bounds.append(bounds[-1] + len(piece))
    return f"[DATA[a:b] for a, b in zip({bounds[:-1]}, {bounds[1:]})]"


def write_reproducer(
    out: Path, number: int, failure: Failure, count: int, total: int, seed: int
) -> Path:
    """One standalone script per class, named by its number and class."""
    first, second = failure.key
    if failure.kind == "exception":
        title = f"{first} at {second}"
    elif failure.kind == "events off":
        title = f"events on and off differ at {second}"
    else:
        title = f"split ({failure.split}) of {first} differs at {second}"
    path = out / f"{number:02d}-{_slug(failure.kind)}-{_slug(first)}-{_slug(second)}.py"
    detail = failure.detail.replace('"""', "'''").replace("\\", "\\\\")
    options = failure.options or dict(FUZZ_OPTIONS[0])
    path.write_text(
        _REPRODUCER.format(
            number=number,
            title=title,
            count=count,
            total=total,
            input_id=failure.input_id,
            seed=seed,
            recording=failure.recording,
            size=len(failure.data),
            expectation=_EXPECTATIONS[failure.kind],
            detail=detail.strip(),
            data=repr(failure.data),
            pieces=_pieces_literal(failure.pieces, failure.data),
            options=repr(options),
            check=_CHECKS[failure.kind],
        ),
        encoding="utf-8",
    )
    return path


def _options_text(options: dict[str, bool]) -> str:
    if not options:
        return ""
    return ("strict" if options.get("strict") else "lenient") + (
        ", events" if options.get("events") else ", no events"
    )


def tables(
    counts: Counter[tuple[str, tuple[str, str]]],
    shrunk: dict[Any, Failure],
    files: dict[Any, Path],
    total: int,
) -> str:
    """The Markdown report: exception classes, then divergences."""
    lines: list[str] = []
    exceptions = [(k, n) for k, n in counts.most_common() if k[0] == "exception"]
    divergences = [(k, n) for k, n in counts.most_common() if k[0] != "exception"]
    inputs = sum(n for _, n in exceptions)
    lines += [
        f"### Exceptions that are not streamfold's: {len(exceptions)} classes, "
        f"{inputs:,} of {total:,} inputs",
        "",
        "| # | exception | raised at | inputs | first seen in | options | shrunk to | reproducer |",
        "| --- | --- | --- | ---: | --- | --- | ---: | --- |",
    ]
    for klass, n in exceptions:
        failure = shrunk[klass]
        lines.append(
            f"| {files[klass].name[:2]} | `{klass[1][0]}` | `{klass[1][1]}` | {n:,} "
            f"| {failure.recording} "
            f"| {_options_text(failure.options)}{', ' + failure.split if failure.split else ''} "
            f"| {len(failure.data):,} B | `{files[klass].name}` |"
        )
    inputs = sum(n for _, n in divergences)
    lines += [
        "",
        f"### Divergences: {len(divergences)} classes, {inputs:,} findings",
        "",
        "| # | promise | recording | first differing key | inputs | split | options "
        "| shrunk to | reproducer |",
        "| --- | --- | --- | --- | ---: | --- | --- | ---: | --- |",
    ]
    for klass, n in divergences:
        failure = shrunk[klass]
        lines.append(
            f"| {files[klass].name[:2]} | {klass[0]} | {klass[1][0]} | `{klass[1][1]}` | {n:,} "
            f"| {failure.split or '-'} | {_options_text(failure.options)} "
            f"| {len(failure.data):,} B "
            f"| `{files[klass].name}` |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "-n", "--inputs", type=int, default=500_000, help="inputs to draw (500,000)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, help="stop drawing after this long")
    parser.add_argument(
        "--quick", action="store_true", help="2,000 inputs, 2 s of shrinking a class"
    )
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--out", type=Path, help="write one reproducer per class here")
    parser.add_argument("--shrink-seconds", type=float, default=20.0, help="per class (20)")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds one input may take (60)"
    )
    args = parser.parse_args(argv)
    total = 2_000 if args.quick else args.inputs
    shrink_seconds = 2.0 if args.quick else args.shrink_seconds
    deadline = time.monotonic() + args.minutes * 60 if args.minutes else None

    counts: Counter[tuple[str, tuple[str, str]]] = Counter()
    first: dict[Any, Failure] = {}
    done = 0
    started = time.monotonic()
    last_report = started
    batches = [(args.seed, start, min(start + BATCH, total)) for start in range(0, total, BATCH)]
    with multiprocessing.Pool(args.jobs, _worker_init, (args.timeout,)) as pool:
        try:
            for n, batch_counts, batch_first in pool.imap_unordered(run_batch, batches):
                done += n
                counts.update(batch_counts)
                for klass, failure in batch_first.items():
                    if klass not in first or failure.input_id < first[klass].input_id:
                        first[klass] = failure
                now = time.monotonic()
                if now - last_report > 30:
                    last_report = now
                    print(
                        f"{done:,} inputs in {now - started:,.0f} s "
                        f"({done / (now - started):,.0f}/s), "
                        f"{len(counts)} classes, {sum(counts.values()):,} findings",
                        file=sys.stderr,
                    )
                if deadline is not None and now > deadline:
                    pool.terminate()
                    break
        except KeyboardInterrupt:
            pool.terminate()
        elapsed = time.monotonic() - started
        print(
            f"{done:,} inputs in {elapsed:,.0f} s ({done / max(elapsed, 1e-9):,.0f}/s) "
            f"on {args.jobs} "
            f"processes, seed {args.seed}; shrinking {len(first)} classes...",
            file=sys.stderr,
        )
    ordered = [k for k, _ in counts.most_common()]
    ordered.sort(key=lambda k: k[0] != "exception")
    with multiprocessing.Pool(args.jobs, _worker_init, (args.timeout,)) as pool:
        shrunk = dict(
            zip(
                ordered,
                pool.map(_shrink_task, [(first[k], shrink_seconds) for k in ordered], chunksize=1),
                strict=True,
            )
        )
    out = args.out or Path("/tmp/streamfold-fuzz")
    out.mkdir(parents=True, exist_ok=True)
    files: dict[Any, Path] = {}
    for number, klass in enumerate(ordered, 1):
        path = write_reproducer(out, number, shrunk[klass], counts[klass], done, args.seed)
        if not _reproduces(path) and shrunk[klass] is not first[klass]:
            # The shrunk input needs the harness around it: keep the one seen.
            shrunk[klass] = first[klass]
            path = write_reproducer(out, number, first[klass], counts[klass], done, args.seed)
        if not _reproduces(path):
            print(f"{path.name} does not reproduce alone", file=sys.stderr)
        files[klass] = path
    report = tables(counts, shrunk, files, done)
    (out / "README.md").write_text(
        f"# streamfold fuzz: {done:,} inputs, seed {args.seed}\n\n{report}\n", encoding="utf-8"
    )
    print(report)
    print(f"\nreproducers in {out}", file=sys.stderr)
    return 1 if counts else 0


if __name__ == "__main__":
    sys.exit(main())
