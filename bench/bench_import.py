"""Benchmark the cost of ``import streamfold`` against importing its JSON decoder alone.

Run by hand (a report, never a timed assertion)::

    .venv/bin/python bench/bench_import.py            # 15 runs per module
    .venv/bin/python bench/bench_import.py --quick    # 3 runs per module

Each run is a fresh interpreter (``sys.executable -c``) that times its own
import with ``time.perf_counter``, so interpreter start-up is left out; the
wall time of the whole process is reported beside it. Runs of the modules are
interleaved, and the median is kept. ``-X importtime`` then shows where the
time of ``import streamfold`` goes.

Bytecode: the runs use a private ``PYTHONPYCACHEPREFIX`` (warmed first) and
ignore ``PYTHONDONTWRITEBYTECODE``, so every module loads from compiled
bytecode as it does from an installed wheel; without that, a source checkout
recompiles streamfold on every import while site-packages keep their ``.pyc``.
``--as-is`` keeps the caller's environment instead.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata, util

_TIMED = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
_MODULES = ("msgspec", "streamfold", "openai")


@dataclass
class Timing:
    module: str
    imports: list[float]
    processes: list[float]

    @property
    def median_import(self) -> float:
        return statistics.median(self.imports)

    @property
    def median_process(self) -> float:
        return statistics.median(self.processes)


def environment(as_is: bool, cache: str) -> dict[str, str]:
    """The subprocesses' environment (see the module docstring)."""
    env = dict(os.environ)
    if not as_is:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = cache
    return env


def run(code: str, env: dict[str, str], cwd: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "-c", code],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )


def time_imports(modules: list[str], runs: int, env: dict[str, str], cwd: str) -> list[Timing]:
    timings = {m: Timing(m, [], []) for m in modules}
    for module in modules:  # warm the bytecode cache, untimed
        for _ in range(2):
            run(_TIMED.format(module=module), env, cwd)
    for _ in range(runs):
        for module in modules:
            start = time.perf_counter()
            done = run(_TIMED.format(module=module), env, cwd)
            timings[module].processes.append(time.perf_counter() - start)
            timings[module].imports.append(float(done.stdout.strip()))
    return [timings[m] for m in modules]


def importtime(module: str, runs: int, env: dict[str, str], cwd: str) -> dict[str, tuple[int, int]]:
    """``-X importtime`` of ``import module``: module -> (median self us, median cumulative us)."""
    samples: dict[str, list[tuple[int, int]]] = {}
    for _ in range(runs):
        done = run(f"import {module}", env, cwd, "-X", "importtime")
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or "[us]" in line:
                continue
            self_us, cumulative, name = line[len("import time:") :].split("|")
            samples.setdefault(name.strip(), []).append((int(self_us), int(cumulative)))
    return {
        name: (
            int(statistics.median(s for s, _ in values)),
            int(statistics.median(c for _, c in values)),
        )
        for name, values in samples.items()
    }


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="3 runs per module instead of 15")
    parser.add_argument("--runs", type=int, default=15, help="runs per module (15)")
    parser.add_argument("--as-is", action="store_true", help="keep the caller's environment")
    args = parser.parse_args(argv)
    runs = 3 if args.quick else args.runs
    modules = [m for m in _MODULES if util.find_spec(m) is not None]
    with tempfile.TemporaryDirectory(prefix="streamfold-bench-import-") as tmp:
        env = environment(args.as_is, os.path.join(tmp, "pycache"))
        # Run from an empty folder, so nothing in the caller's folder shadows a module.
        cwd = os.path.join(tmp, "cwd")
        os.mkdir(cwd)
        timings = time_imports(modules, runs, env, cwd)
        breakdown = importtime("streamfold", max(3, runs // 3), env, cwd)
        msgspec_alone = importtime("msgspec", max(3, runs // 3), env, cwd)

    by_module = {t.module: t for t in timings}
    decoder = by_module["msgspec"].median_import
    print(
        f"Python {sys.version.split()[0]}; median of {runs} fresh interpreters per module, "
        f"runs interleaved; bytecode {'as the caller has it' if args.as_is else 'cached'}."
    )
    print()
    print("| import | version | import time | x msgspec | whole process |")
    print("| --- | --- | ---: | ---: | ---: |")
    for timing in timings:
        print(
            f"| `import {timing.module}` | {_version(timing.module)} "
            f"| {_ms(timing.median_import)} | {timing.median_import / decoder:.2f}x "
            f"| {_ms(timing.median_process)} |"
        )
    ratio = by_module["streamfold"].median_import / decoder
    verdict = "within" if ratio <= 1.5 else "over"
    print()
    print(f"`import streamfold` / `import msgspec`: {ratio:.2f}x ({verdict} the 1.5x target).")
    print()
    own = {name: v for name, v in breakdown.items() if name not in msgspec_alone}
    print(
        f"`-X importtime` of `import streamfold` (median of {max(3, runs // 3)} runs): "
        f"{sum(s for s, _ in own.values()) / 1000:.1f} ms of self time in the "
        f"{len(own)} modules that `import msgspec` alone does not load. Top 10 by self time:"
    )
    print()
    print("| module | self | cumulative | loaded by msgspec too |")
    print("| --- | ---: | ---: | --- |")
    top = sorted(breakdown.items(), key=lambda item: item[1][0], reverse=True)[:10]
    for name, (self_us, cumulative) in top:
        shared = "yes" if name in msgspec_alone else "no"
        print(f"| {name} | {self_us / 1000:.2f} ms | {cumulative / 1000:.2f} ms | {shared} |")
    print()
    print("Modules only streamfold loads, by self time:")
    print()
    print("| module | self | cumulative |")
    print("| --- | ---: | ---: |")
    for name, (self_us, cumulative) in sorted(own.items(), key=lambda i: i[1][0], reverse=True)[
        :10
    ]:
        print(f"| {name} | {self_us / 1000:.2f} ms | {cumulative / 1000:.2f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
