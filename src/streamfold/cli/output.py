"""The command's standard streams, made safe to write to.

Every line the command prints goes through an ``Output``: it replaces the
secrets the command knows of (the API key, a URL's password, credential query
values; ``adapters.redact``) and turns a failed write into ``OutputError``, so
a closed pipe or a full disk is never mistaken for an unreadable input and
never ends in a traceback. ``main`` decides what a failure means: a reader
that went away (``head``, a closed stdout) ends the command quietly, a full
disk is one line on stderr; a failure on stderr itself is dropped, there being
nowhere left to say it.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import threading
from typing import IO

from ..adapters.redact import redact_text

__all__ = ["Output", "OutputError", "silence", "utf8"]

# errno values that mean the reader has gone rather than that writing failed.
_GONE = frozenset({errno.EPIPE, errno.EBADF, errno.ECONNRESET})


class OutputError(Exception):
    """Writing the command's output failed.

    Attributes:
        broken: the reader has gone (a closed pipe, a closed stdout): not worth a word.
        reason: why, as the system said it (``No space left on device``).
    """

    def __init__(self, reason: str, *, broken: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.broken = broken


class Output(io.TextIOBase):
    """A text stream that redacts ``secrets`` and reports failures as ``OutputError``.

    Args:
        stream: what to write to; ``None`` when the descriptor is closed.
        secrets: replaced by ``REDACTED`` in everything written (a live set:
            the command adds to it once it knows its key).
        fatal: raise ``OutputError`` on a failure, and on every later write
            (stdout); else drop this and every later write (stderr). Only in
            the thread that made it: another thread's failure (rich's refresh
            thread) is raised at the next write or flush there.
    """

    def __init__(self, stream: IO[str] | None, secrets: set[str], *, fatal: bool) -> None:
        super().__init__()
        self.stream = stream
        self.secrets = secrets
        self.fatal = fatal
        self.error = (
            OutputError("standard output is closed", broken=True) if stream is None else None
        )
        self._owner = threading.get_ident()

    @property
    def failed(self) -> bool:
        """A write has failed (or the stream was closed from the start)."""
        return self.error is not None

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", None) or "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        if self.stream is None:
            return False
        try:
            return bool(self.stream.isatty())
        except (OSError, ValueError):
            return False

    def write(self, text: str) -> int:
        if self.error is None and self.stream is not None:
            safe = redact_text(text, self.secrets) if self.secrets else text
            try:
                try:
                    self.stream.write(safe)
                except UnicodeEncodeError:
                    # A stream the caller gave us in a narrow encoding: write what it can hold.
                    encoding = self.encoding
                    self.stream.write(safe.encode(encoding, "replace").decode(encoding))
            except (OSError, ValueError) as exc:
                self.error = _error_of(exc)
        self._raise()
        return len(text)

    def flush(self) -> None:
        if self.error is None and self.stream is not None:
            try:
                self.stream.flush()
            except (OSError, ValueError) as exc:
                self.error = _error_of(exc)
        self._raise()

    def _raise(self) -> None:
        if self.error is not None and self.fatal and threading.get_ident() == self._owner:
            raise self.error


def _error_of(exc: OSError | ValueError) -> OutputError:
    if isinstance(exc, OSError):
        return OutputError(exc.strerror or str(exc), broken=exc.errno in _GONE)
    # ValueError: "I/O operation on closed file".
    return OutputError("standard output is closed", broken=True)


def utf8(stream: IO[str] | None, errors: str) -> IO[str] | None:
    """The process's ``stream`` set to write UTF-8 (``errors`` for what UTF-8
    cannot encode, lone surrogates): output never fails on the terminal's
    encoding (``PYTHONIOENCODING=ascii``, a C locale)."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        with contextlib.suppress(ValueError, OSError, io.UnsupportedOperation):
            reconfigure(encoding="utf-8", errors=errors)
    return stream


def silence(stream: IO[str] | None) -> None:
    """Point ``stream``'s descriptor at the null device, so the interpreter's
    own flush at exit does not fail again on what is still buffered (the
    recipe of Python's documentation on SIGPIPE)."""
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError, AttributeError, io.UnsupportedOperation):
        fd = stream.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)
