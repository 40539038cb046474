"""Benchmark every dialect against its floor and its official SDK, in one table.

Run by hand (a report, never a timed assertion)::

    .venv/bin/python bench/bench_dialects.py            # full run, several minutes
    .venv/bin/python bench/bench_dialects.py --quick    # streams 10x smaller, seconds
    .venv/bin/python bench/bench_dialects.py --only anthropic gemini --shapes text tool
    .venv/bin/python bench/bench_dialects.py --profile anthropic --shapes text tool

The streams are the chat streams of ``streams.py`` (10,000 events each: text;
reasoning then text; one tool call of 100 KB in ~6-byte deltas; 8 parallel
calls; text with usage), written in every dialect of the registry that can
carry the shape (``streams.dialect_streams``). Each is cut into the same
network-like pieces (``--piece`` bytes, 4 KiB) and measured, side by side in
one run, by:

- ``floor``: the least any reader pays: split the framing (SSE ``data:`` lines,
  NDJSON lines, event-stream frames with both CRCs), decode each payload with
  msgspec, append the delta string it carries to a list (one ``.get`` chain
  per dialect), join once. No checks, no events.
- ``fold``: ``streamfold.fold(pieces)``, the dialect detected, no events.
- ``events``: ``StreamParser()`` fed piece by piece, every event iterated, then
  ``close()`` and ``final()``.
- ``parsed``: the same with ``parse_arguments=True``.
- ``sdk``: the official accumulator, where one exists, on payloads split as
  cheaply as the floor splits them (the SDK's own SSE decoder not counted):
  ``openai`` ``ChatCompletionStreamState`` and ``ResponseStreamState``
  (``construct_type`` of each event, as ``Stream`` builds them), ``anthropic``
  ``accumulate_event`` (what ``MessageStream`` runs), ``google-genai``
  ``GenerateContentResponse._from_response`` per chunk (the SDK does not
  accumulate: the caller joins ``chunk.text``), botocore's
  ``EventStreamBuffer`` for Bedrock (then ``accumulate_event`` for Claude's
  chunks, as ``AnthropicBedrock`` does).

A second table reads ``parser.snapshot`` after every event (one piece per
event, the README's sans-IO loop) at two sizes: growth per doubling (linear
is x2). A third gives the peak memory (tracemalloc) of folding the 1 MB
arguments stream and a 100,000-delta answer against their text plus arguments.

Times are the best of N runs (``bench_chat.best_of``: N so a cell takes about
``--target`` seconds, at least 3; ``gc.collect()`` before each run, the
collector left on during it, as a caller has it, after ``gc.freeze()`` of the
heap that imports and stream generation built, so each collection walks only
the contenders' own objects; runs round robin across a
stream's contenders so load from elsewhere spreads over all of them). Every
contender's result is checked against what the stream must fold to first.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import gc
import io
import itertools
import json
import pstats
import re
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import msgspec
from bench_chat import (
    CLOCK,
    Cell,
    Contender,
    Stopped,
    _environment,
    _ratio,
    _size,
    best_of,
    openai_runner,
)
from streams import (
    DIALECTS,
    SHAPES,
    ChatStream,
    DialectStream,
    dialect_streams,
    tool_call_stream,
)

import streamfold
from streamfold import StreamParser

_decode = msgspec.json.Decoder().decode
Run = Callable[[list[bytes]], Any]
Pick = Callable[[Any], Any]


# -- the floor: framing split, payload decoded, delta appended ----------------------------


def _chat(o: Any) -> Any:
    choices = o.get("choices")
    if not choices:
        return None
    delta = choices[0].get("delta")
    piece = delta.get("content") or delta.get("reasoning_content")
    if piece is None and "tool_calls" in delta:
        piece = delta["tool_calls"][0]["function"].get("arguments")
    return piece


def _responses(o: Any) -> Any:
    return o.get("delta")


def _anthropic(o: Any) -> Any:
    delta = o.get("delta")
    if delta is None:
        return None
    return delta.get("text") or delta.get("thinking") or delta.get("partial_json")


def _gemini(o: Any) -> Any:
    candidates = o.get("candidates")
    if not candidates:
        return None
    content = candidates[0].get("content")
    return content["parts"][0].get("text") if content else None


def _cohere(o: Any) -> Any:
    kind = o["type"]
    if kind == "content-delta":
        content = o["delta"]["message"]["content"]
        return content.get("text") or content.get("thinking")
    if kind == "tool-call-delta":
        return o["delta"]["message"]["tool_calls"]["function"].get("arguments")
    return None


def _interactions(o: Any) -> Any:
    delta = o.get("delta")
    if delta is None:
        return None
    piece = delta.get("text") or delta.get("arguments")
    return piece if piece is not None else delta.get("content", {}).get("text")


def _completions(o: Any) -> Any:
    choices = o.get("choices")
    return choices[0].get("text") if choices else None


def _converse(o: Any) -> Any:
    delta = o.get("delta")
    if delta is None:
        return None
    piece = delta.get("text")
    if piece is None:
        piece = (delta.get("toolUse") or delta.get("reasoningContent"))[
            "input" if "toolUse" in delta else "text"
        ]
    return piece


def _ollama(o: Any) -> Any:
    message = o["message"]
    return message.get("content") or message.get("thinking")


def _ollama_generate(o: Any) -> Any:
    return o.get("response") or o.get("thinking")


def _ai_sdk(o: Any) -> Any:
    return o.get("delta") or o.get("inputTextDelta")


def _bedrock_anthropic(o: Any) -> Any:
    return _anthropic(_decode(base64.b64decode(o["bytes"])))


PICKS: dict[str, Pick] = {
    "openai-chat": _chat,
    "openai-responses": _responses,
    "anthropic": _anthropic,
    "gemini": _gemini,
    "cohere-chat": _cohere,
    "gemini-interactions": _interactions,
    "openai-completions": _completions,
    "bedrock-converse": _converse,
    "bedrock-anthropic": _bedrock_anthropic,
    "ollama": _ollama,
    "ollama-generate": _ollama_generate,
    "ai-sdk-ui": _ai_sdk,
}


def floor_sse(pieces: list[bytes], pick: Pick) -> str:
    """SSE ``data:`` lines split on the pieces as they come, each payload decoded,
    its delta kept. Inlined: a generator in between costs more than the decoding."""
    out: list[str] = []
    append = out.append
    rest = b""
    for piece in pieces:
        lines = (rest + piece).split(b"\n") if rest else piece.split(b"\n")
        rest = lines.pop()
        for line in lines:
            if line[:6] == b"data: " and line != b"data: [DONE]":
                delta = pick(_decode(line[6:]))
                if delta:
                    append(delta)
    return "".join(out)


def floor_ndjson(pieces: list[bytes], pick: Pick) -> str:
    """NDJSON lines split on the pieces, each decoded, its delta kept."""
    out: list[str] = []
    append = out.append
    rest = b""
    for piece in pieces:
        lines = (rest + piece).split(b"\n") if rest else piece.split(b"\n")
        rest = lines.pop()
        for line in lines:
            if line:
                delta = pick(_decode(line))
                if delta:
                    append(delta)
    return "".join(out)


def floor_frames(pieces: list[bytes], pick: Pick) -> str:
    """AWS event-stream frames: the prelude's length, both CRCs, the payload
    decoded, its delta kept (the pieces joined first: cheaper than any buffer)."""
    data = b"".join(pieces)
    view = memoryview(data)
    out: list[str] = []
    append = out.append
    pos = 0
    end = len(data)
    while pos < end:
        total = int.from_bytes(view[pos : pos + 4], "big")
        headers = int.from_bytes(view[pos + 4 : pos + 8], "big")
        zlib.crc32(view[pos : pos + 8])
        zlib.crc32(view[pos : pos + total - 4])
        delta = pick(_decode(view[pos + 12 + headers : pos + total - 4]))
        if delta:
            append(delta)
        pos += total
    return "".join(out)


FLOORS: dict[str, Callable[[list[bytes], Pick], str]] = {
    "sse": floor_sse,
    "ndjson": floor_ndjson,
    "event-stream": floor_frames,
}


def floor_runner(stream: DialectStream) -> Run:
    floor, pick = FLOORS[stream.framing], PICKS[stream.dialect]
    return lambda pieces: floor(pieces, pick)


def expected_deltas(source: ChatStream) -> str:
    return source.reasoning + source.text + "".join(source.tool_arguments)


# -- streamfold ------------------------------------------------------------------------------


def run_fold(pieces: list[bytes]) -> streamfold.Result:
    return streamfold.fold(pieces)


def events_runner(parse_arguments: bool) -> Run:
    def run(pieces: list[bytes]) -> streamfold.Result:
        parser = StreamParser(parse_arguments=parse_arguments)
        for piece in pieces:
            for _event in parser.feed(piece):
                pass
        for _event in parser.close():
            pass
        return parser.final()

    return run


def run_snapshots(pieces: list[bytes]) -> streamfold.Result:
    """The README's sans-IO loop, reading the snapshot after every piece."""
    parser = StreamParser()
    budget = _Budget(len(pieces))
    for piece in pieces:
        parser.feed(piece)
        parser.snapshot  # noqa: B018 - the read is what is measured
        budget.tick()
    parser.close()
    return parser.final()


def check_result(result: streamfold.Result, source: ChatStream) -> str:
    unified = result.unified
    problems = []
    if unified.text != source.text:
        problems.append("text")
    if unified.reasoning != source.reasoning:
        problems.append("reasoning")
    if tuple(c.arguments for c in unified.tool_calls) != source.tool_arguments:
        problems.append("tool calls")
    return "wrong " + ", ".join(problems) if problems else ""


# -- the official SDKs -----------------------------------------------------------------------


def _payloads(pieces: list[bytes]) -> list[bytes]:
    return [
        line[6:]
        for line in b"".join(pieces).split(b"\n")
        if line[:6] == b"data: " and line != b"data: [DONE]"
    ]


class _Budget:
    """Stops an SDK run past ``seconds`` (``bench_chat.Stopped``), checked every 256 events."""

    seconds = 60.0

    def __init__(self, total: int) -> None:
        self.start = time.perf_counter()
        self.total = max(total, 1)
        self.count = 0

    def tick(self) -> None:
        self.count += 1
        if self.count % 256 == 0:
            elapsed = time.perf_counter() - self.start
            if elapsed > self.seconds:
                raise Stopped(elapsed, self.count / self.total)


def responses_runner() -> Run | None:
    try:
        from openai import omit
        from openai._models import construct_type
        from openai.lib.streaming.responses._responses import ResponseStreamState
        from openai.types.responses import ResponseStreamEvent
    except ImportError:
        return None

    def run(pieces: list[bytes]) -> Any:
        state: Any = ResponseStreamState(input_tools=omit, text_format=omit)
        payloads = _payloads(pieces)
        budget = _Budget(len(payloads))
        for payload in payloads:
            budget.tick()
            event: Any = construct_type(type_=ResponseStreamEvent, value=json.loads(payload))
            state.handle_event(event)
        return state._completed_response

    return run


def _anthropic_parts() -> tuple[Any, Any, Any] | None:
    try:
        from anthropic._models import construct_type
        from anthropic.lib.streaming._messages import accumulate_event
        from anthropic.types import RawMessageStreamEvent
    except ImportError:
        return None
    return construct_type, accumulate_event, RawMessageStreamEvent


def anthropic_runner(bedrock: bool = False) -> Run | None:
    parts = _anthropic_parts()
    if parts is None:
        return None
    construct_type, accumulate_event, event_type = parts
    if bedrock:
        try:
            from botocore.eventstream import EventStreamBuffer
        except ImportError:
            return None

    def events_of(pieces: list[bytes]) -> Any:
        if not bedrock:
            yield from _payloads(pieces)
            return
        buffer = EventStreamBuffer()
        for piece in pieces:
            buffer.add_data(piece)
            for message in buffer:
                yield base64.b64decode(json.loads(message.payload)["bytes"])

    def run(pieces: list[bytes]) -> Any:
        snapshot = None
        buffers: dict[int, bytes] = {}
        budget = _Budget(sum(p.count(b"data") for p in pieces))
        for payload in events_of(pieces):
            budget.tick()
            event = construct_type(type_=event_type, value=json.loads(payload))
            snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=buffers)
        return snapshot

    return run


def gemini_runner() -> Run | None:
    try:
        from google.genai.models import _GenerateContentResponse_from_mldev
        from google.genai.types import GenerateContentResponse
    except ImportError:
        return None

    def run(pieces: list[bytes]) -> str:
        texts = []
        payloads = _payloads(pieces)
        budget = _Budget(len(payloads))
        for payload in payloads:
            budget.tick()
            # Models.generate_content_stream, per chunk (the API key client).
            response = _GenerateContentResponse_from_mldev(json.loads(payload), None, None)
            chunk = GenerateContentResponse._from_response(
                response=response, kwargs={"config": {"response_schema": None}}
            )
            content = chunk.candidates[0].content if chunk.candidates else None
            for part in (content.parts if content else None) or ():
                texts.append(part.text or "")
        return "".join(texts)

    return run


def botocore_runner() -> Run | None:
    try:
        from botocore.eventstream import EventStreamBuffer
    except ImportError:
        return None

    def run(pieces: list[bytes]) -> int:
        buffer = EventStreamBuffer()
        count = 0
        for piece in pieces:
            buffer.add_data(piece)
            for message in buffer:
                json.loads(message.payload)
                count += 1
        return count

    return run


_SDKS: dict[str, tuple[str, Callable[[], Run | None]]] = {
    "openai-chat": ("openai ChatCompletionStreamState", lambda: openai_runner(_Budget.seconds)),
    "openai-responses": ("openai ResponseStreamState", responses_runner),
    "anthropic": ("anthropic accumulate_event", anthropic_runner),
    "gemini": ("google-genai per-chunk parse", gemini_runner),
    "bedrock-converse": ("botocore EventStreamBuffer + json", botocore_runner),
    "bedrock-anthropic": ("botocore + anthropic accumulate_event", lambda: anthropic_runner(True)),
}


def sdk_runners(budget: float, dialects: list[str]) -> dict[str, tuple[str, Run]]:
    """The SDK contender of each dialect that has one installed: its label and its run."""
    _Budget.seconds = budget
    found = {d: (label, make()) for d, (label, make) in _SDKS.items() if d in dialects}
    return {dialect: (label, run) for dialect, (label, run) in found.items() if run is not None}


# -- the report ------------------------------------------------------------------------------


def measure(
    stream: DialectStream, sdks: dict[str, tuple[str, Run]], args: argparse.Namespace
) -> dict[str, Cell]:
    pieces = stream.pieces(args.piece)
    expected = expected_deltas(stream.source)
    source = stream.source

    def check_floor(out: str) -> str:
        # Parallel calls interleave: the floor keeps the pieces in wire order.
        return "" if sorted(out) == sorted(expected) else "wrong deltas"

    def check_fold(result: streamfold.Result) -> str:
        return check_result(result, source)

    contenders = {
        "floor": Contender(floor_runner(stream), check_floor, []),
        "fold": Contender(run_fold, check_fold, []),
        "events": Contender(events_runner(False), check_fold, []),
        "parsed": Contender(events_runner(True), check_fold, []),
    }
    if stream.dialect in sdks:
        contenders["sdk"] = Contender(sdks[stream.dialect][1], lambda _: "", [])
    # The SDKs' modules make a large heap: freeze what exists now, so the
    # gc.collect() before each run (bench_chat.time_once) walks only the garbage.
    gc.collect()
    gc.freeze()
    start = time.perf_counter()
    # Two runs at least: an SDK's first one builds its models (pydantic's deferred schemas).
    cells = best_of(contenders, pieces, args.target, 2 if args.quick else 3)
    took = time.perf_counter() - start
    print(
        f"... {stream.dialect} {stream.shape}: {len(stream.body):,} B, {took:.1f} s",
        file=sys.stderr,
    )
    return cells


def main_table(args: argparse.Namespace) -> None:
    sdks = sdk_runners(args.sdk_budget, args.only)
    scale = args.scale
    clock = "CPU time" if args.cpu else "wall time"
    print(f"Environment: {_environment()}; pieces of {args.piece:,} B; {clock}; load: {_load()}.")
    print()
    print(
        "| dialect | shape | size | floor | fold | events | parsed | sdk "
        "| fold / floor | events / floor | parsed / floor | sdk / floor |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    notes: list[str] = []
    for stream in dialect_streams(scale, tuple(args.only), tuple(args.shapes)):
        cells = measure(stream, sdks, args)
        floor = cells["floor"]
        sdk = cells.get("sdk", Cell(note="n/a"))
        print(
            f"| {stream.dialect} | {stream.shape} | {_size(len(stream.body))} | {floor.text()} "
            f"| {cells['fold'].text()} | {cells['events'].text()} | {cells['parsed'].text()} "
            f"| {sdk.text()} | {_ratio(cells['fold'], floor)} | {_ratio(cells['events'], floor)} "
            f"| {_ratio(cells['parsed'], floor)} | {_ratio(sdk, floor)} |",
            flush=True,
        )
        for label, cell in cells.items():
            if cell.note.startswith("wrong"):
                notes.append(f"{stream.dialect} {stream.shape}: {label} {cell.note}")
    print()
    print("SDK column: " + "; ".join(f"{d}: {label}" for d, (label, _) in sdks.items()) + ".")
    for note in notes:
        print(f"- {note}")


def event_pieces(stream: DialectStream) -> list[bytes]:
    """The body cut after every event, as a slow stream hands it over."""
    body = stream.body
    if stream.framing == "event-stream":
        out, pos = [], 0
        while pos < len(body):
            total = int.from_bytes(body[pos : pos + 4], "big")
            out.append(body[pos : pos + total])
            pos += total
        return out
    if stream.framing == "ndjson":
        return [line + b"\n" for line in body.split(b"\n") if line]
    # SSE: after each blank line (Gemini's encoder ends lines with CRLF).
    return re.findall(rb".*?(?:\r\n\r\n|\n\n)", body, re.S)


def snapshot_table(args: argparse.Namespace) -> None:
    """``parser.snapshot`` after every event, at two sizes: the growth per doubling."""
    small = args.scale * args.snapshot_scale
    print()
    print(
        f"Snapshot after every event (one piece per event), text and tool shapes "
        f"at scale {small:g} and {2 * small:g} (linear: x2.0; fold alone for comparison):"
    )
    print()
    print(
        "| dialect | shape | events | fold | snapshots | snapshots / fold "
        "| events x2 | snapshots x2 | growth per doubling |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    shapes = tuple(s for s in ("text", "tool") if s in args.shapes)
    pairs = zip(
        dialect_streams(small, tuple(args.only), shapes),
        dialect_streams(2 * small, tuple(args.only), shapes),
        strict=True,
    )
    for a, b in pairs:
        cells: dict[str, Cell] = {}
        for tag, stream in (("a", a), ("b", b)):
            pieces = event_pieces(stream)
            gc.collect()
            gc.freeze()
            timed = best_of(
                {
                    "fold": Contender(run_fold, lambda _: "", []),
                    "snapshots": Contender(run_snapshots, lambda _: "", []),
                },
                pieces,
                args.target,
                1 if args.quick else 3,
            )
            cells.update({f"{k} {tag}": v for k, v in timed.items()})
            cells[f"n {tag}"] = Cell(float(len(pieces)))
        growth = _factor(cells["snapshots a"], cells["snapshots b"])
        print(
            f"| {a.dialect} | {a.shape} | {int(cells['n a'].seconds or 0):,} "
            f"| {cells['fold a'].text()} | {cells['snapshots a'].text()} "
            f"| {_ratio(cells['snapshots a'], cells['fold a'])} "
            f"| {int(cells['n b'].seconds or 0):,} | {cells['snapshots b'].text()} | {growth} |",
            flush=True,
        )


def _factor(a: Cell, b: Cell) -> str:
    return f"x{b.seconds / a.seconds:.1f}" if a.seconds and b.seconds else "n/a"


def memory_table(args: argparse.Namespace) -> None:
    """Peak traced memory folding the 1 MB arguments stream and a 100,000-delta
    answer, in every dialect."""
    size = max(1000, int(1_000_000 * args.scale))
    source = tool_call_stream(size)
    text = expected_deltas(source)
    # As Python holds it: a str of one, two or four bytes per character (the
    # widest character decides; these arguments hold an emoji: four).
    print()
    print(
        f"Peak memory (tracemalloc) folding one tool call of {_size(source.argument_bytes)} "
        f"of arguments in ~6 B deltas ({_size(len(text.encode()))} of UTF-8; "
        f"{_size(sys.getsizeof(text))} as one Python str), and an answer of "
        f"{int(100_000 * args.scale):,} text deltas, against the streamed text + "
        "arguments:"
    )
    print()
    print("| dialect | shape | stream | contender | peak | peak / UTF-8 | peak / str |")
    print("| --- | --- | ---: | --- | ---: | ---: | ---: |")
    streams = itertools.chain(
        dialect_streams(size / 100_000, tuple(args.only), ("tool",)),
        dialect_streams(10 * args.scale, tuple(args.only), ("text",)),
    )
    for stream in streams:
        deltas = expected_deltas(stream.source)
        kept, held = len(deltas.encode()), sys.getsizeof(deltas)
        pieces = stream.pieces(args.piece)
        for label, run in (("fold", run_fold), ("events", events_runner(False))):
            run(pieces)  # once before: the modules it imports are not counted
            gc.collect()
            tracemalloc.start()
            result = run(pieces)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            del result
            print(
                f"| {stream.dialect} | {stream.shape} | {_size(len(stream.body))} | {label} "
                f"| {_size(peak)} "
                f"| {peak / kept:.2f} | {peak / held:.2f} |",
                flush=True,
            )


def profile(args: argparse.Namespace) -> None:
    """cProfile of the fold of each stream asked for, top functions by self time."""
    for stream in dialect_streams(args.scale, tuple(args.profile), tuple(args.shapes)):
        pieces = stream.pieces(args.piece)
        # CPU time: on a shared machine, wall time charges the wait for a core
        # to whatever function was running.
        profiler = cProfile.Profile(time.process_time)
        run_fold(pieces)  # warm: imports and the first decoders built
        profiler.enable()
        run_fold(pieces)
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(args.top)
        calls = sum(entry[1] for entry in stats.stats.values())  # type: ignore[attr-defined]
        events = len(event_pieces(stream))
        print(
            f"## {stream.dialect} {stream.shape}: streamfold.fold, {calls / events:.1f} "
            f"function calls per event, top {args.top} by self time\n"
        )
        print(out.getvalue())


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="streams 50x smaller, 1 run per cell")
    parser.add_argument(
        "--scale", type=float, default=None, help="stream size factor (1; 0.02 quick)"
    )
    parser.add_argument("--piece", type=int, default=4096, help="bytes per read (4096)")
    parser.add_argument("--target", type=float, default=0.5, help="seconds per cell (0.5)")
    parser.add_argument(
        "--sdk-budget",
        type=float,
        default=60.0,
        help="seconds before the openai chat SDK is stopped",
    )
    parser.add_argument("--only", nargs="+", default=list(DIALECTS), help="dialects (all)")
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=SHAPES)
    parser.add_argument(
        "--tables",
        nargs="+",
        default=["main", "snapshot", "memory"],
        choices=["main", "snapshot", "memory"],
    )
    parser.add_argument(
        "--snapshot-scale",
        type=float,
        default=0.2,
        help="snapshot table's smaller size, of --scale (0.2)",
    )
    parser.add_argument(
        "--cpu", action="store_true", help="time CPU time, not wall time (a shared machine)"
    )
    parser.add_argument("--profile", nargs="+", metavar="DIALECT", help="cProfile the fold only")
    parser.add_argument("--top", type=int, default=15, help="functions per profile (15)")
    args = parser.parse_args(argv)
    if args.scale is None:
        args.scale = 0.02 if args.quick else 1.0
    if args.quick:
        args.target = min(args.target, 0.02)
        args.sdk_budget = min(args.sdk_budget, 5.0)
    _Budget.seconds = args.sdk_budget
    if args.cpu:
        CLOCK[0] = time.process_time
    if args.profile:
        profile(args)
        return 0
    if "main" in args.tables:
        main_table(args)
    if "snapshot" in args.tables:
        snapshot_table(args)
    if "memory" in args.tables:
        memory_table(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
