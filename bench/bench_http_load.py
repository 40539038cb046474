"""Load: many concurrent streams from the replay server, folded in one asyncio process.

Run by hand (loopback only, bounded in count and time, about three minutes)::

    .venv/bin/python bench/bench_http_load.py [--streams 1000] [--events 100] [--gap 0.1]
        [--library httpx2|httpx]

``--library`` picks the HTTP client (by default the one ``streamfold.client``
uses: httpx2 when installed).

The replay server runs in a child process (``streamfold serve``), so the CPU
time measured here is the client's alone. Each mode streams the same synthetic
Chat Completions recording ``--streams`` times at once, first as fast as the
server sends it (one write per event), then paced (one event per stream every
``--gap`` seconds, the way a model streams tokens):

- ``bytes only``: ``response.aiter_bytes()`` and nothing else: the floor;
- ``streamfold events``: ``AsyncEventStream``, every event, then ``final()``
  (OpenTelemetry not imported: the default of an application without it);
- ``streamfold + deadlines``: the same with first-event, idle and total deadlines;
- ``otel, SDK provider``: with the SDK's tracer provider (a batch processor into
  an in-memory exporter) and meter provider (an in-memory reader): one span and
  four metric records per stream (``--no-otel`` leaves it out).

OpenTelemetry with no provider is measured in-process: streamfold's own cost
per stream before the application imports the OpenTelemetry API (what the
modes above run first), and after it has, with no provider configured (the
global proxies; the socket runs all come after that import).

Every stream must end complete, with the expected number of events and the
same final text as the recording folded without HTTP; anything else counts as
an error. streamfold's share of the client CPU is its own cost, measured
in-process on the very reads one stream received over the socket (the same
chunks replayed from memory, folded minus iterated bare), times the streams,
over the whole client CPU of the run: the difference between two runs over
sockets is shown too, but on a small machine it is mostly noise from the
server sharing the CPUs. Memory per open stream is taken with tracemalloc while
all the streams are held open halfway.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import streamfold
from streamfold.adapters.client import http_library
from streamfold.adapters.httpx import AsyncEventStream, Timeouts

#: The HTTP library under test (``--library``), set by ``main``.
http: Any = None

TIME_LIMIT = 300.0  # seconds for the whole run, at most
OTEL = True  # run the OpenTelemetry modes (--no-otel), set by __main__


def synthetic_recording(events: int) -> bytes:
    """A Chat Completions stream of ``events`` text chunks, usage and [DONE]."""
    words = [
        "streamfold",
        "folds",
        "streamed",
        "answers",
        "into",
        "one",
        "final",
        "response,",
        "byte",
        "by",
        "byte.",
    ]
    head = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": "bench-model",
        "system_fingerprint": "fp_bench",
    }

    def chunk(
        delta: dict[str, object], finish: str | None = None, usage: dict[str, int] | None = None
    ) -> bytes:
        body = dict(
            head,
            choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            usage=usage,
        )
        return b"data: " + json.dumps(body, ensure_ascii=False).encode() + b"\n\n"

    parts = [chunk({"role": "assistant", "content": ""})]
    parts += [chunk({"content": " " + words[i % len(words)]}) for i in range(events - 2)]
    parts.append(
        chunk(
            {},
            "stop",
            {"prompt_tokens": 12, "completion_tokens": events - 2, "total_tokens": events + 10},
        )
    )
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


def start_server(folder: Path) -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable,
        "-c",
        "import sys; from streamfold.cli import main; sys.exit(main())",
        "serve",
        "--port",
        "0",
        "--quiet",
        "--no-samples",
        str(folder),
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        process.kill()
        raise SystemExit(f"the replay server did not start: {url!r}")
    return process, url


class Check:
    def __init__(self, expected: streamfold.Result, events: int) -> None:
        self.text = expected.text
        self.events = events
        self.errors: list[str] = []
        self.complete = 0

    def stream(self, text: str, events: int, complete: bool) -> None:
        if text != self.text or events != self.events or not complete:
            self.errors.append(
                f"events {events}/{self.events}, complete {complete}, "
                f"text {len(text)}/{len(self.text)} chars"
            )
        else:
            self.complete += 1


async def run_bytes(
    client: Any,
    url: str,
    body: dict[str, str],
    check: Check,
    size: int,
    gate: Gate | None,
) -> None:
    received = 0
    async with client.stream("POST", url, json=body) as response:
        async for chunk in response.aiter_bytes():
            received += len(chunk)
            if gate is not None:
                await gate.reached(received >= size // 2)
    if received != size:
        check.errors.append(f"received {received} of {size} bytes")
    else:
        check.complete += 1


async def run_streamfold(
    client: Any,
    url: str,
    body: dict[str, str],
    check: Check,
    size: int,
    gate: Gate | None,
    timeouts: Timeouts | None = None,
    telemetry: Any = None,
) -> None:
    count = 0
    async with client.stream("POST", url, json=body) as response:
        stream = AsyncEventStream(response, timeouts=timeouts, telemetry=telemetry)
        async for _ in stream:
            count += 1
            if gate is not None:
                await gate.reached(stream.metadata.bytes_received >= size // 2)
        result = await stream.final()
    check.stream(result.text, count, result.complete)


class Gate:
    """Holds every stream halfway until all have got there, then measures memory."""

    def __init__(self, streams: int) -> None:
        self.waiting = streams
        self.open = asyncio.Event()
        self.memory: int | None = None
        self.baseline = tracemalloc.get_traced_memory()[0]

    async def reached(self, halfway: bool) -> None:
        if not halfway or self.open.is_set():
            return
        self.waiting -= 1
        if self.waiting == 0:
            self.memory = tracemalloc.get_traced_memory()[0] - self.baseline
            self.open.set()
        await self.open.wait()


Runner = Callable[..., Awaitable[None]]


async def measure(
    runner: Runner,
    url: str,
    streams: int,
    check: Check,
    size: int,
    memory: bool = False,
    pace: str = "fast",
    **options: object,
) -> tuple[float, float, int | None]:
    limits = http.Limits(max_connections=None, max_keepalive_connections=None)
    headers = {"x-streamfold-pace": pace}
    async with http.AsyncClient(
        limits=limits, timeout=http.Timeout(120.0), headers=headers
    ) as client:
        body = {"model": "bench", "stream": "true"}
        gate = Gate(streams) if memory else None
        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.wait_for(
            asyncio.gather(
                *(runner(client, url, body, check, size, gate, **options) for _ in range(streams))
            ),
            TIME_LIMIT / 4,
        )
        return time.perf_counter() - wall, time.process_time() - cpu, gate.memory if gate else None


class SDK:
    """The OpenTelemetry SDK configured as an application would (a batch span
    processor, a metric reader), its telemetry handed to each stream."""

    def __init__(self) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )

        from streamfold.adapters.otel import Telemetry

        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(
            BatchSpanProcessor(self.exporter, max_queue_size=65536)
        )
        self.reader = InMemoryMetricReader()
        self.telemetry = Telemetry(
            tracer_provider=self.tracer_provider,
            meter_provider=MeterProvider(metric_readers=[self.reader]),
        )

    def recorded(self) -> tuple[int, int]:
        """Spans exported, and duration points recorded, so far."""
        self.tracer_provider.force_flush()
        spans = len(self.exporter.get_finished_spans())
        points = 0
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == "gen_ai.client.operation.duration":
                        points += sum(p.count for p in metric.data.data_points)
        return spans, points


def otel_available() -> bool:
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        return False
    return True


async def main(streams: int, events: int, rounds: int, gap: float, library: ModuleType) -> int:
    global http
    http = library
    data = synthetic_recording(events)
    expected = streamfold.fold(data)
    typed_events = len(list(streamfold.iter_events(data)))
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "bench.sse").write_bytes(data)
        server, base = start_server(Path(folder))
        try:
            return await report(
                base + "/v1/chat/completions",
                streams,
                events,
                rounds,
                gap,
                data,
                expected,
                typed_events,
            )
        finally:
            server.terminate()
            server.wait(10)


def _replayed(chunks: list[bytes]) -> Any:
    """A response of the library under test whose body is ``chunks``, from memory."""

    class Replay(http.AsyncByteStream):  # type: ignore[misc,name-defined]
        async def __aiter__(self) -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk

    return http.Response(
        200,
        headers={"content-type": "text/event-stream"},
        stream=Replay(),
        request=http.Request("POST", "http://b/"),
    )


async def capture(url: str) -> list[bytes]:
    """The chunks of one stream as the library yields them over the socket."""
    body = {"model": "bench"}  # the recording, by name (the server matches requests)
    async with http.AsyncClient() as client, client.stream("POST", url, json=body) as response:
        if response.status_code != 200:
            raise SystemExit(f"the replay server answered {response.status_code}")
        return [chunk async for chunk in response.aiter_bytes()]


async def direct_cost(
    chunks: list[bytes], timeouts: Timeouts | None, repeat: int, telemetry: Any = None
) -> float:
    """streamfold's own CPU seconds per stream: the same chunks folded from memory,
    minus iterating them bare (no sockets, so no noise from the server)."""

    def response() -> Any:
        return _replayed(chunks)

    best_bare = best_fold = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(repeat):
            async for _chunk in response().aiter_bytes():
                pass
        best_bare = min(best_bare, time.process_time() - started)
        started = time.process_time()
        for _ in range(repeat):
            async for _event in AsyncEventStream(
                response(), timeouts=timeouts, telemetry=telemetry
            ):
                pass
        best_fold = min(best_fold, time.process_time() - started)
    return (best_fold - best_bare) / repeat


async def telemetry_costs(
    chunks: list[bytes], sdk: SDK, rounds: int = 9, repeat: int = 300
) -> dict[str, float]:
    """CPU seconds per stream of the same chunks folded from memory, with
    telemetry off, with the API imported and no provider, and with the SDK:
    the three alternated round by round, each one's best kept (the machine's
    noise is larger than the differences)."""
    from streamfold.adapters.otel import Telemetry

    conditions = {
        "telemetry off": Telemetry(enabled=False),
        "API imported, no provider": None,
        "SDK provider": sdk.telemetry,
    }
    best = dict.fromkeys(conditions, float("inf"))
    for _ in range(rounds):
        for name, telemetry in conditions.items():
            started = time.process_time()
            for _ in range(repeat):
                async for _event in AsyncEventStream(_replayed(chunks), telemetry=telemetry):
                    pass
            best[name] = min(best[name], (time.process_time() - started) / repeat)
    return best


async def direct_memory(chunks: list[bytes], streams: int) -> dict[str, float]:
    """Bytes per open stream, halfway, with ``streams`` held open at once, the
    same reads replayed from memory (no socket buffers to blur the count)."""
    half = sum(map(len, chunks)) // 2
    used: dict[str, float] = {}
    for name in ("bytes only", "streamfold events"):
        held: list[Any] = []
        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
        for _ in range(streams):
            response = _replayed(chunks)
            if name == "bytes only":
                reads, received = response.aiter_bytes(), 0
                while received < half:
                    received += len(await reads.__anext__())
                held.append(reads)
            else:
                stream = AsyncEventStream(response)
                events = stream.__aiter__()
                while stream.metadata.bytes_received < half:
                    await events.__anext__()
                held.append((stream, events))
        used[name] = (tracemalloc.get_traced_memory()[0] - baseline) / streams
        tracemalloc.stop()
        for item in held:
            await (item[1] if isinstance(item, tuple) else item).aclose()
    return used


async def report(
    url: str,
    streams: int,
    events: int,
    rounds: int,
    gap: float,
    data: bytes,
    expected: streamfold.Result,
    typed_events: int,
) -> int:
    deadlines = Timeouts(first_event=60, idle=60, total=120)
    modes: list[tuple[str, Runner, dict[str, Any]]] = [
        ("bytes only", run_bytes, {}),
        ("streamfold events", run_streamfold, {}),
        ("streamfold + deadlines", run_streamfold, {"timeouts": deadlines}),
    ]
    paced = f"gap={gap}"
    warm = Check(expected, typed_events)
    await measure(run_bytes, url, min(streams, 100), warm, len(data))
    chunks = await capture(url)
    own = {
        "streamfold events": await direct_cost(chunks, None, 200),
        "streamfold + deadlines": await direct_cost(chunks, deadlines, 200),
    }
    sdk: SDK | None = None
    if OTEL and otel_available():
        import opentelemetry.trace  # what an application does before configuring  # noqa: F401

        sdk = SDK()
        own["otel, SDK provider"] = await direct_cost(chunks, None, 200, sdk.telemetry)
        modes.append(("otel, SDK provider", run_streamfold, {"telemetry": sdk.telemetry}))
    print(
        f"streamfold HTTP load: {streams} concurrent streams x {events} events "
        f"({len(data) / 1024:.1f} KiB each, {len(chunks)} reads each), loopback, one asyncio "
        f"process, the replay server in another; Python {platform.python_version()}, "
        f"{http.__name__} {http.__version__}, {os.cpu_count()} CPUs\n"
    )
    failures = 0
    for pace, title in (
        ("fast", "as fast as the server sends (one write per event)"),
        (paced, f"paced: one event per stream every {gap:g} s"),
    ):
        print(f"{title}; best of {rounds}")
        print(
            f"  {'mode':<24} {'wall s':>7} {'client CPU s':>13} {'streams/s':>10} "
            f"{'events/s':>10} {'MB/s':>7} {'errors':>7} {'streamfold share':>17} "
            f"{'CPU vs floor':>13}"
        )
        floor = 0.0
        for name, runner, options in modes:
            best: tuple[float, float] | None = None
            errors = 0
            for _ in range(rounds):
                check = Check(expected, typed_events)
                wall, cpu, _ = await measure(
                    runner, url, streams, check, len(data), pace=pace, **options
                )
                errors += streams - check.complete
                if check.errors:
                    print(f"  {name}: {check.errors[0]}")
                if best is None or cpu < best[1]:
                    best = (wall, cpu)
            assert best is not None
            wall, cpu = best
            failures += errors
            share = f"{own[name] * streams / cpu:.1%}" if name in own else "-"
            if name not in own:
                floor = cpu
            versus = f"{(cpu - floor) / cpu:+.1%}" if name in own else "-"
            print(
                f"  {name:<24} {wall:>7.2f} {cpu:>13.2f} {streams / wall:>10.0f} "
                f"{streams * events / wall:>10.0f} {streams * len(data) / wall / 1e6:>7.1f} "
                f"{errors:>7} {share:>17} {versus:>13}"
            )
        print()
    for name, cost in own.items():
        print(
            f"{name}: streamfold's own CPU, measured in-process on the same reads: "
            f"{cost / events * 1e6:.1f} us per event, {cost * 1e6:.0f} us per stream"
        )
    if sdk is not None:
        costs = await telemetry_costs(chunks, sdk)
        off = costs["telemetry off"]
        idle = costs["API imported, no provider"] - off
        sdk_cost = costs["SDK provider"] - off
        print(
            "OpenTelemetry, CPU per stream folded from memory (alternated, best of 9 x 300): "
            + ", ".join(f"{name} {cost * 1e6:.0f} us" for name, cost in costs.items())
            + f"; no provider adds {idle * 1e6:+.1f} us ({idle / off:+.2%}), "
            f"the SDK {sdk_cost * 1e6:+.0f} us ({sdk_cost / off:+.1%})"
        )
        spans, points = sdk.recorded()
        print(f"recorded by the SDK: {spans} spans, {points} duration points")
    print(
        "(streamfold share = that cost times the streams, over the whole client CPU of the "
        "run; target < 10%.\n CPU vs floor = the run's client CPU against the bytes-only "
        "run's: mostly noise here, the server shares the CPUs)\n"
    )
    tracemalloc.start()
    memory: dict[str, float] = {}
    for name, runner in (("bytes only", run_bytes), ("streamfold events", run_streamfold)):
        check = Check(expected, typed_events)
        _, _, used = await measure(runner, url, streams, check, len(data), memory=True, pace=paced)
        failures += streams - check.complete
        memory[name] = (used or 0) / streams / 1024
    tracemalloc.stop()
    direct = await direct_memory(chunks, streams)
    extra = (direct["streamfold events"] - direct["bytes only"]) / 1024
    print(
        f"memory per open stream, halfway ({len(data) // 2 / 1024:.1f} KiB received), "
        f"{streams} open at once (tracemalloc):\n"
        f"  over the sockets, paced: bytes only {memory['bytes only']:.1f} KiB, "
        f"streamfold events {memory['streamfold events']:.1f} KiB (socket buffers included)\n"
        f"  the same reads from memory: bytes only {direct['bytes only'] / 1024:.1f} KiB, "
        f"streamfold events {direct['streamfold events'] / 1024:.1f} KiB: "
        f"streamfold adds {extra:.1f} KiB per stream"
    )
    print(f"\nerrors or lost events: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--gap", type=float, default=0.1, help="seconds between paced events")
    parser.add_argument("--library", choices=["httpx2", "httpx"], help="the HTTP client")
    parser.add_argument("--no-otel", action="store_true", help="leave the OpenTelemetry modes out")
    args = parser.parse_args()
    OTEL = not args.no_otel
    if not 1 <= args.streams <= 5000 or not 3 <= args.events <= 10000 or args.gap > 1:
        parser.error("streams in 1..5000, events in 3..10000, gap at most 1 s")
    started = time.monotonic()
    library = importlib.import_module(args.library) if args.library else http_library()
    status = asyncio.run(main(args.streams, args.events, args.rounds, args.gap, library))
    print(f"(run took {time.monotonic() - started:.0f} s)")
    sys.exit(status)
