"""The recording proxy's cost: latency to the first byte and CPU per event,
against a direct connection to the upstream.

Run by hand (loopback only, bounded in count and time, about a minute)::

    .venv/bin/python bench/bench_proxy.py [--requests 200] [--events 500]

Two replay servers run in child processes (``streamfold serve``): the
"upstream" serves a synthetic Chat Completions recording (``--events`` text
chunks, fast pace), and the proxy (``--record DIR --record-mode all
--upstream URL``) forwards every request to it and records the answer, the
files written included. This process sends the same streaming request
``--requests`` times, one after the other, to the upstream directly, then
through the proxy, and reads each body to its end with the HTTP library the
client uses (httpx2, else httpx). Every body must be the recording's bytes.

Reported: time to the first body byte (median and 90th percentile) and to
the last, direct and proxied, and the difference; the CPU time of each server
process per event streamed (from ``/proc``; Linux only), so the proxy's own
cost per event stands beside the upstream's cost of serving it.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_http_load import synthetic_recording

from streamfold.adapters.client import http_library

TIME_LIMIT = 240.0  # seconds for the whole run, at most


def _serve(*argv: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "streamfold", "serve", "--port", "0", "--quiet", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http://"):
        raise SystemExit(f"a server did not start: {url!r}")
    return process, url


def _cpu(pid: int) -> float:
    """User plus system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run(
    client: Any, url: str, requests: int, expected: bytes, deadline: float
) -> tuple[list[float], list[float]]:
    first, last = [], []
    body = {"model": "bench", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    for _ in range(requests):
        if time.monotonic() > deadline:
            raise SystemExit("the run took too long: stopped")
        started = time.perf_counter()
        with client.stream("POST", url + "/v1/chat/completions", json=body) as response:
            chunks = response.iter_bytes()
            head = next(chunks)
            first.append(time.perf_counter() - started)
            data = head + b"".join(chunks)
        last.append(time.perf_counter() - started)
        if response.status_code != 200 or data != expected:
            raise SystemExit(f"a wrong answer from {url}: HTTP {response.status_code}")
    return first, last


def _ms(values: list[float], q: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="20 requests of 100 events")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.events = 20, 100
    deadline = time.monotonic() + TIME_LIMIT
    data = synthetic_recording(args.events)
    events = data.count(b"\n\ndata:") + 1
    http = http_library()
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "upstream"
        source.mkdir()
        (source / "bench.sse").write_bytes(data)
        upstream, upstream_url = _serve("--no-samples", str(source))
        proxy, proxy_url = _serve(
            "--no-samples",
            "--record",
            str(Path(folder) / "recorded"),
            "--record-mode",
            "all",
            "--upstream",
            upstream_url,
        )
        try:
            # TCP_NODELAY, as asyncio sets it on the servers' side: else Nagle
            # holds the request body for the server's delayed ACK (40 ms).
            nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
            transport = http.HTTPTransport(socket_options=nodelay)
            with http.Client(timeout=30, transport=transport) as client:
                _run(client, upstream_url, 5, data, deadline)  # warm up both paths
                _run(client, proxy_url, 5, data, deadline)
                cpu_upstream = _cpu(upstream.pid)
                direct_first, direct_last = _run(
                    client, upstream_url, args.requests, data, deadline
                )
                direct_cpu = _cpu(upstream.pid) - cpu_upstream
                cpu_upstream, cpu_proxy = _cpu(upstream.pid), _cpu(proxy.pid)
                proxied_first, proxied_last = _run(client, proxy_url, args.requests, data, deadline)
                proxied_upstream_cpu = _cpu(upstream.pid) - cpu_upstream
                proxy_cpu = _cpu(proxy.pid) - cpu_proxy
        finally:
            for process in (proxy, upstream):
                process.terminate()
                process.wait(10)
    sent = args.requests * events
    print(
        f"Python {platform.python_version()}, {http.__name__} {http.__version__}, "
        f"{os.cpu_count()} CPUs; {args.requests} sequential requests of {events} events "
        f"({len(data):,} bytes), fast pace, the proxy in record mode all\n"
    )
    print("| path | first byte, median | first byte, p90 | last byte, median |")
    print("| --- | ---: | ---: | ---: |")
    for name, first, last in (
        ("direct", direct_first, direct_last),
        ("through the proxy", proxied_first, proxied_last),
    ):
        print(f"| {name} | {_ms(first, 0.5)} | {_ms(first, 0.9)} | {_ms(last, 0.5)} |")
    added = statistics.median(proxied_first) - statistics.median(direct_first)
    print(f"\nAdded to the first byte (medians): {added * 1000:.2f} ms\n")
    print("| process | CPU per event |")
    print("| --- | ---: |")
    print(f"| upstream, serving directly | {direct_cpu / sent * 1e6:.1f} µs |")
    print(f"| upstream, serving the proxy | {proxied_upstream_cpu / sent * 1e6:.1f} µs |")
    print(f"| the proxy (forward, tee, record) | {proxy_cpu / sent * 1e6:.1f} µs |")


if __name__ == "__main__":
    main()
