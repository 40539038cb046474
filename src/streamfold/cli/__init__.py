"""The ``streamfold`` command: a thin shell over the library.

``main(argv) -> int`` is testable without a subprocess: data goes to stdout,
diagnostics to stderr, one line each.

Exit status: 0 a complete response; 1 the stream carried a provider error or
ended incomplete (the partial result is still printed); 2 a usage error; 3 a
malformed stream in strict mode.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import IO, Any

import msgspec

from ..adapters.sources import iter_chunks
from ..dialects import registry
from ..errors import ProtocolError, StreamfoldError, UsageError
from ..events import to_json
from ..parser import StreamParser
from ..result import Result
from . import live

__all__ = ["main"]

EXIT_OK, EXIT_STREAM_FAILED, EXIT_USAGE, EXIT_MALFORMED = 0, 1, 2, 3
_FORMATS = ("response", "unified", "text", "events")

_encoder = msgspec.json.Encoder()


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamfold",
        description="Fold streamed LLM responses into typed events and one final response.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    fold = commands.add_parser(
        "fold",
        help="fold a recorded stream (a file, or - for stdin) into its final response",
        description="Fold a recorded stream into its final response.",
    )
    fold.add_argument("file", nargs="?", default="-", help="the recorded stream; - reads stdin")
    fold.add_argument(
        "--dialect",
        default="auto",
        choices=["auto", *registry.names()],
        metavar="DIALECT",
        help="the wire format: "
        + ", ".join(f"{a.id} ({a.name})" for a in registry.APIS)
        + " (default: auto, detected from the first event)",
    )
    fold.add_argument(
        "--format",
        default="response",
        choices=_FORMATS,
        help="response: the native non-streaming JSON; unified: the same keys for every "
        "dialect; text: the answer text; events: the typed events as JSON Lines",
    )
    fold.add_argument(
        "--lenient",
        action="store_true",
        help="skip malformed events (reported on stderr) instead of failing",
    )
    fold.add_argument(
        "--parse-arguments",
        action="store_true",
        help="with --format events: parse tool-call arguments incrementally",
    )
    fold.add_argument(
        "--parse-content",
        action="store_true",
        help="with --format events: parse the answer text as JSON (JSON mode) incrementally",
    )
    live.add_commands(commands)
    return parser


def main(
    argv: Sequence[str] | None = None, stdout: IO[str] | None = None, stderr: IO[str] | None = None
) -> int:
    """Run the command line.

    Returns:
        The exit status.
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) and EXIT_USAGE
    if args.command == "fold":
        return _fold(args, out, err)
    if args.command in live.COMMANDS:
        return live.run(args, out, err)
    parser.print_help(err)
    return EXIT_USAGE


def _fold(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    source: Any = sys.stdin.buffer if args.file == "-" else args.file
    events = args.format == "events"
    parser = StreamParser(
        args.dialect,
        strict=not args.lenient,
        events=events,
        parse_arguments=args.parse_arguments,
        parse_content=args.parse_content,
    )
    try:
        for chunk in iter_chunks(source):
            _print_events(parser.feed(chunk), out, events)
            if parser.error is not None:
                break
        _print_events(parser.close(), out, events)
    except OSError as exc:
        err.write(f"streamfold: cannot read {args.file}: {exc.strerror or exc}\n")
        return EXIT_USAGE
    except UsageError as exc:
        err.write(f"streamfold: {exc}\n")
        return EXIT_USAGE
    result = parser.snapshot
    if not events:
        _print_result(result, args.format, out)
    for warning in result.warnings:
        err.write(f"streamfold: warning: {warning}\n")
    error = parser.error
    if error is None:
        return EXIT_OK
    err.write(f"streamfold: {_describe(error)}\n")
    return EXIT_MALFORMED if isinstance(error, ProtocolError) else EXIT_STREAM_FAILED


def _print_events(batch: list[Any], out: IO[str], enabled: bool) -> None:
    if enabled:
        for event in batch:
            out.write(to_json(event).decode())
            out.write("\n")


def _print_result(result: Result, fmt: str, out: IO[str]) -> None:
    if fmt == "text":
        out.write(result.unified.text)
        if result.unified.text and not result.unified.text.endswith("\n"):
            out.write("\n")
        return
    value = result.response if fmt == "response" else result.unified.to_dict()
    out.write(msgspec.json.format(_encoder.encode(value), indent=2).decode())
    out.write("\n")


def _describe(error: StreamfoldError) -> str:
    kind = type(error).__name__
    message = " ".join(str(error).split())
    code = getattr(error, "code", None)
    return f"{kind}: {code}: {message}" if code else f"{kind}: {message}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
