"""Benchmark folding what the official SDKs give: their objects and plain dicts
against the raw bytes, and against the SDKs' own accumulators; and what those
accumulators do with the recorded corpus.

Run by hand (a report, never a timed assertion)::

    .venv/bin/python bench/bench_sdk.py            # a few minutes
    .venv/bin/python bench/bench_sdk.py --quick    # streams 10x smaller
    .venv/bin/python bench/bench_sdk.py --helpers  # the corpus through the SDKs' helpers

The streams are ``streams.py``'s Chat Completions streams, and the same
answers re-encoded (``streamfold.encode``) as OpenAI Responses, Anthropic and
Gemini streams. For each, side by side in one run:

- ``bytes``: ``StreamParser(events=False)`` fed the body in 4 KiB reads,
  closed, ``final()``: the plain fold.
- ``dicts``: the same parser fed each event's decoded JSON (decoded before
  the clock starts): a framework's or a log's events.
- ``objects``: fed the SDK's model objects (built before the clock starts):
  what ``fold(stream)`` does when only objects are left (google-genai).
- ``SDK decode``: what the SDK pays to give those objects: ``json.loads`` of
  each event's data and its model built as its ``Stream`` builds it
  (openai's and anthropic's ``construct_type``, google-genai's converter and
  validation). Folding objects is bounded by this: the objects exist only
  because the SDK built them.
- ``SDK accumulator``: the SDK's own fold of its objects to a final message
  (openai ``ChatCompletionStreamState`` and ``ResponseStreamState``,
  anthropic ``accumulate_event``; google-genai has none). Stopped after
  ``--budget`` seconds.
- ``encode``: msgspec's encoding of every dict: what the one path (dicts
  written back to JSON and decoded by the dialect) costs over the bytes; and
  ``decode``: msgspec's decoding of every event's JSON, the most a second
  path taking decoded dicts into the dialects could save.

Times are the best of N runs (at least 3, about ``--target`` seconds a cell).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import platform
import signal
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams import chat_streams

from streamfold import StreamParser, encode
from streamfold.framing import Framing, FramingSniff, JSONArrayDecoder
from streamfold.sse import ServerSentEvent, SSEDecoder

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


# -- the SDKs: building their objects, and their accumulators --------------------------------


def _openai_chat() -> tuple[Callable[[Any], Any], Callable[[list[Any]], Any]]:
    from openai._models import construct_type
    from openai.lib.streaming.chat import ChatCompletionStreamState
    from openai.types.chat import ChatCompletionChunk

    def build(value: Any) -> Any:
        return construct_type(type_=ChatCompletionChunk, value=value)

    def accumulate(objects: list[Any]) -> Any:
        # What ChatCompletionStream does: skip chunks whose `object` is not
        # "chat.completion.chunk", hand the others to the state.
        state = ChatCompletionStreamState()
        for chunk in objects:
            if chunk.object == "chat.completion.chunk":
                state.handle_chunk(chunk)
        return state.get_final_completion()

    return build, accumulate


def _openai_responses() -> tuple[Callable[[Any], Any], Callable[[list[Any]], Any]]:
    from openai._models import construct_type
    from openai._types import omit
    from openai.lib.streaming.responses._responses import ResponseStreamState
    from openai.types.responses import ResponseStreamEvent

    def build(value: Any) -> Any:
        return construct_type(type_=ResponseStreamEvent, value=value)

    def accumulate(objects: list[Any]) -> Any:
        state: Any = ResponseStreamState(input_tools=omit, text_format=omit)
        for event in objects:
            state.handle_event(event)
        return state._completed_response  # what get_final_response() returns

    return build, accumulate


def _anthropic() -> tuple[Callable[[Any], Any], Callable[[list[Any]], Any]]:
    from anthropic._models import construct_type
    from anthropic.lib.streaming._messages import accumulate_event
    from anthropic.types import RawMessageStreamEvent

    def build(value: Any) -> Any:
        return construct_type(type_=RawMessageStreamEvent, value=value)

    def accumulate(objects: list[Any]) -> Any:
        # What MessageStream does: events before message_start pass by.
        snapshot: Any = None
        buffers: dict[int, bytes] = {}
        for event in objects:
            if snapshot is None and event.type != "message_start":
                continue
            snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=buffers)
        return snapshot

    return build, accumulate


def _gemini() -> tuple[Callable[[Any], Any], None]:
    from google.genai import types
    from google.genai.models import _GenerateContentResponse_from_mldev

    def build(value: Any) -> Any:
        return types.GenerateContentResponse._from_response(
            response=_GenerateContentResponse_from_mldev(value), kwargs={}
        )

    return build, None


SDKS: dict[str, Callable[[], tuple[Callable[[Any], Any], Callable[[list[Any]], Any] | None]]] = {
    "openai-chat": _openai_chat,
    "openai-responses": _openai_responses,
    "anthropic": _anthropic,
    "gemini": _gemini,
}


# -- streams -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stream:
    dialect: str
    name: str
    body: bytes
    raws: list[bytes]  # each event's JSON, [DONE] left out


def _events(body: bytes) -> list[ServerSentEvent]:
    sniff = FramingSniff(1 << 30)
    framing = sniff.feed(body) or sniff.close()
    decoder: Any = (JSONArrayDecoder if framing is Framing.JSON_ARRAY else SSEDecoder)(1 << 30)
    return decoder.feed(sniff.head) + decoder.close()


def streams(scale: float) -> Iterator[Stream]:
    for chat in chat_streams(scale):
        if chat.name == "tool-args-1m" and scale >= 1:
            continue  # tool-args-100k shows the same at a tenth of the time
        yield _stream("openai-chat", chat.name, chat.body)
        parser = StreamParser()
        events = parser.feed(chat.body) + parser.close()
        for dialect in ("openai-responses", "anthropic", "gemini"):
            encoder = encode.get(dialect)()
            body = encoder.encode_all(events) + encoder.close()
            yield _stream(dialect, chat.name, body)


def _stream(dialect: str, name: str, body: bytes) -> Stream:
    raws = [e.raw for e in _events(body) if e.raw != b"[DONE]"]
    return Stream(dialect, name, body, raws)


# -- timing ------------------------------------------------------------------------------------


class _Overran(Exception):
    pass


def _stop(signum: int, frame: Any) -> None:
    raise _Overran


def best(run: Callable[[], Any], target: float, budget: float | None = None) -> float | None:
    """The best time of at least 3 runs (about ``target`` seconds), or ``None``
    when the first run outlived ``budget`` (stopped then: a quadratic
    accumulator on a long stream would run for hours)."""
    gc.collect()
    start = time.perf_counter()
    if budget is None:
        run()
    else:
        previous = signal.signal(signal.SIGALRM, _stop)
        signal.setitimer(signal.ITIMER_REAL, budget)
        try:
            run()
        except _Overran:
            return None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    first = time.perf_counter() - start
    times = [first]
    repeats = max(3, int(target / first) if first else 3)
    for _ in range(min(repeats, 50) - 1):
        gc.collect()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def _fold_bytes(body: bytes) -> Any:
    parser = StreamParser(events=False)
    for i in range(0, len(body), 4096):
        parser.feed(body[i : i + 4096])
    parser.close()
    return parser.final()


def _fold_items(items: list[Any]) -> Any:
    parser = StreamParser(events=False)
    for item in items:
        parser.feed(item)
    parser.close()
    return parser.final()


def _ms(seconds: float | None, budget: float) -> str:
    if seconds is None:
        return f"> {budget:g} s"
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "n/a"


def measure(args: argparse.Namespace) -> None:
    print(f"Environment: {_environment()}.")
    print()
    print(
        "| API | stream | events | bytes | dicts | dicts / bytes | objects | SDK decode "
        "| objects / SDK decode | SDK accumulator | accumulator / objects | encode | decode |"
    )
    print("| --- | --- | ---: |" + " ---: |" * 10)
    for stream in streams(0.1 if args.quick else 1.0):
        print(f"... {stream.dialect} {stream.name}", file=sys.stderr)
        print(_row(stream, args.target, args.budget), flush=True)


def _row(stream: Stream, target: float, budget: float) -> str:
    build, accumulate = SDKS[stream.dialect]()
    dicts = [_decode(raw) for raw in stream.raws]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        objects = [build(value) for value in dicts]
    expected = _fold_bytes(stream.body)
    for items in (dicts, objects):
        assert _fold_items(items).unified == expected.unified, stream

    def sdk_decode() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for raw in stream.raws:
                build(json.loads(raw))

    cells = {
        "bytes": best(lambda: _fold_bytes(stream.body), target),
        "dicts": best(lambda: _fold_items(dicts), target),
        "objects": best(lambda: _fold_items(objects), target),
        "decode_sdk": best(sdk_decode, target),
        "encode": best(lambda: [_encode(value) for value in dicts], target),
        "decode": best(lambda: [_decode(raw) for raw in stream.raws], target),
    }
    if accumulate is None:
        sdk = "n/a (google-genai has none)"
    else:
        cells["sdk"] = best(lambda: accumulate(objects), target, budget)
        sdk = _ms(cells["sdk"], budget)
    return (
        f"| {stream.dialect} | {stream.name} | {len(stream.raws):,} "
        f"| {_ms(cells['bytes'], 0)} | {_ms(cells['dicts'], 0)} "
        f"| {_ratio(cells['dicts'], cells['bytes'])} | {_ms(cells['objects'], 0)} "
        f"| {_ms(cells['decode_sdk'], 0)} | {_ratio(cells['objects'], cells['decode_sdk'])} "
        f"| {sdk} | {_ratio(cells.get('sdk'), cells['objects'])} "
        f"| {_ms(cells['encode'], 0)} | {_ms(cells['decode'], 0)} |"
    )


# -- the SDKs' helpers on the recorded corpus -----------------------------------------------

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def _text_of(dialect: str, final: Any) -> str:
    if dialect == "openai-chat":
        return final.choices[0].message.content or "" if final.choices else ""
    if dialect == "openai-responses":
        return "".join(
            part.text
            for item in (final.output if final is not None else [])
            if item.type == "message"
            for part in item.content
            if part.type == "output_text"
        )
    return "".join(block.text for block in final.content if block.type == "text") if final else ""


def helpers() -> None:
    """Every corpus stream of the three APIs with a helper: the SDK's own
    objects folded by the SDK's accumulator, against streamfold's fold of the
    same bytes (the answer text)."""
    if not CORPUS.is_dir():
        print(f"(the corpus is absent: {CORPUS})")
        return
    apis = {"chat": "openai-chat", "responses": "openai-responses", "anthropic": "anthropic"}
    outcomes: dict[str, Counter[str]] = {dialect: Counter() for dialect in apis.values()}
    where: dict[tuple[str, str], list[str]] = {}
    for path in sorted(CORPUS.glob("*.sse")):
        api = path.name.split("__")[1]
        dialect = apis.get(api)
        if dialect is None:
            continue
        build, accumulate = SDKS[dialect]()
        assert accumulate is not None
        body = path.read_bytes()
        parser = StreamParser(dialect, strict=False, events=False)
        parser.feed(body)
        parser.close()
        ours = parser.snapshot.unified.text
        values = []
        for event in _events(body):
            with contextlib.suppress(msgspec.DecodeError):
                value = _decode(event.raw)
                if type(value) is dict:
                    values.append(value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            objects = [build(value) for value in values]
            try:
                text = _text_of(dialect, accumulate(objects))
            except Exception as exc:
                outcome = f"raises {type(exc).__name__}"
            else:
                outcome = "same text" if text == ours else "text differs"
        outcomes[dialect][outcome] += 1
        if outcome != "same text":
            where.setdefault((dialect, outcome), []).append(path.stem.split("__")[0])
    print("| helper | streams | same answer text as streamfold | text differs | raises |")
    print("| --- | ---: | ---: | ---: | --- |")
    for dialect, counts in outcomes.items():
        raised = ", ".join(
            f"{n} {k.split()[1]}" for k, n in counts.items() if k.startswith("raises")
        )
        print(
            f"| {dialect} | {sum(counts.values())} | {counts['same text']} "
            f"| {counts['text differs']} | {raised or '0'} |"
        )
    print()
    for (dialect, outcome), providers in sorted(where.items()):
        print(f"- {dialect}, {outcome}: {', '.join(sorted(Counter(providers)))}")


def _environment() -> str:
    versions = []
    for package in ("streamfold", "msgspec", "openai", "anthropic", "google-genai", "pydantic"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{package} {metadata.version(package)}")
    return f"Python {platform.python_version()}; " + ", ".join(versions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="streams 10x smaller")
    parser.add_argument("--target", type=float, default=0.5, help="seconds per cell (0.5)")
    parser.add_argument(
        "--budget", type=float, default=30.0, help="seconds for an accumulator's first run (30)"
    )
    parser.add_argument(
        "--helpers", action="store_true", help="only the corpus through the helpers"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.target, args.budget = 0.05, 5.0
    if args.helpers:
        helpers()
    else:
        measure(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
