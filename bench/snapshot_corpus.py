"""Fold every shared recording and keep what came out, to compare before and after a change.

::

    .venv/bin/python bench/snapshot_corpus.py --out /tmp/before      # before the change
    .venv/bin/python bench/snapshot_corpus.py --out /tmp/after       # after it
    .venv/bin/python bench/snapshot_corpus.py --compare /tmp/before /tmp/after

For each ``.sse`` (and ``.json``) file in ``../shared/corpus`` and ``../shared/pairs``
(and the in-repo fixtures), one JSON file holds: the events (parse_arguments on),
the result of the event path and of the plain fold (response, unified view,
warnings, complete), and the error (type and message). ``--compare`` prints every
recording whose record differs, with the first differing keys.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parents[1]
SOURCES = (
    ROOT.parent / "shared" / "corpus",
    ROOT.parent / "shared" / "pairs",
    ROOT / "tests" / "fixtures",
    ROOT / "examples",
    ROOT / "src" / "streamfold" / "samples",
)


def recordings() -> list[Path]:
    found: list[Path] = []
    for source in SOURCES:
        if source.is_dir():
            found.extend(sorted(p for p in source.rglob("*.sse")))
    return found


def _result(result: Any) -> Any:
    if result is None:
        return None
    return {
        "dialect": result.dialect,
        "response": result.response,
        "unified": msgspec.to_builtins(result.unified),
        "complete": result.complete,
        "warnings": list(result.warnings),
    }


def _error(error: BaseException | None) -> Any:
    if error is None:
        return None
    return {"type": type(error).__name__, "message": str(error)}


def record(path: Path) -> dict[str, Any]:
    import streamfold
    from streamfold import StreamParser

    data = path.read_bytes()
    parser = StreamParser(parse_arguments=True)
    events = [*parser.feed(data), *parser.close()]
    error: BaseException | None = parser.error
    event_result = parser.snapshot
    try:
        folded = streamfold.fold(data)
        fold_error = None
    except streamfold.StreamfoldError as exc:
        folded = exc.partial
        fold_error = exc
    return {
        "events": [msgspec.to_builtins(e) for e in events],
        "result": _result(event_result),
        "error": _error(error),
        "fold": _result(folded),
        "fold_error": _error(fold_error),
    }


def key(path: Path) -> str:
    for source in SOURCES:
        if path.is_relative_to(source):
            return f"{source.name}/{path.relative_to(source)}".replace("/", "__")
    return path.name


def snapshot(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    encoder = msgspec.json.Encoder(order="sorted")
    for path in recordings():
        try:
            value = record(path)
        except Exception as exc:  # a crash is itself the record
            value = {"crash": f"{type(exc).__name__}: {exc}"}
        (out / f"{key(path)}.json").write_bytes(encoder.encode(value))
    print(f"{len(recordings())} recordings written to {out}")


def _diff(a: Any, b: Any, where: str, out: list[str]) -> None:
    if len(out) > 6:
        return
    if type(a) is not type(b):
        out.append(f"{where}: {str(a)[:100]!r} != {str(b)[:100]!r}")
    elif isinstance(a, dict):
        for k in sorted(a.keys() | b.keys()):
            if k not in a or k not in b:
                out.append(f"{where}.{k}: only in {'after' if k in b else 'before'}")
            else:
                _diff(a[k], b[k], f"{where}.{k}", out)
    elif isinstance(a, list):
        if len(a) != len(b):
            out.append(f"{where}: {len(a)} items != {len(b)} items")
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            _diff(x, y, f"{where}[{i}]", out)
    elif a != b:
        out.append(f"{where}: {str(a)[:100]!r} != {str(b)[:100]!r}")


def compare(before: Path, after: Path) -> int:
    decoder = msgspec.json.Decoder()
    names = sorted({p.name for p in before.glob("*.json")} | {p.name for p in after.glob("*.json")})
    differing = 0
    for name in names:
        a, b = before / name, after / name
        if not a.exists() or not b.exists():
            print(f"{name}: only {'after' if b.exists() else 'before'}")
            differing += 1
            continue
        x, y = decoder.decode(a.read_bytes()), decoder.decode(b.read_bytes())
        if x != y:
            differing += 1
            notes: list[str] = []
            _diff(x, y, "", notes)
            print(f"{name}:")
            for note in notes:
                print(f"    {note}")
    print(f"{differing} of {len(names)} recordings differ")
    return 1 if differing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="write the snapshot here")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    if args.out:
        snapshot(args.out)
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
