"""Benchmark the framings other than SSE: Bedrock's AWS event-stream and Ollama's
newline-delimited JSON, bytes in to final response out.

Run by hand (a report, never a timed assertion)::

    .venv/bin/python bench/bench_framings.py           # about a minute
    .venv/bin/python bench/bench_framings.py --quick   # streams 10x smaller

The streams are generated: ``n`` text deltas of a ConverseStream (padded with
Bedrock's ``"p"`` field, as the service sends them) and of an Ollama
``/api/chat`` stream, each as the wire carries it (event-stream frames,
NDJSON) and as recordings keep it (``data:`` lines), and one tool call whose
1 MB of input arrives in 6-byte pieces. Each is cut into 4 KiB reads.

Contenders, per stream:

- ``fold``: ``streamfold.fold`` (no events); ``events``: a ``StreamParser``
  fed read by read, every event built.
- ``decode``: the framing alone (``EventStreamDecoder``, ``JSONSequenceDecoder``).
- ``floor``: the cheapest reading of the same bytes: for frames, the prelude's
  length, both CRCs and the payload's JSON decoded (msgspec), per message; for
  lines, the split on ``\\n`` and each line's JSON decoded.
- ``botocore`` (frames only): ``EventStreamBuffer`` fed the same reads, each
  payload's JSON decoded, as boto3 reads a Bedrock stream.

Times are the best of ``--runs`` runs (5), with ``gc.collect()`` before each.
The last table doubles the stream: the time per MB must stay flat (linear).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
import zlib
from collections.abc import Callable
from typing import Any

import msgspec

import streamfold
from streamfold import StreamParser
from streamfold.eventstream import EventStreamDecoder, encode_event
from streamfold.framing import JSONSequenceDecoder, ndjson

_decode = msgspec.json.Decoder().decode
_PIECE = 4096


def _pad(n: int) -> str:
    return "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[: 1 + n % 60]


def converse_members(deltas: int, tool_bytes: int = 0) -> list[tuple[str, dict[str, Any]]]:
    members: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    if tool_bytes:
        members.append(
            (
                "contentBlockStart",
                {
                    "contentBlockIndex": 0,
                    "start": {"toolUse": {"toolUseId": "t1", "name": "write"}},
                },
            )
        )
        text = '{"content": "' + "x" * tool_bytes + '"}'
        for i in range(0, len(text), 6):
            delta = {"toolUse": {"input": text[i : i + 6]}}
            members.append(("contentBlockDelta", {"contentBlockIndex": 0, "delta": delta}))
        stop = "tool_use"
    else:
        for i in range(deltas):
            delta = {"text": f"word{i % 97} "}
            members.append(("contentBlockDelta", {"contentBlockIndex": 0, "delta": delta}))
        stop = "end_turn"
    members.append(("contentBlockStop", {"contentBlockIndex": 0}))
    members.append(("messageStop", {"stopReason": stop}))
    usage = {"inputTokens": 10, "outputTokens": deltas, "totalTokens": 10 + deltas}
    members.append(("metadata", {"usage": usage, "metrics": {"latencyMs": 1}}))
    return members


def frames(members: list[tuple[str, dict[str, Any]]]) -> bytes:
    out = []
    for i, (name, value) in enumerate(members):
        padded = {**value, "p": _pad(i)}
        out.append(encode_event(name, json.dumps(padded, separators=(",", ":")).encode()))
    return b"".join(out)


def wrapped(members: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(
        b"data: " + json.dumps({name: value}, separators=(",", ":")).encode() + b"\n\n"
        for name, value in members
    )


def ollama_lines(deltas: int) -> list[bytes]:
    lines = []
    for i in range(deltas):
        line = {
            "model": "llama3.2",
            "created_at": "2025-10-26T17:15:24.097767Z",
            "message": {"role": "assistant", "content": f"word{i % 97} "},
            "done": False,
        }
        lines.append(json.dumps(line, separators=(",", ":")).encode())
    last = {
        "model": "llama3.2",
        "created_at": "2025-10-26T17:15:25.097767Z",
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 10,
        "eval_count": deltas,
    }
    lines.append(json.dumps(last, separators=(",", ":")).encode())
    return lines


def pieces(data: bytes) -> list[bytes]:
    return [data[i : i + _PIECE] for i in range(0, len(data), _PIECE)]


# -- contenders -------------------------------------------------------------------------


def run_fold(chunks: list[bytes]) -> Any:
    return streamfold.fold(chunks)


def run_events(chunks: list[bytes]) -> Any:
    parser = StreamParser()
    for chunk in chunks:
        for _ in parser.feed(chunk):
            pass
    parser.close()
    return parser.final()


def run_decode_frames(chunks: list[bytes]) -> int:
    decoder = EventStreamDecoder(1 << 24)
    return sum(len(decoder.feed(c)) for c in chunks) + len(decoder.close())


def run_decode_lines(chunks: list[bytes]) -> int:
    decoder = JSONSequenceDecoder(1 << 24)
    return sum(len(decoder.feed(c)) for c in chunks) + len(decoder.close())


def floor_frames(chunks: list[bytes]) -> int:
    data = b"".join(chunks)
    view = memoryview(data)
    pos = count = 0
    while pos < len(data):
        total = int.from_bytes(view[pos : pos + 4], "big")
        headers = int.from_bytes(view[pos + 4 : pos + 8], "big")
        zlib.crc32(view[pos : pos + 8])
        zlib.crc32(view[pos : pos + total - 4])
        _decode(view[pos + 12 + headers : pos + total - 4])
        pos += total
        count += 1
    return count


def floor_lines(chunks: list[bytes]) -> int:
    return sum(1 for line in b"".join(chunks).split(b"\n") if line and _decode(line))


def run_botocore(chunks: list[bytes]) -> int:
    from botocore.eventstream import EventStreamBuffer

    buffer = EventStreamBuffer()
    count = 0
    for chunk in chunks:
        buffer.add_data(chunk)
        for message in buffer:
            _decode(message.payload)
            count += 1
    return count


def best(run: Callable[[list[bytes]], Any], chunks: list[bytes], runs: int) -> float:
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        run(chunks)
        times.append(time.perf_counter() - start)
    return min(times)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    n = 10_000 // scale
    try:
        import botocore  # noqa: F401

        has_botocore = True
    except ImportError:
        has_botocore = False
    streams = [
        (f"ConverseStream, {n:,} text deltas, frames", frames(converse_members(n)), "frames"),
        (f"ConverseStream, {n:,} text deltas, data: lines", wrapped(converse_members(n)), "sse"),
        (
            f"ConverseStream, 1 tool call of {1024 // scale} KB in 6 B pieces, frames",
            frames(converse_members(0, (1 << 20) // scale)),
            "frames",
        ),
        (f"Ollama /api/chat, {n:,} lines, NDJSON", ndjson(ollama_lines(n)), "lines"),
        (f"Ollama /api/chat, {n:,} lines, data: lines", wrapped_lines(ollama_lines(n)), "sse"),
    ]
    print(f"Python {platform.python_version()}, msgspec {msgspec.__version__}, reads of 4 KiB\n")
    print("| stream | bytes | fold | events | decode | floor | botocore | events / floor |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for title, data, kind in streams:
        chunks = pieces(data)
        fold_t = best(run_fold, chunks, args.runs)
        events_t = best(run_events, chunks, args.runs)
        if kind == "frames":
            decode_t = best(run_decode_frames, chunks, args.runs)
            floor_t = best(floor_frames, chunks, args.runs)
            boto = _ms(best(run_botocore, chunks, args.runs)) if has_botocore else "n/a"
        elif kind == "lines":
            decode_t = best(run_decode_lines, chunks, args.runs)
            floor_t = best(floor_lines, chunks, args.runs)
            boto = ""
        else:
            decode_t = floor_t = float("nan")
            boto = ""
        ratio = f"{events_t / floor_t:.2f}x" if floor_t == floor_t else ""
        decode = _ms(decode_t) if decode_t == decode_t else ""
        floor = _ms(floor_t) if floor_t == floor_t else ""
        print(
            f"| {title} | {len(data):,} | {_ms(fold_t)} | {_ms(events_t)} | {decode} "
            f"| {floor} | {boto} | {ratio} |"
        )
    print("\nLinear in the bytes: the same frames stream at doubling sizes\n")
    print("| text deltas | bytes | events | per MB |")
    print("| ---: | ---: | ---: | ---: |")
    for factor in (1, 2, 4):
        data = frames(converse_members(n * factor))
        seconds = best(run_events, pieces(data), args.runs)
        print(
            f"| {n * factor:,} | {len(data):,} | {_ms(seconds)} "
            f"| {_ms(seconds / (len(data) / 1e6))} |"
        )
    return 0


def wrapped_lines(lines: list[bytes]) -> bytes:
    return b"".join(b"data: " + line + b"\n\n" for line in lines)


if __name__ == "__main__":
    sys.exit(main())
