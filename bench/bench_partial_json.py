"""Benchmark streamfold.partial_json against re-parsing the buffer on every delta.

Run by hand (a report, never a timed assertion)::

    PYTHONPATH=src .venv/bin/python bench/bench_partial_json.py [--delta 6] [--repeat 3] [--cpu]

Two documents, each at 10 KB, 100 KB and 1 MB, fed in deltas of ``--delta``
characters, timed side by side in one run:

- ``updates``: ``PartialJSONParser()``, every update built.
- ``no updates``: ``PartialJSONParser(updates=False)``.
- ``jiter re-parse``: ``jiter.from_json(buf.encode(), partial_mode="trailing-strings")``
  on the whole buffer after every delta, as most libraries do. Quadratic: run up
  to 100 KB and extrapolated from the 100 KB time for 1 MB (marked ``~``).
- ``json.loads``: one parse of the whole text, the floor.

Times are the best of ``--repeat`` runs, in milliseconds (wall time, or with
``--cpu`` the process's CPU time, steadier on a shared machine); ``x jiter`` is
how many times faster the parser with updates is than re-parsing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import jiter

from streamfold.partial_json import PartialJSONParser

_SIZES = (10_000, 100_000, 1_000_000)
_JITER_LIMIT = 100_000

_CODE_LINES = (
    "def render(path: str) -> str:\n",
    '    """Render the template at ``path``."""\n',
    '    with open(path, encoding="utf-8") as handle:\n',
    '        text = handle.read().replace("\\\\n", "\\n")\n',
    '    return f"caf\u00e9 \u2713 {text!r} \\\\ done \U0001f600"\n',
    "\tif x < 10 and y > 20: print('tab\\there')\n",
    "\n",
)


def code_edit(size: int) -> str:
    """A code-edit tool call: a path and one long string full of escapes."""
    lines: list[str] = []
    total = 0
    k = 0
    while total < size:
        line = _CODE_LINES[k % len(_CODE_LINES)]
        lines.append(line)
        total += len(json.dumps(line, ensure_ascii=False)) - 2
        k += 1
    return json.dumps({"path": "src/x.py", "content": "".join(lines)}, ensure_ascii=False)


def nested_edits(size: int) -> str:
    """A batch of structured edits: objects in arrays, numbers, literals, short strings."""
    edits: list[dict[str, Any]] = []
    total = 0
    k = 0
    while total < size:
        edit = {
            "line": k * 7,
            "column": k % 80,
            "score": round(k / 7, 3),
            "replace": k % 3 == 0,
            "note": None,
            "old": f'value_{k} = "x\\n"',
            "new": f"value_{k} = 'caf\u00e9'\n",
            "tags": ["edit", {"id": k, "ranges": [[k, k + 1], [k + 2, -k]]}],
        }
        edits.append(edit)
        total += len(json.dumps(edit, ensure_ascii=False))
        k += 1
    return json.dumps({"file": "src/x.py", "edits": edits}, ensure_ascii=False)


def split(text: str, delta: int) -> list[str]:
    return [text[i : i + delta] for i in range(0, len(text), delta)]


def run_parser(deltas: list[str], updates: bool) -> object:
    parser = PartialJSONParser(updates=updates)
    for piece in deltas:
        parser.feed(piece)
    return parser.close()


def run_jiter(deltas: list[str]) -> object:
    buffer = ""
    value: object = None
    for piece in deltas:
        buffer += piece
        value = jiter.from_json(buffer.encode(), partial_mode="trailing-strings")
    return value


def best_of(repeat: int, function: Callable[[], Any], clock: Callable[[], float]) -> float:
    """Best time of ``repeat`` runs on ``clock``, in milliseconds."""
    best = float("inf")
    for _ in range(repeat):
        start = clock()
        function()
        best = min(best, clock() - start)
    return best * 1000


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--delta", type=int, default=6, help="characters per delta")
    options.add_argument("--repeat", type=int, default=3, help="runs per measurement")
    options.add_argument("--cpu", action="store_true", help="CPU time instead of wall time")
    arguments = options.parse_args(argv)
    clock = time.process_time if arguments.cpu else time.perf_counter

    header = (
        f"{'document':<12} {'size':>9} {'deltas':>8} {'updates':>10} {'no updates':>11} "
        f"{'jiter re-parse':>15} {'json.loads':>11} {'x jiter':>8} {'us/KB':>6}"
    )
    kind = "CPU" if arguments.cpu else "wall"
    print(f"{kind} times in ms, deltas of {arguments.delta} characters, best of {arguments.repeat}")
    print(header)
    print("-" * len(header))
    jiter_at_limit: dict[str, float] = {}
    for name, make in (("code edit", code_edit), ("nested", nested_edits)):
        for size in _SIZES:
            text = make(size)
            deltas = split(text, arguments.delta)
            expected = json.loads(text)
            if run_parser(deltas, True) != expected or run_parser(deltas, False) != expected:
                print(f"{name} {size}: wrong result", file=sys.stderr)
                return 1
            with_updates = best_of(arguments.repeat, partial(run_parser, deltas, True), clock)
            without = best_of(arguments.repeat, partial(run_parser, deltas, False), clock)
            loads = best_of(arguments.repeat, partial(json.loads, text), clock)
            if size <= _JITER_LIMIT:
                runs = 1 if size >= _JITER_LIMIT else arguments.repeat
                jiter_ms = best_of(runs, partial(run_jiter, deltas), clock)
                jiter_at_limit[name] = jiter_ms
                jiter_shown = f"{jiter_ms:15.1f}"
            else:
                # Quadratic: each tenfold in size costs a hundredfold.
                jiter_ms = jiter_at_limit[name] * (size / _JITER_LIMIT) ** 2
                jiter_shown = f"~{jiter_ms:14.0f}"
            print(
                f"{name:<12} {len(text):>9,} {len(deltas):>8,} {with_updates:>10.1f} "
                f"{without:>11.1f} {jiter_shown} {loads:>11.2f} {jiter_ms / with_updates:>8.0f} "
                f"{with_updates * 1000 / (len(text) / 1000):>6.0f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
