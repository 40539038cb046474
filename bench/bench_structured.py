"""Typed partial values while a structured answer streams: streamfold against re-validating.

Two payloads, each at 10 KB, 100 KB and 1 MB, in a Chat Completions stream cut
into ~6-byte deltas: a structured answer (JSON mode text: a report of
sections with prose, scores, a literal status, tags and references) and a tool
call's arguments (rows of ids, names, scores, tags, booleans, nulls and nested
positions). The type is a pydantic model or a msgspec Struct. Side by side, in
one run, bytes in, a typed partial value after every delta:

- ``streamfold``: ``StreamParser()`` events; each text or argument delta fed
  to ``StructuredParser(Type)``, its ``partial`` read after every delta; the
  validated value from ``close()``.
- ``output_type=``: the integrated path: ``StreamParser(output_type=Type)``
  (``tool_types={"edit_file": Type}`` for the arguments), every event
  iterated (``output.updated`` among them), ``partial_output()`` (or
  ``partial_tool_output(0)``) read after every delta, the validated value
  from ``result.output`` (or the tool call's ``output``). The accumulator runs
  the one typed parser per part (no second JSON parse).
- ``re-validate``: what instructor and pydantic-ai do: the same SSE split and
  chunk decode as the floor, the delta appended to a buffer, and the whole
  buffer validated again on every delta (pydantic: pydantic-ai's
  ``TypeAdapter.validate_json(buffer, experimental_allow_partial="trailing-strings")``;
  msgspec: ``jiter.from_json(buffer, partial_mode="trailing-strings")`` then
  ``msgspec.convert``), failures of incomplete values skipped. Quadratic: the
  1 MB row is estimated from the 100 KB time (x100), not run.
- ``floor``: the floor of every benchmark here (``bench_dialects.floor_sse``,
  issue 13's definition): the SSE split, the msgspec decode of each chunk and
  its delta appended, the least a reader of the JSON text pays. ``decode
  only`` leaves out the delta (``bench_chat.run_floor``): the split and
  decode alone, a lower bar shown beside it.
- For reference, where the time goes: ``events`` is ``StreamParser()`` alone
  (every event iterated), ``events + JSON`` with ``parse_content`` and
  ``parse_arguments`` (the untyped incremental JSON updates of the deltas):
  the typed layer costs ``streamfold`` minus ``events + JSON``.

Targets: linear growth from 10 KB to 1 MB; at 100 KB at least 50x faster than
re-validating; with a msgspec type, within 4x of the floor.

Run: ``.venv/bin/python bench/bench_structured.py [--quick] [--cpu]`` (``--quick``: 10 KB
and 100 KB, fewer repeats; ``--cpu``: CPU time of the process, for a loaded machine).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import itertools
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec
import pydantic

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_chat import run_floor
from bench_dialects import PICKS, floor_sse
from streams import ChatStream, content_stream, nested_arguments, tool_call_stream

from streamfold import StreamParser, TextDelta, ToolCallArgumentsDelta
from streamfold.structured import StructuredParser

_decode = msgspec.json.Decoder().decode

# -- the types -----------------------------------------------------------------------------------


class Ref(msgspec.Struct):
    id: int
    url: str


class Section(msgspec.Struct):
    heading: str
    body: str
    score: float
    status: Literal["draft", "final"]
    tags: list[str]
    refs: list[Ref]


class Report(msgspec.Struct):
    title: str
    summary: str
    sections: list[Section]


class Position(msgspec.Struct):
    x: int
    y: int


class Row(msgspec.Struct):
    id: int
    name: str
    score: float
    tags: list[str]
    active: bool
    parent: int | None
    position: Position


class Rows(msgspec.Struct):
    rows: list[Row]
    count: int


class RefP(pydantic.BaseModel):
    id: int
    url: str


class SectionP(pydantic.BaseModel):
    heading: str
    body: str
    score: float
    status: Literal["draft", "final"]
    tags: list[str]
    refs: list[RefP]


class ReportP(pydantic.BaseModel):
    title: str
    summary: str
    sections: list[SectionP]


class PositionP(pydantic.BaseModel):
    x: int
    y: int


class RowP(pydantic.BaseModel):
    id: int
    name: str
    score: float
    tags: list[str]
    active: bool
    parent: int | None
    position: PositionP


class RowsP(pydantic.BaseModel):
    rows: list[RowP]
    count: int


# Words of the prose: accents, a dash, an emoji and CJK, as answers have them.
_WORDS = ("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "café")
_WORDS += ("naïve", "résumé", "—", "😀", "你好", "data")


def report_document(size: int) -> str:
    """A structured answer of about ``size`` bytes."""
    rng = random.Random(11)
    sections: list[dict[str, Any]] = []
    total = 0
    while total < size:
        section = {
            "heading": " ".join(rng.choice(_WORDS) for _ in range(4)),
            "body": " ".join(rng.choice(_WORDS) for _ in range(30)),
            "score": round(rng.random() * 10, 2),
            "status": rng.choice(["draft", "final"]),
            "tags": [rng.choice(_WORDS) for _ in range(3)],
            "refs": [
                {"id": rng.randint(1, 9999), "url": f"https://example.com/{k}"} for k in range(2)
            ],
        }
        sections.append(section)
        total += len(json.dumps(section, ensure_ascii=False).encode())
    return json.dumps(
        {"title": "Quarterly report", "summary": "Everything, in short.", "sections": sections},
        ensure_ascii=False,
    )


# -- the contenders ------------------------------------------------------------------------------


def deltas_of(event: Any) -> str | None:
    kind = type(event)
    if kind is TextDelta or kind is ToolCallArgumentsDelta:
        return str(event.delta)
    return None


def run_streamfold(pieces: list[bytes], output_type: Any) -> Any:
    parser = StreamParser()
    typed = StructuredParser(output_type)
    feed = typed.feed
    for piece in pieces:
        for event in parser.feed(piece):
            kind = type(event)
            if kind is TextDelta or kind is ToolCallArgumentsDelta:
                feed(event.delta)  # type: ignore[union-attr]
                typed.partial  # noqa: B018  (a UI reads the value after every delta)
    parser.close()
    return typed.close(complete=True)


def run_integrated(pieces: list[bytes], output_type: Any, payload: str) -> Any:
    """The typed output as the parser gives it: ``output_type=`` / ``tool_types=``."""
    tool = payload == "arguments"
    if tool:
        parser = StreamParser(tool_types={_TOOL: output_type})
        partial = functools.partial(parser.partial_tool_output, 0)
    else:
        parser = StreamParser(output_type=output_type)
        partial = parser.partial_output
    for piece in pieces:
        for event in parser.feed(piece):
            kind = type(event)
            if kind is TextDelta or kind is ToolCallArgumentsDelta:
                partial()  # a UI reads the value after every delta
    parser.close()
    result = parser.final()
    return result.unified.tool_calls[0].output if tool else result.output


_TOOL = "edit_file"  # the tool of streams.tool_call_stream


def run_events(pieces: list[bytes], parse: bool) -> int:
    """streamfold's events alone; with ``parse``, the untyped incremental JSON of the
    deltas too (``parse_content``, ``parse_arguments``): what the typed layer adds to."""
    parser = StreamParser(parse_arguments=parse, parse_content=parse)
    count = 0
    for piece in pieces:
        for _event in parser.feed(piece):
            count += 1
    parser.close()
    return count


def _chunk_deltas(chunk: Any) -> list[str]:
    out = []
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if content:
            out.append(content)
        for call in delta.get("tool_calls") or ():
            arguments = (call.get("function") or {}).get("arguments")
            if arguments:
                out.append(arguments)
    return out


def revalidate_runner(output_type: Any) -> Callable[[list[bytes]], Any]:
    """Re-parse and re-validate the whole buffer on every delta."""
    import jiter

    if isinstance(output_type, type) and issubclass(output_type, pydantic.BaseModel):
        adapter: Any = pydantic.TypeAdapter(output_type)

        def validate(buffer: str) -> Any:
            # pydantic-ai's output validation while streaming (_output.py, allow_partial).
            return adapter.validate_json(buffer, experimental_allow_partial="trailing-strings")

        errors: tuple[type[Exception], ...] = (pydantic.ValidationError,)
    else:

        def validate(buffer: str) -> Any:
            value = jiter.from_json(buffer.encode(), partial_mode="trailing-strings")
            return msgspec.convert(value, output_type)

        errors = (msgspec.ValidationError,)

    def run(pieces: list[bytes]) -> Any:
        buffer = ""
        value = None
        rest = b""
        for piece in pieces:
            lines = (rest + piece).split(b"\n")
            rest = lines.pop()
            for line in lines:
                if not line.startswith(b"data: ") or line == b"data: [DONE]":
                    continue
                for delta in _chunk_deltas(_decode(line[6:])):
                    buffer += delta
                    with contextlib.suppress(*errors):  # incomplete: nothing to show now
                        value = validate(buffer)
        return value

    return run


_clock = time.perf_counter  # time.process_time with --cpu
_LONG_RUN = 10.0  # a first run longer than this is not repeated (re-validating 100 KB)


def best(run: Callable[[list[bytes]], Any], pieces: list[bytes], seconds: float) -> float:
    """The best of at least 3 runs (more while within ``seconds``), ``gc.collect()`` before each."""
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - started < seconds and len(times) < 50):
        gc.collect()
        t = _clock()
        run(pieces)
        times.append(_clock() - t)
        if times[-1] > _LONG_RUN:
            break
    return min(times)


@dataclass
class Case:
    payload: str
    size: int
    stream: ChatStream
    document: str


def cases(quick: bool) -> list[Case]:
    sizes = [(10_000, "10 KB"), (100_000, "100 KB")] + ([] if quick else [(1_000_000, "1 MB")])
    out = []
    for size, label in sizes:
        report = report_document(size)
        out.append(Case("answer", size, content_stream(report, name=f"answer {label}"), report))
        rows = nested_arguments(size)
        stream = tool_call_stream(size, arguments=rows, name=f"tool arguments {label}")
        out.append(Case("arguments", size, stream, rows))
    return out


_TYPES = {
    "answer": {"pydantic": ReportP, "msgspec": Report},
    "arguments": {"pydantic": RowsP, "msgspec": Rows},
}


def round_robin(runs: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """The best time of each run over ``rounds`` rounds, the runs taking turns (so that a
    burst of load from elsewhere lands on all of them), ``gc.collect()`` before each."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            gc.collect()
            t = _clock()
            run()
            times[name].append(_clock() - t)
    return {name: min(values) for name, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="10 KB and 100 KB only, fewer repeats")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the fast contenders (7)")
    parser.add_argument(
        "--cpu", action="store_true", help="CPU time of this process, not wall time (loaded hosts)"
    )
    args = parser.parse_args(argv)
    if args.cpu:
        global _clock
        _clock = time.process_time
    rounds = 3 if args.quick else args.rounds
    print(
        "| payload | type | deltas | streamfold | output_type= | re-validate | decode only "
        "| floor | events | events + JSON | re-validate / output_type= | streamfold / floor "
        "| output_type= / decode only | output_type= / floor |"
    )
    print("| --- | --- | ---: |" + " ---: |" * 11)
    growth: dict[tuple[str, str], dict[int, float]] = {}
    at_100k: dict[tuple[str, str], float] = {}
    for case in cases(args.quick):
        pieces = case.stream.pieces()
        types = _TYPES[case.payload]
        expected = {
            "pydantic": types["pydantic"].model_validate_json(case.document),
            "msgspec": msgspec.json.decode(case.document, type=types["msgspec"]),
        }
        for type_name, output_type in types.items():
            assert run_streamfold(pieces, output_type) == expected[type_name], case.stream.name
            integrated = run_integrated(pieces, output_type, case.payload)
            assert integrated == expected[type_name], case.stream.name
        runs: dict[str, Callable[[], Any]] = {
            "decode only": lambda p=pieces: run_floor(p, _decode),
            "floor": lambda p=pieces: floor_sse(p, PICKS["openai-chat"]),
            "events": lambda p=pieces: run_events(p, parse=False),
            "events + JSON": lambda p=pieces: run_events(p, parse=True),
        }
        for type_name, output_type in types.items():
            runs[type_name] = lambda p=pieces, t=output_type: run_streamfold(p, t)
            runs[type_name + " integrated"] = lambda p=pieces, t=output_type, k=case.payload: (
                run_integrated(p, t, k)
            )
        best_of = round_robin(runs, rounds)
        for type_name, output_type in types.items():
            ours = best_of[type_name]
            integrated_time = best_of[type_name + " integrated"]
            key = (case.payload, type_name)
            growth.setdefault(key, {})[case.size] = ours
            growth.setdefault((case.payload, type_name + ", output_type="), {})[case.size] = (
                integrated_time
            )
            if case.size <= 100_000:
                revalidate = revalidate_runner(output_type)
                assert revalidate(pieces) == expected[type_name], case.stream.name
                theirs = best(revalidate, pieces, 0.3 if args.quick else 1.0)
                at_100k[key] = theirs
                cell = f"{theirs * 1000:,.0f} ms"
            else:
                theirs = at_100k[key] * 100  # quadratic: 10x the bytes, 100x the time
                cell = f"~{theirs:,.0f} s (estimated)"
            floor, decode_only = best_of["floor"], best_of["decode only"]
            print(
                f"| {case.stream.name} | {type_name} | {case.stream.chunks - 2:,} "
                f"| {ours * 1000:,.1f} ms | {integrated_time * 1000:,.1f} ms "
                f"| {cell} | {decode_only * 1000:,.1f} ms | {floor * 1000:,.1f} ms "
                f"| {best_of['events'] * 1000:,.1f} ms | {best_of['events + JSON'] * 1000:,.1f} ms "
                f"| {theirs / integrated_time:,.0f}x | {ours / floor:.2f}x "
                f"| {integrated_time / decode_only:.2f}x | {integrated_time / floor:.2f}x |"
            )
    print()
    for (payload, type_name), times in growth.items():
        sizes = sorted(times)
        steps = ", ".join(
            f"{a // 1000} KB -> {b // 1000} KB: x{times[b] / times[a]:.1f}"
            for a, b in itertools.pairwise(sizes)
        )
        print(f"- growth of `streamfold`, {payload}, {type_name}: {steps}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
