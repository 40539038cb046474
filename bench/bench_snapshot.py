"""Benchmark ``parser.snapshot`` read after every chunk, in every dialect.

Run by hand (a report, never a timed assertion)::

    .venv/bin/python bench/bench_snapshot.py            # 10k and 20k events, a few minutes
    .venv/bin/python bench/bench_snapshot.py --quick    # 1k and 2k events, seconds
    .venv/bin/python bench/bench_snapshot.py --only anthropic --streams text
    # one run, for an instruction count (fold or snap):
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python bench/bench_snapshot.py --run anthropic text 10000 fold

The streams are the Chat Completions streams of ``streams.py`` at ``N`` events
(``text``: N text deltas; ``reasoning``: N/2 reasoning then N/2 text deltas;
``arguments``: one tool call, about 10 B of arguments per delta, so 100 KB at
10k events; ``parallel``: 8 tool calls, N argument deltas interleaved), and the
same streams encoded into every other dialect with ``streamfold.encode`` (or,
for the dialects without an encoder, written by ``wires.py``; legacy
Completions carries the text stream only). Each is cut into chunks of one
event each (what a client reading a live stream gets),
then folded by ``StreamParser(events=False)``, as ``streamfold.fold`` does:

- ``fold``: feed every chunk, ``close()``, ``final()``;
- ``snap``: the same, reading ``parser.snapshot`` after every chunk (the
  README's sans-IO loop).

``snap / fold`` is what the snapshots add; ``growth`` is the time at 2N events
over the time at N: linear is x2. The target: ``snap / fold`` at most 3
(snapshots add at most 2x the fold's own time) and the growth of ``snap`` at
most x2.3. Every result is checked against the expected answer before timing.
Times are the best of N runs, round robin (``bench_chat.best_of``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_chat import Cell, Contender, _environment, best_of
from streams import (
    ChatStream,
    parallel_tool_calls_stream,
    reasoning_stream,
    text_stream,
    tool_call_stream,
)
from wires import WRITERS, bedrock_anthropic

from streamfold import Result, StreamParser
from streamfold.encode import ENCODERS

DIALECTS = [
    "openai-chat",
    "openai-responses",
    "anthropic",
    "gemini",
    "ai-sdk-ui",
    *WRITERS,
    "bedrock-anthropic",
]
# What a dialect cannot carry: legacy Completions has text only.
_TEXT_ONLY: Final = frozenset({"openai-completions"})
STREAMS: dict[str, Callable[[int], ChatStream]] = {
    "text": lambda n: text_stream(n),
    "reasoning": lambda n: reasoning_stream(n // 2, n // 2),
    "arguments": lambda n: tool_call_stream(n * 10, delta=10),
    "parallel": lambda n: parallel_tool_calls_stream(8, n // 8),
}
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


def chunks_of(body: bytes) -> list[bytes]:
    """The body cut after every event (every blank line)."""
    out, start = [], 0
    for match in _EVENT_END.finditer(body):
        out.append(body[start : match.end()])
        start = match.end()
    if start < len(body):
        out.append(body[start:])
    return out


def encoded(stream: ChatStream, dialect: str) -> list[bytes]:
    """The chat stream written in ``dialect``, one chunk per event."""
    if dialect == "openai-chat":
        return chunks_of(stream.body)
    parser = StreamParser()
    events = [*parser.feed(stream.body), *parser.close()]
    if dialect in WRITERS:
        return WRITERS[dialect](events)
    encoder = ENCODERS["anthropic" if dialect == "bedrock-anthropic" else dialect]()
    chunks = chunks_of(encoder.encode_all(events) + encoder.close())
    return bedrock_anthropic(chunks) if dialect == "bedrock-anthropic" else chunks


def run_fold(dialect: str) -> Callable[[list[bytes]], Result]:
    def run(chunks: list[bytes]) -> Result:
        parser = StreamParser(dialect, events=False)
        for chunk in chunks:
            parser.feed(chunk)
        parser.close()
        return parser.final()

    return run


def run_snapshots(dialect: str) -> Callable[[list[bytes]], Result]:
    def run(chunks: list[bytes]) -> Result:
        parser = StreamParser(dialect, events=False)
        for chunk in chunks:
            parser.feed(chunk)
            parser.snapshot  # noqa: B018 - reading it is the point
        parser.close()
        return parser.final()

    return run


def check(stream: ChatStream) -> Callable[[Any], str]:
    def check(result: Any) -> str:
        unified = result.unified
        problems = []
        if unified.text != stream.text:
            problems.append("text")
        if unified.reasoning != stream.reasoning:
            problems.append("reasoning")
        # Gemini sends arguments as a value: compared as JSON, not as text.
        arguments = [json.loads(c.arguments) for c in unified.tool_calls]
        if arguments != [json.loads(a) for a in stream.tool_arguments]:
            problems.append("tool calls")
        return "wrong " + ", ".join(problems) if problems else ""

    return check


def measure(dialect: str, stream: ChatStream, args: argparse.Namespace) -> dict[str, Cell]:
    chunks = encoded(stream, dialect)
    contenders = {
        "fold": Contender(run_fold(dialect), check(stream), []),
        "snap": Contender(run_snapshots(dialect), check(stream), []),
    }
    print(f"... {dialect} {stream.name}: {len(chunks):,} chunks", file=sys.stderr)
    return best_of(contenders, chunks, args.target, 1 if args.quick else 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k and 2k events, 1 run per cell")
    parser.add_argument("--events", type=int, default=10_000, help="N, the smaller size (10000)")
    parser.add_argument("--target", type=float, default=1.0, help="seconds per cell (1.0)")
    parser.add_argument("--only", nargs="*", default=DIALECTS, help="dialects to measure")
    parser.add_argument("--streams", nargs="*", default=list(STREAMS), help="streams to measure")
    parser.add_argument(
        "--run",
        nargs=4,
        metavar=("DIALECT", "STREAM", "EVENTS", "MODE"),
        help="one untimed run (MODE fold, snap, or none: only make the stream), for valgrind",
    )
    args = parser.parse_args(argv)
    if args.run:
        dialect, name, events, mode = args.run
        chunks = encoded(STREAMS[name](int(events)), dialect)
        if mode != "none":
            (run_fold if mode == "fold" else run_snapshots)(dialect)(chunks)
        return 0
    small = 1_000 if args.quick else args.events
    if args.quick:
        args.target = min(args.target, 0.1)
    print(f"Environment: {_environment()}; one event per chunk.")
    print()
    print(
        f"| dialect | stream | fold {_k(small)} | snap {_k(small)} | snap / fold "
        f"| fold {_k(2 * small)} | snap {_k(2 * small)} | snap / fold "
        "| growth fold | growth snap |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    notes = []
    for name in args.streams:
        pair = [STREAMS[name](small), STREAMS[name](2 * small)]
        for dialect in args.only:
            if dialect in _TEXT_ONLY and name != "text":
                continue
            a, b = (measure(dialect, stream, args) for stream in pair)
            print(
                f"| {dialect} | {name} | {a['fold'].text()} | {a['snap'].text()} "
                f"| {_factor(a['snap'], a['fold'])} | {b['fold'].text()} | {b['snap'].text()} "
                f"| {_factor(b['snap'], b['fold'])} | {_factor(b['fold'], a['fold'], 'x')} "
                f"| {_factor(b['snap'], a['snap'], 'x')} |",
                flush=True,
            )
            notes.extend(
                f"{dialect} {name} {label}: {cell.note}"
                for cells in (a, b)
                for label, cell in cells.items()
                if cell.note
            )
    for note in notes:
        print(f"- {note}")
    return 0


def _k(events: int) -> str:
    return f"{events // 1000}k" if events % 1000 == 0 else str(events)


def _factor(a: Cell, b: Cell, prefix: str = "") -> str:
    if a.seconds is None or b.seconds is None:
        return "n/a"
    value = a.seconds / b.seconds
    return f"{prefix}{value:.2f}" if prefix else f"{value:.2f}x"


if __name__ == "__main__":
    sys.exit(main())
