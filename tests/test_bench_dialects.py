"""bench/bench_dialects.py still runs: every dialect's row, every contender's
result checked against what the stream must fold to. Tiny streams only; no
timing is asserted (the benchmark is a report, see bench/README.md)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from typing import Any

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


def test_the_typed_path_takes_the_hot_events_of_every_dialect() -> None:
    # What the benchmark's ratios rest on: a dialect's hot events (text,
    # reasoning and argument deltas) fold on its typed path (Dialect.fast_run),
    # not one by one through handle. A run that turns every event down still
    # folds right (the dict path folds them the same), so only this count
    # sees it: as when a subclass kept its parent's run over events of
    # another shape.
    from streamfold import StreamParser
    from streamfold.dialects import DIALECTS

    sys.path.insert(0, str(ROOT / "bench"))
    try:
        streams = importlib.import_module("streams")
    finally:
        sys.path.remove(str(ROOT / "bench"))
    for stream in streams.dialect_streams(0.02):
        handled = 0

        base: Any = DIALECTS[stream.dialect]

        class Counted(base):  # type: ignore[misc]
            def handle(self, event: Any) -> bool:
                nonlocal handled
                handled += 1
                return bool(super().handle(event))

        parser = StreamParser(Counted)
        parser.feed(stream.body)
        parser.close()
        seen = parser.events_seen
        assert parser.final().complete, (stream.dialect, stream.shape)
        assert handled < seen / 5, (stream.dialect, stream.shape, handled, seen)
