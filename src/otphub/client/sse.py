"""A decoder of Server-Sent Events, one line at a time (the WHATWG "event stream
interpretation", the parts a client needs).

Written here rather than taken from httpx-sse: ``wait_for_code`` has to see every line,
the ``: ping`` comments included, to keep its deadline while a stream is quiet, which
httpx-sse's iterator hides; and it keeps this package on httpx and the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_EVENT = 1024 * 1024  # an event's data; a stream that sends more is not one of ours


@dataclass(frozen=True)
class ServerEvent:
    event: str
    data: str
    id: str | None  # the last event id as of this event


class SSEDecoder:
    def __init__(self) -> None:
        self.last_event_id: str | None = None
        self.retry_ms: int | None = None
        self._event = ""
        self._data: list[str] = []
        self._size = 0

    def feed(self, line: str) -> ServerEvent | None:
        """One line without its end; an event when the line ends one."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: a keep-alive
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._size += len(value) + 1
            if self._size > MAX_EVENT:
                raise ValueError("server event too large")
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> ServerEvent | None:
        data, event = self._data, self._event
        self._data, self._event, self._size = [], "", 0
        if not data:
            return None
        return ServerEvent(event or "message", "\n".join(data), self.last_event_id)
