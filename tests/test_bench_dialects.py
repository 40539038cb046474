"""bench/bench_dialects.py still runs: every dialect's row, every contender's
result checked against what the stream must fold to. Tiny streams only; no
timing is asserted (the benchmark is a report, see bench/README.md)."""

from __future__ import annotations

import importlib
import subprocess
import sys

from .corpus import ROOT

SCRIPT = ROOT / "bench" / "bench_dialects.py"


def test_the_dialect_benchmark_runs_on_tiny_streams() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--scale", "0.002", "--target", "0"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split(" | ") for line in done.stdout.splitlines() if line.startswith("| ")]
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        dialects = importlib.import_module("streams").DIALECTS
    finally:
        sys.path.remove(str(ROOT / "bench"))
    main = {row[0].removeprefix("| ") for row in rows if len(row) == 12}
    assert main >= set(dialects)
    assert "wrong" not in done.stdout, done.stdout
    assert "Snapshot after every event" in done.stdout
    assert "Peak memory" in done.stdout
