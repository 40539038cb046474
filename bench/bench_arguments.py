"""Tool-call arguments parsed as they stream: streamfold against re-parsing.

One chat stream with one tool call whose arguments reach 10 KB, 100 KB and
1 MB in ~6-byte deltas, in two shapes (a code edit: one long string full of
escapes; nested objects and arrays). Side by side, in one run, bytes in:

- ``events``: ``StreamParser(parse_arguments=True)``, every event iterated and
  every incremental JSON update read (the API a UI uses);
- ``jiter``: the usual approach: the same SSE split and JSON decode of each
  chunk, the arguments buffer grown and re-parsed with ``jiter.from_json(...,
  partial_mode="trailing-strings")`` on every delta (quadratic: 1 MB is
  estimated from 100 KB, not run);
- ``floor``: the SSE split and the JSON decode of each chunk, nothing else.

Targets: linear growth (10x the bytes, about 10x the time); at 100 KB at least
50x faster than ``jiter``; ``events`` within 5x of ``floor``.

Run: ``.venv/bin/python bench/bench_arguments.py [--quick] [--cpu]``.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

from streams import ChatStream, nested_arguments, tool_call_stream

from streamfold import StreamParser, ToolCallArgumentsDelta, ToolCallDone

_decode = msgspec.json.Decoder().decode


def data_payloads(pieces: list[bytes]) -> list[bytes]:
    """The floor's SSE split: complete lines, ``data: `` payloads, nothing else."""
    out: list[bytes] = []
    rest = b""
    for piece in pieces:
        lines = (rest + piece).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if line.startswith(b"data: ") and line != b"data: [DONE]":
                out.append(line[6:])
    return out


def run_floor(pieces: list[bytes]) -> int:
    count = 0
    rest = b""
    for piece in pieces:
        lines = (rest + piece).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if line.startswith(b"data: ") and line != b"data: [DONE]":
                _decode(line[6:])
                count += 1
    return count


def run_events(pieces: list[bytes]) -> Any:
    parser = StreamParser(parse_arguments=True)
    updates = 0
    value = None
    for piece in pieces:
        for event in parser.feed(piece):
            if type(event) is ToolCallArgumentsDelta:
                updates += len(event.updates)
            elif type(event) is ToolCallDone:
                value = event.value
    for event in parser.close():
        if type(event) is ToolCallDone:
            value = event.value
    return value


def run_jiter(pieces: list[bytes]) -> Any:
    import jiter

    buffer = ""
    value = None
    rest = b""
    for piece in pieces:
        lines = (rest + piece).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                continue
            chunk = _decode(line[6:])
            for choice in chunk.get("choices") or ():
                for call in (choice.get("delta") or {}).get("tool_calls") or ():
                    delta = (call.get("function") or {}).get("arguments")
                    if delta:
                        buffer += delta
                        value = jiter.from_json(buffer.encode(), partial_mode="trailing-strings")
    return value


def best(
    runs: dict[str, Callable[[list[bytes]], Any]],
    pieces: list[bytes],
    seconds: float,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """The best time of each run, the runs taken in turn (so that a noisy moment
    falls on all of them, not on one): at least 3 rounds, then rounds while
    ``seconds`` last, at most 50; a run longer than ``seconds`` is run 3 times."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    started = time.perf_counter()
    rounds = 0
    while rounds < 3 or (time.perf_counter() - started < seconds and rounds < 50):
        for name, run in runs.items():
            gc.collect()
            t = clock()
            run(pieces)
            times[name].append(clock() - t)
        rounds += 1
    return {name: min(taken) for name, taken in times.items()}


def streams(quick: bool) -> list[tuple[str, int, ChatStream]]:
    sizes = [(10_000, "10 KB"), (100_000, "100 KB")] + ([] if quick else [(1_000_000, "1 MB")])
    out = []
    for size, label in sizes:
        out.append(("code edit", size, tool_call_stream(size, name=f"code-edit {label}")))
        nested = nested_arguments(size)
        out.append(
            ("nested", size, tool_call_stream(size, arguments=nested, name=f"nested {label}"))
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 KB and 100 KB only, fewer repeats")
    parser.add_argument(
        "--cpu", action="store_true", help="CPU time, not wall time (a shared machine)"
    )
    args = parser.parse_args(argv)
    seconds = 0.3 if args.quick else 1.5
    clock = time.process_time if args.cpu else time.perf_counter
    print(
        "| arguments | deltas | events (parsed) | jiter re-parse | floor | jiter / events "
        "| events / floor |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    by_shape: dict[str, dict[int, float]] = {}
    jiter_at: dict[tuple[str, int], float] = {}
    for shape, size, stream in streams(args.quick):
        pieces = stream.pieces()
        expected = msgspec.json.decode(stream.tool_arguments[0])
        assert run_events(pieces) == expected, stream.name
        runs = {"events": run_events, "floor": run_floor}
        if size <= 100_000:
            assert run_jiter(pieces) == expected, stream.name
            runs["jiter"] = run_jiter
        taken = best(runs, pieces, seconds, clock)
        events, floor = taken["events"], taken["floor"]
        if size <= 100_000:
            jiter = jiter_at[(shape, size)] = taken["jiter"]
            jiter_cell = f"{jiter * 1000:,.1f} ms"
        else:
            # Quadratic: 10x the bytes is ~100x the time of the 100 KB run.
            jiter = jiter_at[(shape, 100_000)] * 100
            jiter_cell = f"~{jiter:,.0f} s (estimated)"
        by_shape.setdefault(shape, {})[size] = events
        print(
            f"| {stream.name} | {stream.chunks - 2:,} | {events * 1000:,.1f} ms | {jiter_cell} "
            f"| {floor * 1000:,.1f} ms | {jiter / events:,.0f}x | {events / floor:.2f}x |"
        )
    print()
    for shape, times in by_shape.items():
        sizes = sorted(times)
        steps = ", ".join(
            f"{a // 1000} KB -> {b // 1000} KB: x{times[b] / times[a]:.1f}"
            for a, b in itertools.pairwise(sizes)
        )
        print(f"- growth of `events`, {shape}: {steps}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
