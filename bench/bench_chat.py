"""Benchmark folding Chat Completions streams: bytes in, final response out.

Run by hand (a report, never a timed assertion)::

    .venv/bin/python bench/bench_chat.py            # full run, a few minutes
    .venv/bin/python bench/bench_chat.py --quick    # smoke run, streams 10x smaller
    .venv/bin/python bench/bench_chat.py --profile tool-args-1m   # cProfile of the fold

The streams come from ``streams.py`` (beside this file). Each is cut into the
same network-like pieces (``--piece`` bytes, 4 KiB by default) and folded, side
by side in one run, by:

- ``fold``: ``streamfold.fold(pieces)``, the plain fold (no events).
- ``events``: ``StreamParser()`` fed piece by piece, every event iterated,
  then ``close()`` and ``final()``.
- ``openai``: the SDK's own fold: each ``data:`` line decoded with
  ``json.loads`` and built with ``construct_type(ChatCompletionChunk)`` (what
  ``Stream`` does when strict validation is off, the default), folded by
  ``ChatCompletionStreamState.handle_chunk``, then ``get_final_completion()``.
  Lines are split as cheaply as the floor does: the SDK's own SSE decoder is
  not counted. Stopped after ``--openai-budget`` seconds (120).
- ``floor``: split the pieces into lines, take the ``data:`` payloads and decode
  each one's JSON with the fastest decoder available (msgspec, orjson, jiter:
  all measured, the fastest kept), nothing more.

Times are the best of N runs (N chosen so a cell takes about ``--target``
seconds, at least 3 runs; a first run longer than 10 s is not repeated), with
``gc.collect()`` before each run; the runs of a stream's contenders go round
robin, so load from elsewhere spreads over all of them. Every contender's
result is checked against what the stream must fold to before it is timed.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import json
import math
import platform
import pstats
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from streams import ChatStream, chat_streams

import streamfold
from streamfold import StreamParser

Decoder = Callable[[bytes], Any]

# A contender whose first run takes longer than this is not run again: best of
# three changes nothing worth the minutes at that size (the SDK on 1 MB).
_LONG_RUN = 10.0


class Stopped(Exception):
    """A contender ran past its time budget."""

    def __init__(self, elapsed: float, fraction: float) -> None:
        super().__init__(f"stopped after {elapsed:.1f} s at {fraction:.0%} of the chunks")
        self.elapsed = elapsed
        self.fraction = fraction


@dataclass
class Cell:
    """One contender on one stream."""

    seconds: float | None = None
    repeats: int = 0
    note: str = ""  # why there is no time, or what is wrong with the result

    def text(self) -> str:
        if self.seconds is None:
            return self.note or "n/a"
        out = _ms(self.seconds)
        if self.seconds > _LONG_RUN:
            out += " (1 run)" if self.repeats == 1 else f" ({self.repeats} runs)"
        return f"{out} ({self.note})" if self.note else out


# -- the contenders ------------------------------------------------------------------


def data_lines(pieces: list[bytes]) -> Iterator[bytes]:
    """The payloads of the ``data:`` lines, split on the pieces as they come."""
    rest = b""
    for piece in pieces:
        lines = (rest + piece).split(b"\n") if rest else piece.split(b"\n")
        rest = lines.pop()
        for line in lines:
            if line[:6] == b"data: ":
                yield line[6:]
    if rest[:6] == b"data: ":
        yield rest[6:]


def run_floor(pieces: list[bytes], decode: Decoder) -> int:
    """Split the lines, decode each chunk's JSON, nothing more. Inlined on purpose:
    a generator in between would cost the floor more than the decoding itself."""
    count = 0
    rest = b""
    for piece in pieces:
        lines = (rest + piece).split(b"\n") if rest else piece.split(b"\n")
        rest = lines.pop()
        for line in lines:
            if line[:6] == b"data: ":
                payload = line[6:]
                if payload != b"[DONE]":
                    decode(payload)
                    count += 1
    return count


def run_fold(pieces: list[bytes]) -> streamfold.Result:
    return streamfold.fold(pieces)


def run_events(pieces: list[bytes]) -> streamfold.Result:
    parser = StreamParser()
    count = 0
    for piece in pieces:
        for _event in parser.feed(piece):
            count += 1
    for _event in parser.close():
        count += 1
    return parser.final()


def openai_runner(budget: float) -> Callable[[list[bytes]], Any] | None:
    """The SDK's fold, or ``None`` when the ``openai`` package is not installed."""
    try:
        from openai._models import construct_type
        from openai.lib.streaming.chat import ChatCompletionStreamState
        from openai.types.chat import ChatCompletionChunk
    except ImportError:
        return None

    def run_openai(pieces: list[bytes]) -> Any:
        state: Any = ChatCompletionStreamState()
        start = time.perf_counter()
        deadline = start + budget
        count = 0
        for payload in data_lines(pieces):
            # Stream.__stream__: "[DONE]" ends the stream; sse.json() is json.loads
            # of the decoded text; _process_response_data builds with construct_type.
            if payload.startswith(b"[DONE]"):
                break
            chunk: Any = construct_type(
                type_=ChatCompletionChunk, value=json.loads(payload.decode())
            )
            # ChatCompletionStream.__stream__ skips Azure's filter chunks, then
            # hands every event of the chunk to the caller.
            if chunk.object != "chat.completion.chunk":
                continue
            for _event in state.handle_chunk(chunk):
                pass
            count += 1
            if count % 256 == 0 and time.perf_counter() > deadline:
                # Counted only when stopping: an estimate good enough for "at N%".
                chunks = sum(p.count(b"data: ") for p in pieces)
                raise Stopped(time.perf_counter() - start, count / max(chunks, 1))
        return state.get_final_completion()

    return run_openai


def decoders() -> dict[str, Decoder]:
    """The JSON decoders installed here, by name."""
    import msgspec

    found: dict[str, Decoder] = {"msgspec": msgspec.json.Decoder().decode}
    try:
        import orjson
    except ImportError:
        pass
    else:
        found["orjson"] = orjson.loads
    try:
        import jiter
    except ImportError:
        pass
    else:
        found["jiter"] = jiter.from_json
    return found


# -- checks: every contender must fold the stream right --------------------------------


def check_result(result: streamfold.Result, stream: ChatStream) -> str:
    """What differs from the expected fold, or ``""``."""
    unified = result.unified
    problems = []
    if unified.text != stream.text:
        problems.append("text")
    if unified.reasoning != stream.reasoning:
        problems.append("reasoning")
    if tuple(c.arguments for c in unified.tool_calls) != stream.tool_arguments:
        problems.append("tool calls")
    if unified.raw_finish_reason != stream.finish_reason:
        problems.append("finish reason")
    if (unified.usage.raw if unified.usage else None) != stream.usage:
        problems.append("usage")
    message = result.response["choices"][0]["message"]
    if (message["content"] or "") != stream.text:
        problems.append("response content")
    return "wrong " + ", ".join(problems) if problems else ""


def check_openai(completion: Any, stream: ChatStream) -> str:
    """What differs from the expected fold in the SDK's ``ParsedChatCompletion``, or ``""``."""
    choice = completion.choices[0]
    message = choice.message
    problems = []
    if (message.content or "") != stream.text:
        problems.append("text")
    if (getattr(message, "reasoning_content", None) or "") != stream.reasoning:
        problems.append("reasoning")
    arguments = tuple(c.function.arguments for c in message.tool_calls or ())
    if arguments != stream.tool_arguments:
        problems.append("tool calls")
    if choice.finish_reason != stream.finish_reason:
        problems.append("finish reason")
    usage = completion.usage.model_dump(exclude_unset=True) if completion.usage else None
    if usage != stream.usage:
        problems.append("usage")
    return "wrong " + ", ".join(problems) if problems else ""


# -- timing ------------------------------------------------------------------------------


#: What ``time_once`` reads: wall time by default; ``time.process_time`` (this
#: process's CPU time) where the machine is shared, so time spent waiting for
#: a core is not counted (``bench_dialects.py --cpu``).
CLOCK: list[Callable[[], float]] = [time.perf_counter]


def time_once(run: Callable[[list[bytes]], Any], pieces: list[bytes]) -> tuple[float, Any]:
    clock = CLOCK[0]
    gc.collect()
    start = clock()
    out = run(pieces)
    return clock() - start, out


@dataclass
class Contender:
    """One contender's runs on one stream."""

    run: Callable[[list[bytes]], Any]
    check: Callable[[Any], str]
    times: list[float]
    repeats: int = 0
    note: str = ""
    stopped: str = ""


def best_of(
    contenders: dict[str, Contender], pieces: list[bytes], target: float, min_repeats: int
) -> dict[str, Cell]:
    """Time every contender on the same pieces, best of N runs each.

    A first run checks each result and sets N so a contender's runs take about
    ``target`` seconds (at least ``min_repeats``; a single run past
    ``_LONG_RUN`` seconds is not repeated). The further runs go round robin,
    one per contender per round, so a burst of load from elsewhere on the
    machine spreads over all contenders instead of spoiling one cell.
    """
    for contender in contenders.values():
        try:
            seconds, out = time_once(contender.run, pieces)
        except Stopped as stop:
            contender.stopped = f"> {stop.elapsed:.0f} s (stopped at {stop.fraction:.0%} of chunks)"
            continue
        contender.note = contender.check(out)
        del out
        contender.times.append(seconds)
        if seconds > _LONG_RUN:
            contender.repeats = 1
        else:
            contender.repeats = max(min_repeats, min(1000, math.ceil(target / max(seconds, 1e-6))))
    while True:
        pending = [c for c in contenders.values() if len(c.times) < c.repeats]
        if not pending:
            break
        for contender in pending:
            try:
                contender.times.append(time_once(contender.run, pieces)[0])
            except Stopped:
                contender.repeats = len(contender.times)
    return {
        name: Cell(note=c.stopped) if c.stopped else Cell(min(c.times), len(c.times), c.note)
        for name, c in contenders.items()
    }


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.1f} ms"


def _ratio(a: Cell, b: Cell) -> str:
    if a.seconds is None or b.seconds is None:
        return "n/a"
    return f"{a.seconds / b.seconds:.2f}x"


# -- the report ----------------------------------------------------------------------


@dataclass
class Row:
    stream: ChatStream
    pieces: int
    fold: Cell
    events: Cell
    openai: Cell
    floors: dict[str, Cell]

    @property
    def floor(self) -> tuple[str, Cell]:
        timed = [(name, cell) for name, cell in self.floors.items() if cell.seconds is not None]
        return min(timed, key=lambda item: item[1].seconds or 0.0)


def measure(args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    notes: list[str] = []
    found = decoders()
    run_openai = openai_runner(args.openai_budget)
    if run_openai is None:
        notes.append("openai: not installed, column n/a")
    scale = 0.1 if args.quick else 1.0
    min_repeats = 1 if args.quick else 3
    for stream in chat_streams(scale):
        if args.only and stream.name not in args.only:
            continue
        pieces = stream.pieces(args.piece)
        print(
            f"... {stream.name}: {len(stream.body):,} B, {stream.chunks:,} chunks", file=sys.stderr
        )

        def check_floor(count: int, stream: ChatStream = stream) -> str:
            return "" if count == stream.chunks else f"wrong: {count} chunks"

        def check_fold(result: streamfold.Result, stream: ChatStream = stream) -> str:
            return check_result(result, stream)

        contenders: dict[str, Contender] = {}
        for name, decode in found.items():

            def floor(pieces: list[bytes], decode: Decoder = decode) -> int:
                return run_floor(pieces, decode)

            contenders["floor " + name] = Contender(floor, check_floor, [])
        contenders["fold"] = Contender(run_fold, check_fold, [])
        contenders["events"] = Contender(run_events, check_fold, [])
        if run_openai is not None:

            def check_sdk(completion: Any, stream: ChatStream = stream) -> str:
                return check_openai(completion, stream)

            contenders["openai"] = Contender(run_openai, check_sdk, [])
        cells = best_of(contenders, pieces, args.target, min_repeats)
        floors = {name: cells["floor " + name] for name in found}
        fold, events = cells["fold"], cells["events"]
        openai_cell = cells.get("openai", Cell(note="n/a (not installed)"))
        rows.append(Row(stream, len(pieces), fold, events, openai_cell, floors))
        for label, cell in (("fold", fold), ("events", events), ("openai", openai_cell)):
            if cell.note.startswith("wrong"):
                notes.append(f"{stream.name}: {label} folds it {cell.note}")
    return rows, notes


def print_report(rows: list[Row], notes: list[str], args: argparse.Namespace) -> None:
    print(f"Environment: {_environment()}; pieces of {args.piece:,} B.")
    print()
    print(
        "| stream | size | chunks | fold | events | openai | floor | fold / floor "
        "| events / floor | openai / fold |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        name, floor = row.floor
        print(
            f"| {row.stream.name} | {_size(len(row.stream.body))} | {row.stream.chunks:,} "
            f"| {row.fold.text()} | {row.events.text()} | {row.openai.text()} "
            f"| {floor.text()} ({name}) | {_ratio(row.fold, floor)} "
            f"| {_ratio(row.events, floor)} | {_ratio(row.openai, row.fold)} |"
        )
    print()
    print(_linearity(rows))
    print()
    names = list(rows[0].floors) if rows else []
    print("Floor by decoder (split lines + decode each chunk, nothing kept):")
    print()
    print("| stream | " + " | ".join(names) + " |")
    print("| --- |" + " ---: |" * len(names))
    for row in rows:
        print(f"| {row.stream.name} | " + " | ".join(row.floors[n].text() for n in names) + " |")
    print()
    repeats = sorted({c.repeats for r in rows for c in (r.fold, r.events, r.openai) if c.repeats})
    print(f"Best of {repeats[0]}-{repeats[-1]} runs per cell." if repeats else "")
    for note in notes:
        print(f"- {note}")


def _linearity(rows: list[Row]) -> str:
    tools = sorted(
        (r for r in rows if len(r.stream.tool_arguments) == 1),
        key=lambda r: r.stream.argument_bytes,
    )
    if len(tools) < 2:
        return ""
    small, large = tools[0], tools[-1]
    growth = large.stream.argument_bytes / small.stream.argument_bytes
    lines = [
        f"Growth from {small.stream.name} to {large.stream.name} "
        f"(arguments x{growth:.1f}, stream bytes "
        f"x{len(large.stream.body) / len(small.stream.body):.1f}; linear = the same factor):",
        "",
        f"| contender | {small.stream.name} | {large.stream.name} | time factor |",
        "| --- | ---: | ---: | ---: |",
    ]
    pairs = [
        ("fold", small.fold, large.fold),
        ("events", small.events, large.events),
        ("openai", small.openai, large.openai),
        ("floor", small.floor[1], large.floor[1]),
    ]
    for label, a, b in pairs:
        factor = f"x{b.seconds / a.seconds:.1f}" if a.seconds and b.seconds else "n/a"
        lines.append(f"| {label} | {a.text()} | {b.text()} | {factor} |")
    return "\n".join(lines)


def memory_report(args: argparse.Namespace) -> None:
    """Peak traced memory while folding the largest tool-call stream."""
    streams = [s for s in chat_streams(0.1 if args.quick else 1.0) if len(s.tool_arguments) == 1]
    stream = max(streams, key=lambda s: s.argument_bytes)
    pieces = stream.pieces(args.piece)
    print()
    print(
        f"Memory while folding {stream.name} ({_size(len(stream.body))} of stream, "
        f"{_size(stream.argument_bytes)} of arguments), tracemalloc:"
    )
    print()
    print("| contender | peak | kept after | peak / stream | peak / arguments |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, run in (("fold", run_fold), ("events", run_events)):
        gc.collect()
        tracemalloc.start()
        result = run(pieces)
        kept, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del result
        print(
            f"| {label} | {_size(peak)} | {_size(kept)} | {peak / len(stream.body):.2f} "
            f"| {peak / stream.argument_bytes:.1f} |"
        )


def profile(names: list[str], args: argparse.Namespace) -> None:
    """cProfile of the plain fold of each named stream, top functions by self time."""
    for stream in chat_streams(0.1 if args.quick else 1.0):
        if stream.name not in names:
            continue
        pieces = stream.pieces(args.piece)
        profiler = cProfile.Profile()
        profiler.enable()
        run_fold(pieces)
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(15)
        print(f"## {stream.name}: streamfold.fold, top 15 by self time\n")
        print(out.getvalue())


def _size(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f} MB"
    if n >= 1000:
        return f"{n / 1000:.0f} KB"
    return f"{n} B"


def _environment() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for package in ("streamfold", "msgspec", "orjson", "jiter", "openai", "pydantic"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{package} {metadata.version(package)}")
    return f"Python {platform.python_version()}, {cpu}; " + ", ".join(versions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="streams 10x smaller, 1 run per cell")
    parser.add_argument("--piece", type=int, default=4096, help="bytes per read (4096)")
    parser.add_argument("--target", type=float, default=0.75, help="seconds per cell (0.75)")
    parser.add_argument(
        "--openai-budget", type=float, default=120.0, help="seconds before the SDK run is stopped"
    )
    parser.add_argument("--only", nargs="*", help="stream names to run (all by default)")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc table")
    parser.add_argument("--profile", nargs="+", metavar="STREAM", help="cProfile the fold only")
    args = parser.parse_args(argv)
    if args.quick:
        args.target = min(args.target, 0.05)
        args.openai_budget = min(args.openai_budget, 5.0)
    if args.profile:
        profile(args.profile, args)
        return 0
    rows, notes = measure(args)
    print_report(rows, notes, args)
    if not args.no_memory:
        memory_report(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
