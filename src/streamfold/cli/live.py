"""The live commands: ``chat``, ``serve`` and ``demo``, and live terminal rendering.

The only module that uses ``rich``, and only when stdout is a terminal and
``NO_COLOR`` is unset (else, or when rich is not installed, output is plain
text written as it arrives). httpx, the server stack and rich are imported when
a command runs, so ``streamfold fold`` needs none of them.

Output: the streamed answer (or ``--json`` events) goes to stdout; the summary
(finish reason, usage, timings) and errors go to stderr, except in ``demo``,
whose whole report is its output. ``chat`` adds the secrets of its request (the
key, the URL's password and credential query values, credential headers) to
the set ``main`` redacts from everything written, a server's error body
echoing the key included.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import msgspec

from ..adapters.recordings import DEFAULT_IGNORE
from ..adapters.redact import redact_url, secrets_of
from ..dialects import registry
from ..errors import (
    HTTPResponseError,
    IncompleteStreamError,
    ProtocolError,
    ProviderError,
    StreamfoldError,
    StreamTimeoutError,
    UsageError,
)
from ..events import (
    ErrorInfo,
    ErrorOccurred,
    Event,
    ReasoningDelta,
    RefusalDelta,
    ResponseFinished,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallDone,
    ToolCallStarted,
    Usage,
    UsageUpdated,
    to_json,
)
from ..result import Result
from .output import OutputError

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from ..adapters.httpx import ResponseMetadata
    from ..samples import Sample
    from ..server import ReplayServer

__all__ = [
    "COMMANDS",
    "LiveView",
    "PlainRenderer",
    "RichRenderer",
    "add_commands",
    "run",
    "summary",
    "wants_rich",
]

COMMANDS: Final = ("chat", "serve", "demo")
EXIT_OK, EXIT_STREAM_FAILED, EXIT_USAGE, EXIT_MALFORMED = 0, 1, 2, 3
EXIT_INTERRUPTED: Final = 130
DEMO_PACE: Final = "realistic, speed=4"

#: A rate in tokens per second is shown only for a stream at least this long
#: (seconds from the first token to the end) and with this many tokens: a
#: replayed or cached answer arrives at once, and its "rate" means nothing.
MIN_RATE_SECONDS: Final = 0.5
MIN_RATE_TOKENS: Final = 16

_encoder = msgspec.json.Encoder()


# -- the parsers ---------------------------------------------------------------------------


def add_commands(commands: Any) -> None:
    """Add ``chat``, ``serve`` and ``demo`` to the ``streamfold`` parser's subcommands."""
    chat = commands.add_parser(
        "chat",
        help="stream a prompt from a live endpoint and render it as it arrives",
        description="Send a streaming request and render the answer live: text as it "
        "arrives, reasoning set apart, tool calls filling in; then usage, finish reason, "
        "time to first token and tokens per second (on stderr).",
    )
    chat.add_argument("prompt", help="the prompt; - reads it from stdin")
    chat.add_argument("--base-url", help="the endpoint, as the API's SDK takes it")
    chat.add_argument("--model", required=True, help="the model id")
    chat.add_argument(
        "--api",
        default="chat",
        choices=registry.names(),
        metavar="API",
        help="the API: "
        + ", ".join(f"{a.id} ({a.name})" for a in registry.APIS)
        + " (default: chat)",
    )
    chat.add_argument("--system", help="a system prompt")
    chat.add_argument("--max-tokens", type=int, help="the output token limit")
    chat.add_argument(
        "--api-key-env",
        metavar="NAME",
        help="read the API key from this environment variable (default: the API's usual "
        "one, e.g. OPENAI_API_KEY); keys are never taken on the command line",
    )
    chat.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="an extra request header (repeatable), e.g. 'X-Streamfold-Fault: drop-after=3'",
    )
    chat.add_argument("--json", action="store_true", help="print the events as JSON Lines")
    chat.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=5.0,
        metavar="S",
        help="seconds to establish the connection (default: 5)",
    )
    chat.add_argument(
        "--first-event-timeout",
        type=_seconds,
        default=600.0,
        metavar="S",
        help="seconds from sending the request to the first event (default: 600)",
    )
    chat.add_argument(
        "--idle-timeout",
        type=_seconds,
        default=600.0,
        metavar="S",
        help="the longest gap between two events, in seconds (default: 600)",
    )
    chat.add_argument(
        "--total-timeout",
        type=_seconds,
        default=None,
        metavar="S",
        help="seconds for the whole stream (default: none)",
    )
    chat.add_argument(
        "--retries",
        type=_count,
        default=2,
        metavar="N",
        help="send a request that failed before its stream began again, up to N times (a "
        "connection error, a timeout, a retryable status; default: 2, 0 for never)",
    )
    chat.add_argument(
        "--resume",
        action="store_true",
        help="re-attach a stream cut after its first events instead of failing (the "
        "Responses API's background streams, server-sent events with ids); an API "
        "that cannot resume fails as without it",
    )

    serve = commands.add_parser(
        "serve",
        help="serve recorded streams as provider endpoints, with pacing and faults; "
        "record the real APIs through it",
        description="Run the replay server: recordings served as OpenAI, Anthropic and "
        "Gemini endpoints (a recording of another API is re-encoded). A request is "
        "answered by the recording the X-Streamfold-Recording header names, else the "
        "recording or conversation its model names, else the recording whose API, model "
        "and request body match; else a 404 lists the recordings of its API. With "
        "--record DIR, what has no recording is sent to the real API, streamed back and "
        "recorded into DIR. Prints its base URL on stdout and one line per finished "
        "request on stderr.",
        epilog=SERVE_KNOBS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "recordings",
        nargs="*",
        help="recordings to serve: NAME.sse files, NAME.meta.json files, or folders of "
        "them (a sub-folder is a conversation, its recordings turns in order)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1 (loopback)")
    serve.add_argument("--port", type=_port, default=8000, help="default: 8000; 0 picks one")
    serve.add_argument("--no-samples", action="store_true", help="serve only the given recordings")
    serve.add_argument(
        "--pace", default="fast", help="the default pace (see below), e.g. 'realistic'"
    )
    serve.add_argument(
        "--fault",
        default="",
        help="the default faults and their scope (see below), e.g. 'status=503, times=1'",
    )
    serve.add_argument(
        "--record",
        metavar="DIR",
        help="serve the recordings in DIR and record into it what has no recording "
        "(the key headers are passed upstream, never written)",
    )
    serve.add_argument(
        "--record-mode",
        choices=("once", "all", "none"),
        default="once",
        help="with --record: once replays what DIR holds and records what is missing "
        "(default), all records every request again, none replays only (a request with "
        "no recording is a 404 saying so)",
    )
    serve.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="[API=]URL",
        help="with --record: where requests go, a base URL for every API or API=URL for "
        "one, repeatable (default: each API's own, e.g. https://api.anthropic.com)",
    )
    serve.add_argument(
        "--match-ignore",
        action="append",
        metavar="FIELD",
        help="a request body field (dotted path) left out when requests are matched to "
        "recordings, repeatable; replaces the default: " + ", ".join(DEFAULT_IGNORE),
    )
    serve.add_argument("--quiet", action="store_true", help="do not log each request on stderr")

    demo = commands.add_parser(
        "demo",
        help="stream the shipped samples through a local replay server (no network, no key)",
        description="Start the replay server on a free loopback port, stream each shipped "
        "sample through the HTTP client, render it live, and print each final response "
        "with its timings. Exits 0 when every sample behaved as expected.",
    )
    demo.add_argument(
        "--pace", default=DEMO_PACE, help=f"how fast the samples stream (default: {DEMO_PACE!r})"
    )
    demo.add_argument(
        "--sample",
        action="append",
        metavar="NAME",
        help="only this sample (repeatable): " + ", ".join(_sample_names()),
    )


#: What ``serve --help`` lists after the options: every pace and fault knob.
SERVE_KNOBS: Final = """\
pace (--pace, or the X-Streamfold-Pace header per request):
  fast                  no pauses (default)
  realistic             0.4 s before the first event, 25 ms between the others
  ttft=S, gap=S         your own pauses, in seconds
  speed=N               divides the pauses (realistic, speed=4)

faults (--fault, or the X-Streamfold-Fault header per request; comma-separated):
  drop-after=N          close the connection after N events
  stall=S               pause S seconds before event N (stall-after=N, default 1)
  malformed-after=N     send an event whose JSON is cut off after N events
  error-after=N         the provider's in-band error event after N events
  status=CODE           answer with the provider's error body (any 4xx/5xx)
  retry-after=S         the retry-after value of a status fault
  json-body             a JSON error object on HTTP 200
  split=utf8|crlf|bytes|N   write the body in hostile pieces
  provider=openai|anthropic|gemini|openrouter   whose error shapes to use
scope of a fault:
  times=N               only the first N requests it applies to (retry, then succeed)
  recording=NAME        only requests answered by this recording or conversation
  route=PATH            only requests to this path, e.g. /v1/messages

examples:
  streamfold serve recordings/ --pace realistic --fault 'drop-after=20'
  streamfold serve --record cassettes/ --upstream https://api.openai.com
  curl -N localhost:8000/v1/chat/completions -d '{"model": "chat-reasoning"}' \\
       -H 'X-Streamfold-Fault: status=429, times=1'
"""


def _sample_names() -> list[str]:
    from ..samples import SAMPLES

    return [sample.name for sample in SAMPLES]


def _seconds(text: str) -> float:
    # argparse's float takes nan, inf and negatives; a deadline is none of them.
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{value} is not from 0 to 100")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535)")
    return value


def run(
    args: argparse.Namespace, out: IO[str], err: IO[str], secrets: set[str] | None = None
) -> int:
    """Run the live command ``args.command``; the exit status.

    ``secrets``: the set the command's writers redact (``main``'s); ``chat``
    adds its request's secrets to it.
    """
    try:
        if args.command == "chat":
            return _chat(args, out, err, set() if secrets is None else secrets)
        if args.command == "serve":
            return _serve(args, out, err)
        return _demo(args, out, err)
    except ImportError as exc:
        err.write(
            f"streamfold: {args.command} needs the optional dependencies "
            f"(pip install 'streamfold[http,server]' rich): {exc}\n"
        )
        return EXIT_USAGE
    except UsageError as exc:
        err.write(f"streamfold: {exc}\n")
        return EXIT_USAGE


# -- what is on screen -----------------------------------------------------------------------


def _part_of(event: TextDelta | ReasoningDelta | RefusalDelta) -> str:
    if isinstance(event, TextDelta):
        return "text"
    return "reasoning" if isinstance(event, ReasoningDelta) else "refusal"


class _ToolView:
    __slots__ = ("arguments", "done", "id", "name")

    def __init__(self, name: str | None, id: str | None) -> None:
        self.name = name
        self.id = id
        self.arguments: list[str] = []
        self.done = False


class LiveView:
    """The state a renderer draws, built from events (choice 0 only).

    Attributes:
        sections: ``("reasoning"|"text"|"refusal", None)`` or ``("tool", index)``,
            in the order they first appeared.
        deltas: content deltas so far (a token estimate before usage arrives).
    """

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.parts: dict[str, list[str]] = {"reasoning": [], "text": [], "refusal": []}
        self.tools: dict[int, _ToolView] = {}
        self.sections: list[tuple[str, int | None]] = []
        self.deltas = 0
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.error: ErrorInfo | None = None

    def add(self, event: Event) -> None:
        """Take one event into the view."""
        if isinstance(event, (TextDelta, ReasoningDelta, RefusalDelta)):
            if event.choice == 0:
                part = _part_of(event)
                self._section((part, None))
                self.parts[part].append(event.delta)
                self.deltas += 1
        elif isinstance(event, ToolCallStarted):
            if event.choice == 0:
                self.tools[event.index] = _ToolView(event.name, event.id)
                self._section(("tool", event.index))
        elif isinstance(event, ToolCallArgumentsDelta):
            if event.choice == 0:
                tool = self.tools.setdefault(event.index, _ToolView(None, event.id))
                tool.arguments.append(event.delta)
                self.deltas += 1
        elif isinstance(event, ToolCallDone):
            if event.choice == 0:
                tool = self.tools.setdefault(event.index, _ToolView(event.name, event.id))
                tool.done = True
                tool.name = tool.name or event.name
        elif isinstance(event, UsageUpdated):
            self.usage = event.usage
        elif isinstance(event, ResponseFinished):
            if event.choice == 0:
                self.finish_reason = event.finish_reason
        elif isinstance(event, ErrorOccurred):
            self.error = event.error

    def _section(self, section: tuple[str, int | None]) -> None:
        if section not in self.sections:
            self.sections.append(section)

    def text(self, part: str) -> str:
        """The text of ``"reasoning"``, ``"text"`` or ``"refusal"`` so far."""
        return "".join(self.parts[part])

    def progress(self) -> str:
        """``~42 tokens · 1.3 s``: reported output tokens, else the delta count."""
        elapsed = time.monotonic() - self.started
        usage = self.usage
        if usage is not None and usage.output_tokens is not None:
            return f"{usage.output_tokens} tokens · {elapsed:.1f} s"
        return f"~{self.deltas} tokens · {elapsed:.1f} s"


class PlainRenderer:
    """Writes deltas as they arrive; each section after the first starts on its own
    line with a label (``[reasoning]``, ``[answer]``, ``[tool call NAME]``), so a
    plain text answer comes out unlabelled."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.view = LiveView()
        self._section: tuple[str, int | None] | None = None
        self._wrote = False

    def start(self) -> None:
        """Nothing to set up."""

    def event(self, event: Event) -> None:
        """Render one event."""
        self.view.add(event)
        if isinstance(event, (TextDelta, ReasoningDelta, RefusalDelta)):
            if event.choice != 0:
                return
            self._enter((_part_of(event), None))
            self._write(event.delta)
        elif isinstance(event, ToolCallStarted) and event.choice == 0:
            self._enter(("tool", event.index))
        elif isinstance(event, ToolCallArgumentsDelta) and event.choice == 0:
            self._enter(("tool", event.index))
            self._write(event.delta)

    def _enter(self, section: tuple[str, int | None]) -> None:
        if self._section == section:
            return
        kind, index = section
        label = {"reasoning": "[reasoning] ", "refusal": "[refusal] ", "text": "[answer] "}.get(
            kind
        )
        if kind == "tool":
            tool = self.view.tools.get(index or 0)
            label = f"[tool call {(tool.name if tool else None) or '?'}] "
        if self._wrote:
            self.out.write("\n")
        if kind != "text" or self._wrote:
            self.out.write(label or "")
        self._section = section
        self._wrote = True

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def stop(self, cut: str | None = None) -> None:
        """End the output's last line (a cut is said on stderr, not in the data)."""
        if self._wrote:
            self.out.write("\n")
            self.out.flush()


class RichRenderer:
    """A live terminal view: reasoning dimmed in its own panel, the answer
    rendered as Markdown, tool calls with their arguments filling in, and a
    progress line; a stream cut short ends with a line saying so, its open
    tool calls marked.

    Args:
        console: the ``rich.console.Console`` to draw on.
        auto_refresh: redraw on a timer (off in tests: ``refresh()`` then draws).
    """

    def __init__(self, console: Console, *, auto_refresh: bool = True) -> None:
        from rich.live import Live

        self.console = console
        self.view = LiveView()
        self.cut: str | None = None
        self._final = False
        self.live: Live = Live(
            console=console,
            auto_refresh=auto_refresh,
            refresh_per_second=10,
            vertical_overflow="visible",
            get_renderable=self.renderable,
        )

    def start(self) -> None:
        """Begin drawing."""
        self.live.start()

    def event(self, event: Event) -> None:
        """Take one event (drawn on the next refresh)."""
        self.view.add(event)

    def refresh(self) -> None:
        """Draw now."""
        self.live.refresh()

    def renderable(self) -> RenderableType:
        """What the view looks like now."""
        from rich.console import Group
        from rich.markdown import Markdown
        from rich.panel import Panel
        from rich.text import Text

        view = self.view
        items: list[RenderableType] = []
        for kind, index in view.sections:
            if kind == "reasoning":
                items.append(
                    Panel(
                        Text(view.text("reasoning"), style="dim italic"),
                        title="reasoning",
                        title_align="left",
                        border_style="dim",
                    )
                )
            elif kind == "text":
                items.append(Markdown(view.text("text")))
            elif kind == "refusal":
                items.append(Text(view.text("refusal"), style="bold red"))
            else:
                tool = view.tools[index or 0]
                state = "" if tool.done else (" ✂ cut" if self.cut else " …")
                items.append(
                    Panel(
                        Text("".join(tool.arguments), style="cyan"),
                        title=f"tool call {tool.name or '?'}{state}",
                        title_align="left",
                        border_style="cyan",
                    )
                )
        if self.cut:
            items.append(Text(f"✂ {self.cut}", style="bold red"))
        elif not self._final:
            waiting = "waiting for the first token · " if not view.sections else ""
            items.append(Text(f"⠿ {waiting}{view.progress()}", style="dim"))
        return Group(*items)

    def stop(self, cut: str | None = None) -> None:
        """Draw the final frame (without the progress line) and stop; ``cut``
        says where the stream broke off (the parts still open are marked)."""
        self._final = True
        self.cut = cut
        self.live.refresh()
        self.live.stop()


def wants_rich(out: IO[str], environ: dict[str, str] | None = None) -> bool:
    """Rich output only on a terminal, without ``NO_COLOR``, with rich installed."""
    environ = dict(os.environ) if environ is None else environ
    if environ.get("NO_COLOR") or not getattr(out, "isatty", lambda: False)():
        return False
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def _renderer(out: IO[str]) -> PlainRenderer | RichRenderer:
    if wants_rich(out):
        from rich.console import Console

        return RichRenderer(Console(file=out))
    return PlainRenderer(out)


def summary(result: Result | None, metadata: ResponseMetadata | None, deltas: int = 0) -> str:
    """One line: finish reason, usage, time to first token, tokens per second
    (for a stream long enough: ``MIN_RATE_SECONDS``, ``MIN_RATE_TOKENS``), total time."""
    parts: list[str] = []
    if result is not None:
        finish = result.unified.finish_reason
        raw = result.unified.raw_finish_reason
        if finish is not None:
            parts.append(f"finish {finish}" + (f" ({raw})" if raw and raw != finish else ""))
        usage = result.usage
        if usage is not None:
            tokens = [
                f"in {usage.input_tokens}" if usage.input_tokens is not None else "",
                f"out {usage.output_tokens}" if usage.output_tokens is not None else "",
                f"reasoning {usage.reasoning_tokens}" if usage.reasoning_tokens else "",
                f"cached {usage.cache_read_tokens}" if usage.cache_read_tokens else "",
            ]
            parts.append("tokens " + ", ".join(t for t in tokens if t))
    if metadata is not None:
        first, total = metadata.time_to_first_token, metadata.total_time
        if first is not None:
            parts.append(f"ttft {first:.2f} s")
        usage = result.usage if result is not None else None
        output = usage.output_tokens if usage is not None else None
        if first is not None and total is not None and total - first >= MIN_RATE_SECONDS:
            if output and output >= MIN_RATE_TOKENS:
                parts.append(f"{output / (total - first):.1f} tok/s")
            elif not output and deltas >= MIN_RATE_TOKENS:
                parts.append(f"~{deltas / (total - first):.1f} tok/s")
        if total is not None:
            parts.append(f"total {total:.2f} s")
        retried = len(metadata.attempts) - 1
        if retried > 0:
            parts.append(f"retried {retried}x")
        resumed = sum(r.error is None for r in metadata.resumptions)
        if resumed:
            parts.append(f"resumed {resumed}x")
        if metadata.request_id:
            parts.append(f"request {metadata.request_id}")
    return " · ".join(parts)


def _describe(error: BaseException) -> str:
    code = getattr(error, "code", None)
    message = " ".join(str(error).split())
    name = type(error).__name__
    if isinstance(error, ProviderError):
        flag = " (retryable)" if error.retryable else ""
        return f"{name}: {code}: {message}{flag}" if code else f"{name}: {message}{flag}"
    return f"{name}: {message}"


def _exit_status(error: BaseException) -> int:
    return EXIT_MALFORMED if isinstance(error, ProtocolError) else EXIT_STREAM_FAILED


# -- chat ----------------------------------------------------------------------------------------


def _headers(values: Iterable[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values:
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"--header {value!r}: use 'Name: value'")
        headers[name.strip()] = content.strip()
    return headers


def _prompt(args: argparse.Namespace) -> str:
    if args.prompt != "-":
        return str(args.prompt)
    if sys.stdin is None:
        raise UsageError("standard input is closed: give the prompt, or pipe it in with -")
    try:
        data = getattr(sys.stdin, "buffer", sys.stdin).read()
    except OSError as exc:
        reason = exc.strerror or exc
        raise UsageError(f"cannot read the prompt from standard input: {reason}") from None
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)


def _request_secrets(
    args: argparse.Namespace, api_key: str | None, headers: dict[str, str]
) -> set[str]:
    # Everything the request may carry: the key given, else every key the
    # client could take from the environment, and those in the URL and headers.
    keys = {api_key} if api_key else {os.environ.get(n) for n in registry.get_api(args.api).key_env}
    found = secrets_of(args.base_url, headers)
    found.update(key for key in keys if key)
    return found


def _chat(args: argparse.Namespace, out: IO[str], err: IO[str], secrets: set[str]) -> int:
    from ..adapters.httpx import Timeouts
    from ..client import stream

    api_key = os.environ.get(args.api_key_env) if args.api_key_env else None
    headers = _headers(args.header)
    secrets.update(_request_secrets(args, api_key, headers))
    if args.api_key_env and not api_key:
        raise UsageError(f"the environment variable {args.api_key_env} is not set")
    key_env = registry.get_api(args.api).key_env
    if not args.api_key_env and key_env and not any(os.environ.get(name) for name in key_env):
        names = " or ".join(key_env)
        err.write(f"streamfold: note: {names} is not set; sending no API key\n")
    prompt = _prompt(args)
    timeouts = Timeouts(
        connect=args.connect_timeout,
        first_event=args.first_event_timeout,
        idle=args.idle_timeout,
        total=args.total_timeout,
    )
    live = stream(
        prompt,
        model=args.model,
        api=args.api,
        base_url=args.base_url,
        api_key=api_key,
        system=args.system,
        max_tokens=args.max_tokens,
        headers=headers,
        timeouts=timeouts,
        retries=args.retries,
        resume=args.resume,
    )
    renderer: PlainRenderer | RichRenderer | None = None if args.json else _renderer(out)
    cut: str | None = None
    try:
        with live:
            if renderer is not None:
                renderer.start()
            try:
                for event in live:
                    if renderer is None:
                        out.write(to_json(event).decode())
                        out.write("\n")
                        out.flush()
                    else:
                        renderer.event(event)
            except IncompleteStreamError as exc:
                cut = _cut(exc, getattr(exc.partial, "metadata", None))
                raise
            except KeyboardInterrupt:
                cut = "interrupted"
                raise
            finally:
                if renderer is not None:
                    renderer.stop(cut)
            result = live.final()
    except KeyboardInterrupt:
        # Ctrl-C: what arrived so far, then the conventional status.
        line = summary(_snapshot(live), _metadata(live), _deltas(renderer))
        if line:
            err.write(f"streamfold: {line}\n")
        err.write("streamfold: interrupted\n")
        return EXIT_INTERRUPTED
    except HTTPResponseError as exc:
        err.write(f"streamfold: {_describe(exc)}\n")
        if exc.status_code == 404:
            err.write(f"streamfold: {_not_found(args, exc)}\n")
        return EXIT_STREAM_FAILED
    except StreamfoldError as exc:
        partial = exc.partial
        metadata = getattr(partial, "metadata", None)
        line = summary(partial, metadata, _deltas(renderer))
        if line:
            err.write(f"streamfold: {line}\n")
        if cut is not None:
            err.write(f"streamfold: {cut}\n")
        failed = [r for r in getattr(metadata, "resumptions", ()) if r.error is not None]
        if failed:
            err.write(f"streamfold: could not resume: {failed[-1].error.message}\n")
        err.write(f"streamfold: {_describe(exc)}\n")
        return _exit_status(exc)
    err.write(f"streamfold: {summary(result, result.metadata, _deltas(renderer))}\n")
    for warning in result.warnings:
        err.write(f"streamfold: warning: {warning}\n")
    return EXIT_OK


def _deltas(renderer: PlainRenderer | RichRenderer | None) -> int:
    return renderer.view.deltas if renderer is not None else 0


def _snapshot(live: Any) -> Result | None:
    try:
        snapshot: Result = live.snapshot
    except StreamfoldError:  # interrupted before the request was sent
        return None
    return snapshot


def _metadata(live: Any) -> ResponseMetadata | None:
    try:
        metadata: ResponseMetadata = live.metadata
    except StreamfoldError:
        return None
    return metadata


def _cut(error: IncompleteStreamError, metadata: ResponseMetadata | None) -> str:
    """Where a stream broke off, for people: ``connection closed after 30 events``."""
    count = f"{metadata.events_received} events" if metadata is not None else "some events"
    if isinstance(error, StreamTimeoutError):
        return f"timed out after {count}"
    if error.__cause__ is not None:
        return f"connection closed after {count}"
    return f"the stream ended after {count} without its end"


def _not_found(args: argparse.Namespace, error: HTTPResponseError) -> str:
    """The URL a 404 came from, and the fix for the well-known base-URL mistakes:
    an Anthropic base URL ending in ``/v1``, an OpenAI-style one without it."""
    url = error.metadata.url or live_url(args)
    line = f"POST {url} answered 404"
    if "model" in (error.provider_message or "").lower():
        return line  # the path was right: the model is unknown there
    base = str(args.base_url or "").rstrip("/")
    path = urlsplit(base).path if base else ""
    api = registry.get_api(args.api)
    if api.id == "anthropic" and path.endswith("/v1"):
        fix = redact_url(base.removesuffix("/v1"))
        return (
            f"{line}: the Anthropic base URL has no /v1 (/v1/messages is added): "
            f"try --base-url {fix}"
        )
    if api.id in ("openai-chat", "openai-responses") and base and not path.endswith("/v1"):
        fix = redact_url(base + "/v1")
        return (
            f"{line}: an OpenAI-style base URL ends with /v1 ({api.path} is added): "
            f"try --base-url {fix}"
        )
    return line


def live_url(args: argparse.Namespace) -> str:
    """The endpoint a ``chat`` command talks to, for messages: without its
    password or credential query values (``redact_url``)."""
    return redact_url(str(args.base_url or registry.get_api(args.api).default_base_url()))


# -- serve ---------------------------------------------------------------------------------------


def _serve(
    args: argparse.Namespace, out: IO[str], err: IO[str], stop: threading.Event | None = None
) -> int:
    from ..server import (
        ReplayServer,
        ServedRequest,
        load_recordings,
        parse_pace,
        parse_rule,
        parse_upstreams,
        sample_recordings,
    )

    try:
        rule, pace = parse_rule(args.fault), parse_pace(args.pace)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.upstream and not args.record:
        raise UsageError("--upstream needs --record DIR: where the answers are recorded")
    recordings = {} if args.no_samples else sample_recordings()
    try:
        if args.recordings:
            recordings.update(load_recordings(*args.recordings))
        record = Path(args.record) if args.record else None
        if record is not None and record.exists() and not record.is_dir():
            raise UsageError(f"--record {record}: not a folder")
    except OSError as exc:
        raise UsageError(f"cannot read {exc.filename}: {exc.strerror or exc}") from None

    def log(served: ServedRequest) -> None:
        err.write(served.log_line() + "\n")
        err.flush()

    try:
        server = ReplayServer(
            recordings,
            host=args.host,
            port=args.port,
            faults=rule,
            pace=pace,
            on_finish=None if args.quiet else log,
            upstream=parse_upstreams(args.upstream) or None,
            record=record,
            record_mode=args.record_mode,
            match_ignore=args.match_ignore or DEFAULT_IGNORE,
        )
    except OSError as exc:
        raise UsageError(f"cannot read {exc.filename}: {exc.strerror or exc}") from None
    if not server.recordings and record is None:
        raise UsageError("no recordings to serve")
    try:
        server.start()
    except OSError as exc:
        reason = exc.strerror or exc
        raise UsageError(f"cannot serve on {args.host}:{args.port}: {reason}") from None
    waiter = stop or threading.Event()
    try:
        out.write(f"{server.url}\n")
        out.flush()
        names = ", ".join(server.recordings) or "none yet"
        err.write(
            f"streamfold: serving {len(server.recordings)} recordings on {server.url} "
            f"(Ctrl-C to stop): {names}\n"
        )
        if record is not None:
            err.write(f"streamfold: {_recording_plan(record, args)}\n")
        err.flush()
        while not waiter.wait(0.5):
            pass
    except KeyboardInterrupt:
        err.write(f"streamfold: stopped after {len(server.requests)} requests\n")
    finally:
        server.stop()
    return EXIT_OK


def _recording_plan(record: Path, args: argparse.Namespace) -> str:
    from ..server import parse_upstreams, upstream_url

    if args.record_mode == "none":
        return f"replaying {record} only (record mode none: nothing is sent upstream)"
    given = parse_upstreams(args.upstream)
    where = [
        f"{api.id} to {redact_url(upstream_url(api.id, given))}"
        for api in registry.APIS
        if api.routes
    ]
    what = "every request" if args.record_mode == "all" else "requests with no recording"
    return f"recording {what} into {record} (mode {args.record_mode}): " + ", ".join(where)


# -- demo ----------------------------------------------------------------------------------------


def _dialect_ready(data: bytes) -> bool:
    # A sample runs once a registered dialect recognises its first event.
    from .. import dialects
    from ..dialects.base import decode_json
    from ..sse import SSEDecoder

    decoder = SSEDecoder()
    for event in [*decoder.feed(data), *decoder.close()]:
        if event.data == "[DONE]":
            continue
        try:
            return dialects.detect(event, decode_json(event)) is not None
        except StreamfoldError:
            return False
    return False


def _check(sample: Sample, result: Result | None, error: BaseException | None) -> list[str]:
    """What differs from the sample's expected behaviour (empty when all is well)."""
    problems: list[str] = []
    if sample.outcome == "provider_error":
        if not isinstance(error, ProviderError):
            got = type(error).__name__ if error else "a complete response"
            problems.append(f"expected a ProviderError, got {got}")
        return problems
    if error is not None or result is None:
        return [f"expected a complete response, got {type(error).__name__}: {error}"]
    unified = result.unified
    if sample.finish_reason is not None and unified.finish_reason != sample.finish_reason:
        problems.append(f"finish reason {unified.finish_reason!r}, not {sample.finish_reason!r}")
    if len(unified.tool_calls) != sample.tool_calls:
        problems.append(f"{len(unified.tool_calls)} tool calls, not {sample.tool_calls}")
    if sample.reasoning and not unified.reasoning:
        problems.append("no reasoning")
    if not sample.tool_calls and not unified.text:
        problems.append("no text")
    return problems


def _demo(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    from ..client import NO_KEY, stream
    from ..samples import SAMPLES, read
    from ..server import ReplayServer, parse_pace

    try:
        pace = parse_pace(args.pace)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    chosen = [s for s in SAMPLES if not args.sample or s.name in args.sample]
    unknown = set(args.sample or ()) - {s.name for s in SAMPLES}
    if unknown:
        names = ", ".join(s.name for s in SAMPLES)
        raise UsageError(f"no sample named {', '.join(sorted(unknown))} (known: {names})")
    ran = failed = skipped = 0
    with ReplayServer(pace=pace) as server:
        out.write(
            f"streamfold demo: a replay server on {server.url} (loopback: no network, "
            f"no API key), pace {args.pace!r}\n"
        )
        for sample in chosen:
            out.write(f"\n== {sample.name}: {sample.title}\n")
            if not _dialect_ready(read(sample.name)):
                out.write(f"skipped: no registered dialect reads {sample.api} streams yet\n")
                skipped += 1
                continue
            ran += 1
            problems = _demo_one(sample, server, out, stream, NO_KEY)
            if problems:
                failed += 1
                out.write("UNEXPECTED: " + "; ".join(problems) + "\n")
            else:
                out.write("ok: behaved as expected\n")
        out.flush()
    out.write(
        f"\n{ran - failed} of {ran} samples behaved as expected"
        + (f", {skipped} skipped" if skipped else "")
        + "\n"
    )
    return EXIT_OK if ran and not failed else EXIT_STREAM_FAILED


def _demo_one(
    sample: Sample, server: ReplayServer, out: IO[str], stream: Callable[..., Any], no_key: Any
) -> list[str]:
    live = stream(
        sample.prompt, model=sample.name, api=sample.api, base_url=server.url, api_key=no_key
    )
    renderer = _renderer(out)
    result: Result | None = None
    error: BaseException | None = None
    renderer.start()
    try:
        with live:
            for event in live:
                renderer.event(event)
            result = live.final()
    except OutputError:
        raise
    except Exception as exc:
        # Whatever the sample ends in is the demo's to report, not to crash on.
        error = exc
        result = getattr(exc, "partial", None)
    finally:
        renderer.stop()
    if error is not None:
        out.write(f"{_describe(error)}\n")
    metadata = getattr(result, "metadata", None)
    if result is not None:
        label = "final response" if error is None else "partial response"
        body = msgspec.json.format(_encoder.encode(result.response), indent=2).decode()
        out.write(f"{label} ({result.dialect}):\n{body}\n")
    line = summary(result, metadata, renderer.view.deltas)
    if metadata is not None:
        line += (
            f" · first byte {metadata.time_to_first_byte or 0:.3f} s"
            f" · {metadata.events_received} events, {metadata.bytes_received} bytes"
        )
    out.write(f"{line}\n")
    return _check(sample, result, error)
