"""The ``streamfold`` command: a thin shell over the library.

``main(argv, stdout, stderr) -> int`` is testable without a subprocess: data
goes to stdout, diagnostics to stderr, one line each, never a traceback and
never a secret (every line goes through ``adapters.redact``).

Exit status:

- 0: a complete response.
- 1: the stream carried a provider error or ended incomplete (the partial
  result is still printed); also a reader that went away (stdout closed, or a
  pipe closed early as by ``head``): the command then stops quietly, as
  click-based CLIs (simonw/llm) and Python's own note on SIGPIPE do.
- 2: a usage error (closed stdin included).
- 3: a malformed stream in strict mode.
- 70: a bug in streamfold (an unexpected exception, named in one line; EX_SOFTWARE).
- 74: the output cannot be written (a full disk; EX_IOERR), said in one line.
- 130: interrupted (Ctrl-C).

Output is written as UTF-8 whatever the terminal's encoding (what UTF-8
cannot encode is replaced), so a narrow ``PYTHONIOENCODING`` never fails it.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any, cast

import msgspec

from .. import __version__, encode
from ..adapters.sources import iter_chunks
from ..dialects import registry
from ..errors import ProtocolError, StreamfoldError, UsageError
from ..events import Event, to_json
from ..parser import StreamParser
from ..result import Result
from . import live
from .output import Output, OutputError, silence, utf8

__all__ = ["main"]

EXIT_OK, EXIT_STREAM_FAILED, EXIT_USAGE, EXIT_MALFORMED = 0, 1, 2, 3
EXIT_BUG, EXIT_OUTPUT, EXIT_INTERRUPTED = 70, 74, 130
_FORMATS = ("response", "unified", "text", "events")

_encoder = msgspec.json.Encoder()


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamfold",
        description="Fold streamed LLM responses into typed events and one final response.",
    )
    parser.add_argument(
        "--version", action="version", version=f"streamfold {__version__}", help="print the version"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    fold = commands.add_parser(
        "fold",
        help="fold a recorded stream (a file, or - for stdin) into its final response",
        description="Fold a recorded stream into its final response.",
    )
    _add_source_arguments(fold)
    fold.add_argument(
        "--format",
        default="response",
        choices=_FORMATS,
        help="response: the native non-streaming JSON; unified: the same keys for every "
        "dialect; text: the answer text; events: the typed events as JSON Lines",
    )
    _add_lenient(fold)
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
    convert = commands.add_parser(
        "convert",
        help="re-encode a recorded stream (a file, or - for stdin) in another dialect",
        description="Re-encode a recorded stream in another dialect's streaming format, "
        "on stdout as it is read. What each target cannot carry: docs/encode.md.",
    )
    _add_source_arguments(convert)
    convert.add_argument(
        "--to",
        required=True,
        choices=registry.names(),
        metavar="DIALECT",
        help="the dialect to write: " + ", ".join(f"{a.id} ({a.name})" for a in registry.APIS),
    )
    convert.add_argument(
        "--json-array",
        action="store_true",
        help="with --to gemini: one JSON array (the form without ?alt=sse) instead of "
        "server-sent events",
    )
    _add_lenient(convert)
    live.add_commands(commands)
    return parser


def _add_source_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("file", nargs="?", default="-", help="the recorded stream; - reads stdin")
    command.add_argument(
        "--dialect",
        default="auto",
        choices=["auto", *registry.names()],
        metavar="DIALECT",
        help="the wire format: "
        + ", ".join(f"{a.id} ({a.name})" for a in registry.APIS)
        + " (default: auto, detected from the first event)",
    )


def _add_lenient(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--lenient",
        action="store_true",
        help="skip malformed events (reported on stderr) instead of failing",
    )


def main(
    argv: Sequence[str] | None = None, stdout: IO[str] | None = None, stderr: IO[str] | None = None
) -> int:
    """Run the command line.

    Args:
        argv: the arguments (``sys.argv[1:]`` when ``None``).
        stdout, stderr: where to write (the process's own when ``None``).

    Returns:
        The exit status (see the module docstring); never raises but ``SystemExit``.
    """
    secrets: set[str] = set()
    own_out, own_err = stdout is None, stderr is None
    out = Output(utf8(sys.stdout, "replace") if own_out else stdout, secrets, fatal=True)
    err = Output(utf8(sys.stderr, "backslashreplace") if own_err else stderr, secrets, fatal=False)
    text_out, text_err = cast("IO[str]", out), cast("IO[str]", err)
    try:
        status = _run(argv, text_out, text_err, secrets)
        out.flush()
    except OutputError as exc:
        status = _output_failed(exc, text_err)
    except KeyboardInterrupt:
        _flush_quietly(out)
        err.write("streamfold: interrupted\n")
        status = EXIT_INTERRUPTED
    except Exception as exc:
        # The library must raise only its typed errors; anything else is ours to fix.
        _flush_quietly(out)
        err.write(
            f"streamfold: internal error (a streamfold bug, please report it): {_one_line(exc)}\n"
        )
        status = EXIT_BUG
    err.flush()
    if own_out and out.failed:
        silence(sys.stdout)
    if own_err and err.failed:
        silence(sys.stderr)
    return status


def _run(argv: Sequence[str] | None, out: IO[str], err: IO[str], secrets: set[str]) -> int:
    parser = _build_parser()
    try:
        # argparse prints help and usage errors to sys.stdout and sys.stderr.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) and EXIT_USAGE
    if args.command == "fold":
        return _fold(args, out, err)
    if args.command == "convert":
        return _convert(args, out, err)
    if args.command in live.COMMANDS:
        return live.run(args, out, err, secrets)
    parser.print_help(err)
    return EXIT_USAGE


def _output_failed(exc: OutputError, err: IO[str]) -> int:
    if exc.broken:
        return EXIT_STREAM_FAILED
    err.write(f"streamfold: cannot write the output: {exc.reason}\n")
    return EXIT_OUTPUT


def _flush_quietly(out: Output) -> None:
    with contextlib.suppress(OutputError):
        out.flush()


def _one_line(exc: BaseException) -> str:
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _fold(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    events = args.format == "events"
    parser = StreamParser(
        args.dialect,
        strict=not args.lenient,
        events=events,
        parse_arguments=args.parse_arguments,
        parse_content=args.parse_content,
    )
    status = _read(args, parser, lambda batch: _print_events(batch, out, events), err)
    if status is not None:
        return status
    result = parser.snapshot
    if not events:
        _print_result(result, args.format, out)
    return _ending(parser, result.warnings, err)


def _convert(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    target = registry.get_api(args.to).id
    if args.json_array and target != "gemini":
        err.write("streamfold: --json-array is for --to gemini only\n")
        return EXIT_USAGE
    encoder = encode.GeminiEncoder(json_array=True) if args.json_array else encode.get(target)()
    parser = StreamParser(args.dialect, strict=not args.lenient)

    def write(batch: list[Event]) -> None:
        data = encoder.encode_all(batch)
        if data:
            # Flushed as it comes: a live stream piped through stays live.
            out.write(data.decode("utf-8", "replace"))
            out.flush()

    status = _read(args, parser, write, err)
    if status is not None:
        return status
    out.write(encoder.close().decode("utf-8", "replace"))
    return _ending(parser, parser.snapshot.warnings, err)


def _read(
    args: argparse.Namespace,
    parser: StreamParser,
    emit: Callable[[list[Event]], None],
    err: IO[str],
) -> int | None:
    """Feed ``args.file`` (``-``: stdin) to ``parser`` and its events to ``emit``,
    up to the parser's end or its first error; a usage status, or ``None``."""
    source: Any = args.file
    name = args.file
    if args.file == "-":
        if sys.stdin is None:
            err.write(
                f"streamfold: standard input is closed: give a file to {args.command}, "
                "or pipe one in\n"
            )
            return EXIT_USAGE
        source, name = getattr(sys.stdin, "buffer", sys.stdin), "standard input"
    chunks = iter_chunks(source)
    try:
        while True:
            # Only reading is guarded here: a failed write is an OutputError,
            # never blamed on the input.
            try:
                chunk = next(chunks, None)
            except OSError as exc:
                err.write(f"streamfold: cannot read {name}: {exc.strerror or exc}\n")
                return EXIT_USAGE
            if chunk is None:
                break
            emit(parser.feed(chunk))
            if parser.error is not None:
                break
        emit(parser.close())
    except UsageError as exc:
        err.write(f"streamfold: {exc}\n")
        return EXIT_USAGE
    return None


def _ending(parser: StreamParser, warnings: Sequence[str], err: IO[str]) -> int:
    """The warnings and the error of a folded stream, on stderr; the exit status."""
    for warning in warnings:
        err.write(f"streamfold: warning: {warning}\n")
    error = parser.error
    if error is None:
        return EXIT_OK
    err.write(f"streamfold: {_describe(error)}\n")
    return EXIT_MALFORMED if isinstance(error, ProtocolError) else EXIT_STREAM_FAILED


def _print_events(batch: list[Event], out: IO[str], enabled: bool) -> None:
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
