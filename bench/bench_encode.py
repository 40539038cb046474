"""Benchmark the encoders: events in, bytes out, for every target.

Run by hand (a report, never a timed assertion)::

    .venv/bin/python bench/bench_encode.py            # full run, a few minutes
    .venv/bin/python bench/bench_encode.py --quick    # smoke run, streams 10x smaller

The source streams are the Chat Completions streams of ``streams.py`` and, for
the other dialects, the same streams encoded into each of them. Each source is
cut into network-like pieces (``--piece`` bytes) and measured, side by side in
one run, by:

- ``floor``: split the pieces into lines and decode each ``data:`` payload with
  msgspec, nothing more (``bench_chat.run_floor``): the least any reader pays.
- ``events``: ``StreamParser`` fed piece by piece, every event kept: the fold.
- ``encode``: the events (already parsed, held in a list) through a target's
  encoder, every byte kept: what encoding adds to the fold.
- ``transcode``: bytes in, bytes out: parser and encoder per piece, as a
  gateway or a backend that feeds ``useChat`` runs them.
- ``relay``: the same events through ``EncodedStreamResponse`` (the ASGI
  response of ``streamfold.adapters.asgi``) in process, with a ``send`` that
  keeps the bytes and a client that stays: what the response adds to the
  encoder, per event (its keep-alive task and disconnect watch included).

A last table shows where the held list's growth comes from: the same events
encoded with every byte kept, and in batches whose bytes are dropped.
``--profile TARGET...`` prints a cProfile of the encoding alone instead.

The budget: encoding costs at most the fold's own time again (``encode /
events`` at most 1), and bytes in, bytes out within 2.5x of the source's floor
(``transcode / floor``); and linear in the stream (the growth table). Every
transcoded stream is folded back and checked before it is timed. Times are the
best of N runs, round robin (``bench_chat.best_of``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_chat import (
    CLOCK,
    Cell,
    Contender,
    _environment,
    _ratio,
    _size,
    best_of,
    decoders,
    run_floor,
)
from streams import ChatStream, chat_streams, tool_call_stream

from streamfold import StreamParser
from streamfold.encode import ENCODERS
from streamfold.events import Event

TARGETS = list(ENCODERS)
# The other source dialects: the chat streams encoded into them (one per dialect).
SOURCES = ["openai-chat", "openai-responses", "anthropic", "gemini", "ai-sdk-ui"]


def parse(pieces: list[bytes]) -> list[Event]:
    parser = StreamParser()
    events: list[Event] = []
    for piece in pieces:
        events.extend(parser.feed(piece))
    events.extend(parser.close())
    return events


def encoder_run(target: str, events: list[Event]) -> Callable[[list[bytes]], tuple[bytes, bytes]]:
    cls = ENCODERS[target]

    def run(pieces: list[bytes]) -> tuple[bytes, bytes]:
        # Every byte kept, as the encoder gives it (joining the two would copy
        # the whole output once more: the bench's cost, not the encoder's).
        encoder = cls()
        return encoder.encode_all(events), encoder.close()

    return run


def encoded(target: str, events: list[Event]) -> bytes:
    """The bytes of ``events`` in ``target``."""
    return b"".join(encoder_run(target, events)([]))


def batched_run(target: str, events: list[Event], size: int) -> Callable[[list[bytes]], int]:
    """Encode ``events`` in batches of ``size`` (about what a 4 KiB read
    gives), each batch's bytes dropped: the encoder's share of ``convert``."""
    cls = ENCODERS[target]
    batches = [events[i : i + size] for i in range(0, len(events), size)]

    def run(pieces: list[bytes]) -> int:
        encoder = cls()
        encode = encoder.encode_all
        written = 0
        for batch in batches:
            written += len(encode(batch))
        return written + len(encoder.close())

    return run


def transcode_run(target: str) -> Callable[[list[bytes]], bytes]:
    cls = ENCODERS[target]

    def run(pieces: list[bytes]) -> bytes:
        parser, encoder = StreamParser(), cls()
        out = []
        for piece in pieces:
            out.append(encoder.encode_all(parser.feed(piece)))
        out.append(encoder.encode_all(parser.close()))
        out.append(encoder.close())
        return b"".join(out)

    return run


def relay_run(target: str, events: list[Event]) -> Callable[[list[bytes]], bytes]:
    import anyio

    from streamfold.adapters.asgi import EncodedStreamResponse

    async def upstream() -> Any:
        for event in events:
            yield event

    async def relay() -> bytes:
        out: list[bytes] = []

        async def send(message: Any) -> None:
            out.append(message.get("body", b""))

        async def receive() -> Any:
            await anyio.sleep_forever()

        await EncodedStreamResponse(upstream(), target)({"type": "http"}, receive, send)
        return b"".join(out)

    return lambda pieces: anyio.run(relay)


def check_fold(expected: Any) -> Callable[[Any], str]:
    def check(data: Any) -> str:
        if isinstance(data, list):
            return ""  # the events contender
        parser = StreamParser()
        parser.feed(b"".join(data) if isinstance(data, tuple) else data)
        parser.close()
        found = parser.snapshot.unified
        if (found.text, found.reasoning) != (expected.text, expected.reasoning):
            return "wrong text"
        if [c.name for c in found.tool_calls] != [c.name for c in expected.tool_calls]:
            return "wrong tool calls"
        return ""

    return check


def pieces_of(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def measure_source(
    name: str, body: bytes, targets: list[str], args: argparse.Namespace
) -> dict[str, Cell]:
    pieces = pieces_of(body, args.piece)
    events = parse(pieces)
    parser = StreamParser()
    parser.feed(body)
    parser.close()
    expected = parser.snapshot.unified
    decode = decoders()["msgspec"]
    chunks = run_floor(pieces, decode)
    contenders = {
        "floor": Contender(
            lambda p: run_floor(p, decode), lambda n: "" if n == chunks else "?", []
        ),
        "events": Contender(parse, check_fold(expected), []),
    }
    for target in targets:
        contenders[f"encode {target}"] = Contender(
            encoder_run(target, events), check_fold(expected), []
        )
        contenders[f"transcode {target}"] = Contender(
            transcode_run(target), check_fold(expected), []
        )
    print(f"... {name}: {len(body):,} B", file=sys.stderr)
    return best_of(contenders, pieces, args.target, 1 if args.quick else 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="streams 10x smaller, 1 run per cell")
    parser.add_argument("--piece", type=int, default=4096, help="bytes per read (4096)")
    parser.add_argument("--target", type=float, default=0.5, help="seconds per cell (0.5)")
    parser.add_argument(
        "--cpu", action="store_true", help="time CPU time, not wall time (a shared machine)"
    )
    parser.add_argument("--profile", nargs="+", metavar="TARGET", help="cProfile the encoding only")
    parser.add_argument("--top", type=int, default=12, help="functions per profile (12)")
    args = parser.parse_args(argv)
    if args.cpu:
        CLOCK[0] = time.process_time
    if args.profile:
        profile(args)
        return 0
    streams: list[ChatStream] = list(chat_streams(0.1 if args.quick else 1.0))
    clock = "CPU time" if args.cpu else "wall time"
    print(f"Environment: {_environment()}; pieces of {args.piece:,} B; {clock}.")
    print()
    print("Chat Completions sources, to every target:")
    print()
    print(
        "| stream | size | floor | events | target | out size | encode | encode / events "
        "| transcode | transcode / floor |"
    )
    print("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    growth: dict[str, dict[str, Cell]] = {}
    for stream in streams:
        cells = measure_source(stream.name, stream.body, TARGETS, args)
        growth[stream.name] = cells
        events = parse([stream.body])
        for target in TARGETS:
            out = encoded(target, events)
            encode, transcode = cells[f"encode {target}"], cells[f"transcode {target}"]
            print(
                f"| {stream.name} | {_size(len(stream.body))} | {cells['floor'].text()} "
                f"| {cells['events'].text()} | {target} | {_size(len(out))} | {encode.text()} "
                f"| {_ratio(encode, cells['events'])} | {transcode.text()} "
                f"| {_ratio(transcode, cells['floor'])} |"
            )
    print()
    print(_linearity(streams, growth))
    print()
    print(_memory_step(args))
    print()
    print("Every source dialect (the chat streams encoded into it), to the UI message stream:")
    print()
    print("| stream | source | size | floor | events | transcode | transcode / floor |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    # The smallest text stream and the smallest stream of tool arguments.
    text = next(s for s in streams if s.name.startswith("text-"))
    tool = next(s for s in streams if s.name.startswith("tool-args-"))
    for stream in (text, tool):
        events = parse([stream.body])
        for source in SOURCES:
            body = encoded(source, events)
            cells = measure_source(f"{stream.name} as {source}", body, ["ai-sdk-ui"], args)
            transcode = cells["transcode ai-sdk-ui"]
            print(
                f"| {stream.name} | {source} | {_size(len(body))} | {cells['floor'].text()} "
                f"| {cells['events'].text()} | {transcode.text()} "
                f"| {_ratio(transcode, cells['floor'])} |"
            )
    print()
    print(_relayed(text, args))
    notes = [
        f"{name} {label}: {cell.note}"
        for name, cells in growth.items()
        for label, cell in cells.items()
        if cell.note
    ]
    for note in notes:
        print(f"- {note}")
    return 0


def _relayed(stream: ChatStream, args: argparse.Namespace) -> str:
    """The ASGI response against its encoder alone, on ``stream``, per target."""
    events = parse([stream.body])
    parser = StreamParser()
    parser.feed(stream.body)
    parser.close()
    expected = parser.snapshot.unified
    lines = [
        f"Relayed by EncodedStreamResponse ({stream.name}, {len(events):,} events, in process):",
        "",
        "| target | encode | relay | relay / encode | added per event |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for target in TARGETS:
        contenders = {
            "encode": Contender(encoder_run(target, events), check_fold(expected), []),
            "relay": Contender(relay_run(target, events), check_fold(expected), []),
        }
        cells = best_of(contenders, [], args.target, 1 if args.quick else 3)
        encode, relay = cells["encode"], cells["relay"]
        added = (
            "n/a"
            if encode.seconds is None or relay.seconds is None
            else f"{(relay.seconds - encode.seconds) / len(events) * 1e6:.2f} µs"
        )
        lines.append(
            f"| {target} | {encode.text()} | {relay.text()} | {_ratio(relay, encode)} | {added} |"
        )
    return "\n".join(lines)


def profile(args: argparse.Namespace) -> None:
    """cProfile of encoding each stream's held events to each target asked for."""
    for stream in chat_streams(0.1 if args.quick else 1.0):
        events = parse([stream.body])
        for target in args.profile:
            run = encoder_run(target, events)
            run([])  # warm
            # CPU time: on a shared machine, wall time charges the wait for a
            # core to whatever function was running.
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            run([])
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("tottime").print_stats(args.top)
            calls = sum(entry[1] for entry in stats.stats.values())  # type: ignore[attr-defined]
            print(
                f"## {stream.name} to {target}: {calls / len(events):.1f} function calls "
                f"per event, top {args.top} by self time\n"
            )
            print(out.getvalue())


def _memory_step(args: argparse.Namespace) -> str:
    """Encoding a held list of events, per event, as the stream grows: every
    byte kept in one output, against batches whose bytes are dropped."""
    scale = 0.1 if args.quick else 1.0
    sizes = [int(size * scale) for size in (100_000, 1_000_000, 2_000_000)]
    header = " | ".join(f"{_size(size)} kept | {_size(size)} batched" for size in sizes)
    lines = [
        "Encoding a held list of tool-argument events, per event: the whole output "
        "kept (one bytes) against batches of 30 events whose bytes are dropped:",
        "",
        f"| target | {header} |",
        "| --- |" + " ---: |" * (2 * len(sizes)),
    ]
    rows: dict[str, list[str]] = {target: [] for target in TARGETS}
    for size in sizes:
        events = parse([tool_call_stream(size).body])
        for target in TARGETS:
            contenders = {
                "kept": Contender(encoder_run(target, events), lambda _: "", []),
                "batched": Contender(batched_run(target, events, 30), lambda _: "", []),
            }
            cells = best_of(contenders, [], args.target, 1 if args.quick else 3)
            for label in ("kept", "batched"):
                seconds = cells[label].seconds
                per_event = "n/a" if seconds is None else f"{seconds / len(events) * 1e9:.0f} ns"
                rows[target].append(per_event)
        del events
    lines += [f"| {target} | " + " | ".join(cells) + " |" for target, cells in rows.items()]
    return "\n".join(lines)


def _linearity(streams: list[ChatStream], growth: dict[str, dict[str, Cell]]) -> str:
    tools = [s.name for s in streams if s.name.startswith("tool-args-")]
    if len(tools) < 2:
        return ""
    small, large = tools[0], tools[1]
    sizes = {s.name: len(s.body) for s in streams}
    lines = [
        f"Growth from {small} to {large} (stream bytes x{sizes[large] / sizes[small]:.1f}; "
        "linear = about the same factor):",
        "",
        "| contender | " + small + " | " + large + " | time factor |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label in growth[small]:
        a, b = growth[small][label], growth[large][label]
        factor = (
            "n/a" if a.seconds is None or b.seconds is None else f"x{b.seconds / a.seconds:.1f}"
        )
        lines.append(f"| {label} | {a.text()} | {b.text()} | {factor} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
