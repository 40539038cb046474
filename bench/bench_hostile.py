"""Hostile shapes: does time stay linear and memory bounded when the server attacks?

::

    .venv/bin/python bench/bench_hostile.py            # about 3 minutes
    .venv/bin/python bench/bench_hostile.py --quick    # sizes 8x smaller, seconds
    .venv/bin/python bench/bench_hostile.py --only blank-prefix-bytewise huge-line

Each shape is built at sizes doubling three times, then folded by a
``StreamParser`` fed 64 KiB reads (a byte at a time where the row says so),
events iterated and dropped as a caller would. Time is the CPU time of this
process (``time.process_time``: other load on a shared machine does not count),
the best of the runs (``gc.collect()`` before each, tracemalloc off); memory is the peak traced by
``tracemalloc`` during one more run (the input itself, built before, is not
counted). Per doubling of the input, a linear fold's time and memory grow x2;
bounded ones stay x1; a quadratic one's time grows x4.

The verdict reads the last two doublings, the least blurred by fixed costs
(the geometric mean of their factors): <= 1.4 bounded, <= 3.0 linear, <= 3.5
superlinear, else quadratic (a growth under 5 ms or 64 KiB counts as bounded).
The shapes that are one event (a huge line, a huge event, many lines in one
event) run with ``max_event_size`` = 1 MiB and sizes from 2 to 16 MiB: memory
must stay bounded by that limit (column ``peak / limit``). The outcome column says how the fold
ended: ``ok``, a streamfold error (as it should for an event over the limit),
or ``CRASH`` with the exception that escaped and where.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import sys
import time
import traceback
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from streamfold import StreamfoldError, StreamParser

_SRC = str(Path(__file__).resolve().parents[1] / "src" / "streamfold") + "/"
_READ = 64 * 1024
_LIMIT = 1024 * 1024  # max_event_size of the one-event shapes
_MB = 1024 * 1024
_encode = msgspec.json.Encoder().encode


# -- the shapes ---------------------------------------------------------------------------


def _sse(chunks: list[bytes], done: bool = True) -> bytes:
    tail = [b"data: [DONE]\n\n"] if done else []
    return b"".join([*(b"data: " + c + b"\n\n" for c in chunks), *tail])


def _chat(delta: dict[str, object], index: int = 0, finish: str | None = None) -> bytes:
    return _encode({"choices": [{"index": index, "delta": delta, "finish_reason": finish}]})


_CHAT_END = _chat({}, finish="stop")
_TEXT_STREAM = _sse(
    [_chat({"role": "assistant", "content": ""}), _chat({"content": "hi"}), _CHAT_END]
)


def huge_line(size: int) -> bytes:
    """One ``data:`` line of ``size`` bytes, never ended."""
    return b'data: {"choices":[{"index":0,"delta":{"content":"' + b"x" * size


def huge_array_element(size: int) -> bytes:
    """A Gemini JSON-array stream whose first element is ``size`` bytes, never closed."""
    return b'[{"candidates":[{"content":{"parts":[{"text":"' + b"x" * size


def huge_event(size: int) -> bytes:
    """One event of 100-byte ``data:`` lines reaching ``size`` bytes."""
    line = b"data: " + b" " * 93 + b"\n"
    return b'data: {"choices":[]\n' + line * (size // len(line)) + b"data: }\n\n"


def lines_in_one_event(lines: int) -> bytes:
    """One event of ``lines`` data lines holding two spaces each (JSON whitespace)."""
    head = b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]\n'
    return head + b"data:   \n" * lines + b"data: }\n\ndata: [DONE]\n\n"


def tiny_text_events(count: int) -> bytes:
    """``count`` chunks of one character of text each."""
    chunk = b"data: " + _chat({"content": "a"}) + b"\n\n"
    return b"data: " + _chat({"role": "assistant"}) + b"\n\n" + chunk * count + _sse([_CHAT_END])


def tiny_empty_events(count: int) -> bytes:
    """``count`` chunks that carry nothing (an empty delta): nothing to keep."""
    chunk = b"data: " + _chat({}) + b"\n\n"
    return b"data: " + _chat({"role": "assistant"}) + b"\n\n" + chunk * count + _sse([_CHAT_END])


def tool_call_indexes(count: int, stride: int = 1) -> bytes:
    """``count`` tool calls, each its own index (``i * stride``), id, name and ``{}``."""
    chunks = [
        _chat(
            {
                "tool_calls": [
                    {
                        "index": i * stride,
                        "id": f"call_{i}",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                    }
                ]
            }
        )
        for i in range(count)
    ]
    return _sse([_chat({"role": "assistant"}), *chunks, _chat({}, finish="tool_calls")])


def many_choices(count: int) -> bytes:
    """``count`` choices, each with a role, a text delta and a finish reason."""
    chunks = [_chat({"role": "assistant", "content": ""}, index=i) for i in range(count)]
    chunks += [_chat({"content": f"answer {i}"}, index=i) for i in range(count)]
    chunks += [_chat({}, index=i, finish="stop") for i in range(count)]
    return _sse(chunks)


# ~1 KiB of JSON string text: code with escapes and non-ASCII characters
_ARGUMENT_BLOCK = (
    '    out = render(page, \\"caf\u00e9\\")  # na\u00efve r\u00e9sum\u00e9 \u4f60\u597d\\n' * 14
)


def tool_arguments(size: int) -> bytes:
    """One tool call whose arguments (one JSON string) reach ``size`` bytes in ~1 KiB deltas."""
    pieces = ['{"path":"a.py","content":"']
    pieces += [_ARGUMENT_BLOCK] * (size // len(_ARGUMENT_BLOCK))
    pieces.append('"}')
    start = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "edit"}}
    chunks = [_chat({"role": "assistant", "tool_calls": [start]})]
    chunks += [_chat({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in pieces]
    return _sse([*chunks, _chat({}, finish="tool_calls")])


def deep_chat_arguments(depth: int) -> bytes:
    """Tool-call arguments nested ``depth`` arrays deep, in 1 KiB deltas."""
    text = "[" * depth + "]" * depth
    start = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f"}}
    chunks = [_chat({"role": "assistant", "tool_calls": [start]})]
    chunks += [
        _chat({"tool_calls": [{"index": 0, "function": {"arguments": text[i : i + 1024]}}]})
        for i in range(0, len(text), 1024)
    ]
    return _sse([*chunks, _chat({}, finish="tool_calls")])


def _anthropic(kind: str, payload: dict[str, object]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + _encode({"type": kind, **payload}) + b"\n\n"


def deep_anthropic_input(depth: int) -> bytes:
    """An Anthropic tool_use block whose input_json_delta pieces nest ``depth`` arrays deep."""
    text = '{"a":' + "[" * depth + "]" * depth + "}"
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": []}
    out = [
        _anthropic("message_start", {"message": message}),
        _anthropic(
            "content_block_start",
            {
                "index": 0,
                "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}},
            },
        ),
    ]
    out += [
        _anthropic(
            "content_block_delta",
            {"index": 0, "delta": {"type": "input_json_delta", "partial_json": text[i : i + 1024]}},
        )
        for i in range(0, len(text), 1024)
    ]
    out += [
        _anthropic("content_block_stop", {"index": 0}),
        _anthropic("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {}}),
        _anthropic("message_stop", {}),
    ]
    return b"".join(out)


def deep_gemini_path(depth: int) -> bytes:
    """A Vertex streamed function call with one partialArgs piece ``depth`` keys deep."""

    def chunk(call: dict[str, object], finish: str | None = None) -> bytes:
        candidate: dict[str, object] = {
            "content": {"parts": [{"functionCall": call}], "role": "model"},
            "index": 0,
        }
        if finish:
            candidate["finishReason"] = finish
        return _encode({"candidates": [candidate]})

    path = "$" + ".a" * depth
    piece = {"jsonPath": path, "stringValue": "v", "willContinue": False}
    return _sse(
        [
            chunk({"name": "f", "willContinue": True}),
            chunk({"partialArgs": [piece], "willContinue": True}),
            chunk({}, "STOP"),
        ],
        done=False,
    )


def blank_prefix(size: int) -> bytes:
    """``size`` blank lines before the first event of a short stream."""
    return b"\n" * size + _TEXT_STREAM


@dataclass(frozen=True)
class Shape:
    """One hostile shape: how to build it, at which sizes, how to feed it.

    Attributes:
        name: the row id (``--only``).
        what: the shape, in words.
        build: input of a given size.
        sizes: the sizes (doubling), and ``quick``: smaller ones.
        unit: what a size counts.
        expected: (time, memory) verdicts a correct fold shows.
        bytewise: fed a byte at a time instead of 64 KiB reads.
        one_event: the input is one event: memory is held to ``max_event_size``.
        snapshot: the caller reads ``parser.snapshot`` after every read.
        options: more ``StreamParser`` options.
    """

    name: str
    what: str
    build: Callable[[int], bytes]
    sizes: tuple[int, ...]
    quick: tuple[int, ...]
    unit: str
    expected: tuple[str, str]
    bytewise: bool = False
    one_event: bool = False
    snapshot: bool = False
    parse_arguments: bool = False


_MiB = (2 * _MB, 4 * _MB, 8 * _MB, 16 * _MB)
_QUICK_MiB = (_MB // 4, _MB // 2, _MB, 2 * _MB)
# The one-event shapes in quick mode run with a limit 8x smaller too (see main).
_DEEP = (125_000, 250_000, 500_000, 1_000_000)
_LINES = (62_500, 125_000, 250_000, 500_000)
_EVENTS = (125_000, 250_000, 500_000, 1_000_000)
_CALLS = (12_500, 25_000, 50_000, 100_000)


def _quick(sizes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(max(1, size // 8) for size in sizes)


def _shape(
    name: str,
    what: str,
    build: Callable[[int], bytes],
    sizes: tuple[int, ...],
    unit: str,
    expected: tuple[str, str],
    **flags: bool,
) -> Shape:
    return Shape(name, what, build, sizes, _quick(sizes), unit, expected, **flags)


_LINEAR = ("linear", "linear")
_BOUNDED = ("bounded", "bounded")

SHAPES = (
    _shape("huge-line", "one SSE line, no newline", huge_line, _MiB, "B", _BOUNDED, one_event=True),
    _shape(
        "huge-array-element",
        "one Gemini JSON-array element, never closed",
        huge_array_element,
        _MiB,
        "B",
        _BOUNDED,
        one_event=True,
    ),
    _shape(
        "event-over-limit",
        "one SSE event of 100-byte lines over max_event_size",
        huge_event,
        _MiB,
        "B",
        _BOUNDED,
        one_event=True,
    ),
    _shape(
        "lines-in-one-event",
        "tiny data lines in one event, over max_event_size",
        lines_in_one_event,
        (250_000, 500_000, 1_000_000, 2_000_000),
        "lines",
        _BOUNDED,
        one_event=True,
    ),
    _shape(
        "lines-in-one-event-fits",
        "tiny data lines in one event (16 MiB default limit)",
        lines_in_one_event,
        _LINES,
        "lines",
        _LINEAR,
    ),
    _shape(
        "tiny-text-events",
        "chat chunks of one character each",
        tiny_text_events,
        (62_500, 125_000, 250_000, 500_000),
        "events",
        _LINEAR,
    ),
    _shape(
        "tiny-empty-events",
        "chat chunks carrying nothing",
        tiny_empty_events,
        _EVENTS,
        "events",
        ("linear", "bounded"),
    ),
    _shape(
        "tool-call-indexes",
        "chat tool calls, each its own index",
        tool_call_indexes,
        _CALLS,
        "calls",
        _LINEAR,
    ),
    _shape(
        "tool-call-indexes-snapshot",
        "chat tool calls, parser.snapshot read after every read",
        tool_call_indexes,
        (1_562, 3_125, 6_250, 12_500),
        "calls",
        _LINEAR,
        snapshot=True,
    ),
    _shape(
        "sparse-tool-call-indexes",
        "chat tool calls at indexes 0, 1e6, 2e6...",
        lambda n: tool_call_indexes(n, 1_000_003),
        (6_250, 12_500, 25_000, 50_000),
        "calls",
        _LINEAR,
    ),
    _shape(
        "choices",
        "chat choices, each with text and a finish reason",
        many_choices,
        (1_250, 2_500, 5_000, 10_000),
        "choices",
        _LINEAR,
    ),
    _shape(
        "tool-arguments",
        "one tool call's arguments in 1 KiB deltas (parse_arguments)",
        tool_arguments,
        (6_553_600, 13_107_200, 26_214_400, 52_428_800),
        "B",
        _LINEAR,
        parse_arguments=True,
    ),
    _shape(
        "deep-chat-arguments",
        "tool-call arguments nested in arrays (parse_arguments)",
        deep_chat_arguments,
        _DEEP,
        "levels",
        _LINEAR,
        parse_arguments=True,
    ),
    _shape(
        "deep-anthropic-input",
        "Anthropic input_json_delta nested in arrays",
        deep_anthropic_input,
        _DEEP,
        "levels",
        _LINEAR,
        parse_arguments=True,
    ),
    _shape(
        "deep-gemini-path",
        "Vertex partialArgs jsonPath $.a.a.a... deep",
        deep_gemini_path,
        _DEEP,
        "levels",
        _LINEAR,
        parse_arguments=True,
    ),
    _shape(
        "blank-prefix",
        "blank lines before the first event, fed in 64 KiB reads",
        blank_prefix,
        (_MB // 2, _MB, 2 * _MB, 4 * _MB),
        "B",
        ("linear", "bounded"),
    ),
    _shape(
        "blank-prefix-bytewise",
        "blank lines before the first event, a byte at a time",
        blank_prefix,
        (4_096, 8_192, 16_384, 32_768),
        "B",
        ("linear", "bounded"),
        bytewise=True,
    ),
)


# -- measuring --------------------------------------------------------------------------------


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f.filename.startswith(_SRC)]
    frame = ours[-1] if ours else frames[-1]
    return f"{Path(frame.filename).name}:{frame.lineno}"


def fold(pieces: list[bytes], shape: Shape, limit: int) -> str:
    """Fold ``pieces`` as a caller would; how it ended."""
    parser = StreamParser(
        parse_arguments=shape.parse_arguments, max_event_size=limit if shape.one_event else 16 * _MB
    )
    try:
        for piece in pieces:
            for _ in parser.feed(piece):
                pass
            if shape.snapshot:
                _ = parser.snapshot
        parser.close()
        parser.snapshot.unified.to_dict()
    except Exception as exc:
        return f"CRASH {type(exc).__name__} at {_where(exc)}"
    error = parser.error
    if error is None:
        return "ok"
    assert isinstance(error, StreamfoldError)
    return type(error).__name__


@dataclass
class Cell:
    size: int
    input_bytes: int
    seconds: float
    peak: int
    outcome: str


def measure(shape: Shape, size: int, limit: int, runs: int) -> Cell:
    data = shape.build(size)
    if shape.bytewise:
        pieces = [data[i : i + 1] for i in range(len(data))]
    else:
        pieces = [data[i : i + _READ] for i in range(0, len(data), _READ)]
    best = float("inf")
    outcome = ""
    for run in range(runs):
        if run and best > 0.25:
            break  # a long run is its own average
        gc.collect()
        start = time.process_time()
        outcome = fold(pieces, shape, limit)
        best = min(best, time.process_time() - start)
    gc.collect()
    tracemalloc.start()
    fold(pieces, shape, limit)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return Cell(size, len(data), best, peak, outcome)


def verdict(factors: list[float]) -> str:
    """What the growth of the last two doublings says (their geometric mean:
    one noisy cell does not make a trend)."""
    factor = (factors[-1] * factors[-2]) ** 0.5 if len(factors) > 1 else factors[-1]
    if factor <= 1.4:
        return "bounded"
    if factor <= 3.0:
        return "linear"
    if factor <= 3.5:
        return "superlinear"
    return "quadratic"


_RANK = {"bounded": 0, "linear": 1, "superlinear": 2, "quadratic": 3}


def _size(value: int, unit: str) -> str:
    if unit == "B":
        return f"{value / _MB:g} MiB" if value >= _MB // 4 else f"{value / 1024:g} KiB"
    return f"{value:,}"


def row(shape: Shape, cells: list[Cell], limit: int) -> str:
    times = [c.seconds for c in cells]
    peaks = [max(c.peak, 1) for c in cells]
    time_factors = [b / a for a, b in itertools.pairwise(times)]
    memory_factors = [b / a for a, b in itertools.pairwise(peaks)]
    # Growth under 5 ms (time) or 64 KiB (memory) is noise, not a trend.
    seen = (
        "bounded" if times[-1] - times[-2] < 0.005 else verdict(time_factors),
        "bounded" if peaks[-1] - peaks[-2] < 64 * 1024 else verdict(memory_factors),
    )
    worse = [
        what
        for what, got, want in zip(("time", "memory"), seen, shape.expected, strict=True)
        if _RANK[got] > _RANK[want]
    ]
    outcomes = sorted({c.outcome for c in cells}, key=[c.outcome for c in cells].index)
    if any(o.startswith("CRASH") for o in outcomes):
        worse.append("crash")
    if shape.one_event and peaks[-1] > 2 * limit:
        worse.append("memory over 2x the limit")
    flag = "ok" if not worse else "**BUG: " + ", ".join(worse) + "**"
    ratio = f"{peaks[-1] / limit:.1f}" if shape.one_event else "-"
    per_byte = f"{peaks[-1] / cells[-1].input_bytes:.2g}"
    return (
        f"| {shape.name} | {shape.what} | {' / '.join(_size(c.size, shape.unit) for c in cells)} "
        f"| {' / '.join(f'{t:.3g}' for t in times)} "
        f"| {' / '.join(f'{p / _MB:.3g}' for p in peaks)} "
        f"| {' '.join(f'x{f:.1f}' for f in time_factors)} "
        f"| {' '.join(f'x{f:.1f}' for f in memory_factors)} "
        f"| time {seen[0]}, memory {seen[1]} "
        f"| time {shape.expected[0]}, memory {shape.expected[1]} "
        f"| {per_byte} | {ratio} | {'; '.join(outcomes)} | {flag} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="sizes 8x smaller")
    parser.add_argument("--only", nargs="+", metavar="SHAPE", help="these shapes only")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per cell, best kept (3)")
    args = parser.parse_args(argv)
    shapes = [s for s in SHAPES if not args.only or s.name in args.only]
    if args.only and len(shapes) != len(args.only):
        known = ", ".join(s.name for s in SHAPES)
        parser.error(f"unknown shape in {args.only} (known: {known})")
    limit = _LIMIT // 8 if args.quick else _LIMIT
    print(
        "| shape | what | sizes | time (s) | peak memory (MiB) | time x per doubling "
        "| memory x per doubling | verdict | expected | peak / input | peak / limit | outcome | |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | ---: | ---: | --- | --- |")
    started = time.perf_counter()
    for shape in shapes:
        sizes = shape.quick if args.quick else shape.sizes
        row_started = time.perf_counter()
        cells = [measure(shape, size, limit, args.runs) for size in sizes]
        print(row(shape, cells, limit), flush=True)
        print(f"{shape.name}: {time.perf_counter() - row_started:.1f} s", file=sys.stderr)
    print(
        f"\n{len(shapes)} shapes in {time.perf_counter() - started:.0f} s; one-event shapes with "
        f"max_event_size = {limit / _MB:g} MiB, 64 KiB reads unless bytewise.",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
