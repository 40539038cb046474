"""A tiny HTTP/1.1 server on a raw loopback socket, for what the replay server
cannot do: trickle a body byte by byte, stall an error body, redirect, echo a
request header back. Each connection plays a script of writes and pauses."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

#: A script: given the request's head (bytes), the writes, each after a pause (seconds).
Script = Callable[[bytes], list[tuple[float, bytes]]]


def response_head(status: int, headers: dict[str, str], reason: str = "Whatever") -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunked(*pieces: bytes) -> list[bytes]:
    """Each piece as one chunk of a chunked body (no terminating chunk)."""
    return [f"{len(piece):x}\r\n".encode() + piece + b"\r\n" for piece in pieces]


END_CHUNKS = b"0\r\n\r\n"


@dataclass
class RawServer:
    """Serves ``script`` to every connection until closed; keeps each request's head."""

    script: Script
    requests: list[bytes] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                more = conn.recv(65536)
                if not more:
                    return
                data += more
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            while len(body) < length:  # read it all: unread bytes would make close() a reset
                more = conn.recv(65536)
                if not more:
                    return
                body += more
            head = head + b"\r\n\r\n" + body
            self.requests.append(head)
            for pause, data in self.script(head):
                if pause and self.stop.wait(pause):
                    return
                try:
                    conn.sendall(data)
                except OSError:
                    return  # the client left

    def header(self, index: int, name: str) -> str | None:
        """A header of request ``index``, or ``None``."""
        for line in self.requests[index].decode("latin-1").split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    def __enter__(self) -> RawServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join(5)
