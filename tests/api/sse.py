"""A Server-Sent Events client for tests: reads a stream in a thread over a plain socket."""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class Event:
    id: str | None
    kind: str | None
    data: str | None
    comment: str | None = None

    def json(self) -> Any:
        assert self.data is not None
        return json.loads(self.data)


class Stream:
    """An event stream read in a thread over a plain socket (so that ``close`` can cut it
    at any moment, as a client going away does): events arrive in a queue; ``None`` marks
    the end of the stream."""

    def __init__(self, base_url: str, path: str, headers: dict[str, str] | None = None) -> None:
        self.events: queue.Queue[Event | None] = queue.Queue()
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        host, port = base_url.removeprefix("http://").split(":")
        self._sock = socket.create_connection((host, int(port)), timeout=60)
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self._file = self._sock.makefile("rb")
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._read)
        self._thread.start()
        assert self._opened.wait(10)

    def _read(self) -> None:
        try:
            status_line = self._file.readline().decode()
            self.status = int(status_line.split()[1])
            while (line := self._file.readline().decode().strip()) != "":
                name, _, value = line.partition(":")
                self.headers[name.strip().lower()] = value.strip()
            self._opened.set()
            chunked = self.headers.get("transfer-encoding") == "chunked"
            buffer = ""
            for piece in self._pieces(chunked):
                buffer += piece.decode()
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    self._event(block)
        except (OSError, ValueError):
            pass
        finally:
            self._opened.set()
            self.events.put(None)

    def _pieces(self, chunked: bool) -> Iterator[bytes]:
        if not chunked:
            self.body = self._file.read()
            yield self.body
            return
        while True:
            size = int(self._file.readline().strip(), 16)
            if size == 0:
                return
            data = self._file.read(size)
            self._file.readline()
            self.body += data
            yield data

    def _event(self, block: str) -> None:
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                self.events.put(Event(None, None, None, comment=line))
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        if "event" in fields:
            self.events.put(Event(fields.get("id"), fields.get("event"), fields.get("data")))

    def next(self, timeout: float = 10) -> Event | None:
        return self.events.get(timeout=timeout)

    def quiet(self, seconds: float) -> bool:
        """Whether no event arrives for ``seconds``."""
        try:
            self.events.get(timeout=seconds)
        except queue.Empty:
            return True
        return False

    def json(self) -> Any:
        return json.loads(self.body)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(10)
